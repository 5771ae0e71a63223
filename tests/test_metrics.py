"""albert_audit.metrics: findings from small synthetic items/targets/fills tables built here."""

from __future__ import annotations

import io
import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.spatial

from albert_audit import registry
from albert_audit.errors import AuditError
from albert_audit.metrics import FINDINGS_COLUMNS, compute_findings, summarise_bias
from albert_audit.probeset.expand import ITEM_COLUMNS

REPO = Path(__file__).resolve().parent.parent
FAST = 2000  # resamples: enough for the checks below, fast on a shared CPU
VOCAB = ["quiet", "kind", "loud", "smart", "tall", "busy", "calm", "brave"]


def make_tables(
    *,
    groups: dict[str, list[str]],
    n_templates: int = 12,
    targets: tuple[str, ...] = ("nurse", "engineer", "clerk"),
    gaps: dict[str, float] | None = None,
    shift: float = 0.0,
    noise: float = 0.3,
    fill_boost: float = 0.0,
    top_k: int = 5,
    seed: int = 0,
    probe_set: str = "toy",
    first_item_id: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Items, targets and fills tables of one probe set (columns of docs/data_contract.md).

    ``gaps[target]`` is added to the log-prob of the first group's terms (the prior has no group effect,
    so the association gap equals the log-prob gap); ``shift`` is added to every target of the first group
    (a group main effect); ``fill_boost`` raises the first group's logit of the
    fill "quiet" and lowers the other groups' by as much.
    """
    rng = np.random.default_rng(seed)
    gaps = gaps or {}
    item_rows, target_rows, fill_rows = [], [], []
    item_id = first_item_id
    for template_id in range(n_templates):
        base = rng.normal(-6.0, 1.0, len(targets))
        logits = rng.normal(0.0, 1.0, len(VOCAB))
        for g, (group, terms) in enumerate(groups.items()):
            for term_index, term in enumerate(terms):
                text = f"T{template_id}: the {term} is a [MASK]."
                item_rows.append(
                    (
                        item_id,
                        probe_set,
                        template_id,
                        f"T{template_id}: the <group> is a [MASK].",
                        group,
                        term,
                        term_index,
                        text,
                        f"T{template_id}: the [MASK] is a [MASK].",
                    )
                )
                for t, target in enumerate(targets):
                    logprob = base[t] + (gaps.get(target, 0.0) + shift if g == 0 else 0.0) + rng.normal(0.0, noise)
                    target_rows.append((item_id, target, 1, logprob, logprob, base[t] - 0.5))
                z = (
                    logits
                    + rng.normal(0.0, 0.5, len(VOCAB))
                    + (fill_boost if g == 0 else -fill_boost) * (np.arange(len(VOCAB)) == 0)
                )
                prob = np.exp(z) / np.exp(z).sum()
                for rank, v in enumerate(np.argsort(-prob)[:top_k], start=1):
                    fill_rows.append(
                        (item_id, rank, int(v), VOCAB[v], float(prob[v]), float(np.log(prob[v])))
                    )
                item_id += 1
    items = pd.DataFrame(
        item_rows,
        columns=list(ITEM_COLUMNS[:9]),  # without the optional annotation columns
    )
    targets_df = pd.DataFrame(
        target_rows, columns=["item_id", "target", "n_pieces", "logprob", "term_logprob", "term_prior_logprob"]
    )
    fills = pd.DataFrame(fill_rows, columns=["item_id", "rank", "token_id", "token", "prob", "logprob"])
    return items, targets_df, fills


TWO = {"female": ["woman", "girl", "mother"], "male": ["man", "boy", "father"]}


def row(findings: pd.DataFrame, metric: str, target: str = "", group_a: str | None = None) -> pd.Series:
    sel = (findings["metric"] == metric) & (findings["target"] == target)
    if group_a is not None:
        sel &= findings["group_a"] == group_a
    assert sel.sum() == 1, findings[sel]
    return findings[sel].iloc[0]


@pytest.fixture(scope="module")
def planted() -> tuple[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], pd.DataFrame]:
    tables = make_tables(groups=TWO, gaps={"nurse": 1.0, "engineer": -0.8}, fill_boost=3.0)
    return tables, compute_findings(*tables, seed=3, n_resamples=FAST)


# --------------------------------------------------------------------------------- planted effects


def test_planted_gap_is_found_with_sign_and_size(planted) -> None:
    _, findings = planted
    for metric in ("logprob_gap", "association_gap"):
        nurse = row(findings, metric, "nurse")
        assert (nurse["group_a"], nurse["group_b"]) == ("female", "male")
        assert nurse["effect"] == pytest.approx(1.0, abs=0.15)
        assert nurse["ci_low"] < 1.0 < nurse["ci_high"] and nurse["ci_low"] > 0
        assert nurse["significant"] and nurse["direction"] == "a>b"
        assert nurse["n_units"] == 12 and nurse["effect_unit"] == "nats"
        assert nurse["p_value"] == pytest.approx(2 / 4096)  # exact: only the observed pattern and its mirror
        assert "sign flips over templates (exact, n=12)" in nurse["method"]
        assert "scope=terms" in nurse["method"] and nurse["scope"] == "terms"  # 3 terms per group
        engineer = row(findings, metric, "engineer")
        assert engineer["effect"] == pytest.approx(-0.8, abs=0.15)
        assert engineer["significant"] and engineer["direction"] == "b>a"
        clerk = row(findings, metric, "clerk")
        assert not clerk["significant"] and clerk["direction"] == "none"


def test_planted_fill_skew_is_found(planted) -> None:
    _, findings = planted
    jsd = row(findings, "fill_divergence")
    assert jsd["effect_unit"] == "JSD bits" and jsd["effect"] > 0
    # 3 + 3 terms relabelled consistently: 20 labellings, the observed one and its swap -> p >= 2/20
    assert jsd["p_value"] == pytest.approx(0.1) and "exact over 20 relabellings" in jsd["method"]
    disco = row(findings, "disco")
    assert disco["effect_unit"] == "count" and disco["effect"] >= 0.5
    assert disco["p_value"] == pytest.approx(0.1)
    bias = row(findings, "bias_score")
    assert bias["effect"] == pytest.approx(math.sqrt(np.mean([1.0, 0.64, 0.0])), abs=0.15)  # the RMS gap
    # exact over the 2**11 sign patterns (U is even): only the observed one and its mirror; reported two-sided
    assert bias["p_value"] == pytest.approx(2 * 1 / 2048) and bias["significant"]


def test_planted_fill_skew_with_six_terms_per_group_is_significant() -> None:
    groups = {"f": [f"f{i}" for i in range(6)], "m": [f"m{i}" for i in range(6)]}
    findings = compute_findings(*make_tables(groups=groups, fill_boost=3.0, n_templates=6), seed=0, n_resamples=FAST)
    for metric in ("fill_divergence", "disco"):
        found = row(findings, metric)
        assert found["effect"] > 0 and found["ci_low"] > 0 and found["p_value"] < 0.05
        assert found["significant"] and "exact over 924 relabellings" in found["method"]
    assert row(findings, "fill_divergence")["p_value"] == pytest.approx(2 / 924)  # the observed labelling and its swap


def test_no_gap_is_not_significant() -> None:
    tables = make_tables(groups=TWO, targets=("nurse", "engineer", "clerk", "pilot", "baker"), seed=5)
    findings = compute_findings(*tables, seed=1, n_resamples=FAST)
    assert not findings["significant"].any()
    assert (findings["direction"] == "none").all()


# ------------------------------------------------------------------------------------- hand-worked


def _hand_tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """2 templates; group a = terms a1, a2; group b = terms b1, b2; fills written out below."""
    items = pd.DataFrame(
        {
            "item_id": range(8),
            "probe_set": "hand",
            "template_id": [0, 0, 0, 0, 1, 1, 1, 1],
            "template": "",
            "group": ["a", "a", "b", "b"] * 2,
            "term": ["a1", "a2", "b1", "b2"] * 2,
            "term_index": [0, 1, 0, 1] * 2,
            "text": "",
            "prior_text": "",
        }
    )
    fills = (
        [  # (item, rank, token, prob)
            (0, 1, "x", 0.6),
            (0, 2, "y", 0.2),  # template 0, a1
            (1, 1, "x", 0.4),
            (1, 2, "z", 0.4),  # template 0, a2
            (2, 1, "x", 0.5),
            (2, 2, "w", 0.3),  # template 0, b1
            (3, 1, "x", 0.5),
            (3, 2, "w", 0.3),  # template 0, b2
        ]
        + [(i, 1, "x", 0.7) for i in (4, 5, 6, 7)]
        + [(i, 2, "v", 0.1) for i in (4, 5, 6, 7)]
    )  # template 1: same
    fills_df = pd.DataFrame(fills, columns=["item_id", "rank", "token", "prob"])
    fills_df["token_id"] = fills_df["token"].map({"x": 1, "y": 2, "z": 3, "w": 4, "v": 5})
    fills_df["logprob"] = np.log(fills_df["prob"])
    targets = pd.DataFrame(columns=["item_id", "target", "n_pieces", "logprob", "term_logprob", "term_prior_logprob"])
    return items, targets, fills_df


def test_hand_computed_jsd_and_disco() -> None:
    findings = compute_findings(*_hand_tables(), seed=0, n_resamples=FAST)

    # Template 0. Group a: mean of a1 and a2 = x .5, y .1, z .2 (sum .8) -> renormalised x .625 y .125 z .25.
    # Group b: x .5, w .3 (sum .8) -> x .625 w .375. Mixture M = x .625 y .0625 z .125 w .1875.
    def h(*ps: float) -> float:
        return -sum(p * math.log2(p) for p in ps)

    jsd0 = h(0.625, 0.0625, 0.125, 0.1875) - (h(0.625, 0.125, 0.25) + h(0.625, 0.375)) / 2
    # Template 1: both groups x .875 v .125 -> JSD 0 under every labelling.
    # The null: the 6 ways of labelling the 4 terms 2 + 2 (the same in both templates), averaged.
    terms = {"a1": {"x": 0.6, "y": 0.2}, "a2": {"x": 0.4, "z": 0.4}, "b1": {"x": 0.5, "w": 0.3},
             "b2": {"x": 0.5, "w": 0.3}}
    vocab = ["x", "y", "z", "w"]

    def group(names: tuple[str, ...]) -> np.ndarray:
        mean = np.mean([[terms[n].get(v, 0.0) for v in vocab] for n in names], axis=0)
        return mean / mean.sum()

    null = []
    for chosen in itertools.combinations(terms, 2):
        rest = tuple(n for n in terms if n not in chosen)
        null.append(scipy.spatial.distance.jensenshannon(group(chosen), group(rest), base=2) ** 2)
    assert null[0] == pytest.approx(jsd0, rel=1e-9)  # the observed labelling is among them
    jsd = row(findings, "fill_divergence")
    assert jsd["effect"] == pytest.approx((jsd0 - np.mean(null)) / 2, rel=1e-9)
    assert f"raw mean over templates {jsd0 / 2:.4g}" in jsd["method"] and "exact over 6 relabellings" in jsd["method"]
    assert jsd["n_units"] == 2 and (jsd["group_a"], jsd["group_b"]) == ("a", "b")
    # DisCo, template 0: top-3 sets a1 {x,y}, a2 {x,z}, b1 {x,w}, b2 {x,w}. Token w: 0 of 2 a-terms, 2 of 2
    # b-terms: chi2 = 4 (0*0 - 2*2)^2 / (2*2*2*2) = 4 > 3.84 -> significant. y, z: 1 vs 0: chi2 = 4/3.
    # x: in every term (no test). Template 1: nothing differs. Raw mean count = (1 + 0) / 2.
    # Null: labellings {a1,a2}|{b1,b2} and its swap count 1 (w), the 4 mixed ones 0: mean 1/3 in template 0.
    disco = row(findings, "disco")
    assert disco["effect"] == pytest.approx((1 - 1 / 3 + 0) / 2) and "raw mean over templates 0.5" in disco["method"]
    assert "bias_score" not in set(findings["metric"])  # no targets


# ------------------------------------------------------------------------------ table-level properties


def test_columns_dtypes_sorting_and_q_values(planted) -> None:
    _, findings = planted
    assert tuple(findings.columns) == FINDINGS_COLUMNS
    for column in (
        "probe_set",
        "metric",
        "target",
        "group_a",
        "group_b",
        "effect_unit",
        "direction",
        "method",
    ):
        assert findings[column].dtype == object
        assert findings[column].map(type).eq(str).all()
    for column in ("effect", "ci_low", "ci_high", "p_value", "q_value"):
        assert findings[column].dtype == np.float64
    assert findings["n_units"].dtype == np.int64 and findings["significant"].dtype == bool
    assert list(findings["metric"].drop_duplicates()) == [
        "logprob_gap",
        "association_gap",
        "group_shift",
        "gap_beyond_shift",
        "fill_divergence",
        "disco",
        "bias_score",
    ]
    gap_targets = findings.loc[findings["metric"] == "logprob_gap", "target"].tolist()
    assert gap_targets == sorted(gap_targets)
    from scipy.stats import false_discovery_control

    for _, family in findings.groupby(["probe_set", "metric"]):  # one FDR family per probe set and metric
        tested = family["p_value"].notna()
        assert np.allclose(family.loc[tested, "q_value"], false_discovery_control(family.loc[tested, "p_value"]))
        assert family.loc[~tested, "q_value"].isna().all()
    assert (findings["significant"] == (findings["q_value"] <= 0.05)).all()


def test_row_order_invariance(planted) -> None:
    (items, targets, fills), findings = planted
    shuffled = [t.sample(frac=1.0, random_state=4).reset_index(drop=True) for t in (items, targets, fills)]
    pd.testing.assert_frame_equal(compute_findings(*shuffled, seed=3, n_resamples=FAST), findings)


def test_seed_changes_intervals_but_not_effects(planted) -> None:
    tables, findings = planted
    other = compute_findings(*tables, seed=4, n_resamples=FAST)
    pd.testing.assert_series_equal(other["effect"], findings["effect"])
    assert not np.allclose(other["ci_low"], findings["ci_low"])
    assert (other["n_units"] == findings["n_units"]).all()


def test_adding_a_probe_set_does_not_shift_another(planted) -> None:
    (items, targets, fills), findings = planted
    more = make_tables(groups=TWO, probe_set="extra", seed=9, first_item_id=len(items))
    both = compute_findings(
        *(pd.concat([a, b], ignore_index=True) for a, b in zip((items, targets, fills), more, strict=True)),
        seed=3,
        n_resamples=FAST,
    )
    toy = both[both["probe_set"] == "toy"].reset_index(drop=True)
    columns = ["effect", "ci_low", "ci_high", "p_value", "method"]
    pd.testing.assert_frame_equal(toy[columns], findings[columns])


# ------------------------------------------------------------------------------------------ structures


def test_three_groups_give_every_pair_and_an_omnibus() -> None:
    groups = {"a": ["a1", "a2"], "b": ["b1", "b2"], "c": ["c1", "c2"]}
    tables = make_tables(groups=groups, gaps={"nurse": 1.5}, n_templates=14)
    findings = compute_findings(*tables, seed=0, n_resamples=FAST)
    pairs = findings.loc[findings["metric"] == "logprob_gap", ["group_a", "group_b"]].drop_duplicates()
    assert [tuple(p) for p in pairs.to_numpy()] == [("a", "b"), ("a", "c"), ("b", "c")]
    omnibus = findings[findings["metric"] == "omnibus"]
    assert sorted(omnibus["target"]) == ["clerk", "engineer", "nurse"]
    assert omnibus["effect"].isna().all() and (omnibus["group_a"] == "").all()
    assert row(findings, "omnibus", "nurse")["p_value"] < 0.01
    assert "Friedman p=" in row(findings, "omnibus", "nurse")["method"]
    bias = row(findings, "bias_score")
    assert (bias["group_a"], bias["group_b"]) == ("", "") and "3 group pairs" in bias["method"]
    assert len(findings[findings["metric"] == "fill_divergence"]) == 3


def test_one_group_yields_no_comparisons() -> None:
    tables = make_tables(groups={"only": ["x", "y"]})
    findings = compute_findings(*tables, seed=0, n_resamples=FAST)
    assert findings.empty and tuple(findings.columns) == FINDINGS_COLUMNS


def test_one_term_per_group_and_a_single_template() -> None:
    tables = make_tables(groups={"man": ["man"], "woman": ["woman"]}, n_templates=1)
    findings = compute_findings(*tables, seed=0, n_resamples=FAST)
    gap = row(findings, "logprob_gap", "nurse")
    assert gap["n_units"] == 1 and np.isfinite(gap["effect"])
    assert np.isnan(gap["ci_low"]) and np.isnan(gap["p_value"]) and not gap["significant"]
    assert "n=1 template(s) with both groups: tests undefined" in gap["method"]
    jsd = row(findings, "fill_divergence")
    assert np.isnan(jsd["p_value"]) and "one term per group" in jsd["method"]


def test_template_without_slot_is_ignored() -> None:
    items, targets, fills = make_tables(groups=TWO, n_templates=3)
    extra = pd.DataFrame(
        [
            {
                "item_id": 999,
                "probe_set": "toy",
                "template_id": 3,
                "template": "[MASK].",
                "group": "",
                "term": "",
                "term_index": -1,
                "text": "[MASK].",
                "prior_text": "[MASK].",
            }
        ]
    )
    extra_t = pd.DataFrame(
        [{"item_id": 999, "target": "nurse", "n_pieces": 1, "logprob": -1.0, "term_logprob": -1.0,
          "term_prior_logprob": -1.0}]
    )
    with_slotless = compute_findings(
        pd.concat([items, extra]), pd.concat([targets, extra_t]), fills, seed=0, n_resamples=FAST
    )
    pd.testing.assert_frame_equal(
        with_slotless, compute_findings(items, targets, fills, seed=0, n_resamples=FAST)
    )


def test_non_finite_log_probs_drop_their_unit() -> None:
    items, targets, fills = make_tables(groups=TWO, gaps={"nurse": 1.0})
    first_nurse = targets.index[(targets["target"] == "nurse") & (targets["item_id"] == 0)][0]
    targets.loc[first_nurse, "logprob"] = -np.inf
    second = targets.index[(targets["target"] == "clerk") & (targets["item_id"] == 7)][0]
    targets.loc[second, "term_prior_logprob"] = np.nan
    findings = compute_findings(items, targets, fills, seed=0, n_resamples=FAST)
    nurse = row(findings, "logprob_gap", "nurse")
    # the crossed analysis drops the item, not its template
    assert nurse["n_units"] == 12 and "dropped 1 non-finite" in nurse["method"]
    assert row(findings, "logprob_gap", "clerk")["n_units"] == 12
    assert row(findings, "association_gap", "clerk")["n_units"] == 12
    assert "dropped 1 non-finite" in row(findings, "association_gap", "clerk")["method"]
    assert np.isfinite(row(findings, "bias_score")["effect"])


def test_template_term_pair_units() -> None:
    tables = make_tables(groups=TWO, gaps={"nurse": 1.0}, n_templates=8)
    findings = compute_findings(*tables, seed=0, n_resamples=FAST, unit="template_term_pair")
    nurse = row(findings, "logprob_gap", "nurse")
    assert nurse["n_units"] == 24 and "units=template x term pairs" in nurse["method"]
    assert "exact, n=8" in nurse["method"] and "clustered by template (24 pairs in 8 templates)" in nurse["method"]
    assert nurse["effect"] == pytest.approx(
        row(compute_findings(*tables, seed=0, n_resamples=FAST), "logprob_gap", "nurse")["effect"]
    )


def test_empty_targets_and_fills() -> None:
    items, targets, fills = make_tables(groups=TWO, n_templates=4)
    only_fills = compute_findings(items, targets.iloc[0:0], fills, seed=0, n_resamples=FAST)
    assert set(only_fills["metric"]) == {"fill_divergence", "disco"}
    only_targets = compute_findings(items, targets, fills.iloc[0:0], seed=0, n_resamples=FAST)
    assert "fill_divergence" not in set(only_targets["metric"])
    assert compute_findings(items, pd.DataFrame(), pd.DataFrame(), seed=0).empty


def test_bad_inputs_raise_audit_error() -> None:
    items, targets, fills = make_tables(groups=TWO, n_templates=2)
    with pytest.raises(AuditError, match="missing column"):
        compute_findings(items.drop(columns="group"), targets, fills)
    with pytest.raises(AuditError, match="not in items"):
        compute_findings(items[items["item_id"] > 0], targets, fills)
    with pytest.raises(AuditError, match="duplicate"):
        compute_findings(items, pd.concat([targets, targets.iloc[:1]]), fills)
    with pytest.raises(AuditError, match="alpha"):
        compute_findings(items, targets, fills, alpha=5)
    with pytest.raises(AuditError, match="unit"):
        compute_findings(items, targets, fills, unit="term")
    with pytest.raises(AuditError, match="seed"):
        compute_findings(items, targets, fills, seed=-1)


# ---------------------------------------------------------------------------------------- summarise


def test_summarise_bias_also_after_a_csv_round_trip(planted) -> None:
    _, findings = planted
    summary = summarise_bias(findings)
    toy = summary["toy"]
    assert toy["bias_score"] == row(findings, "bias_score")["effect"]
    assert toy["share_significant"] == pytest.approx(2 / 3)
    assert toy["top_targets"] == {"female": ["nurse"], "male": ["engineer"]}
    assert toy["n_targets"] == 3
    buffer = io.StringIO()
    findings.to_csv(buffer, index=False)
    buffer.seek(0)
    text_columns = {c: str for c in ("probe_set", "metric", "target", "group_a", "group_b")}
    read_back = pd.read_csv(buffer, dtype=text_columns)
    again = summarise_bias(read_back)
    assert again["toy"]["top_targets"] == toy["top_targets"]
    assert again["toy"]["bias_score"] == pytest.approx(toy["bias_score"])


# ------------------------------------------------------------------------------ reproducibility


_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_metrics import TWO, make_tables
from albert_audit.metrics import compute_findings
groups = {{"a": ["a1", "a2"], "b": ["b1"], "c": ["c1", "c2"]}}
findings = compute_findings(*make_tables(groups=groups, n_templates=14, gaps={{"nurse": 0.5}}), seed=5,
                            n_resamples=500)
sys.stdout.write(findings.to_csv(index=False))
"""


