"""`albert-audit run`: score probe sets with one model and write the run folder.

Order: tables, findings, then summary.json once (everything it records is known by then), then the report,
drawn last from the written files, so `albert-audit report RUN_DIR` redraws exactly the same page. The model
side (albert_audit.engine) is imported inside the functions that need it, so that importing the API stays
free of torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit import contract, results
from albert_audit.api.options import AuditConfig, RunResult, StatsOptions
from albert_audit.api.summary import RunExtras, run_summary, utc_now
from albert_audit.errors import AuditError
from albert_audit.expand import annotate_targets, expand_items
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
    return _Scored(items=items, targets=annotate_targets(scores.targets, items, probe_sets), fills=scores.fills,
                   stats=scores.stats, checkpoint=scores.checkpoint)


def run_audit(config: AuditConfig, *, loaded: Any | None = None, extras: RunExtras | None = None) -> RunResult:
    """Load probes and model, score every item, write the run folder (tables, findings, summary, report).

    ``loaded``: an already loaded model (an ``albert_audit.engine.loading.LoadedModel``, e.g. one with a
    grafted head or quantized, as ``albert-audit compare`` makes) to use instead of loading ``config.model``.
    ``extras``: what compare records in the run's summary.json (utility, comparison, notes).
    """
    from albert_audit.engine.loading import load_model
    from albert_audit.engine.scoring import MULTI_PIECE_METHOD

    started, created = time.perf_counter(), utc_now()
    probe_sets = load_probes(config.probes)
    out = Path(config.out)
    check_out_folder(out)
    results.remove_outputs(out, contract.RUN_FILES)  # a rerun into the same folder never mixes old and new files
    if loaded is None:
        loaded = load_model(config.model, revision=config.revision, **config.loading())
    loaded_at = time.perf_counter()
    scored = _score(loaded, probe_sets, config, out)
    scored_at = time.perf_counter()
    results.write_parquet(out / contract.ITEMS_FILE, scored.items)
    results.write_parquet(out / contract.FILLS_FILE, scored.fills)
    results.write_parquet(out / contract.TARGETS_FILE, scored.targets)
    findings = write_findings(out, items=scored.items, targets=scored.targets, fills=scored.fills,
                              stats=config.stats_options())
    done = time.perf_counter()
    timings = {"load": loaded_at - started, "score": scored_at - loaded_at, "stats": done - scored_at,
               "total": done - started}
    summary = run_summary(created=created, info=loaded.info.to_dict(), config=config, probe_sets=probe_sets,
                          items=scored.items, targets=scored.targets, fills=scored.fills, stats=scored.stats,
                          multi_piece_method=MULTI_PIECE_METHOD, timings=timings, extras=extras).to_dict()
    results.write_json(out / contract.SUMMARY_FILE, summary)
    if scored.checkpoint is not None:
        scored.checkpoint.clear()  # every output is written: the scored batches are no longer needed
    if config.write_report:
        render_run_report(out)
    return RunResult(out=out, summary=summary, findings=findings,
                     warnings=[w for ps in probe_sets for w in ps.warnings])


def write_findings(out: Path, *, items: pd.DataFrame, targets: pd.DataFrame, fills: pd.DataFrame,
                   stats: StatsOptions) -> pd.DataFrame:
    """Compute the findings table from the score tables and write findings.csv."""
    from albert_audit.metrics import compute_findings

    findings = compute_findings(items, targets, fills, seed=stats.seed, alpha=stats.alpha,
                                n_resamples=stats.n_resamples, unit=stats.unit)
    results.write_csv(out / contract.FINDINGS_FILE, findings)
    return findings


def render_run_report(out: str | Path) -> Path:
    """Draw report.html of a run folder from its saved files (no model needed)."""
    from albert_audit.report.render import render_report

    return render_report(Path(out))
