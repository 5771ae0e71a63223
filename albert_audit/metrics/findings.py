"""Score tables (items, targets, fills) -> the findings table: one row per comparison.

Every metric is a registry entry (:mod:`albert_audit.registry`) whose compute function makes its rows for one
probe set; this module validates the inputs, hands each probe set's scores to every registered metric, and
finishes the table (row order, q-values, significance, direction, dtypes). Every resampling stream is keyed
by ``rng_for(seed, "<probe set>/<metric>/...")``, so a row's CI and p-value depend only on the seed and on
that row's data (adding a probe set or a target never shifts another row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from albert_audit import registry, stats, units
from albert_audit.contract import FINDINGS, require_columns
from albert_audit.errors import AuditError
from albert_audit.metrics.core import FINDINGS_COLUMNS, Config, ProbeSetScores
from albert_audit.metrics.row_verdicts import add_verdicts, check_margin

UNITS = units.UNITS
_ITEM_COLUMNS = ("item_id", "probe_set", "template_id", "group", "term", "term_index")
_TARGET_COLUMNS = ("item_id", "target", "logprob", "term_logprob", "term_prior_logprob")
_OPTIONAL = {"items": ("template_tag", "term_reference_share", "group_factors"),
             "targets": ("category", "control", "reference_share")}
"""Annotation columns passed on to the metrics when present (docs/data_contract.md)."""
_FILL_COLUMNS = ("item_id", "rank", "token", "prob")


def _require(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    require_columns(table, columns, f"{name} table")


def _prepare_items(items: pd.DataFrame) -> pd.DataFrame:
    _require(items, _ITEM_COLUMNS, "items")
    keep = list(_ITEM_COLUMNS) + [c for c in _OPTIONAL["items"] if c in items.columns]
    out = items.loc[:, keep].sort_values("item_id", kind="stable").reset_index(drop=True)
    if out["item_id"].duplicated().any():
        raise AuditError("items table: item_id values are not unique")
    for column in ("probe_set", "group", "term"):
        out[column] = out[column].fillna("").astype(str)
    return out


def _prepare_scores(
    table: pd.DataFrame, columns: Sequence[str], keys: list[str], name: str, item_ids: pd.Series
) -> pd.DataFrame:
    if len(table) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    _require(table, columns, name)
    extra = ["token_id"] if name == "fills" and "token_id" in table.columns else []
    extra += [c for c in _OPTIONAL.get(name, ()) if c in table.columns]
    out = table.loc[:, list(columns) + extra].sort_values(keys, kind="stable").reset_index(drop=True)
    if out.duplicated(keys).any():
        raise AuditError(f"{name} table: duplicate ({', '.join(keys)}) rows")
    unknown = ~out["item_id"].isin(item_ids)
    if unknown.any():
        raise AuditError(f"{name} table: {int(unknown.sum())} rows have an item_id that is not in items")
    return out


def compute_findings(
    items: pd.DataFrame,
    targets: pd.DataFrame,
    fills: pd.DataFrame,
    *,
    seed: int = 0,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    unit: str = "template",
    margin: float | None = None,
    tags: tuple[str, ...] = units.DEFAULT_TAGS,
) -> pd.DataFrame:
    """The findings table (columns ``FINDINGS_COLUMNS``, docs/data_contract.md) of one run's score tables.

    ``unit`` is the unit of the paired target comparisons: ``"template"`` (default: group means over terms
    within a template) or ``"template_term_pair"`` (terms paired by term_index). q-values are
    Benjamini-Hochberg within each (probe set, metric) family of rows with a p-value; ``significant`` is
    ``q_value <= alpha``; CIs are ``1 - alpha`` two-sided. Rows are sorted by probe set (run order), metric
    (registry order), target, then group pair (group order = first appearance in items); the result does not
    depend on the input row order or on PYTHONHASHSEED. ``margin``: the practical margin (nats) of the signed
    log-ratio gaps' verdicts (None: the registry's default, log 1.25); verdicts:
    :mod:`albert_audit.metrics.row_verdicts`.
    ``tags``: the template tags whose items are used (default the neutral templates; ``units.ELICITING_TAGS``
    gives the stereotype-eliciting templates' own table, findings_stereotype_eliciting.csv).
    """
    if not 0.0 < float(alpha) < 1.0:
        raise AuditError(f"alpha {alpha!r}: must be between 0 and 1")
    if unit not in UNITS:
        raise AuditError(f"unit {unit!r}: expected one of {', '.join(UNITS)}")
    stats.rng_for(seed, "check")  # validates the seed
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise AuditError(f"n_resamples {n_resamples!r}: must be a positive integer")
    cfg = Config(seed=int(seed), alpha=float(alpha), n_resamples=int(n_resamples), unit=unit,
                 margin=check_margin(margin))

    items = _prepare_items(items)
    rows: list[dict[str, Any]] = []
    for data in probe_set_scores(items, targets, fills, tags=tags):
        rows.extend(probe_set_rows(data, cfg))
    return add_verdicts(_finish(rows, items, cfg), alpha=cfg.alpha)


def probe_set_scores(items: pd.DataFrame, targets: pd.DataFrame, fills: pd.DataFrame | None = None, *,
                     tags: tuple[str, ...] = units.DEFAULT_TAGS) -> list[ProbeSetScores]:
    """Each probe set's scores as the metrics read them (run order): the items with a group slot of templates
    tagged ``tags`` (:func:`albert_audit.units.counted_items`) joined to their target and fill rows. Also what the
    report reads to draw a metric's data (e.g. the reference-alignment points)."""
    items = _prepare_items(items)
    if fills is None:
        fills = pd.DataFrame(columns=list(_FILL_COLUMNS))
    targets = _prepare_scores(targets, _TARGET_COLUMNS, ["item_id", "target"], "targets", items["item_id"])
    fills = _prepare_scores(fills, _FILL_COLUMNS, ["item_id", "rank"], "fills", items["item_id"])
    slot = items[units.counted_items(items, tuple(tags))]  # by default, stereotype-eliciting templates stay out
    item_info = slot[["item_id", "probe_set", "template_id", "group", "term", "term_index"]
                     + [c for c in _OPTIONAL["items"] if c in slot.columns and c != "template_tag"]]
    tjoined = targets.merge(item_info, on="item_id", how="inner", sort=False)
    tjoined["target"] = tjoined["target"].astype(str)
    fjoined = fills.merge(item_info, on="item_id", how="inner", sort=False)
    out = []
    for probe_set in pd.unique(items["probe_set"]):
        groups = [str(g) for g in pd.unique(slot.loc[slot["probe_set"] == probe_set, "group"])]
        out.append(ProbeSetScores(name=probe_set, groups=groups, targets=tjoined[tjoined["probe_set"] == probe_set],
                                  fills=fjoined[fjoined["probe_set"] == probe_set]))
    return out


def probe_set_rows(data: ProbeSetScores, cfg: Config) -> list[dict[str, Any]]:
    """Every registered metric's rows for one probe set (a metric is skipped when its table is empty or the
    set has fewer groups than it needs)."""
    rows: list[dict[str, Any]] = []
    for spec in registry.METRICS:
        if not spec.from_items:  # a standard benchmark's metric: its rows come from albert_audit.benchmarks
            continue
        table = data.targets if spec.source == "targets" else data.fills
        if table.empty or len(data.groups) < spec.min_groups:
            continue
        rows.extend(registry.compute_function(spec.id)(data, cfg))
    return rows


def _finish(rows: list[dict[str, Any]], items: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(FINDINGS_COLUMNS))
    if table.empty:
        return typed(table)
    set_order = {name: i for i, name in enumerate(pd.unique(items["probe_set"]))}
    metric_order = {name: i for i, name in enumerate(registry.metric_ids())}
    group_order: dict[tuple[str, str], int] = {}
    for probe_set, sub in items[items["group"] != ""].groupby("probe_set", sort=False):
        for i, g in enumerate(pd.unique(sub["group"])):
            group_order[(str(probe_set), str(g))] = i
    keys = pd.DataFrame(
        {
            "s": table["probe_set"].map(set_order),
            "m": table["metric"].map(metric_order),
            "t": table["target"],
            "a": [group_order.get((s, g), -1) for s, g in zip(table["probe_set"], table["group_a"], strict=True)],
            "b": [group_order.get((s, g), -1) for s, g in zip(table["probe_set"], table["group_b"], strict=True)],
        }
    )
    table = table.loc[keys.sort_values(["s", "m", "t", "a", "b"], kind="stable").index].reset_index(drop=True)
    table = typed(table)
    # one FDR family per probe set and metric: a set's q-values never depend on the other sets of the run
    families = list(zip(table["probe_set"], table["metric"], strict=True))
    q = stats.benjamini_hochberg_by(table["p_value"].to_numpy(dtype=float), families)
    table["q_value"] = q
    significant = np.nan_to_num(q, nan=np.inf) <= cfg.alpha
    table["significant"] = significant
    signed = table["metric"].isin(registry.signed_ids()).to_numpy()
    effect = table["effect"].to_numpy(dtype=float)
    direction = np.full(len(table), "none", dtype=object)
    direction[signed & significant & (effect > 0)] = "a>b"
    direction[signed & significant & (effect < 0)] = "b>a"
    table["direction"] = pd.Series(direction, index=table.index, dtype=object)
    return table


def typed(table: pd.DataFrame) -> pd.DataFrame:
    """The findings columns in contract order and dtypes (albert_audit.contract.FINDINGS)."""
    out = pd.DataFrame(index=table.index)
    for column in FINDINGS.columns:
        values = table[column.name]
        if column.dtype == "str":
            out[column.name] = pd.Series(values.astype(str).to_numpy(dtype=object), index=table.index, dtype=object)
        elif column.dtype == "bool":
            out[column.name] = values.astype(bool)
        else:
            out[column.name] = values.astype(column.dtype)
    return out
