"""Group-level inference for a signed gap between two groups, templates and terms crossed.

Per target (one row) the data are item values ``a`` (templates x group a's terms) and ``b`` (templates x
group b's terms), NaN where a term is missing from a template. The effect is
``mean over templates of (mean over a's terms - mean over b's terms)``.

Model behind the claim "group a differs from group b" (random templates, random terms):
``y[t, k] = mu_g + u_k + w_{t,g} + e_{t,k}`` with term effects ``u`` that persist across templates,
template x group interactions ``w`` and residuals ``e``. Then
``Var(effect) = s_u^2 (1/Ka + 1/Kb) + Var(w_a - w_b) / T + s_e^2 (1/Ka + 1/Kb) / T``.
A template-only test (sign flips of the per-template gaps) sees the last two parts only; a term-only test
(term-label permutation) sees the first and last. Both are anti-conservative for a group claim.

``variance="quasi_f"`` (default) estimates that variance as ``V_templates + V_terms - V_residual`` (the
residual part is in both one-way estimates; Clark's 1973 F' as a t statistic), floored at the larger one-way
estimate. ``variance="min_f"`` keeps the sum ``V_templates + V_terms`` (Clark's min-F'): conservative, less
power. Both held their size in every simulated cell with >= 5 templates (docs/inference.md); with 3-4
templates both ran slightly liberal (up to 0.066), hence ``min_templates``.
Degrees of freedom: Welch-Satterthwaite over the components.

Scope: with at least ``min_terms`` terms in each group (and ``min_templates`` templates) the row's scope
is ``"group"`` (the claim
generalises to new terms and templates, t test above). Otherwise the scope is ``"terms"``: inference over
templates only (exact sign flips of the per-template gaps), a claim about these terms.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike

from albert_audit.errors import AuditError
from albert_audit.inference.exact import EXACT_MAX_N, margin_tests, sign_flip_p

MIN_TERMS = 5
"""Default: a group needs this many terms for a group-scope claim."""
MIN_TEMPLATES = 5
"""Default: a group-scope claim needs this many templates (below, the Satterthwaite t runs liberal)."""
VARIANCES = ("min_f", "quasi_f")
SCOPES = ("group", "terms")


@dataclass(frozen=True)
class GapInference:
    """Inference for a signed gap, one entry per row (target). Arrays have shape (R,)."""

    effect: np.ndarray
    """mean over templates of the group-mean difference (nats for log-probabilities)."""
    se: np.ndarray
    """standard error used by the CIs (crossed for scope 'group', templates only for 'terms')."""
    df: np.ndarray
    """degrees of freedom of the t reference (Satterthwaite for 'group', T - 1 for 'terms')."""
    p_value: np.ndarray
    """two-sided p of effect = 0."""
    p_material: np.ndarray
    """p of H0 |effect| <= margin against |effect| > margin (both directions, each at half the level)."""
    p_equivalence: np.ndarray
    """TOST p of H0 |effect| >= margin (equivalence shown when <= alpha)."""
    ci_low: np.ndarray
    ci_high: np.ndarray
    """two-sided 1 - alpha interval."""
    tost_low: np.ndarray
    tost_high: np.ndarray
    """two-sided 1 - 2 alpha interval (the TOST interval)."""
    scope: np.ndarray
    """'group' or 'terms' (object array)."""
    n_templates: np.ndarray
    n_terms_a: np.ndarray
    n_terms_b: np.ndarray
    v_templates: np.ndarray
    v_terms: np.ndarray
    v_residual: np.ndarray
    """variance components of the effect's variance (template, term, residual parts)."""
    method: list[str] = field(default_factory=list)
    margin: float = 0.0
    alpha: float = 0.05


def _check(alpha: float, margin: float, min_terms: int, min_templates: int, variance: str) -> None:
    if not 0.0 < float(alpha) < 0.5:
        raise AuditError(f"alpha {alpha!r}: must be between 0 and 0.5")
    if not math.isfinite(float(margin)) or float(margin) < 0.0:
        raise AuditError(f"margin {margin!r}: must be a finite number >= 0")
    if isinstance(min_terms, bool) or not isinstance(min_terms, int | np.integer) or min_terms < 2:
        raise AuditError(f"min_terms {min_terms!r}: must be an integer >= 2")
    if isinstance(min_templates, bool) or not isinstance(min_templates, int | np.integer) or min_templates < 2:
        raise AuditError(f"min_templates {min_templates!r}: must be an integer >= 2")
    if variance not in VARIANCES:
        raise AuditError(f"variance {variance!r}: expected one of {', '.join(VARIANCES)}")


