"""Reference alignment: does the model's skew track, exceed, attenuate or invert a reference statistic?

A pure statistic (no model, seed passed in). Input: per-template effects of the words that have a reference
share (e.g. ``logprob_gap`` of each occupation, female minus male, one row per template) and the shares
(e.g. the share of women in each occupation, BLS 2015). Each word's effect is its mean over templates; the
statistic is the OLS slope of those means on ``logit(share)``:

- slope 1: the model's log-odds move one for one with the reference's (it tracks the labour market);
- slope > 1: it exceeds (amplifies) it; 0 < slope < 1: it attenuates it; slope < 0: it inverts it.

The CI resamples templates (the unit of analysis) with replacement; the p-value for slope = 0 permutes the
shares over the words (exact when all orders can be listed, else Monte Carlo); Pearson r is reported beside.

Wiring (:mod:`albert_audit.metrics.reference_alignment`): for a probe set with a target-keyed reference, take the
per-template ``logprob_gap`` of group a vs b for every target with a share (the targets column
``reference_share``), as a templates x targets table, and call :func:`reference_alignment`; for a term-keyed
reference (the BEC-Pro style sets), the columns are the terms and the effect of a term is e.g. the log-ratio of
the female and male targets' probabilities in its sentences.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_WORDS = 3
MIN_TEMPLATES = 2


@dataclass(frozen=True)
class Alignment:
    """The result of :func:`reference_alignment` (slope in nats of effect per logit of share)."""

    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    p_value: float
    r: float
    n_words: int
    n_templates: int
    verdict: str
    method: str


def logit(share: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) for shares strictly between 0 and 1."""
    share = np.asarray(share, dtype=float)
    if np.any((share <= 0) | (share >= 1)) or not np.all(np.isfinite(share)):
        raise ValueError("reference shares must lie strictly between 0 and 1")
    return np.log(share) - np.log1p(-share)


def _masked_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """OLS slope of each row of ``y`` (NaN = missing) on ``x``; NaN where fewer than 2 distinct x remain."""
    mask = np.isfinite(y)
    n = mask.sum(axis=1)
    xm = np.where(mask, x, 0.0)
    ym = np.where(mask, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        xbar = xm.sum(axis=1) / n
        ybar = ym.sum(axis=1) / n
        dx = np.where(mask, x - xbar[:, None], 0.0)
        dy = np.where(mask, y - ybar[:, None], 0.0)
        sxx = (dx * dx).sum(axis=1)
        slope = (dx * dy).sum(axis=1) / sxx
    slope[(n < 2) | ~(sxx > 0)] = np.nan
    return slope


FLAT_SLOPE = math.log(1.25) / (math.log(0.9 / 0.1) - math.log(0.1 / 0.9))
"""The practical margin of the slope (nats per logit, about 0.051): a slope inside it moves the skew by less
than the default gap margin log 1.25 from a reference share of 10% to one of 90%."""


def verdict(ci_low: float, ci_high: float) -> str:
    """``flat`` (the CI inside +-``FLAT_SLOPE``: no practical alignment, whatever its sign), else ``inverts`` /
    ``attenuates`` / ``tracks`` / ``exceeds`` by where the slope's CI lies, else ``inconclusive`` (a CI that
    includes 0)."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "inconclusive"
    if -FLAT_SLOPE < ci_low and ci_high < FLAT_SLOPE:
        return "flat"
    if ci_high < 0:
        return "inverts"
    if ci_low > 1:
        return "exceeds"
    if ci_low > 0:
        return "attenuates" if ci_high < 1 else "tracks"
    return "inconclusive"


def reference_alignment(
    effects: pd.DataFrame,
    shares: Mapping[str, float],
    *,
    seed: int,
    n_resamples: int = 10_000,
    alpha: float = 0.05,
) -> Alignment:
    """Slope of the words' template-mean effects on ``logit(share)``, with a template-resampling CI.

    ``effects``: one row per template, one column per word (NaN where a template has no value); only the
    columns with a share in ``shares`` are used. Raises ValueError with fewer than 3 words or 2 templates.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie between 0 and 1, got {alpha}")
    words = [w for w in effects.columns if w in shares]
    table = effects[words].to_numpy(dtype=float)
    keep = np.isfinite(table).any(axis=0)
    words = [w for w, k in zip(words, keep, strict=True) if k]
    table = table[:, keep]
    rows = np.isfinite(table).any(axis=1)
    table = table[rows]
    if len(words) < MIN_WORDS or len(table) < MIN_TEMPLATES:
        raise ValueError(
            f"reference alignment needs at least {MIN_WORDS} words with a share and an effect and "
            f"{MIN_TEMPLATES} templates; got {len(words)} words and {len(table)} templates"
        )
    x = logit(np.array([shares[w] for w in words]))
    with np.errstate(invalid="ignore"):
        y = np.nanmean(table, axis=0)
    slope = float(_masked_slopes(x, y[None, :])[0])
    intercept = float(y.mean() - slope * x.mean())
    r = float(np.corrcoef(x, y)[0, 1]) if np.std(y) > 0 else float("nan")

    rng = np.random.default_rng(seed)
    n_templates = len(table)
    finite = np.isfinite(table)
    values = np.where(finite, table, 0.0)
    boot = np.empty(n_resamples)
    chunk = 2_000
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        picks = rng.integers(0, n_templates, size=(size, n_templates))
        weights = np.zeros((size, n_templates))
        np.add.at(weights, (np.arange(size)[:, None], picks), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (weights @ values) / (weights @ finite)
        boot[start : start + size] = _masked_slopes(x, means)
    boot = boot[np.isfinite(boot)]
    ci_low, ci_high = (float(v) for v in np.quantile(boot, [alpha / 2, 1 - alpha / 2]))

    n_words = len(words)
    # Permuting x over the words leaves its variance unchanged, so each null slope is a dot product.
    dx, dy = x - x.mean(), y - y.mean()
    sxx = float(dx @ dx)
    if math.factorial(n_words) <= n_resamples:
        orders = np.array(list(itertools.permutations(range(n_words))))
        null = dx[orders] @ dy / sxx
        p = float(np.mean(np.abs(null) >= abs(slope) * (1 - 1e-12)))
        how = f"exact permutation of shares over {n_words} words"
    else:
        orders = rng.permuted(np.tile(np.arange(n_words), (n_resamples, 1)), axis=1)
        null = dx[orders] @ dy / sxx
        p = float((np.sum(np.abs(null) >= abs(slope) * (1 - 1e-12)) + 1) / (n_resamples + 1))
        how = f"Monte Carlo permutation of shares over {n_words} words ({n_resamples})"
    level = f"{100 * (1 - alpha):g}%"
    method = (f"OLS slope of template-mean effect on logit(share); {level} percentile CI by resampling "
              f"{n_templates} templates ({n_resamples}); p: {how}; Pearson r")
    return Alignment(slope, intercept, ci_low, ci_high, p, r, n_words, n_templates, verdict(ci_low, ci_high), method)
