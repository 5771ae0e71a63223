"""The Python API that the CLI calls: run an audit into a run folder, re-render a report.

The model side (albert_audit.engine) is imported inside the functions that need it, so that importing this
module, and the CLI commands that don't score, stay free of torch.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit import __version__, results
from albert_audit.errors import AuditError
from albert_audit.expand import expand_items
from albert_audit.library import resolve_probe_arg
from albert_audit.spec import ProbeSet, load_probe_sets

CHECKPOINT_FOLDER = ".partial"
RUNTIME_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "scipy", "pandas",
                    "pyarrow", "matplotlib", "jinja2", "pyyaml")


@dataclass
class AuditConfig:
    """Everything `albert-audit run` needs; defaults are the CLI's defaults."""

    model: str
    probes: list[str]
    out: Path
    revision: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | str = "auto"
    top_k: int = 10
    seed: int = 0
    alpha: float = 0.05
    n_resamples: int = 10_000
    offline: bool = False
    trust_remote_code: bool = False
    allow_pickle: bool = False
    progress: bool = True
    write_report: bool = True


@dataclass
class RunResult:
    """Where a run was written and what it found."""

    out: Path
    summary: dict[str, Any]
    findings: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)


def runtime_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the numbers."""
    versions = {"python": platform.python_version()}
    for name in RUNTIME_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def load_probes(probe_args: list[str]) -> list[ProbeSet]:
    """Resolve --probes arguments (paths or shipped names) and load them, validated."""
    if not probe_args:
        raise AuditError("no probe sets given; pass --probes FILE_OR_NAME (see `albert-audit probes list`)")
    paths = [resolve_probe_arg(arg) for arg in probe_args]
    return load_probe_sets(paths)


def _check_out_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise AuditError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)


def run_audit(config: AuditConfig) -> RunResult:
    """Load probes and model, score every item, write the run folder (tables, findings, summary, report)."""
    from albert_audit.engine.loading import load_model
    from albert_audit.engine.scoring import MULTI_PIECE_METHOD, score_items, term_piece_counter

    started = time.perf_counter()
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    probe_sets = load_probes(config.probes)
    out = Path(config.out)
    _check_out_folder(out)
    loaded = load_model(config.model, revision=config.revision, device=config.device, dtype=config.dtype,
                        offline=config.offline, trust_remote_code=config.trust_remote_code,
                        allow_pickle=config.allow_pickle)
    loaded_at = time.perf_counter()
    items = expand_items(probe_sets, mask_token=loaded.info.mask_token,
                         count_term_pieces=term_piece_counter(loaded.tokenizer))
    targets = {ps.name: list(ps.targets) for ps in probe_sets}
    scores = score_items(loaded, items, targets, top_k=config.top_k, batch_size=config.batch_size,
                         progress=config.progress, checkpoint_dir=out / CHECKPOINT_FOLDER)
    scored_at = time.perf_counter()
    results.write_parquet(out / results.ITEMS_FILE, items)
    results.write_parquet(out / results.FILLS_FILE, scores.fills)
    results.write_parquet(out / results.TARGETS_FILE, scores.targets)
    if scores.checkpoint is not None:
        scores.checkpoint.clear()
    summary: dict[str, Any] = {
        "schema_version": results.SUMMARY_SCHEMA_VERSION,
        "tool_version": __version__,
        "created_utc": created,
        "model": loaded.info.to_dict(),
        "runtime": runtime_versions(),
        "device": loaded.info.device,
        "dtype": loaded.info.dtype,
        "batch_size": {"requested": config.batch_size, "start": scores.stats["batch_size_start"],
                       "effective": scores.stats["batch_sizes_used"]},
        "seed": config.seed,
        "alpha": config.alpha,
        "n_resamples": config.n_resamples,
        "top_k": config.top_k,
        "multi_piece_method": MULTI_PIECE_METHOD,
        "counts": {"items": len(items), "unique_sequences": scores.stats["unique_sequences"],
                   "resumed_sequences": scores.stats["resumed_sequences"],
                   "targets": len(scores.targets), "fills": len(scores.fills),
                   "multi_piece_targets": int((scores.targets["n_pieces"] > 1).sum())
                   if len(scores.targets) else 0},
        "probe_files": [{"name": ps.name, "path": ps.path, "sha256": ps.sha256} for ps in probe_sets],
        "timings_s": {"load": loaded_at - started, "score": scored_at - loaded_at},
    }
    results.write_json(out / results.SUMMARY_FILE, summary)
    findings = write_findings(out, items=items, targets=scores.targets, fills=scores.fills, summary=summary,
                              seed=config.seed, alpha=config.alpha, n_resamples=config.n_resamples)
    if config.write_report:
        render_run_report(out, summary=summary)
    summary["timings_s"]["total"] = time.perf_counter() - started
    results.write_json(out / results.SUMMARY_FILE, summary)
    warnings = [w for ps in probe_sets for w in ps.warnings]
    return RunResult(out=out, summary=summary, findings=findings, warnings=warnings)


def write_findings(out: Path, *, items: pd.DataFrame, targets: pd.DataFrame, fills: pd.DataFrame,
                   summary: dict[str, Any], seed: int, alpha: float, n_resamples: int) -> pd.DataFrame:
    """Compute the findings table from the score tables and write findings.csv; time it in summary."""
    from albert_audit.metrics import compute_findings

    started = time.perf_counter()
    findings = compute_findings(items, targets, fills, seed=seed, alpha=alpha, n_resamples=n_resamples)
    results.write_csv(out / results.FINDINGS_FILE, findings)
    summary["timings_s"]["stats"] = time.perf_counter() - started
    return findings


def render_run_report(out: Path, *, summary: dict[str, Any] | None = None) -> Path:
    """Render report.html for a run folder from its saved files (no model needed)."""
    from albert_audit.report.render import render_report

    started = time.perf_counter()
    path = render_report(Path(out))
    if summary is not None:
        summary["timings_s"]["report"] = time.perf_counter() - started
    return path


def rerender_report(run_dir: str | Path) -> Path:
    """`albert-audit report RUN_DIR`: recompute nothing, re-render report.html from the saved files."""
    tables = results.read_run(run_dir, need_findings=True)
    return render_run_report(tables.folder)