def _cube(values: ArrayLike, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise AuditError(f"{name}: expected an array (targets, templates, terms), got {x.ndim} dimensions")
    return np.where(np.isfinite(x), x, np.nan)


def _nanmean(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean over ``axis`` ignoring NaN, and the count; all-NaN gives NaN without a warning."""
    ok = np.isfinite(x)
    n = ok.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, x, 0.0).sum(axis=axis) / n, n


def _nanvar(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample variance (ddof 1) over ``axis`` ignoring NaN, and the count (NaN when n < 2)."""
    mean, n = _nanmean(x, axis)
    dev = np.where(np.isfinite(x), x - np.expand_dims(mean, axis), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= 2, (dev**2).sum(axis=axis) / (n - 1), np.nan), n


def _residual_variance(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the template x term residual variance of an additive two-way fit, and its df."""
    row, _ = _nanmean(y, 2)  # (R, T)
    col, n_col = _nanmean(y, 1)  # (R, K)
    grand, _ = _nanmean(y.reshape(y.shape[0], -1), 1)
    r = y - row[:, :, None] - col[:, None, :] + grand[:, None, None]
    ok = np.isfinite(r)
    cells = ok.sum(axis=(1, 2))
    n_t = ok.any(axis=2).sum(axis=1)
    n_k = (n_col > 0).sum(axis=1)
    dof = cells - n_t - n_k + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        s2 = np.where(dof > 0, (np.where(ok, r, 0.0) ** 2).sum(axis=(1, 2)) / dof, np.nan)
    return s2, dof


def _t_tests(
    effect: np.ndarray, se: np.ndarray, df: np.ndarray, margin: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(two-sided p, p beyond margin, TOST p) from a t reference; se = 0 handled as a known value."""
    dist = scipy.stats.t(np.where(np.isfinite(df) & (df > 0), df, np.inf))

    def z(shift: float) -> np.ndarray:
        num = effect - shift
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / se
        return np.where((se == 0) & (num == 0), 0.0, out)

    p = np.where((se == 0) & (effect == 0), 1.0, 2.0 * dist.sf(np.abs(z(0.0))))
    p_material = np.minimum(1.0, 2.0 * np.minimum(dist.sf(z(margin)), dist.cdf(z(-margin))))
    p_equivalence = np.maximum(dist.sf(z(-margin)), dist.cdf(z(margin)))
    return np.minimum(p, 1.0), p_material, p_equivalence


def crossed_gap(
    a: ArrayLike,
    b: ArrayLike,
    *,
    rng: np.random.Generator,
    alpha: float = 0.05,
    margin: float = math.log(1.25),
    min_terms: int = MIN_TERMS,
    min_templates: int = MIN_TEMPLATES,
    variance: str = "quasi_f",
    n_resamples: int = 10_000,
    exact_max_n: int = EXACT_MAX_N,
) -> GapInference:
    """Inference for the signed gap a - b of every row: effect, p, margin tests, CIs and scope.

    ``a``: (targets, templates, terms of a), ``b``: (targets, templates, terms of b); non-finite values are
    missing items. A template counts when both groups have a value there; a term counts when it has a value
    in a counted template. Scope ``"group"`` when both groups have >= ``min_terms`` counted terms and there
    are >= ``min_templates`` counted templates (crossed t test, ``variance`` as in the module docstring),
    else ``"terms"`` (exact sign-flip tests over the
    per-template gaps for p, p_material and p_equivalence, up to ``exact_max_n`` templates; Monte Carlo with
    ``n_resamples`` patterns from ``rng`` above; t interval over templates). ``margin``: the practical
    margin (default log 1.25 nats). Rows with fewer than 2 counted templates get NaN tests.
    """
    _check(alpha, margin, min_terms, min_templates, variance)
    xa, xb = _cube(a, "a"), _cube(b, "b")
    if xa.shape[:2] != xb.shape[:2]:
        raise AuditError(f"a and b must share (targets, templates): got {xa.shape[:2]} and {xb.shape[:2]}")
    mean_a, _ = _nanmean(xa, 2)
    mean_b, _ = _nanmean(xb, 2)
    used = np.isfinite(mean_a) & np.isfinite(mean_b)  # (R, T)
    d = np.where(used, mean_a - mean_b, np.nan)
    effect, n_t = _nanmean(d, 1)
    var_d, _ = _nanvar(d, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        v_templates = var_d / n_t
    # term means after removing each template's level (matters only when terms miss templates)
    centre = np.where(used, (mean_a + mean_b) / 2.0, np.nan)[:, :, None]
    ya = np.where(used[:, :, None], xa - centre, np.nan)
    yb = np.where(used[:, :, None], xb - centre, np.nan)
    term_a, _ = _nanmean(ya, 1)
    term_b, _ = _nanmean(yb, 1)
    var_a, k_a = _nanvar(term_a, 1)
    var_b, k_b = _nanvar(term_b, 1)
    s2_a, dof_a = _residual_variance(ya)
    s2_b, dof_b = _residual_variance(yb)
    with np.errstate(invalid="ignore", divide="ignore"):
        va, vb = var_a / k_a, var_b / k_b
        ra, rb = s2_a / (k_a * n_t), s2_b / (k_b * n_t)
    v_terms = va + vb
    v_res = np.where(np.isfinite(ra) & np.isfinite(rb), ra + rb, 0.0)
    group = (k_a >= min_terms) & (k_b >= min_terms) & (n_t >= min_templates)
    df1 = (n_t - 1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if variance == "min_f":
            v = v_templates + v_terms
            df = v**2 / (v_templates**2 / df1 + va**2 / (k_a - 1) + vb**2 / (k_b - 1))
        else:
            raw = v_templates + v_terms - v_res
            floor = np.maximum(v_templates, v_terms)
            v = np.maximum(raw, floor)
            df_raw = v**2 / (
                v_templates**2 / df1 + va**2 / (k_a - 1) + vb**2 / (k_b - 1)
                + np.where(v_res > 0, ra**2 / dof_a + rb**2 / dof_b, 0.0)
            )
            df_floor = np.where(
                v_templates >= v_terms, df1, v_terms**2 / (va**2 / (k_a - 1) + vb**2 / (k_b - 1))
            )
            df = np.where(raw >= floor, df_raw, df_floor)
    se = np.where(group, np.sqrt(v), np.sqrt(v_templates))
    df = np.where(group, df, df1)
    df = np.where(np.isfinite(df) & (df > 0), df, np.nan)
    p, p_material, p_equiv = _t_tests(effect, se, df, float(margin))
    # scope 'terms': exact sign flips over the per-template gaps
    few = ~group & (n_t >= 2)
    if few.any():
        rows = np.flatnonzero(few)
        dr = d[rows]
        kw = dict(rng=rng, n_resamples=n_resamples, exact_max_n=exact_max_n)
        p[rows], _, _ = sign_flip_p(dr, **kw)
        # every per-template gap exactly 0 (e.g. a model compared with itself): a known 0, as with se = 0 above
        p_material[rows], p_equiv[rows] = margin_tests(dr, float(margin), **kw)
        zero = np.all((dr == 0) | np.isnan(dr), axis=1)
        p[rows[zero]] = 1.0
    undefined = n_t < 2
    for arr in (p, p_material, p_equiv, se, df):
        arr[undefined] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t1 = scipy.stats.t.ppf(1.0 - alpha / 2.0, np.where(np.isfinite(df), df, 1.0))
        t2 = scipy.stats.t.ppf(1.0 - alpha, np.where(np.isfinite(df), df, 1.0))
    half1, half2 = t1 * se, t2 * se
    scope = np.where(group, "group", "terms").astype(object)
    methods = []
    for i in range(effect.size):
        if undefined[i]:
            methods.append(f"n={int(n_t[i])} template(s) with both groups: tests undefined")
        elif group[i]:
            methods.append(
                f"crossed t ({'min-F' if variance == 'min_f' else 'quasi-F'}, Satterthwaite df={df[i]:.1f}); "
                f"templates={int(n_t[i])}, terms={int(k_a[i])}+{int(k_b[i])}; scope=group"
            )
        else:
            kind = "exact" if n_t[i] <= exact_max_n else f"Monte Carlo {n_resamples}"
            methods.append(
                f"sign flips over templates ({kind}, n={int(n_t[i])}); t interval; terms={int(k_a[i])}+"
                f"{int(k_b[i])} (group scope needs >= {min_terms} each and >= {min_templates} templates): "
                "scope=terms (claim about these terms)"
            )
    return GapInference(
        effect=effect,
        se=se,
        df=df,
        p_value=p,
        p_material=p_material,
        p_equivalence=p_equiv,
        ci_low=effect - half1,
        ci_high=effect + half1,
        tost_low=effect - half2,
        tost_high=effect + half2,
        scope=scope,
        n_templates=n_t,
        n_terms_a=k_a,
        n_terms_b=k_b,
        v_templates=v_templates,
        v_terms=v_terms,
        v_residual=v_res,
        method=methods,
        margin=float(margin),
        alpha=float(alpha),
    )


def crossed_delta(
    base_a: ArrayLike,
    base_b: ArrayLike,
    candidate_a: ArrayLike,
    candidate_b: ArrayLike,
    *,
    rng: np.random.Generator,
    alpha: float = 0.05,
    margin: float = math.log(1.1),
    **options: object,
) -> GapInference:
    """Inference for the paired delta (candidate gap - base gap), item by item, same design as the gap.

    Each item's value is candidate - base, so the delta's effect is the candidate's effect minus the base's
    over the items both models scored; term and template effects shared by the two models cancel. Default
    margin log 1.1 nats. Other options as :func:`crossed_gap`.
    """
    shapes = {np.shape(x) for x in (base_a, candidate_a)}, {np.shape(x) for x in (base_b, candidate_b)}
    if len(shapes[0]) != 1 or len(shapes[1]) != 1:
        raise AuditError("crossed_delta: base and candidate arrays must have the same shapes, group by group")
    da = np.asarray(candidate_a, dtype=float) - np.asarray(base_a, dtype=float)
    db = np.asarray(candidate_b, dtype=float) - np.asarray(base_b, dtype=float)
    return crossed_gap(da, db, rng=rng, alpha=alpha, margin=margin, **options)  # type: ignore[arg-type]
