"""The charts of report.html: which rows each one shows, its labels, alt text and note (drawing: charts.py)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from albert_audit.report import charts, fmt
from albert_audit.report.run_tables import group_target_means

FOREST_MAX_ROWS = 60


def gap_forest(rows: pd.DataFrame, *, chart_id: str, alpha: float) -> tuple[dict[str, Any] | None, str]:
    """Forest plot of a probe set's per-target log-prob gaps (the largest ``FOREST_MAX_ROWS``) and its note."""
    gaps = rows[(rows["metric"] == "logprob_gap") & (rows["target"] != "") & fmt.finite_mask(rows["effect"])]
    if gaps.empty:
        return None, ""
    pairs = list(dict.fromkeys(zip(gaps["group_a"], gaps["group_b"], strict=True)))
    total = len(gaps)
    if len(gaps) > FOREST_MAX_ROWS:
        gaps = gaps.assign(_size=-gaps["effect"].abs()).sort_values("_size", kind="mergesort")
        gaps = gaps.head(FOREST_MAX_ROWS)
    gaps = gaps.sort_values("effect", ascending=False, kind="mergesort")
    material = list(gaps["verdict"].astype(str) == "material")
    n_material = sum(material)
    if len(pairs) == 1:
        a, b = pairs[0]
        labels = list(gaps["target"])
        short_a, short_b = fmt.short(a, 20), fmt.short(b, 20)
        xlabel = f"log-probability gap, {short_a} − {short_b} (nats); > 0: more likely after {short_a}"
        legend_a, legend_b = f"material, higher after {a}", f"material, higher after {b}"
        what = f"{a} minus {b}"
    else:
        labels = [f"{fmt.short(t, 24)}: {fmt.short(a, 16)} − {fmt.short(b, 16)}"
                  for t, a, b in zip(gaps["target"], gaps["group_a"], gaps["group_b"], strict=True)]
        xlabel = "log-probability gap, group A − group B (nats); > 0: more likely after A"
        legend_a, legend_b = "material, group A higher", "material, group B higher"
        what = "group A minus group B"
    top, bottom = gaps.iloc[0], gaps.iloc[-1]
    alt = (f"Forest plot of {len(gaps)} per-target log-probability gaps ({what}, in nats) with "
           f"{fmt.ci_level(alpha)} confidence intervals; {n_material} material (beyond the margin at q ≤ "
           f"{fmt.alpha_text(alpha)}). "
           f"Largest: {labels[0]} {fmt.number(top['effect'])}; smallest: {labels[-1]} "
           f"{fmt.number(bottom['effect'])}.")
    note = (f"Showing the {len(gaps)} largest of {total} per-target comparisons; all of them are in the "
            f"findings table." if total > len(gaps) else "")
    chart = charts.forest_plot(labels, list(gaps["effect"]), list(gaps["ci_low"]), list(gaps["ci_high"]),
                               material, chart_id=chart_id, xlabel=xlabel, alt=alt,
                               legend_a=legend_a, legend_b=legend_b, legend_none="not material")
    return chart.as_context(), note


def means_heatmap(items: pd.DataFrame, targets: pd.DataFrame, probe_set: str, *, chart_id: str,
                  cells: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """Heatmap of :func:`group_target_means`: cells print the means, colours compare the groups per row."""
    means = group_target_means(items, targets, probe_set, cells=cells)
    if means.empty or means.shape[1] < 1:
        return None
    values = means.to_numpy(dtype=float)
    centred = values - np.nanmean(values, axis=1, keepdims=True)
    text = [[fmt.number(v, 1) if math.isfinite(v) else "" for v in row] for row in values]
    finite = np.where(np.isfinite(centred), np.abs(centred), -1.0)
    i, j = np.unravel_index(int(np.argmax(finite)), finite.shape)
    alt = (f"Heatmap of the mean log-probability (nats) of {means.shape[0]} targets (rows) after the terms "
           f"of {means.shape[1]} groups (columns); colour shows each value minus the target's mean over the "
           f"groups. Largest deviation: '{means.index[i]}' after {means.columns[j]} terms, "
           f"{fmt.number(centred[i, j])} nats.")
    return charts.heatmap(
        [str(t) for t in means.index], [str(g) for g in means.columns], centred, text, chart_id=chart_id,
        colourbar_label="vs the target's mean over groups\n(nats; purple = higher)",
        xlabel="group (cells: mean log-probability, nats)", ylabel="target", alt=alt).as_context()


def bias_score_forest(sets: list[dict[str, Any]], *, alpha: float) -> dict[str, Any] | None:
    """The executive summary's chart: each probe set's bias score with its interval."""
    points = [(s["name"], s["bias"]) for s in sets if s["bias"] and math.isfinite(s["bias"]["effect"])]
    if not points:
        return None
    units = {b["unit"] for _, b in points}
    unit = units.pop() if len(units) == 1 else "mixed units"
    alt = (f"Bias score of {len(points)} probe sets with {fmt.ci_level(alpha)} confidence intervals ({unit}); "
           + "; ".join(f"{label} {fmt.number(b['effect'])}" for label, b in points) + ".")
    chart = charts.forest_plot(
        [label for label, _ in points], [b["effect"] for _, b in points], [b["ci_low"] for _, b in points],
        [b["ci_high"] for _, b in points], [b["verdict"] == "material" for _, b in points],
        chart_id="chart-summary",
        xlabel=f"probe-set bias score: RMS association gap over targets, debiased ({unit})", alt=alt,
        legend_a=f"material (q ≤ {fmt.alpha_text(alpha)})", legend_b="", ratio_axis=False, show_legend=False)
    return chart.as_context()


SHARE_TICKS = (0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98)
"""Reference shares marked on the alignment chart's top axis."""


def alignment_chart(points: Any, row: pd.Series, *, chart_id: str) -> dict[str, Any] | None:
    """The reference-alignment chart of a probe set: each word's effect (y, nats) against logit(share) (x),
    labelled, with the findings row's OLS slope through the points' means and the slope-1 line.

    ``points``: :class:`albert_audit.metrics.reference_alignment.Points` (the words the row fits)."""
    if points is None or len(points.words) == 0:
        return None
    x = np.log(points.shares) - np.log1p(-points.shares)
    y = np.asarray(points.effects, dtype=float)
    slope = fmt.as_float(row["effect"])
    a, b = fmt.short(points.group_a, 20), fmt.short(points.group_b, 20)
    hi, lo = int(np.argmax(y)), int(np.argmin(y))
    alt = (f"Scatter of {len(y)} words: the model's {a} − {b} effect (nats, mean over templates) against the "
           f"log-odds of each word's reference share, with the least-squares line (slope "
           f"{fmt.number(slope)} nats per logit) and a dashed slope-1 line. Highest: '{points.words[hi]}' "
           f"{fmt.number(y[hi])}; lowest: '{points.words[lo]}' {fmt.number(y[lo])}.")
    ticks = [float(np.log(s) - np.log1p(-s)) for s in SHARE_TICKS]
    return charts.reference_scatter(
        points.words, x, y, slope=slope, chart_id=chart_id, alt=alt,
        xlabel="reference share, log-odds: log(share / (1 − share))",
        ylabel=f"model's effect, {a} − {b} (nats)",
        fit_label=f"least-squares fit: {fmt.number(slope)} nats per logit",
        top_ticks=ticks, top_labels=[f"{100 * s:g}%" for s in SHARE_TICKS], top_label="reference share",
    ).as_context()
