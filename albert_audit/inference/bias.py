"""A debiased probe-set bias score whose interval covers the truth, including a true 0.

The naive score ``mean_i |mean_j d_ij|`` (targets i, templates j) is biased upward by noise: at no bias
at all its expectation is > 0 and its bootstrap interval never covers 0. No unbiased estimator of a mean
of absolute values exists, so the score here is the root-mean-square gap ``theta = sqrt(mean_i delta_i^2)``
(delta_i the target's true gap, templates random), estimated without bias on the squared scale by the
U-statistic ``U = mean_i (S_i^2 - Q_i) / (n_i (n_i - 1))`` (``S_i``, ``Q_i`` the sum and the sum of squares
of target i's n_i template gaps): ``E[U] = theta^2`` when templates are independent.

Interval for theta^2: ``U +- t_{J-1} * se`` with the jackknife (leave one template out) standard error,
clipped at 0; its lower end is also set to 0 unless the exact sign-flip test of 'no bias' (templates'
gap vectors flipped jointly over targets, one-sided) rejects at alpha / 2. So the interval excludes a
true 0 with probability <= alpha / 2 whatever the jackknife does. theta's interval is the square root.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike

from albert_audit.errors import AuditError
from albert_audit.inference.exact import EXACT_MAX_N, sign_patterns

_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class BiasScore:
    """The debiased bias score of one probe set (nats)."""

    score: float
    """sqrt(max(U, 0)): the root-mean-square gap over targets, debiased on the squared scale."""
    squared: float
    """U, the unbiased estimate of mean_i delta_i^2 (may be negative by noise)."""
    ci_low: float
    ci_high: float
    """two-sided 1 - alpha interval of the score."""
    p_value: float
    """sign-flip p of 'no bias' (U as large as observed)."""
    naive: float
    """the naive mean |gap| over targets, for reference."""
    naive_null_mean: float
    """the naive score's mean under the sign-flip null (what noise alone gives)."""
    n_targets: int
    n_templates: int
    method: str


def _u_rows(s: np.ndarray, q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """mean over targets of (S^2 - Q) w, for S of shape (..., targets)."""
    return np.mean((s**2 - q) * w, axis=-1)


def bias_score(
    gaps: ArrayLike,
    *,
    rng: np.random.Generator,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    exact_max_n: int = EXACT_MAX_N,
) -> BiasScore:
    """Debiased RMS bias score of a (targets, templates) array of per-template gaps (NaN = missing).

    Targets with fewer than 3 templates are left out (the jackknife needs 3). The sign-flip null is exact
    for up to ``exact_max_n`` templates (2**(J-1) patterns: U is even in the signs), otherwise
    ``n_resamples`` random patterns from ``rng`` with p = (b + 1) / (n_resamples + 1).
    """
    if not 0.0 < float(alpha) < 0.5:
        raise AuditError(f"alpha {alpha!r}: must be between 0 and 0.5")
    d = np.asarray(gaps, dtype=float)
    if d.ndim != 2:
        raise AuditError("bias_score: gaps must be a (targets, templates) array")
    ok = np.isfinite(d)
    n_i = ok.sum(axis=1)
    keep = n_i >= 3
    d, ok, n_i = np.where(ok, d, 0.0)[keep], ok[keep], n_i[keep]
    templates = ok.any(axis=0)
    d, ok = d[:, templates], ok[:, templates]
    n_targets, n_templates = d.shape
    dropped = int((~keep).sum())
    note = f"; {dropped} target(s) with < 3 templates left out" if dropped else ""
    if n_targets == 0:
        nan = math.nan
        return BiasScore(nan, nan, nan, nan, nan, nan, nan, 0, n_templates, "no target with >= 3 templates" + note)
    s, q = d.sum(axis=1), (d**2).sum(axis=1)
    w = 1.0 / (n_i * (n_i - 1.0))
    u = float(_u_rows(s, q, w))
    naive = float(np.mean(np.abs(s / n_i)))
    # jackknife over templates
    s_j = s[None, :] - d.T  # (J, targets)
    q_j = q[None, :] - (d**2).T
    n_j = n_i[None, :] - ok.T
    u_j = np.mean((s_j**2 - q_j) / (n_j * (n_j - 1.0)), axis=1)
    se = float(np.sqrt((n_templates - 1.0) / n_templates * np.sum((u_j - u_j.mean()) ** 2)))
    # sign-flip null, jointly over targets
    exact = n_templates <= exact_max_n
    if exact:
        patterns = sign_patterns(n_templates - 1)
        signs = np.hstack([np.ones((patterns.shape[0], 1)), patterns])
        kind = f"exact, {signs.shape[0]} patterns"
    else:
        signs = 1.0 - 2.0 * rng.integers(0, 2, (n_resamples, n_templates))
        kind = f"Monte Carlo {n_resamples}"
    tol = 1e-9 * max(abs(u), float(np.mean(q * w)), np.finfo(float).tiny)
    hits = 0
    null_naive = 0.0
    step = max(1, _CHUNK_ELEMENTS // max(1, n_targets))
    for start in range(0, signs.shape[0], step):
        sums = signs[start : start + step] @ d.T  # (m, targets)
        hits += int(np.count_nonzero(_u_rows(sums, q, w) >= u - tol))
        null_naive += float(np.abs(sums / n_i).mean(axis=1).sum())
    m = signs.shape[0]
    p = hits / m if exact else (hits + 1.0) / (m + 1.0)
    t = float(scipy.stats.t.ppf(1.0 - alpha / 2.0, n_templates - 1))
    high2 = max(u + t * se, 0.0)
    low2 = max(u - t * se, 0.0) if p <= alpha / 2.0 else 0.0
    level = f"{round((1 - alpha) * 100, 6):g}%"
    return BiasScore(
        score=math.sqrt(max(u, 0.0)),
        squared=u,
        ci_low=math.sqrt(low2),
        ci_high=math.sqrt(high2),
        p_value=min(p, 1.0),
        naive=naive,
        naive_null_mean=null_naive / m,
        n_targets=n_targets,
        n_templates=n_templates,
        method=(
            f"RMS gap over {n_targets} targets, debiased (U-statistic over {n_templates} templates); "
            f"{level} jackknife t interval, lower end 0 unless the sign-flip test rejects at alpha/2; "
            f"p: templates' signs flipped jointly over targets ({kind})" + note
        ),
    )
