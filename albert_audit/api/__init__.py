"""The Python API that the CLI calls (and a library user calls): run, compare, demo, redraw a report.

Modules: ``analyze`` (`albert-audit analyze RUN_DIR`: findings again from saved scores), ``configured_stats``
(the statistics called with the options given), ``options`` (ModelOptions, StatsOptions and the configs composed
of them; result types), ``run`` (one model's run folder), ``compare`` (base vs descendants, or saved runs),
``demo``, ``redraw`` (`albert-audit report DIR`) and ``summary_files`` (builds summary.json /
compare_summary.json from the contract's dataclasses). The probe-set checks ``size_warnings`` and
``scope_warnings`` are re-exported from :mod:`albert_audit.probeset.checks`.
Importing it stays free of torch: the engine is imported inside the functions that score.
"""

from __future__ import annotations

from albert_audit.api.analyze import ANALYZE_OPTIONS, analyze_run
from albert_audit.api.compare import QUANTIZE_CHOICES, compare_models, compare_runs, compare_saved_runs
from albert_audit.api.demo import DEMO_MODELS_DIR, demo_paths, run_demo
from albert_audit.api.options import (
    AuditConfig,
    CompareConfig,
    CompareResult,
    ModelOptions,
    RunResult,
    StatsOptions,
)
from albert_audit.api.redraw import folder_kind, render_compare_report, rerender_report
from albert_audit.api.run import (
    check_out_folder,
    load_probes,
    read_sentences,
    render_run_report,
    run_audit,
    write_findings,
)
from albert_audit.api.summary_files import RunExtras, runtime_versions
from albert_audit.contract import (
    CHECKPOINT_FOLDER,
    COMPARE_REPORT_FILE,
    COMPARE_SCHEMA_VERSION,
    COMPARE_SUMMARY_FILE,
    DELTAS_FILE,
)
from albert_audit.probeset.checks import MAX_FINDINGS_ROWS, estimated_rows, scope_warnings, size_warnings

__all__ = [
    "ANALYZE_OPTIONS", "MAX_FINDINGS_ROWS", "analyze_run", "check_out_folder", "estimated_rows", "size_warnings",
    "CHECKPOINT_FOLDER", "COMPARE_REPORT_FILE", "COMPARE_SCHEMA_VERSION", "COMPARE_SUMMARY_FILE", "DELTAS_FILE",
    "DEMO_MODELS_DIR", "QUANTIZE_CHOICES", "AuditConfig", "CompareConfig", "CompareResult", "ModelOptions",
    "RunExtras", "RunResult", "StatsOptions", "compare_models", "compare_runs", "compare_saved_runs", "demo_paths",
    "folder_kind", "load_probes", "read_sentences", "render_compare_report", "render_run_report", "rerender_report",
    "run_audit", "run_demo", "runtime_versions", "scope_warnings", "write_findings",
]
