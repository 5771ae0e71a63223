"""albert_audit.inference.bias: the debiased bias score, its interval at truth 0 and > 0, edge cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from albert_audit.errors import AuditError
from albert_audit.inference.bias import bias_score

N_TARGETS, N_TEMPLATES = 20, 10


def probe_set(g: np.random.Generator, truth_sd: float) -> tuple[np.ndarray, float]:
    """Per-template gaps: true target gaps, a template effect shared by all targets, skewed noise."""
    delta = g.normal(0.0, truth_sd, N_TARGETS)
    common = g.normal(0.0, 0.2, (1, N_TEMPLATES))
    z = np.exp(g.standard_normal((N_TARGETS, N_TEMPLATES)))
    noise = (z - math.exp(0.5)) / math.sqrt((math.e - 1) * math.e) * 0.4
    return delta[:, None] + common + noise, math.sqrt(float(np.mean(delta**2)))


def test_squared_score_is_the_pairwise_u_statistic() -> None:
    g = np.random.default_rng(0)
    d = g.normal(0.2, 1.0, (4, 6))
    d[1, 0] = np.nan
    res = bias_score(d, rng=g)
    per_target = []
    for row in d:
        r = row[np.isfinite(row)]
        per_target.append(np.mean([r[i] * r[j] for i, j in itertools.permutations(range(r.size), 2)]))
    assert res.squared == pytest.approx(np.mean(per_target))
    assert res.score == pytest.approx(math.sqrt(max(res.squared, 0.0)))
    assert res.naive == pytest.approx(np.mean(np.abs(np.nanmean(d, axis=1))))


def test_interval_covers_a_true_zero_where_the_naive_one_never_does() -> None:
    g = np.random.default_rng(1)
    reps, excluded, naive_excluded = 60, 0, 0
    for _ in range(reps):
        d, _ = probe_set(g, 0.0)
        res = bias_score(d, rng=g)
        excluded += res.ci_low > 0
        assert res.naive_null_mean > 0 and res.naive > 0  # noise alone gives the naive score a positive value
        idx = g.integers(0, N_TEMPLATES, (300, N_TEMPLATES))
        boot = np.abs(d[:, idx].mean(axis=2)).mean(axis=0)
        naive_excluded += np.quantile(boot, 0.025) > 0
    assert excluded <= 5  # P(exclude 0) <= alpha / 2 = 0.025: expected 1.5 of 60
    assert naive_excluded == reps


@pytest.mark.parametrize("truth_sd", [0.15, 0.4])
def test_interval_covers_a_positive_truth(truth_sd: float) -> None:
    g = np.random.default_rng(2)
    reps = 60
    covered = 0
    for _ in range(reps):
        d, theta = probe_set(g, truth_sd)
        res = bias_score(d, rng=g)
        covered += res.ci_low <= theta <= res.ci_high
    assert covered / reps >= 0.85  # nominal 0.95; Monte Carlo se ~0.03


def test_lower_end_needs_the_exact_test_to_reject() -> None:
    """Identical gaps in every template: the jackknife se is 0, yet 5 templates cannot exclude 0 at 2.5%."""
    g = np.random.default_rng(5)
    five = bias_score(np.full((10, 5), 0.3), rng=g)
    assert five.p_value == pytest.approx(1 / 16) and five.ci_low == 0.0 and five.score == pytest.approx(0.3)
    eight = bias_score(np.full((10, 8), 0.3), rng=g)
    assert eight.p_value == pytest.approx(1 / 128) and eight.ci_low == pytest.approx(0.3)


def test_alpha_and_monte_carlo_options() -> None:
    g = np.random.default_rng(3)
    d, _ = probe_set(g, 0.3)
    wide = bias_score(d, rng=np.random.default_rng(0))
    narrow = bias_score(d, rng=np.random.default_rng(0), alpha=0.2)
    assert narrow.ci_high < wide.ci_high and narrow.ci_low >= wide.ci_low
    mc = bias_score(d, rng=np.random.default_rng(0), exact_max_n=5, n_resamples=999)
    assert "Monte Carlo 999" in mc.method and "exact, 512 patterns" in wide.method
    assert mc.p_value >= 1 / 1000 and mc.score == wide.score


def test_edge_cases() -> None:
    g = np.random.default_rng(4)
    d = g.normal(0.0, 1.0, (3, 6))
    d[0, 2:] = np.nan  # only 2 templates: left out
    res = bias_score(d, rng=g)
    assert res.n_targets == 2 and "1 target(s) with < 3 templates left out" in res.method
    empty = bias_score(np.full((2, 4), np.nan), rng=g)
    assert math.isnan(empty.score) and empty.n_targets == 0
    with pytest.raises(AuditError, match="targets, templates"):
        bias_score(np.zeros(4), rng=g)
    with pytest.raises(AuditError, match="alpha"):
        bias_score(np.zeros((2, 4)), rng=g, alpha=0.0)


def test_margin_tests_need_the_sign_flip_test_too() -> None:
    """Identical gaps 0.3 in 5 templates: the jackknife se is 0 (t infinite), yet 'beyond 0.1' needs the exact
    sign-flip test at alpha / 2 too, which 5 templates cannot pass (p = 1/16); 'within 0.5' is shown."""
    from albert_audit.inference.bias import margin_tests

    five = bias_score(np.full((10, 5), 0.3), rng=np.random.default_rng(0))
    assert margin_tests(five, 0.1) == (pytest.approx(2 / 16), 1.0)
    assert margin_tests(five, 0.5) == (1.0, 0.0)
    eight = bias_score(np.full((10, 8), 0.3), rng=np.random.default_rng(0))
    assert margin_tests(eight, 0.1) == (pytest.approx(2 / 128), 1.0)
    g = np.random.default_rng(9)
    d, _ = probe_set(g, 0.5)
    res = bias_score(d, rng=g, alpha=0.1)
    p_material, p_equivalence = margin_tests(res, 0.2)
    import scipy.stats

    t = (res.squared - 0.04) / res.se
    assert p_material == pytest.approx(min(1.0, 2 * max(scipy.stats.t.sf(t, N_TEMPLATES - 1), res.p_value)))
    assert p_equivalence == pytest.approx(scipy.stats.t.cdf(t, N_TEMPLATES - 1))
