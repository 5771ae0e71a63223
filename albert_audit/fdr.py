"""False discovery rate: Benjamini-Hochberg q-values, over one family or separately within families."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from albert_audit.errors import AuditError


def benjamini_hochberg(pvals: ArrayLike) -> np.ndarray:
    """Benjamini-Hochberg q-values (step-up, capped at 1), same shape as ``pvals``.

    NaN p-values stay NaN and do not count towards the number of tests; the others are corrected among
    themselves. p-values outside [0, 1] are an AuditError.
    """
    p = np.asarray(pvals, dtype=float)
    q = np.full(p.shape, np.nan)
    known = ~np.isnan(p)
    values = p[known]
    if values.size == 0:
        return q
    if np.any((values < 0) | (values > 1)):
        raise AuditError("benjamini_hochberg: p-values must lie in [0, 1]")
    m = values.size
    order = np.argsort(values, kind="stable")
    scaled = values[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out = np.empty(m)
    out[order] = adjusted
    q[known] = out
    return q


def benjamini_hochberg_by(pvals: ArrayLike, families: Sequence[object]) -> np.ndarray:
    """Benjamini-Hochberg q-values computed separately within each family (the rows sharing a ``families``
    label, one per p-value), so one family's q-values never depend on another family's p-values."""
    p = np.asarray(pvals, dtype=float).ravel()
    seen: dict[object, int] = {}
    codes = np.array([seen.setdefault(label, len(seen)) for label in families], dtype=np.int64)
    if codes.shape != p.shape:
        raise AuditError("benjamini_hochberg_by: one family label per p-value")
    q = np.full(p.shape, np.nan)
    for family in range(len(seen)):
        where = codes == family
        q[where] = benjamini_hochberg(p[where])
    return q
