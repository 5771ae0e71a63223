"""model_deltas.compute_deltas on synthetic runs (no model): the numbers, the interval level, the delta verdicts and
the change classes (self-comparison, small noise, a real change, delta_margin)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from albert_audit import stats
from albert_audit.errors import AuditError
from albert_audit.inference.crossed import crossed_delta
from albert_audit.metrics import compute_findings
from albert_audit.model_deltas import CHANGES, MATERIAL_CHANGES, RunScores, classify_changes, compute_deltas
from albert_audit.units import join_scores, term_cube
from tests.test_metrics import TWO, make_tables
from tests.verdict_tables import simulated_tables

N = 300
FOUR = ("nurse", "engineer", "clerk", "pilot")


@pytest.fixture(scope="module")
def runs() -> tuple[RunScores, RunScores]:
    """A base run and a candidate that leans further towards group a for nurse (0.3 nats) and pilot (0.08)."""
    items, targets, fills = make_tables(groups=TWO, targets=FOUR, gaps={"nurse": 0.8, "pilot": 0.4})
    female = targets["item_id"].isin(items.loc[items["group"] == "female", "item_id"])
    cand = targets.copy()
    cand.loc[female & (cand["target"] == "nurse"), "logprob"] += 0.3
    cand.loc[female & (cand["target"] == "pilot"), "logprob"] += 0.08
    cand["logprob"] += np.random.default_rng(1).normal(0, 0.15, len(cand))
    cand["term_logprob"] = cand["logprob"]  # as make_tables builds them: the association moves with the log-prob
    no_fills = fills.iloc[0:0]
    base = RunScores("base", items, targets, compute_findings(items, targets, no_fills, seed=0, n_resamples=N))
    other = RunScores("cand", items, cand, compute_findings(items, cand, no_fills, seed=0, n_resamples=N))
    return base, other


def _deltas(runs: tuple[RunScores, RunScores], alpha: float) -> pd.DataFrame:
    return compute_deltas(runs[0], [runs[1]], seed=0, alpha=alpha, n_resamples=N)


def test_base_effect_is_the_findings_effect(runs) -> None:
    deltas = _deltas(runs, 0.05)
    keys = ["probe_set", "metric", "target", "group_a", "group_b"]
    for scores, column in zip(runs, ("base_effect", "candidate_effect"), strict=True):
        joined = deltas.merge(scores.findings, on=keys)
        assert len(joined) == len(deltas) == 9
        np.testing.assert_allclose(joined[column], joined["effect"], rtol=0, atol=1e-12)  # the same items
    np.testing.assert_allclose(deltas["delta"], deltas["candidate_effect"] - deltas["base_effect"], atol=1e-12)


@pytest.mark.parametrize("alpha", [0.05, 0.025])
def test_signed_delta_is_the_crossed_delta_of_the_items(runs, alpha: float) -> None:
    deltas = _deltas(runs, alpha)
    cubes = [term_cube(join_scores(run.items, run.targets), ["female", "male"]) for run in runs]
    t = cubes[0].targets.index("nurse")
    base, cand = (c.values["logprob"][t : t + 1] for c in cubes)
    res = crossed_delta(base[:, 0], base[:, 1], cand[:, 0], cand[:, 1], rng=np.random.default_rng(0), alpha=alpha,
                        margin=math.log(1.1))
    got = deltas[(deltas["metric"] == "logprob_gap") & (deltas["target"] == "nurse")].iloc[0]
    assert got["delta"] == pytest.approx(res.effect[0], rel=1e-12)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((res.ci_low[0], res.ci_high[0]), rel=1e-9)
    assert got["p_value"] == pytest.approx(res.p_value[0]) and got["scope"] == res.scope[0] == "terms"
    assert got["p_material"] == pytest.approx(res.p_material[0])
    assert got["margin"] == pytest.approx(math.log(1.1))


def test_intervals_widen_as_alpha_shrinks(runs) -> None:
    at_05, at_025 = _deltas(runs, 0.05), _deltas(runs, 0.025)
    pd.testing.assert_series_equal(at_05["p_value"], at_025["p_value"])
    moving = at_05["ci_low"] < at_05["ci_high"]
    assert moving.sum() == 9
    assert (at_025["ci_low"] < at_05["ci_low"]).all() and (at_025["ci_high"] > at_05["ci_high"]).all()


def test_changes_are_classed_by_the_delta_verdict(runs) -> None:
    deltas = _deltas(runs, 0.05)
    nurse = deltas[deltas["target"] == "nurse"]
    assert (nurse["change"] == "amplified").all() and (nurse["delta_verdict"] == "material").all()
    material = deltas["change"].isin(MATERIAL_CHANGES)
    assert (deltas.loc[material, "delta_verdict"] == "material").all()
    assert (deltas.loc[deltas["delta_verdict"] == "negligible", "change"] == "negligible").all()
    # pilot moved by 0.08 nats, inside the delta margin (log 1.1): never a material change
    assert not deltas.loc[deltas["target"] == "pilot", "change"].isin(MATERIAL_CHANGES).any()
    assert set(deltas["change"]) <= set(CHANGES)


def test_delta_margin_overrides_the_default(runs) -> None:
    wide = compute_deltas(runs[0], [runs[1]], seed=0, alpha=0.025, n_resamples=N, delta_margin=0.5)
    assert np.allclose(wide["margin"], 0.5)
    # nurse grew by about 0.3 nats: material against log 1.1, not against 0.5 nats
    nurse = wide[wide["target"] == "nurse"]
    assert not nurse["change"].isin(MATERIAL_CHANGES).any()
    narrow = compute_deltas(runs[0], [runs[1]], seed=0, alpha=0.025, n_resamples=N, delta_margin=0.01)
    assert (narrow["p_material"] <= wide["p_material"]).all()
    with pytest.raises(AuditError, match="delta_margin"):
        compute_deltas(runs[0], [runs[1]], seed=0, n_resamples=N, delta_margin=-1.0)


def test_self_comparison_is_negligible_everywhere(runs) -> None:
    same = RunScores("same", runs[0].items, runs[0].targets, runs[0].findings)
    deltas = compute_deltas(runs[0], [same], seed=0, n_resamples=N)
    assert (deltas["delta"] == 0).all() and (deltas["change"] == "negligible").all()
    assert (deltas["delta_verdict"] == "negligible").all()


@pytest.fixture(scope="module")
def realistic_runs() -> tuple[RunScores, pd.DataFrame]:
    """A base with 40 null and 20 planted targets (6 terms per group: scope group) and its findings."""
    gaps = np.r_[np.zeros(40), np.full(10, 0.9), np.full(10, -0.9)]
    items, targets, fills = simulated_tables(7, gaps=gaps)
    return RunScores("base", items, targets, compute_findings(items, targets, fills, seed=0, n_resamples=N)), fills


@pytest.mark.parametrize("drift", [0.0, 0.02])
def test_small_noise_is_never_a_material_change(realistic_runs, drift: float) -> None:
    base, fills = realistic_runs
    cand_targets = base.targets.copy()
    cand_targets["logprob"] += np.random.default_rng(3).normal(0.0, 0.02, len(cand_targets))
    group_a = cand_targets["item_id"].isin(base.items.loc[base.items["group"] == "a", "item_id"])
    cand_targets.loc[group_a, "logprob"] += drift
    cand = RunScores("noisy", base.items, cand_targets,
                     compute_findings(base.items, cand_targets, fills, seed=0, n_resamples=N))
    deltas = compute_deltas(base, [cand], seed=0, n_resamples=N)
    assert not deltas["change"].isin(MATERIAL_CHANGES).any(), deltas["change"].value_counts().to_dict()
    signed = deltas[deltas["metric"] != "bias_score"]
    assert (signed["scope"] == "group").all()
    assert (signed["change"] == "negligible").mean() >= 0.9


def test_a_real_change_is_found_on_the_realistic_base(realistic_runs) -> None:
    base, fills = realistic_runs
    cand_targets = base.targets.copy()
    moved = cand_targets["target"].isin(["t000", "t001", "t002"]) & cand_targets["item_id"].isin(
        base.items.loc[base.items["group"] == "a", "item_id"])
    cand_targets.loc[moved, "logprob"] += 1.0
    cand = RunScores("moved", base.items, cand_targets,
                     compute_findings(base.items, cand_targets, fills, seed=0, n_resamples=N))
    deltas = compute_deltas(base, [cand], seed=0, n_resamples=N)
    gaps = deltas[deltas["metric"] == "logprob_gap"].set_index("target")
    for target in ("t000", "t001", "t002"):  # null in the base, +1 nat in the candidate
        assert gaps.loc[target, "delta_verdict"] == "material"
        assert gaps.loc[target, "change"] in ("emerged", "amplified"), gaps.loc[target].to_dict()
    assert not gaps.drop(index=["t000", "t001", "t002"])["change"].isin(MATERIAL_CHANGES).any()


def test_classify_changes_treats_a_missing_verdict_as_not_material() -> None:
    args = dict(base_effect=[1.0, 1.0, 0.1], candidate_effect=[2.0, 0.5, 1.5],
                delta_verdict=["material"] * 3, base_verdict=["", "", ""], candidate_verdict=["", "", "material"])
    assert classify_changes(**args) == ["amplified", "reduced", "emerged"]
    args["delta_verdict"] = ["below_margin", "negligible", "inconclusive"]
    assert classify_changes(**args) == ["inconclusive", "negligible", "inconclusive"]


def test_q_values_are_bh_within_candidate_probe_set_and_metric(runs) -> None:
    again = RunScores("again", runs[1].items, runs[1].targets, runs[1].findings)
    deltas = compute_deltas(runs[0], [runs[1], again], seed=0, alpha=0.05, n_resamples=N)
    families = deltas.groupby(["candidate", "probe_set", "metric"])
    assert families.ngroups == 6  # 2 candidates x (logprob_gap, association_gap, bias_score)
    for _, family in families:
        np.testing.assert_allclose(family["q_value"], stats.benjamini_hochberg(family["p_value"].to_numpy()))
    one = _deltas(runs, 0.05)  # adding a candidate never changes another candidate's q-values
    np.testing.assert_array_equal(one["q_value"], deltas.loc[deltas["candidate"] == "cand", "q_value"])
