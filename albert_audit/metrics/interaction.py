"""interaction: in a crossed probe set (``factors:``, e.g. race x gender), the part of a target's log-prob gap
that the two main effects do not explain.

For factor levels A1, A2 of the first factor and B1, B2 of the second, per target and template the contrast is

    (A1B1 - A1B2) - (A2B1 - A2B2)

of log P(target), each cell a group's value (e.g. A1B1 = Black women). It is 0 when the gap between B1 and B2
(women and men) is the same for A1 and A2 (Black and white people): an additive model (race effect + gender
effect) explains the four cells. One row per target and per pair of levels of each factor (4 races x 2
genders: 6 rows per target). The groups' items are read from the items column ``group_factors``.

Inference is that of the other signed gaps (:func:`albert_audit.metrics.row_verdicts.gap_inference`, crossed
templates x terms): when the four groups have equally many terms, the contrast is formed per term position
(``term_index``: the four groups' j-th terms; with ``pair_terms_by_position`` these are counterparts, so a
noun's own effect cancels) and the positions are the terms of the crossed analysis (scope ``group`` with >= 5
positions and >= 5 templates: the claim generalises to new terms); otherwise the contrast of the per-template
group means, with sign flips over templates (scope ``terms``). The margin and verdicts are those of
``logprob_gap`` (registry default log 1.25 nats, or the run's ``margin``).

It generalises to any 2 x 2 sub-design of two crossed factors: a difference of differences, i.e. the
interaction term of a two-way model; factors with more levels give one row per pair of levels of each.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from albert_audit import registry, stats, units
from albert_audit.metrics import row_verdicts
from albert_audit.metrics.core import Config, ProbeSetScores, row

METRIC = "interaction"


def crossing(data: ProbeSetScores) -> tuple[list[tuple[str, list[str]]], dict[tuple[str, str], int]]:
    """The set's two factors with their levels (order of first appearance) and (level, level) -> group index;
    ``([], {})`` when the set is not crossed (no ``group_factors`` or not exactly two factors)."""
    if "group_factors" not in data.targets.columns:
        return [], {}
    per_group = (data.targets[["group", "group_factors"]].drop_duplicates("group")
                 .set_index("group")["group_factors"].astype(str).to_dict())
    parsed: dict[str, list[tuple[str, str]]] = {}
    for group in data.groups:
        text = per_group.get(group, "")
        pairs = [tuple(part.split("=", 1)) for part in text.split(";") if "=" in part]
        if len(pairs) != 2:
            return [], {}
        parsed[group] = [(str(f), str(v)) for f, v in pairs]
    names = [f for f, _ in parsed[data.groups[0]]]
    if any([f for f, _ in p] != names for p in parsed.values()):
        return [], {}
    levels = [(names[k], list(dict.fromkeys(p[k][1] for p in parsed.values()))) for k in range(2)]
    cells = {(p[0][1], p[1][1]): data.groups.index(g) for g, p in parsed.items()}
    return levels, cells


def contrast_cube(values: np.ndarray, cells: tuple[int, int, int, int], counts: np.ndarray) -> np.ndarray:
    """(targets, templates, positions) interaction contrasts of ``values`` (targets, groups, templates, terms)
    for the groups (A1B1, A1B2, A2B1, A2B2): per term position when the four groups have equally many terms
    (``counts``: terms per group), else of the per-template group means (one position)."""
    g11, g12, g21, g22 = cells
    if len({int(counts[g]) for g in cells}) == 1:
        return values[:, g11] - values[:, g12] - values[:, g21] + values[:, g22]
    with np.errstate(invalid="ignore"):
        means = [np.nanmean(values[:, g], axis=2) for g in cells]
    return (means[0] - means[1] - means[2] + means[3])[:, :, None]


def interaction(data: ProbeSetScores, cfg: Config) -> list[dict[str, Any]]:
    """The interaction rows of a crossed probe set (none for a set without two crossed factors)."""
    levels, cells = crossing(data)
    if not levels:
        return []
    spec = registry.metric(METRIC)
    cube = data.cached("term_cube", lambda: units.term_cube(data.targets, data.groups))
    values = cube.values[spec.value]
    counts = np.array([
        pd.unique(data.targets.loc[data.targets["group"] == g, "term_index"]).size for g in data.groups])
    margin = row_verdicts.margin_for(METRIC, cfg.margin)
    (first, first_levels), (second, second_levels) = levels
    rows: list[dict[str, Any]] = []
    for a1, a2 in itertools.combinations(first_levels, 2):
        for b1, b2 in itertools.combinations(second_levels, 2):
            group_ids = [cells.get(k) for k in ((a1, b1), (a1, b2), (a2, b1), (a2, b2))]
            if any(g is None for g in group_ids):
                continue  # an incomplete crossing has no contrast for these levels
            y = contrast_cube(values, tuple(group_ids), counts)  # type: ignore[arg-type]
            by_position = y.shape[2] > 1
            zero = np.where(np.isfinite(y), 0.0, np.nan)
            got = row_verdicts.gap_inference(y, zero, alpha=cfg.alpha, margin=margin, n_resamples=cfg.n_resamples,
                                         rng=stats.rng_for(cfg.seed, f"{data.name}/{METRIC}/{a1}-{a2}/{b1}-{b2}"))
            res = got["res"]
            how = ("contrast per term position (the four groups' j-th terms), positions as terms"
                   if by_position else "contrast of per-template group means (groups differ in term count)")
            what = (f"interaction ({a1}_{b1} - {a1}_{b2}) - ({a2}_{b1} - {a2}_{b2}) of log P, {first} x "
                    f"{second}; {how}; ")
            for t, target in enumerate(cube.targets):
                rows.append(row(
                    data.name, METRIC, target=target, group_a=f"{a1} ({b1} - {b2})", group_b=f"{a2} ({b1} - {b2})",
                    n_units=int(res.n_templates[t]), effect=res.effect[t], effect_unit=spec.unit,
                    ci_low=res.ci_low[t], ci_high=res.ci_high[t], p_value=res.p_value[t],
                    method=f"{what}{res.method[t]}; margin {margin:.4g} nats", scope=str(res.scope[t]),
                    margin=margin, p_material=res.p_material[t], p_equivalence=res.p_equivalence[t],
                    share_a_gt_b=got["share"][t], pi_low=got["pi_low"][t], pi_high=got["pi_high"][t],
                    **row_verdicts.ratio_fields(res.effect[t], res.ci_low[t], res.ci_high[t]),
                ))
    return rows
