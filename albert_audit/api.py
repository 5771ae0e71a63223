"""The Python API that the CLI calls: run an audit into a run folder, re-render a report.

The model side (albert_audit.engine) is imported inside the functions that need it, so that importing this
module, and the CLI commands that don't score, stay free of torch.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
from dataclasses import dataclass, field, fields
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


@dataclass(kw_only=True)
class ScoringOptions:
    """How models are loaded and scored and how findings are computed; shared by run and compare.

    Defaults are the CLI's defaults.
    """

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

    def scoring_options(self) -> dict[str, Any]:
        """These options as keyword arguments (to build another config from this one)."""
        return {f.name: getattr(self, f.name) for f in fields(ScoringOptions)}


@dataclass(kw_only=True)
class AuditConfig(ScoringOptions):
    """Everything `albert-audit run` needs: a model, probe sets, an output folder, and the options."""

    model: str
    probes: list[str]
    out: Path
    revision: str | None = None
    unit: str = "template"


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


def run_audit(config: AuditConfig, *, loaded: Any | None = None) -> RunResult:
    """Load probes and model, score every item, write the run folder (tables, findings, summary, report).

    ``loaded``: an already loaded model (an ``albert_audit.engine.loading.LoadedModel``, e.g. one with a
    grafted head or quantized, as ``albert-audit compare`` makes) to use instead of loading ``config.model``.
    """
    from albert_audit.engine.loading import load_model
    from albert_audit.engine.scoring import MULTI_PIECE_METHOD, score_items, term_piece_counter

    started = time.perf_counter()
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    probe_sets = load_probes(config.probes)
    out = Path(config.out)
    _check_out_folder(out)
    results.remove_outputs(out)  # a rerun into the same folder never mixes old and new files
    if loaded is None:
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
        "unit": config.unit,
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
                              seed=config.seed, alpha=config.alpha, n_resamples=config.n_resamples,
                              unit=config.unit)
    if config.write_report:
        render_run_report(out, summary=summary)
    summary["timings_s"]["total"] = time.perf_counter() - started
    results.write_json(out / results.SUMMARY_FILE, summary)
    warnings = [w for ps in probe_sets for w in ps.warnings]
    return RunResult(out=out, summary=summary, findings=findings, warnings=warnings)


def write_findings(out: Path, *, items: pd.DataFrame, targets: pd.DataFrame, fills: pd.DataFrame,
                   summary: dict[str, Any], seed: int, alpha: float, n_resamples: int,
                   unit: str = "template") -> pd.DataFrame:
    """Compute the findings table from the score tables and write findings.csv; time it in summary."""
    from albert_audit.metrics import compute_findings

    started = time.perf_counter()
    findings = compute_findings(items, targets, fills, seed=seed, alpha=alpha, n_resamples=n_resamples, unit=unit)
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


# ------------------------------------------------------------------------------------------------ compare

COMPARE_SUMMARY_FILE, DELTAS_FILE, COMPARE_REPORT_FILE = "compare_summary.json", "deltas.csv", "compare.html"
COMPARE_SCHEMA_VERSION = 1
QUANTIZE_CHOICES = ("int8",)


@dataclass(kw_only=True)
class CompareConfig(ScoringOptions):
    """Everything `albert-audit compare` needs: models (``base`` + ``candidates``) or saved runs.

    Give either ``base`` and ``candidates`` (model ids or folders; each is audited into its own run folder
    under ``out``: ``out/base``, ``out/candidate_1``, ...) or ``base_run`` and ``candidate_runs`` (run folders
    of `albert-audit run` or of an earlier compare, whose items must match). ``quantize="int8"`` audits every
    candidate dynamically quantized (CPU). ``utility`` measures each model's pseudo-perplexity on the shipped
    neutral sample (models only).
    """

    out: Path
    base: str | None = None
    candidates: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    base_run: Path | None = None
    candidate_runs: list[Path] = field(default_factory=list)
    quantize: str | None = None
    write_run_reports: bool = True
    utility: bool = True
    utility_sample: Path | None = None


@dataclass
class CompareResult:
    """Where a comparison was written, its deltas and what to tell the user."""

    out: Path
    summary: dict[str, Any]
    deltas: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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


def _unique_labels(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out


def _candidate_label(summary: dict[str, Any]) -> str:
    model = summary.get("model") or {}
    label = str(model.get("id") or "candidate")
    if str(summary.get("dtype")) == "int8-dynamic":
        label += " (int8-dynamic)"
    return label


def compare_models(config: CompareConfig) -> CompareResult:
    """Audit the base and every candidate on the same probe sets, then compare (deltas, summary, compare.html).

    A candidate without an MLM head gets the base's head grafted on (labelled in its summary.json and in
    the report). The base must have its own head.
    """
    from albert_audit.engine.graft import (
        GRAFT_NOTE,
        extract_base_head,
        folder_config,
        load_descendant,
        preflight_descendant,
        quantize_int8,
    )
    from albert_audit.engine.loading import load_model
    from albert_audit.engine.utility import pseudo_perplexity

    started = time.perf_counter()
    if not config.base:
        raise AuditError("compare: --base MODEL is missing")
    if not config.candidates:
        raise AuditError("compare: give at least one --candidate MODEL")
    if config.quantize is not None and config.quantize not in QUANTIZE_CHOICES:
        raise AuditError(f"--quantize {config.quantize!r}: expected one of {', '.join(QUANTIZE_CHOICES)}")
    load_probes(config.probes)  # fail on bad probe files before loading any model
    utility_sentences = read_sentences(config.utility_sample) if config.utility_sample is not None else None
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise AuditError(f"--out {out}: exists and is not a folder")
    model_options = dict(device=config.device, dtype=config.dtype, offline=config.offline,
                         trust_remote_code=config.trust_remote_code, allow_pickle=config.allow_pickle)
    notes: list[str] = []
    warnings: list[str] = []

    def audit(model_ref: str, folder: str, loaded: Any, extra: dict[str, Any]) -> RunResult:
        audit_config = AuditConfig(model=model_ref, probes=config.probes, out=out / folder,
                                   **{**config.scoring_options(), "write_report": config.write_run_reports})
        result = run_audit(audit_config, loaded=loaded)
        if config.utility:
            result.summary["utility"] = pseudo_perplexity(loaded, utility_sentences, batch_size=config.batch_size)
            if config.utility_sample is not None:
                result.summary["utility"]["sample"] = Path(config.utility_sample).name
        result.summary.update(extra)
        results.write_json(result.out / results.SUMMARY_FILE, result.summary)
        for warning in result.warnings:
            if warning not in warnings:
                warnings.append(warning)
        return result

    # refuse a base or candidate that can't be audited before any model is loaded or scored
    _, base_config, base_has_head = folder_config(config.base, offline=config.offline,
                                                  allow_pickle=config.allow_pickle)
    if not base_has_head:
        raise AuditError(f"the base model {config.base!r} has no masked-language-model head; the base must be a "
                         "masked LM (a head-less descendant is probed through the base's head)")
    for ref in config.candidates:
        preflight_descendant(ref, base_id=config.base, base_config=base_config, offline=config.offline,
                             allow_pickle=config.allow_pickle)
    _check_out_folder(out)
    base_loaded = load_model(config.base, **model_options)
    base_head = extract_base_head(base_loaded)
    base_mask = base_loaded.info.mask_token
    base_result = audit(config.base, "base", base_loaded, {"comparison": {"role": "base"}})
    del base_loaded
    candidate_results: list[tuple[str, RunResult]] = []
    for index, ref in enumerate(config.candidates, start=1):
        loaded = load_descendant(ref, base=base_head, **model_options)
        if loaded.info.mask_token != base_mask:
            raise AuditError(f"{ref!r} has the mask token {loaded.info.mask_token!r}, the base {config.base!r} has "
                             f"{base_mask!r}: their items would differ; compare descendants that share the base's "
                             "tokenizer")
        model_notes: list[str] = []
        if loaded.info.head != "own":
            model_notes.append(f"{ref}: {GRAFT_NOTE} ({loaded.info.head}); the descendant's own encoder and word "
                               "embeddings, the base's head weights and output bias")
        if config.quantize == "int8":
            loaded, quant_notes = quantize_int8(loaded)
            model_notes.extend(quant_notes)
        folder = f"candidate_{index}"
        extra = {"comparison": {"role": "candidate", "base": config.base, "quantize": config.quantize},
                 "notes": model_notes}
        candidate_results.append((folder, audit(ref, folder, loaded, extra)))
        notes.extend(model_notes)
        del loaded
    runs = [("base", base_result.out)] + [(folder, result.out) for folder, result in candidate_results]
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
    out = Path(config.out)
    runs = [("base", Path(config.base_run))] + [(f"candidate_{i}", Path(p))
                                                for i, p in enumerate(config.candidate_runs, start=1)]
    for _, folder in runs:
        results.read_run(folder)  # a clear error for a missing or broken run folder before anything is written
    _check_out_folder(out)
    return _finish_compare(config, out, runs=runs, mode="saved_runs", notes=[], warnings=[], started=started)


def _run_path(folder: Path, out: Path) -> str:
    """How compare_summary.json refers to a run folder: relative to OUT when inside it, else absolute."""
    try:
        return Path(folder).resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return str(Path(folder).resolve())


def _finish_compare(config: CompareConfig, out: Path, *, runs: list[tuple[str, Path]], mode: str,
                    notes: list[str], warnings: list[str], started: float) -> CompareResult:
    """Read the runs back, compute and write deltas.csv, compare_summary.json and compare.html."""
    from albert_audit.compare import (
        RunScores,
        change_counts,
        check_same_items,
        compute_deltas,
        methods_text,
    )
    from albert_audit.metrics import compute_findings

    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    results.remove_outputs(out, (DELTAS_FILE, COMPARE_SUMMARY_FILE, COMPARE_REPORT_FILE))
    tables = [results.read_run(folder) for _, folder in runs]
    for table in tables:
        if table.findings is None:
            run_seed = table.summary.get("seed", config.seed)
            table.findings = compute_findings(table.items, table.targets, table.fills,
                                              seed=int(run_seed) if isinstance(run_seed, int) else config.seed,
                                              alpha=float(table.summary.get("alpha", config.alpha)),
                                              n_resamples=config.n_resamples)
    labels = [str((tables[0].summary.get("model") or {}).get("id") or "base")]
    labels += _unique_labels([_candidate_label(t.summary) for t in tables[1:]])
    items_hash = ""
    for label, table in zip(labels[1:], tables[1:], strict=True):
        items_hash = check_same_items(tables[0].items, table.items, base_name=f"{labels[0]} ({runs[0][1]})",
                                      candidate_name=f"{label} ({table.folder})")
    scores = [RunScores(label=label, items=t.items, targets=t.targets, findings=t.findings)
              for label, t in zip(labels, tables, strict=True)]
    computed_at = time.perf_counter()
    deltas = compute_deltas(scores[0], scores[1:], seed=config.seed, alpha=config.alpha,
                            n_resamples=config.n_resamples)
    results.write_csv(out / DELTAS_FILE, deltas)
    deltas_time = time.perf_counter() - computed_at

    def model_entry(label: str, name: str, folder: Path, table: results.RunTables) -> dict[str, Any]:
        summary = table.summary
        return {"label": label, "role": "base" if name == "base" else "candidate", "run": _run_path(folder, out),
                "model": summary.get("model") or {}, "device": summary.get("device"), "dtype": summary.get("dtype"),
                "utility": summary.get("utility"), "notes": summary.get("notes") or [],
                "created_utc": summary.get("created_utc")}

    entries = [model_entry(label, name, folder, table)
               for label, (name, folder), table in zip(labels, runs, tables, strict=True)]
    base_pppl = (entries[0]["utility"] or {}).get("pppl")
    utility_rows = []
    for entry in entries[1:]:
        cand_pppl = (entry["utility"] or {}).get("pppl")
        ratio = cand_pppl / base_pppl if base_pppl and cand_pppl is not None else None
        entry["pppl_ratio"] = ratio
        utility_rows.append({"candidate": entry["label"], "base_pppl": base_pppl, "candidate_pppl": cand_pppl,
                             "ratio": ratio, "sample": (entry["utility"] or {}).get("sample")})
    summary: dict[str, Any] = {
        "schema_version": COMPARE_SCHEMA_VERSION,
        "tool_version": __version__,
        "created_utc": created,
        "mode": mode,
        "items_sha256": items_hash,
        "seed": config.seed,
        "alpha": config.alpha,
        "n_resamples": config.n_resamples,
        "quantize": config.quantize,
        "base": entries[0],
        "candidates": entries[1:],
        "utility": utility_rows,
        "changes": change_counts(deltas),
        "n_deltas": len(deltas),
        "methods": methods_text(alpha=config.alpha, n_resamples=config.n_resamples),
        "notes": notes,
        "files": {"deltas": DELTAS_FILE, "report": COMPARE_REPORT_FILE if config.write_report else None},
        "timings_s": {"deltas": deltas_time},
    }
    results.write_json(out / COMPARE_SUMMARY_FILE, summary)
    if config.write_report:
        report_started = time.perf_counter()
        render_compare_report(out)
        summary["timings_s"]["report"] = time.perf_counter() - report_started
    summary["timings_s"]["total"] = time.perf_counter() - started
    results.write_json(out / COMPARE_SUMMARY_FILE, summary)
    return CompareResult(out=out, summary=summary, deltas=deltas, warnings=warnings, notes=notes)


def render_compare_report(out: str | Path) -> Path:
    """Render compare.html of a compare folder from its saved files (compare_summary.json, deltas.csv, runs)."""
    from albert_audit.report.compare_render import render_compare

    return render_compare(Path(out))


# --------------------------------------------------------------------------------------------------- demo

DEMO_MODELS_DIR = Path(__file__).resolve().parent / "demo_models"


def demo_paths() -> tuple[Path, Path, Path]:
    """The shipped demo base model, its fine-tuned descendant and the demo probe set."""
    base, descendant = DEMO_MODELS_DIR / "base", DEMO_MODELS_DIR / "descendant"
    probes = DEMO_MODELS_DIR / "demo_probes.yaml"
    for path in (base / "config.json", descendant / "config.json", probes):
        if not path.is_file():
            raise AuditError(f"{path}: the demo models are not installed; build them with "
                             "`python scripts/make_demo_models.py`")
    return base, descendant, probes


def run_demo(out: str | Path, *, seed: int = 0, progress: bool = True) -> CompareResult:
    """`albert-audit demo`: audit the demo base, compare the descendant against it, write both reports.

    Everything is local (no network) and runs on the CPU: the demo models are tiny. Their pseudo-perplexity
    is measured on an in-domain neutral sample (the demo corpus's filler sentences): the shipped English sample
    is mostly outside their 427-piece vocabulary.
    """
    base, descendant, probes = demo_paths()
    config = CompareConfig(out=Path(out), base=str(base), candidates=[str(descendant)], probes=[str(probes)],
                           device="cpu", dtype="float32", offline=True, seed=seed, progress=progress,
                           utility_sample=DEMO_MODELS_DIR / "neutral_sample.txt")
    return compare_models(config)
