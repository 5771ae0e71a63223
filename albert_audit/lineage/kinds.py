"""How each kind of descendant is audited: one registration per kind, looked up by :func:`auditor`.

Kinds (``Node.kind``; ``auto`` is decided from the checkpoint by :func:`detect_kind`):

* ``mlm``: the checkpoint has its own masked-language-model head; it is loaded and scored as `run` does.
* ``grafted``: no MLM head and no task head (a bare encoder, or a head stripped): probed through the root
  base's MLM head, grafted on as `compare` does (:mod:`albert_audit.engine.graft`), labelled in every output.
* ``task``: a task head (sequence or token classification, question answering, multiple choice). Task audits
  (the task's own outcome, issue 17) plug in here by registering a :class:`KindAuditor` for ``task`` with
  :func:`register`; until one is registered a task model is refused with one line, which names the
  ``kind: grafted`` way to probe its encoder through the base's head meanwhile.

A registration loads the model for scoring (``load``) and may write extra task findings into the run folder
(``after``); the run folder itself is always written by ``albert_audit.api.run.run_audit``, so every kind
yields the same files, compared and catalogued the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from albert_audit.errors import AuditError, quoted

TASK_ARCHITECTURES = ("ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
                      "ForMultipleChoice")
"""config.json ``architectures`` suffixes of task models."""
TASK_KEY_PREFIXES = ("classifier.", "qa_outputs.", "score.")
"""Weight names (after the encoder prefix) that only a task head has."""


@dataclass(frozen=True)
class LoadRequest:
    """What a kind's loader gets: the model, where the root base is (for a graft) and the loading options."""

    model: str
    revision: str | None
    root_model: str
    root_revision: str | None
    loading: dict[str, Any]
    """Keyword arguments of the engine's loaders (device, dtype, offline, trust_remote_code, allow_pickle)."""


@dataclass(frozen=True)
class KindAuditor:
    """One kind's audit. ``load`` gives ``(loaded model, notes)`` for the MLM audit (`run_audit` with that model,
    pseudo-perplexity first); a kind that writes its run folder its own way (a task audit) gives ``audit``
    instead: called with the LoadRequest and the run's ``AuditConfig`` and ``RunExtras``, it returns the
    ``RunResult``. ``refusal`` (when set) refuses the kind with that line."""

    kind: str
    description: str
    load: Callable[[LoadRequest], tuple[Any, list[str]]] | None = None
    audit: Callable[[LoadRequest, Any, Any], Any] | None = None
    refusal: str | None = None


_AUDITORS: dict[str, KindAuditor] = {}


def register(auditor: KindAuditor) -> None:
    """Register (or replace) the audit of one kind."""
    _AUDITORS[auditor.kind] = auditor


def auditor(kind: str, model: str) -> KindAuditor:
    """The registered audit of ``kind``; AuditError (one line, naming ``model``) when the kind is refused."""
    found = _AUDITORS.get(kind)
    if found is None:
        raise AuditError(f"{quoted(model)}: no audit is registered for kind {quoted(kind)}")
    if found.refusal is not None:
        raise AuditError(f"{quoted(model)}: {found.refusal}")
    return found


def detect_kind(model: str, *, revision: str | None = None, offline: bool = False, allow_pickle: bool = False) -> str:
    """``mlm``, ``grafted`` or ``task`` from the checkpoint's config.json and weight names (nothing loaded)."""
    from albert_audit.engine.graft import checkpoint_keys, has_mlm_head
    from albert_audit.engine.loading import locate_model

    folder = locate_model(model, revision=revision, offline=offline, allow_pickle=allow_pickle)
    if has_mlm_head(folder, allow_pickle=allow_pickle):
        return "mlm"
    if _is_task(folder, checkpoint_keys(folder, allow_pickle=allow_pickle)):
        return "task"
    return "grafted"


def _is_task(folder: Path, keys: set[str]) -> bool:
    from albert_audit.engine.compat import read_config

    architectures = read_config(folder).get("architectures") or []
    if any(isinstance(a, str) and a.endswith(TASK_ARCHITECTURES) for a in architectures):
        return True
    bare = {k.split(".", 1)[1] if k.startswith(("albert.", "bert.", "roberta.")) else k for k in keys}
    return any(k.startswith(TASK_KEY_PREFIXES) for k in bare)


def _load_mlm(request: LoadRequest) -> tuple[Any, list[str]]:
    from albert_audit.engine.loading import load_model

    return load_model(request.model, revision=request.revision, **request.loading), []


def _load_grafted(request: LoadRequest) -> tuple[Any, list[str]]:
    from albert_audit.engine.graft import GRAFT_NOTE, extract_base_head, load_descendant
    from albert_audit.engine.loading import load_model

    root = load_model(request.root_model, revision=request.root_revision, **request.loading)
    head = extract_base_head(root)
    del root
    loaded = load_descendant(request.model, base=head, revision=request.revision, **request.loading)
    notes = []
    if loaded.info.head != "own":
        notes.append(f"{request.model}: {GRAFT_NOTE} ({loaded.info.head}); the descendant's own encoder and word "
                     "embeddings, the base's head weights and output bias")
    return loaded, notes


register(KindAuditor("mlm", "its own masked-language-model head", load=_load_mlm))
register(KindAuditor("grafted", "the root base's MLM head grafted on (as compare does)", load=_load_grafted))
register(KindAuditor(
    "task", "a task head (classification, NLI, QA)",
    refusal="a task model (it has a task head, no MLM head): task audits are not available yet (issue 17); "
            "to probe its encoder through the base's MLM head meanwhile, give it `kind: grafted` in a manifest"))
