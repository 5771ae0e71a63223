"""The probe-set bias score, one implementation for the findings row and for compare's delta.

The score is the mean over (target, group pair) rows of |mean over templates of the per-template association
gap|. Every caller hands in per-template gaps (rows = targets x group pairs, target-major) with weights (1
where a template counts for that row's target, 0 elsewhere) and gets the score, its bootstrap replicates
and its jackknife from the functions here. Two tests use it: the findings row permutes group labels within
templates (is there bias?); compare's delta swaps the two models within templates (did it change?).
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import numpy as np

from albert_audit import registry, stats
from albert_audit.metrics.core import Config, ProbeSetScores, row

# ------------------------------------------------------------------------------------------------ the score


def pair_index(k: int) -> np.ndarray:
    """The (a, b) index pairs of k groups, a before b, as a (pairs, 2) array."""
    return np.array(list(itertools.combinations(range(k), 2)), dtype=np.int64).reshape(-1, 2)


def score(gap_means: np.ndarray, n_pairs: int = 1) -> np.ndarray:
    """The bias score of (..., targets * n_pairs) mean gaps (target-major): the mean of their absolute values.

    A target whose gaps are NaN (no template in a bootstrap resample) is left out of that score; the score
    is NaN when every target is.
    """
    magnitude = np.abs(gap_means)
    if not np.isnan(magnitude).any():
        return magnitude.mean(axis=-1)
    per_target = magnitude.reshape(*magnitude.shape[:-1], -1, n_pairs).mean(axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples give NaN
        return np.nanmean(per_target, axis=-1)


def mean_gaps(gaps: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row of (rows x templates) gaps, the mean over the templates with weight 1."""
    return np.where(weights > 0, gaps, 0.0).sum(axis=1) / weights.sum(axis=1)


def bootstrap_scores(gaps: np.ndarray, weights: np.ndarray, counts: np.ndarray, n_pairs: int = 1) -> np.ndarray:
    """The score of every bootstrap resample of the templates (``counts``: (resamples x templates))."""
    zeroed = np.where(weights > 0, gaps, 0.0)
    out = np.empty(counts.shape[0])
    step = max(1, stats.CHUNK_ELEMENTS // max(1, gaps.shape[0]))
    for start in range(0, counts.shape[0], step):
        c = counts[start : start + step]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + step] = score((c @ zeroed.T) / (c @ weights.T), n_pairs)
    return out


def jackknife_scores(gaps: np.ndarray, n_pairs: int = 1) -> np.ndarray:
    """The score leaving out each template in turn (every gap finite, every template counting)."""
    n = gaps.shape[1]
    return score(((gaps.sum(axis=1, keepdims=True) - gaps) / (n - 1)).T, n_pairs)


# ---------------------------------------------------------------------------------------- the findings row


def control_targets(data: ProbeSetScores) -> set[str]:
    """The probe set's definitional targets (targets column ``control``; none when the column is absent)."""
    if "control" not in data.targets.columns:
        return set()
    return set(data.targets.loc[data.targets["control"].astype(bool), "target"].astype(str))


