"""compare.compute_deltas on synthetic runs (no model): the numbers, the interval level and the classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from albert_audit import stats
from albert_audit.compare import RunScores, classify_changes, compute_deltas
from albert_audit.metrics import compute_findings
from tests.oracles import template_cells_pandas
from tests.test_metrics import TWO, make_tables

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
        np.testing.assert_array_equal(joined[column], joined["effect"])  # the same unit, the same sums
    np.testing.assert_allclose(deltas["delta"], deltas["candidate_effect"] - deltas["base_effect"], atol=1e-12)


@pytest.mark.parametrize("alpha", [0.05, 0.025])
def test_signed_delta_interval_is_the_expanded_bootstrap(runs, alpha: float) -> None:
    deltas = _deltas(runs, alpha)
    cells = {run.label: template_cells_pandas(run.items, run.targets)["logprob"] for run in runs}
    gap = {label: (c.loc[("toy", "nurse", "female")] - c.loc[("toy", "nurse", "male")]).to_numpy()
           for label, c in cells.items()}
    d = (gap["cand"] - gap["base"])[None, :]
    rng = stats.rng_for(0, f"compare/toy/logprob_gap/bootstrap/n={d.shape[1]}")
    low, high, _ = stats.bootstrap_ci_rows(d, rng=rng, n_resamples=N, confidence=1 - alpha, expand=True)
    got = deltas[(deltas["metric"] == "logprob_gap") & (deltas["target"] == "nurse")].iloc[0]
    assert got["delta"] == pytest.approx(d.mean(), rel=1e-12)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((low[0], high[0]), rel=1e-9)
    plain = stats.bootstrap_ci_rows(d, rng=stats.rng_for(0, f"compare/toy/logprob_gap/bootstrap/n={d.shape[1]}"),
                                    n_resamples=N, confidence=1 - alpha)
    assert plain[0][0] > low[0] and plain[1][0] < high[0]  # the expansion matters here


def test_intervals_widen_as_alpha_shrinks(runs) -> None:
    at_05, at_025 = _deltas(runs, 0.05), _deltas(runs, 0.025)
    pd.testing.assert_series_equal(at_05["p_value"], at_025["p_value"])
    moving = at_05["ci_low"] < at_05["ci_high"]
    assert moving.sum() == 9
    assert (at_025["ci_low"] < at_05["ci_low"]).all() and (at_025["ci_high"] > at_05["ci_high"]).all()


def test_changes_are_classed_at_alpha(runs) -> None:
    at_05, at_025 = _deltas(runs, 0.05), _deltas(runs, 0.025)
    between = (at_05["q_value"] > 0.025) & (at_05["q_value"] <= 0.05)
    assert between.any() and (at_05.loc[between, "change"] == "amplified").all()  # the data bite
    assert (at_025.loc[between, "change"] == "unchanged").all()
    for table, alpha in ((at_05, 0.05), (at_025, 0.025)):
        assert ((table["change"] != "unchanged") <= (table["q_value"] <= alpha)).all()
        nurse = table[(table["target"] == "nurse")]
        assert (nurse["change"] == "amplified").all()


def test_classify_changes_uses_alpha() -> None:
    args = dict(base_effect=[1.0, 1.0, 0.1], candidate_effect=[2.0, 0.5, 1.5], q_value=[0.03, 0.03, 0.03],
                base_significant=[True, True, False], candidate_significant=[True, True, True])
    assert classify_changes(**args, alpha=0.05) == ["amplified", "reduced", "newly_significant"]
    assert classify_changes(**args, alpha=0.025) == ["unchanged"] * 3


def test_q_values_are_bh_within_candidate_probe_set_and_metric(runs) -> None:
    again = RunScores("again", runs[1].items, runs[1].targets, runs[1].findings)
    deltas = compute_deltas(runs[0], [runs[1], again], seed=0, alpha=0.05, n_resamples=N)
    families = deltas.groupby(["candidate", "probe_set", "metric"])
    assert families.ngroups == 6  # 2 candidates x (logprob_gap, association_gap, bias_score)
    for _, family in families:
        np.testing.assert_allclose(family["q_value"], stats.benjamini_hochberg(family["p_value"].to_numpy()))
    one = _deltas(runs, 0.05)  # adding a candidate never changes another candidate's q-values
    np.testing.assert_array_equal(one["q_value"], deltas.loc[deltas["candidate"] == "cand", "q_value"])
