"""The models of a comparison as compare.html names and describes them (from compare_summary.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit.report import fmt

GRAFT_SENTENCE = "probed with the base model's MLM head"


def model_context(entry: dict[str, Any], base_id: str) -> dict[str, Any]:
    """One model's table in the Models section: id, class, head, revision, hashes, utility, run folder."""
    model = entry.get("model") or {}
    utility = entry.get("utility") or {}
    hashes = model.get("weights_sha256") or {}
    head = str(model.get("head") or "own")
    grafted = head.startswith("grafted")
    return {
        "role": entry.get("role", ""),
        "label": fmt.text(entry.get("label")),
        "id": fmt.text(model.get("id")),
        "class": fmt.text(model.get("model_class")),
        "model_type": fmt.text(model.get("model_type")),
        "head": head,
        "grafted": grafted,
        "head_note": f"{GRAFT_SENTENCE} ({head})" if grafted else "own MLM head",
        "revision": fmt.text(model.get("revision")),
        "commit": fmt.text(model.get("commit")),
        "parameters": f"{int(model['num_parameters']):,}" if fmt.finite(model.get("num_parameters")) else "—",
        "device": fmt.text(entry.get("device")),
        "dtype": fmt.text(entry.get("dtype")),
        "weights": [{"file": str(f), "sha256": str(h)} for f, h in hashes.items()] if isinstance(hashes, dict)
        else [],
        "pppl": fmt.number(utility.get("pppl"), keep_tiny=True),
        "run": fmt.text(entry.get("run")),
        "created": fmt.text(entry.get("created_utc")),
        "notes": [str(n) for n in entry.get("notes") or []],
        "base_id": base_id,
    }


def display_name(model_id: str) -> str:
    """A short name for a model in headings and tables: a hub id as it is, a local folder by its last two
    path parts (the full path stays in the Models section and in the files)."""
    path = Path(model_id)
    if path.is_absolute() or model_id.startswith((".", "~")) or len(path.parts) > 2:
        return "/".join(path.parts[-2:])
    return model_id


def shorten_labels(summary: dict[str, Any], deltas: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """Replace long model labels by their display names everywhere the page shows them (if still unique)."""
    entries = [summary.get("base") or {}, *(summary.get("candidates") or [])]
    full = [str(e.get("label")) for e in entries]
    short = {label: display_name(label) for label in full}
    if len(set(short.values())) != len(set(full)):
        return summary, deltas
    summary = {**summary, "base": {**entries[0], "label": short[full[0]]},
               "candidates": [{**e, "label": short[str(e.get("label"))]} for e in entries[1:]],
               "utility": [{**row, "candidate": short.get(str(row.get("candidate")), row.get("candidate"))}
                           for row in summary.get("utility") or []],
               "changes": {short.get(str(k), k): v for k, v in (summary.get("changes") or {}).items()}}
    deltas = deltas.assign(candidate=deltas["candidate"].map(lambda c: short.get(str(c), c)))
    return summary, deltas