def bias_score(data: ProbeSetScores, cfg: Config) -> list[dict[str, Any]]:
    """The bias_score row of a probe set: the score over its bias targets (definitional controls left out)
    and the templates where every group is present (per target); CI: percentile bootstrap over templates;
    p: group labels permuted within templates."""
    unit = registry.metric("bias_score").unit
    full = data.cube("template")
    cube = full.mean["association"]  # (targets, groups, templates)
    k = len(data.groups)
    pairs = pair_index(k)
    controls = control_targets(data)
    is_bias = np.array([t not in controls for t in full.targets], dtype=bool)
    complete = np.all(np.isfinite(cube), axis=1)  # (targets, templates): every group present
    keep = complete.any(axis=1) & is_bias
    used = complete[keep].any(axis=0)
    cube, complete = cube[keep][:, :, used], complete[keep][:, used]
    n_targets, n_units = int(keep.sum()), int(used.sum())
    ga, gb = (data.groups[0], data.groups[1]) if k == 2 else ("", "")
    base = dict(group_a=ga, group_b=gb, n_units=n_units, effect_unit=unit)
    if n_targets == 0:
        return [row(data.name, "bias_score", method="no bias target with a complete template", **base)]
    gaps = (cube[:, pairs[:, 0], :] - cube[:, pairs[:, 1], :]).reshape(n_targets * len(pairs), n_units)
    weights = np.repeat(complete, len(pairs), axis=0).astype(float)
    theta = float(score(mean_gaps(gaps, weights), len(pairs)))
    target_list = f"{n_targets} targets" + (f" x {len(pairs)} group pairs" if k > 2 else "")
    n_controls = int((~is_bias).sum())
    target_list += f" ({n_controls} definitional controls left out)" if n_controls else ""
    method = f"mean |association gap| over {target_list}"
    if n_units < 2:
        return [row(data.name, "bias_score", effect=theta, method=f"{method}; n={n_units}: CI and p undefined",
                    **base)]
    counts = stats.bootstrap_counts(stats.rng_for(cfg.seed, f"{data.name}/bias_score/bootstrap"), n=n_units,
                                    n_resamples=cfg.n_resamples)
    boot = bootstrap_scores(gaps, weights, counts, len(pairs))
    level = f"{round(cfg.confidence * 100, 6):g}%"
    if np.all(np.isnan(boot)):
        low = high = math.nan
        ci_method = "CI undefined (no resample kept a target)"
    else:
        # Percentile, not BCa: a mean of absolute values is biased upward, its bootstrap distribution often
        # lies wholly above the estimate and the BCa bias correction then collapses the interval.
        lo, hi, _ = stats.bca_interval_rows(theta_hat=np.array([theta]), boot=boot[None, ~np.isnan(boot)],
                                            jackknife=None, confidence=cfg.confidence, method="percentile")
        low, high = float(lo[0]), float(hi[0])
        ci_method = f"{level} percentile bootstrap {cfg.n_resamples} over templates"
    x0 = np.where(complete[:, None, :], cube, 0.0)
    p, p_method = _label_permutation_p(x0, complete.astype(float), pairs, theta, key=f"{data.name}/bias_score",
                                       cfg=cfg)
    return [row(data.name, "bias_score", effect=theta, ci_low=low, ci_high=high, p_value=p,
                method=f"{method}; {ci_method}; {p_method}", **base)]


