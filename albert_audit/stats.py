"""Pure statistics for albert-audit (numpy/scipy only): paired bootstrap CIs, permutation tests, FDR.

Conventions shared by every function here:

- Randomness comes only from the ``np.random.Generator`` passed in; nothing touches global random state.
  :func:`rng_for` gives each analysis its own stable stream, keyed by name.
- Non-finite values: the ``*_rows`` functions require finite input (an AuditError otherwise); callers drop
  units whose value is not finite first and say so in the row's method string.
- Small samples have defined results: n = 0 gives NaN everywhere; n = 1 gives a defined mean but a NaN
  CI and p-value; all-equal values give the CI ``[v, v]`` (and p = 1 when v = 0).
- ``*_rows`` functions are vectorised: they take a 2-D array (rows x units, all finite, one n for the
  whole batch) and draw one set of resamples that every row shares (common random numbers).
  Each row's interval or p-value is valid on its own; Monte Carlo errors are correlated across rows.

One-row conveniences and second opinions that the package itself does not use (a paired bootstrap CI of one
sample, the one-sample sign-flip test, Wilcoxon, Cohen's d_z) live in ``tests/oracles.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import warnings

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike
from scipy.special import ndtr, ndtri

from albert_audit.errors import AuditError
from albert_audit.fdr import benjamini_hochberg, benjamini_hochberg_by

__all__ = [
    "benjamini_hochberg", "benjamini_hochberg_by", "bootstrap_ci_rows", "friedman_p", "permutation_omnibus_rows",
    "rng_for", "sign_flip_p_rows", "term_labelings", "upper_tail_p",
]

TIE_RTOL = 1e-9
"""Relative tolerance for 'as extreme as observed' (floating sums of the same numbers in another order)."""
CHUNK_ELEMENTS = 4_000_000
"""Upper bound on the elements of one temporary (rows x resamples) block, to keep memory flat."""
EXACT_MAX_N = 20
"""The sign-flip test of a mean enumerates all 2**n sign patterns up to this many units (Monte Carlo above);
the enumeration meets in the middle (two halves of 2**(n/2) partial sums), so n = 20 costs ~1,000 values a row."""
PATTERN_MAX_N = 12
"""Tests of non-linear statistics (the bias score) materialise all 2**n patterns up to this many units."""
BOOTSTRAP_METHODS = ("BCa", "percentile")


# ---------------------------------------------------------------------------------------------- helpers


def rng_for(seed: int, key: str) -> np.random.Generator:
    """An independent, stable random stream for the analysis named ``key`` under the run seed ``seed``.

    The key is hashed with SHA-256 (never Python's ``hash``, so PYTHONHASHSEED cannot change it) into the
    ``spawn_key`` of a :class:`numpy.random.SeedSequence`; adding or removing another analysis never shifts
    this stream.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise AuditError(f"seed {seed!r}: must be a non-negative integer")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    spawn_key = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4))
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=spawn_key))


def _check_resamples(n_resamples: int) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer) or n_resamples < 1:
        raise AuditError(f"n_resamples {n_resamples!r}: must be a positive integer")
    return int(n_resamples)


def _check_confidence(confidence: float) -> float:
    if not 0.0 < float(confidence) < 1.0:
        raise AuditError(f"confidence {confidence!r}: must be between 0 and 1")
    return float(confidence)


def bootstrap_counts(rng: np.random.Generator, *, n: int, n_resamples: int) -> np.ndarray:
    """How often each of ``n`` units occurs in each of ``n_resamples`` bootstrap resamples (float array).

    The indices are drawn exactly as :func:`scipy.stats.bootstrap` draws them
    (``rng.integers(0, n, (n_resamples, n))``), so the same generator state gives the same resamples; a
    resampled mean is then ``values @ counts.T / n`` (one matrix product for many rows).
    """
    idx = rng.integers(0, n, (n_resamples, n))
    flat = (idx + n * np.arange(n_resamples)[:, None]).ravel()
    return np.bincount(flat, minlength=n_resamples * n).reshape(n_resamples, n).astype(float)


# ------------------------------------------------------------------------------------- bootstrap CIs


