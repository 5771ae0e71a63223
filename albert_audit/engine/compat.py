"""Reading a model folder's signature before its weights load, and grafting checks (the comparison of
signatures is :mod:`albert_audit.signature`, re-exported here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from albert_audit.engine.loading import held_back_warnings, quiet_transformers, read_tokenizer, vocab_sha256
from albert_audit.errors import AuditError, quoted
from albert_audit.signature import (
    ARCHITECTURE_FIELDS,
    GRAFT_FIELDS,
    SIGNATURE_FIELDS,
    VOCABULARY_FIELDS,
    check_compatible,
    differences,
    signature,
)

__all__ = ["ARCHITECTURE_FIELDS", "GRAFT_FIELDS", "SIGNATURE_FIELDS", "VOCABULARY_FIELDS", "check_compatible",
           "check_graftable", "differences", "folder_signature", "read_config", "signature", "vocabulary_fields"]


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


def check_graftable(base_id: str, base: Any, candidate: Any, *, candidate_id: str) -> None:
    """Refuse grafting the base's MLM head onto a candidate whose shapes or model type differ (always refused).

    ``base`` and ``candidate``: anything ``signature`` reads (typically the two config.json contents).
    """
    found = differences(base, candidate, GRAFT_FIELDS)
    if found:
        raise AuditError(f"cannot graft the MLM head of {quoted(base_id)} onto {quoted(candidate_id)}: {found[0]}; "
                         "the architectures differ")
