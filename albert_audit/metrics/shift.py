"""group_shift and gap_beyond_shift: the part of a group pair's association gap common to every target, and
each target's gap beyond it.

A group term can move every target at once (a long, rare or plural term lowers all completions): that shift
is a real property of the terms but not a target-specific stereotype, and left in every target's gap it makes
all targets "lean" the same way. Per template j and group pair, ``shift_j = mean over targets of d_tj``
(d_tj: the per-template association gap of target t; targets without a value there are left out);
``group_shift`` is ``mean_j shift_j``; ``gap_beyond_shift`` of target t is ``mean_j (d_tj - shift_j)``, so
``association_gap = group_shift + gap_beyond_shift`` for every complete target. exp() of each is a ratio: "all
targets x-fold more likely after group a's terms; this target y-fold beyond that". Both are tested on their
per-template values (expanded BCa bootstrap over templates, two-sided sign-flip over templates), so the
template noise they share is in both intervals. Units are always templates, so the scope is ``terms`` (a
claim about these terms). Both get a verdict against the log-ratio margin (registry default log 1.25, or the
run's ``margin``) from sign-flip margin tests over the same per-template values
(:func:`albert_audit.inference.exact.margin_tests`).
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np

from albert_audit import registry, stats
from albert_audit.inference.exact import margin_tests
from albert_audit.metrics.core import Config, ProbeSetScores, row
from albert_audit.metrics.gaps import VALUE_NOTES, mean_test_rows
from albert_audit.metrics.row_verdicts import margin_for, ratio_fields


def pair_gaps(data: ProbeSetScores, value: str) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The group pairs and their per-template gaps, (pairs, targets, templates), NaN where undefined."""
    mean = data.cube("template").mean[value]
    pairs = list(itertools.combinations(range(len(data.groups)), 2))
    return pairs, np.stack([mean[:, a, :] - mean[:, b, :] for a, b in pairs]) if pairs else np.zeros((0, 0, 0))


def template_shift(gaps: np.ndarray) -> np.ndarray:
    """Per (pair, template): the mean over targets with a finite gap (NaN where no target has one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a template without any target gives NaN
        return np.nanmean(gaps, axis=1)


def group_shift(data: ProbeSetScores, cfg: Config) -> list[dict[str, Any]]:
    """One row per group pair: the association gap shared by all targets (mean over targets per template)."""
    spec = registry.metric("group_shift")
    pairs, gaps = pair_gaps(data, spec.value)
    if not pairs:
        return []
    shift = template_shift(gaps)
    effect, n, low, high, p, methods = mean_test_rows(shift, cfg=cfg, key=f"{data.name}/group_shift")
    margin, p_material, p_equivalence = _margin_tests(shift, cfg, data.name, "group_shift")
    return [
        row(data.name, "group_shift", group_a=data.groups[a], group_b=data.groups[b], n_units=int(n[i]),
            effect=effect[i], effect_unit=spec.unit, ci_low=low[i], ci_high=high[i], p_value=p[i],
            method=f"{VALUE_NOTES[spec.value]}per template the mean gap over {gaps.shape[1]} targets; "
                   f"{methods[i]}; units=templates; {_MARGIN_NOTE.format(margin)}; scope=terms",
            scope="terms", margin=margin, p_material=p_material[i], p_equivalence=p_equivalence[i],
            **ratio_fields(effect[i], low[i], high[i]))
        for i, (a, b) in enumerate(pairs)
    ]


_MARGIN_NOTE = "margin tests: sign flips over templates, margin {:.4g} nats"


def _margin_tests(values: np.ndarray, cfg: Config, probe_set: str,
                  metric: str) -> tuple[float, np.ndarray, np.ndarray]:
    """The margin (the run's or the registry's log-ratio margin) and the rows' sign-flip margin tests."""
    margin = margin_for(metric, cfg.margin)
    p_material, p_equivalence = margin_tests(values, margin,
                                             rng=stats.rng_for(cfg.seed, f"{probe_set}/{metric}/margin"),
                                             n_resamples=cfg.n_resamples)
    return margin, p_material, p_equivalence


def gap_beyond_shift(data: ProbeSetScores, cfg: Config) -> list[dict[str, Any]]:
    """One row per group pair x target: the target's association gap minus the pair's group shift, tested
    on the per-template differences d_tj - shift_j."""
    spec = registry.metric("gap_beyond_shift")
    pairs, gaps = pair_gaps(data, spec.value)
    if not pairs:
        return []
    beyond = (gaps - template_shift(gaps)[:, None, :]).reshape(-1, gaps.shape[2])
    effect, n, low, high, p, methods = mean_test_rows(beyond, cfg=cfg, key=f"{data.name}/gap_beyond_shift")
    margin, p_material, p_equivalence = _margin_tests(beyond, cfg, data.name, "gap_beyond_shift")
    targets = data.cube("template").targets
    rows: list[dict[str, Any]] = []
    for r, (pair, t) in enumerate(itertools.product(range(len(pairs)), range(len(targets)))):
        a, b = pairs[pair]
        rows.append(row(data.name, "gap_beyond_shift", target=targets[t], group_a=data.groups[a],
                        group_b=data.groups[b], n_units=int(n[r]), effect=effect[r], effect_unit=spec.unit,
                        ci_low=low[r], ci_high=high[r], p_value=p[r],
                        method=f"{VALUE_NOTES[spec.value]}per template the target's gap minus the mean gap over "
                               f"{gaps.shape[1]} targets; {methods[r]}; units=templates; "
                               f"{_MARGIN_NOTE.format(margin)}; scope=terms",
                        scope="terms", margin=margin, p_material=p_material[r], p_equivalence=p_equivalence[r],
                        **ratio_fields(effect[r], low[r], high[r])))
    return rows
