"""albert_audit.stats: known answers against scipy, a hand-worked case, simulations, edge cases.

Simulations are vectorised (many datasets as the rows of one array) and seeded, so they are fast and
deterministic; their thresholds have several standard errors of slack.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats

from albert_audit import stats
from albert_audit.errors import AuditError
from tests import oracles


def gen(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------------ rng_for


def test_rng_for_is_stable_and_keyed() -> None:
    a = stats.rng_for(7, "age/logprob_gap").random(5)
    assert np.array_equal(a, stats.rng_for(7, "age/logprob_gap").random(5))
    assert not np.array_equal(a, stats.rng_for(7, "age/association_gap").random(5))
    assert not np.array_equal(a, stats.rng_for(8, "age/logprob_gap").random(5))


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_rng_for_rejects_bad_seeds(seed: object) -> None:
    with pytest.raises(AuditError, match="seed"):
        stats.rng_for(seed, "x")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- known answers (scipy)


@pytest.mark.parametrize("n", [4, 9, 15, 40])
@pytest.mark.parametrize("method", ["BCa", "percentile"])
def test_bootstrap_matches_scipy_on_the_same_resamples(n: int, method: str) -> None:
    x = gen(n).exponential(1.0, n) - 0.7  # skewed, so BCa differs from percentile
    ref = scipy.stats.bootstrap((x,), np.mean, n_resamples=5000, method=method, rng=gen(99))
    low, high, used = oracles.paired_bootstrap_ci(x, rng=gen(99), n_resamples=5000, method=method)
    ref_low, ref_high = ref.confidence_interval
    if method == "BCa" and n < 15:
        # Small n: resamples that are a permutation of the data tie with the estimate; scipy's exact float
        # comparison counts only some of them (rounding), we count all: the bias correction differs a little.
        tolerance = 0.05 * (ref_high - ref_low)
        assert abs(low - ref_low) < tolerance and abs(high - ref_high) < tolerance
    else:
        assert low == pytest.approx(ref_low, rel=1e-9, abs=1e-12)
        assert high == pytest.approx(ref_high, rel=1e-9, abs=1e-12)
    assert used == f"95% {method} bootstrap 5000"


def test_bootstrap_rows_equal_one_row_at_a_time() -> None:
    values = gen(1).normal(size=(7, 12))
    low, high, _ = stats.bootstrap_ci_rows(values, rng=gen(5), n_resamples=3000, confidence=0.9)
    for i, row in enumerate(values):
        one = oracles.paired_bootstrap_ci(row, rng=gen(5), n_resamples=3000, confidence=0.9)
        assert (low[i], high[i]) == pytest.approx(one[:2], rel=1e-12)


@pytest.mark.parametrize("n", [2, 3, 6, 10, 12])
def test_exact_sign_flip_matches_scipy_permutation_test(n: int) -> None:
    for seed in range(3):
        x = gen(100 * n + seed).normal(0.4, 1.0, n)
        ref = scipy.stats.permutation_test((x,), np.mean, permutation_type="samples", n_resamples=10**6)
        p, method = oracles.sign_flip_permutation_test(x, rng=gen(0))
        assert p == pytest.approx(ref.pvalue, rel=1e-12)
        assert method == f"paired sign-flip permutation (exact, n={n})"


def test_monte_carlo_sign_flip_agrees_with_exact_scipy() -> None:
    x = gen(3).normal(0.35, 1.0, 16)
    ref = scipy.stats.permutation_test((x,), np.mean, permutation_type="samples", n_resamples=10**6).pvalue
    p, method = oracles.sign_flip_permutation_test(x, rng=gen(4), n_resamples=20_000, exact_max_n=12)
    assert "Monte Carlo 20000, n=16" in method
    assert abs(p - ref) < 4 * math.sqrt(ref * (1 - ref) / 20_000) + 1e-4
    # the +1 correction: p is never 0
    p_extreme, _ = oracles.sign_flip_permutation_test(
        np.full(30, 1.0) + gen(1).random(30), rng=gen(0), n_resamples=999
    )
    assert p_extreme == pytest.approx(1 / 1000)


def test_wilcoxon_matches_scipy() -> None:
    x = gen(8).normal(0.3, 1.0, 17)
    assert oracles.wilcoxon_p(x) == pytest.approx(scipy.stats.wilcoxon(x).pvalue, rel=1e-12)
    assert oracles.wilcoxon_p([0.0, 0.0, 0.0]) == 1.0
    assert math.isnan(oracles.wilcoxon_p([np.nan]))


def test_cohens_dz() -> None:
    x = np.array([1.0, 2.0, 4.0, 5.0])
    assert oracles.cohens_dz(x) == pytest.approx(x.mean() / x.std(ddof=1))
    assert oracles.cohens_dz([np.nan, 1.0, 2.0, -np.inf]) == pytest.approx(1.5 / np.std([1.0, 2.0], ddof=1))
    assert math.isnan(oracles.cohens_dz([1.0]))
    assert oracles.cohens_dz([0.0, 0.0]) == 0.0
    assert oracles.cohens_dz([2.0, 2.0]) == math.inf


def test_benjamini_hochberg_matches_scipy_and_keeps_nan() -> None:
    p = gen(2).random(50) ** 3
    assert np.allclose(stats.benjamini_hochberg(p), scipy.stats.false_discovery_control(p), rtol=1e-12)
    with_nan = np.array([0.01, np.nan, 0.04, 0.03, np.nan, 0.5])
    q = stats.benjamini_hochberg(with_nan)
    assert np.isnan(q[[1, 4]]).all()
    finite = with_nan[~np.isnan(with_nan)]
    assert np.allclose(q[~np.isnan(with_nan)], scipy.stats.false_discovery_control(finite))
    assert np.isnan(stats.benjamini_hochberg([np.nan, np.nan])).all()
    with pytest.raises(AuditError):
        stats.benjamini_hochberg([0.2, 1.5])


def test_friedman_matches_scipy() -> None:
    table = gen(4).normal(size=(12, 4)) + np.array([0.0, 0.3, 0.6, 0.9])
    assert stats.friedman_p(table) == pytest.approx(scipy.stats.friedmanchisquare(*table.T).pvalue)
    table[3, 1] = np.nan  # incomplete block dropped
    kept = np.delete(table, 3, axis=0)
    assert stats.friedman_p(table) == pytest.approx(scipy.stats.friedmanchisquare(*kept.T).pvalue)
    assert stats.friedman_p(np.ones((5, 3))) == 1.0
    with pytest.raises(AuditError):
        stats.friedman_p(np.ones((5, 2)))


# ---------------------------------------------------------------------------------------- hand-worked


def test_hand_worked_sign_flip_n3() -> None:
    # diffs (1, 2, -0.5): observed sum 2.5. The 8 sign patterns of (1, 2, 0.5) give sums
    #   +++ 3.5   ++- 2.5   +-+ -0.5   +-- -1.5   -++ 1.5   -+- 0.5   --+ -2.5   --- -3.5
    # |sum| >= 2.5 for 3.5, 2.5, -2.5, -3.5: 4 of 8, so p = 0.5 exactly.
    p, method = oracles.sign_flip_permutation_test([1.0, 2.0, -0.5], rng=gen(0))
    assert p == 0.5
    assert method == "paired sign-flip permutation (exact, n=3)"
    # All three positive: only +++ and --- are as extreme: p = 2/8.
    assert oracles.sign_flip_permutation_test([1.0, 2.0, 0.5], rng=gen(0))[0] == 0.25


def test_hand_worked_bootstrap_n2_falls_back_to_percentile() -> None:
    # Two units (1, 3): resampled means are 1, 2, 3 with probabilities 1/4, 1/2, 1/4.
    low, high, method = oracles.paired_bootstrap_ci([1.0, 3.0], rng=gen(0), n_resamples=4000)
    assert (low, high) == (1.0, 3.0)
    assert method == "95% percentile bootstrap 4000 (BCa undefined: n<3)"


def test_term_labelings_and_the_upper_tail_p_match_full_enumeration() -> None:
    # 3 vs 3 values; statistic = |mean a - mean b|; enumerate all 20 labelings by hand.
    values = np.array([5.0, 6.0, 7.0, 1.0, 2.0, 6.5])

    def stat(labels: np.ndarray) -> np.ndarray:
        return np.abs((labels * values).sum(1) / 3 - (~labels * values).sum(1) / 3)

    observed = stat(np.array([[True, True, True, False, False, False]]))[0]
    all_stats = [stat(np.isin(np.arange(6), c)[None, :])[0] for c in itertools.combinations(range(6), 3)]
    exact = np.mean(np.array(all_stats) >= observed - 1e-12)
    labelings, is_exact = stats.term_labelings(3, 3, rng=gen(0))
    assert is_exact and labelings.shape == (20, 6) and labelings[0].tolist() == [True] * 3 + [False] * 3
    assert (labelings.sum(axis=1) == 3).all() and len({tuple(r) for r in labelings}) == 20
    assert stats.upper_tail_p(observed, stat(labelings), exact=True) == pytest.approx(exact)
    # the sampled path (more labelings than enumerate_max): uniform subsets of size n_a, p = (b + 1) / (m + 1)
    sampled, is_exact = stats.term_labelings(3, 3, rng=gen(1), n_resamples=20_000, enumerate_max=5)
    assert not is_exact and sampled.shape == (20_000, 6) and (sampled.sum(axis=1) == 3).all()
    p = stats.upper_tail_p(observed, stat(sampled), exact=False)
    assert abs(p - exact) < 0.01
    hits = np.count_nonzero(stat(sampled) >= observed - 1e-9)
    assert p == (hits + 1) / 20_001
    assert math.isnan(stats.upper_tail_p(math.nan, [1.0], exact=True))
    with pytest.raises(AuditError):
        stats.term_labelings(0, 3, rng=gen(0))


@pytest.mark.parametrize("n", [13, 16, 20])
def test_exact_sign_flip_beyond_twelve_units(n: int) -> None:
    """Exact (meet-in-the-middle) enumeration up to n = 20 equals brute force over every sign pattern."""
    x = gen(n).normal(0.3, 1.0, (6, n))
    x[0] = np.abs(x[0]) + 0.1  # every unit positive: the most extreme pattern, p = 2 / 2**n
    x[1, :] = 0.5  # all equal: ties resolved as before
    p, method = stats.sign_flip_p_rows(x, rng=gen(0))
    assert method == f"paired sign-flip permutation (exact, n={n})"
    if n <= 16:
        sums = np.abs(x @ stats.sign_patterns(n).T)
        brute = np.mean(sums >= np.abs(x.sum(axis=1))[:, None] - 1e-9, axis=1)
        assert np.array_equal(p, brute)
    assert p[0] == p[1] == 2 / 2**n
    if n >= 16:
        assert p[0] < 1 / 10_001  # below the Monte Carlo floor: the floor no longer decides
    assert stats.EXACT_MAX_N == 20
    p_mc, method_mc = stats.sign_flip_p_rows(x, rng=gen(0), n_resamples=2000, exact_max_n=n - 1)
    assert "Monte Carlo 2000" in method_mc and np.all(np.abs(p_mc - p) < 0.05)


def test_benjamini_hochberg_within_families() -> None:
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.5, 0.02])
    families = ["a", "b", "a", "a", "b", "a"]
    q = stats.benjamini_hochberg_by(p, families)
    a, b = [0, 2, 3, 5], [1, 4]
    assert np.allclose(q[a], stats.benjamini_hochberg(p[a]), equal_nan=True)
    assert np.allclose(q[b], stats.benjamini_hochberg(p[b]))
    assert not np.allclose(q, stats.benjamini_hochberg(p), equal_nan=True)  # not one family
    with pytest.raises(AuditError):
        stats.benjamini_hochberg_by(p, families[:-1])


# ----------------------------------------------------------------------------------------- simulations


def test_null_p_values_are_uniform() -> None:
    data = gen(11).normal(0.0, 1.0, (1500, 20))
    p, _ = stats.sign_flip_p_rows(data, rng=gen(12), n_resamples=2000)
    assert scipy.stats.kstest(p, "uniform").pvalue > 0.01
    # the exact path (n = 10) is discrete but never anti-conservative
    p_exact, _ = stats.sign_flip_p_rows(gen(13).normal(size=(4000, 10)), rng=gen(0))
    for alpha in (0.01, 0.05, 0.1):
        assert np.mean(p_exact <= alpha) <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / 4000)


def test_bh_controls_fdr_in_simulation() -> None:
    families, m, n = 400, 20, 20
    truth = np.tile(np.r_[np.zeros(10), np.full(10, 0.8)], families)  # half null, half d = 0.8
    data = gen(21).normal(0.0, 1.0, (families * m, n)) + truth[:, None]
    p, _ = stats.sign_flip_p_rows(data, rng=gen(22), n_resamples=2000)
    q = np.stack([stats.benjamini_hochberg(f) for f in p.reshape(families, m)])
    rejected = q <= 0.05
    false = (rejected & (truth.reshape(families, m) == 0)).sum(1)
    fdp = false / np.maximum(rejected.sum(1), 1)
    assert fdp.mean() <= 0.05
    assert rejected.sum() > 0


def test_power_d08_n20_exceeds_80_percent() -> None:
    data = gen(31).normal(0.8, 1.0, (1000, 20))
    p, _ = stats.sign_flip_p_rows(data, rng=gen(32), n_resamples=2000)
    assert np.mean(p <= 0.05) > 0.8


def test_ci_coverage_is_nominal() -> None:
    # n = 100 units: bootstrap intervals of a mean reach their nominal level only as n grows (about 94% at
    # n = 40, 92% at n = 14: see docs/metrics.md and the expanded variant below).
    data = gen(41).normal(0.5, 1.0, (2000, 100))
    low, high, _ = stats.bootstrap_ci_rows(data, rng=gen(42), n_resamples=2000)
    coverage = np.mean((low <= 0.5) & (0.5 <= high))
    assert 0.93 <= coverage <= 0.97


def test_expanded_ci_coverage_at_the_shipped_template_count() -> None:
    data = gen(43).normal(0.5, 1.0, (1500, 14))
    low, high, methods = stats.bootstrap_ci_rows(data, rng=gen(44), n_resamples=2000, expand=True)
    assert 0.93 <= np.mean((low <= 0.5) & (0.5 <= high)) <= 0.97
    assert methods[0] == "95% (expanded) BCa bootstrap 2000"
    assert stats.expanded_confidence(0.95, 14) == pytest.approx(0.975, abs=0.001)


def test_permutation_omnibus_null_and_power() -> None:
    null = gen(51).normal(size=(300, 12, 4))
    p_null, method = stats.permutation_omnibus_rows(null, rng=gen(52), n_resamples=999)
    assert scipy.stats.kstest(p_null, "uniform").pvalue > 0.01
    assert method == "permutation omnibus (Monte Carlo 999, n=12, k=4)"
    shifted = null + np.array([0.0, 0.0, 0.0, 1.5])
    p_alt, _ = stats.permutation_omnibus_rows(shifted, rng=gen(52), n_resamples=999)
    assert np.mean(p_alt <= 0.05) > 0.8


# ----------------------------------------------------------------------------------------- edge cases


def test_empty_and_single_unit() -> None:
    assert oracles.paired_bootstrap_ci([], rng=gen(0))[2] == "no units: CI undefined"
    low, high, method = oracles.paired_bootstrap_ci([0.7], rng=gen(0))
    assert math.isnan(low) and math.isnan(high) and method == "n=1: CI undefined"
    p, method = oracles.sign_flip_permutation_test([0.7], rng=gen(0))
    assert math.isnan(p) and method == "n=1: p undefined"
    assert math.isnan(oracles.sign_flip_permutation_test([], rng=gen(0))[0])


def test_all_values_equal() -> None:
    assert oracles.paired_bootstrap_ci([0.4] * 9, rng=gen(0)) == (0.4, 0.4, "all units equal: CI = [v, v]")
    assert oracles.sign_flip_permutation_test([0.0] * 9, rng=gen(0))[0] == 1.0
    # nine equal non-zero differences are strong evidence: exact p = 2 / 2**9, as scipy says
    ref = scipy.stats.permutation_test(([0.4] * 9,), np.mean, permutation_type="samples").pvalue
    assert oracles.sign_flip_permutation_test([0.4] * 9, rng=gen(0))[0] == pytest.approx(ref) == 2 / 512


def test_non_finite_values_are_dropped_and_counted() -> None:
    x = np.array([0.5, np.nan, 1.0, -np.inf, 1.5, 2.0, np.inf])
    clean = x[np.isfinite(x)]
    low, high, method = oracles.paired_bootstrap_ci(x, rng=gen(3), n_resamples=1000)
    assert (low, high) == oracles.paired_bootstrap_ci(clean, rng=gen(3), n_resamples=1000)[:2]
    assert method.endswith("; dropped 3 non-finite")
    p, method = oracles.sign_flip_permutation_test(x, rng=gen(0))
    assert p == oracles.sign_flip_permutation_test(clean, rng=gen(0))[0]
    assert method.endswith("; dropped 3 non-finite")
    assert oracles.paired_bootstrap_ci([np.nan, -np.inf], rng=gen(0))[2] == (
        "no units: CI undefined; dropped 2 non-finite"
    )


def test_rows_functions_reject_non_finite_and_bad_arguments() -> None:
    with pytest.raises(AuditError):
        stats.bootstrap_ci_rows(np.array([[1.0, np.nan]]), rng=gen(0))
    with pytest.raises(AuditError):
        stats.sign_flip_p_rows(np.array([[1.0, np.inf]]), rng=gen(0))
    with pytest.raises(AuditError, match="method"):
        oracles.paired_bootstrap_ci([1.0, 2.0, 3.0], rng=gen(0), method="bca")
    with pytest.raises(AuditError, match="confidence"):
        oracles.paired_bootstrap_ci([1.0, 2.0, 3.0], rng=gen(0), confidence=95)
    with pytest.raises(AuditError, match="n_resamples"):
        oracles.sign_flip_permutation_test([1.0, 2.0], rng=gen(0), n_resamples=0)
