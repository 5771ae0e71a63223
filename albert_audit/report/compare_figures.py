"""The charts of compare.html: which deltas each one shows, its labels, alt text and caption (drawing: charts.py)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from albert_audit import contract, registry
from albert_audit.report import charts, fmt

FOREST_MAX_ROWS = 40


def delta_forest(rows: pd.DataFrame, *, chart_id: str, metric: str, candidate: str, probe_set: str,
                 alpha: float) -> dict[str, Any] | None:
    """Forest plot of one metric's per-target deltas (the largest ``FOREST_MAX_ROWS``) with its caption."""
    rows = rows[fmt.finite_mask(rows["delta"])]
    if rows.empty:
        return None
    shown = rows.reindex(rows["delta"].abs().sort_values(ascending=False, kind="stable").index)
    shown = shown.head(FOREST_MAX_ROWS).sort_values("delta", ascending=False, kind="stable")
    several_pairs = rows[["group_a", "group_b"]].drop_duplicates().shape[0] > 1
    labels = [f"{r.target} ({r.group_a} vs {r.group_b})" if several_pairs else str(r.target)
              for r in shown.itertuples()]
    material = [str(v) == "material" for v in shown["delta_verdict"]]
    pair = "" if several_pairs else f" ({shown.iloc[0]['group_a']} minus {shown.iloc[0]['group_b']})"
    name = registry.label(metric)
    alt = (f"Forest plot of the change in {name}{pair} per target, {candidate} minus the base, probe set "
           f"{probe_set}, with {fmt.ci_level(alpha)} confidence intervals: "
           + "; ".join(f"{lab} {fmt.number(d, signed=True, keep_tiny=True)}"
                       for lab, d in zip(labels, shown["delta"], strict=True)) + ".")
    chart = charts.forest_plot(labels, shown["delta"].tolist(), shown["ci_low"].tolist(), shown["ci_high"].tolist(),
                               material, chart_id=chart_id, xlabel=f"delta{pair}, nats (candidate − base)",
                               alt=alt, legend_a="material, candidate higher",
                               legend_b="material, candidate lower", legend_none="not material", ratio_axis=False)
    margins = sorted(set(rows["margin"].dropna().astype(float)))
    margin = f" beyond ± {', '.join(fmt.margin(m) for m in margins)}" if margins else ""
    caption = (f"Change in the {name} per target{pair}: candidate minus base over the paired items, with "
               f"{fmt.ci_level(alpha)} confidence intervals (templates and terms crossed). Filled markers: material "
               f"changes{margin} after FDR control at {fmt.alpha_text(alpha)}.")
    if len(rows) > len(shown):
        caption += f" The {len(shown)} largest of {len(rows)} changes are shown; {contract.DELTAS_FILE} has all."
    return chart.as_context(caption)


def effect_scatter(rows: pd.DataFrame, *, chart_id: str, candidate: str, probe_set: str,
                   base_label: str) -> dict[str, Any] | None:
    """Scatter of the per-target effects of the base (x) against the candidate (y), coloured by change."""
    rows = rows[fmt.finite_mask(rows["base_effect"]) & fmt.finite_mask(rows["candidate_effect"])]
    if rows.empty:
        return None
    counts = rows["change"].value_counts()
    classes = list(dict.fromkeys([*charts.CHANGE_STYLE, *rows["change"]]))
    alt = (f"Scatter plot of per-target effects (log-prob and association gaps, nats) of probe set {probe_set}: "
           f"{base_label} on the x axis, {candidate} on the y axis, {len(rows)} points; "
           + ", ".join(f"{int(counts.get(c, 0))} {c.replace('_', ' ')}" for c in classes) + ".")
    chart = charts.effect_scatter(rows["base_effect"].tolist(), rows["candidate_effect"].tolist(),
                                  rows["change"].tolist(), chart_id=chart_id, alt=alt, xlabel="base effect (nats)",
                                  ylabel="candidate effect (nats)")
    caption = ("Per-target effects of the base (x) against the candidate (y), log-prob and association gaps "
               "together. On the dashed line y = x nothing changed; points farther from 0 than the line grew. "
               "Marker shape and colour give the change class.")
    return chart.as_context(caption)
