"""`albert-audit run`: score probe sets with one model and write the run folder.

Order: tables, findings, then summary.json once (everything it records is known by then), then the report,
drawn last from the written files, so `albert-audit report RUN_DIR` redraws exactly the same page. The model
side (albert_audit.engine) is imported inside the functions that need it, so that importing the API stays
free of torch.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit import contract, results
from albert_audit.api.benchmarks import clear_tables, load_benchmarks, score_benchmarks
from albert_audit.api.options import AuditConfig, RunResult, StatsOptions
from albert_audit.api.summary import RunExtras, run_summary, utc_now
from albert_audit.errors import AuditError
from albert_audit.expand import expand_items
from albert_audit.library import resolve_probe_arg
from albert_audit.spec import ProbeSet, load_probe_sets


def load_probes(probe_args: list[str]) -> list[ProbeSet]:
    """Resolve --probes arguments (paths or shipped names) and load them, validated."""
    if not probe_args:
        raise AuditError("no probe sets given; pass --probes FILE_OR_NAME (see `albert-audit probes list`)")
    return load_probe_sets([resolve_probe_arg(arg) for arg in probe_args])


def check_out_folder(out: Path) -> None:
    """Make the output folder; an existing file of that name is an AuditError."""
    if out.exists() and not out.is_dir():
        raise AuditError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)


def read_sentences(path: str | Path) -> list[str]:
    """One sentence per line; blank lines and ``#`` comments skipped (the format of the neutral samples)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise AuditError(f"{path}: cannot read the text sample ({exc.strerror})") from exc
    sentences = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not sentences:
        raise AuditError(f"{path}: the text sample has no sentences")
    return sentences


@dataclass
class _Scored:
    """A run's score tables and the scoring loop's statistics."""

    items: pd.DataFrame
    targets: pd.DataFrame
    fills: pd.DataFrame
    stats: dict[str, Any]
    checkpoint: Any


def _score(loaded: Any, probe_sets: list[ProbeSet], config: AuditConfig, out: Path) -> _Scored:
    """Expand the items for this model's mask token and score them, checkpointing into out/.partial."""
    from albert_audit.engine.scoring import score_items, term_piece_counter

    items = expand_items(probe_sets, mask_token=loaded.info.mask_token,
                         count_term_pieces=term_piece_counter(loaded.tokenizer))
    targets = {ps.name: list(ps.targets) for ps in probe_sets}
    scores = score_items(loaded, items, targets, top_k=config.top_k, batch_size=config.batch_size,
                         progress=config.progress, checkpoint_dir=out / contract.CHECKPOINT_FOLDER)
    return _Scored(items=items, targets=scores.targets, fills=scores.fills, stats=scores.stats,
                   checkpoint=scores.checkpoint)


def _no_items(loaded: Any, config: AuditConfig) -> _Scored:
    """The empty score tables of a run with benchmarks only (no probe sets)."""
    from albert_audit.engine.forward import resolve_batch_size

    stats = {"unique_sequences": 0, "resumed_sequences": 0, "batch_sizes_used": [],
             "batch_size_start": resolve_batch_size(config.batch_size, loaded.info.device)}
    return _Scored(items=contract.empty_table(contract.ITEMS), targets=contract.empty_table(contract.TARGETS),
                   fills=contract.empty_table(contract.FILLS), stats=stats, checkpoint=None)


def run_audit(config: AuditConfig, *, loaded: Any | None = None, extras: RunExtras | None = None) -> RunResult:
    """Load probes and model, score every item, write the run folder (tables, findings, summary, report).

    ``loaded``: an already loaded model (an ``albert_audit.engine.loading.LoadedModel``, e.g. one with a
    grafted head or quantized, as ``albert-audit compare`` makes) to use instead of loading ``config.model``.
    ``extras``: what compare records in the run's summary.json (utility, comparison, notes).
    """
    from albert_audit.engine.loading import load_model
    from albert_audit.engine.scoring import MULTI_PIECE_METHOD

    started, created = time.perf_counter(), utc_now()
    benchmarks = load_benchmarks(config.benchmarks)  # every benchmark file is checked before the model loads
    probe_sets = load_probes(config.probes) if config.probes or not benchmarks else []
    out = Path(config.out)
    check_out_folder(out)
    results.remove_outputs(out, contract.RUN_FILES)  # a rerun into the same folder never mixes old and new files
    clear_tables(out)
    if loaded is None:
        loaded = load_model(config.model, revision=config.revision, **config.loading())
    loaded_at = time.perf_counter()
    scored = _score(loaded, probe_sets, config, out) if probe_sets else _no_items(loaded, config)
    bench_findings, bench_records, bench_s = score_benchmarks(
        loaded, benchmarks, out, batch_size=config.batch_size, seed=config.seed, alpha=config.alpha,
        n_resamples=config.n_resamples)
    scored_at = time.perf_counter()
    results.write_parquet(out / contract.ITEMS_FILE, scored.items)
    results.write_parquet(out / contract.FILLS_FILE, scored.fills)
    results.write_parquet(out / contract.TARGETS_FILE, scored.targets)
    findings = write_findings(out, items=scored.items, targets=scored.targets, fills=scored.fills,
                              stats=config.stats_options(), benchmark_rows=bench_findings)
    done = time.perf_counter()
    timings = {"load": loaded_at - started, "score": scored_at - loaded_at, "stats": done - scored_at,
               "total": done - started, **({"benchmarks": bench_s} if benchmarks else {})}
    summary = run_summary(created=created, info=loaded.info.to_dict(), config=config, probe_sets=probe_sets,
                          items=scored.items, targets=scored.targets, fills=scored.fills, stats=scored.stats,
                          multi_piece_method=MULTI_PIECE_METHOD, timings=timings, extras=extras)
    summary = dataclasses.replace(summary, benchmarks=bench_records or None).to_dict()
    results.write_json(out / contract.SUMMARY_FILE, summary)
    if scored.checkpoint is not None:
        scored.checkpoint.clear()  # every output is written: the scored batches are no longer needed
    if config.write_report:
        render_run_report(out)
    return RunResult(out=out, summary=summary, findings=findings,
                     warnings=[w for ps in probe_sets for w in ps.warnings])


def write_findings(out: Path, *, items: pd.DataFrame, targets: pd.DataFrame, fills: pd.DataFrame,
                   stats: StatsOptions, benchmark_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compute the findings table from the score tables and write findings.csv (the standard benchmarks'
    rows, ``benchmark_rows``, after the probe sets' rows)."""
    from albert_audit.metrics import compute_findings

    findings = compute_findings(items, targets, fills, seed=stats.seed, alpha=stats.alpha,
                                n_resamples=stats.n_resamples, unit=stats.unit)
    if benchmark_rows is not None and len(benchmark_rows):
        findings = pd.concat([findings, benchmark_rows], ignore_index=True) if len(findings) else benchmark_rows
    results.write_csv(out / contract.FINDINGS_FILE, findings)
    return findings


def render_run_report(out: str | Path) -> Path:
    """Draw report.html of a run folder from its saved files (no model needed)."""
    from albert_audit.report.render import render_report

    return render_report(Path(out))
