"""The interaction metric of crossed probe sets (factors: race x gender): planted vs absent interaction,
the contrast against a direct computation, its inference, and the factors key of the probe format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from albert_audit.errors import AuditError
from albert_audit.library import resolve_probe_arg
from albert_audit.metrics import compute_findings
from albert_audit.probeset import load_probe_set
from albert_audit.probeset.expand import expand_items
from tests.conftest import write_probe_file
from tests.test_metrics import make_tables

FAST = 400
CELLS = {("black", "female"): "black_female", ("black", "male"): "black_male",
         ("white", "female"): "white_female", ("white", "male"): "white_male"}
GROUPS = {g: [f"{g}{i}" for i in range(5)] for g in CELLS.values()}


def crossed_tables(*, interaction: float, race: float = 0.8, gender: float = 0.6, seed: int = 0, noise: float = 0.2,
                   n_terms: int = 5) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A 2 x 2 crossed set: "angry" gets a race and a gender main effect, plus ``interaction`` nats in Black
    women only; "calm" gets nothing."""
    groups = {g: terms[:n_terms] if g == "black_female" else terms for g, terms in GROUPS.items()}
    items, targets, fills = make_tables(groups=groups, targets=("angry", "calm"), noise=noise, seed=seed,
                                        n_templates=10)
    levels = {g: (r, s) for (r, s), g in CELLS.items()}
    items["group_factors"] = items["group"].map(lambda g: f"race={levels[g][0]};gender={levels[g][1]}")
    group = targets["item_id"].map(items.set_index("item_id")["group"])
    angry = targets["target"] == "angry"
    add = (group.str.startswith("black") * race + group.str.endswith("female") * gender
           + (group == "black_female") * interaction)
    targets.loc[angry, "logprob"] += add[angry]
    return items, targets, fills


def _rows(findings: pd.DataFrame, target: str) -> pd.DataFrame:
    return findings[(findings["metric"] == "interaction") & (findings["target"] == target)]


def test_planted_interaction_is_found_and_equals_the_difference_of_gaps():
    items, targets, fills = crossed_tables(interaction=1.2)
    findings = compute_findings(items, targets, fills, seed=1, n_resamples=FAST)
    row = _rows(findings, "angry").iloc[0]
    assert (row["group_a"], row["group_b"]) == ("black (female - male)", "white (female - male)")
    # direct: per template, the four groups' means over terms, then the difference of differences
    joined = targets.merge(items[["item_id", "template_id", "group"]], on="item_id")
    cell = joined[joined["target"] == "angry"].groupby(["template_id", "group"])["logprob"].mean().unstack()
    direct = ((cell["black_female"] - cell["black_male"]) - (cell["white_female"] - cell["white_male"])).mean()
    assert row["effect"] == pytest.approx(direct, abs=1e-9)
    assert row["effect"] == pytest.approx(1.2, abs=0.2)
    assert row["verdict"] == "material" and row["scope"] == "group" and row["direction"] == "a>b"
    assert "term position" in row["method"] and "crossed t" in row["method"]
    assert row["ci_low"] > np.log(1.25) and row["ratio"] == pytest.approx(np.exp(row["effect"]))


def test_no_interaction_beyond_two_main_effects():
    items, targets, fills = crossed_tables(interaction=0.0, race=1.5, gender=1.0)
    findings = compute_findings(items, targets, fills, seed=1, n_resamples=FAST)
    for target in ("angry", "calm"):
        row = _rows(findings, target).iloc[0]
        assert abs(row["effect"]) < 0.15 and row["ci_low"] < 0 < row["ci_high"]
        assert row["verdict"] == "negligible"  # equivalence shown: within the 1.25x margin
    # the main effects are there (logprob_gap sees them) but leave no interaction
    gap = findings[(findings["metric"] == "logprob_gap") & (findings["target"] == "angry")
                   & (findings["group_a"] == "black_female") & (findings["group_b"] == "white_male")]
    assert gap["effect"].iloc[0] == pytest.approx(2.5, abs=0.2)


def test_unequal_term_counts_fall_back_to_group_means_and_options_apply():
    items, targets, fills = crossed_tables(interaction=1.0, n_terms=3)
    findings = compute_findings(items, targets, fills, seed=1, n_resamples=FAST, alpha=0.025, margin=0.5)
    row = _rows(findings, "angry").iloc[0]
    assert "per-template group means" in row["method"] and row["scope"] == "terms"
    assert row["margin"] == 0.5 and "margin 0.5 nats" in row["method"]
    narrow = _rows(compute_findings(items, targets, fills, seed=1, n_resamples=FAST), "angry").iloc[0]
    assert row["ci_low"] < narrow["ci_low"] and row["ci_high"] > narrow["ci_high"]


