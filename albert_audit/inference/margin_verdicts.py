"""Practical significance: verdicts on effects against a margin, FDR per family, and compare's change classes.

Verdict of one signed effect, in this order:

- ``material``: the effect lies beyond +-margin, i.e. the Benjamini-Hochberg q of ``p_material`` (the test
  of H0 |effect| <= margin) is <= alpha within the row's family;
- ``negligible``: equivalence shown, the TOST p (H0 |effect| >= margin) is <= alpha, i.e. the 1 - 2 alpha
  interval lies within +-margin (per row, as TOST is; not FDR-adjusted);
- ``below_margin``: differs from zero (q of the two-sided p <= alpha within the family), neither of the above;
- ``inconclusive``: none of these.

Families are e.g. (probe set, metric): q-values are computed within each family only, so one probe set
never shifts another's verdicts.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from albert_audit.errors import AuditError
from albert_audit.stats import benjamini_hochberg

VERDICTS = ("material", "negligible", "below_margin", "inconclusive")
CHANGES = ("amplified", "reduced", "reversed", "emerged", "negligible", "inconclusive")
GAP_MARGIN = math.log(1.25)
"""Default margin of a log-ratio effect: a 1.25x probability ratio (0.223 nats)."""
DELTA_MARGIN = math.log(1.1)
"""Default margin of a delta between models: a 1.1x ratio (0.095 nats)."""


def fdr_by_family(p_values: ArrayLike, families: ArrayLike | None = None) -> np.ndarray:
    """Benjamini-Hochberg q-values computed separately within each family label (NaN p stays NaN)."""
    p = np.asarray(p_values, dtype=float).ravel()
    if families is None:
        return benjamini_hochberg(p)
    fam = np.asarray(families, dtype=object).ravel()
    if fam.shape != p.shape:
        raise AuditError(f"families: expected {p.size} labels, got {fam.size}")
    q = np.full(p.shape, np.nan)
    _, family = np.unique(np.array([str(x) for x in fam]), return_inverse=True)
    for f in np.unique(family):
        rows = family == f
        q[rows] = benjamini_hochberg(p[rows])
    return q


def classify(
    *,
    p_value: ArrayLike,
    p_material: ArrayLike,
    p_equivalence: ArrayLike,
    alpha: float = 0.05,
    families: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verdict per row: returns ``(verdict, q_value, q_material)`` (verdict is an object array).

    ``p_value``: two-sided p of effect = 0; ``p_material``: p of |effect| <= margin; ``p_equivalence``: TOST
    p of |effect| >= margin (all from e.g. :func:`albert_audit.inference.crossed.crossed_gap`). ``alpha``:
    the run's FDR level and the TOST level. ``families``: one label per row; BH runs within each.
    """
    if not 0.0 < float(alpha) < 0.5:
        raise AuditError(f"alpha {alpha!r}: must be between 0 and 0.5")
    p = np.asarray(p_value, dtype=float).ravel()
    pm = np.asarray(p_material, dtype=float).ravel()
    pe = np.asarray(p_equivalence, dtype=float).ravel()
    if not p.shape == pm.shape == pe.shape:
        raise AuditError("classify: p_value, p_material and p_equivalence must have the same length")
    q = fdr_by_family(p, families)
    qm = fdr_by_family(pm, families)
    verdict = np.full(p.shape, "inconclusive", dtype=object)
    below = q <= alpha
    verdict[below] = "below_margin"
    verdict[pe <= alpha] = "negligible"
    verdict[qm <= alpha] = "material"
    return verdict, q, qm


def change(
    *,
    base_effect: ArrayLike,
    base_verdict: ArrayLike,
    candidate_effect: ArrayLike,
    candidate_verdict: ArrayLike,
    delta_verdict: ArrayLike,
) -> np.ndarray:
    """Compare's change class per row, from the two models' verdicts and the delta's verdict.

    Without a material delta: ``negligible`` when the delta is negligible, else ``inconclusive``. With a
    material delta: ``emerged`` (base not material, candidate material), ``reversed`` (both material, of
    opposite signs), else ``amplified`` when the gap grew in size (keeping its sign, or from a base that is
    not material) and ``reduced`` otherwise (it shrank, or a material base gap crossed zero without a
    material candidate gap).
    """
    be = np.asarray(base_effect, dtype=float).ravel()
    ce = np.asarray(candidate_effect, dtype=float).ravel()
    bv = np.asarray(base_verdict, dtype=object).ravel()
    cv = np.asarray(candidate_verdict, dtype=object).ravel()
    dv = np.asarray(delta_verdict, dtype=object).ravel()
    if not be.shape == ce.shape == bv.shape == cv.shape == dv.shape:
        raise AuditError("change: all inputs must have the same length")
    for name, arr in (("base_verdict", bv), ("candidate_verdict", cv), ("delta_verdict", dv)):
        bad = sorted({str(v) for v in arr} - set(VERDICTS))
        if bad:
            raise AuditError(f"change: {name} has unknown verdict(s) {', '.join(bad)}")
    out = np.where(dv == "negligible", "negligible", "inconclusive").astype(object)
    material = dv == "material"
    base_mat, cand_mat = bv == "material", cv == "material"
    grew = (np.abs(ce) > np.abs(be)) & ((np.sign(ce) == np.sign(be)) | ~base_mat)
    cls = np.where(grew, "amplified", "reduced").astype(object)
    cls = np.where(base_mat & cand_mat & (np.sign(be) * np.sign(ce) < 0), "reversed", cls)
    cls = np.where(~base_mat & cand_mat, "emerged", cls)
    out[material] = cls[material]
    return out
