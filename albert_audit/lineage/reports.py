"""Reports of a lineage, drawn after the audits: each run's report.html and the lineage's lineage.html."""

from __future__ import annotations

from pathlib import Path

from albert_audit.errors import AuditError


def draw_run_report(run_dir: str | Path) -> str:
    """Draw a run folder's report.html under its lock; "" on success, else the one-line reason."""
    from albert_audit import results
    from albert_audit.api.run import render_run_report
    from albert_audit.runlock import RunLock

    try:
        with RunLock(Path(run_dir), command="report"):
            results.sweep_stale(Path(run_dir))
            render_run_report(run_dir)
    except AuditError as exc:
        return str(exc).splitlines()[0]
    return ""


def draw_lineage_report(folder: str | Path) -> Path:
    """Draw lineage.html of a lineage folder from its files (lineage_summary.json, the status table, the runs'
    findings and the compare folders' deltas)."""
    from albert_audit.report.lineage_render import render_lineage

    return render_lineage(Path(folder))
