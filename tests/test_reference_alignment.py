"""Probe-set annotations in the tables and what the metrics do with them: reference_alignment (target- and
term-keyed), definitional controls out of bias_score, stereotype-eliciting templates out of the statistics,
and the run-time tokenizer warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from albert_audit import units
from albert_audit.errors import AuditError
from albert_audit.inference.reference_slope import logit
from albert_audit.library import resolve_probe_arg
from albert_audit.metrics import compute_findings
from albert_audit.probeset import load_probe_set
from albert_audit.probeset.expand import annotate_targets, expand_items
from albert_audit.probeset.tokenizer_checks import run_time_warnings
from tests.conftest import write_probe_file
from tests.oracles import bias_score_oracle
from tests.probe_views import reference, template_tags
from tests.test_metrics import TWO, make_tables

FAST = 400
SHARES = {"nurse": 0.9, "engineer": 0.15, "clerk": 0.6, "pilot": 0.05, "teacher": 0.75}


def _row(findings: pd.DataFrame, metric: str, target: str = "") -> pd.Series:
    sel = (findings["metric"] == metric) & (findings["target"] == target)
    assert sel.sum() == 1, findings[findings["metric"] == metric]
    return findings[sel].iloc[0]


def _target_keyed_tables(slope: float = 0.5, controls: tuple[str, ...] = ()) -> tuple[pd.DataFrame, ...]:
    gaps = {t: slope * float(logit(np.array([s]))[0]) for t, s in SHARES.items()}
    items, targets, fills = make_tables(groups=TWO, targets=tuple(SHARES), gaps=gaps, noise=0.2)
    targets["reference_share"] = targets["target"].map(SHARES)
    targets["term_prior_logprob"] += np.random.default_rng(1).normal(0.0, 1.0, len(targets))  # association != gap
    targets["control"] = targets["target"].isin(controls)
    return items, targets, fills


def _target_keyed(slope: float = 0.5, alpha: float = 0.05, controls: tuple[str, ...] = ()) -> pd.DataFrame:
    return compute_findings(*_target_keyed_tables(slope, controls), seed=3, alpha=alpha, n_resamples=FAST)


def test_target_keyed_slope_is_the_ols_slope_of_the_logprob_gaps():
    findings = _target_keyed()
    row = _row(findings, "reference_alignment")
    gap = {t: _row(findings, "logprob_gap", t)["effect"] for t in SHARES}
    x = logit(np.array([SHARES[t] for t in gap]))
    y = np.array(list(gap.values()))
    assert row["effect"] == pytest.approx(np.polyfit(x, y, 1)[0], abs=1e-9)
    assert row["effect"] == pytest.approx(0.5, abs=0.1)  # the planted slope
    assert row["ci_low"] < row["effect"] < row["ci_high"] and 0 < row["ci_low"] and row["ci_high"] < 1
    assert "verdict: attenuates" in row["method"] and f"Pearson r={np.corrcoef(x, y)[0, 1]:.3f}" in row["method"]
    assert (row["group_a"], row["group_b"], row["n_units"], row["effect_unit"]) == ("female", "male", 12,
                                                                                  "nats per logit")
    assert row["p_value"] <= 1 / 120 + 1e-12  # exact permutation over 5! orders: only the observed one
    assert row["direction"] == "none"


def test_alignment_verdicts_and_alpha():
    assert "verdict: exceeds" in _row(_target_keyed(slope=2.0), "reference_alignment")["method"]
    assert "verdict: inverts" in _row(_target_keyed(slope=-1.0), "reference_alignment")["method"]
    wide, narrow = (_row(_target_keyed(alpha=a), "reference_alignment") for a in (0.025, 0.05))
    assert wide["ci_low"] <= narrow["ci_low"] and wide["ci_high"] >= narrow["ci_high"]
    assert "97.5% percentile CI" in wide["method"]


def test_definitional_controls_stay_out_of_alignment_and_bias_score():
    plain, controlled = _target_keyed(), _target_keyed(controls=("pilot",))
    assert "4 words" in _row(controlled, "reference_alignment")["method"]
    assert "5 words" in _row(plain, "reference_alignment")["method"]
    # bias_score: the debiased RMS association gap over the bias targets only; the control keeps its own rows
    items, targets, _ = _target_keyed_tables(controls=("pilot",))
    bias = _row(controlled, "bias_score")
    assert bias["effect"] == pytest.approx(bias_score_oracle(items, targets, "toy", alpha=0.05)["effect"], rel=1e-9)
    assert "(1 definitional controls left out)" in bias["method"]
    targets["control"] = False
    assert _row(plain, "bias_score")["effect"] == pytest.approx(
        bias_score_oracle(items, targets, "toy", alpha=0.05)["effect"], rel=1e-9)
    assert _row(plain, "bias_score")["effect"] != pytest.approx(bias["effect"], rel=1e-3)
    assert np.isfinite(_row(controlled, "logprob_gap", "pilot")["effect"])


def test_term_keyed_alignment_reads_female_minus_male_targets_per_term():
    shares = {"w1": 0.95, "w2": 0.7, "m1": 0.2, "m2": 0.04, "b1": 0.5}
    groups = {"female_dominated": ["w1", "w2"], "male_dominated": ["m1", "m2"], "balanced": ["b1"]}
    items, targets, fills = make_tables(groups=groups, targets=("He", "She"), noise=0.2, seed=5)
    items["term_reference_share"] = items["term"].map(shares)
    term = targets["item_id"].map(dict(zip(items["item_id"], items["term"], strict=True)))
    she = targets["target"] == "She"
    targets.loc[she, "logprob"] += 1.5 * logit(term[she].map(shares).to_numpy())
    targets["category"] = np.where(she, "female", "male")
    findings = compute_findings(items, targets, fills, seed=0, n_resamples=FAST)
    row = _row(findings, "reference_alignment")
    joined = targets.assign(term=term)
    wide = joined.pivot_table(index="term", columns="target", values="logprob", aggfunc="mean")
    y = (wide["She"] - wide["He"]).reindex(list(shares))
    assert row["effect"] == pytest.approx(np.polyfit(logit(np.array(list(shares.values()))), y, 1)[0], abs=1e-9)
    assert row["effect"] == pytest.approx(1.5, abs=0.15)
    assert (row["group_a"], row["group_b"]) == ("female", "male") and "term-keyed" in row["method"]


def test_no_reference_no_row_and_too_few_words_explain_themselves():
    items, targets, fills = make_tables(groups=TWO)
    assert "reference_alignment" not in set(compute_findings(items, targets, fills, seed=0, n_resamples=FAST)["metric"])
    targets["reference_share"] = targets["target"].map({"nurse": 0.9, "engineer": 0.1})
    row = _row(compute_findings(items, targets, fills, seed=0, n_resamples=FAST), "reference_alignment")
    assert np.isnan(row["effect"]) and "at least 3 words" in row["method"]


def test_stereotype_eliciting_templates_stay_out_of_the_statistics():
    items, targets, fills = make_tables(groups=TWO, gaps={"nurse": 0.5})
    stereo = items["template_id"] < 4
    targets.loc[targets["item_id"].isin(items.loc[stereo & (items["group"] == "female"), "item_id"]), "logprob"] += 5
    tagged = items.assign(template_tag=np.where(stereo, "stereotype_eliciting", "neutral"))
    got = compute_findings(tagged, targets, fills, seed=0, n_resamples=FAST)
    neutral_ids = items.loc[~stereo, "item_id"]
    want = compute_findings(items[~stereo], targets[targets["item_id"].isin(neutral_ids)],
                            fills[fills["item_id"].isin(neutral_ids)], seed=0, n_resamples=FAST)
    pd.testing.assert_frame_equal(got, want)
    assert _row(got, "logprob_gap", "nurse")["n_units"] == 8
    cells = units.template_cells(tagged, targets)["logprob"]
    assert list(cells.columns) == list(range(4, 12))


def test_annotations_come_from_the_probe_sets():
    occupation = load_probe_set(resolve_probe_arg("gender_occupation"))
    pronoun = load_probe_set(resolve_probe_arg("profession_pronoun"))
    items = expand_items([occupation, pronoun])
    first = items.groupby("probe_set")["item_id"].first()
    targets = pd.DataFrame({"item_id": [first["gender_occupation"]] * 3 + [first["profession_pronoun"]],
                            "target": ["nurse", "waitress", "surgeon", "She"]})
    annotated = annotate_targets(targets, items, [occupation, pronoun])
    assert list(annotated["control"]) == [False, True, False, False]
    assert annotated.loc[0, "reference_share"] == reference(occupation).as_dict()["nurse"]
    assert np.isnan(annotated.loc[1, "reference_share"]) and np.isnan(annotated.loc[3, "reference_share"])
    assert annotated.loc[1, "category"] == "definitional" and annotated.loc[3, "category"] == "female"
    us = reference(pronoun, "us").as_dict()
    prof = items[items["probe_set"] == "profession_pronoun"]
    assert (prof["term_reference_share"] == prof["term"].map(us)).all() and prof["term"].isin(us).all()
    assert items.loc[items["probe_set"] == "gender_occupation", "term_reference_share"].isna().all()
    with pytest.raises(AuditError, match="not in the probe sets"):
        annotate_targets(targets.assign(target="unicorn"), items, [occupation, pronoun])


def test_template_tags_reach_the_items():
    traits = load_probe_set(resolve_probe_arg("gender_traits"))
    items = expand_items([traits])
    tags = template_tags(traits)
    assert (items["template_tag"] == items["template_id"].map(tags)).all()
    assert set(items["template_tag"]) == {"neutral", "stereotype_eliciting"}


class _Tokenizer:
    """Splits a word into letters, except the words it knows whole; ``asexual`` -> ``▁a|sexual``."""

    known = {"woman", "man", "mother", "father", "nurse"}

    def tokenize(self, text: str) -> list[str]:
        word = text.strip()
        if word in self.known:
            return ["▁" + word]
        if word == "asexual":
            return ["▁a", "sexual"]
        return ["▁" + word[0]] + list(word[1:])


def test_run_time_warnings(tmp_path):
    path = write_probe_file(tmp_path, "warned", """\
