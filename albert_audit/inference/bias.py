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

Against a practical margin m (:func:`margin_tests`): ``t = (U - m^2) / se`` on J - 1 degrees of freedom;
"beyond m" needs the one-sided t test and the sign-flip test both at alpha / 2 (the level of the interval's
lower end), "within m" is the one-sided t test at alpha (the (1 - 2 alpha) interval's upper end below m).

Two models on the same templates (:func:`paired_delta`): delta = score_candidate - score_base, with a
paired jackknife t interval over templates and a two-sided test that swaps the two models' gap vectors
within templates (exact over the 2**(J-1) swap patterns up to ``exact_max_n``: delta is odd in the swaps).
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
    """one-sided sign-flip p of 'no bias' (U as large as observed)."""
    se: float
    """jackknife (leave one template out) standard error of U."""
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
        return BiasScore(nan, nan, nan, nan, nan, nan, nan, nan, 0, n_templates,
                         "no target with >= 3 templates" + note)
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
        se=se,
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


def _t_sides(t: float, df: float) -> tuple[float, float]:
    """(P(T >= t), P(T <= t)) of a t statistic; t = +-inf (se 0) gives 0 / 1, t NaN (0 / 0) gives 1 / 1."""
    if math.isnan(t):
        return 1.0, 1.0
    dist = scipy.stats.t(df)
    return float(dist.sf(t)), float(dist.cdf(t))


def _ratio(num: float, se: float) -> float:
    if se > 0:
        return num / se
    return math.copysign(math.inf, num) if num != 0 else math.nan


def margin_tests(res: BiasScore, margin: float) -> tuple[float, float]:
    """(p_material, p_equivalence) of a bias score against the margin ``margin`` (nats, >= 0).

    p_material (H0 score <= margin): ``min(1, 2 max(P(T >= t), p_value))`` with ``t = (U - margin^2) / se``:
    beyond the margin at alpha means both the t test and the sign-flip test reject at alpha / 2, as the
    interval's lower end does. p_equivalence (H0 score >= margin): ``P(T <= t)``, one-sided at alpha: the
    (1 - 2 alpha) interval's upper end below the margin. NaN when the score is undefined.
    """
    if not (math.isfinite(res.squared) and math.isfinite(res.se)) or res.n_templates < 3:
        return math.nan, math.nan
    up, down = _t_sides(_ratio(res.squared - margin**2, res.se), res.n_templates - 1.0)
    return min(1.0, 2.0 * max(up, res.p_value)), down


@dataclass(frozen=True)
class BiasDelta:
    """Candidate minus base bias score over the same templates (nats)."""

    base: float
    cand: float
    delta: float
    ci_low: float
    ci_high: float
    """two-sided 1 - alpha paired jackknife t interval over templates."""
    p_value: float
    """two-sided p of 'the models do not differ': the models' gaps swapped within templates."""
    p_material: float
    """p of H0 |delta| <= margin (each direction at half the level), t over templates."""
    p_equivalence: float
    """TOST p of H0 |delta| >= margin."""
    n: int
    method: str


def _scores(s: np.ndarray, q: np.ndarray, n: float) -> np.ndarray:
    """sqrt(max(U, 0)) of (..., rows) template sums ``s`` and sums of squares ``q`` over n templates."""
    u = np.mean((s**2 - q) * (1.0 / (n * (n - 1.0))), axis=-1)
    return np.sqrt(np.maximum(u, 0.0))


def paired_delta(
    gap_b: ArrayLike,
    gap_c: ArrayLike,
    *,
    rng: np.random.Generator,
    alpha: float = 0.05,
    margin: float = math.log(1.1),
    n_resamples: int = 10_000,
    exact_max_n: int = EXACT_MAX_N,
) -> BiasDelta:
    """The change of the debiased bias score between two models: (rows, templates) finite gaps of each model,
    the same rows and templates in the same order (rows: targets x group pairs).

    Each model's score is :func:`bias_score`'s (every row with all J templates). CI: delta +- t_{J-1} se,
    se the jackknife over templates of the delta (both models leave the same template out). p: two-sided,
    the two models' gap vectors swapped within each template (exact over 2**(J-1) patterns for J <=
    ``exact_max_n``, else ``n_resamples`` random patterns with p = (b + 1) / (m + 1)). Margin tests: t tests
    of delta against +-``margin``. Identical models give delta 0, an interval [0, 0], p 1 and a negligible
    delta. Fewer than 3 templates: scores only.
    """
    if not 0.0 < float(alpha) < 0.5:
        raise AuditError(f"alpha {alpha!r}: must be between 0 and 0.5")
    b = np.ascontiguousarray(gap_b, dtype=float)
    c = np.ascontiguousarray(gap_c, dtype=float)
    if b.ndim != 2 or b.shape != c.shape:
        raise AuditError("paired_delta: gap_b and gap_c must be (rows, templates) arrays of the same shape")
    if not (np.isfinite(b).all() and np.isfinite(c).all()):
        raise AuditError("paired_delta: gaps must be finite (keep the templates complete in both models)")
    rows, n = b.shape
    nan = math.nan
    if rows == 0 or n < 2:
        return BiasDelta(nan, nan, nan, nan, nan, nan, nan, nan, n, "fewer than 2 templates: no score")
    sb, qb, sc, qc = b.sum(axis=1), (b**2).sum(axis=1), c.sum(axis=1), (c**2).sum(axis=1)
    base, cand = float(_scores(sb, qb, n)), float(_scores(sc, qc, n))
    delta = cand - base
    if n < 3:
        return BiasDelta(base, cand, delta, nan, nan, nan, nan, nan, n, "2 templates: no interval or test")
    jack = _scores(sc[None, :] - c.T, qc[None, :] - (c**2).T, n - 1) - _scores(sb[None, :] - b.T,
                                                                                qb[None, :] - (b**2).T, n - 1)
    se = float(np.sqrt((n - 1.0) / n * np.sum((jack - jack.mean()) ** 2)))  # identical models: exactly 0
    df = n - 1.0
    t1 = float(scipy.stats.t.ppf(1.0 - alpha / 2.0, df))
    up_m, down_m = _t_sides(_ratio(delta - margin, se), df)[0], _t_sides(_ratio(delta + margin, se), df)[1]
    p_material = min(1.0, 2.0 * min(up_m, down_m))
    p_equivalence = max(_t_sides(_ratio(delta + margin, se), df)[0], _t_sides(_ratio(delta - margin, se), df)[1])
    # swap test: s_j = -1 swaps the models in template j
    exact = n <= exact_max_n
    if exact:
        signs = np.hstack([np.ones((2 ** (n - 1), 1)), sign_patterns(n - 1)])
        kind = f"exact, {signs.shape[0]} patterns"
    else:
        signs = 1.0 - 2.0 * rng.integers(0, 2, (n_resamples, n))
        kind = f"Monte Carlo {n_resamples}"
    d_s, d_q = (c - b), (c**2 - b**2)
    t_s, t_q = sc + sb, qc + qb
    tol = 1e-9 * max(abs(delta), base, cand, np.finfo(float).tiny)
    hits = 0
    step = max(1, _CHUNK_ELEMENTS // max(1, rows))
    for start in range(0, signs.shape[0], step):
        block = signs[start : start + step]
        fs, fq = block @ d_s.T, block @ d_q.T  # (m, rows)
        null = _scores((t_s + fs) / 2.0, (t_q + fq) / 2.0, n) - _scores((t_s - fs) / 2.0, (t_q - fq) / 2.0, n)
        hits += int(np.count_nonzero(np.abs(null) >= abs(delta) - tol))
    m = signs.shape[0]
    p = hits / m if exact else (hits + 1.0) / (m + 1.0)
    level = f"{round((1 - alpha) * 100, 6):g}%"
    return BiasDelta(
        base=base, cand=cand, delta=delta, ci_low=delta - t1 * se, ci_high=delta + t1 * se, p_value=min(p, 1.0),
        p_material=p_material, p_equivalence=p_equivalence, n=n,
        method=(f"delta of the debiased RMS score over {rows} rows and {n} templates; {level} paired jackknife t "
                f"interval; p: the models' gaps swapped within templates ({kind}); margin tests: t over "
                f"templates, margin {margin:.4g} nats"),
    )
