"""Tokenizer-dependent checks of a probe set's words, run when the model's tokenizer is known.

The probe files cannot know how a model splits words (the albert-large-v2 vocabulary is not shipped), so
these checks take the tokenizer as a plain callable and return ``PATH: message`` warnings:

- piece-count mismatch: counterpart terms (same position in paired groups) or whole groups whose terms
  split into different numbers of pieces (a 1-piece group against a 3-piece one measures length as much as
  the group);
- function-word first piece: a word whose first piece is a common function word (``asexual`` ->
  ``▁a|sexual``): part of its score is the article's.

Wiring: :func:`run_time_warnings` (called by :func:`albert_audit.probeset.as_seen.items_as_seen` once the model
is loaded) splits each word as it appears after a space, ``tokenizer.tokenize(" " + word)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import mean
from typing import Any

from albert_audit.probeset.model import ProbeSet

Tokenize = Callable[[str], Sequence[str]]
CountPieces = Callable[[str], int]

FUNCTION_WORDS = frozenset(
    "a an the of in on at to for by as is be are was am or and but if so no not it its he she we us me my "
    "his her our you your they them this that".split()
)
"""Words whose appearance as a word's first piece makes its score partly the function word's."""

_MARKERS = "▁Ġ#"  # SentencePiece word start, byte-level BPE space, WordPiece continuation


def _clean(piece: str) -> str:
    return piece.strip(_MARKERS).lower()


def first_piece_function_word(word: str, tokenize: Tokenize) -> str | None:
    """The function word that ``word``'s first piece spells, when the word has more than one piece."""
    pieces = [p for p in tokenize(word) if _clean(p)]
    if len(pieces) < 2:
        return None
    first = _clean(pieces[0])
    return first if first in FUNCTION_WORDS else None


def piece_count_warnings(probe_set: ProbeSet, count_pieces: CountPieces) -> list[str]:
    """Warnings where counterpart terms or groups differ in piece count under ``count_pieces``."""
    counts = {g.name: [int(count_pieces(t)) for t in g.terms] for g in probe_set.groups}
    out: list[str] = []
    if probe_set.pair_terms_by_position and len(probe_set.groups) > 1:
        for i, row in enumerate(zip(*(g.terms for g in probe_set.groups), strict=False)):
            n = [counts[g.name][i] for g in probe_set.groups]
            if len(set(n)) > 1:
                shown = ", ".join(f"{t!r} {c}" for t, c in zip(row, n, strict=True))
                out.append(f"{probe_set.path}: counterpart terms differ in piece count ({shown}); the comparison "
                           "mixes length with group")
    elif len(counts) > 1:
        means = {g: mean(c) for g, c in counts.items() if c}
        if means and max(means.values()) - min(means.values()) >= 0.5:
            shown = ", ".join(f"{g} {m:.1f}" for g, m in means.items())
            out.append(f"{probe_set.path}: groups differ in mean piece count per term ({shown}); the comparison "
                       "mixes length with group")
    return out


def function_word_warnings(probe_set: ProbeSet, tokenize: Tokenize) -> list[str]:
    """Warnings for terms and targets whose first piece is a common function word."""
    words = [t for g in probe_set.groups for t in g.terms] + list(probe_set.targets)
    out = []
    for word in dict.fromkeys(words):
        first = first_piece_function_word(word, tokenize)
        if first is not None:
            pieces = "|".join(tokenize(word))
            out.append(f"{probe_set.path}: {word!r} splits into {pieces}: its first piece is the function word "
                       f"'{first}', so part of its score is that word's")
    return out


def tokenizer_warnings(probe_set: ProbeSet, *, tokenize: Tokenize) -> list[str]:
    """All tokenizer-dependent warnings of one probe set (piece counts, function-word first pieces)."""
    return piece_count_warnings(probe_set, lambda w: len(tokenize(w))) + function_word_warnings(probe_set, tokenize)


def run_time_warnings(probe_sets: Sequence[ProbeSet], tokenizer: Any) -> list[str]:
    """Tokenizer-dependent warnings of every probe set, once the model's tokenizer is loaded.

    Piece-count mismatches between counterpart terms (or groups) and words whose first piece is a function
    word (:func:`tokenizer_warnings`). A word is split as it appears after a space
    (``tokenizer.tokenize(" " + word)``). No torch needed: any object with a ``tokenize`` method works.
    """
    def tokenize(word: str) -> list[str]:
        return list(tokenizer.tokenize(" " + word))

    return [w for probe_set in probe_sets for w in tokenizer_warnings(probe_set, tokenize=tokenize)]
