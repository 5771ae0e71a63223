"""Run the lineage's model audits on Ray: the only module of albert-audit that imports ray.

Layout: one long-lived actor per GPU (``num_gpus=1``) when the cluster has GPUs, else one per CPU slot
(``num_cpus=1``, at most ``workers``); each actor audits one model at a time (:func:`worker.audit_node`:
load, score, the run folder's tables and summary.json) and takes the next model as soon as it is free, so
every device stays busy until the queue is empty. Each scored model's statistics (findings.csv, then its
report.html) are a CPU task (``num_cpus=1``) submitted as soon as its audit ends: on a GPU node they run on
the node's other CPUs while the actor scores the next model; on a CPU-only cluster, where the actors hold
every CPU, they run once the audits are done. Reports of resumed runs are drawn by plain CPU tasks
afterwards (:func:`draw_reports`).

Failures: a model's own problem comes back as a ``failed`` outcome (never an exception). A lost worker
process (killed, crashed, its node gone) is restarted by Ray and the model's audit retried, up to
``retries`` times (``max_restarts`` / ``max_task_retries`` of the actor); after that the model is ``failed``
with the reason "worker lost". Default: a local Ray instance started here and stopped at the end; ``address``
(``auto`` or ``HOST:PORT``) joins a running cluster instead, which is left running.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from albert_audit.errors import AuditError, shown
from albert_audit.lineage.worker import NodeJob, NodeOutcome, audit_node


@dataclass
class ClusterInfo:
    """Where the audits ran (recorded in lineage_summary.json)."""

    address: str
    """``local`` (started by the command) or the address joined."""
    gpus: float
    cpus: float
    actors: int
    actor_resources: dict[str, float]
    gcs_address: str = ""
    """The cluster's GCS (a local instance: on 127.0.0.1)."""


def start(address: str | None, *, num_cpus: int | None = None) -> tuple[Any, bool]:
    """Connect to Ray: ``None``/``"local"`` starts a local instance on loopback (returned flag True: stop it at
    the end); ``"auto"`` or ``HOST:PORT`` joins a cluster."""
    # Ray reports usage statistics over the network unless told not to: an audit tool sends nothing anywhere
    # (set RAY_USAGE_STATS_ENABLED=1 yourself to allow it)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    local = address in (None, "", "local")
    if local and "ray" not in sys.modules:
        # a local instance stays on loopback: Ray otherwise binds its services to the machine's network address
        # (its switch for single-machine clusters is named after Windows and macOS, where it is the default)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
             "configure_logging": True}
    if local:
        try:
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, **quiet)
        except Exception as exc:  # ray raises many kinds at start-up (ports, /tmp, shared memory)
            raise AuditError(f"cannot start a local Ray instance: {type(exc).__name__}: "
                             f"{shown(str(exc).splitlines()[0] if str(exc) else '', limit=200)}") from None
        return ray, True
    if address != "auto":
        _check_reachable(str(address))
    try:
        ray.init(address=address, **quiet)
    except Exception as exc:
        raise AuditError(f"--ray-address {shown(address)}: cannot join the Ray cluster ({type(exc).__name__}: "
                         f"{shown(str(exc).splitlines()[0] if str(exc) else '', limit=200)})") from None
    return ray, False


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A HOST:PORT that doesn't answer is one line at once (Ray itself retries for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return
    except (OSError, ValueError) as exc:
        raise AuditError(f"--ray-address {shown(address)}: no Ray cluster answers there "
                         f"({shown(getattr(exc, 'strerror', None) or exc, limit=80)})") from None


def _audit_actor(ray: Any) -> Any:
    @ray.remote
    class ModelAuditor:
        """Audits one model at a time (a GPU actor holds its GPU for all the models it audits)."""

        def audit(self, job: NodeJob) -> NodeOutcome:
            return audit_node(job)

    return ModelAuditor


