"""reference_alignment: does the model's skew track, exceed, attenuate or invert the probe set's reference?

One row per probe set with reference shares (targets column ``reference_share`` or items column
``term_reference_share``), computed by :func:`albert_audit.inference.reference_slope.reference_alignment` (OLS
slope of the words' template-mean effects on logit(share); CI by resampling templates; permutation p for slope = 0):

- target-keyed (e.g. gender_occupation): a target's per-template effect is its ``logprob_gap`` cell, first
  group minus second (group means over terms, :mod:`albert_audit.units`); definitional controls are left out;
- term-keyed (the BEC-Pro style profession sets): a term's per-template effect is the mean log P of the
  first target category's targets minus that of the second (categories in alphabetical order, e.g.
  ``female`` minus ``male``: She vs He, mother vs father), in the term's sentence.

Where both kinds exist, the target-keyed reference is used. Templates are the neutral ones the cells use.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from albert_audit import registry, stats
from albert_audit.inference.reference_slope import reference_alignment as fit
from albert_audit.metrics.bias_score import control_targets
from albert_audit.metrics.core import Config, ProbeSetScores, row

METRIC = "reference_alignment"


def _shares(table: pd.DataFrame, key: str, column: str) -> dict[str, float]:
    """word -> its share (the first finite value per word)."""
    if column not in table.columns:
        return {}
    finite = table[np.isfinite(table[column].to_numpy(dtype=float))]
    return {str(k): float(v) for k, v in finite.groupby(key, sort=True)[column].first().items()}


def target_effects(data: ProbeSetScores) -> tuple[pd.DataFrame, dict[str, float], str, str, str]:
    """Templates x targets table of the logprob_gap cells (first group minus second), the targets' shares, the
    two groups and what the effect is."""
    controls = control_targets(data)
    shares = {t: s for t, s in _shares(data.targets, "target", "reference_share").items() if t not in controls}
    cube = data.cube("template")
    gap = cube.mean["logprob"][:, 0, :] - cube.mean["logprob"][:, 1, :]  # (targets, templates)
    effects = pd.DataFrame(gap.T, index=cube.units, columns=cube.targets)
    a, b = data.groups[0], data.groups[1]
    return effects, shares, a, b, f"effect = logprob_gap of each target ({a} - {b})"


def term_effects(data: ProbeSetScores) -> tuple[pd.DataFrame, dict[str, float], str, str, str]:
    """Templates x terms table of (mean log P of the first category's targets - the second's), the terms'
    shares, the two categories and what the effect is; empty when the targets do not have two categories."""
    shares = _shares(data.targets, "term", "term_reference_share")
    controls = control_targets(data)
    scores = data.targets[~data.targets["target"].astype(str).isin(controls)]
    categories = sorted(c for c in scores["category"].astype(str).unique() if c) if "category" in scores else []
    if len(categories) != 2:
        return pd.DataFrame(), {}, "", "", f"term-keyed reference needs two target categories, got {len(categories)}"
    first, second = categories
    logprob = scores.assign(logprob=scores["logprob"].astype(float))
    means = logprob.groupby(["template_id", "term", "category"], sort=True)["logprob"].mean().unstack("category")
    effect = (means[first] - means[second]).unstack("term")
    return effect, shares, first, second, f"effect = mean log P({first} targets) - mean log P({second} targets)"


def effects_and_shares(data: ProbeSetScores) -> tuple[pd.DataFrame, dict[str, float], str, str, str, str] | None:
    """What the statistic fits: (templates x words effects, shares, group a, group b, what the effect is, which
    reference), or None when the set has no reference shares. The target-keyed reference wins."""
    if _shares(data.targets, "target", "reference_share"):
        return (*target_effects(data), "target-keyed reference")
    if _shares(data.targets, "term", "term_reference_share"):
        return (*term_effects(data), "term-keyed reference")
    return None


@dataclass(frozen=True)
class Points:
    """The words a probe set's reference_alignment row fits, one entry each (for the report's chart)."""

    words: list[str]
    shares: np.ndarray
    """Each word's reference share."""
    effects: np.ndarray
    """Each word's template-mean effect (nats): the y of the fit."""
    group_a: str
    group_b: str
    what: str


def points(data: ProbeSetScores) -> Points | None:
    """The (share, effect) points behind a probe set's reference_alignment row: the words with a share and a
    finite effect, effects averaged over templates as
    :func:`albert_audit.inference.reference_slope.reference_alignment` does (None without reference shares)."""
    got = effects_and_shares(data)
    if got is None:
        return None
    effects, shares, a, b, what, _ = got
    words = [w for w in effects.columns if w in shares]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(effects[words].to_numpy(dtype=float), axis=0) if words else np.zeros(0)
    keep = np.isfinite(means)
    chosen = [w for w, k in zip(words, keep, strict=True) if k]
    return Points(words=[str(w) for w in chosen], shares=np.array([shares[w] for w in chosen], dtype=float),
                  effects=means[keep], group_a=a, group_b=b, what=what)


def reference_alignment(data: ProbeSetScores, cfg: Config) -> list[dict[str, Any]]:
    """The reference_alignment row of a probe set (none when it has no reference shares)."""
    unit = registry.metric(METRIC).unit
    got = effects_and_shares(data)
    if got is None:
        return []
    effects, shares, a, b, what, keyed = got
    base = dict(group_a=a, group_b=b, effect_unit=unit)
    try:
        result = fit(effects, shares, seed=_seed(cfg.seed, data.name), n_resamples=cfg.n_resamples, alpha=cfg.alpha)
    except (ValueError, KeyError) as exc:
        return [row(data.name, METRIC, method=f"{keyed}; {what}; undefined: {exc}", **base)]
    r = "nan" if math.isnan(result.r) else f"{result.r:.3f}"
    method = (f"{keyed}; {what}; {result.method}={r}; verdict: {result.verdict} "
              f"(slope 1 tracks, > 1 exceeds, 0-1 attenuates, < 0 inverts); {result.n_words} words")
    return [row(data.name, METRIC, n_units=result.n_templates, effect=result.slope, ci_low=result.ci_low,
                ci_high=result.ci_high, p_value=result.p_value, method=method, **base)]


def _seed(seed: int, name: str) -> int:
    """The seed of this probe set's resampling (keyed like ``stats.rng_for``, so other sets never shift it)."""
    return int(stats.rng_for(seed, f"{name}/{METRIC}").integers(0, 2**63 - 1))
