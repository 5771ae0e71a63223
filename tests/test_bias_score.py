"""The bias score: findings row and compare's delta against slow oracles, coverage at truth 0 and > 0, the
alpha they honour, its verdict, and the same estimator in compare (self-comparison exactly 0)."""

from __future__ import annotations

import math

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
    want = bias_score_oracle(items, targets, "toy", alpha=alpha)
    assert got["n_units"] == want["n_units"]
    for column in ("effect", "ci_low", "ci_high", "p_value"):
        assert got[column] == pytest.approx(want[column], rel=1e-9, abs=1e-12), column
    assert "RMS gap over" in got["method"] and "bias targets: " in got["method"] and "exact" in got["method"]
    assert got["margin"] == pytest.approx(math.log(1.25)) and got["verdict"] != ""


def test_alpha_widens_the_findings_interval() -> None:
    tables = make_tables(groups=TWO, gaps={"nurse": 1.0, "engineer": -0.8})
    at_05 = row(compute_findings(*tables, seed=1, alpha=0.05, n_resamples=N), "bias_score")
    at_025 = row(compute_findings(*tables, seed=1, alpha=0.025, n_resamples=N), "bias_score")
    assert at_025["effect"] == at_05["effect"] and at_025["p_value"] == at_05["p_value"]
    assert at_025["ci_low"] < at_05["ci_low"] and at_05["ci_high"] < at_025["ci_high"]


def test_score_is_the_debiased_rms_of_the_association_gaps() -> None:
    """Tiny noise: the debiased RMS is the RMS of the targets' gaps; the naive mean |gap| is in the method."""
    findings = compute_findings(*make_tables(groups=TWO, gaps={"nurse": 1.0, "engineer": -0.8}, noise=0.01),
                                seed=0, n_resamples=50)
    gaps = findings.loc[findings["metric"] == "association_gap", "effect"].to_numpy()
    bias = row(findings, "bias_score")
    assert bias["effect"] == pytest.approx(math.sqrt(np.mean(gaps**2)), abs=0.01)
    assert f"naive mean |gap| {np.abs(gaps).mean():.4g}" in bias["method"]
    assert bias["verdict"] == "material" and bias["ci_low"] > math.log(1.25)


# ---------------------------------------------------------------------------- coverage through the findings


def _coverage(truth: float, reps: int, seed: int) -> tuple[int, int, list[str]]:
    """(intervals excluding the truth, excluding 0, verdicts) of ``reps`` simulated probe sets through
    compute_findings: 8 targets, two groups of 3 terms, 10 templates, the targets' true association gaps
    +-truth (RMS = truth), noise sd 0.3 per item."""
    targets = tuple(f"t{i}" for i in range(8))
    missed = excluded_zero = 0
    verdicts = []
    for r in range(reps):
        gaps = {t: truth * (1 if i % 2 else -1) for i, t in enumerate(targets)}
        tables = make_tables(groups=TWO, targets=targets, gaps=gaps, n_templates=10, seed=seed + r)
        bias = row(compute_findings(*tables, seed=r, n_resamples=50), "bias_score")
        missed += not (bias["ci_low"] <= truth <= bias["ci_high"])
        excluded_zero += bias["ci_low"] > 0
        verdicts.append(bias["verdict"])
    return missed, excluded_zero, verdicts


def test_interval_covers_a_true_zero() -> None:
    missed, excluded_zero, verdicts = _coverage(0.0, 30, seed=100)
    assert missed == excluded_zero <= 3  # P(exclude 0) <= alpha / 2: 0.75 expected of 30
    assert "material" not in verdicts and verdicts.count("negligible") >= 25


def test_interval_covers_a_positive_truth() -> None:
    missed, excluded_zero, verdicts = _coverage(0.5, 30, seed=200)
    assert missed <= 5  # nominal 95 %: 1.5 expected of 30
    assert excluded_zero >= 27 and verdicts.count("material") >= 15  # truth 0.5 nats > the 0.223 margin


# ------------------------------------------------------------------------------------------ compare's delta


def test_delta_matches_the_findings_estimator_and_honours_alpha() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(0.0, 0.3, (4, 15))
    cand = base + rng.normal(0.2, 0.3, (4, 15))
    at_05 = delta(base, cand, key="k", seed=0, alpha=0.05, n_resamples=N)
    at_025 = delta(base, cand, key="k", seed=0, alpha=0.025, n_resamples=N)
    assert at_025["delta"] == at_05["delta"] and at_025["p"] == at_05["p"]
    assert at_025["low"] < at_05["low"] and at_05["high"] < at_025["high"]

    def debiased(d: np.ndarray) -> float:
        n = d.shape[1]
        u = np.mean([(r.sum() ** 2 - (r**2).sum()) / (n * (n - 1)) for r in d])
        return math.sqrt(max(u, 0.0))

    assert at_05["base"] == pytest.approx(debiased(base), rel=1e-12)
    assert at_05["cand"] == pytest.approx(debiased(cand), rel=1e-12)
    assert at_05["delta"] == pytest.approx(debiased(cand) - debiased(base), rel=1e-12)
    # 15 templates > 12: Monte Carlo swaps, p >= 1 / (N + 1)
    assert at_05["p"] >= 1 / (N + 1) and "Monte Carlo" in at_05["method"]


def test_delta_jackknife_interval_by_hand() -> None:
    rng = np.random.default_rng(8)
    base = rng.normal(0.1, 0.3, (5, 9))
    cand = base + rng.normal(0.3, 0.2, (5, 9))
    got = delta(base, cand, key="k", seed=0, alpha=0.1, n_resamples=N, margin=0.05)

    def score(d: np.ndarray) -> float:
        n = d.shape[1]
        return math.sqrt(max(np.mean((d.sum(axis=1) ** 2 - (d**2).sum(axis=1)) / (n * (n - 1))), 0.0))

    jack = np.array([score(np.delete(cand, j, axis=1)) - score(np.delete(base, j, axis=1)) for j in range(9)])
    se = math.sqrt(8 / 9 * np.sum((jack - jack.mean()) ** 2))
    import scipy.stats

    t = scipy.stats.t.ppf(0.95, 8)
    assert (got["low"], got["high"]) == pytest.approx((got["delta"] - t * se, got["delta"] + t * se), rel=1e-9)
    assert got["p_material"] == pytest.approx(2 * scipy.stats.t.sf((got["delta"] - 0.05) / se, 8), rel=1e-9)
    assert "exact, 256 patterns" in got["method"]


def test_compare_uses_the_findings_estimator_controls_left_out_and_self_delta_is_zero() -> None:
    from albert_audit.model_deltas import RunScores, compute_deltas

    items, targets, fills = make_tables(groups=TWO, targets=("nurse", "engineer", "clerk", "pilot"),
                                        gaps={"nurse": 1.5, "pilot": 0.4})
    targets["control"] = targets["target"] == "nurse"  # a definitional control: out of both scores
    findings = compute_findings(items, targets, fills.iloc[0:0], seed=0, n_resamples=50)
    base = RunScores("base", items, targets, findings)
    deltas = compute_deltas(base, [RunScores("same", items, targets.copy(), findings)], seed=0, n_resamples=50,
                            alpha=0.025)
    score = deltas[deltas["metric"] == "bias_score"].iloc[0]
    assert score["base_effect"] == pytest.approx(row(findings, "bias_score")["effect"], rel=1e-12)
    assert (score["delta"], score["ci_low"], score["ci_high"], score["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    assert score["delta_verdict"] == "negligible" and score["change"] == "negligible"
