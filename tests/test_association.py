"""Kurita et al.'s association (engine/association.py): the group term scored at its masks with the target
filled in vs masked too, against a direct computation (plain torch, one sentence at a time)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

from albert_audit import units
from albert_audit.engine import scoring
from albert_audit.engine.association import agree_article, split_at_term
from albert_audit.engine.scoring import score_items, term_piece_counter
from albert_audit.errors import AuditError
from albert_audit.probeset import load_probe_set
from albert_audit.probeset.articles import indefinite_article
from albert_audit.probeset.expand import expand_items
from tests.conftest import write_probe_file

PROBES = """\
name: kurita
description: Slot before and after the mask, articles before the mask, multi-piece terms and targets.
category: gender
groups:
  female: [woman, stepmother]
  male: [man, stepfather]
templates:
  - "The <group> worked as a [MASK]."
  - "[MASK] is what the <group> always wanted to become."
  - "<group> is a [MASK]."
  - "A [MASK] met the <group> there."
  - "My <group> said that the [MASK] was here."
  - "Hello, [MASK]."
targets: [nurse, engineer, nursemaid, zookeeper]
"""


@pytest.fixture(scope="module")
def kurita(tmp_path_factory, tiny_model):
    path = write_probe_file(tmp_path_factory.mktemp("probes"), "kurita", PROBES)
    probe_set = load_probe_set(path)
    items = expand_items([probe_set], mask_token=tiny_model.info.mask_token,
                         count_term_pieces=term_piece_counter(tiny_model.tokenizer))
    scored = score_items(tiny_model, items, {probe_set.name: list(probe_set.targets)}, top_k=3, batch_size=5,
                         progress=False)
    return probe_set, items, scored


def _pieces(tok, text: str, start: int, length: int) -> list[int]:
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    return [t for t, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
            if a < start + length and b > start and b > a]


def _chain_logprob(model, tok, text: str, run_start_char: int, pieces: list[int]) -> float:
    """Sum over j of log P(piece j | pieces before j filled in, later masked), one forward pass per piece; the
    run of masks is the one starting at character ``run_start_char`` of ``text``."""
    enc = tok(text, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    start = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if a == run_start_char and b > a][0]
    assert ids[start:start + len(pieces)] == [tok.mask_token_id] * len(pieces)
    total = 0.0
    for j in range(len(pieces)):
        seq = ids[:start] + pieces[:j] + ids[start + j:]
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([seq])).logits[0]
        total += float(torch.log_softmax(logits[start + j].float(), dim=-1)[pieces[j]])
    return total


def direct_association(loaded, template: str, term: str, target: str) -> tuple[float, float]:
    """(log P(term | target filled in), log P(term | target masked too)) rebuilt from the template text."""
    tok, model, mask = loaded.tokenizer, loaded.model, loaded.tokenizer.mask_token
    slot = re.search(r"<[^>]+>", template)
    before, after = template[:slot.start()], template[slot.end():]
    shown = term[0].upper() + term[1:] if not before else term
    term_ids = _pieces(tok, before + shown, len(before), len(shown))
    n_term = len(term_ids)

    def fill(segment: str, replacement: str) -> str:
        at = segment.index("[MASK]")
        head = segment[:at]
        m = re.search(r"(^|\s)([Aa]n?) $", head)
        if m:
            article = indefinite_article(target)
            head = head[:m.start(2)] + (article.capitalize() if m.group(2)[0] == "A" else article) + " "
        return head + replacement + segment[at + len("[MASK]"):]

    masks = " ".join([mask] * n_term)
    if "[MASK]" in after:  # term first: its masks start where the template's slot did, in both sentences
        tail = fill(after, target)
        filled = before + masks + tail
        target_at = len(filled) - len(tail) + tail.index(target)
    else:
        head = fill(before, target)
        filled = head + masks + after
        target_at = head.rindex(target)
    n_target = len(_pieces(tok, filled, target_at, len(target)))
    target_masks = " ".join([mask] * n_target)
    prior = filled[:target_at] + target_masks + filled[target_at + len(target):]
    term_in_filled = len(before) if "[MASK]" in after else len(filled) - len(after) - len(masks)
    term_in_prior = len(before) if "[MASK]" in after else len(prior) - len(after) - len(masks)
    return (_chain_logprob(model, tok, filled, term_in_filled, term_ids),
            _chain_logprob(model, tok, prior, term_in_prior, term_ids))


def test_term_scores_match_a_direct_computation(tiny_model, kurita):
    probe_set, items, scored = kurita
    tok = tiny_model.tokenizer
    assert len(tok.tokenize(" stepmother")) > 1 and len(tok.tokenize(" nursemaid")) > 1, "multi-piece fixture"
    merged = scored.targets.merge(items, on="item_id")
    slotted = merged[merged["term"] != ""]
    assert len(slotted) == 5 * 4 * 4
    for row in slotted.itertuples():
        term_lp, prior_lp = direct_association(tiny_model, row.template, row.term, row.target)
        assert row.term_logprob == pytest.approx(term_lp, abs=1e-5), (row.template, row.term, row.target)
        assert row.term_prior_logprob == pytest.approx(prior_lp, abs=1e-5), (row.template, row.term, row.target)
    # the target matters: with the target filled in, the term's probability differs from the prior
    assert (slotted["term_logprob"] != slotted["term_prior_logprob"]).all()


def test_slotless_items_have_no_association(kurita):
    _, items, scored = kurita
    slotless = scored.targets[scored.targets["item_id"].isin(items.loc[items["term"] == "", "item_id"])]
    assert len(slotless) == 4 and slotless["term_logprob"].isna().all() and slotless["term_prior_logprob"].isna().all()
    assert np.isfinite(slotless["logprob"]).all()


def test_association_cells_are_the_new_score(kurita):
    """units' "association" is term_logprob - term_prior_logprob, averaged over a group's terms per template."""
    _, items, scored = kurita
    cells = units.template_cells(items, scored.targets)["association"]
    merged = scored.targets.merge(items, on="item_id")
    row = merged[(merged["template_id"] == 0) & (merged["target"] == "engineer") & (merged["group"] == "female")]
    expected = (row["term_logprob"] - row["term_prior_logprob"]).mean()
    assert cells.loc[("kurita", "engineer", "female"), 0] == pytest.approx(expected, abs=1e-12)
    logprob = units.template_cells(items, scored.targets)["logprob"]
    assert not np.allclose(cells.to_numpy(), logprob.to_numpy() - logprob.to_numpy().mean())


def test_prior_sequences_are_shared_by_targets_of_one_piece_count(tiny_model, kurita):
    """Adding a one-piece target adds only the filled sentences' term chains: its own chain is the item's
    sentence (already read for the top-k) and the prior sentence depends on the target only through its piece
    count (and article), so nurse's priors serve doctor."""
    probe_set, items, _ = kurita
    one = score_items(tiny_model, items, {"kurita": ["nurse"]}, top_k=3, progress=False)
    two = score_items(tiny_model, items, {"kurita": ["nurse", "doctor"]}, top_k=3, progress=False)
    # step j of a term's chain shows its first j pieces: terms sharing them (all terms of one piece count at
    # j = 0; stepmother and stepfather up to "s t e p") share the sequence
    steps = set()
    for row in items[items["term"] != ""].itertuples():
        at = row.text.index(row.term) if row.term in row.text else 0
        pieces = _pieces(tiny_model.tokenizer, row.text, at, len(row.term))
        steps.update((row.template_id, len(pieces), tuple(pieces[:j])) for j in range(len(pieces)))
    expected_new = len(steps)  # doctor's filled sentences' term chains; its own chain and priors are shared
    assert two.stats["unique_sequences"] - one.stats["unique_sequences"] == expected_new