def _label_permutation_p(x0: np.ndarray, w: np.ndarray, pairs: np.ndarray, observed: float, *, key: str,
                         cfg: Config) -> tuple[float, str]:
    """Permute group labels within each template, jointly for all targets (one-sided, large = biased).

    ``x0``: (targets, groups, templates) values, 0 where a template does not count for a target (``w`` 0).
    """
    n_t, k, n_j = x0.shape
    exact = k == 2 and n_j <= stats.PATTERN_MAX_N
    if exact:
        signs = stats.sign_patterns(n_j)  # swapping the two groups in template j = flipping its sign
        perms = np.where(signs[:, :, None] > 0, np.array([0, 1]), np.array([1, 0]))  # (M, J, 2)
        label = f"exact, {2**n_j} patterns"
    else:
        rng = stats.rng_for(cfg.seed, f"{key}/permutation")
        perms = np.argsort(rng.random((cfg.n_resamples, n_j, k)), axis=2)
        label = f"Monte Carlo {cfg.n_resamples}"
    m = perms.shape[0]
    null = np.empty(m)
    cnt = w.sum(axis=1)
    flat = np.transpose(x0, (0, 2, 1)).reshape(n_t, n_j * k)  # (T, J*G)
    step = max(1, stats.CHUNK_ELEMENTS // max(1, n_t * n_j * k))
    for start in range(0, m, step):
        idx = (np.arange(n_j)[None, :, None] * k + perms[start : start + step]).reshape(-1, n_j * k)
        # permuted group means (T, b, G), then their gaps: the same numbers as the mean of the per-template
        # gaps up to rounding (the tie tolerance below absorbs it), at a fraction of the work for many groups
        means = flat[:, idx].reshape(n_t, -1, n_j, k).sum(axis=2) / cnt[:, None, None]
        gaps = means[..., pairs[:, 0]] - means[..., pairs[:, 1]]  # (T, b, P)
        null[start : start + step] = score(np.transpose(gaps, (1, 0, 2)).reshape(gaps.shape[1], -1), len(pairs))
    scale = max(abs(observed), float(np.max(np.abs(null))), np.finfo(float).tiny)
    hits = int(np.count_nonzero(null >= observed - stats.TIE_RTOL * scale))
    p = hits / m if exact else (hits + 1.0) / (m + 1.0)
    return min(p, 1.0), (
        f"p: group labels permuted within templates jointly over targets ({label}); "
        f"score expected without bias (permutation mean) {null.mean():.4g}"
    )


# ---------------------------------------------------------------------------------------- compare's delta


def delta(gap_b: np.ndarray, gap_c: np.ndarray, *, key: str, seed: int, alpha: float, n_resamples: int,
          n_pairs: int = 1) -> dict[str, float]:
    """Delta of the bias score between two models (candidate minus base), paired by template.

    ``gap_b`` and ``gap_c`` are (rows x templates) per-template gaps (rows = targets x group pairs), all
    finite, the same templates in the same column order. CI: paired bootstrap over templates (the same
    resampled templates for both models), BCa with a jackknife over templates (percentile where BCa is
    undefined), at level 1 - alpha. p: two-sided permutation test swapping the two models' gaps within each
    template (exact over all 2**n swaps for n <= ``stats.PATTERN_MAX_N``, else ``n_resamples`` random swaps
    with p = (b + 1) / (m + 1)).
    """
    # row-major, as the findings' gaps: the same numbers then round the same way (base score == findings score)
    gap_b, gap_c = np.ascontiguousarray(gap_b, dtype=float), np.ascontiguousarray(gap_c, dtype=float)
    rows, n = gap_b.shape
    ones = np.ones_like(gap_b)
    base = float(score(mean_gaps(gap_b, ones), n_pairs)) if n else math.nan
    cand = float(score(mean_gaps(gap_c, ones), n_pairs)) if n else math.nan
    out = {"base": base, "cand": cand, "delta": cand - base, "low": math.nan, "high": math.nan, "p": math.nan,
           "n": n}
    if n < 2 or rows == 0:
        return out
    counts = stats.bootstrap_counts(stats.rng_for(seed, f"{key}/bootstrap"), n=n, n_resamples=n_resamples)
    boot = bootstrap_scores(gap_c, ones, counts, n_pairs) - bootstrap_scores(gap_b, ones, counts, n_pairs)
    if np.all(boot == boot[0]):
        out["low"] = out["high"] = float(boot[0])
    else:
        jack = jackknife_scores(gap_c, n_pairs) - jackknife_scores(gap_b, n_pairs) if n >= 3 else None
        lo, hi, _ = stats.bca_interval_rows(theta_hat=np.array([out["delta"]]), boot=boot[None, :],
                                            jackknife=None if jack is None else jack[None, :],
                                            confidence=1.0 - alpha)
        out["low"], out["high"] = float(lo[0]), float(hi[0])
    exact = n <= stats.PATTERN_MAX_N
    if exact:
        signs = stats.sign_patterns(n)
    else:
        signs = 1.0 - 2.0 * stats.rng_for(seed, f"{key}/permutation").integers(0, 2, (n_resamples, n))
    diff, total = gap_c - gap_b, (gap_c + gap_b).sum(axis=1, keepdims=True)
    null = np.empty(signs.shape[0])
    step = max(1, stats.CHUNK_ELEMENTS // max(1, rows))
    for start in range(0, signs.shape[0], step):
        flipped = diff @ signs[start : start + step].T  # (rows, m): sign s_j swaps the models in template j
        null[start : start + step] = (score(((total + flipped) / (2 * n)).T, n_pairs)
                                      - score(((total - flipped) / (2 * n)).T, n_pairs))
    observed = abs(out["delta"])
    scale = max(observed, float(np.max(np.abs(null))), np.finfo(float).tiny)
    hits = int(np.count_nonzero(np.abs(null) >= observed - stats.TIE_RTOL * scale))
    out["p"] = min(1.0, hits / signs.shape[0] if exact else (hits + 1.0) / (n_resamples + 1.0))
    return out
