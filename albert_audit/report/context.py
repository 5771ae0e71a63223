"""A run folder -> every number, sentence and chart report.html shows (the templates only lay them out).

All values are plain strings, numbers, lists and dicts (plus the charts' SVG, marked safe by
:meth:`albert_audit.report.charts.Chart.as_context`). Untrusted text (probe templates, group names, targets,
model ids, paths, predicted tokens) stays a plain ``str`` so that the autoescaping templates escape it.

Where the numbers come from:

* the executive summary and the findings tables: ``findings.csv`` only (every number can be traced to a row),
  typed once by :func:`albert_audit.report.sources.typed_findings`: bias score, CI, its verdict, association
  gaps counted by verdict and the most skewed targets (material gaps, beyond the group shift where that is
  material) per probe set through :func:`albert_audit.metrics.summarise_bias`, verdict counts (and, after
  them, counts of significant rows) directly;
* the heatmaps: the study's unit (:func:`albert_audit.units.template_cells`) averaged over templates;
* the top-k fills: ``fills.parquet`` joined to ``items.parquet``;
* the header, methods and appendix: ``summary.json``.

Every confidence level is printed from the run's alpha (:func:`albert_audit.report.fmt.ci_level`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from albert_audit import contract, registry
from albert_audit.errors import AuditError
from albert_audit.metrics import summarise_bias
from albert_audit.metrics.findings import probe_set_scores
from albert_audit.metrics.reference_alignment import points as alignment_points
from albert_audit.report import fmt
from albert_audit.report.alignment_section import alignment_section
from albert_audit.report.benchmark_section import HEADERS as BENCHMARK_HEADERS
from albert_audit.report.benchmark_section import benchmark_rows, benchmark_section, benchmark_toc
from albert_audit.report.eliciting_section import eliciting_section
from albert_audit.report.interaction_section import interaction_section
from albert_audit.report.metadata import run_appendix, run_header
from albert_audit.report.narrative import VERDICT_LABELS, finding_sentence, shift_of, top_findings, top_items
from albert_audit.report.run_figures import FOREST_MAX_ROWS, bias_score_forest, gap_forest, means_heatmap
from albert_audit.report.run_tables import (
    NO_SLOT_LABEL,
    TOP_FILLS,
    findings_headers,
    findings_rows,
    group_target_means,
    top_fills_table,
)
from albert_audit.report.sources import typed_findings
from albert_audit.results import RunTables
from albert_audit.units import template_cells

__all__ = ["build_context", "group_target_means", "top_fills_table"]

TOP_TARGETS_PER_GROUP = 3


def _set_bias(rows: pd.DataFrame, bias: dict[str, Any] | None) -> dict[str, Any] | None:
    """The executive-summary numbers of one probe set, from :func:`albert_audit.metrics.summarise_bias`."""
    if bias is None:
        return None
    score_rows = rows[rows["metric"] == "bias_score"]
    unit = score_rows["effect_unit"].iloc[0] if len(score_rows) else ""
    top = bias.get("top_targets") or {}
    gap_verdicts = bias.get("gap_verdicts") or {}
    n_gaps = int(bias.get("n_gap_verdicts") or 0)
    verdict = str(bias.get("verdict") or "")
    return {
        "score": fmt.number(bias["bias_score"]), "score_v": fmt.attr(bias["bias_score"]),
        "unit": unit,
        "ci": fmt.ci(bias["ci_low"], bias["ci_high"]),
        "ci_low_v": fmt.attr(bias["ci_low"]), "ci_high_v": fmt.attr(bias["ci_high"]),
        "q": fmt.p_value(bias.get("q_value")), "q_v": fmt.attr(bias.get("q_value")),
        "verdict": verdict if verdict in VERDICT_LABELS else "",
        "verdict_label": VERDICT_LABELS.get(verdict, ""),
        "gaps": f"{verdict_text(gap_verdicts)} of {n_gaps}" if n_gaps else "—",
        "gaps_material": int(gap_verdicts.get("material", 0)), "gaps_total": n_gaps,
        "top_targets": [{"group": g, "targets": ", ".join(ts[:TOP_TARGETS_PER_GROUP])}
                        for g, ts in top.items() if ts],
        "top_basis": str(bias.get("top_basis") or "association gaps"),
        "effect": fmt.as_float(bias["bias_score"]),
        "ci_low": fmt.as_float(bias["ci_low"]),
        "ci_high": fmt.as_float(bias["ci_high"]),
        "significant": fmt.finite(bias.get("q_value")) and bool(score_rows["significant"].any()),
    }


def verdict_text(counts: dict[str, int]) -> str:
    """"2 material, 18 negligible" (verdict order, zero counts left out; "none" when all are zero)."""
    parts = [f"{int(counts.get(v, 0))} {label}" for v, label in VERDICT_LABELS.items() if counts.get(v, 0)]
    return ", ".join(parts) or "none"


def _probe_set_context(name: str, index: int, run: RunTables, findings: pd.DataFrame, *, alpha: float,
                       method_index: dict[str, int], top_k: int, bias: dict[str, Any] | None,
                       cells: pd.DataFrame | None, points: Any = None,
                       eliciting: pd.DataFrame | None = None) -> dict[str, Any]:
    items = run.items
    rows = findings[findings["probe_set"] == name]
    its = items[items["probe_set"] == name]
    groups = []
    for group, group_items in its.groupby("group", sort=False):
        terms = list(dict.fromkeys(group_items.sort_values("term_index", kind="mergesort")["term"]))
        groups.append({"name": group or NO_SLOT_LABEL, "terms": ", ".join(t for t in terms if t) or "—",
                       "n_terms": sum(1 for t in terms if t)})
    set_targets = run.targets[run.targets["item_id"].isin(its["item_id"])] if len(run.targets) else run.targets
    target_names = list(dict.fromkeys(set_targets["target"])) if len(set_targets) else []
    tested = rows[fmt.finite_mask(rows["q_value"])]
    forest, forest_note = gap_forest(rows, chart_id=f"chart-{index + 1}-forest", alpha=alpha)
    alignment = alignment_section(rows, points, chart_id=f"chart-{index + 1}-alignment", alpha=alpha)
    heat = (means_heatmap(items, run.targets, name, chart_id=f"chart-{index + 1}-heatmap", cells=cells)
            if cells is not None else None)
    return {
        "name": name,
        "anchor": f"set-{index + 1}-{fmt.slug(name)}",
        "n_templates": int(its["template_id"].nunique()),
        "n_items": int(len(its)),
        "groups": groups,
        "n_groups": sum(1 for g in groups if g["name"] != NO_SLOT_LABEL),
        "targets": target_names,
        "n_targets": len(target_names),
        "bias": _set_bias(rows, bias),
        "n_tests": int(len(tested)),
        "n_significant": int(tested["significant"].sum()),
        "sentences": [finding_sentence(r, alpha=alpha, shift=shift_of(r, rows)) for r in top_findings(rows)],
        "top": top_items(rows, alpha=alpha),
        "verdicts": _verdict_counts(rows),
        "verdicts_text": verdict_text(_verdict_counts(rows)),
        "n_verdicts": int(sum(_verdict_counts(rows).values())),
        "forest": forest,
        "forest_note": forest_note,
        "alignment": alignment,
        "interaction": interaction_section(rows, alpha=alpha),
        "eliciting": eliciting_section(name, items, eliciting, alpha=alpha, method_index=method_index),
        "heatmap": heat,
        "fills": top_fills_table(items, run.fills, name, k=min(TOP_FILLS, top_k) if top_k else TOP_FILLS),
        "findings_headers": findings_headers(alpha),
        "findings_rows": findings_rows(rows, method_index),
        "findings_caption": f"{len(rows)} row{'s' if len(rows) != 1 else ''} of {contract.FINDINGS_FILE}",
        "methods": [{"index": method_index[m], "text": m} for m in dict.fromkeys(rows["method"]) if m],
    }


def _verdict_counts(rows: pd.DataFrame) -> dict[str, int]:
    """How many rows got each verdict (rows without a verdict left out)."""
    return {v: int((rows["verdict"] == v).sum()) for v in VERDICT_LABELS}


def verdict_guide(findings: pd.DataFrame, alpha: float) -> dict[str, Any]:
    """What the "How to read verdicts" section prints: the margins this run used, per metric, and alpha."""
    margins = []
    for metric, sub in findings[fmt.finite_mask(findings["margin"])].groupby("metric", sort=False):
        for value in sorted(set(sub["margin"].astype(float))):
            unit = str(sub["effect_unit"].iloc[0])
            margins.append({"metric": metric, "label": registry.label(metric), "margin": fmt.margin(value, unit),
                            "ratio": fmt.margin_ratio(value) if unit == "nats" else "", "value": fmt.attr(value)})
    return {"alpha": fmt.alpha_text(alpha), "tost_level": fmt.ci_level(2 * alpha), "margins": margins,
            "labels": VERDICT_LABELS}


def _metric_list(present: list[str]) -> list[dict[str, Any]]:
    """Every registered metric (registry order) and any other metric the findings hold, with its label."""
    ids = list(registry.metric_ids()) + [m for m in present if m not in registry.metric_ids()]
    return [{"id": m, "label": registry.label(m), "present": m in present} for m in ids]


def build_context(run: RunTables) -> dict[str, Any]:
    """Everything the report templates show, computed from one run folder's tables and summary.json.

    Needs ``run.findings`` (findings.csv). Keys: ``title``, ``header``, ``summary`` (executive summary),
    ``probe_sets`` (one dict per probe set), ``methods``, ``appendix``, ``toc``, ``chart_ids`` and
    ``n_charts`` (every chart the page shows, each rendered as one inline ``<svg>``).
    """
    if run.findings is None:
        raise AuditError(f"{run.folder}: findings.csv missing; the report needs the findings table")
    findings = typed_findings(run.findings, run.folder / contract.FINDINGS_FILE)
    summary = run.summary or {}
    alpha = fmt.alpha_of(summary)
    benchmarks = benchmark_section(findings, summary, alpha=alpha)  # standard benchmarks: own section
    findings = findings.drop(benchmark_rows(findings).index)
    top_k = int(summary["top_k"]) if fmt.finite(summary.get("top_k")) else TOP_FILLS
    names = list(dict.fromkeys(list(run.items["probe_set"]) + list(findings["probe_set"])))
    eliciting = (typed_findings(run.eliciting, run.folder / contract.ELICITING_FINDINGS_FILE)
                 if run.eliciting is not None else None)
    methods = list(findings["method"]) + (list(eliciting["method"]) if eliciting is not None else [])
    method_index = {m: i + 1 for i, m in enumerate(dict.fromkeys(m for m in methods if m))}
    summaries = summarise_bias(findings, top_n=TOP_TARGETS_PER_GROUP)
    cells = template_cells(run.items, run.targets)["logprob"] if len(run.targets) else None
    points = _alignment_points(run, findings)
    sets = [_probe_set_context(name, i, run, findings, alpha=alpha, method_index=method_index, top_k=top_k,
                               bias=summaries.get(name), cells=cells, points=points.get(name), eliciting=eliciting)
            for i, name in enumerate(names)]
    summary_chart = bias_score_forest(sets, alpha=alpha)
    tested = findings[fmt.finite_mask(findings["q_value"])]
    charts_shown = [c for c in [summary_chart] + [s[k] for s in sets for k in ("forest", "heatmap")] if c]
    charts_shown += [s["alignment"]["chart"] for s in sets if s["alignment"] and s["alignment"]["chart"]]
    charts_shown += [b["chart"] for b in benchmarks if b["chart"]]
    header = run_header(summary, names)
    return {
        "title": f"Bias audit: {header['model_id']}",
        "header": header,
        "summary": {
            "alpha": fmt.alpha_text(alpha),
            "n_tests": int(len(tested)),
            "n_significant": int(tested["significant"].sum()),
            "n_verdicts": int((findings["verdict"] != "").sum()),
            "n_material": int((findings["verdict"] == "material").sum()),
            "n_negligible": int((findings["verdict"] == "negligible").sum()),
            "n_below_margin": int((findings["verdict"] == "below_margin").sum()),
            "n_inconclusive": int((findings["verdict"] == "inconclusive").sum()),
            "n_probe_sets": len(sets),
            "chart": summary_chart,
        },
        "probe_sets": sets,
        "benchmarks": benchmarks,
        "benchmark_headers": BENCHMARK_HEADERS,
        "methods": {
            "alpha": fmt.alpha_text(alpha),
            "ci_level": fmt.ci_level(alpha),
            "n_resamples": fmt.text(summary.get("n_resamples")),
            "seed": fmt.text(summary.get("seed")),
            "multi_piece_method": fmt.text(summary.get("multi_piece_method")),
            "metrics": _metric_list(list(dict.fromkeys(findings["metric"]))),
            "method_strings": [{"index": i, "text": m} for m, i in method_index.items()],
            "top_fills": TOP_FILLS,
            "forest_max_rows": FOREST_MAX_ROWS,
            "verdicts": verdict_guide(findings, alpha),
        },
        "appendix": run_appendix(summary),
        "toc": _toc(sets) if not benchmarks else _toc(sets)[:2] + [benchmark_toc(benchmarks)] + _toc(sets)[2:],
        "files": {"findings": contract.FINDINGS_FILE, "summary": contract.SUMMARY_FILE},
        "chart_ids": [c["id"] for c in charts_shown],
        "n_charts": len(charts_shown),
    }


def _alignment_points(run: RunTables, findings: pd.DataFrame) -> dict[str, Any]:
    """Probe set -> the words its reference_alignment row fits (only sets with such a row)."""
    wanted = set(findings.loc[findings["metric"] == "reference_alignment", "probe_set"])
    if not wanted or len(run.targets) == 0:
        return {}
    items = run.items[run.items["probe_set"].isin(wanted)]
    targets = run.targets[run.targets["item_id"].isin(items["item_id"])]
    return {data.name: alignment_points(data) for data in probe_set_scores(items, targets)}


def _toc(sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"anchor": "summary", "label": "Executive summary", "children": []},
        {"anchor": "probe-sets", "label": "Probe sets",
         "children": [{"anchor": s["anchor"], "label": s["name"]} for s in sets]},
        {"anchor": "methods", "label": "Methods",
         "children": [{"anchor": "verdicts", "label": "How to read verdicts"}]},
        {"anchor": "appendix", "label": "Appendix: run metadata", "children": []},
    ]