def test_sets_without_factors_get_no_interaction_rows():
    items, targets, fills = crossed_tables(interaction=1.0)
    findings = compute_findings(items.drop(columns="group_factors"), targets, fills, seed=1, n_resamples=FAST)
    assert "interaction" not in set(findings["metric"])


def test_four_races_by_two_genders_give_one_row_per_race_pair():
    ps = load_probe_set(resolve_probe_arg("intersectional"))
    assert dict(ps.factors) == {"race": ("black", "white", "asian", "hispanic"), "gender": ("women", "men")}
    items = expand_items([ps])
    assert set(items.loc[items["group"] == "asian_men", "group_factors"]) == {"race=asian;gender=men"}
    rng = np.random.default_rng(0)
    slot = items[items["group"] != ""]
    targets = pd.DataFrame({"item_id": np.repeat(slot["item_id"].to_numpy(), 2),
                            "target": ["angry", "calm"] * len(slot)})
    targets["logprob"] = rng.normal(-5, 1, len(targets))
    targets["term_logprob"] = targets["logprob"]
    targets["term_prior_logprob"] = -3.0
    fills = pd.DataFrame({"item_id": slot["item_id"], "rank": 1, "token": "x", "prob": 0.5})
    findings = compute_findings(items, targets, fills, seed=0, n_resamples=200)
    rows = _rows(findings, "angry")
    assert len(rows) == 6 and set(rows["group_a"]) == {"black (women - men)", "white (women - men)",
                                                       "asian (women - men)"}


@pytest.mark.parametrize(("factors", "problem"), [
    ("factors: {race: [black, white]}", "mapping of 2 factor names"),
    ("factors: {race: [black], gender: [female, male]}", "at least 2 distinct levels"),
    ("factors: {race: [black, white, asian], gender: [female, male]}", "no group for asian_female"),
    ("factors: {race: [black, white], gender: [female, mael]}", "match no combination"),
    ("factors: {race: [black, black_f], gender: [female, f_female]}", "'black_f_female' stands for two combinations"),
])
def test_factors_key_is_validated(tmp_path, factors, problem):
    path = write_probe_file(tmp_path, "crossed", f"""
schema_version: 1
name: crossed
description: d
category: c
groups:
  black_female: [a]
  black_male: [b]
  white_female: [c]
  white_male: [d]
{factors}
templates: ["The <group> is [MASK]."]
targets: [x, y]
""")
    with pytest.raises(AuditError, match=problem):
        load_probe_set(path)


def test_report_shows_the_interaction_part(tmp_path):
    from albert_audit.report.context import build_context
    from albert_audit.report.render import render_report
    from albert_audit.results import read_run
    from tests.test_report import parse
    from tests.test_report_alignment import write_scored_run

    items, targets, fills = crossed_tables(interaction=-1.2)
    findings = compute_findings(items, targets, fills, seed=1, n_resamples=FAST)
    run = write_scored_run(tmp_path / "run", items, targets, fills, findings)
    html = render_report(run).read_text(encoding="utf-8")
    assert parse(html).errors == []
    part = build_context(read_run(run, need_findings=True))["probe_sets"][0]["interaction"]
    assert part["n_rows"] == 2 and part["n_targets"] == 2 and part["verdicts"]["material"] == 1
    assert part["contrasts"] == ["black (female - male) vs white (female - male)"]
    effect = _rows(findings, "angry").iloc[0]["effect"]
    text = part["top"][0]["text"]
    # a negative contrast names the level with the larger gap first
    assert text.startswith(f"'angry': the female − male gap is {abs(effect):.2f} nats larger among white than "
                           "among black (ratio of the two probability ratios")
    assert "material: beyond the 1.25x margin; generalises to new terms" in text
    assert "Interaction beyond the two main effects" in html
    assert str(escape(text)) in html


def test_interaction_sentence_for_an_undefined_row():
    from albert_audit.report.interaction_section import interaction_sentence

    row = {"target": "x", "group_a": "a1 (b1 - b2)", "group_b": "a2 (b1 - b2)", "effect": float("nan"),
           "ci_low": float("nan"), "ci_high": float("nan"), "q_value": float("nan"), "verdict": "inconclusive"}
    assert interaction_sentence(row, alpha=0.05) == "'x': the b1 − b2 gap among a1 vs among a2: undefined"
