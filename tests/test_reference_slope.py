"""reference_alignment (albert_audit.inference.reference_slope): slope, CI by template resampling, permutation p,
verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from albert_audit.inference.reference_slope import logit, reference_alignment, verdict

WORDS = [f"w{i}" for i in range(8)]


def table(slope: float, noise: float, *, n_templates: int = 14, seed: int = 0, shares=None):
    rng = np.random.default_rng(seed)
    shares = shares or dict(zip(WORDS, np.linspace(0.05, 0.95, len(WORDS)), strict=True))
    x = logit(np.array([shares[w] for w in WORDS]))
    effects = 0.3 + slope * x[None, :] + rng.normal(0, noise, (n_templates, len(WORDS)))
    return pd.DataFrame(effects, columns=WORDS), shares


def test_slope_intercept_and_r_match_an_independent_regression():
    effects, shares = table(1.0, 0.8)
    result = reference_alignment(effects, shares, seed=0, n_resamples=2000)
    x = logit(np.array([shares[w] for w in WORDS]))
    fit = stats.linregress(x, effects.mean(axis=0).to_numpy())
    assert result.slope == pytest.approx(fit.slope) and result.intercept == pytest.approx(fit.intercept)
    assert result.r == pytest.approx(fit.rvalue)
    assert result.n_words == 8 and result.n_templates == 14


@pytest.mark.parametrize(("slope", "expected"), [(1.0, "tracks"), (2.5, "exceeds"), (0.4, "attenuates"),
                                                 (-1.0, "inverts"), (0.0, "flat")])
def test_verdicts_follow_the_true_slope(slope, expected):
    effects, shares = table(slope, 0.3)
    result = reference_alignment(effects, shares, seed=1, n_resamples=2000)
    assert result.verdict == expected, result
    assert result.ci_low <= slope <= result.ci_high


def test_a_noisy_null_slope_is_inconclusive_not_flat():
    result = reference_alignment(*table(0.0, 3.0), seed=1, n_resamples=2000)
    assert result.verdict == "inconclusive" and result.ci_low < 0 < result.ci_high, result


def test_ci_resamples_templates_and_narrows_with_more_of_them():
    few = reference_alignment(*table(1.0, 1.0, n_templates=6), seed=2, n_resamples=2000)
    many = reference_alignment(*table(1.0, 1.0, n_templates=60), seed=2, n_resamples=2000)
    assert (many.ci_high - many.ci_low) < (few.ci_high - few.ci_low) / 2


def test_alpha_widens_the_interval_and_is_named():
    effects, shares = table(1.0, 1.0)
    wide = reference_alignment(effects, shares, seed=3, alpha=0.01, n_resamples=4000)
    narrow = reference_alignment(effects, shares, seed=3, alpha=0.2, n_resamples=4000)
    assert wide.ci_low < narrow.ci_low < narrow.ci_high < wide.ci_high
    assert "99% percentile CI" in wide.method and "80% percentile CI" in narrow.method


def test_exact_permutation_p_for_few_words_and_monte_carlo_for_many():
    shares = {"a": 0.1, "b": 0.3, "c": 0.5, "d": 0.7, "e": 0.9}
    x = logit(np.array(list(shares.values())))
    effects = pd.DataFrame(np.tile(x, (4, 1)) + np.arange(4)[:, None] * 0.01, columns=list(shares))
    exact = reference_alignment(effects, shares, seed=0, n_resamples=1000)
    assert "exact permutation" in exact.method
    # Two-sided: the true order and its reverse (the shares are symmetric in logit) reach |slope|.
    assert exact.p_value == pytest.approx(2 / 120)
    many = reference_alignment(*table(1.0, 0.5), seed=0, n_resamples=500)
    assert "Monte Carlo" in many.method and many.p_value == pytest.approx(1 / 501)


def test_permutation_p_is_calibrated_and_agrees_with_pearson():
    shares = dict(zip(WORDS, np.linspace(0.1, 0.9, 8), strict=True))
    x = logit(np.array(list(shares.values())))
    ours, theirs = [], []
    for seed in range(80):
        effects = pd.DataFrame(np.random.default_rng(seed).normal(0, 1, (10, 8)), columns=WORDS)
        ours.append(reference_alignment(effects, shares, seed=seed, n_resamples=300).p_value)
        theirs.append(stats.pearsonr(x, effects.mean(axis=0).to_numpy()).pvalue)
    assert np.mean(np.array(ours) < 0.05) <= 0.12  # no association: about 5 % rejections
    assert np.corrcoef(ours, theirs)[0, 1] > 0.95


def test_words_without_a_share_or_values_are_left_out_and_nans_are_skipped():
    effects, shares = table(1.0, 0.2)
    effects["extra"] = 5.0
    effects.loc[0, "w0"] = np.nan
    effects["w7"] = np.nan
    result = reference_alignment(effects, shares, seed=0, n_resamples=500)
    assert result.n_words == 7 and math.isfinite(result.slope)


def test_same_seed_same_result_and_bad_inputs():
    effects, shares = table(1.0, 1.0)
    assert reference_alignment(effects, shares, seed=9, n_resamples=500) == \
        reference_alignment(effects, shares, seed=9, n_resamples=500)
    with pytest.raises(ValueError, match="at least 3 words"):
        reference_alignment(effects[["w0", "w1"]], shares, seed=0)
    with pytest.raises(ValueError, match="2 templates"):
        reference_alignment(effects.iloc[:1], shares, seed=0)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        reference_alignment(effects, {**shares, "w0": 1.0}, seed=0)
    with pytest.raises(ValueError, match="alpha"):
        reference_alignment(effects, shares, seed=0, alpha=1.5)


def test_verdict_boundaries():
    assert verdict(-0.5, -0.1) == "inverts" and verdict(1.1, 2.0) == "exceeds"
    assert verdict(0.2, 0.9) == "attenuates" and verdict(0.5, 1.5) == "tracks"
    assert verdict(-0.1, 0.5) == "inconclusive" and verdict(float("nan"), 1.0) == "inconclusive"
    # a practically flat slope, whatever its sign or significance: inside +-FLAT_SLOPE (about 0.051)
    assert verdict(1e-7, 2e-7) == "flat" and verdict(-0.04, 0.03) == "flat" and verdict(-0.05, -0.01) == "flat"
    assert verdict(0.02, 0.06) == "attenuates" and verdict(-0.06, 0.02) == "inconclusive"
