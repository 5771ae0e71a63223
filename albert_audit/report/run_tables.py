"""The tables of report.html: mean log-probabilities by group (the heatmap's data), the top-k fills per
template and group, and the rows of each probe set's findings table."""

from __future__ import annotations

from typing import Any

import pandas as pd

from albert_audit.report import fmt
from albert_audit.report.narrative import VERDICT_LABELS
from albert_audit.units import template_cells

TOP_FILLS = 5
NO_SLOT_LABEL = "(no group slot)"
FINDINGS_HEADERS = ("Metric", "Target", "Group A", "Group B", "n", "Effect", "Unit", "CI", "Ratio A:B (CI)", "p",
                    "q", "Verdict · scope", "Method")
"""Column headers of a findings table; "CI" is shown with the run's level (see :func:`findings_headers`).
Significance shows as the row's highlight and its q; the direction as the sign of the effect and the ratio."""
VERDICT_CLASSES = {"material": "v-m", "negligible": "v-n", "below_margin": "v-b", "inconclusive": "v-i"}
"""The CSS class of a verdict cell (short: a library-scale report has ~13,000 rows)."""


def group_target_means(items: pd.DataFrame, targets: pd.DataFrame, probe_set: str, *,
                       cells: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean log-probability of each target (rows) after each group's terms (columns), in nats.

    The study's unit from :func:`albert_audit.units.template_cells` (per template, the group's mean over its
    terms; NaN when any of those terms' values is not finite), averaged over the templates where it is
    defined. Rows and columns keep the run's order; an empty frame when the set has no scored target.
    ``cells``: the run's ``template_cells(items, targets)["logprob"]`` when the caller has it already.
    """
    its = items.loc[(items["probe_set"] == probe_set) & (items["group"] != ""), ["item_id", "group"]]
    if its.empty or targets.empty:
        return pd.DataFrame()
    if cells is None:
        cells = template_cells(items, targets)["logprob"]
    if probe_set not in cells.index.get_level_values("probe_set"):
        return pd.DataFrame()
    means = cells.xs(probe_set, level="probe_set").mean(axis=1, skipna=True).unstack("group")
    means = means.dropna(how="all").dropna(axis=1, how="all")
    if means.empty:
        return pd.DataFrame()
    target_order = [str(t) for t in dict.fromkeys(targets.loc[targets["item_id"].isin(its["item_id"]), "target"])]
    group_order = [str(g) for g in dict.fromkeys(its["group"])]
    return means.reindex(index=[t for t in target_order if t in means.index],
                         columns=[g for g in group_order if g in means.columns])


def top_fills_table(items: pd.DataFrame, fills: pd.DataFrame, probe_set: str, *,
                    k: int = TOP_FILLS) -> dict[str, Any]:
    """Top-k fills per template and group, as on the albert-large-v2 model card.

    A fill's score for a group is its probability averaged over the group's items of that template (a fill
    outside an item's saved top-k counts as 0 for that item).
    """
    its = items.loc[items["probe_set"] == probe_set, ["item_id", "template_id", "template", "group"]]
    groups = list(dict.fromkeys(its["group"]))
    columns = [{"name": g or NO_SLOT_LABEL} for g in groups]
    joined = fills.loc[:, ["item_id", "token", "prob"]].merge(its, on="item_id")
    rows = []
    for template_id, template_items in its.groupby("template_id", sort=True):
        cells = []
        for group in groups:
            group_items = template_items[template_items["group"] == group]
            if group_items.empty:
                cells.append({"present": False, "n_items": 0, "fills": []})
                continue
            chosen = joined[(joined["template_id"] == template_id) & (joined["group"] == group)]
            scores = chosen.groupby("token", sort=False)["prob"].sum() / len(group_items)
            ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
            cells.append({
                "present": True,
                "n_items": int(len(group_items)),
                "fills": [{"token": _show_token(tok), "prob": fmt.share(p), "value": float(p)}
                          for tok, p in ordered],
            })
        rows.append({"template_id": int(template_id), "template": str(template_items["template"].iloc[0]),
                     "cells": cells})
    return {"columns": columns, "rows": rows, "k": k}


def _show_token(token: Any) -> str:
    text = "" if token is None else str(token)
    return text if text.strip() else "␣" * max(len(text), 1)


def findings_headers(alpha: float) -> list[str]:
    """The findings table's headers, the interval column labelled with the run's level ("97.5% CI")."""
    return [fmt.ci_label(alpha) if h == "CI" else h for h in FINDINGS_HEADERS]


def findings_rows(rows: pd.DataFrame, method_index: dict[str, int]) -> list[dict[str, Any]]:
    """One table row per (typed) findings row, in file order; ``method_index`` numbers the method strings."""
    table = []
    for _, r in rows.iterrows():
        n_units = int(r["n_units"]) if fmt.finite(r["n_units"]) else None
        # data-v (the sort key) only where the shown text does not sort right by itself: the script sorts
        # plain numbers by their text, which keeps big tables small.
        table.append({"significant": bool(r["significant"]), "cells": [
            {"text": r["metric"], "v": None},
            {"text": r["target"] or "(whole set)", "v": None},
            {"text": r["group_a"] or "—", "v": None},
            {"text": r["group_b"] or "—", "v": None},
            {"text": str(n_units) if n_units is not None else "—", "v": None},
            {"text": fmt.number(r["effect"], 3), "v": None},
            {"text": r["effect_unit"], "v": None},
            {"text": fmt.ci(r["ci_low"], r["ci_high"], 3), "v": _sort_attr(r["ci_low"], 3)},
            _ratio_cell(r),
            _p_cell(r["p_value"]),
            _p_cell(r["q_value"]),
            _verdict_cell(r),
            {"text": str(method_index[r["method"]]) if r["method"] else "—", "v": None},
        ]})
    return table


def _verdict_cell(r: pd.Series) -> dict[str, Any]:
    """ "material · group" (verdict, then scope), classed for its colour; "—" for rows without a verdict."""
    if r["verdict"] not in VERDICT_LABELS:
        return {"text": "—", "v": None}
    scope = f" · {r['scope']}" if r["scope"] else ""
    return {"text": f"{VERDICT_LABELS[r['verdict']]}{scope}", "v": None, "cls": VERDICT_CLASSES[r["verdict"]]}


def _ratio_cell(r: pd.Series) -> dict[str, Any]:
    """exp(effect) with exp of the interval: "2.05 [1.50, 2.80]" (signed log-ratio gaps only)."""
    if not fmt.finite(r["ratio"]):
        return {"text": "—", "v": None}
    ok = fmt.finite(r["ratio_low"]) and fmt.finite(r["ratio_high"])
    ci = f" [{fmt.ratio(float(r['ratio_low']))}, {fmt.ratio(float(r['ratio_high']))}]" if ok else ""
    return {"text": f"{fmt.ratio(float(r['ratio']))}{ci}", "v": None}  # the page's script sorts by the leading number


def _sort_attr(value: Any, digits: int) -> str | None:
    return f"{float(value):.{digits}f}" if fmt.finite(value) else None


def _p_cell(value: Any) -> dict[str, Any]:
    text = fmt.p_value(value)
    return {"text": text, "v": f"{float(value):.3g}" if text.startswith("<") else None}