name: warned
description: Counterpart terms of different lengths and a function-word first piece.
category: gender
groups:
  female: [woman, stepmother]
  male: [man, father]
pair_terms_by_position: true
templates:
  - "The <group> is a [MASK]."
targets: [nurse, asexual]
""")
    warnings = run_time_warnings([load_probe_set(path)], _Tokenizer())
    assert len(warnings) == 2
    assert "counterpart terms differ in piece count ('stepmother' 10, 'father' 1)" in warnings[0]
    assert "'asexual' splits into ▁a|sexual" in warnings[1]
    assert all(w.startswith(str(path)) for w in warnings)


def test_readers_fill_the_annotation_defaults_and_refuse_old_association_tables():
    from albert_audit import contract

    old = pd.DataFrame({"item_id": [0], "target": ["nurse"], "n_pieces": [1], "logprob": [-1.0],
                        "term_logprob": [-2.0], "term_prior_logprob": [-2.5]})
    typed = contract.restore_types(old, contract.TARGETS, "targets.parquet")
    assert typed.loc[0, "category"] == "" and typed["control"].dtype == bool and not typed.loc[0, "control"]
    assert np.isnan(typed.loc[0, "reference_share"])
    items = pd.DataFrame({"item_id": [0], "probe_set": ["p"], "template_id": [0], "template": ["t"],
                          "group": ["a"], "term": ["x"], "term_index": [0], "text": ["x"], "prior_text": ["x"]})
    typed_items = contract.restore_types(items, contract.ITEMS, "items.parquet")
    assert typed_items.loc[0, "template_tag"] == "neutral" and np.isnan(typed_items.loc[0, "term_reference_share"])
    before = old.drop(columns=["term_logprob", "term_prior_logprob"]).assign(prior_logprob=-2.0)
    with pytest.raises(AuditError, match="missing column.*term_logprob, term_prior_logprob"):
        contract.restore_types(before, contract.TARGETS, "targets.parquet")
