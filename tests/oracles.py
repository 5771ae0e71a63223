"""Independent or one-row reference computations the tests check the package against.

These were public functions of ``albert_audit.stats`` that nothing in the package used; they stay here as
oracles (one-sample wrappers around the ``*_rows`` workhorses, with the non-finite rule: drop and count)
and second opinions (Wilcoxon, Cohen's d_z).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike

from albert_audit import stats


def finite_values(values: ArrayLike) -> tuple[np.ndarray, int]:
    """The finite values of ``values`` (flattened, order kept) and how many non-finite ones were dropped."""
    x = np.asarray(values, dtype=float).ravel()
    keep = np.isfinite(x)
    return x[keep], int(x.size - np.count_nonzero(keep))


def dropped_note(n_dropped: int) -> str:
    """The method-string suffix that records dropped non-finite values ('' when none)."""
    return f"; dropped {n_dropped} non-finite" if n_dropped else ""


def paired_bootstrap_ci(
    diffs: ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    method: str = "BCa",
    expand: bool = False,
) -> tuple[float, float, str]:
    """Bootstrap CI of the mean of paired differences (resampling units): ``(low, high, method_used)``.

    Non-finite values are dropped first and counted in ``method_used``; otherwise as
    :func:`albert_audit.stats.bootstrap_ci_rows` on one row.
    """
    x, dropped = finite_values(diffs)
    low, high, methods = stats.bootstrap_ci_rows(
        x[None, :], rng=rng, n_resamples=n_resamples, confidence=confidence, method=method, expand=expand
    )
    return float(low[0]), float(high[0]), methods[0] + dropped_note(dropped)


def sign_flip_permutation_test(
    diffs: ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    exact_max_n: int = stats.EXACT_MAX_N,
) -> tuple[float, str]:
    """Two-sided paired sign-flip permutation test of mean(diffs) = 0: ``(p, method_used)``.

    Non-finite values are dropped first and counted; otherwise :func:`albert_audit.stats.sign_flip_p_rows`.
    """
    x, dropped = finite_values(diffs)
    p, method = stats.sign_flip_p_rows(x[None, :], rng=rng, n_resamples=n_resamples, exact_max_n=exact_max_n)
    return float(p[0]), method + dropped_note(dropped)


def wilcoxon_p(diffs: ArrayLike) -> float:
    """Two-sided Wilcoxon signed-rank p-value (scipy; zeros dropped, as scipy's default 'wilcox').

    Non-finite values are dropped; no values gives NaN; all values 0 gives 1.0.
    """
    x, _ = finite_values(diffs)
    if x.size == 0:
        return math.nan
    if not np.any(x != 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(scipy.stats.wilcoxon(x).pvalue)


def cohens_dz(diffs: ArrayLike) -> float:
    """Cohen's d_z of paired differences: mean / standard deviation (ddof = 1).

    Non-finite values are dropped; n < 2 gives NaN; zero spread gives 0.0 when the mean is 0 and
    +/-inf otherwise.
    """
    x, _ = finite_values(diffs)
    if x.size < 2:
        return math.nan
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    if sd == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / sd
