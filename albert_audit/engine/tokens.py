"""Units are what the model sees: templates that tokenize alike, and words the tokenizer can only spell as <unk>.

- ``duplicate_templates``: within a probe set, a template whose items all tokenize to exactly the token
  sequences of an earlier template's items (e.g. a capitalised copy under a lower-casing tokenizer) is the same
  unit twice; counting it twice would inflate n and narrow every interval. Returns which template to merge
  into which; the caller drops the duplicates and warns by name.
- ``unknown_words``: a group term or target that the tokenizer spells, in its sentence, with its unknown token
  (emoji, CJK, zero-width characters under a small vocabulary) is not seen by the model: every such word
  reads the same. Returns them by name with their probe set.

Both tokenize each distinct text once, in one batched tokenizer call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

MERGE_COLUMNS = ["probe_set", "template_id", "into_template_id", "template", "into_template"]
UNKNOWN_COLUMNS = ["probe_set", "kind", "group", "word", "text"]


def _token_ids(tokenizer: Any, texts: list[str]) -> dict[str, tuple[int, ...]]:
    """Each distinct text's token ids (special tokens included), from one batched call."""
    unique = list(dict.fromkeys(texts))
    if not unique:
        return {}
    encoded = tokenizer(unique, add_special_tokens=True)["input_ids"]
    return {text: tuple(ids) for text, ids in zip(unique, encoded, strict=True)}


def duplicate_templates(items: pd.DataFrame, tokenizer: Any) -> pd.DataFrame:
    """Templates whose items tokenize exactly as an earlier template's of the same probe set.

    Two templates match when, fill by fill (group, term_index, term), both ``text`` and ``prior_text``
    give the same token ids. Returns one row per duplicate (columns ``MERGE_COLUMNS``): ``template_id`` is to be
    merged into ``into_template_id``, the lowest template id with the same token sequences; empty when none.
    """
    if items.empty:
        return pd.DataFrame(columns=MERGE_COLUMNS)
    ids = _token_ids(tokenizer, list(items["text"]) + list(items["prior_text"]))
    rows = items[["probe_set", "template_id", "template", "group", "term_index", "term", "text", "prior_text"]]
    rows = rows.sort_values(["probe_set", "template_id", "group", "term_index", "term"], kind="stable")
    fill_keys = [repr((g, i, t, ids[x], ids[p])) for g, i, t, x, p in
                 zip(rows["group"], rows["term_index"], rows["term"], rows["text"], rows["prior_text"], strict=True)]
    fills: dict[tuple[str, int], list[str]] = {}
    template_of: dict[tuple[str, int], str] = {}
    for probe_set, template_id, template, fill in zip(rows["probe_set"], rows["template_id"], rows["template"],
                                                      fill_keys, strict=True):
        key = (str(probe_set), int(template_id))
        fills.setdefault(key, []).append(fill)
        template_of.setdefault(key, str(template))
    first_of: dict[tuple[str, str], int] = {}
    merges = []
    for probe_set, template_id in sorted(fills):
        digest = hashlib.sha256("\n".join(fills[(probe_set, template_id)]).encode("utf-8")).hexdigest()
        into = first_of.setdefault((probe_set, digest), template_id)
        if into != template_id:
            merges.append((probe_set, template_id, into, template_of[(probe_set, template_id)],
                           template_of[(probe_set, into)]))
    return pd.DataFrame(merges, columns=MERGE_COLUMNS).astype({"template_id": "int64", "into_template_id": "int64"})


def _unknown_spans(tokenizer: Any, texts: list[str]) -> dict[str, list[tuple[int, int]]]:
    """For each distinct text, the character spans that the tokenizer turns into its unknown token."""
    unk = tokenizer.unk_token_id
    unique = list(dict.fromkeys(texts))
    if unk is None or not unique:
        return {text: [] for text in unique}
    encoded = tokenizer(unique, add_special_tokens=False, return_offsets_mapping=True)
    spans: dict[str, list[tuple[int, int]]] = {}
    for text, token_ids, offsets in zip(unique, encoded["input_ids"], encoded["offset_mapping"], strict=True):
        spans[text] = [(int(a), int(b)) for tid, (a, b) in zip(token_ids, offsets, strict=True) if tid == unk]
    return spans


