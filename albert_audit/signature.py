"""Model signatures and whether two of them can be compared: the one owner of that question, free of torch.

A model is described by its *signature*: ``model_type``, ``hidden_size``, ``embedding_size``, ``vocab_size``,
``num_hidden_layers``, ``num_attention_heads`` (the architecture) and ``tokenizer_size``, ``vocab_sha256`` (the
vocabulary: size and content hash). A signature is read from any of:

- a ``LoadedModel`` (its ``info``) or its ``ModelInfo`` (or ``ModelInfo.to_dict()``, i.e. a run's
  ``summary.json["model"]``), so saved runs are checked the same way as loaded models;
- a model's config.json content (a dict), optionally with ``tokenizer_size`` and ``vocab_sha256`` added, as
  ``albert_audit.engine.compat.folder_signature`` returns it (before any weights are loaded).

A field missing on either side (an old summary, a config without a tokenizer) is not compared. A
config.json without ``embedding_size`` (BERT-like models) has embeddings as wide as its hidden states.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

from albert_audit.errors import AuditError, quoted

ARCHITECTURE_FIELDS = {
    "model_type": "model type",
    "vocab_size": "vocab size",
    "embedding_size": "embedding size",
    "hidden_size": "hidden size",
    "num_hidden_layers": "layers",
    "num_attention_heads": "attention heads",
}
"""Architecture fields of a signature and how a message names them."""
VOCABULARY_FIELDS = {"tokenizer_size": "tokenizer size", "vocab_sha256": "vocabulary (sha256)"}
"""Vocabulary fields of a signature and how a message names them."""
GRAFT_FIELDS = ("model_type", "vocab_size", "embedding_size", "hidden_size", "tokenizer_size", "vocab_sha256")
"""What a grafted MLM head needs to be equal (its weights' shapes and the token ids it predicts)."""
SIGNATURE_FIELDS = (*ARCHITECTURE_FIELDS, *VOCABULARY_FIELDS)


def signature(source: Any) -> dict[str, Any]:
    """The compared fields of a model (see the module docstring); None where the source does not say."""
    if hasattr(source, "info") and is_dataclass(source.info):  # a LoadedModel
        source = source.info
    if is_dataclass(source) and not isinstance(source, type):
        source = asdict(source)
    if not isinstance(source, Mapping):
        raise TypeError(f"signature(): expected a LoadedModel, ModelInfo or dict, got {type(source).__name__}")
    found = {name: source.get(name) for name in SIGNATURE_FIELDS}
    if found["embedding_size"] is None:
        found["embedding_size"] = found["hidden_size"]
    return found


def _label(source: Any, fallback: str) -> str:
    if hasattr(source, "info") and is_dataclass(source.info):  # a LoadedModel
        return str(source.info.id)
    value = getattr(source, "id", None) or (source.get("id") if isinstance(source, Mapping) else None)
    return str(value) if value else fallback


def differences(base: Any, candidate: Any, fields: tuple[str, ...] = SIGNATURE_FIELDS) -> list[str]:
    """One phrase per field that differs, e.g. ``"hidden size 32 (base) vs 48 (candidate)"``, in field order.

    A vocabulary hash is only reported when the sizes agree (different sizes already say it all).
    """
    names = {**ARCHITECTURE_FIELDS, **VOCABULARY_FIELDS}
    b, c = signature(base), signature(candidate)
    found: list[str] = []
    for name in fields:
        if b[name] is None or c[name] is None or b[name] == c[name]:
            continue
        if name == "vocab_sha256":
            if "tokenizer_size" in fields and b["tokenizer_size"] != c["tokenizer_size"]:
                continue
            found.append(f"{names[name]} {str(b[name])[:12]} (base) vs {str(c[name])[:12]} (candidate): same size, "
                         "other tokens")
        elif name == "model_type":
            found.append(f"{names[name]} {b[name]!r} (base) vs {c[name]!r} (candidate)")
        else:
            found.append(f"{names[name]} {b[name]} (base) vs {c[name]} (candidate)")
    return found


def check_compatible(base: Any, candidate: Any, *, allow_different: bool, base_id: str | None = None,
                     candidate_id: str | None = None) -> list[str]:
    """Refuse a candidate whose architecture or vocabulary differs from the base's, unless ``allow_different``.

    ``base`` and ``candidate``: anything ``signature`` reads (LoadedModel, ModelInfo, summary["model"],
    config.json content, ``folder_signature``). Refused: one AuditError line naming every difference.
    Allowed: returns one note per difference (``"<candidate>: hidden size 32 (base) vs 48 (candidate)"``) for
    the run's notes and report; an empty list when the two match.
    """
    found = differences(base, candidate)
    if not found:
        return []
    base_name = base_id or _label(base, "the base")
    candidate_name = candidate_id or _label(candidate, "the candidate")
    if not allow_different:
        raise AuditError(f"the candidate {quoted(candidate_name)} differs from the base {quoted(base_name)}: "
                         f"{'; '.join(found)}; pass --allow-different-architecture to compare them anyway")
    return [f"{candidate_name}: {difference}" for difference in found]
