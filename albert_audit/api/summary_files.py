"""summary.json and compare_summary.json, built once from what a run or comparison computed.

The dataclasses (and the meaning of every field) live in :mod:`albert_audit.contract`; this module fills them.
"""

from __future__ import annotations

import datetime as dt
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit import __version__, contract
from albert_audit.probeset import ProbeSet

RUNTIME_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "scipy", "pandas",
                    "pyarrow", "matplotlib", "jinja2", "pyyaml")


def utc_now() -> str:
    """The current time as summary files record it (ISO 8601, UTC, seconds)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def runtime_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the numbers."""
    versions = {"python": platform.python_version()}
    for name in RUNTIME_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass(frozen=True)
class RunExtras:
    """What `compare` adds to a run's summary.json (computed before the run's summary is written)."""

    utility: dict[str, Any] | None = None
    comparison: dict[str, Any] | None = None
    notes: list[str] | None = None


def run_summary(*, created: str, info: dict[str, Any], config: Any, probe_sets: list[ProbeSet],
                items: pd.DataFrame, targets: pd.DataFrame, fills: pd.DataFrame, stats: dict[str, Any],
                multi_piece_method: str, timings: dict[str, float], extras: RunExtras | None = None,
                ) -> contract.RunSummary:
    """The run's summary; ``config`` is its AuditConfig, ``stats`` the scoring loop's statistics."""
    extras = extras or RunExtras()
    counts = contract.RunCounts(
        items=len(items), unique_sequences=int(stats["unique_sequences"]),
        resumed_sequences=int(stats["resumed_sequences"]), targets=len(targets), fills=len(fills),
        multi_piece_targets=int((targets["n_pieces"] > 1).sum()) if len(targets) else 0)
    return contract.RunSummary(
        schema_version=contract.SUMMARY_SCHEMA_VERSION, tool_version=__version__, created_utc=created,
        model=info, runtime=runtime_versions(), device=info["device"], dtype=info["dtype"],
        batch_size=contract.BatchSizes(requested=config.batch_size, start=stats["batch_size_start"],
                                       effective=list(stats["batch_sizes_used"])),
        seed=config.seed, alpha=config.alpha, n_resamples=config.n_resamples, unit=config.unit,
        margin=getattr(config, "margin", None), top_k=config.top_k,
        multi_piece_method=multi_piece_method, counts=counts,
        probe_files=[contract.ProbeFile(name=ps.name, path=ps.path, sha256=ps.sha256) for ps in probe_sets],
        timings_s=timings, utility=extras.utility, comparison=extras.comparison, notes=extras.notes)


def run_path(folder: Path, out: Path) -> str:
    """How compare_summary.json refers to a run folder: relative to OUT when inside it, else absolute."""
    try:
        return Path(folder).resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return str(Path(folder).resolve())


def compare_model(label: str, role: str, run: str, summary: dict[str, Any],
                  base_pppl: float | None = None) -> contract.CompareModel:
    """One model's entry in compare_summary.json, from its run's summary.json."""
    utility = summary.get("utility")
    pppl = (utility or {}).get("pppl")
    ratio = pppl / base_pppl if role == "candidate" and base_pppl and pppl is not None else None
    return contract.CompareModel(label=label, role=role, run=run, model=summary.get("model") or {},
                                 device=summary.get("device"), dtype=summary.get("dtype"), utility=utility,
                                 notes=list(summary.get("notes") or []), created_utc=summary.get("created_utc"),
                                 pppl_ratio=ratio)


def utility_rows(base: contract.CompareModel, candidates: list[contract.CompareModel]) -> list[contract.UtilityRow]:
    """Each candidate's pseudo-perplexity beside the base's."""
    base_pppl = (base.utility or {}).get("pppl")
    return [contract.UtilityRow(candidate=c.label, base_pppl=base_pppl, candidate_pppl=(c.utility or {}).get("pppl"),
                                ratio=c.pppl_ratio, sample=(c.utility or {}).get("sample"))
            for c in candidates]
