"""`albert-audit analyze RUN_DIR`: recompute the findings (and the report) of a run folder from its saved score
tables, with other statistics options if asked; no model is loaded and torch is never imported.

The score tables are only read, never rewritten. findings.csv, summary.json (its statistics options and
timings updated) and report.html are written into a staging folder and replace the previous ones together.
With the run's own options the findings are byte-identical to the run's.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

from albert_audit import contract, results
from albert_audit.api.options import RunResult, StatsOptions
from albert_audit.api.run import render_run_report, write_findings
from albert_audit.runlock import RunLock

#: Statistics options analyze can change (None: keep the run's own).
ANALYZE_OPTIONS = ("seed", "alpha", "n_resamples", "unit", "margin")


def analyze_run(folder: str | Path, *, write_report: bool = True, **changes: object) -> RunResult:
    """Recompute a run folder's findings from its score tables; ``changes``: statistics options to change
    (``seed``, ``alpha``, ``n_resamples``, ``unit``, ``margin``; None keeps the run's own)."""
    from albert_audit.api.compare import run_stats_options

    unknown = sorted(set(changes) - set(ANALYZE_OPTIONS))
    if unknown:
        raise TypeError(f"analyze_run: unknown option(s) {', '.join(unknown)}")
    folder = Path(folder)
    results.read_run(folder)  # one clear line for a missing or broken run folder, before anything is locked
    with RunLock(folder, command="analyze"):
        results.sweep_stale(folder)
        started = time.perf_counter()
        run = results.read_run(folder)
        stats = run_stats_options(run.summary, StatsOptions())
        stats = dataclasses.replace(stats, **{k: v for k, v in changes.items() if v is not None})
        staging = results.Staging(folder, (contract.FINDINGS_FILE, contract.ELICITING_FINDINGS_FILE,
                                           contract.SUMMARY_FILE, contract.REPORT_FILE))
        try:
            target = staging.open()
            findings = write_findings(target, items=run.items, targets=run.targets, fills=run.fills, stats=stats)
            summary = dict(run.summary)
            summary.update(seed=stats.seed, alpha=stats.alpha, n_resamples=stats.n_resamples, unit=stats.unit,
                           margin=stats.margin)
            timings = dict(summary.get("timings_s") or {})
            timings["stats"] = time.perf_counter() - started
            summary["timings_s"] = timings
            if write_report:  # the report reads the score tables beside the findings: linked, never rewritten
                for name in (contract.ITEMS_FILE, contract.FILLS_FILE, contract.TARGETS_FILE):
                    _link_or_copy(folder / name, target / name)
            results.write_json(target / contract.SUMMARY_FILE, summary)
            if write_report:
                render_run_report(target)
            for name in (contract.ITEMS_FILE, contract.FILLS_FILE, contract.TARGETS_FILE):
                (target / name).unlink(missing_ok=True)
            staging.commit()
        except BaseException:
            staging.discard()
            raise
    return RunResult(out=folder, summary=summary, findings=findings)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        target.hardlink_to(source)
    except OSError:
        shutil.copy2(source, target)
