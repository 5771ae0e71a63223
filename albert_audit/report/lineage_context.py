"""What lineage.html shows, computed from a lineage folder's files (no model, no statistics recomputed).

Reads lineage_summary.json, lineage_status.csv, every run's summary.json and findings.csv and every
comparison's deltas.csv. Numbers are formatted with :mod:`albert_audit.report.fmt`; the charts are dot plots
drawn by :mod:`albert_audit.report.charts` (one per probe set, models in tree order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from albert_audit import contract, results
from albert_audit.errors import AuditError
from albert_audit.report import fmt

CHANGES = ("amplified", "reduced", "reversed", "emerged", "negligible", "inconclusive")
TASK_METRICS = ("outcome_gap", "flip_rate")
"""Findings metrics of task audits (issue 17): shown as the model's task findings when its run has them."""


def _href(path: str) -> str:
    return "/".join(quote(part) for part in Path(path).parts)


def _read_findings(run: Path) -> pd.DataFrame | None:
    path = run / contract.FINDINGS_FILE
    if not path.is_file():
        return None
    return contract.restore_types(results.read_csv_table(path, text_columns=contract.FINDINGS.names_of("str")),
                                  contract.FINDINGS, str(path))


def _deltas(folder: Path) -> pd.DataFrame | None:
    path = folder / contract.DELTAS_FILE
    if not path.is_file():
        return None
    return contract.restore_types(results.read_csv_table(path, text_columns=contract.DELTAS.names_of("str")),
                                  contract.DELTAS, str(path))


def _change_counts(deltas: pd.DataFrame | None, probe_set: str | None = None) -> dict[str, int]:
    if deltas is None:
        return {}
    rows = deltas if probe_set is None else deltas[deltas["probe_set"] == probe_set]
    return {c: int((rows["change"] == c).sum()) for c in CHANGES}


def _changes_cell(counts: dict[str, int]) -> list[dict[str, Any]]:
    return [{"change": c, "n": n} for c, n in counts.items() if n]


