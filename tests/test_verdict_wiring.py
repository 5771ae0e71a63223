"""Verdicts in the findings: crossed inference of the signed gaps end to end through compute_findings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from albert_audit import registry
from albert_audit.errors import AuditError
from albert_audit.inference.margin_verdicts import VERDICTS
from albert_audit.metrics import compute_findings
from tests.test_metrics import TWO, make_tables
from tests.verdict_tables import simulated_tables, tables_from_values

N = 200
N_NULL, N_PLANTED = 300, 40
GAPS = np.r_[np.zeros(N_NULL), np.full(N_PLANTED // 2, 1.2), np.full(N_PLANTED // 2, -1.2)]


@pytest.fixture(scope="module")
def realistic() -> pd.DataFrame:
    """The issue's realistic null (term effects sd 0.3 that persist across templates, 6 terms per group,
    12 templates, no group effect) for 300 targets, and 40 targets with a planted gap of +-1.2 nats."""
    items, targets, fills = simulated_tables(3, gaps=GAPS)
    findings = compute_findings(items, targets, fills, seed=0, n_resamples=N)
    return findings[findings["metric"] == "logprob_gap"].sort_values("target").reset_index(drop=True)


def test_realistic_null_is_not_called_material_or_significant(realistic) -> None:
    null = realistic.iloc[:N_NULL]
    assert (null["scope"] == "group").all()
    slack = 3 * math.sqrt(0.05 * 0.95 / N_NULL)
    # a templates-only test calls ~50 % of these targets significant (docs/inference.md)
    assert (null["p_value"] <= 0.05).mean() <= 0.05 + slack
    assert null["significant"].mean() <= 0.05 + slack
    assert (null["verdict"] == "material").mean() <= 0.05 + slack
    assert set(null["verdict"]) <= set(VERDICTS)


def test_planted_effects_are_material_with_their_sign(realistic) -> None:
    planted = realistic.iloc[N_NULL:]
    material = planted["verdict"] == "material"
    assert material.mean() >= 0.7
    signs = np.sign(planted["effect"].to_numpy())
    assert (signs[material.to_numpy()] == np.sign(GAPS[N_NULL:])[material.to_numpy()]).all()
    assert (planted.loc[material, "direction"] == np.where(GAPS[N_NULL:][material.to_numpy()] > 0, "a>b",
                                                           "b>a")).all()


def test_reviewer_columns(realistic) -> None:
    row = realistic.iloc[N_NULL]
    assert row["ratio"] == pytest.approx(math.exp(row["effect"]))
    assert (row["ratio_low"], row["ratio_high"]) == pytest.approx((math.exp(row["ci_low"]), math.exp(row["ci_high"])))
    assert row["margin"] == pytest.approx(math.log(1.25))
    assert row["pi_low"] < row["ci_low"] < row["effect"] < row["ci_high"] < row["pi_high"]
    assert 0.0 <= realistic["share_a_gt_b"].min() and realistic["share_a_gt_b"].max() <= 1.0
    assert realistic.iloc[N_NULL:N_NULL + 20]["share_a_gt_b"].mean() > 0.9  # planted +1.2: a > b almost always


def test_share_and_prediction_interval_by_hand() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 0.3, (1, 8, 5)) - 6, rng.normal(0, 0.3, (1, 8, 5)) - 6.2
    findings = compute_findings(*tables_from_values({"a": a, "b": b}), seed=0, n_resamples=N, alpha=0.025)
    row = findings[findings["metric"] == "logprob_gap"].iloc[0]
    d = a[0].mean(axis=1) - b[0].mean(axis=1)
    assert row["share_a_gt_b"] == pytest.approx((d > 0).mean())
    import scipy.stats

    half = scipy.stats.t.ppf(1 - 0.025 / 2, 7) * d.std(ddof=1) * math.sqrt(1 + 1 / 8)
    assert (row["pi_low"], row["pi_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert row["effect"] == pytest.approx(d.mean())


def test_scope_needs_five_terms_per_group() -> None:
    rng = np.random.default_rng(0)
    for n_terms, scope in ((4, "terms"), (5, "group")):
        values = {"a": rng.normal(-6, 0.3, (2, 8, n_terms)), "b": rng.normal(-6, 0.3, (2, 8, n_terms))}
        findings = compute_findings(*tables_from_values(values), seed=0, n_resamples=N)
        gaps = findings[findings["metric"].isin(["logprob_gap", "association_gap"])]
        assert (gaps["scope"] == scope).all(), n_terms
        shifts = findings[findings["metric"].isin(["group_shift", "gap_beyond_shift"])]
        assert (shifts["scope"] == "terms").all()  # templates-only inference: a claim about these terms
        assert gaps["method"].str.contains(f"scope={scope}").all()


def test_margin_override_changes_verdicts_alpha_too() -> None:
    # true gap 0.45: material against 0.1 nats far more often than against the default log 1.25
    gaps = np.full(60, 0.45)
    tables = simulated_tables(11, gaps=gaps, term_sd=0.1, noise_sd=0.1, template_group_sd=0.05, n_terms=8)
    default = compute_findings(*tables, seed=0, n_resamples=N)
    narrow = compute_findings(*tables, seed=0, n_resamples=N, margin=0.1, alpha=0.025)
    judged = [m for m in registry.metric_ids() if registry.metric(m).margin is not None]
    assert judged == ["logprob_gap", "association_gap", "group_shift", "gap_beyond_shift", "fill_divergence",
                      "disco", "bias_score", "interaction"]  # interaction: crossed sets only
    signed = default["metric"].isin(["logprob_gap", "association_gap"])
    assert np.allclose(default.loc[signed, "margin"], math.log(1.25))
    assert np.allclose(narrow.loc[signed, "margin"], 0.1)
    assert (narrow.loc[signed, "p_material"] <= default.loc[signed, "p_material"]).all()
    assert (narrow.loc[signed, "verdict"] == "material").sum() > (default.loc[signed, "verdict"] == "material").sum()
    assert (narrow.loc[signed, "ci_high"] - narrow.loc[signed, "ci_low"]
            > default.loc[signed, "ci_high"] - default.loc[signed, "ci_low"]).all()  # 97.5 % intervals
    # the run's margin applies to every log-ratio (nats) metric; the fill metrics keep their own units' margins
    nats = narrow["metric"].isin(["logprob_gap", "association_gap", "group_shift", "gap_beyond_shift", "bias_score"])
    assert np.allclose(narrow.loc[nats, "margin"], 0.1) and (narrow.loc[nats, "verdict"] != "").all()
    assert set(narrow.loc[nats, "metric"]) == {"logprob_gap", "association_gap", "group_shift", "gap_beyond_shift",
                                               "bias_score"}
    other = ~narrow["metric"].isin(judged)
    assert (narrow.loc[other, "verdict"] == "").all() and narrow.loc[other, "margin"].isna().all()
    unsigned = ~default["metric"].isin(registry.signed_ids())
    assert (narrow.loc[unsigned, "scope"] == "").all()


def test_every_row_with_an_effect_and_a_test_has_a_verdict() -> None:
    tables = make_tables(groups={"f": ["a", "b", "c"], "m": ["d", "e", "g"]}, gaps={"nurse": 1.0}, fill_boost=3.0,
                         n_templates=8)
    findings = compute_findings(*tables, seed=0, n_resamples=N, margin=0.1)
    tested = findings[np.isfinite(findings["effect"]) & np.isfinite(findings["p_value"])]
    fills = findings[findings["metric"].isin(["fill_divergence", "disco"])]  # own units: the run's margin is nats
    assert {m: float(v) for m, v in zip(fills["metric"], fills["margin"], strict=True)} == {
        "fill_divergence": registry.JSD_MARGIN, "disco": registry.DISCO_MARGIN}
    assert set(tested["metric"]) >= {"group_shift", "gap_beyond_shift", "fill_divergence", "disco", "bias_score"}
    assert set(tested["verdict"]) <= set(VERDICTS) and (tested["verdict"] != "").all()
    assert np.isfinite(tested["margin"]).all() and np.isfinite(tested["p_material"]).all()


def test_group_shift_and_gap_beyond_verdicts() -> None:
    # every target 0.8 nats more associated with the first group (a uniform shift); nurse 0.8 more on top
    targets = ("nurse", "engineer", "clerk", "pilot", "baker", "judge", "cook", "poet", "tailor", "miner")
    tables = make_tables(groups=TWO, targets=targets, gaps={"nurse": 0.8}, shift=0.8, noise=0.05, n_templates=10)
    findings = compute_findings(*tables, seed=0, n_resamples=N, alpha=0.025)
    shift = findings[findings["metric"] == "group_shift"].iloc[0]
    assert shift["verdict"] == "material" and shift["effect"] == pytest.approx(0.88, abs=0.05)
    beyond = findings[findings["metric"] == "gap_beyond_shift"].set_index("target")
    assert beyond.loc["nurse", "verdict"] == "material" and beyond.loc["nurse", "effect"] == pytest.approx(0.72,
                                                                                                          abs=0.05)
    others = beyond.drop(index="nurse")
    assert (others["verdict"] == "negligible").all() and (others["p_equivalence"] <= 0.025).all()
    assert findings.loc[findings["metric"] == "group_shift", "method"].str.contains("margin tests").all()


def test_fill_metrics_are_never_negligible() -> None:
    # no fill skew at all: the excess is near 0, yet a one-sided excess score gets no equivalence verdict
    findings = compute_findings(*make_tables(groups={"f": ["a", "b", "c"], "m": ["d", "e", "g"]}, n_templates=8),
                                seed=0, n_resamples=N)
    fills = findings[findings["metric"].isin(["fill_divergence", "disco"])]
    assert len(fills) == 2 and fills["p_equivalence"].isna().all()
    assert set(fills["verdict"]) <= {"below_margin", "inconclusive"}


def test_verdict_is_material_before_significant_and_negligible_rules() -> None:
    # large planted effect with tiny noise: significant, and material (the first rule wins)
    tables = make_tables(groups={"f": ["a", "b", "c", "d", "e"], "m": ["g", "h", "i", "j", "k"]},
                         gaps={"nurse": 1.0}, noise=0.05)
    findings = compute_findings(*tables, seed=0, n_resamples=N)
    nurse = findings[(findings["metric"] == "logprob_gap") & (findings["target"] == "nurse")].iloc[0]
    assert nurse["significant"] and nurse["verdict"] == "material" and nurse["scope"] == "group"
    zero = findings[(findings["metric"] == "logprob_gap") & (findings["target"] == "clerk")].iloc[0]
    assert zero["verdict"] == "negligible" and zero["p_equivalence"] <= 0.05


def test_families_are_per_probe_set_and_metric() -> None:
    one = make_tables(groups=TWO, gaps={"nurse": 0.9})
    other = make_tables(groups=TWO, gaps={"nurse": 0.1, "clerk": 0.2}, probe_set="other", first_item_id=1000, seed=4)
    alone = compute_findings(*one, seed=0, n_resamples=N)
    both = compute_findings(*(pd.concat([x, y], ignore_index=True) for x, y in zip(one, other, strict=True)),
                            seed=0, n_resamples=N)
    mine = both[both["probe_set"] == "toy"].reset_index(drop=True)
    pd.testing.assert_series_equal(mine["verdict"], alone["verdict"])
    pd.testing.assert_series_equal(mine["q_material"], alone["q_material"])


def test_template_term_pair_rows_get_verdicts() -> None:
    findings = compute_findings(*make_tables(groups=TWO, gaps={"nurse": 1.0}), seed=0, n_resamples=N,
                                unit="template_term_pair")
    gaps = findings[findings["metric"].isin(["logprob_gap", "association_gap"])]
    assert (gaps["scope"] == "terms").all() and set(gaps["verdict"]) <= set(VERDICTS)
    assert gaps["method"].str.contains("margin tests: sign flips over units").all()


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "x", True])
def test_bad_margin_is_one_clear_error(bad) -> None:
    with pytest.raises(AuditError, match="margin"):
        compute_findings(*make_tables(groups=TWO), seed=0, n_resamples=N, margin=bad)


def test_a_small_sure_gap_is_negligible_though_significant() -> None:
    # true gap 0.08 nats, tiny noise: differs from 0 (significant) and is shown within log 1.25 (negligible wins)
    tables = simulated_tables(8, gaps=np.full(5, 0.08), term_sd=0.005, noise_sd=0.005, template_group_sd=0.005)
    findings = compute_findings(*tables, seed=0, n_resamples=N, alpha=0.025)
    gaps = findings[findings["metric"] == "logprob_gap"]
    assert gaps["significant"].all() and (gaps["q_value"] <= 0.025).all()
    assert (gaps["verdict"] == "negligible").all(), gaps["verdict"].tolist()
    # against a margin below the gap the same rows are material
    narrow = compute_findings(*tables, seed=0, n_resamples=N, alpha=0.025, margin=0.02)
    assert (narrow.loc[narrow["metric"] == "logprob_gap", "verdict"] == "material").all()
