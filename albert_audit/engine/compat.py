"""Can two models be compared (or one's MLM head grafted onto the other)? The one owner of that question.

A model is described by its *signature*: ``model_type``, ``hidden_size``, ``embedding_size``, ``vocab_size``,
``num_hidden_layers``, ``num_attention_heads`` (the architecture) and ``tokenizer_size``, ``vocab_sha256`` (the
vocabulary: size and content hash). A signature is read from any of:

- a ``LoadedModel`` or its ``ModelInfo`` (or ``ModelInfo.to_dict()``, i.e. a run's ``summary.json["model"]``);
- a model's config.json content (a dict), optionally with ``tokenizer_size`` and ``vocab_sha256`` added, as
  ``folder_signature`` returns it (before any weights are loaded).

A field missing on either side (an old summary, a config without a tokenizer) is not compared. A
config.json without ``embedding_size`` (BERT-like models) has embeddings as wide as its hidden states.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from albert_audit.engine.loading import (
    LoadedModel,
    held_back_warnings,
    quiet_transformers,
    read_tokenizer,
    vocab_sha256,
)
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
    if isinstance(source, LoadedModel):
        source = source.info
    if is_dataclass(source) and not isinstance(source, type):
        source = asdict(source)
    if not isinstance(source, Mapping):
        raise TypeError(f"signature(): expected a LoadedModel, ModelInfo or dict, got {type(source).__name__}")
    found = {name: source.get(name) for name in SIGNATURE_FIELDS}
    if found["embedding_size"] is None:
        found["embedding_size"] = found["hidden_size"]
    return found


def read_config(folder: Path) -> dict[str, Any]:
    """A model folder's config.json content (one AuditError line if unreadable or not a JSON object)."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AuditError(f"{Path(folder) / 'config.json'}: unreadable config: {exc}") from exc
    if not isinstance(config, dict):
        raise AuditError(f"{Path(folder) / 'config.json'}: must hold a JSON object (model_type, sizes, ...)")
    return config


def vocabulary_fields(folder: Path) -> dict[str, Any]:
    """``tokenizer_size`` and ``vocab_sha256`` of a model folder's tokenizer (no weights are loaded)."""
    with held_back_warnings(), quiet_transformers():
        tokenizer = read_tokenizer(Path(folder))
    return {"tokenizer_size": len(tokenizer), "vocab_sha256": vocab_sha256(tokenizer.get_vocab())}


def folder_signature(folder: Path) -> dict[str, Any]:
    """A model folder's config.json content plus its tokenizer's ``vocabulary_fields``: a full signature source."""
    return {**read_config(folder), **vocabulary_fields(folder)}


def _label(source: Any, fallback: str) -> str:
    if isinstance(source, LoadedModel):
        return source.info.id
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


def check_graftable(base_id: str, base: Any, candidate: Any, *, candidate_id: str) -> None:
    """Refuse grafting the base's MLM head onto a candidate whose shapes or model type differ (always refused).

    ``base`` and ``candidate``: anything ``signature`` reads (typically the two config.json contents).
    """
    found = differences(base, candidate, GRAFT_FIELDS)
    if found:
        raise AuditError(f"cannot graft the MLM head of {quoted(base_id)} onto {quoted(candidate_id)}: {found[0]}; "
                         "the architectures differ")
