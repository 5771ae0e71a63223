"""SEAT: WEAT effect size and permutation p by hand, loader, and the engine's encodings against a plain loop."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from albert_audit.benchmarks import seat
from albert_audit.errors import AuditError
from albert_audit.stats import rng_for
from tests.benchmark_files import one_torch_thread, shared_data

_threads = pytest.fixture(scope="module", autouse=True)(one_torch_thread)
REAL = shared_data("seat")

TEST = {"targ1": {"category": "Female", "examples": ["She is here.", "The sister is here.", "My aunt is here."]},
        "targ2": {"category": "Male", "examples": ["He is here.", "The brother is here.", "My uncle is here."]},
        "attr1": {"category": "Care", "examples": ["This is a nurse.", "This is a teacher."]},
        "attr2": {"category": "Tech", "examples": ["This is an engineer.", "This is a pilot."]}}


def write_test(folder: Path, name: str = "toy_test", data=TEST) -> Path:
    path = folder / f"{name}.jsonl"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_effect_size_and_exact_p_by_hand():
    s_x, s_y = np.array([1.0, 2.0, 3.0]), np.zeros(3)
    # mean difference 2; sample sd of (1, 2, 3, 0, 0, 0) = sqrt(8 / 5)
    assert seat.effect_size(s_x, s_y) == pytest.approx(2 / math.sqrt(1.6))
    # of the C(6, 3) = 20 re-partitions, only X itself reaches the X-sum 6
    p, method = seat.permutation_p(s_x, s_y, rng=rng_for(0, "t"))
    assert p == pytest.approx(1 / 20) and "exact, 20 partitions" in method
    # ties count: s all equal gives p = 1 and an undefined effect
    assert seat.permutation_p(np.ones(3), np.ones(3), rng=rng_for(0, "t"))[0] == 1.0
    assert math.isnan(seat.effect_size(np.ones(3), np.ones(3)))


def test_associations_by_hand():
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    a = np.array([[1.0, 0.0]])
    b = np.array([[0.0, 1.0], [math.sqrt(0.5), math.sqrt(0.5)]])
    # row 0: cos with A = 1; with B = mean(0, 0.7071); row 1: 0 - mean(1, 0.7071)
    np.testing.assert_allclose(seat.associations(x, a, b), [1 - math.sqrt(0.5) / 2, -(1 + math.sqrt(0.5)) / 2])


def brute_p(s_x: np.ndarray, s_y: np.ndarray) -> float:
    pooled = np.concatenate([s_x, s_y])
    sums = [pooled[list(c)].sum() for c in itertools.combinations(range(len(pooled)), len(s_x))]
    return float(np.mean(np.array(sums) >= s_x.sum() - 1e-12))


def test_exact_and_monte_carlo_p_agree_with_brute_force():
    rng = np.random.default_rng(3)
    s_x, s_y = rng.normal(0.3, 1, 7), rng.normal(0, 1, 7)
    exact, method = seat.permutation_p(s_x, s_y, rng=rng_for(0, "a"), n_samples=5000)
    assert "exact, 3432" in method and exact == pytest.approx(brute_p(s_x, s_y))
    mc, method = seat.permutation_p(s_x, s_y, rng=rng_for(0, "a"), n_samples=3000)  # 3432 > 3000: Monte Carlo
    assert "Monte Carlo 3000" in method and mc == pytest.approx(exact, abs=0.03)


def test_load_and_bad_files(tmp_path):
    write_test(tmp_path)
    write_test(tmp_path, "another")
    tests = seat.load_tests(tmp_path)
    assert [t.name for t in tests] == ["another", "toy_test"]
    assert tests[1].categories["targ1"] == "Female" and tests[1].examples["attr2"][1] == "This is a pilot."
    with pytest.raises(AuditError, match="SEAT folder not found"):
        seat.load_tests(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AuditError, match=r"no SEAT test files"):
        seat.load_tests(empty)
    bad = dict(TEST)
    bad.pop("attr2")
    with pytest.raises(AuditError, match=r"bad.jsonl: missing attr2"):
        seat.load_test(write_test(tmp_path, "bad", bad))
    bad = dict(TEST, attr1={"category": "x", "examples": "nurse"})
    with pytest.raises(AuditError, match=r"attr1.examples must be a non-empty list"):
        seat.load_test(write_test(tmp_path, "bad", bad))
    (tmp_path / "bad.jsonl").unlink()
    (tmp_path / "broken.jsonl").write_text('{"targ1": [', encoding="utf-8")
    with pytest.raises(AuditError, match=r"broken.jsonl: invalid JSON at line 1 column"):
        seat.load_tests(tmp_path)


def test_findings_rows_and_all_row():
    tests = [seat.SeatTest("t1", {"targ1": "F", "targ2": "M", "attr1": "a", "attr2": "b"},
                           {"targ1": ("x1", "x2", "x3"), "targ2": ("y1", "y2", "y3"), "attr1": ("a",),
                            "attr2": ("b",)})]
    table = pd.DataFrame({"test": "t1", "set": ["targ1"] * 3 + ["targ2"] * 3, "category": "",
                          "text": ["x1", "x2", "x3", "y1", "y2", "y3"], "association": [1, 2, 3, 0, 0, 0.0]})
    rows = seat.findings(tests, table, seed=0, alpha=0.1, n_resamples=500).set_index("target")
    assert rows.loc["t1", "effect"] == pytest.approx(2 / math.sqrt(1.6))
    assert rows.loc["t1", "p_value"] == pytest.approx(0.05)
    assert rows.loc["t1", "q_value"] == pytest.approx(0.05) and rows.loc["t1", "significant"]
    assert rows.loc["t1", "direction"] == "a>b" and rows.loc["t1", "group_a"] == "F"
    assert rows.loc["all", "effect"] == pytest.approx(2 / math.sqrt(1.6)) and np.isnan(rows.loc["all", "p_value"])
    assert "90% percentile bootstrap 500" in rows.loc["t1", "method"]


def plain_encoding(loaded, text: str, pooling: str) -> np.ndarray:
    import torch

    ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        hidden = loaded.model.albert(ids).last_hidden_state[0]
    vec = hidden.mean(0) if pooling == "mean" else hidden[0]
    return (vec / vec.norm()).numpy()


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_engine_encodings_equal_plain_loop(tmp_path, tiny_model, pooling):
    from albert_audit.engine.benchmark_scoring import BenchmarkScorer, encode, sentence_encodings

    write_test(tmp_path)
    tests = seat.load_tests(tmp_path)
    texts = seat.texts(tests)
    vectors = sentence_encodings(tiny_model, encode(tiny_model, texts).ids, pooling=pooling, batch_size=3)
    for text, vec in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(vec, plain_encoding(tiny_model, text, pooling), atol=1e-5)
    table = seat.score(tests, BenchmarkScorer(tiny_model), pooling=pooling)
    assert len(table) == 6 and set(table["set"]) == {"targ1", "targ2"}


@pytest.mark.skipif(not REAL.exists(), reason=f"SEAT data not found at {REAL} (CC BY-NC; not shipped)")
def test_real_folder_loads():
    tests = seat.load_tests(REAL)
    assert len(tests) == 50
    weat1 = next(t for t in tests if t.name == "weat1")
    assert weat1.categories["targ1"] == "Flowers" and len(weat1.examples["targ1"]) == 25
