"""One model of a lineage audited into its run folder: the unit of work a Ray actor runs (or any process).

:func:`audit_node` never raises for a model that can't be audited: it returns a ``failed`` outcome with the
one-line reason (bad weights, a refused kind, out of memory), so one model never stops the others. Only the
loss of the worker process itself (killed, crashed) escapes, and Ray retries it.

Resume: a run folder whose outputs are complete (the score tables, findings.csv and summary.json; no
staging or checkpoint left), whose ``summary.json`` records the same weights (sha256 of every weight file)
and the same audit key (probe files, benchmarks, options, kind, root for a graft) is kept: the outcome says
``resumed`` and nothing is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from albert_audit import contract
from albert_audit.errors import AuditError

KILL_ONCE_ENV = "ALBERT_AUDIT_LINEAGE_KILL_ONCE"
"""Fault injection for tests: ``LABEL=MARKER_PATH``: the worker auditing LABEL kills its own process (SIGKILL)
the first time (creating MARKER_PATH), as a lost worker; Ray's retry then audits it again."""
STATUSES = ("done", "resumed", "failed")


@dataclass(frozen=True)
class NodeJob:
    """Everything a worker needs to audit one model (plain values: it travels to another process)."""

    label: str
    model: str
    revision: str | None
    kind: str
    root_model: str
    root_revision: str | None
    run_dir: str
    probes: list[str]
    benchmarks: list[str]
    options: dict[str, Any]
    """ModelOptions and StatsOptions values (albert_audit.api.options)."""
    utility: bool
    utility_sample: str | None
    audit_key: str
    comparison: dict[str, Any]
    """What the run's summary.json records under ``comparison`` (role, lineage, parent, root)."""
    attempts_file: str = ""
    """A file in the lineage folder that gets one line (the worker's pid) per attempt: retries of lost workers
    are counted there."""