def test_same_results_across_processes_and_hash_seeds() -> None:
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT.format(tests=str(REPO / "tests"))],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") > 10


# ------------------------------------------------------------------------------ guarded rules


SIX = ("nurse", "engineer", "clerk", "pilot", "baker", "judge")


@pytest.mark.parametrize("alpha", [0.05, 0.025])
def test_significant_is_q_at_most_alpha_not_p(alpha: float) -> None:
    tables = make_tables(groups=TWO, targets=SIX, gaps={"nurse": 0.3, "pilot": 0.25}, seed=2)
    findings = compute_findings(*tables, seed=0, n_resamples=500, alpha=alpha)
    p, q = findings["p_value"], findings["q_value"]
    assert ((p <= alpha) & (q > alpha)).any()  # rows that p alone would call significant
    assert ((q > 0.025) & (q <= 0.05)).any()  # rows that only alpha = 0.05 calls significant
    assert (findings["significant"] == (q <= alpha)).all()
    signed = findings["metric"].isin(registry.signed_ids())
    assert ((findings["direction"] != "none") == (findings["significant"] & signed)).all()
    gaps = findings[signed & findings["significant"]]
    assert (gaps["direction"] == np.where(gaps["effect"] > 0, "a>b", "b>a")).all()


def test_association_gap_subtracts_the_prior() -> None:
    items, targets, fills = make_tables(groups=TWO, gaps={"nurse": 1.0})
    female = targets["item_id"].isin(items.loc[items["group"] == "female", "item_id"])
    targets.loc[female, "term_prior_logprob"] += 0.4  # group a's terms' prior rises by 0.4 nats
    findings = compute_findings(items, targets, fills.iloc[0:0], seed=0, n_resamples=200)
    for target in ("nurse", "engineer", "clerk"):
        logprob = row(findings, "logprob_gap", target)["effect"]
        assert row(findings, "association_gap", target)["effect"] == pytest.approx(logprob - 0.4, abs=1e-12)


