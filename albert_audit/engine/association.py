"""Requests for Kurita et al.'s (2019) association: the group term scored at its mask, target in vs out.

For an item (a sentence with its group term) and a target, two sentences are built from the item's
``prior_text`` (the term's slot masked, one mask per piece of the term):

- *filled*: the template's mask replaced by the target (an ``a``/``an`` right before it made to agree with the
  target, :mod:`albert_audit.probeset.articles`);
- *prior*: the same sentence with the target masked too, one mask per piece of the target in the filled one.

``term_logprob`` is log P(term | filled) and ``term_prior_logprob`` log P(term | prior), the term read at its
masks by the left-to-right chain rule (the same as a multi-piece target: pieces before j filled in, later
ones masked). The association is their difference. The prior sentences depend on the target only through
its piece count, so the forward loop's deduplication scores them once per (item, piece count).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from albert_audit.engine.readouts import PositionRequests
from albert_audit.errors import AuditError
from albert_audit.probeset.articles import indefinite_article

_ARTICLE_BEFORE = re.compile(r"(?:^|(?<=\s))(a|an|A|An|AN) $")


@dataclass(frozen=True)
class TermSlot:
    """An item's sentence cut at its group term: ``lead + shown + after`` is ``text``, ``lead + masks + after``
    is ``prior_text`` (``n_masks`` mask tokens joined by spaces)."""

    lead: str
    shown: str
    after: str
    n_masks: int


def split_at_term(text: str, prior_text: str, mask_token: str, where: str) -> TermSlot:
    """Cut an item at its term by comparing ``text`` (term shown) with ``prior_text`` (term masked)."""
    limit = min(len(text), len(prior_text))
    start = 0
    while start < limit and text[start] == prior_text[start]:
        start += 1
    end = 0
    while end < limit - start and text[-1 - end] == prior_text[-1 - end]:
        end += 1
    middle = prior_text[start:len(prior_text) - end]
    n = middle.count(mask_token)
    if n < 1 or middle != " ".join([mask_token] * n):
        raise AuditError(f"{where}: prior_text {prior_text!r} does not mask the term of {text!r} "
                         "(was the items table edited?)")
    return TermSlot(text[:start], text[start:len(text) - end], text[len(text) - end:], n)


def agree_article(before: str, target: str) -> str:
    """``before`` (the text right before the target) with a trailing ``a ``/``an `` made to agree with it."""
    match = _ARTICLE_BEFORE.search(before)
    if match is None:
        return before
    written = match.group(1)
    article = indefinite_article(target)
    if written[0].isupper():
        article = article.upper() if written.isupper() and len(written) > 1 else article.capitalize()
    return before[:match.start(1)] + article + " "


def fill_target(segment: str, mask_token: str, replacement: str, target: str) -> str:
    """``segment`` with its one mask token replaced by ``replacement`` (the article before it agreeing with
    ``target``)."""
    at = segment.index(mask_token)
    return agree_article(segment[:at], target) + replacement + segment[at + len(mask_token):]


@dataclass(frozen=True)
class _Pair:
    item_id: int
    target: str
    filled: str
    target_at: int  # where the target starts in ``filled``
    slot: TermSlot
    term_first: bool  # the term's slot comes before the target's mask


def _pairs(items: pd.DataFrame, targets: Mapping[str, Sequence[str]], mask_token: str) -> Iterator[_Pair]:
    for row in items.itertuples(index=False):
        if not row.term or not targets.get(row.probe_set):
            continue
        where = f"probe set {row.probe_set!r}, template {row.template_id} ({row.template!r})"
        slot = split_at_term(row.text, row.prior_text, mask_token, where)
        if slot.lead.count(mask_token) + slot.after.count(mask_token) != 1:
            raise AuditError(f"{where}: expected one mask token outside the term in {row.text!r}")
        term_first = mask_token in slot.after
        masks = " ".join([mask_token] * slot.n_masks)
        for target in targets[row.probe_set]:
            if term_first:
                tail = fill_target(slot.after, mask_token, target, target)
                head = slot.lead + masks
                at = len(head) + len(agree_article(slot.after[:slot.after.index(mask_token)], target))
                yield _Pair(int(row.item_id), target, head + tail, at, slot, True)
            else:
                head = fill_target(slot.lead, mask_token, target, target)
                at = len(agree_article(slot.lead[:slot.lead.index(mask_token)], target))
                yield _Pair(int(row.item_id), target, head + masks + slot.after, at, slot, False)


def _term_run(ids: list[int], mask_id: int, n_term: int, term_first: bool, where: str) -> int:
    """Start of the term's run of masks in a tokenized sentence."""
    positions = [i for i, tok in enumerate(ids) if tok == mask_id]
    if len(positions) < n_term:
        raise AuditError(f"{where}: the tokenized sentence lost a mask token (was it cut off?)")
    run = positions[:n_term] if term_first else positions[-n_term:]
    if run != list(range(run[0], run[0] + n_term)):
        raise AuditError(f"{where}: the term's masks are not consecutive after tokenization")
    return run[0]