@dataclass
class NodeOutcome:
    """What became of one model."""

    label: str
    status: str
    """done, resumed or failed."""
    reason: str = ""
    """Why it failed (one line)."""
    kind: str = ""
    head: str = ""
    run: str = ""
    weights_sha256: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    pid: int = 0
    attempts: int = 1
    needs_stats: bool = False
    """The run folder holds the scores and summary.json but not yet the findings (computed by a CPU task after
    the model's audit, ``albert_audit.api.analyze_run``: byte-identical to computing them in the audit)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def audit_key(values: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of what shapes a run's results (compared on resume)."""
    text = json.dumps(values, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def complete_run(run_dir: Path, *, findings: bool = True) -> dict[str, Any] | None:
    """summary.json of a run folder whose outputs are complete (else None); ``findings=False``: the scores and
    summary.json suffice (a run scored, its statistics not yet computed)."""
    needed = (contract.ITEMS_FILE, contract.FILLS_FILE, contract.TARGETS_FILE, contract.SUMMARY_FILE,
              *((contract.FINDINGS_FILE,) if findings else ()))
    if not run_dir.is_dir() or not all((run_dir / name).is_file() for name in needed):
        return None
    if (run_dir / contract.CHECKPOINT_FOLDER).exists() or any(p.name.startswith(".staging-")
                                                                for p in run_dir.iterdir()):
        return None
    try:
        summary = json.loads((run_dir / contract.SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def current_weights(job: NodeJob) -> dict[str, str]:
    """sha256 of every weight file of the job's model, as the engine records them (``ModelInfo.weights_sha256``)."""
    from albert_audit.engine.loading import locate_model, sha256_file, weight_files

    loading = _loading(job)
    folder = locate_model(job.model, revision=job.revision, offline=loading["offline"],
                          allow_pickle=loading["allow_pickle"])
    return {p.name: sha256_file(p) for p in weight_files(folder, allow_pickle=loading["allow_pickle"])}


def resumable(job: NodeJob) -> NodeOutcome | None:
    """A ``resumed`` outcome when the job's run folder is complete and matches; else None."""
    summary = complete_run(Path(job.run_dir), findings=False)
    if summary is None:
        return None
    recorded = summary.get("comparison") or {}
    if recorded.get("audit_key") != job.audit_key:
        return None
    model = summary.get("model") or {}
    weights = current_weights(job)
    if model.get("weights_sha256") != weights:
        return None
    return NodeOutcome(label=job.label, status="resumed", kind=str(recorded.get("kind", job.kind)),
                       head=str(model.get("head", "")), run=job.run_dir, weights_sha256=weights, pid=os.getpid(),
                       needs_stats=not (Path(job.run_dir) / contract.FINDINGS_FILE).is_file())


def _loading(job: NodeJob) -> dict[str, Any]:
    keys = ("device", "dtype", "offline", "trust_remote_code", "allow_pickle")
    return {k: job.options[k] for k in keys}


def _maybe_kill(label: str) -> None:
    spec = os.environ.get(KILL_ONCE_ENV, "")
    target, _, marker = spec.partition("=")
    if target == label and marker and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()), encoding="utf-8")
        os.kill(os.getpid(), signal.SIGKILL)


def audit_node(job: NodeJob) -> NodeOutcome:
    """Audit one model into ``job.run_dir`` (or keep a matching complete run): never raises for the model's own
    problems (a ``failed`` outcome with the reason instead)."""
    started = time.perf_counter()
    attempts = _count_attempt(job.attempts_file)
    try:
        resumed = resumable(job)
        if resumed is not None:
            resumed.seconds, resumed.attempts = time.perf_counter() - started, attempts
            return resumed
        _maybe_kill(job.label)
        outcome = _audit(job)
    except AuditError as exc:
        outcome = NodeOutcome(label=job.label, status="failed", reason=_one_line(str(exc)), kind=job.kind)
    except MemoryError:
        outcome = NodeOutcome(label=job.label, status="failed", reason="out of memory", kind=job.kind)
    except Exception as exc:  # a model must never stop the others; the reason is kept in the status table
        reason = "out of memory" if "out of memory" in str(exc).lower() else f"{type(exc).__name__}: {exc}"
        outcome = NodeOutcome(label=job.label, status="failed", reason=_one_line(reason), kind=job.kind)
    outcome.seconds = time.perf_counter() - started
    outcome.pid, outcome.attempts = os.getpid(), attempts
    return outcome


def _count_attempt(path: str) -> int:
    """Add this attempt to the job's attempts file; the number of attempts so far (1 without a file)."""
    if not path:
        return 1
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        os.fsync(handle.fileno())
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def _one_line(text: str) -> str:
    from albert_audit.errors import shown

    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return shown(lines[0] if lines else text, limit=300)


def _audit(job: NodeJob) -> NodeOutcome:
    from albert_audit.api.options import AuditConfig
    from albert_audit.api.run import read_sentences, run_audit
    from albert_audit.api.summary_files import RunExtras
    from albert_audit.lineage.kinds import LoadRequest, auditor, detect_kind

    loading = _loading(job)
    kind = job.kind
    if kind == "auto":
        kind = detect_kind(job.model, revision=job.revision, offline=loading["offline"],
                           allow_pickle=loading["allow_pickle"])
    chosen = auditor(kind, job.model)
    if job.label != job.comparison.get("root"):
        _check_against_root(job, loading)
    request = LoadRequest(model=job.model, revision=job.revision, root_model=job.root_model,
                          root_revision=job.root_revision, loading=loading)
    config = AuditConfig(model=job.model, revision=job.revision, probes=list(job.probes),
                         benchmarks=list(job.benchmarks), out=Path(job.run_dir), write_report=False, **job.options)
    comparison = {**job.comparison, "kind": kind, "audit_key": job.audit_key}
    if chosen.audit is not None:  # a kind with its own audit (a task model): it writes the run folder
        result = chosen.audit(request, config, RunExtras(comparison=comparison))
        return _outcome(job, kind, result)
    assert chosen.load is not None
    loaded, notes = chosen.load(request)
    utility = None
    if job.utility:
        from albert_audit.engine.utility import pseudo_perplexity

        sentences = read_sentences(job.utility_sample) if job.utility_sample else None
        utility = pseudo_perplexity(loaded, sentences, batch_size=job.options["batch_size"])
        if job.utility_sample:
            utility["sample"] = Path(job.utility_sample).name
    # the findings (CPU statistics) are left to a CPU task after the audit, so that a GPU actor goes on to the
    # next model; with benchmarks they are computed here (their rows come from the benchmark scoring)
    later = not job.benchmarks
    result = run_audit(config, loaded=loaded, extras=RunExtras(utility=utility, comparison=comparison,
                                                               notes=notes or None), findings=not later)
    outcome = _outcome(job, kind, result)
    outcome.needs_stats = later
    return outcome


def _outcome(job: NodeJob, kind: str, result: Any) -> NodeOutcome:
    model = result.summary.get("model") or {}
    return NodeOutcome(label=job.label, status="done", kind=kind, head=str(model.get("head", "")),
                       run=job.run_dir, weights_sha256=dict(model.get("weights_sha256") or {}))


def _check_against_root(job: NodeJob, loading: dict[str, Any]) -> None:
    """A descendant's architecture and vocabulary must match the root's (refused otherwise, as compare does)."""
    from albert_audit.engine.compat import folder_signature
    from albert_audit.engine.graft import preflight_descendant
    from albert_audit.engine.loading import locate_model

    root_folder = locate_model(job.root_model, revision=job.root_revision, offline=loading["offline"],
                               allow_pickle=loading["allow_pickle"])
    preflight_descendant(job.model, base_id=job.root_model, base_config=folder_signature(root_folder),
                         revision=job.revision, offline=loading["offline"], allow_pickle=loading["allow_pickle"])
