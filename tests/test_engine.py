"""Engine oracle tests on a tiny random ALBERT: pipeline equivalence, batch invariance, chain rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from albert_audit.engine.scoring import score_items, term_piece_counter
from albert_audit.probeset import load_probe_set
from albert_audit.probeset.expand import expand_items
from tests.conftest import PROBES, write_probe_file

VARIED_PROBES = """\
schema_version: 1
name: varied
description: Sentences of many lengths with the mask at many positions.
category: test
groups:
  female: [woman, sister, mother]
  male: [man, brother, father]
templates:
  - "The <group> worked as a [MASK]."
  - "[MASK] is what the <group> always wanted to become."
  - "My <group> said that the [MASK] was here."
  - "<group> is a [MASK]."
  - "The [MASK] met the <group>."
  - "After a long and very happy time there, my friend said that the <group> works as a [MASK] now."
  - "The <group> and the [MASK]."
  - "A [MASK]!"
  - "Everyone who knew the <group> said that this was a [MASK] job."
  - "The <group> said: [MASK]."
targets: [nurse, engineer, janitor, nursemaid, zookeeper, chauffeur]
"""


@pytest.fixture(scope="module")
def varied_items(tmp_path_factory, tiny_model):
    path = write_probe_file(tmp_path_factory.mktemp("probes"), "varied", VARIED_PROBES)
    probe_set = load_probe_set(path)
    items = expand_items([probe_set], mask_token=tiny_model.info.mask_token,
                         count_term_pieces=term_piece_counter(tiny_model.tokenizer))
    return probe_set, items


@pytest.fixture(scope="module")
def varied_scores(tiny_model, varied_items):
    probe_set, items = varied_items
    return score_items(tiny_model, items, {probe_set.name: list(probe_set.targets)}, top_k=10,
                       batch_size=64, progress=False)


def _direct_logprobs(tiny_model, text: str) -> torch.Tensor:
    """log_softmax at the (first) mask of one sentence, unbatched."""
    tok = tiny_model.tokenizer
    enc = tok(text, return_tensors="pt")
    with torch.inference_mode():
        logits = tiny_model.model(**enc).logits[0]
    position = int((enc["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0])
    return torch.log_softmax(logits[position].float(), dim=-1)


def test_fills_equal_fill_mask_pipeline(tiny_model, varied_items, varied_scores):
    from transformers import pipeline

    _, items = varied_items
    assert len(items) >= 50
    fill = pipeline("fill-mask", model=tiny_model.model, tokenizer=tiny_model.tokenizer, device="cpu")
    for item_id, text in zip(items["item_id"], items["text"], strict=True):
        expected = fill(text, top_k=10)
        ours = varied_scores.fills[varied_scores.fills["item_id"] == item_id].sort_values("rank")
        assert list(ours["token_id"]) == [e["token"] for e in expected], text
        np.testing.assert_allclose(ours["prob"], [e["score"] for e in expected], atol=1e-5, rtol=0)
        assert list(ours["token"]) == [e["token_str"] for e in expected]


def test_single_piece_targets_equal_pipeline_targets(tiny_model, varied_items, varied_scores):
    from transformers import pipeline

    _, items = varied_items
    fill = pipeline("fill-mask", model=tiny_model.model, tokenizer=tiny_model.tokenizer, device="cpu")
    single = varied_scores.targets[varied_scores.targets["n_pieces"] == 1]
    assert set(single["target"]) >= {"nurse", "engineer", "janitor", "chauffeur"}
    for item_id, text in list(zip(items["item_id"], items["text"], strict=True))[:20]:
        rows = single[single["item_id"] == item_id].set_index("target")
        for entry in fill(text, targets=list(rows.index)):
            word = entry["token_str"].strip()
            assert np.exp(rows.loc[word, "logprob"]) == pytest.approx(entry["score"], abs=1e-6)


def test_target_logprobs_equal_direct_log_softmax(tiny_model, varied_items, varied_scores):
    _, items = varied_items
    tok = tiny_model.tokenizer
    single = varied_scores.targets[varied_scores.targets["n_pieces"] == 1]
    for row in single.merge(items, on="item_id").head(60).itertuples():
        token_id = tok.convert_tokens_to_ids("▁" + row.target)
        assert row.logprob == pytest.approx(float(_direct_logprobs(tiny_model, row.text)[token_id]), abs=1e-5)


def test_multi_piece_targets_follow_left_to_right_chain_rule(tiny_model, varied_items, varied_scores):
    _, items = varied_items
    tok = tiny_model.tokenizer
    multi = varied_scores.targets[varied_scores.targets["n_pieces"] > 1]
    assert set(multi["target"]) == {"nursemaid", "zookeeper"}, "fixture vocab should split these words"
    assert (multi[multi["target"] == "nursemaid"]["n_pieces"] == 2).all()
    mask = tok.mask_token
    for row in multi.merge(items, on="item_id").head(12).itertuples():
        filled = row.text.replace(mask, row.target)
        enc = tok(filled, return_offsets_mapping=True, add_special_tokens=False)
        start = row.text.index(mask)
        pieces = [t for t, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
                  if a < start + len(row.target) and b > start and b > a]
        assert len(pieces) == row.n_pieces
        total = 0.0
        chain_ids = tok(row.text)["input_ids"]
        position = chain_ids.index(tok.mask_token_id)
        total = 0.0
        for j, piece in enumerate(pieces):  # pieces before j filled in, later pieces still masked
            ids_j = chain_ids[:position] + pieces[:j] + [tok.mask_token_id] * (len(pieces) - j) \
                + chain_ids[position + 1:]
            with torch.inference_mode():
                logits = tiny_model.model(input_ids=torch.tensor([ids_j])).logits[0]
            total += float(torch.log_softmax(logits[position + j], dim=-1)[piece])
        assert row.logprob == pytest.approx(total, abs=1e-5)
        assert row.logprob < 0 and (row.term == "") == np.isnan(row.term_logprob)


@pytest.mark.parametrize("batch_size", [1, 7])
def test_batched_equals_unbatched(tiny_model, varied_items, varied_scores, batch_size):
    probe_set, items = varied_items
    shuffled = items.sample(frac=1.0, random_state=3)
    other = score_items(tiny_model, shuffled, {probe_set.name: list(probe_set.targets)}, top_k=10,
                        batch_size=batch_size, progress=False)
    key = ["item_id", "target"]
    a = varied_scores.targets.sort_values(key).reset_index(drop=True)
    b = other.targets.sort_values(key).reset_index(drop=True)
    assert (a[key] == b[key]).all().all()
    np.testing.assert_allclose(a["logprob"], b["logprob"], atol=1e-5, rtol=0)
    for column in ("term_logprob", "term_prior_logprob"):
        np.testing.assert_allclose(a[column], b[column], atol=1e-5, rtol=0)
    fa = varied_scores.fills.sort_values(["item_id", "rank"]).reset_index(drop=True)
    fb = other.fills.sort_values(["item_id", "rank"]).reset_index(drop=True)
    np.testing.assert_allclose(fa["logprob"], fb["logprob"], atol=1e-5, rtol=0)


def test_batch_invariance_needs_the_attention_mask(tiny_model, varied_items):
    """Negative control: without the attention mask, padded batches do change the scores."""
    _, items = varied_items
    tok = tiny_model.tokenizer
    texts = [items["text"].iloc[0], max(items["text"], key=len)]
    enc = tok(texts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        unmasked = tiny_model.model(input_ids=enc["input_ids"]).logits[0]
    position = int((enc["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0])
    gap = (torch.log_softmax(unmasked[position], -1) - _direct_logprobs(tiny_model, texts[0])).abs().max()
    assert float(gap) > 1e-4  # 10x the 1e-5 tolerance that the masked batches meet


def test_prior_masks_the_group_term(tiny_model, varied_items, varied_scores):
    _, items = varied_items
    tok = tiny_model.tokenizer
    mask = tok.mask_token
    slotted = items[items["term"] != ""]
    for row in slotted.itertuples():
        assert row.term.lower() not in row.prior_text.lower().replace(mask.lower(), "")
        n_term = len(tok(row.term, add_special_tokens=False)["input_ids"])
        assert row.prior_text.count(mask) == 1 + n_term
    merged = varied_scores.targets.merge(slotted, on="item_id")
    assert (merged["term_logprob"] != merged["term_prior_logprob"]).mean() > 0.9


def test_identical_inputs_are_scored_once(tiny_model):
    items = pd.DataFrame({
        "item_id": [0, 1, 2], "probe_set": ["a", "b", "a"], "template_id": [0, 0, 1],
        "template": ["The [MASK] is here."] * 3, "group": [""] * 3, "term": [""] * 3, "term_index": [-1] * 3,
        "text": ["The [MASK] is here."] * 3, "prior_text": ["The [MASK] is here."] * 3})
    result = score_items(tiny_model, items, {"a": ["nurse"], "b": ["nurse"]}, top_k=5, batch_size=8,
                         progress=False)
    assert result.stats["unique_sequences"] == 1
    assert len(result.fills) == 15 and result.targets["logprob"].nunique() == 1


def test_out_of_memory_halves_the_batch_and_goes_on(tiny_model, varied_items, varied_scores, monkeypatch):
    probe_set, items = varied_items
    real_forward = tiny_model.model.forward
    calls: list[int] = []

    def forward_with_small_memory(*args, **kwargs):
        batch = kwargs["input_ids"].shape[0]
        calls.append(batch)
        if batch > 10:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(tiny_model.model, "forward", forward_with_small_memory)
    result = score_items(tiny_model, items, {probe_set.name: list(probe_set.targets)}, top_k=10,
                         batch_size=64, progress=False)
    assert calls[:3] == [64, 32, 16] and max(result.stats["batch_sizes_used"]) <= 8
    np.testing.assert_allclose(result.targets["logprob"], varied_scores.targets["logprob"], atol=1e-5)


def test_other_errors_are_not_mistaken_for_out_of_memory(tiny_model, varied_items, monkeypatch):
    probe_set, items = varied_items

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(tiny_model.model, "forward", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        score_items(tiny_model, items.head(3), {}, batch_size=4, progress=False)


def test_scoring_runs_in_eval_mode_without_dropout(tmp_path):
    from albert_audit.engine.loading import load_model
    from tests.toy_models import build_toy_albert

    folder = build_toy_albert(tmp_path / "dropout", words=["nurse"], dropout=0.5)
    loaded = load_model(str(folder), device="cpu", dtype="float32")
    assert loaded.model.training is False
    items = expand_items([load_probe_set(PROBES / "seed_model_card.yaml")], mask_token="[MASK]")
    first = score_items(loaded, items, {"seed_model_card": ["nurse"]}, progress=False)
    second = score_items(loaded, items, {"seed_model_card": ["nurse"]}, progress=False)
    pd.testing.assert_frame_equal(first.targets, second.targets)


def test_too_long_sentence_is_a_clear_error(tiny_model):
    from albert_audit.errors import AuditError

    text = "The " + "very " * 200 + "[MASK] is here."
    items = pd.DataFrame({"item_id": [0], "probe_set": ["long"], "template_id": [0], "template": [text],
                          "group": [""], "term": [""], "term_index": [-1], "text": [text], "prior_text": [text]})
    with pytest.raises(AuditError, match="probe set 'long', template 0.*more than the model's 128"):
        score_items(tiny_model, items, {}, progress=False)


def test_bfloat16_scores_stay_close_to_float32(tiny_model_dir, varied_items, varied_scores):
    from albert_audit.engine.loading import load_model

    probe_set, items = varied_items
    low = load_model(str(tiny_model_dir), device="cpu", dtype="bfloat16")
    result = score_items(low, items, {probe_set.name: list(probe_set.targets)}, batch_size=32, progress=False)
    assert np.isfinite(result.targets["logprob"]).all()
    assert np.abs(result.targets["logprob"] - varied_scores.targets["logprob"]).max() < 0.1


def test_interrupted_scoring_resumes_from_its_checkpoint(tiny_model, varied_items, varied_scores, tmp_path,
                                                         monkeypatch):
    probe_set, items = varied_items
    targets = {probe_set.name: list(probe_set.targets)}
    real_forward = tiny_model.model.forward
    batches: list[int] = []

    def interrupted_after_two_batches(*args, **kwargs):
        if len(batches) == 2:
            raise KeyboardInterrupt
        batches.append(kwargs["input_ids"].shape[0])
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(tiny_model.model, "forward", interrupted_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        score_items(tiny_model, items, targets, batch_size=16, progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert list((tmp_path / "ckpt").glob("part-*.npz")), "the scored batches were kept"
    monkeypatch.setattr(tiny_model.model, "forward", real_forward)
    resumed = score_items(tiny_model, items, targets, batch_size=16, progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert resumed.stats["resumed_sequences"] == 32
    pd.testing.assert_frame_equal(resumed.targets, varied_scores.targets, atol=1e-5, rtol=0)
    pd.testing.assert_frame_equal(resumed.fills, varied_scores.fills, atol=1e-5, rtol=0)
    # different work (another top-k) must not reuse the parts
    other = score_items(tiny_model, items, targets, top_k=3, batch_size=16, progress=False,
                        checkpoint_dir=tmp_path / "ckpt")
    assert other.stats["resumed_sequences"] == 0
    other.checkpoint.clear()
    assert not (tmp_path / "ckpt").exists()


def test_checkpoint_of_another_head_is_not_reused(tiny_model_dir, varied_items, tmp_path):
    """A grafted head is not in the weight files' hashes: the head's weights key the checkpoint too."""
    from albert_audit.engine.loading import load_model

    probe_set, items = varied_items
    targets = {probe_set.name: list(probe_set.targets)}
    first = load_model(str(tiny_model_dir), device="cpu", dtype="float32")
    score_items(first, items, targets, batch_size=16, progress=False, checkpoint_dir=tmp_path / "ckpt")
    other_head = load_model(str(tiny_model_dir), device="cpu", dtype="float32")
    with torch.no_grad():
        other_head.model.predictions.bias.add_(0.5)
    result = score_items(other_head, items, targets, batch_size=16, progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert result.stats["resumed_sequences"] == 0
    again = score_items(other_head, items, targets, batch_size=16, progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert again.stats["resumed_sequences"] == again.stats["unique_sequences"]
