"""`albert-audit run`: score probe sets with one model and write the run folder.

Order: tables, findings, then summary.json once (everything it records is known by then), then the report,
drawn last from the written files, so `albert-audit report RUN_DIR` redraws exactly the same page. All of them
are written into a staging folder and moved into the run folder together (albert_audit.results.Staging). The model
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

from albert_audit import contract, inputs, outdir, results
from albert_audit.api import configured_stats
from albert_audit.api.benchmarks import load_benchmarks, score_benchmarks
from albert_audit.api.options import AuditConfig, RunResult, StatsOptions
from albert_audit.api.summary_files import RunExtras, run_summary, utc_now
from albert_audit.errors import AuditError, shown
from albert_audit.library import resolve_probe_arg
from albert_audit.probeset import ProbeSet, load_probe_sets
from albert_audit.probeset.as_seen import items_as_seen
from albert_audit.probeset.checks import size_warnings
from albert_audit.probeset.expand import annotate_targets, expand_items
from albert_audit.runlock import RunLock

MAX_SAMPLE_BYTES = 16 * 2**20
"""Largest text sample (--utility-sample) read."""


def load_probes(probe_args: list[str]) -> list[ProbeSet]:
    """Resolve --probes arguments (paths or shipped names) and load them, validated."""
    if not probe_args:
        raise AuditError("no probe sets given; pass --probes FILE_OR_NAME (see `albert-audit probes list`)")
    return load_probe_sets([resolve_probe_arg(arg) for arg in probe_args])


def check_out_folder(out: Path, *, model_refs: tuple[str, ...] = (), probe_sets: list[ProbeSet] | None = None) -> Path:
    """Check --out (albert_audit.outdir: not a file, not a pseudo file system, not inside the package, a model's
    folder or a probe library, writable) and create it; the resolved folder, or AuditError with one line."""
    forbidden = []
    probe_files = [ps.path for ps in probe_sets or []]
    for index, ref in enumerate(model_refs or (None,)):
        forbidden += outdir.forbidden_places(model_dir=ref, probe_files=probe_files if index == 0 else ())
    return outdir.prepare_out_folder(out, forbidden=forbidden)


def read_sentences(path: str | Path) -> list[str]:
    """One sentence per line; blank lines and ``#`` comments skipped (the format of the neutral samples)."""
    try:
        lines = inputs.read_text_limited(path, what="a text sample", max_bytes=MAX_SAMPLE_BYTES).splitlines()
    except AuditError as exc:
        raise AuditError(f"{exc} (the text sample)") from None
    sentences = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not sentences:
        raise AuditError(f"{shown(path)}: the text sample has no sentences")
    return sentences


@dataclass
class _Scored:
    """A run's score tables and the scoring loop's statistics."""

    items: pd.DataFrame
    targets: pd.DataFrame
    fills: pd.DataFrame
    stats: dict[str, Any]
    checkpoint: Any
    warnings: list[str]


def _score(loaded: Any, probe_sets: list[ProbeSet], config: AuditConfig, out: Path) -> _Scored:
    """Expand the items for this model's mask token and score them, checkpointing into out/.partial."""
    from albert_audit.engine.scoring import score_items, term_piece_counter
    from albert_audit.engine.tokens import TokenView

    items = expand_items(probe_sets, mask_token=loaded.info.mask_token,
                         count_term_pieces=term_piece_counter(loaded.tokenizer))
    items, warnings = items_as_seen(items, probe_sets, TokenView(loaded.tokenizer, loaded.info.mask_token))
    targets = {ps.name: list(ps.targets) for ps in probe_sets}
    scores = score_items(loaded, items, targets, top_k=config.top_k, batch_size=config.batch_size,
                         progress=config.progress, checkpoint_dir=out / contract.CHECKPOINT_FOLDER)
    return _Scored(items=items, targets=annotate_targets(scores.targets, items, probe_sets), fills=scores.fills,
                   stats=scores.stats, checkpoint=scores.checkpoint, warnings=warnings)


def _no_items(loaded: Any, config: AuditConfig) -> _Scored:
    """The empty score tables of a run with benchmarks only (no probe sets)."""
    from albert_audit.engine.forward import resolve_batch_size

    stats = {"unique_sequences": 0, "resumed_sequences": 0, "batch_sizes_used": [],
             "batch_size_start": resolve_batch_size(config.batch_size, loaded.info.device)}
    return _Scored(items=contract.empty_table(contract.ITEMS), targets=contract.empty_table(contract.TARGETS),
                   fills=contract.empty_table(contract.FILLS), stats=stats, checkpoint=None, warnings=[])