def _quantile_sorted(sorted_rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-row quantile (linear interpolation, numpy's default) of rows sorted ascending."""
    b = sorted_rows.shape[1]
    pos = np.clip(q, 0.0, 1.0) * (b - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, b - 1)
    rows = np.arange(sorted_rows.shape[0])
    v_lo, v_hi = sorted_rows[rows, lo], sorted_rows[rows, hi]
    return v_lo + (pos - lo) * (v_hi - v_lo)


def bca_interval_rows(
    *,
    theta_hat: np.ndarray,
    boot: np.ndarray,
    jackknife: np.ndarray | None,
    confidence: float = 0.95,
    method: str = "BCa",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-sided bootstrap intervals per row from a bootstrap distribution (generic statistic).

    ``theta_hat``: (R,) the statistic on the data; ``boot``: (R, B) the statistic on each resample;
    ``jackknife``: (R, n) the leave-one-out statistics (for the BCa acceleration; ``None`` = percentile).
    BCa follows Efron and Tibshirani (1993) 14.3 / 15.4, as :func:`scipy.stats.bootstrap` does.
    Bootstrap values within a relative 1e-9 of ``theta_hat`` count as ties (scipy compares exactly, so the
    two differ only when such ties occur, i.e. at small n). Returns ``(low, high, bca_used)``; a row falls
    back to the percentile interval where BCa is undefined (infinite bias correction, undefined
    acceleration, fewer than 3 units).
    """
    confidence = _check_confidence(confidence)
    if method not in BOOTSTRAP_METHODS:
        raise AuditError(f"bootstrap method {method!r}: expected one of {', '.join(BOOTSTRAP_METHODS)}")
    theta_hat = np.asarray(theta_hat, dtype=float)
    boot = np.sort(np.asarray(boot, dtype=float), axis=1)
    n_rows, b = boot.shape
    alpha = (1.0 - confidence) / 2.0
    q_lo = np.full(n_rows, alpha)
    q_hi = np.full(n_rows, 1.0 - alpha)
    bca_used = np.zeros(n_rows, dtype=bool)
    if method == "BCa" and jackknife is not None and jackknife.shape[1] >= 3:
        # Resamples that equal the data as a multiset tie with theta_hat up to rounding (often at small n):
        # count them as ties (half below) whatever the summation order made of them.
        tol = TIE_RTOL * np.max(np.abs(boot), axis=1, keepdims=True)
        th = theta_hat[:, None]
        below = np.count_nonzero(boot < th - tol, axis=1) + np.count_nonzero(boot <= th + tol, axis=1)
        pct = below / (2.0 * b)
        z0 = ndtri(pct)
        n = jackknife.shape[1]
        u = (n - 1.0) * (jackknife.mean(axis=1, keepdims=True) - jackknife)
        with np.errstate(divide="ignore", invalid="ignore"):
            a_hat = (np.sum(u**3, axis=1) / n**3) / 6.0 / (np.sum(u**2, axis=1) / n**2) ** 1.5
            z_lo = float(ndtri(alpha))
            num_lo, num_hi = z0 + z_lo, z0 - z_lo
            a1 = ndtr(z0 + num_lo / (1.0 - a_hat * num_lo))
            a2 = ndtr(z0 + num_hi / (1.0 - a_hat * num_hi))
        bca_used = np.isfinite(z0) & np.isfinite(a_hat) & np.isfinite(a1) & np.isfinite(a2)
        q_lo = np.where(bca_used, a1, q_lo)
        q_hi = np.where(bca_used, a2, q_hi)
    return _quantile_sorted(boot, q_lo), _quantile_sorted(boot, q_hi), bca_used


MAX_EXPANDED_CONFIDENCE = 0.9999


def expanded_confidence(confidence: float, n: int) -> float:
    """Hesterberg's (2015) small-sample expansion of a bootstrap level: 1 - 2 Phi(-sqrt(n/(n-1)) t_{n-1}).

    Bootstrap intervals of a mean are too narrow for small n (they use z instead of t and the 1/n
    variance); asking the bootstrap for this wider level restores the nominal coverage of the mean.
    """
    confidence = _check_confidence(confidence)
    if n < 2:
        return confidence
    t = scipy.stats.t.ppf(0.5 + confidence / 2.0, n - 1)
    # for n = 2 or 3 the expanded level rounds to 1; cap it so the interval is the resampled range's edge
    return min(float(1.0 - 2.0 * ndtr(-math.sqrt(n / (n - 1.0)) * t)), MAX_EXPANDED_CONFIDENCE)


def bootstrap_ci_rows(
    values: ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    method: str = "BCa",
    expand: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Bootstrap CIs of the mean of every row of ``values`` (rows x n units, all finite), vectorised.

    One set of ``n_resamples`` resamples of the n unit positions is shared by all rows. ``expand=True``
    applies :func:`expanded_confidence` (better coverage for n < ~30). Returns ``(low, high, methods)``;
    methods[i] names what row i got: ``"95% BCa bootstrap 10000"``, the percentile fallback with its
    reason, ``"all units equal"`` (CI = [v, v]), or why the CI is NaN (n < 2).
    """
    x = np.atleast_2d(np.asarray(values, dtype=float))
    n_resamples = _check_resamples(n_resamples)
    confidence = _check_confidence(confidence)
    if method not in BOOTSTRAP_METHODS:
        raise AuditError(f"bootstrap method {method!r}: expected one of {', '.join(BOOTSTRAP_METHODS)}")
    if not np.all(np.isfinite(x)):
        raise AuditError("bootstrap_ci_rows: values must be finite (drop non-finite units first)")
    n_rows, n = x.shape
    low = np.full(n_rows, np.nan)
    high = np.full(n_rows, np.nan)
    if n < 2:
        return low, high, ["no units: CI undefined" if n == 0 else "n=1: CI undefined"] * n_rows
    level = f"{round(confidence * 100, 6):g}%" + (" (expanded)" if expand else "")
    if expand:
        confidence = expanded_confidence(confidence, n)
    methods = [""] * n_rows
    constant = np.all(x == x[:, :1], axis=1)
    counts = bootstrap_counts(rng, n=n, n_resamples=n_resamples)
    theta = x.mean(axis=1)
    todo = np.flatnonzero(~constant)
    step = max(1, CHUNK_ELEMENTS // n_resamples)
    for start in range(0, todo.size, step):
        rows = todo[start : start + step]
        xr = x[rows]
        boot = xr @ counts.T / n
        jack = (xr.sum(axis=1, keepdims=True) - xr) / (n - 1) if n >= 3 else None
        lo, hi, used = bca_interval_rows(
            theta_hat=theta[rows], boot=boot, jackknife=jack, confidence=confidence, method=method
        )
        low[rows], high[rows] = lo, hi
        for i, row in enumerate(rows):
            if method == "percentile":
                methods[row] = f"{level} percentile bootstrap {n_resamples}"
            elif used[i]:
                methods[row] = f"{level} BCa bootstrap {n_resamples}"
            else:
                why = "n<3" if n < 3 else "degenerate bootstrap distribution"
                methods[row] = f"{level} percentile bootstrap {n_resamples} (BCa undefined: {why})"
    for row in np.flatnonzero(constant):
        low[row] = high[row] = x[row, 0]
        methods[row] = "all units equal: CI = [v, v]"
    return low, high, methods


# --------------------------------------------------------------------------------- permutation tests


def sign_patterns(n: int) -> np.ndarray:
    """All 2**n sign patterns (+1/-1) of n units as a (2**n, n) float array; row 0 is all +1."""
    codes = np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n)
    return 1.0 - 2.0 * (codes & 1)


def sign_flip_p_rows(
    values: ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    exact_max_n: int = EXACT_MAX_N,
) -> tuple[np.ndarray, str]:
    """Two-sided paired sign-flip permutation p-values of the mean, per row (rows x n units, finite).

    Under H0 (each unit's difference is symmetric about 0) every sign pattern is equally likely. With
    n <= ``exact_max_n`` all 2**n patterns are enumerated (exact p = share of patterns with |sum| >= the
    observed |sum|); otherwise ``n_resamples`` random patterns, shared by all rows, give
    p = (b + 1) / (n_resamples + 1). Returns ``(p, method)``; n < 2 gives NaN.
    """
    x = np.atleast_2d(np.asarray(values, dtype=float))
    n_resamples = _check_resamples(n_resamples)
    if not np.all(np.isfinite(x)):
        raise AuditError("sign_flip_p_rows: values must be finite (drop non-finite units first)")
    n_rows, n = x.shape
    if n < 2:
        return np.full(n_rows, np.nan), "no units: p undefined" if n == 0 else "n=1: p undefined"
    observed = np.abs(x.sum(axis=1))
    threshold = observed - TIE_RTOL * np.abs(x).sum(axis=1)
    if n <= exact_max_n:
        hits = _exact_sign_flip_hits(x, threshold)
        return np.minimum(hits / 2.0**n, 1.0), f"paired sign-flip permutation (exact, n={n})"
    signs = 1.0 - 2.0 * rng.integers(0, 2, (n_resamples, n))
    hits = np.zeros(n_rows, dtype=np.int64)
    step = max(1, CHUNK_ELEMENTS // signs.shape[0])
    for start in range(0, n_rows, step):
        block = np.abs(x[start : start + step] @ signs.T)
        hits[start : start + step] = np.count_nonzero(block >= threshold[start : start + step, None], axis=1)
    p = (hits + 1.0) / (n_resamples + 1.0)
    return np.minimum(p, 1.0), f"paired sign-flip permutation (Monte Carlo {n_resamples}, n={n})"


def _exact_sign_flip_hits(x: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Per row, how many of the 2**n sign patterns give |signed sum| >= threshold (meet in the middle).

    The units split into halves L and H; a pattern's sum is l + h with l among the 2**|L| partial sums of
    L (sorted once per row) and h among those of H, so counting needs only two binary searches per h.
    Memory and time are O(rows x 2**(n/2)), chunked over rows.
    """
    n_rows, n = x.shape
    half = n // 2
    low_signs, high_signs = sign_patterns(half), sign_patterns(n - half)
    hits = np.zeros(n_rows, dtype=np.int64)
    step = max(1, CHUNK_ELEMENTS // (low_signs.shape[0] + high_signs.shape[0]))
    for start in range(0, n_rows, step):
        rows = slice(start, start + step)
        low = np.sort(x[rows, :half] @ low_signs.T, axis=1)
        high = x[rows, half:] @ high_signs.T
        for i, (lo, hi, t) in enumerate(zip(low, high, threshold[rows], strict=True)):
            if t <= 0:
                hits[start + i] = 2**n
                continue
            above = lo.size - np.searchsorted(lo, t - hi, side="left")  # l + h >= t
            below = np.searchsorted(lo, -t - hi, side="right")  # l + h <= -t (disjoint from above as t > 0)
            hits[start + i] = int(above.sum() + below.sum())
    return hits


def term_labelings(
    n_a: int, n_b: int, *, rng: np.random.Generator, n_resamples: int = 10_000, enumerate_max: int = 5_000
) -> tuple[np.ndarray, bool]:
    """Relabellings of n_a + n_b terms into groups of n_a and n_b, as an (L, n_a + n_b) bool array (True = a).

    Every C(n, n_a) labelling when there are at most ``enumerate_max`` (``exact`` True; the observed labelling,
    the first n_a terms, is among them), else ``n_resamples`` uniform random ones. A caller applies one
    labelling to a term in *every* template (a term keeps its permuted label across templates), which is the
    null that persistent term effects need.
    """
    n_resamples = _check_resamples(n_resamples)
    if n_a < 1 or n_b < 1:
        raise AuditError(f"term_labelings: each group needs a term ({n_a}, {n_b})")
    n = n_a + n_b
    count = math.comb(n, n_a)
    if count <= enumerate_max:
        labelings = np.zeros((count, n), dtype=bool)
        for row, chosen in enumerate(itertools.combinations(range(n), n_a)):
            labelings[row, list(chosen)] = True
        return labelings, True
    return np.argsort(rng.random((n_resamples, n)), axis=1) < n_a, False


def upper_tail_p(observed: float, null: ArrayLike, *, exact: bool) -> float:
    """One-sided permutation p (large = extreme): the share of ``null`` values >= ``observed`` (ties within a
    relative 1e-9); ``exact`` when ``null`` enumerates every permutation (it then contains the observed one),
    else p = (b + 1) / (m + 1) for m random permutations. NaN when ``null`` is empty or ``observed`` NaN."""
    values = np.asarray(null, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0 or not math.isfinite(observed):
        return math.nan
    scale = max(abs(observed), float(np.max(np.abs(values))), np.finfo(float).tiny)
    hits = np.count_nonzero(values >= observed - TIE_RTOL * scale)
    p = hits / values.size if exact else (hits + 1.0) / (values.size + 1.0)
    return float(min(p, 1.0))


def permutation_omnibus_rows(
    values: ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
) -> tuple[np.ndarray, str]:
    """Omnibus permutation test of 'no group differs', per row of a (rows, n blocks, k groups) array.

    Statistic: sum over groups of (group mean over blocks - grand mean)^2 (the between-group sum of
    squares of a randomised block design). Under H0 the k values within a block are exchangeable; the same
    ``n_resamples`` within-block permutations are used for every row; p = (b + 1) / (n_resamples + 1).
    Values must be finite (drop incomplete blocks first). Rows with fewer than 2 blocks get NaN.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 3:
        raise AuditError("permutation_omnibus_rows: values must be (rows, blocks, groups)")
    if not np.all(np.isfinite(x)):
        raise AuditError("permutation_omnibus_rows: values must be finite (drop incomplete blocks first)")
    n_rows, n_blocks, k = x.shape
    n_resamples = _check_resamples(n_resamples)
    if n_blocks < 2 or k < 2:
        return np.full(n_rows, np.nan), f"permutation omnibus undefined (n={n_blocks} blocks, k={k} groups)"
    centred = x - x.mean(axis=2, keepdims=True)  # block effects removed; the statistic is invariant to them
    observed = np.sum(centred.mean(axis=1) ** 2, axis=1)
    scale = np.sum(centred**2, axis=(1, 2)) / n_blocks + np.finfo(float).tiny
    perms = np.argsort(rng.random((n_resamples, n_blocks, k)), axis=2)
    flat_index = (np.arange(n_blocks)[None, :, None] * k + perms).reshape(n_resamples, n_blocks * k)
    flat = centred.reshape(n_rows, n_blocks * k)
    hits = np.zeros(n_rows, dtype=np.int64)
    step = max(1, CHUNK_ELEMENTS // max(1, n_rows * n_blocks * k))
    for start in range(0, n_resamples, step):
        permuted = flat[:, flat_index[start : start + step]]  # (rows, m, blocks * k)
        means = permuted.reshape(n_rows, -1, n_blocks, k).mean(axis=2)
        null = np.sum(means**2, axis=2)
        hits += np.count_nonzero(null >= (observed - TIE_RTOL * scale)[:, None], axis=1)
    p = (hits + 1.0) / (n_resamples + 1.0)
    return np.minimum(p, 1.0), f"permutation omnibus (Monte Carlo {n_resamples}, n={n_blocks}, k={k})"


# ------------------------------------------------------------------------------------------- Friedman


def friedman_p(table: ArrayLike) -> float:
    """Friedman test p-value over a (blocks, k groups) table (groups as treatments, blocks as subjects).

    Blocks with a non-finite value are dropped. Fewer than 2 complete blocks gives NaN; every block tied
    gives 1.0. Needs k >= 3 groups (for 2 groups use the sign-flip test).
    """
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[1] < 3:
        raise AuditError("friedman_p: needs a (blocks, groups) table with at least 3 groups")
    t = t[np.all(np.isfinite(t), axis=1)]
    if t.shape[0] < 2:
        return math.nan
    if np.all(t == t[:, :1]):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = float(scipy.stats.friedmanchisquare(*t.T).pvalue)
    return 1.0 if math.isnan(p) else p