def build_lineage_context(folder: Path) -> dict[str, Any]:
    """Every number and chart of lineage.html."""
    from albert_audit.report.charts import forest_plot

    folder = Path(folder)
    summary = results.read_summary(folder / contract.LINEAGE_SUMMARY_FILE,
                                   schema_version=contract.LINEAGE_SCHEMA_VERSION)
    status = contract.restore_types(
        results.read_csv_table(folder / contract.LINEAGE_STATUS_FILE,
                               text_columns=contract.LINEAGE_STATUS.names_of("str")),
        contract.LINEAGE_STATUS, contract.LINEAGE_STATUS_FILE)
    alpha = fmt.alpha_of(summary.get("options") or {})
    models: list[dict[str, Any]] = []
    probe_sets: list[str] = []
    root_pppl = None
    for row in status.itertuples():
        run = folder / row.run if row.run else None
        run_summary: dict[str, Any] = {}
        findings = None
        if run is not None and (run / contract.SUMMARY_FILE).is_file():
            run_summary = results.read_summary(run / contract.SUMMARY_FILE,
                                               schema_version=contract.SUMMARY_SCHEMA_VERSION)
            findings = _read_findings(run)
        scores = {}
        task = []
        if findings is not None:
            for f in findings[findings["metric"] == "bias_score"].itertuples():
                if f.probe_set not in probe_sets:
                    probe_sets.append(f.probe_set)
                scores[f.probe_set] = {"score": fmt.number(f.effect, 3), "ci": fmt.ci(f.ci_low, f.ci_high, 3),
                                       "verdict": f.verdict or "no verdict", "effect": f.effect,
                                       "low": f.ci_low, "high": f.ci_high, "material": f.verdict == "material"}
            task_rows = findings[findings["metric"].isin(TASK_METRICS)]
            for (probe_set, metric), rows in task_rows.groupby(["probe_set", "metric"], sort=False):
                counts = rows["verdict"].replace("", "no verdict").value_counts()
                task.append({"probe_set": probe_set, "metric": metric,
                             "verdicts": ", ".join(f"{n} {v.replace('_', ' ')}" for v, n in counts.items())})
        pppl = ((run_summary.get("utility") or {}).get("pppl"))
        if row.depth == 0:
            root_pppl = pppl
        parent_deltas = _deltas(folder / row.vs_parent) if row.vs_parent else None
        root_deltas = _deltas(folder / row.vs_root) if row.vs_root else None
        report = (Path(row.run) / contract.REPORT_FILE).as_posix() if row.run else ""
        models.append({
            "label": row.label, "model": row.model, "revision": row.revision or "—", "parent": row.parent or "—",
            "depth": int(row.depth), "indent": f"{int(row.depth) * 1.2:.1f}rem", "kind": row.kind or "—",
            "head": row.head or "—", "status": row.status, "reason": row.reason, "attempts": int(row.attempts),
            "anchor": f"model-{fmt.slug(row.label)}",
            "report": _href(report) if report and (folder / report).is_file() else "",
            "vs_parent": _href(f"{row.vs_parent}/{contract.COMPARE_REPORT_FILE}")
            if row.vs_parent and (folder / row.vs_parent / contract.COMPARE_REPORT_FILE).is_file() else "",
            "vs_root": _href(f"{row.vs_root}/{contract.COMPARE_REPORT_FILE}")
            if row.vs_root and row.vs_root != row.vs_parent
            and (folder / row.vs_root / contract.COMPARE_REPORT_FILE).is_file() else "",
            "scores": scores, "task": task, "pppl": fmt.number(pppl, 2) if pppl is not None else "—",
            "pppl_v": pppl, "changes_parent": _changes_cell(_change_counts(parent_deltas)),
            "changes_root": _changes_cell(_change_counts(root_deltas)),
            "per_set_parent": {ps: _changes_cell(_change_counts(parent_deltas, ps)) for ps in probe_sets},
            "per_set_root": {ps: _changes_cell(_change_counts(root_deltas, ps)) for ps in probe_sets}})
    for m in models:
        ratio = (m["pppl_v"] / root_pppl if m["pppl_v"] is not None and root_pppl and m["depth"] > 0 else None)
        m["pppl_ratio"] = fmt.number(ratio, 3) if ratio is not None else "—"
        for ps in probe_sets:  # the per-set change counts of sets first seen after this model
            m["per_set_parent"].setdefault(ps, [])
            m["per_set_root"].setdefault(ps, [])
    charts = []
    for index, probe_set in enumerate(probe_sets):
        rows = [m for m in models if probe_set in m["scores"]]
        labels = [f"{'· ' * m['depth']}{m['label']}" for m in rows]
        chart = forest_plot(
            labels, [m["scores"][probe_set]["effect"] for m in rows], [m["scores"][probe_set]["low"] for m in rows],
            [m["scores"][probe_set]["high"] for m in rows], [m["scores"][probe_set]["material"] for m in rows],
            chart_id=f"lineage-dots-{index}", xlabel="bias score (nats; 0 = no bias)",
            alt=f"Bias score of {probe_set} per model, in lineage order, with {fmt.ci_label(alpha)}",
            ratio_axis=False, show_legend=False)
        charts.append({"probe_set": probe_set, "anchor": f"set-{fmt.slug(probe_set)}-{index}",
                       **chart.as_context(f"{probe_set}: bias score per model in lineage order (indented by "
                                          f"generation) with its {fmt.ci_label(alpha)}; filled markers are "
                                          "material scores (beyond the margin), hollow ones are not.")})
    if not models:
        raise AuditError(f"{folder}: the lineage has no models")
    counts = summary.get("counts") or {}
    return {
        "title": f"Lineage audit: {summary.get('name', '')}",
        "header": {"name": summary.get("name", ""), "source": summary.get("source", ""),
                   "root": summary.get("root", ""), "date": summary.get("created_utc", ""),
                   "tool_version": summary.get("tool_version", ""),
                   "cluster": _cluster_text(summary.get("cluster") or {}),
                   "probe_files": [f"{p.get('name')} ({str(p.get('sha256', ''))[:12]})"
                                   for p in summary.get("probe_files") or []]},
        "counts": {"done": counts.get("done", 0), "resumed": counts.get("resumed", 0),
                   "failed": counts.get("failed", 0)},
        "models": models, "probe_sets": probe_sets, "charts": charts, "n_charts": len(charts),
        "ci_label": fmt.ci_label(alpha), "alpha": fmt.alpha_text(alpha),
        "has_task": any(m["task"] for m in models), "changes": CHANGES,
    }


def _cluster_text(cluster: dict[str, Any]) -> str:
    if not cluster:
        return "—"
    return (f"Ray {cluster.get('address', '?')}: {cluster.get('actors', '?')} actors "
            f"({fmt.text(cluster.get('actor_resources'))}); cluster {fmt.text(cluster.get('cpus'))} CPUs, "
            f"{fmt.text(cluster.get('gpus'))} GPUs")


def build_history_context(table: pd.DataFrame, subject: str) -> dict[str, Any]:
    """The history page of `albert-audit history --out`: one dot plot per probe set, a table."""
    from albert_audit.report.charts import forest_plot

    charts, rows = [], []
    for index, (probe_set, part) in enumerate(table.groupby("probe_set", sort=False)):
        chart = forest_plot([f"{int(p)}: {label}" for p, label in zip(part["position"], part["label"], strict=True)],
                            part["bias_score"].tolist(), part["ci_low"].tolist(), part["ci_high"].tolist(),
                            (part["verdict"] == "material").tolist(), chart_id=f"history-{index}",
                            xlabel="bias score (nats; 0 = no bias)", alt=f"Bias score of {probe_set} across {subject}",
                            ratio_axis=False, show_legend=False)
        charts.append({"probe_set": probe_set, **chart.as_context(
            f"{probe_set}: bias score with its interval, in order; filled markers are material scores.")})
    for row in table.itertuples():
        rows.append({"position": int(row.position), "label": row.label, "probe_set": row.probe_set,
                     "score": fmt.number(row.bias_score, 3), "ci": fmt.ci(row.ci_low, row.ci_high, 3),
                     "verdict": row.verdict or "—", "n_material": int(row.n_material), "changes": row.changes or "—"})
    return {"title": f"History: {subject}", "subject": subject, "charts": charts, "rows": rows,
            "n_charts": len(charts)}
