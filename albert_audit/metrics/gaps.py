"""logprob_gap and association_gap: per target and group pair, the mean over units of group a minus group b.

Units are templates (group means over terms, :mod:`albert_audit.units`) or, with ``unit =
"template_term_pair"``, (template, term_index) pairs. CI: expanded BCa bootstrap over units; p: two-sided
sign-flip permutation test (exact for n <= ``stats.EXACT_MAX_N``). Term-pair units are clustered by template
(:func:`cluster_by_template`): whole templates are flipped and resampled.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from albert_audit import registry, stats
from albert_audit.metrics.core import Config, ProbeSetScores, row

UNIT_NOTES = {
    "template": "units=templates (group means over terms)",
    "template_term_pair": "units=template x term pairs (paired by term_index), p and CI clustered by template",
}
"""What the method string says about the units."""
VALUE_NOTES = {"logprob": "", "association": "association = term_logprob - term_prior_logprob (Kurita); "}
"""What the method string says about the score, before the test."""


def logprob_gap(data: ProbeSetScores, cfg: Config) -> list[dict[str, Any]]:
    """The logprob_gap rows of a probe set."""
    return gap_rows(data, cfg, "logprob_gap")


def association_gap(data: ProbeSetScores, cfg: Config) -> list[dict[str, Any]]:
    """The association_gap rows of a probe set."""
    return gap_rows(data, cfg, "association_gap")


def mean_test_rows(
    values: np.ndarray, *, cfg: Config, key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Effect (mean), n, CI, sign-flip p and method for each row of (rows x units) with NaN = no unit.

    Rows are batched by their number of finite units; each batch shares resamples drawn from
    ``rng_for(seed, f"{key}/.../n={n}")``.
    """
    finite = np.isfinite(values)
    n = finite.sum(axis=1)
    n_rows = values.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        effect = np.where(finite, values, 0.0).sum(axis=1) / n
    low, high, p = (np.full(n_rows, np.nan) for _ in range(3))
    methods = [""] * n_rows
    for size in np.unique(n):
        rows = np.flatnonzero(n == size)
        compact = values[rows][finite[rows]].reshape(rows.size, int(size))
        lo, hi, ci_methods = stats.bootstrap_ci_rows(
            compact,
            rng=stats.rng_for(cfg.seed, f"{key}/bootstrap/n={size}"),
            n_resamples=cfg.n_resamples,
            confidence=cfg.confidence,
            expand=True,
        )
        pv, p_method = stats.sign_flip_p_rows(
            compact, rng=stats.rng_for(cfg.seed, f"{key}/signflip/n={size}"), n_resamples=cfg.n_resamples
        )
        low[rows], high[rows], p[rows] = lo, hi, pv
        for i, r in enumerate(rows):
            methods[r] = f"{p_method}; {ci_methods[i]}"
    return effect, n, low, high, p, methods


def cluster_by_template(diffs: np.ndarray, templates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows x template x term pair units) differences -> (rows x templates) cluster values, and unit counts.

    Cluster value v_j = (sum of template j's finite unit differences) x (templates with a unit) / (units),
    so that mean_j v_j is the mean over all units (the unit-level effect) while the sign flips and bootstrap
    resamples act on whole templates: units in one template share its context and are not independent.
    """
    codes, inverse = np.unique(templates, return_inverse=True)
    n_templates = codes.size
    finite = np.isfinite(diffs)
    sums = np.zeros((diffs.shape[0], n_templates))
    counts = np.zeros((diffs.shape[0], n_templates))
    np.add.at(sums.T, inverse, np.where(finite, diffs, 0.0).T)
    np.add.at(counts.T, inverse, finite.T.astype(float))
    present = counts > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = present.sum(axis=1, keepdims=True) / counts.sum(axis=1, keepdims=True)
        values = np.where(present, sums * scale, np.nan)
    return values, counts.sum(axis=1).astype(int)


def gap_rows(data: ProbeSetScores, cfg: Config, metric: str) -> list[dict[str, Any]]:
    """One row per group pair x target (in that order) of a signed gap metric."""
    spec = registry.metric(metric)
    cube = data.cube(cfg.unit)
    mean, bad = cube.mean[spec.value], cube.bad[spec.value]
    pairs = list(itertools.combinations(range(len(data.groups)), 2))
    diffs = np.concatenate([mean[:, a, :] - mean[:, b, :] for a, b in pairs], axis=0)
    either_bad = np.concatenate([bad[:, a, :] | bad[:, b, :] for a, b in pairs], axis=0)
    n_bad = either_bad.sum(axis=1)
    n_missing = (~np.isfinite(diffs) & ~either_bad).sum(axis=1)
    clustered = cfg.unit == "template_term_pair"
    if clustered:
        diffs, n_pair_units = cluster_by_template(diffs, cube.units.get_level_values("template_id").to_numpy())
    effect, n, low, high, p, methods = mean_test_rows(diffs, cfg=cfg, key=f"{data.name}/{metric}/{cfg.unit}")
    rows: list[dict[str, Any]] = []
    for r, (pair, t) in enumerate(itertools.product(range(len(pairs)), range(len(cube.targets)))):
        notes = f"; dropped {n_bad[r]} non-finite" if n_bad[r] else ""
        notes += f"; {n_missing[r]} units lacked a group" if n_missing[r] else ""
        unit_note = UNIT_NOTES[cfg.unit] + (f" ({n_pair_units[r]} pairs in {n[r]} templates)" if clustered else "")
        a, b = pairs[pair]
        rows.append(
            row(
                data.name,
                metric,
                target=cube.targets[t],
                group_a=data.groups[a],
                group_b=data.groups[b],
                n_units=int(n_pair_units[r] if clustered else n[r]),
                effect=effect[r],
                effect_unit=spec.unit,
                ci_low=low[r],
                ci_high=high[r],
                p_value=p[r],
                method=f"{VALUE_NOTES[spec.value]}{methods[r]}; {unit_note}{notes}",
            )
        )
    return rows
