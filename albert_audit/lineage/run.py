"""`albert-audit lineage`: audit a root base and its descendants on Ray, compare each with its parent and the root.

Order: the tree and every input are checked first (manifest, probe files, benchmark files, --out); then every
model is audited into ``OUT/runs/<label>/`` by Ray actors (albert_audit.lineage.executor; one model's failure
is recorded, the others go on; a complete run with the same weights and settings is kept: resume); then, after
all audits, each run's report.html (CPU tasks), the comparisons (``OUT/compares/<label>--vs-parent`` and
``--vs-root``: `compare` of the saved runs, so deltas are those of `albert-audit compare --base-run
--candidate-run`), lineage_status.csv, lineage_summary.json, the catalogue and lineage.html.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit import __version__, contract, results
from albert_audit.api.benchmarks import load_benchmarks
from albert_audit.api.options import CompareConfig, ModelOptions, StatsOptions, option_values
from albert_audit.api.run import check_out_folder, load_probes, read_sentences
from albert_audit.api.summary_files import utc_now
from albert_audit.errors import AuditError, shown
from albert_audit.lineage import manifest
from albert_audit.lineage.manifest import Lineage, Node
from albert_audit.lineage.worker import NodeJob, NodeOutcome, audit_key
from albert_audit.runlock import RunLock

VS_PARENT, VS_ROOT = "parent", "root"


@dataclass(kw_only=True)
class LineageConfig(ModelOptions, StatsOptions):
    """Everything `albert-audit lineage` needs. Give exactly one source of the tree: ``manifest``,
    ``models_dir`` (with ``base``), ``cards`` (with ``root``), ``hub_cache`` (with ``root``) or ``hub_tree``
    (a root id, online)."""

    out: Path
    probes: list[str] = field(default_factory=list)
    benchmarks: list[str] = field(default_factory=list)
    manifest: Path | None = None
    models_dir: Path | None = None
    base: str | None = None
    cards: Path | None = None
    hub_cache: bool = False
    hub_tree: str | None = None
    root: str | None = None
    max_models: int = 500
    ray_address: str | None = None
    """None/"local": a local Ray instance started here; "auto" or "HOST:PORT": join a cluster."""
    ray_cpus: int | None = None
    """CPUs of the local Ray instance (default: the machine's)."""
    workers: int | None = None
    """At most this many model actors (default: one per GPU, else one per CPU)."""
    retries: int = 2
    """Retries of a model whose worker process was lost."""
    utility: bool = True
    utility_sample: Path | None = None
    delta_margin: float | None = None
    write_report: bool = True
    write_run_reports: bool = True
    catalogue: Path | None = None
    """The DuckDB catalogue to register the lineage in (default OUT/catalogue.duckdb)."""
    register: bool = True


@dataclass
class LineageResult:
    out: Path
    summary: dict[str, Any]
    status: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def resolve_lineage(config: LineageConfig) -> Lineage:
    """The tree from the one source given."""
    sources = [config.manifest is not None, config.models_dir is not None, config.cards is not None,
               config.hub_cache, config.hub_tree is not None]
    if sum(sources) != 1:
        raise AuditError("lineage: give one source of the tree: --manifest FILE, --models-dir DIR (with --base), "
                         "--cards DIR or --hub-cache (with --root), or --hub-tree MODEL")
    if config.manifest is not None:
        return manifest.load_manifest(config.manifest)
    if config.models_dir is not None:
        if not config.base:
            raise AuditError("lineage: --models-dir needs --base MODEL (the root of the tree)")
        return manifest.from_folder(config.base, config.models_dir)
    if config.hub_tree is not None:
        return manifest.from_hub(config.hub_tree, limit=config.max_models)
    if not config.root:
        raise AuditError("lineage: --cards and --hub-cache need --root MODEL (the root of the tree)")
    if config.cards is not None:
        if not Path(config.cards).is_dir():
            raise AuditError(f"{shown(config.cards)}: no such folder of model cards")
        return manifest.from_cards(config.root, manifest.cards_in_folder(Path(config.cards)),
                                   source=f"cards {config.cards}", limit=config.max_models)
    return manifest.from_cards(config.root, manifest.cards_in_cache(), source="hub cache", limit=config.max_models)


def _job_options(config: LineageConfig) -> dict[str, Any]:
    values = option_values(config)
    values["progress"] = False  # the lineage draws one bar for all models
    return values


def _key_values(config: LineageConfig, node: Node, root: Node, probe_sets: list[Any], sample_sha: str | None,
                ) -> dict[str, Any]:
    options = {k: v for k, v in _job_options(config).items() if k != "progress"}
    return {"tool_version": __version__, "probes": [ps.sha256 for ps in probe_sets],
            "benchmarks": list(config.benchmarks), "options": options, "kind": node.kind,
            "model": node.model, "revision": node.revision, "root": [root.model, root.revision],
            "utility": config.utility, "utility_sample": sample_sha}


def plan_jobs(config: LineageConfig, lineage: Lineage, probe_sets: list[Any], out: Path) -> list[NodeJob]:
    """One job per model (root first)."""
    from albert_audit.api.benchmarks import sha256_of

    sample_sha = sha256_of(Path(config.utility_sample)) if config.utility_sample is not None else None
    attempts = out / ".attempts"
    attempts.mkdir(exist_ok=True)
    root = lineage.root
    jobs = []
    for node in lineage.nodes:
        attempts_file = attempts / node.label
        attempts_file.unlink(missing_ok=True)
        jobs.append(NodeJob(
            label=node.label, model=node.model, revision=node.revision, kind=node.kind, root_model=root.model,
            root_revision=root.revision, run_dir=str(out / contract.LINEAGE_RUNS_FOLDER / node.label),
            probes=[ps.path for ps in probe_sets], benchmarks=list(config.benchmarks),
            options=_job_options(config), utility=config.utility,
            utility_sample=str(config.utility_sample) if config.utility_sample is not None else None,
            audit_key=audit_key(_key_values(config, node, root, probe_sets, sample_sha)),
            comparison={"role": "lineage", "lineage": lineage.name, "label": node.label, "parent": node.parent,
                        "root": root.label},
            attempts_file=str(attempts_file)))
    return jobs


class _Progress:
    """One line per model finished, plus an overall bar (stderr)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="models", unit="model", file=sys.stderr, dynamic_ncols=True)

    def done(self, outcome: NodeOutcome) -> None:
        if not self.enabled or self.bar is None:
            return
        detail = f"failed: {outcome.reason}" if outcome.status == "failed" else f"{outcome.status} ({outcome.kind})"
        retried = f", {outcome.attempts} attempts" if outcome.attempts > 1 else ""
        self.bar.write(f"{outcome.label}: {detail} in {outcome.seconds:.1f} s{retried}", file=sys.stderr)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_lineage(config: LineageConfig) -> LineageResult:
    """Audit the lineage on Ray, then compare, tabulate, catalogue and report (see the module docstring)."""
    started, created = time.perf_counter(), utc_now()
    lineage = resolve_lineage(config)
    if len(lineage.nodes) > config.max_models:
        raise AuditError(f"the lineage has {len(lineage.nodes)} models, over --max-models {config.max_models}")
    load_benchmarks(config.benchmarks)
    probe_sets = load_probes(config.probes) if config.probes or not config.benchmarks else []
    if config.utility_sample is not None:
        read_sentences(config.utility_sample)
    if config.retries < 0:
        raise AuditError("--retries must be >= 0")
    out = Path(config.out)
    local = tuple(n.model for n in lineage.nodes if Path(n.model).is_dir())
    check_out_folder(out, model_refs=local, probe_sets=probe_sets)
    warnings = [w for ps in probe_sets for w in ps.warnings]
    with RunLock(out, command="lineage"):
        results.sweep_stale(out)
        return _run_locked(config, lineage, probe_sets, out, started=started, created=created, warnings=warnings)


def _run_locked(config: LineageConfig, lineage: Lineage, probe_sets: list[Any], out: Path, *, started: float,
                created: str, warnings: list[str]) -> LineageResult:
    from albert_audit.lineage import executor
    from albert_audit.lineage.reports import draw_lineage_report

    jobs = plan_jobs(config, lineage, probe_sets, out)
    progress = _Progress(len(jobs), config.progress)
    try:
        outcomes, cluster, handle = executor.run_jobs(jobs, address=config.ray_address, workers=config.workers,
                                                      retries=config.retries, num_cpus=config.ray_cpus,
                                                      on_done=progress.done, write_reports=config.write_run_reports)
    finally:
        progress.close()
    audited_at = time.perf_counter()
    try:
        report_errors = {}
        if config.write_run_reports:
            to_draw = [o.run for o in outcomes
                       if o.status != "failed" and not (Path(o.run) / contract.REPORT_FILE).is_file()]
            report_errors = executor.draw_reports(handle, to_draw)
    finally:
        executor.stop(handle)
    warnings += [f"{shown(run)}: report.html not drawn: {error}" for run, error in report_errors.items()]
    reported_at = time.perf_counter()
    by_label = {o.label: o for o in outcomes}
    compares = compare_edges(config, lineage, by_label, out)
    compared_at = time.perf_counter()
    status = status_table(lineage, by_label, compares, out)
    catalogue_path = None
    if config.register:
        catalogue_path = Path(config.catalogue) if config.catalogue is not None else out / "catalogue.duckdb"
    summary = contract.LineageSummary(
        schema_version=contract.LINEAGE_SCHEMA_VERSION, tool_version=__version__, created_utc=created,
        name=lineage.name, source=lineage.source, root=lineage.root.label,
        nodes=[{**r, "depth": lineage.depth(r["label"])} for r in manifest.as_records(_ordered(lineage))],
        probe_files=[contract.ProbeFile(name=ps.name, path=ps.path, sha256=ps.sha256) for ps in probe_sets],
        benchmarks=list(config.benchmarks),
        options={**{k: v for k, v in _job_options(config).items() if k != "progress"},
                 "delta_margin": config.delta_margin, "utility": config.utility,
                 "utility_sample": str(config.utility_sample) if config.utility_sample else None},
        counts={s: int((status["status"] == s).sum()) for s in ("done", "resumed", "failed")},
        compares=[{"label": c.label, "against": c.against, "base": c.base, "folder": c.folder, "error": c.error}
                  for c in compares],
        cluster={"address": cluster.address, "gcs_address": cluster.gcs_address, "gpus": cluster.gpus,
                 "cpus": cluster.cpus, "actors": cluster.actors, "actor_resources": cluster.actor_resources},
        timings_s={"audits": audited_at - started, "reports": reported_at - audited_at,
                   "compares": compared_at - reported_at, "total": time.perf_counter() - started},
        files={"status": contract.LINEAGE_STATUS_FILE,
               "report": contract.LINEAGE_REPORT_FILE if config.write_report else None,
               "catalogue": str(catalogue_path) if catalogue_path is not None else None}).to_dict()
    # the status table and the summary replace the previous ones together (the old lineage.html goes with
    # them); lineage.html is drawn after, from the files in place
    staging = results.Staging(out, contract.LINEAGE_FILES)
    folder = staging.open()
    try:
        results.write_csv(folder / contract.LINEAGE_STATUS_FILE, status)
        results.write_json(folder / contract.LINEAGE_SUMMARY_FILE, summary)
        staging.commit()
    except BaseException:
        staging.discard()
        raise
    if config.write_report:
        draw_lineage_report(out)
    if catalogue_path is not None:
        from albert_audit.catalogue import add_folders

        try:
            add_folders(catalogue_path, [out])
        except AuditError as exc:  # the lineage folder is complete; registering can be redone
            warnings.append(f"not registered in the catalogue: {exc}; run `albert-audit catalogue add {out}`")
    return LineageResult(out=out, summary=summary, status=status, warnings=warnings)


def _ordered(lineage: Lineage) -> Lineage:
    return Lineage(name=lineage.name, source=lineage.source, nodes=lineage.tree_order())


@dataclass
class Edge:
    """One comparison of a lineage: ``label`` against its parent or the root (``base``)."""

    label: str
    against: str
    base: str
    folder: str
    """Relative to the lineage folder ("" when not made)."""
    changes: dict[str, int] = field(default_factory=dict)
    error: str = ""


def compare_edges(config: LineageConfig, lineage: Lineage, outcomes: dict[str, NodeOutcome], out: Path) -> list[Edge]:
    """Compare every audited descendant with its parent and with the root (saved runs: `compare --base-run
    --candidate-run` with the lineage's statistics options); one folder per comparison."""
    from albert_audit.api.compare import compare_saved_runs

    ok = {label for label, o in outcomes.items() if o.status in ("done", "resumed")}
    edges: list[Edge] = []
    root = lineage.root.label
    for node in lineage.tree_order()[1:]:
        pairs = [(VS_PARENT, node.parent)] + ([(VS_ROOT, root)] if node.parent != root else [])
        for against, base in pairs:
            assert base is not None
            folder = f"{contract.LINEAGE_COMPARES_FOLDER}/{node.label}--vs-{against}"
            if node.label not in ok or base not in ok:
                missing = node.label if node.label not in ok else base
                edges.append(Edge(node.label, against, base, "", error=f"{missing} failed"))
                continue
            compare_config = CompareConfig(
                out=out / folder, base_run=out / contract.LINEAGE_RUNS_FOLDER / base,
                candidate_runs=[out / contract.LINEAGE_RUNS_FOLDER / node.label], write_report=config.write_report,
                delta_margin=config.delta_margin, progress=False, **option_values(config.stats_options()))
            try:
                result = compare_saved_runs(compare_config)
            except AuditError as exc:
                edges.append(Edge(node.label, against, base, "", error=str(exc).splitlines()[0]))
                continue
            changes = next(iter(result.summary["changes"].values()), {})
            edges.append(Edge(node.label, against, base, folder, changes=dict(changes)))
    return edges


def _counts_text(changes: dict[str, int]) -> str:
    return ";".join(f"{k}={v}" for k, v in changes.items())


def status_table(lineage: Lineage, outcomes: dict[str, NodeOutcome], edges: list[Edge], out: Path) -> pd.DataFrame:
    """lineage_status.csv: one row per model in tree order (contract.LINEAGE_STATUS)."""
    rows = []
    for node in lineage.tree_order():
        outcome = outcomes[node.label]
        vs = {e.against: e for e in edges if e.label == node.label}
        parent_edge = vs.get(VS_PARENT)
        root_edge = vs.get(VS_ROOT, parent_edge if node.parent == lineage.root.label else None)
        run = (Path(contract.LINEAGE_RUNS_FOLDER) / node.label).as_posix() if outcome.status != "failed" else ""
        rows.append({
            "label": node.label, "model": node.model, "revision": node.revision or "", "parent": node.parent or "",
            "depth": lineage.depth(node.label), "kind": outcome.kind or node.kind, "head": outcome.head,
            "status": outcome.status, "reason": outcome.reason, "attempts": outcome.attempts,
            "seconds": round(outcome.seconds, 3),
            "weights_sha256": ";".join(f"{k}={v}" for k, v in sorted(outcome.weights_sha256.items())),
            "run": run, "vs_parent": parent_edge.folder if parent_edge else "",
            "vs_root": root_edge.folder if root_edge else "",
            "changes_vs_parent": _counts_text(parent_edge.changes) if parent_edge else "",
            "changes_vs_root": _counts_text(root_edge.changes) if root_edge else ""})
    table = pd.DataFrame(rows, columns=list(contract.LINEAGE_STATUS.names))
    return contract.restore_types(table, contract.LINEAGE_STATUS, contract.LINEAGE_STATUS_FILE)