def _term_span(text: str, prior_text: str, term: str) -> tuple[int, int] | None:
    """Where ``term`` (or its capitalised form) sits in ``text``: the part that ``prior_text`` masks."""
    for shown in dict.fromkeys((term, term[:1].upper() + term[1:])):
        start = text.find(shown)
        while start >= 0:
            end = start + len(shown)
            tail = len(text) - end
            if prior_text.startswith(text[:start]) and (tail == 0 or prior_text.endswith(text[end:])):
                return start, end
            start = text.find(shown, start + 1)
    return None


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(a < end and b > start for a, b in spans)


def unknown_words(items: pd.DataFrame, targets: dict[str, list[str]], tokenizer: Any,
                  mask_token: str) -> pd.DataFrame:
    """Group terms and targets that the tokenizer spells, in context, with its unknown token.

    A term is checked in every sentence it fills; a target in each template's sentence of its probe set
    (``text`` with the mask replaced by the target). Returns one row per word (columns ``UNKNOWN_COLUMNS``:
    ``kind`` is "term" or "target", ``group`` is the term's group or "", ``text`` the first sentence where it
    became <unk>), in probe set, kind, group and word order; empty when every word is spelled.
    """
    found: dict[tuple[str, str, str, str], str] = {}
    slotted = items[items["term"] != ""]
    spans = _unknown_spans(tokenizer, list(slotted["text"]))
    for probe_set, group, term, text, prior in zip(slotted["probe_set"], slotted["group"], slotted["term"],
                                                   slotted["text"], slotted["prior_text"], strict=True):
        key = (probe_set, "term", group, term)
        if key in found or not spans[text]:
            continue
        where = _term_span(text, prior, term)
        if where is not None and _overlaps(spans[text], *where):
            found[key] = text
    contexts = items.drop_duplicates(["probe_set", "template_id"])[["probe_set", "text"]]
    filled: list[tuple[str, str, str, int]] = []
    for probe_set, text in zip(contexts["probe_set"], contexts["text"], strict=True):
        at = text.find(mask_token)
        if at < 0:
            continue
        for target in dict.fromkeys(targets.get(probe_set, ())):
            filled.append((probe_set, target, text[:at] + target + text[at + len(mask_token):], at))
    target_spans = _unknown_spans(tokenizer, [sentence for _, _, sentence, _ in filled])
    for probe_set, target, sentence, at in filled:
        key = (probe_set, "target", "", target)
        if key not in found and _overlaps(target_spans[sentence], at, at + len(target)):
            found[key] = sentence
    rows = [(*key, text) for key, text in sorted(found.items())]
    table = pd.DataFrame(rows, columns=["probe_set", "kind", "group", "word", "text"])
    return table[UNKNOWN_COLUMNS]


@dataclass(frozen=True)
class TokenView:
    """A loaded tokenizer as :func:`albert_audit.probeset.as_seen.items_as_seen` asks about the items (its
    ``ModelTokens``): duplicate templates, words spelled with the unknown token, a text's pieces."""

    tokenizer: Any
    mask_token: str

    def duplicate_templates(self, items: pd.DataFrame) -> pd.DataFrame:
        return duplicate_templates(items, self.tokenizer)

    def unknown_words(self, items: pd.DataFrame, targets: dict[str, list[str]]) -> pd.DataFrame:
        return unknown_words(items, targets, self.tokenizer, self.mask_token)

    def tokenize(self, text: str) -> Sequence[str]:
        return list(self.tokenizer.tokenize(text))
