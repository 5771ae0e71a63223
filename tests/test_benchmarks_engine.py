"""The benchmarks' batching function (dedup, length sorting, padding) and the purity of the benchmarks package."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from albert_audit.errors import AuditError
from tests.benchmark_files import one_torch_thread

_threads = pytest.fixture(scope="module", autouse=True)(one_torch_thread)
PACKAGE = Path(__file__).resolve().parent.parent / "albert_audit" / "benchmarks"


def test_benchmarks_package_never_imports_the_model_side():
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in ("torch", "transformers"), f"{path.name} imports {name}"
                assert not name.startswith("albert_audit.engine"), f"{path.name} imports {name}"


def test_one_loop_dedups_sorts_and_pads(tiny_model, monkeypatch):
    from albert_audit.engine import benchmark_scoring, forward

    calls = []
    real = forward.run_forward

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(benchmark_scoring, "run_forward", spy)
    seqs = [[2, 7, 8, 3], [2, 7, 3], [2, 7, 8, 3], [2, 9, 9, 9, 9, 3], [2, 7, 3]]
    batches = []

    def read(batch, output):
        assert output.last_hidden_state.shape[:2] == batch.input_ids.shape  # the encoder body, no MLM head
        batches.append((list(batch.seqs), tuple(batch.input_ids.shape), list(batch.lengths)))

    index = benchmark_scoring._forward(tiny_model, seqs, read, batch_size=2)
    assert len(calls) == 1                                     # through engine.forward's one loop
    assert index.tolist() == [0, 1, 0, 2, 1]                   # identical sequences run once
    assert [b[0] for b in batches] == [[1, 0], [2]]          # shortest first
    assert batches[0][1] == (2, 4) and batches[0][2] == [3, 4]  # padded to the longest of the batch


def test_forward_unique_is_gone():
    from albert_audit.engine import benchmark_scoring

    assert not hasattr(benchmark_scoring, "forward_unique")


def test_scores_do_not_depend_on_batch_size(tiny_model):
    from albert_audit.engine.benchmark_scoring import encode, masked_token_logprobs, unmasked_token_logprobs

    enc = encode(tiny_model, ["The nurse said that she was happy.", "He works.", "My aunt always wanted a job."])
    seqs = [ids for ids in enc.ids for _ in range(1, len(ids) - 1)]
    positions = [p for ids in enc.ids for p in range(1, len(ids) - 1)]
    one = masked_token_logprobs(tiny_model, seqs, positions, batch_size=1)
    many = masked_token_logprobs(tiny_model, seqs, positions, batch_size=7)
    np.testing.assert_allclose(one, many, atol=1e-5)
    a = unmasked_token_logprobs(tiny_model, enc.ids, batch_size=1)
    b = unmasked_token_logprobs(tiny_model, enc.ids, batch_size=3)
    for x, y, u, v in zip(a.logprobs, b.logprobs, a.attention, b.attention, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5)
        np.testing.assert_allclose(u, v, atol=1e-6)
        assert u.sum() == pytest.approx(1.0)  # the attention received, averaged over queries, sums to 1


def test_bad_batch_size_and_long_text(tiny_model):
    from albert_audit.engine.benchmark_scoring import encode, masked_token_logprobs

    with pytest.raises(AuditError, match="batch-size 0"):
        masked_token_logprobs(tiny_model, [[2, 7, 3]], [1], batch_size=0)
    with pytest.raises(AuditError, match="text 1 is .* tokens long; the model takes at most"):
        encode(tiny_model, ["nurse " * 200])
