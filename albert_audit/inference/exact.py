"""Sign-flip tail probabilities per row: exact enumeration up to ``exact_max_n`` units, Monte Carlo above.

Under H0 each unit's value is symmetric about the hypothesised shift, so all 2**n sign patterns of the
shifted values are equally likely. The exact count of patterns with sum >= c is computed by
meet-in-the-middle: the 2**(n/2) partial sums of each half are formed, one half sorted, and the other
half's sums looked up by binary search. Memory is O(2**(n/2)) per row (n = 20: two blocks of 1,024), so
exact enumeration to n = 20 (and beyond) is cheap and p-value floors of Monte Carlo stop deciding verdicts.

Missing units (NaN) are dropped per row: each row's finite values are compacted and rows are processed by
their own n, so every row gets the p-value of its own units.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from albert_audit.errors import AuditError

ALTERNATIVES = ("two-sided", "greater", "less")
EXACT_MAX_N = 20
"""Default: rows with at most this many units are enumerated exactly (2**20 patterns)."""
_TIE_RTOL = 1e-9
_MC_CHUNK = 2_000_000


def sign_patterns(n: int) -> np.ndarray:
    """All 2**n sign patterns (+1/-1) as a (2**n, n) float array; row 0 is all +1."""
    codes = np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n)
    return 1.0 - 2.0 * (codes & 1)


def _half_sums(x: np.ndarray) -> np.ndarray:
    """(R, m) -> (R, 2**m) every signed sum of the m columns (m may be 0: one sum, 0)."""
    return x @ sign_patterns(x.shape[1]).T


def exact_upper_counts(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Per row of finite ``x`` (R, n): how many of the 2**n sign patterns give sum(s * x) >= c (int64).

    ``c`` is compared with a tolerance of 1e-9 * sum|x| (sums of the same numbers in another order).
    """
    n_rows, n = x.shape
    tol = _TIE_RTOL * np.abs(x).sum(axis=1)
    h = n // 2
    left = _half_sums(x[:, :h])
    right = np.sort(_half_sums(x[:, h:]), axis=1)
    size = right.shape[1]
    counts = np.empty(n_rows, dtype=np.int64)
    for i in range(n_rows):
        need = c[i] - tol[i] - left[i]  # right >= need
        counts[i] = size * left.shape[1] - int(np.searchsorted(right[i], need, side="left").sum())
    return counts


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise AuditError(f"alternative {alternative!r}: expected one of {', '.join(ALTERNATIVES)}")


def sign_flip_p(
    values: ArrayLike,
    *,
    shift: float | ArrayLike = 0.0,
    alternative: str = "two-sided",
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    exact_max_n: int = EXACT_MAX_N,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sign-flip p-values of H0 'units symmetric about ``shift``' for every row of ``values`` (R, n).

    ``values``: rows x units, NaN = missing unit (dropped). ``shift``: scalar or (R,) hypothesised mean.
    ``alternative``: ``"greater"`` (mean > shift), ``"less"``, or ``"two-sided"``. Rows with at most
    ``exact_max_n`` finite units are enumerated exactly (p = count / 2**n, so p >= 2**-n); longer rows
    use ``n_resamples`` random patterns shared by rows of the same n, p = (b + 1) / (n_resamples + 1).
    Returns ``(p, n, exact)``; rows with fewer than 2 units get p = NaN.
    """
    _check_alternative(alternative)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer) or n_resamples < 1:
        raise AuditError(f"n_resamples {n_resamples!r}: must be a positive integer")
    x = np.atleast_2d(np.asarray(values, dtype=float))
    if x.ndim != 2:
        raise AuditError("sign_flip_p: values must be a (rows, units) array")
    n_rows = x.shape[0]
    shifts = np.broadcast_to(np.asarray(shift, dtype=float), (n_rows,))
    finite = np.isfinite(x)
    n = finite.sum(axis=1)
    # compact each row's finite values to the front, shifted so that H0 is 'symmetric about 0'
    order = np.argsort(~finite, axis=1, kind="stable")
    compact = np.take_along_axis(np.where(finite, x - shifts[:, None], 0.0), order, axis=1)
    if alternative == "less":
        compact = -compact
    p = np.full(n_rows, np.nan)
    exact = np.zeros(n_rows, dtype=bool)
    for k in np.unique(n):
        if k < 2:
            continue
        rows = np.flatnonzero(n == k)
        xr = compact[rows, :k]
        observed = xr.sum(axis=1)
        two_sided = alternative == "two-sided"
        c = np.abs(observed) if two_sided else observed
        if k <= exact_max_n:
            hits = exact_upper_counts(xr, c).astype(float)
            total = 2.0**k
            if two_sided:  # |S| >= c: both tails, which are mirror images; everything when c is ~0
                tol = _TIE_RTOL * np.abs(xr).sum(axis=1)
                hits = np.where(c <= tol, total, 2.0 * hits)
            p[rows] = np.minimum(hits / total, 1.0)
            exact[rows] = True
        else:
            p[rows] = _monte_carlo_p(xr, c, two_sided, rng=rng, n_resamples=int(n_resamples))
    return p, n, exact


def _monte_carlo_p(
    x: np.ndarray, c: np.ndarray, two_sided: bool, *, rng: np.random.Generator, n_resamples: int
) -> np.ndarray:
    n_rows, k = x.shape
    signs = 1.0 - 2.0 * rng.integers(0, 2, (n_resamples, k))
    tol = _TIE_RTOL * np.abs(x).sum(axis=1)
    hits = np.zeros(n_rows)
    step = max(1, _MC_CHUNK // n_resamples)
    for start in range(0, n_rows, step):
        block = x[start : start + step] @ signs.T
        if two_sided:
            block = np.abs(block)
        hits[start : start + step] = np.count_nonzero(block >= (c - tol)[start : start + step, None], axis=1)
    return np.minimum((hits + 1.0) / (n_resamples + 1.0), 1.0)


def margin_tests(
    values: ArrayLike,
    margin: float,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    exact_max_n: int = EXACT_MAX_N,
) -> tuple[np.ndarray, np.ndarray]:
    """Sign-flip tests of every row's mean against a practical margin: ``(p_material, p_equivalence)``.

    p_material (H0 |mean| <= margin): twice the smaller of the one-sided p of mean > margin and of mean <
    -margin (each direction at half the level, as the two-sided interval). p_equivalence (TOST, H0 |mean| >=
    margin): the larger of the one-sided p of mean > -margin and of mean < margin. A row whose finite values
    are all exactly 0 is a known 0 (p_material 1, p_equivalence 0). Rows with fewer than 2 units: NaN.
    """
    x = np.atleast_2d(np.asarray(values, dtype=float))
    kw = dict(rng=rng, n_resamples=n_resamples, exact_max_n=exact_max_n)
    up, _, _ = sign_flip_p(x, shift=margin, alternative="greater", **kw)
    down, _, _ = sign_flip_p(x, shift=-margin, alternative="less", **kw)
    above, _, _ = sign_flip_p(x, shift=-margin, alternative="greater", **kw)
    below, _, _ = sign_flip_p(x, shift=margin, alternative="less", **kw)
    p_material = np.minimum(1.0, 2.0 * np.minimum(up, down))
    p_equivalence = np.maximum(above, below)
    zero = np.all((x == 0) | np.isnan(x), axis=1) & (np.isfinite(x).sum(axis=1) >= 2)
    p_material[zero], p_equivalence[zero] = 1.0, 0.0
    return p_material, p_equivalence
