"""The engine's one forward loop and its read-outs: batching, out-of-memory back-off, pseudo-perplexity oracle."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from albert_audit.engine.forward import (
    DEFAULT_CPU_BATCH,
    DEFAULT_GPU_BATCH,
    Batch,
    SequenceBank,
    resolve_batch_size,
    run_forward,
)
from albert_audit.engine.loading import is_head_key, missing_head_keys
from albert_audit.engine.readouts import MeanPooledHidden
from albert_audit.engine.utility import pseudo_perplexity
from albert_audit.errors import AuditError
from tests.conftest import REPO

#: Lengths differ; two sentences differ in one word only (their masked copies there coincide); one repeats;
#: "zookeeper" and "xylophones" split into several pieces.
SENTENCES = ["The nurse is here.", "The doctor is here.", "My sister always wanted to become a pilot.",
             "The nurse is here.", "A zookeeper played xylophones!", "Hello."]


def oracle_pseudo_loglik(loaded, sentences: list[str]) -> tuple[float, int]:
    """Sum of log P(token | rest) over every non-special token, one masked sentence at a time (plain torch)."""
    tokenizer, model = loaded.tokenizer, loaded.model
    total, n = 0.0, 0
    for sentence in sentences:
        ids = tokenizer(sentence)["input_ids"]
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        for position in range(1, len(ids) - 1):
            masked = list(ids)
            masked[position] = tokenizer.mask_token_id
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([masked])).logits[0, position]
            total += float(torch.log_softmax(logits.double(), dim=-1)[ids[position]])
            n += 1
    return total, n


@pytest.fixture(scope="module")
def oracle(tiny_model):
    return oracle_pseudo_loglik(tiny_model, SENTENCES)


@pytest.mark.parametrize("batch_size", [1, 3, "auto"])
def test_pseudo_perplexity_equals_one_token_at_a_time(tiny_model, oracle, batch_size):
    total, n = oracle
    result = pseudo_perplexity(tiny_model, SENTENCES, batch_size=batch_size)
    assert result["n_tokens"] == n and result["n_sentences"] == len(SENTENCES) and result["sample"] == "custom"
    assert result["mean_logprob"] == pytest.approx(total / n, abs=1e-5)
    assert result["pppl"] == pytest.approx(math.exp(-total / n), rel=1e-5)


def test_pseudo_perplexity_of_one_sentence(tiny_model):
    total, n = oracle_pseudo_loglik(tiny_model, SENTENCES[2:3])
    result = pseudo_perplexity(tiny_model, SENTENCES[2:3], batch_size=2)
    assert result["n_tokens"] == n
    assert result["mean_logprob"] == pytest.approx(total / n, abs=1e-5)


def _forward_limited_to(monkeypatch, loaded, largest: int) -> list[int]:
    """Make the model raise CUDA-style out-of-memory on batches larger than ``largest``; return the calls."""
    real_forward = loaded.model.forward
    calls: list[int] = []

    def forward(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        if kwargs["input_ids"].shape[0] > largest:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(loaded.model, "forward", forward)
    return calls


def test_pseudo_perplexity_halves_the_batch_on_out_of_memory(tiny_model, oracle, monkeypatch):
    calls = _forward_limited_to(monkeypatch, tiny_model, 5)
    result = pseudo_perplexity(tiny_model, SENTENCES, batch_size=40)
    assert calls[:4] == [40, 20, 10, 5] and max(calls[3:]) <= 5
    assert result["mean_logprob"] == pytest.approx(oracle[0] / oracle[1], abs=1e-5)


def test_out_of_memory_at_batch_size_one_is_one_clear_line(tiny_model, monkeypatch):
    _forward_limited_to(monkeypatch, tiny_model, 0)
    with pytest.raises(AuditError) as caught:
        pseudo_perplexity(tiny_model, SENTENCES, batch_size=4)
    message = str(caught.value)
    assert message.startswith("pseudo-perplexity: out of memory on cpu even with batch size 1")
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize("bad", [0, -3, "big", 2.5, True])
def test_bad_batch_sizes_are_refused(tiny_model, bad):
    with pytest.raises(AuditError, match="--batch-size"):
        pseudo_perplexity(tiny_model, SENTENCES, batch_size=bad)


def test_auto_batch_size_is_one_rule_for_every_read_out():
    assert resolve_batch_size("auto", "cuda:1") == DEFAULT_GPU_BATCH == 512
    assert resolve_batch_size("auto", "cpu") == resolve_batch_size("auto", "mps") == DEFAULT_CPU_BATCH == 64
    assert resolve_batch_size(7, "cuda") == 7


def test_empty_input_is_refused(tiny_model):
    with pytest.raises(AuditError, match="no sentences"):
        pseudo_perplexity(tiny_model, [])


def _bank(tiny_model, sentences: list[str]) -> SequenceBank:
    bank = SequenceBank()
    for ids in tiny_model.tokenizer(sentences)["input_ids"]:
        bank.add(ids)
    return bank


def test_the_loop_pads_right_sorts_by_length_and_skips(tiny_model):
    bank = _bank(tiny_model, SENTENCES)
    assert len(bank.sequences) == len(SENTENCES) - 1, "the repeated sentence is kept once"
    seen: list[Batch] = []
    stats = run_forward(tiny_model, bank.sequences, lambda batch, output: seen.append(batch), batch_size=2,
                        skip={0})
    order = [s for batch in seen for s in batch.seqs]
    assert sorted(order) == [1, 2, 3, 4] and stats.skipped == 1 and stats.sizes_used == [2, 2]
    assert [len(bank.sequences[s]) for s in order] == sorted(len(bank.sequences[s]) for s in order)
    pad = tiny_model.tokenizer.pad_token_id
    for batch in seen:
        assert batch.input_ids.shape[1] == max(batch.lengths)
        assert batch.attention_mask.sum(dim=1).tolist() == batch.lengths
        for row, seq in enumerate(batch.seqs):
            assert batch.input_ids[row, :batch.lengths[row]].tolist() == list(bank.sequences[seq])
            assert (batch.input_ids[row, batch.lengths[row]:] == pad).all()


def test_out_of_memory_inside_a_read_out_retries_the_batch(tiny_model):
    bank = _bank(tiny_model, SENTENCES)
    expected = MeanPooledHidden(len(bank.sequences), tiny_model.model.config.hidden_size)
    run_forward(tiny_model, bank.sequences, expected, batch_size=8, model_kwargs=expected.model_kwargs)
    pooled = MeanPooledHidden(len(bank.sequences), tiny_model.model.config.hidden_size)

    def read_out(batch, output):
        if len(batch.seqs) > 1:
            raise RuntimeError("CUDA error: out of memory")
        pooled(batch, output)

    stats = run_forward(tiny_model, bank.sequences, read_out, batch_size=8, model_kwargs=pooled.model_kwargs)
    assert stats.sizes_used == [1] * len(bank.sequences) and stats.batch_size_start == 8
    np.testing.assert_allclose(pooled.vectors, expected.vectors, atol=1e-5, rtol=0)


def test_mean_pooled_hidden_state_equals_a_direct_forward(tiny_model):
    bank = _bank(tiny_model, SENTENCES)
    pooled = MeanPooledHidden(len(bank.sequences), tiny_model.model.config.hidden_size)
    run_forward(tiny_model, bank.sequences, pooled, batch_size=3, model_kwargs=pooled.model_kwargs)
    for seq, ids in enumerate(bank.sequences):
        with torch.no_grad():
            hidden = tiny_model.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[-1]
        np.testing.assert_allclose(pooled.vectors[seq], hidden[0].mean(dim=0).numpy(), atol=1e-5, rtol=0)


def test_head_keys_are_the_weights_outside_the_encoder(tiny_model):
    keys = list(tiny_model.model.state_dict())
    head = [key for key in keys if is_head_key(tiny_model.model, key)]
    assert head and all(key.startswith("predictions.") for key in head)
    assert not is_head_key(tiny_model.model, "albert.embeddings.word_embeddings.weight")
    assert missing_head_keys(tiny_model.model, ["albert.pooler.weight", "predictions.dense.weight",
                                                "predictions.bias"]) == ["predictions.bias",
                                                                         "predictions.dense.weight"]


def test_no_private_name_is_imported_across_modules():
    """``from albert_audit.x import _name`` couples a module to another's internals: make the name public."""
    offenders = []
    for folder in ("albert_audit", "tests", "benchmarks", "scripts"):
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("albert_audit", "tests")):
                    offenders += [f"{Path(path).relative_to(REPO)}:{node.lineno} {alias.name}"
                                  for alias in node.names if alias.name.startswith("_") and alias.name != "__version__"]
    assert offenders == []
