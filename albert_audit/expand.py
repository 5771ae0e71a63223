"""Probe sets -> the items table (one row per masked sentence; columns in docs/data_contract.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pandas as pd

from albert_audit.articles import ARTICLE_SLOT, indefinite_article
from albert_audit.spec import MASK_PLACEHOLDER, ProbeSet, Template

ITEM_COLUMNS = (
    "item_id",
    "probe_set",
    "template_id",
    "template",
    "group",
    "term",
    "term_index",
    "text",
    "prior_text",
)
_INT_COLUMNS = ("item_id", "template_id", "term_index")

TermPieceCounter = Callable[[str, str], int]
"""``count_term_pieces(term, text_before_term) -> number of tokenizer pieces of the term in that context``."""


def _fills(probe_set: ProbeSet, template: Template) -> Iterator[tuple[str, str, int]]:
    """(group, term, term_index) for every fill of a template, in group then term order."""
    if template.slot is None:
        yield "", "", -1
    elif template.slot == "group":
        for group in probe_set.groups:
            for index, term in enumerate(group.terms):
                yield group.name, term, index
    else:
        # An inline slot has one term per group in this template, so its terms pair with each other (0).
        for group, term in zip(probe_set.groups, template.alternatives, strict=True):
            yield group.name, term, 0


def _resolve_article(before: str, term: str) -> str:
    """Replace a trailing ``a(n) `` / ``A(n) `` (right before the slot) with the article ``term`` takes."""
    for written in (ARTICLE_SLOT, ARTICLE_SLOT.capitalize()):
        if before.endswith(written + " "):
            article = indefinite_article(term)
            article = article.capitalize() if written[0].isupper() else article
            return before[: -len(written) - 1] + article + " "
    return before


def expand_items(
    probe_sets: Sequence[ProbeSet],
    *,
    mask_token: str = MASK_PLACEHOLDER,
    count_term_pieces: TermPieceCounter | None = None,
) -> pd.DataFrame:
    """Expand probe sets into the items table, ordered by probe set, template, group and term.

    ``text`` is the template with its slot filled (the term's first letter capitalised when the slot starts
    the template; ``a(n)`` before the slot resolved to the article the term takes) and ``[MASK]`` replaced by
    ``mask_token``. ``prior_text`` is the same sentence with the
    term replaced by one ``mask_token`` per tokenizer piece, as counted by
    ``count_term_pieces(term_as_shown, text_before_term)`` (the text before the term as the model sees it);
    without a counter every term counts as one piece. For a template without a slot ``prior_text == text``.
    """
    cache: dict[tuple[str, str], int] = {}

    def pieces(term: str, before: str) -> int:
        if count_term_pieces is None:
            return 1
        key = (term, before)
        if key not in cache:
            n = int(count_term_pieces(term, before))
            if n < 1:
                raise ValueError(f"count_term_pieces({term!r}, {before!r}) returned {n}; expected >= 1")
            cache[key] = n
        return cache[key]

    rows: dict[str, list[object]] = {column: [] for column in ITEM_COLUMNS}
    for probe_set in probe_sets:
        for template in probe_set.templates:
            before_raw, after_raw = template.split_at_slot()
            before = before_raw.replace(MASK_PLACEHOLDER, mask_token)
            after = after_raw.replace(MASK_PLACEHOLDER, mask_token)
            for group, term, term_index in _fills(probe_set, template):
                if template.slot is None:
                    text = prior_text = before
                else:
                    shown = term[:1].upper() + term[1:] if not before else term
                    lead = _resolve_article(before, term)
                    text = lead + shown + after
                    prior_text = lead + " ".join([mask_token] * pieces(shown, lead)) + after
                rows["item_id"].append(len(rows["item_id"]))
                rows["probe_set"].append(probe_set.name)
                rows["template_id"].append(template.template_id)
                rows["template"].append(template.text)
                rows["group"].append(group)
                rows["term"].append(term)
                rows["term_index"].append(term_index)
                rows["text"].append(text)
                rows["prior_text"].append(prior_text)
    return pd.DataFrame(
        {
            column: pd.Series(values, dtype="int64" if column in _INT_COLUMNS else object)
            for column, values in rows.items()
        },
        columns=list(ITEM_COLUMNS),
    )
