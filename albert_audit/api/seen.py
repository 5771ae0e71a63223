"""Units are what the model sees: checks of the expanded items against the loaded model's tokenizer.

Templates whose sentences tokenize exactly alike (e.g. capitalised copies under an uncased tokenizer) are one
unit: the later copies are dropped, with a warning naming both. Terms and targets the tokenizer can only spell
with its unknown token are warned about by name (their scores are those of the unknown token), and so are the
probe library's tokenizer-dependent checks (counterpart terms of different piece counts, function-word pieces).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from albert_audit.errors import quoted
from albert_audit.probeset.expand import run_time_warnings
from albert_audit.probeset.spec import ProbeSet


def merge_duplicate_templates(items: pd.DataFrame, tokenizer: Any) -> tuple[pd.DataFrame, list[str]]:
    """The items without templates that tokenize as an earlier one (item_id renumbered 0..n-1), and warnings."""
    from albert_audit.engine.tokens import duplicate_templates

    dups = duplicate_templates(items, tokenizer)
    if dups.empty:
        return items, []
    warnings = [f"probe set {row.probe_set}: template {row.template_id} {quoted(row.template)} reads exactly as "
                f"template {row.into_template_id} {quoted(row.into_template)} for this tokenizer; counted once"
                for row in dups.itertuples(index=False)]
    drop = pd.MultiIndex.from_frame(dups[["probe_set", "template_id"]])
    keep = ~pd.MultiIndex.from_frame(items[["probe_set", "template_id"]]).isin(drop)
    kept = items[keep].reset_index(drop=True)
    kept["item_id"] = range(len(kept))
    return kept, warnings


def unknown_word_warnings(items: pd.DataFrame, targets: dict[str, list[str]], tokenizer: Any,
                          mask_token: str) -> list[str]:
    """One warning per term or target that the tokenizer spells with its unknown token."""
    from albert_audit.engine.tokens import unknown_words

    found = unknown_words(items, targets, tokenizer, mask_token)
    return [f"probe set {row.probe_set}: {row.kind} {quoted(row.word)} is spelled with the tokenizer's unknown "
            f"token (e.g. in {quoted(row.text)}); its scores are the unknown token's, not the word's"
            for row in found.itertuples(index=False)]


def check_items(items: pd.DataFrame, probe_sets: list[ProbeSet], loaded: Any) -> tuple[pd.DataFrame, list[str]]:
    """Items as the model sees them and every tokenizer-dependent warning."""
    targets = {ps.name: list(ps.targets) for ps in probe_sets}
    items, warnings = merge_duplicate_templates(items, loaded.tokenizer)
    warnings += unknown_word_warnings(items, targets, loaded.tokenizer, loaded.info.mask_token)
    return items, warnings + run_time_warnings(probe_sets, loaded.tokenizer)
