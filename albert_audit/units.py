"""The study's unit: per template, a group's mean over its terms of a target's score.

Computed here and nowhere else; metrics, compare and the report read it. A cell (probe set, target, group,
unit) is the mean over the group's terms of the score in that unit, NaN where the group has no term there
or any of its terms' scores is not finite. The unit is the template (default) or, for the
``template_term_pair`` sensitivity analysis, the pair (template, term_index).

The default statistics use ``neutral`` templates only: items of ``stereotype_eliciting`` templates (items
column ``template_tag``) are scored and kept in the tables but left out of the cells (:data:`DEFAULT_TAGS`).

Two views of the same numbers: :func:`unit_cube` (numpy arrays, what the statistics need) and
:func:`template_cells` (wide pandas tables, what compare and the report need), built from the cube. The
crossed analysis keeps the term axis: :func:`term_cube` gives (targets, groups, templates, terms) arrays
of the same item values, through the same :func:`cell_means`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from albert_audit.contract import require_columns
from albert_audit.errors import AuditError

VALUES = ("logprob", "association")
"""The scores a cell can hold: log P(target), or Kurita et al.'s association term_logprob - term_prior_logprob
(log P(term) with the target filled in minus with the target masked too)."""
DEFAULT_TAGS = ("neutral",)
"""The template tags whose items enter the cells (stereotype-eliciting templates are kept out)."""
ELICITING_TAGS = ("stereotype_eliciting",)
"""The tags of the templates reported apart (findings_stereotype_eliciting.csv)."""
UNITS = ("template", "template_term_pair")
"""The units a cube can be built over."""
SCORE_COLUMNS = ("target", "group", "template_id", "term_index", "logprob", "term_logprob", "term_prior_logprob")
"""The columns :func:`unit_cube` reads (one row per item x target of one probe set)."""


def cell_means(
    value: np.ndarray, codes: tuple[np.ndarray, ...], shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of ``value`` per cell of ``shape`` (cells given by integer ``codes``, one array per axis).

    Returns ``(mean, bad, count)``: the mean (NaN where the cell is empty or holds a non-finite value), a mask
    of the cells holding a non-finite value, and the number of values per cell.
    """
    flat = np.ravel_multi_index(codes, shape)
    size = int(np.prod(shape))
    bad = ~np.isfinite(value)
    sums = np.bincount(flat, weights=np.where(bad, 0.0, value), minlength=size)
    counts = np.bincount(flat, minlength=size)
    n_bad = np.bincount(flat, weights=bad.astype(float), minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    mean[(counts == 0) | (n_bad > 0)] = np.nan
    return mean.reshape(shape), (n_bad > 0).reshape(shape), counts.reshape(shape)


@dataclass(frozen=True)
class UnitCube:
    """One probe set's cells as (targets, groups, units) arrays, one per score in ``VALUES``."""

    targets: list[str]
    """Target names, sorted."""
    groups: list[str]
    """Group names, in the order given."""
    units: pd.Index
    """The units, sorted: template ids, or a (template_id, term_index) MultiIndex."""
    mean: dict[str, np.ndarray]
    """Per score: the cell means, NaN where undefined."""
    bad: dict[str, np.ndarray]
    """Per score: True where a cell held a non-finite value."""
    count: np.ndarray
    """The number of terms (items) in each cell."""


def item_values(scores: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each item's scores (``VALUES``): log P(target), and Kurita et al.'s association
    term_logprob - term_prior_logprob. The one definition every cell and term cube reads."""
    logprob = scores["logprob"].to_numpy(dtype=float)
    association = scores["term_logprob"].to_numpy(dtype=float) - scores["term_prior_logprob"].to_numpy(dtype=float)
    return {"logprob": logprob, "association": association}


def unit_cube(scores: pd.DataFrame, groups: list[str], unit: str = "template") -> UnitCube:
    """The cells of one probe set from its joined scores (columns ``SCORE_COLUMNS``; groups not empty).

    ``groups`` fixes the group axis; rows of other groups are an error.
    """
    if unit not in UNITS:
        raise AuditError(f"unit {unit!r}: expected one of {', '.join(UNITS)}")
    target = scores["target"].astype(str)
    target_names = sorted(target.unique())
    t_code = pd.Categorical(target, categories=target_names).codes
    g_code = pd.Categorical(scores["group"], categories=groups).codes
    if (g_code < 0).any():
        raise AuditError("unit_cube: a score row's group is not among the probe set's groups")
    if unit == "template":
        templates = np.sort(scores["template_id"].unique())
        u_code = np.searchsorted(templates, scores["template_id"].to_numpy())
        index: pd.Index = pd.Index(templates, name="template_id")
    else:
        pairs = scores[["template_id", "term_index"]].drop_duplicates().sort_values(["template_id", "term_index"])
        index = pd.MultiIndex.from_frame(pairs)
        u_code = index.get_indexer(pd.MultiIndex.from_frame(scores[["template_id", "term_index"]]))
    shape = (len(target_names), len(groups), len(index))
    values = item_values(scores)
    mean, bad, count = {}, {}, np.zeros(shape, dtype=np.int64)
    for name, value in values.items():
        mean[name], bad[name], count = cell_means(value, (t_code, g_code, u_code), shape)
    return UnitCube(targets=target_names, groups=list(groups), units=index, mean=mean, bad=bad, count=count)


TARGET_SCORES = ("logprob", "term_logprob", "term_prior_logprob")
"""The score columns of the targets table that the cells read."""


@dataclass(frozen=True)
class TermCube:
    """Item values of one probe set: ``values[score]`` has shape (targets, groups, templates, terms)."""

    targets: list[str]
    groups: list[str]
    templates: np.ndarray
    values: dict[str, np.ndarray]
    bad: dict[str, np.ndarray]
    """Per score: True where a cell held a non-finite value (then NaN in ``values``)."""


def term_cube(scores: pd.DataFrame, groups: list[str], *, targets: list[str] | None = None,
              templates: np.ndarray | None = None, n_terms: int | None = None) -> TermCube:
    """(targets, groups, templates, terms) arrays of one probe set's joined scores (``units.SCORE_COLUMNS``).

    Targets sorted, groups in the order given, templates sorted, terms by ``term_index`` (0..max), unless
    ``targets``, ``templates`` or ``n_terms`` fix an axis (rows outside it are left out: two models' cubes on
    the same axes). Several values in one cell are averaged; a cell with a non-finite value is NaN (a
    missing item).
    """
    term_index = scores["term_index"].to_numpy(dtype=np.int64)
    term_index = np.where(term_index < 0, 0, term_index)
    target = scores["target"].astype(str)
    names = sorted(target.unique()) if targets is None else list(targets)
    templates = np.sort(scores["template_id"].unique()) if templates is None else np.asarray(templates)
    if n_terms is None:
        n_terms = int(term_index.max()) + 1 if len(term_index) else 0
    t_code = pd.Categorical(target, categories=names).codes
    g_code = pd.Categorical(scores["group"].astype(str), categories=groups).codes
    j_code = pd.Index(templates).get_indexer(scores["template_id"].to_numpy())
    keep = (t_code >= 0) & (g_code >= 0) & (j_code >= 0) & (term_index < n_terms)
    scores, t_code, g_code, j_code, term_index = (scores[keep], t_code[keep], g_code[keep], j_code[keep],
                                                  term_index[keep])
    shape = (len(names), len(groups), len(templates), n_terms)
    values, bad = {}, {}
    for name, value in item_values(scores).items():
        values[name], bad[name], _ = cell_means(value, (t_code, g_code, j_code, term_index), shape)
    return TermCube(targets=names, groups=list(groups), templates=templates, values=values, bad=bad)


def counted_items(items: pd.DataFrame, tags: tuple[str, ...] = DEFAULT_TAGS) -> pd.Series:
    """True for the items that enter the cells: a group slot and a template tag in ``tags`` (default
    :data:`DEFAULT_TAGS`; items without a ``template_tag`` column count as neutral)."""
    slotted = items["group"].fillna("").astype(str) != ""
    tag = (items["template_tag"].fillna("").astype(str).replace("", DEFAULT_TAGS[0]) if "template_tag" in items
           else pd.Series(DEFAULT_TAGS[0], index=items.index))
    return slotted & tag.isin(tags)


def join_scores(items: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """Targets joined to their items' probe_set, template_id, group and term_index (the items that
    :func:`counted_items` keeps)."""
    for name, table, columns in (("items", items, ("item_id", "probe_set", "template_id", "group")),
                                 ("targets", targets, ("item_id", "target") + TARGET_SCORES)):
        require_columns(table, columns, f"{name} table")
    keep = ["item_id", "probe_set", "template_id", "group"] + (["term_index"] if "term_index" in items else [])
    slot = items.loc[counted_items(items), keep]
    joined = targets.loc[:, ["item_id", "target", *TARGET_SCORES]].merge(slot, on="item_id")
    joined["target"] = joined["target"].astype(str)
    joined["group"] = joined["group"].astype(str)
    if "term_index" not in joined:
        joined["term_index"] = 0
    return joined


def template_cells(items: pd.DataFrame, targets: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per-template group means of one run: ``{"logprob": wide, "association": wide}``.

    Each wide table has the index ``(probe_set, target, group)`` (sorted; only combinations with at least one
    item) and one column per template_id (sorted); cells are those of :func:`unit_cube`. Items without a
    group slot and items of stereotype-eliciting templates are left out (:func:`counted_items`).
    """
    index = pd.MultiIndex.from_tuples([], names=["probe_set", "target", "group"])
    empty = pd.DataFrame(index=index, dtype=float)
    if len(targets) == 0:
        return {name: empty for name in VALUES}
    joined = join_scores(items, targets)
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in VALUES}
    for probe_set, scores in joined.groupby("probe_set", sort=True):
        cube = unit_cube(scores, sorted(scores["group"].unique()))
        present = cube.count.sum(axis=2) > 0  # (targets, groups)
        t_idx, g_idx = np.nonzero(present)
        rows = pd.MultiIndex.from_arrays(
            [[probe_set] * t_idx.size, [cube.targets[t] for t in t_idx], [cube.groups[g] for g in g_idx]],
            names=["probe_set", "target", "group"])
        for name in VALUES:
            frames[name].append(pd.DataFrame(cube.mean[name][t_idx, g_idx, :], index=rows, columns=cube.units))
    out: dict[str, pd.DataFrame] = {}
    for name in VALUES:
        wide = pd.concat(frames[name]) if frames[name] else empty
        wide.columns.name = "template_id"
        out[name] = wide.sort_index(axis=0).sort_index(axis=1)
    return out