def test_disco_reads_the_top_three_fills() -> None:
    """One template, 2 + 2 terms: rank-3 fills differ by group (token w for a, v for b); ranks 1-2 agree."""
    items = pd.DataFrame({"item_id": range(4), "probe_set": "hand", "template_id": 0, "template": "",
                          "group": ["a", "a", "b", "b"], "term": ["a1", "a2", "b1", "b2"], "term_index": [0, 1, 0, 1],
                          "text": "", "prior_text": ""})
    rows = []
    for item in range(4):
        third = "w" if item < 2 else "v"
        rows += [(item, 1, "x", 0.5), (item, 2, "y", 0.3), (item, 3, third, 0.1), (item, 4, "z", 0.05)]
    fills = pd.DataFrame(rows, columns=["item_id", "rank", "token", "prob"])
    fills["token_id"] = fills["token"].map({"x": 1, "y": 2, "w": 3, "v": 4, "z": 5})
    fills["logprob"] = np.log(fills["prob"])
    targets = pd.DataFrame(columns=["item_id", "target", "n_pieces", "logprob", "term_logprob", "term_prior_logprob"])
    findings = compute_findings(items, targets, fills, seed=0, n_resamples=200)
    # w: 2 of 2 a-terms vs 0 of 2 b-terms: chi2 = 4 > 3.84; v likewise; x, y: in every term; z: rank 4.
    # Null: that labelling and its swap count 2, the 4 mixed ones 0 (mean 2/3).
    disco = row(findings, "disco")
    assert disco["effect"] == pytest.approx(2.0 - 2 / 3) and "raw mean over templates 2" in disco["method"]