def run_audit(config: AuditConfig, *, loaded: Any | None = None, extras: RunExtras | None = None,
              findings: bool = True) -> RunResult:
    """Load probes and model, score every item, write the run folder (tables, findings, summary, report).

    The folder is locked for the whole run (a second command on it stops with one line). Outputs are written
    into a staging folder and replace the previous results only once every one is written, so a failed rerun
    leaves them untouched; scored batches (the checkpoint) are kept until then, so a crash in the statistics or
    the report resumes without scoring again.

    ``loaded``: an already loaded model (an ``albert_audit.engine.loading.LoadedModel``, e.g. one with a
    grafted head or quantized, as ``albert-audit compare`` makes) to use instead of loading ``config.model``.
    ``extras``: what compare records in the run's summary.json (utility, comparison, notes).
    ``findings=False``: score and write the tables and summary.json only (no findings, no report); the findings
    are computed later from the saved scores by ``analyze_run`` (byte-identical), e.g. on a CPU while the model's
    GPU scores the next model (`albert-audit lineage`).
    """
    started, created = time.perf_counter(), utc_now()
    benchmarks = load_benchmarks(config.benchmarks)  # every benchmark file is checked before the model loads
    probe_sets = load_probes(config.probes) if config.probes or not benchmarks else []
    out = Path(config.out)
    check_out_folder(out, model_refs=(config.model,), probe_sets=probe_sets)
    warnings = [w for ps in probe_sets for w in ps.warnings] + size_warnings(probe_sets)
    with RunLock(out, command="run"):
        results.sweep_stale(out)
        staging = results.Staging(out)
        try:
            summary, table, checkpoint = _run_into(staging, config, probe_sets, benchmarks, loaded=loaded,
                                                   extras=extras, started=started, created=created,
                                                   warnings=warnings, findings=findings)
            staging.commit()
        except BaseException:
            staging.discard()
            raise
        if checkpoint is not None:
            checkpoint.clear()  # every output is in place: the scored batches are no longer needed
    return RunResult(out=out, summary=summary, findings=table, warnings=warnings)


def _run_into(staging: results.Staging, config: AuditConfig, probe_sets: list[ProbeSet], benchmarks: list[Any],
              *, loaded: Any | None,
              extras: RunExtras | None, started: float, created: str,
              warnings: list[str], findings: bool = True) -> tuple[dict[str, Any], pd.DataFrame | None, Any]:
    """Load and score (checkpointing into OUT/.partial), then write every output into the staging folder."""
    from albert_audit.engine.loading import load_model
    from albert_audit.engine.scoring import MULTI_PIECE_METHOD

    if loaded is None:
        loaded = load_model(config.model, revision=config.revision, **config.loading())
    loaded_at = time.perf_counter()
    scored = _score(loaded, probe_sets, config, staging.out) if probe_sets else _no_items(loaded, config)
    warnings.extend(w for w in scored.warnings if w not in warnings)
    folder = staging.open()
    bench_findings, bench_records, bench_s = score_benchmarks(
        loaded, benchmarks, folder, batch_size=config.batch_size, seed=config.seed, alpha=config.alpha,
        n_resamples=config.n_resamples)
    scored_at = time.perf_counter()
    results.write_parquet(folder / contract.ITEMS_FILE, scored.items)
    results.write_parquet(folder / contract.FILLS_FILE, scored.fills)
    results.write_parquet(folder / contract.TARGETS_FILE, scored.targets)
    table = None
    if findings:
        table = write_findings(folder, items=scored.items, targets=scored.targets, fills=scored.fills,
                               stats=config.stats_options(), benchmark_rows=bench_findings)
    done = time.perf_counter()
    timings = {"load": loaded_at - started, "score": scored_at - loaded_at, "stats": done - scored_at,
               "total": done - started, **({"benchmarks": bench_s} if benchmarks else {})}
    summary = run_summary(created=created, info=loaded.info.to_dict(), config=config, probe_sets=probe_sets,
                          items=scored.items, targets=scored.targets, fills=scored.fills, stats=scored.stats,
                          multi_piece_method=MULTI_PIECE_METHOD, timings=timings, extras=extras)
    summary = dataclasses.replace(summary, benchmarks=bench_records or None).to_dict()
    results.write_json(folder / contract.SUMMARY_FILE, summary)
    if config.write_report and table is not None:
        render_run_report(folder)
    return summary, table, scored.checkpoint


def write_findings(out: Path, *, items: pd.DataFrame, targets: pd.DataFrame, fills: pd.DataFrame,
                   stats: StatsOptions, benchmark_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compute the findings table from the score tables and write findings.csv (the standard benchmarks'
    rows, ``benchmark_rows``, after the probe sets' rows)."""
    findings = configured_stats.compute_findings(items, targets, fills, stats)
    if benchmark_rows is not None and len(benchmark_rows):
        findings = pd.concat([findings, benchmark_rows], ignore_index=True) if len(findings) else benchmark_rows
    results.write_csv(out / contract.FINDINGS_FILE, findings)
    write_eliciting_findings(out, items=items, targets=targets, fills=fills, stats=stats)
    return findings


def write_eliciting_findings(out: Path, *, items: pd.DataFrame, targets: pd.DataFrame, fills: pd.DataFrame,
                             stats: StatsOptions) -> pd.DataFrame | None:
    """The same statistics over the stereotype-eliciting templates alone, written to
    findings_stereotype_eliciting.csv (their own FDR families); None and no file when no item has that tag."""
    from albert_audit.units import ELICITING_TAGS

    if "template_tag" not in items.columns or not items["template_tag"].isin(ELICITING_TAGS).any():
        return None
    eliciting = configured_stats.compute_findings(items, targets, fills, stats, tags=ELICITING_TAGS)
    results.write_csv(out / contract.ELICITING_FINDINGS_FILE, eliciting)
    return eliciting


def render_run_report(out: str | Path) -> Path:
    """Draw report.html of a run folder from its saved files (no model needed)."""
    from albert_audit.report.render import render_report

    return render_report(Path(out))
