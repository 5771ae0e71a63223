"""The items as the model sees them: the expanded items checked against the loaded model's tokenizer.

Templates whose sentences tokenize exactly alike (e.g. capitalised copies under an uncased tokenizer) are one
unit: the later copies are dropped, with a warning naming both. Terms and targets the tokenizer can only spell
with its unknown token are warned about by name (their scores are those of the unknown token), and so are the
probe library's tokenizer-dependent checks (counterpart terms of different piece counts, function-word pieces).

The tokenizer is never loaded or imported here: the engine hands over a :class:`ModelTokens`
(:class:`albert_audit.engine.tokens.TokenView`) that answers these questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pandas as pd

from albert_audit.errors import quoted
from albert_audit.probeset.model import ProbeSet
from albert_audit.probeset.tokenizer_checks import run_time_warnings


class ModelTokens(Protocol):
    """What the loaded model's tokenizer says about the items."""

    mask_token: str

    def duplicate_templates(self, items: pd.DataFrame) -> pd.DataFrame:
        """One row per template that tokenizes as an earlier one (``probe_set, template_id, into_template_id,
        template, into_template``)."""
        ...

    def unknown_words(self, items: pd.DataFrame, targets: dict[str, list[str]]) -> pd.DataFrame:
        """One row per term or target spelled with the unknown token (``probe_set, kind, group, word, text``)."""
        ...

    def tokenize(self, text: str) -> Sequence[str]:
        """The tokenizer's pieces of ``text``."""
        ...


def merge_duplicate_templates(items: pd.DataFrame, tokens: ModelTokens) -> tuple[pd.DataFrame, list[str]]:
    """The items without templates that tokenize as an earlier one (item_id renumbered 0..n-1), and warnings."""
    dups = tokens.duplicate_templates(items)
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


def unknown_word_warnings(items: pd.DataFrame, targets: dict[str, list[str]], tokens: ModelTokens) -> list[str]:
    """One warning per term or target that the tokenizer spells with its unknown token."""
    found = tokens.unknown_words(items, targets)
    return [f"probe set {row.probe_set}: {row.kind} {quoted(row.word)} is spelled with the tokenizer's unknown "
            f"token (e.g. in {quoted(row.text)}); its scores are the unknown token's, not the word's"
            for row in found.itertuples(index=False)]


def items_as_seen(items: pd.DataFrame, probe_sets: list[ProbeSet],
                  tokens: ModelTokens) -> tuple[pd.DataFrame, list[str]]:
    """Items as the model sees them (duplicate templates merged) and every tokenizer-dependent warning."""
    targets = {ps.name: list(ps.targets) for ps in probe_sets}
    items, warnings = merge_duplicate_templates(items, tokens)
    warnings += unknown_word_warnings(items, targets, tokens)
    return items, warnings + run_time_warnings(probe_sets, tokens)
