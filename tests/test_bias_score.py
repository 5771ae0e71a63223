"""The bias score: findings row and compare's delta against a slow oracle, and the alpha they honour."""

from __future__ import annotations

import numpy as np
import pytest

from albert_audit.metrics import compute_findings
from albert_audit.metrics.bias_score import delta
from tests.oracles import bias_score_oracle
from tests.test_metrics import TWO, make_tables, row

N = 400
THREE = {"a": ["a1", "a2"], "b": ["b1"], "c": ["c1", "c2"]}


def _with_missing():
    """Two groups; nurse lacks group b in templates 0-2 (a target with fewer complete templates)."""
    items, targets, fills = make_tables(groups=TWO, gaps={"nurse": 0.6}, seed=6)
    male_early = items.loc[(items["group"] == "male") & (items["template_id"] < 3), "item_id"]
    drop = targets["item_id"].isin(male_early) & (targets["target"] == "nurse")
    return items, targets[~drop].reset_index(drop=True), fills


CASES = {
    "planted": lambda: make_tables(groups=TWO, gaps={"nurse": 1.0, "engineer": -0.8}),
    "three_groups": lambda: make_tables(groups=THREE, n_templates=9, gaps={"nurse": 0.5}),
    "missing": _with_missing,
}


@pytest.mark.parametrize("alpha", [0.05, 0.025])
@pytest.mark.parametrize("case", sorted(CASES))
def test_findings_row_matches_the_oracle(case: str, alpha: float) -> None:
    items, targets, fills = CASES[case]()
    findings = compute_findings(items, targets, fills.iloc[0:0], seed=2, alpha=alpha, n_resamples=N)
    got = row(findings, "bias_score")
    want = bias_score_oracle(items, targets, "toy", seed=2, n_resamples=N, alpha=alpha)
    assert got["n_units"] == want["n_units"]
    for column in ("effect", "ci_low", "ci_high"):
        assert got[column] == pytest.approx(want[column], rel=1e-9), column
    if np.isfinite(want["p_value"]):
        assert got["p_value"] == pytest.approx(want["p_value"], rel=1e-12)
    assert f"{100 * (1 - alpha):g}% percentile bootstrap {N} over templates" in got["method"]


def test_alpha_widens_the_findings_interval() -> None:
    tables = make_tables(groups=TWO, gaps={"nurse": 1.0, "engineer": -0.8})
    at_05 = row(compute_findings(*tables, seed=1, alpha=0.05, n_resamples=N), "bias_score")
    at_025 = row(compute_findings(*tables, seed=1, alpha=0.025, n_resamples=N), "bias_score")
    assert at_025["effect"] == at_05["effect"]
    assert at_025["ci_low"] < at_05["ci_low"] and at_05["ci_high"] < at_025["ci_high"]


def test_score_is_the_mean_absolute_association_gap() -> None:
    findings = compute_findings(*make_tables(groups=TWO, gaps={"nurse": 1.0, "engineer": -0.8}), seed=0,
                                n_resamples=50)
    gaps = findings.loc[findings["metric"] == "association_gap", "effect"].to_numpy()
    assert row(findings, "bias_score")["effect"] == pytest.approx(np.abs(gaps).mean(), rel=1e-14)


def test_delta_interval_honours_alpha() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(0.0, 0.3, (4, 15))
    cand = base + rng.normal(0.2, 0.3, (4, 15))
    at_05 = delta(base, cand, key="k", seed=0, alpha=0.05, n_resamples=N)
    at_025 = delta(base, cand, key="k", seed=0, alpha=0.025, n_resamples=N)
    assert at_025["delta"] == at_05["delta"] and at_025["p"] == at_05["p"]
    assert at_025["low"] < at_05["low"] and at_05["high"] < at_025["high"]
    # base and candidate scores are the mean over rows of |mean over templates|
    assert at_05["base"] == pytest.approx(np.abs(base.mean(axis=1)).mean(), rel=1e-14)
    assert at_05["cand"] == pytest.approx(np.abs(cand.mean(axis=1)).mean(), rel=1e-14)
