"""`albert-audit compare`: a base model and its descendants (or saved runs) on the same items.

Each model is audited into its own run folder (its summary.json written once, with its pseudo-perplexity and
notes); then deltas.csv, then compare_summary.json once, then compare.html, drawn last from those files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from albert_audit import __version__, contract, results
from albert_audit.api import configured_stats
from albert_audit.api.benchmarks import ComparedRun, benchmark_deltas, load_benchmarks
from albert_audit.api.options import (
    AuditConfig,
    CompareConfig,
    CompareResult,
    RunResult,
    StatsOptions,
    option_values,
)
from albert_audit.api.redraw import render_compare_report
from albert_audit.api.run import check_out_folder, load_probes, read_sentences, run_audit
from albert_audit.api.summary_files import RunExtras, compare_model, run_path, utc_now, utility_rows
from albert_audit.benchmarks.deltas import METHODS as BENCHMARK_METHODS
from albert_audit.errors import AuditError, shown
from albert_audit.runlock import RunLock
from albert_audit.signature import check_compatible

QUANTIZE_CHOICES = ("int8",)


def compare_runs(config: CompareConfig) -> CompareResult:
    """`albert-audit compare`: models (``base``/``candidates``) or saved runs (``base_run``/``candidate_runs``)."""
    models = config.base is not None or bool(config.candidates)
    runs = config.base_run is not None or bool(config.candidate_runs)
    if models and runs:
        raise AuditError("compare: give models (--base, --candidate) or saved runs (--base-run, --candidate-run), "
                         "not both")
    if runs:
        return compare_saved_runs(config)
    if not models:
        raise AuditError("compare: give --base MODEL --candidate MODEL, or --base-run DIR --candidate-run DIR")
    return compare_models(config)


def _check_models_config(config: CompareConfig) -> dict[str, list[str]]:
    """Refuse a bad compare config, or a base or candidate that can't be audited, before any model loads;
    the notes of each allowed candidate that differs from the base (``allow_different``)."""
    from albert_audit.engine.graft import folder_config, preflight_descendant

    if not config.base:
        raise AuditError("compare: --base MODEL is missing")
    if not config.candidates:
        raise AuditError("compare: give at least one --candidate MODEL")
    if config.quantize is not None and config.quantize not in QUANTIZE_CHOICES:
        raise AuditError(f"--quantize {shown(repr(config.quantize))}: expected one of "
                         f"{', '.join(QUANTIZE_CHOICES)}")
    load_probes(config.probes)  # fail on bad probe files before loading any model
    load_benchmarks(config.benchmarks)  # and on bad benchmark files
    if config.utility_sample is not None:
        read_sentences(config.utility_sample)
    _, base_config, base_has_head = folder_config(config.base, offline=config.offline,
                                                  allow_pickle=config.allow_pickle)
    if not base_has_head:
        raise AuditError(f"the base model {shown(repr(config.base))} has no masked-language-model head; the base "
                         "must be a masked LM (a head-less descendant is probed through the base's head)")
    return {ref: preflight_descendant(ref, base_id=config.base, base_config=base_config, offline=config.offline,
                                      allow_pickle=config.allow_pickle,
                                      allow_different=config.allow_different).notes
            for ref in config.candidates}


def _audit(config: CompareConfig, model_ref: str, folder: str, loaded: Any, *, comparison: dict[str, Any],
           notes: list[str] | None) -> RunResult:
    """Audit one loaded model into OUT/folder; its pseudo-perplexity is measured first, so that the run's
    summary.json is written once, complete."""
    from albert_audit.engine.utility import pseudo_perplexity

    utility = None
    if config.utility:
        sentences = read_sentences(config.utility_sample) if config.utility_sample is not None else None
        utility = pseudo_perplexity(loaded, sentences, batch_size=config.batch_size)
        if config.utility_sample is not None:
            utility["sample"] = Path(config.utility_sample).name
    audit_config = AuditConfig(model=model_ref, probes=config.probes, benchmarks=config.benchmarks,
                               out=Path(config.out) / folder,
                               write_report=config.write_run_reports, **option_values(config))
    return run_audit(audit_config, loaded=loaded,
                     extras=RunExtras(utility=utility, comparison=comparison, notes=notes))


def _load_candidate(config: CompareConfig, ref: str, base_head: Any, base_mask: str) -> tuple[Any, list[str]]:
    """A candidate loaded for scoring (head grafted when it has none, quantized when asked) and its notes."""
    from albert_audit.engine.graft import GRAFT_NOTE, load_descendant, quantize_int8

    loaded = load_descendant(ref, base=base_head, **config.loading())
    if loaded.info.mask_token != base_mask:
        raise AuditError(f"{shown(repr(ref))} has the mask token {shown(repr(loaded.info.mask_token))}, the base "
                         f"{shown(repr(config.base))} has {shown(repr(base_mask))}: their items would differ; compare "
                         "descendants that share the base's tokenizer")
    notes: list[str] = []
    if loaded.info.head != "own":
        notes.append(f"{ref}: {GRAFT_NOTE} ({loaded.info.head}); the descendant's own encoder and word "
                     "embeddings, the base's head weights and output bias")
    if config.quantize == "int8":
        loaded, quant_notes = quantize_int8(loaded)
        notes.extend(quant_notes)
    return loaded, notes


def compare_models(config: CompareConfig) -> CompareResult:
    """Audit the base and every candidate on the same probe sets, then compare (deltas, summary, compare.html).

    A candidate without an MLM head gets the base's head grafted on (labelled in its summary.json and in
    the report). The base must have its own head.
    """
    started = time.perf_counter()
    differences = _check_models_config(config)
    probe_sets = load_probes(config.probes)
    out = Path(config.out)
    check_out_folder(out, model_refs=(str(config.base), *config.candidates), probe_sets=probe_sets)
    with RunLock(out, command="compare"):
        return _compare_models(config, out, started, differences)


def _compare_models(config: CompareConfig, out: Path, started: float,
                    differences: dict[str, list[str]]) -> CompareResult:
    from albert_audit.engine.graft import extract_base_head
    from albert_audit.engine.loading import load_model

    results.sweep_stale(out)
    base_loaded = load_model(config.base, **config.loading())
    base_head, base_mask = extract_base_head(base_loaded), base_loaded.info.mask_token
    audited = [_audit(config, config.base, "base", base_loaded, comparison={"role": "base"}, notes=None)]
    del base_loaded
    notes: list[str] = []
    for index, ref in enumerate(config.candidates, start=1):
        loaded, model_notes = _load_candidate(config, ref, base_head, base_mask)
        model_notes = differences.get(ref, []) + model_notes
        comparison = {"role": "candidate", "base": config.base, "quantize": config.quantize}
        audited.append(_audit(config, ref, f"candidate_{index}", loaded, comparison=comparison, notes=model_notes))
        notes.extend(model_notes)
        del loaded
    warnings = list(dict.fromkeys(w for result in audited for w in result.warnings))
    runs = [("base", audited[0].out)] + [(f"candidate_{i}", r.out) for i, r in enumerate(audited[1:], start=1)]
    return _finish_compare(config, out, runs=runs, mode="models", notes=notes, warnings=warnings, started=started)


def compare_saved_runs(config: CompareConfig) -> CompareResult:
    """Compare saved run folders (no model): their items must match (checked by a hash of their content)."""
    started = time.perf_counter()
    if config.base_run is None:
        raise AuditError("compare: --base-run DIR is missing")
    if not config.candidate_runs:
        raise AuditError("compare: give at least one --candidate-run DIR")
    if config.quantize is not None:
        raise AuditError("--quantize applies to models, not to saved runs (--base-run/--candidate-run)")
    if config.probes:
        raise AuditError("--probes applies to models; saved runs are compared on the items they were run on")
    if config.benchmarks:
        raise AuditError("--benchmark applies to models (--base, --candidate), not to saved runs")
    out = Path(config.out)
    runs = [("base", Path(config.base_run))] + [(f"candidate_{i}", Path(p))
                                                for i, p in enumerate(config.candidate_runs, start=1)]
    # a clear error for a missing or broken run folder, or another architecture, before anything is written
    saved = [results.read_run(folder) for _, folder in runs]
    notes = saved_runs_compatible(saved, [folder for _, folder in runs], allow_different=config.allow_different)
    check_out_folder(out)
    with RunLock(out, command="compare"):
        results.sweep_stale(out)
        return _finish_compare(config, out, runs=runs, mode="saved_runs", notes=notes, warnings=[], started=started)


def saved_runs_compatible(saved: list[results.RunTables], folders: list[Path], *, allow_different: bool) -> list[str]:
    """Refuse a saved candidate run whose model's architecture or vocabulary differs from the base run's
    (``summary.json["model"]``), unless ``allow_different``; then one note per difference."""
    base_model = saved[0].summary.get("model") or {}
    notes: list[str] = []
    for run, folder in zip(saved[1:], folders[1:], strict=True):
        notes += check_compatible(base_model, run.summary.get("model") or {}, allow_different=allow_different,
                                  base_id=f"{folders[0]} ({base_model.get('id', '?')})",
                                  candidate_id=f"{folder} ({(run.summary.get('model') or {}).get('id', '?')})")
    return notes


def _unique_labels(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out


def _candidate_label(summary: dict[str, Any]) -> str:
    label = str((summary.get("model") or {}).get("id") or "candidate")
    if str(summary.get("dtype")) == "int8-dynamic":
        label += " (int8-dynamic)"
    return label


def _read_runs(config: CompareConfig, runs: list[tuple[str, Path]]) -> list[results.RunTables]:
    """Every run's tables; findings are computed (with the run's own statistics options) where missing."""
    tables = [results.read_run(folder) for _, folder in runs]
    for table in tables:
        if table.findings is None:
            table.findings = configured_stats.compute_findings(table.items, table.targets, table.fills,
                                                        run_stats_options(table.summary, config))
    return tables


def run_stats_options(summary: dict[str, Any], default: StatsOptions) -> StatsOptions:
    """The statistics options a run's summary.json records (``default``'s where it records none)."""
    seed, alpha, unit = summary.get("seed"), summary.get("alpha"), summary.get("unit")
    margin = summary.get("margin", default.margin)
    n_resamples = summary.get("n_resamples")
    return StatsOptions(
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else default.seed,
        alpha=float(alpha) if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) else default.alpha,
        n_resamples=(n_resamples if isinstance(n_resamples, int) and not isinstance(n_resamples, bool)
                     else default.n_resamples),
        unit=unit if isinstance(unit, str) else default.unit,
        margin=float(margin) if isinstance(margin, (int, float)) and not isinstance(margin, bool) else None)


def _finish_compare(config: CompareConfig, out: Path, *, runs: list[tuple[str, Path]], mode: str,
                    notes: list[str], warnings: list[str], started: float) -> CompareResult:
    """Read the runs back, compute deltas, write deltas.csv, benchmark_deltas.csv (when the runs scored
    benchmarks) and compare_summary.json (staged: they replace the previous ones together, and the previous
    compare.html goes with them), then draw compare.html."""
    from albert_audit.model_deltas import RunScores, change_counts, check_same_items, methods_text

    created = utc_now()
    tables = _read_runs(config, runs)
    labels = [str((tables[0].summary.get("model") or {}).get("id") or "base")]
    labels += _unique_labels([_candidate_label(t.summary) for t in tables[1:]])
    items_hash = ""
    for label, table in zip(labels[1:], tables[1:], strict=True):
        items_hash = check_same_items(tables[0].items, table.items, base_name=f"{labels[0]} ({runs[0][1]})",
                                      candidate_name=f"{label} ({table.folder})")
    scores = [RunScores(label=label, items=t.items, targets=t.targets, findings=t.findings)
              for label, t in zip(labels, tables, strict=True)]
    computed_at = time.perf_counter()
    deltas = configured_stats.compute_deltas(scores[0], scores[1:], config.stats_options(),
                                      delta_margin=config.delta_margin)
    bench_table, bench_records = benchmark_deltas(
        [ComparedRun(label, Path(run_folder), t.summary, t.findings)
         for label, (_, run_folder), t in zip(labels, runs, tables, strict=True)],
        seed=config.seed, alpha=config.alpha, n_resamples=config.n_resamples)
    staging = results.Staging(out, contract.COMPARE_FILES)
    folder = staging.open()
    try:
        results.write_csv(folder / contract.DELTAS_FILE, deltas)
        if bench_table is not None:
            results.write_csv(folder / contract.BENCHMARK_DELTAS_FILE, bench_table)
    except BaseException:
        staging.discard()
        raise
    done = time.perf_counter()
    base = compare_model(labels[0], "base", run_path(runs[0][1], out), tables[0].summary)
    base_pppl = (base.utility or {}).get("pppl")
    candidates = [compare_model(label, "candidate", run_path(folder, out), table.summary, base_pppl)
                  for label, (_, folder), table in zip(labels[1:], runs[1:], tables[1:], strict=True)]
    summary = contract.CompareSummary(
        schema_version=contract.COMPARE_SCHEMA_VERSION, tool_version=__version__, created_utc=created, mode=mode,
        items_sha256=items_hash, seed=config.seed, alpha=config.alpha, n_resamples=config.n_resamples,
        margin=config.margin, delta_margin=config.delta_margin, quantize=config.quantize, base=base,
        candidates=candidates, utility=utility_rows(base, candidates),
        changes=change_counts(deltas), n_deltas=len(deltas),
        methods={**methods_text(alpha=config.alpha, n_resamples=config.n_resamples),
                 **({"benchmarks": BENCHMARK_METHODS} if bench_records else {})}, notes=notes,
        files={"deltas": contract.DELTAS_FILE,
               "benchmark_deltas": contract.BENCHMARK_DELTAS_FILE if bench_table is not None else None,
               "report": contract.COMPARE_REPORT_FILE if config.write_report else None},
        timings_s={"deltas": done - computed_at, "total": done - started},
        benchmarks=bench_records or None).to_dict()
    try:
        results.write_json(folder / contract.COMPARE_SUMMARY_FILE, summary)
        staging.commit()  # deltas.csv and compare_summary.json replace the previous ones together
    except BaseException:
        staging.discard()
        raise
    if config.write_report:
        render_compare_report(out)  # drawn from the files in place (it reads the run folders beside them)
    return CompareResult(out=out, summary=summary, deltas=deltas, warnings=warnings, notes=notes)
