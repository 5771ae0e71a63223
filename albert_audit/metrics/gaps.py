"""logprob_gap and association_gap: per target and group pair, the mean over templates of group a minus group b.

Default (``unit = "template"``): the group-level crossed analysis of
:func:`albert_audit.inference.crossed.crossed_gap` over the (templates x terms) item values of both groups
(:func:`albert_audit.units.term_cube`): the effect is the mean over templates of (mean over a's
terms - mean over b's terms); with >= 5 terms per group and >= 5 templates the test and interval account for
term and template variation (scope ``group``: the claim generalises to new terms), else exact sign flips over
templates (scope ``terms``: a claim about these terms). p_material / p_equivalence test the effect against the
margin (registry default log 1.25 nats, or the run's ``margin``); the verdict is added by ``compute_findings``.

Sensitivity analysis (``unit = "template_term_pair"``): units are (template, term_index) pairs; CI: expanded
BCa bootstrap over units; p: two-sided sign-flip permutation test (exact for n <= ``stats.EXACT_MAX_N``);
p_material / p_equivalence: sign flips over the same units (scope ``terms``). Term-pair units are clustered by template
(:func:`cluster_by_template`): whole templates are flipped and resampled.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from albert_audit import registry, stats, units
from albert_audit.metrics import row_verdicts
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
    if cfg.unit == "template":
        return crossed_rows(data, cfg, metric)
    return pair_rows(data, cfg, metric)


def crossed_rows(data: ProbeSetScores, cfg: Config, metric: str) -> list[dict[str, Any]]:
    """The rows of a signed gap metric by the crossed (templates x terms) analysis."""
    spec = registry.metric(metric)
    cube = data.cached("term_cube", lambda: units.term_cube(data.targets, data.groups))
    values = cube.values[spec.value]
    n_bad = cube.bad[spec.value].sum(axis=(2, 3))  # (targets, groups)
    margin = row_verdicts.margin_for(metric, cfg.margin)
    rows: list[dict[str, Any]] = []
    for a, b in itertools.combinations(range(len(data.groups)), 2):
        got = row_verdicts.gap_inference(values[:, a], values[:, b], alpha=cfg.alpha, margin=margin,
                                     n_resamples=cfg.n_resamples,
                                     rng=stats.rng_for(cfg.seed, f"{data.name}/{metric}/crossed/{a}-{b}"))
        res = got["res"]
        for t, target in enumerate(cube.targets):
            dropped = int(n_bad[t, a] + n_bad[t, b])
            notes = f"; dropped {dropped} non-finite item value(s)" if dropped else ""
            rows.append(row(
                data.name, metric, target=target, group_a=data.groups[a], group_b=data.groups[b],
                n_units=int(res.n_templates[t]), effect=res.effect[t], effect_unit=spec.unit,
                ci_low=res.ci_low[t], ci_high=res.ci_high[t], p_value=res.p_value[t],
                method=f"{VALUE_NOTES[spec.value]}{res.method[t]}; margin {margin:.4g} nats{notes}",
                scope=str(res.scope[t]), margin=margin, p_material=res.p_material[t],
                p_equivalence=res.p_equivalence[t], share_a_gt_b=got["share"][t], pi_low=got["pi_low"][t],
                pi_high=got["pi_high"][t], **row_verdicts.ratio_fields(res.effect[t], res.ci_low[t], res.ci_high[t]),
            ))
    return rows


def pair_rows(data: ProbeSetScores, cfg: Config, metric: str) -> list[dict[str, Any]]:
    """The rows of a signed gap metric over (template, term_index) pairs (the sensitivity analysis)."""
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
    margin = row_verdicts.margin_for(metric, cfg.margin)
    # one "term" per unit: crossed_gap then runs exact sign flips over the units (scope terms)
    got = row_verdicts.gap_inference(diffs[:, :, None], np.zeros_like(diffs)[:, :, None], alpha=cfg.alpha,
                                 margin=margin, n_resamples=cfg.n_resamples,
                                 rng=stats.rng_for(cfg.seed, f"{data.name}/{metric}/{cfg.unit}/margin"))
    res = got["res"]
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
                method=f"{VALUE_NOTES[spec.value]}{methods[r]}; {unit_note}; margin tests: sign flips "
                       f"over units, margin {margin:.4g} nats; scope=terms{notes}",
                scope="terms", margin=margin, p_material=res.p_material[r], p_equivalence=res.p_equivalence[r],
                share_a_gt_b=got["share"][r], pi_low=got["pi_low"][r], pi_high=got["pi_high"][r],
                **row_verdicts.ratio_fields(effect[r], low[r], high[r]),
            )
        )
    return rows
