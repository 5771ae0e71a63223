"""`albert-audit report DIR`: redraw the report of a run or compare folder from its files (nothing recomputed).

The folder's kind is told by its files: compare_summary.json makes a compare (or demo) folder, summary.json
a run folder.
"""

from __future__ import annotations

from pathlib import Path

from albert_audit import contract, results
from albert_audit.errors import AuditError, shown
from albert_audit.runlock import RunLock


def folder_kind(folder: str | Path) -> str:
    """``"compare"`` or ``"run"``, by the summary file the folder holds; anything else is an AuditError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AuditError(f"{shown(folder)}: no such run folder")
    if (folder / contract.COMPARE_SUMMARY_FILE).is_file():
        return "compare"
    if (folder / contract.SUMMARY_FILE).is_file():
        return "run"
    raise AuditError(f"{shown(folder)}: neither a run folder ({contract.SUMMARY_FILE}) nor a compare folder "
                     f"({contract.COMPARE_SUMMARY_FILE})")


def render_compare_report(out: str | Path) -> Path:
    """Draw compare.html of a compare folder from its saved files (compare_summary.json, deltas.csv, runs)."""
    from albert_audit.report.compare_render import render_compare

    return render_compare(Path(out))


def rerender_report(folder: str | Path) -> Path:
    """Redraw report.html of a run folder, or compare.html of a compare folder; return the written path."""
    from albert_audit.api.run import render_run_report

    kind = folder_kind(folder)
    with RunLock(folder, command="report"):  # never draw from files another command is rewriting
        results.sweep_stale(Path(folder))
        if kind == "compare":
            results.read_summary(Path(folder) / contract.COMPARE_SUMMARY_FILE,
                                 schema_version=contract.COMPARE_SCHEMA_VERSION)
            return render_compare_report(folder)
        results.read_run(folder, need_findings=True)  # one clear error for a broken run folder
        return render_run_report(folder)