def test_checkpoint_keys_the_association(tiny_model, kurita, tmp_path, monkeypatch):
    """A checkpoint written under the old version (target scored, term masked in the prior) is not reused."""
    probe_set, items, scored = kurita
    targets = {"kurita": ["nurse", "nursemaid"]}
    monkeypatch.setattr(scoring, "CHECKPOINT_VERSION", 1)
    first = score_items(tiny_model, items, targets, top_k=3, progress=False, checkpoint_dir=tmp_path / "ckpt")
    first.checkpoint.flush()
    monkeypatch.setattr(scoring, "CHECKPOINT_VERSION", 2)
    again = score_items(tiny_model, items, targets, top_k=3, progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert again.stats["resumed_sequences"] == 0
    resumed = score_items(tiny_model, items, targets, top_k=3, progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert resumed.stats["resumed_sequences"] == resumed.stats["unique_sequences"]
    for column in ("term_logprob", "term_prior_logprob"):
        np.testing.assert_allclose(resumed.targets[column], again.targets[column], atol=0, rtol=0)


@pytest.mark.parametrize(("before", "target", "expected"), [
    ("worked as a ", "engineer", "worked as an "),
    ("worked as an ", "nurse", "worked as a "),
    ("A ", "engineer", "An "),
    ("An ", "nurse", "A "),
    ("the ", "engineer", "the "),
    ("banana ", "engineer", "banana "),
    ("", "engineer", ""),
])
def test_the_article_before_a_filled_target_agrees_with_it(before, target, expected):
    assert agree_article(before, target) == expected


def test_split_at_term_refuses_an_edited_prior():
    slot = split_at_term("The woman is [MASK].", "The [MASK] is [MASK].", "[MASK]", "x")
    assert (slot.lead, slot.shown, slot.after, slot.n_masks) == ("The ", "woman", " is [MASK].", 1)
    with pytest.raises(AuditError, match="does not mask the term"):
        split_at_term("The woman is [MASK].", "The man is [MASK].", "[MASK]", "x")


def test_targets_columns(kurita):
    _, _, scored = kurita
    assert list(scored.targets.columns) == scoring.TARGET_COLUMNS == [
        "item_id", "target", "n_pieces", "logprob", "term_logprob", "term_prior_logprob"]
    assert pd.api.types.is_float_dtype(scored.targets["term_logprob"])