def run_jobs(jobs: Sequence[NodeJob], *, address: str | None, workers: int | None, retries: int,
             num_cpus: int | None = None, on_done: Callable[[NodeOutcome], None] | None = None,
             write_reports: bool = True) -> tuple[list[NodeOutcome], ClusterInfo, Any]:
    """Audit every job on Ray; outcomes in the jobs' order. A model scored by its actor gets its findings (and
    report, with ``write_reports``) from a CPU task submitted at once (``num_cpus=1``; it runs as soon as a CPU
    is free, while the actor scores the next model). Returns the ray handle too (still connected: the caller
    draws the remaining reports, then calls :func:`stop`)."""
    ray, started_here = start(address, num_cpus=num_cpus)
    try:
        resources = ray.cluster_resources()
        gpus, cpus = float(resources.get("GPU", 0.0)), float(resources.get("CPU", 1.0))
        if gpus >= 1:
            n_actors, actor_resources = int(gpus), {"num_gpus": 1, "num_cpus": 1}
        else:
            n_actors, actor_resources = max(1, int(cpus)), {"num_cpus": 1}
        if workers:
            n_actors = min(n_actors, workers)
        n_actors = max(1, min(n_actors, len(jobs)))
        actor_cls = _audit_actor(ray).options(max_restarts=retries, max_task_retries=retries, **actor_resources)
        actors = [actor_cls.remote() for _ in range(n_actors)]
        stats_task = _stats_task(ray, retries)
        stats: dict[int, Any] = {}

        def scored(index: int, outcome: NodeOutcome) -> None:
            if outcome.status != "failed" and outcome.needs_stats:
                stats[index] = stats_task.remote(outcome.run, write_reports)
            if on_done is not None:
                on_done(outcome)

        outcomes = _dispatch(ray, actors, list(jobs), retries=retries, on_done=scored, new_actor=actor_cls.remote)
        for actor in actors:
            ray.kill(actor)  # frees their CPUs for the statistics still waiting
        for index, ref in stats.items():
            outcome = outcomes[index]
            try:
                error = ray.get(ref)
            except Exception as exc:  # a statistics task that died after its retries
                error = f"{type(exc).__name__}"
            if error:
                outcome.status, outcome.reason, outcome.run = "failed", f"statistics: {error}", ""
            outcome.needs_stats = False
        info = ClusterInfo(address="local" if started_here else str(address), gpus=gpus, cpus=cpus,
                           actors=n_actors, actor_resources={k: float(v) for k, v in actor_resources.items()},
                           gcs_address=str(ray.get_runtime_context().gcs_address))
    except BaseException:
        stop(ray, started_here)
        raise
    return outcomes, info, (ray, started_here)


def _stats_task(ray: Any, retries: int) -> Any:
    @ray.remote(num_cpus=1, max_retries=retries)
    def findings_of(run_dir: str, write_report: bool) -> str:
        """A scored run folder's findings (and report): "" on success, else the one-line reason."""
        from albert_audit.api.analyze import analyze_run

        try:
            analyze_run(run_dir, write_report=write_report)
        except AuditError as exc:
            return str(exc).splitlines()[0]
        return ""

    return findings_of


def _dispatch(ray: Any, actors: list[Any], jobs: list[NodeJob], *, retries: int,
              on_done: Callable[[int, NodeOutcome], None] | None, new_actor: Callable[[], Any]) -> list[NodeOutcome]:
    """Give each free actor the next job until every job has an outcome; an actor that exhausted its
    restarts is replaced by a new one (``actors`` is updated in place)."""
    from ray.exceptions import RayActorError, RayError

    queue = list(range(len(jobs)))
    outcomes: dict[int, NodeOutcome] = {}
    pending: dict[Any, tuple[int, Any]] = {}
    idle = list(actors)
    while queue or pending:
        while queue and idle:
            index, actor = queue.pop(0), idle.pop(0)
            pending[actor.audit.remote(jobs[index])] = (index, actor)
        ready, _ = ray.wait(list(pending), num_returns=1)
        ref = ready[0]
        index, actor = pending.pop(ref)
        try:
            outcome = ray.get(ref)
        except RayActorError as exc:
            outcome = NodeOutcome(label=jobs[index].label, status="failed", attempts=retries + 1,
                                  reason=f"worker lost {retries + 1} times ({type(exc).__name__})",
                                  kind=jobs[index].kind)
            actors.remove(actor)
            actor = new_actor()
            actors.append(actor)
        except RayError as exc:
            outcome = NodeOutcome(label=jobs[index].label, status="failed", kind=jobs[index].kind,
                                  reason=f"{type(exc).__name__}: {shown(str(exc).splitlines()[0], limit=200)}")
        outcomes[index] = outcome
        idle.append(actor)
        if on_done is not None:
            on_done(index, outcome)
    return [outcomes[i] for i in range(len(jobs))]


def draw_reports(ray_handle: Any, run_dirs: Sequence[str]) -> dict[str, str]:
    """Draw every run folder's report.html as CPU tasks (num_cpus=1); run dir -> error line of a failed one."""
    ray, _ = ray_handle

    @ray.remote(num_cpus=1, max_retries=2)
    def draw(run_dir: str) -> str:
        from albert_audit.lineage.reports import draw_run_report

        return draw_run_report(run_dir)

    refs = [draw.remote(run_dir) for run_dir in run_dirs]
    errors: dict[str, str] = {}
    for run_dir, ref in zip(run_dirs, refs, strict=True):
        try:
            message = ray.get(ref)
        except Exception as exc:  # a report that can't be drawn is noted; the run folder stays valid
            message = f"{type(exc).__name__}"
        if message:
            errors[run_dir] = message
    return errors


def stop(ray_handle: Any, started_here: bool | None = None) -> None:
    """Disconnect from Ray (``ray.shutdown``): a local instance started by :func:`start` stops with it; a joined
    cluster keeps running. ``ray_handle``: the ``(ray, started_here)`` pair of :func:`run_jobs`, or the module."""
    ray = ray_handle[0] if isinstance(ray_handle, tuple) else ray_handle
    try:
        ray.shutdown()
    except Exception:  # shutting down is best effort
        pass