def _chain(ids: list[int], start: int, pieces: list[int], mask_id: int) -> Iterator[tuple[tuple[int, ...], int, int]]:
    """(sequence, read position, piece id) of the left-to-right chain rule over the run of masks at start."""
    n = len(pieces)
    for j in range(n):
        yield tuple(ids[:start] + pieces[:j] + [mask_id] * (n - j) + ids[start + n:]), start + j, pieces[j]


Requests = dict[tuple[int, str], tuple[list[int], list[int]]]
"""(item_id, target) -> (request indices of the filled sentence's term chain, of the prior's)."""


def request_association(tokenizer: Any, items: pd.DataFrame, targets: Mapping[str, Sequence[str]],
                        bank: PositionRequests, pieces_in_context: Any) -> Requests:
    """Add the association's read-outs to ``bank``: ``{(item_id, target): (filled requests, prior requests)}``.

    ``pieces_in_context(tokenizer, text, start, length)`` gives the token ids of ``text[start:start+length]``
    as the tokenizer splits it there. Items without a group slot get no entry.
    """
    mask_token, mask_id = str(tokenizer.mask_token), int(tokenizer.mask_token_id)
    pairs = list(_pairs(items, targets, mask_token))
    term_pieces: dict[tuple[str, str], list[int]] = {}
    for pair in pairs:
        slot = pair.slot
        key = (slot.lead, slot.shown)
        if key not in term_pieces:
            term_pieces[key] = pieces_in_context(tokenizer, slot.lead + slot.shown, len(slot.lead), len(slot.shown))
            if len(term_pieces[key]) != slot.n_masks:
                raise AuditError(f"the term {slot.shown!r} splits into {len(term_pieces[key])} pieces after "
                                 f"{slot.lead!r}, but its prior_text has {slot.n_masks} masks")
    filled_texts = list(dict.fromkeys(p.filled for p in pairs))
    filled = (dict(zip(filled_texts, _encode(tokenizer, filled_texts, offsets=True), strict=True))
              if filled_texts else {})
    prior_texts: list[str] = []
    for pair in pairs:
        ids, spans = filled[pair.filled]
        start, end = pair.target_at, pair.target_at + len(pair.target)
        n_target = sum(1 for a, b in spans if b > start and a < end and b > a)
        if n_target < 1:
            raise AuditError(f"the tokenizer produced no pieces for {pair.target!r} in {pair.filled!r}")
        prior_texts.append(pair.filled[:start] + " ".join([mask_token] * n_target) + pair.filled[end:])
    unique_priors = list(dict.fromkeys(prior_texts))
    priors = dict(zip(unique_priors, _encode(tokenizer, unique_priors), strict=True)) if unique_priors else {}
    out: Requests = {}
    for pair, prior in zip(pairs, prior_texts, strict=True):
        pieces = term_pieces[(pair.slot.lead, pair.slot.shown)]
        reqs = []
        for sentence, ids in ((pair.filled, filled[pair.filled][0]), (prior, priors[prior][0])):
            start = _term_run(ids, mask_id, len(pieces), pair.term_first, f"item {pair.item_id} ({sentence!r})")
            reqs.append([bank.request_piece(s, p, t) for s, p, t in _chain(ids, start, pieces, mask_id)])
        out[(pair.item_id, pair.target)] = (reqs[0], reqs[1])
    return out


Encoded = tuple[list[int], list[tuple[int, int]]]


def _encode(tokenizer: Any, texts: list[str], *, offsets: bool = False) -> list[Encoded]:
    """Token ids (with the special tokens) of each text and, with ``offsets``, each token's character span."""
    encoded = tokenizer(texts, add_special_tokens=True, return_offsets_mapping=offsets)
    spans = encoded["offset_mapping"] if offsets else [[] for _ in texts]
    return [(list(ids), [tuple(s) for s in span]) for ids, span in zip(encoded["input_ids"], spans, strict=True)]
