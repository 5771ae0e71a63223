"""Probe sets -> the items table (one row per masked sentence; columns in docs/data_contract.md)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import pandas as pd

from albert_audit.contract import ITEMS
from albert_audit.errors import AuditError
from albert_audit.probeset.articles import ARTICLE_SLOT, indefinite_article
from albert_audit.probeset.model import DEFINITIONAL, MASK_PLACEHOLDER, ProbeSet, Template

ITEM_COLUMNS = ITEMS.names
"""The items table's columns, in order (owned by albert_audit.contract.ITEMS)."""
TARGET_ANNOTATIONS = ("category", "control", "reference_share")
"""The targets-table columns :func:`annotate_targets` adds from the probe sets."""

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


def _reference_shares(probe_set: ProbeSet, keyed_by: str) -> dict[str, float]:
    """The shares of the set's first reference keyed by ``keyed_by`` ("term" or "target"); {} when none."""
    for ref in probe_set.references:
        if ref.keyed_by == keyed_by:
            return ref.as_dict()
    return {}


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
    ``template_tag`` is the template's tag; ``term_reference_share`` the term's share in the set's first
    term-keyed reference (NaN when it has none or the term is not in it); ``group_factors`` the group's
    levels in a crossed set (``"race=black;gender=female"``; "" when the set declares no ``factors``).
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
        term_shares = _reference_shares(probe_set, "term")
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
                rows["template_tag"].append(template.tag)
                rows["term_reference_share"].append(float(term_shares.get(term, math.nan)))
                rows["group_factors"].append(probe_set.group_factors(group))
    return pd.DataFrame(
        {
            column.name: pd.Series(rows[column.name], dtype=object if column.dtype == "str" else column.dtype)
            for column in ITEMS.columns
        },
        columns=list(ITEM_COLUMNS),
    )


def annotate_targets(targets: pd.DataFrame, items: pd.DataFrame, probe_sets: Sequence[ProbeSet]) -> pd.DataFrame:
    """The engine's targets table with the probe sets' per-target columns ``TARGET_ANNOTATIONS`` added:
    ``category`` (as listed; "" for a plain list), ``control`` (a definitional target, a positive control kept
    out of bias scores) and ``reference_share`` (the set's first target-keyed reference; NaN when none)."""
    info: dict[tuple[str, str], tuple[str, bool, float]] = {}
    for probe_set in probe_sets:
        shares = _reference_shares(probe_set, "target")
        for target in probe_set.targets:
            category = probe_set.target_category(target)
            info[(probe_set.name, target)] = (category, category == DEFINITIONAL, float(shares.get(target, math.nan)))
    set_of = dict(zip(items["item_id"].tolist(), items["probe_set"].tolist(), strict=True))
    keys = [(set_of.get(i, ""), str(t)) for i, t in zip(targets["item_id"].tolist(), targets["target"], strict=True)]
    unknown = [k for k in keys if k not in info]
    if unknown:
        raise AuditError(f"targets table: target {unknown[0][1]!r} of probe set {unknown[0][0]!r} is not in the "
                         "probe sets given")
    out = targets.copy()
    out["category"] = pd.Series([info[k][0] for k in keys], index=out.index, dtype=object)
    out["control"] = pd.Series([info[k][1] for k in keys], index=out.index, dtype=bool)
    out["reference_share"] = pd.Series([info[k][2] for k in keys], index=out.index, dtype="float64")
    return out

