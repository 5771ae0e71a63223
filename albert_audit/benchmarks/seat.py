"""SEAT (May et al. 2019): WEAT effect sizes on sentence encodings, with permutation p-values.

Tests: every ``*.jsonl`` file of a folder in bias-bench's format (one JSON object with ``targ1``, ``targ2``,
``attr1``, ``attr2``, each holding a ``category`` and a list of ``examples``). With cosine similarities of
L2-normalised encodings, s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b);
effect d = (mean_{x in X} s(x) - mean_{y in Y} s(y)) / std_{w in X u Y} s(w) (sample std, ddof 1);
p: one-sided, share of equal-size re-partitions of X u Y whose sum over the new X is at least the observed
one (exact enumeration when C(|X|+|Y|, |X|) <= ``n_samples``, else ``n_samples`` random re-partitions with
p = (b + 1) / (n_samples + 1)). The reference counts only strictly larger partitions; ties count here (a
conservative p). CI: percentile bootstrap of d, resampling X and Y (the attribute sets stay fixed).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from albert_audit.benchmarks.files import read_json
from albert_audit.benchmarks.rows import ALL, finding_row, finish
from albert_audit.benchmarks.scorer import Scorer
from albert_audit.errors import AuditError
from albert_audit.stats import rng_for

BENCHMARK = "seat"
METRIC = "seat"
SETS = ("targ1", "targ2", "attr1", "attr2")
_TIE_RTOL = 1e-9


@dataclass(frozen=True)
class SeatTest:
    """One SEAT test: its name (the file stem), and per set (targ1, targ2, attr1, attr2) category and texts."""

    name: str
    categories: dict[str, str]
    examples: dict[str, tuple[str, ...]]


def load_tests(folder: str | Path) -> list[SeatTest]:
    """Every ``*.jsonl`` test of ``folder`` in name order (an AuditError names a bad file and key)."""
    root = Path(folder)
    if not root.is_dir():
        raise AuditError(f"{root}: SEAT folder not found")
    files = sorted(root.glob("*.jsonl"))
    if not files:
        raise AuditError(f"{root}: no SEAT test files (*.jsonl)")
    return [load_test(path) for path in files]


def load_test(path: str | Path) -> SeatTest:
    """One SEAT test file."""
    data = read_json(path, "SEAT test")
    if not isinstance(data, dict):
        raise AuditError(f"{path}: expected a JSON object with {', '.join(SETS)}")
    categories, examples = {}, {}
    for key in SETS:
        part = data.get(key)
        if not isinstance(part, dict) or "examples" not in part:
            raise AuditError(f"{path}: missing {key} (an object with category and examples)")
        texts = part["examples"]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise AuditError(f"{path}: {key}.examples must be a non-empty list of non-empty strings")
        categories[key] = str(part.get("category", key))
        examples[key] = tuple(texts)
    if len(examples["targ1"]) < 2 or len(examples["targ2"]) < 2:
        raise AuditError(f"{path}: targ1 and targ2 need at least 2 examples each")
    return SeatTest(Path(path).stem, categories, examples)


def texts(tests: Sequence[SeatTest]) -> list[str]:
    """Every distinct text of the tests, in first-seen order (what the engine encodes)."""
    return list(dict.fromkeys(t for test in tests for key in SETS for t in test.examples[key]))


def associations(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """s(w, A, B) for each row w of ``x`` (rows L2-normalised)."""
    return (x @ a.T).mean(axis=1) - (x @ b.T).mean(axis=1)


def effect_size(s_x: np.ndarray, s_y: np.ndarray) -> float:
    """WEAT effect size: difference of means over the sample standard deviation (ddof 1) of X u Y."""
    sd = float(np.std(np.concatenate([s_x, s_y]), ddof=1))
    return (float(np.mean(s_x)) - float(np.mean(s_y))) / sd if sd > 0 else math.nan


def permutation_p(s_x: np.ndarray, s_y: np.ndarray, *, rng: np.random.Generator,
                  n_samples: int = 100_000) -> tuple[float, str]:
    """One-sided permutation p of the X-sum of s over re-partitions of X u Y (sizes kept); see module doc."""
    pooled = np.concatenate([s_x, s_y])
    n, k = len(pooled), len(s_x)
    observed = float(s_x.sum())
    tol = _TIE_RTOL * float(np.abs(pooled).sum())
    total = math.comb(n, k)
    if total <= n_samples:
        hits, step = 0, max(1, 2_000_000 // k)
        combos = itertools.combinations(range(n), k)
        while True:
            block = np.array(list(itertools.islice(combos, step)), dtype=np.int64)
            if block.size == 0:
                break
            hits += int(np.count_nonzero(pooled[block].sum(axis=1) >= observed - tol))
        return hits / total, f"one-sided permutation (exact, {total} partitions)"
    hits = 0
    for start in range(0, n_samples, 10_000):
        m = min(10_000, n_samples - start)
        chosen = np.argsort(rng.random((m, n)), axis=1)[:, :k]
        hits += int(np.count_nonzero(pooled[chosen].sum(axis=1) >= observed - tol))
    return (hits + 1.0) / (n_samples + 1.0), f"one-sided permutation (Monte Carlo {n_samples})"


def bootstrap_effects(s_x: np.ndarray, s_y: np.ndarray, *, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """d on ``n_resamples`` resamples of X and of Y (each with replacement, sizes kept)."""
    ix = rng.integers(0, len(s_x), (n_resamples, len(s_x)))
    iy = rng.integers(0, len(s_y), (n_resamples, len(s_y)))
    bx, by = s_x[ix], s_y[iy]
    pooled = np.concatenate([bx, by], axis=1)
    sd = pooled.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, (bx.mean(axis=1) - by.mean(axis=1)) / sd, np.nan)


def test_table(tests: Sequence[SeatTest], encodings: np.ndarray, encoded_texts: Sequence[str]) -> pd.DataFrame:
    """Per-sentence table of the targets: test, set (targ1/targ2), text and s(w, A, B)."""
    row_of = {t: i for i, t in enumerate(encoded_texts)}
    parts = []
    for test in tests:
        enc = {key: encodings[[row_of[t] for t in test.examples[key]]] for key in SETS}
        for key in ("targ1", "targ2"):
            parts.append(pd.DataFrame({"test": test.name, "set": key, "category": test.categories[key],
                                       "text": list(test.examples[key]),
                                       "association": associations(enc[key], enc["attr1"], enc["attr2"])}))
    return pd.concat(parts, ignore_index=True)


def findings(tests: Sequence[SeatTest], table: pd.DataFrame, *, seed: int, alpha: float = 0.05,
             n_resamples: int = 10_000, n_samples: int = 100_000, pooling: str = "mean") -> pd.DataFrame:
    """One ``seat`` row per test (target = test name; group_a/b = the target categories; ideal d = 0) and an
    ``all`` row with the mean |d| over tests (bias-bench's summary; CI from the tests' bootstrap draws)."""
    rows, draws = [], []
    level = f"{round((1 - alpha) * 100, 6):g}%"
    for test in tests:
        sub = table[table["test"] == test.name]
        s_x = sub.loc[sub["set"] == "targ1", "association"].to_numpy(dtype=float)
        s_y = sub.loc[sub["set"] == "targ2", "association"].to_numpy(dtype=float)
        d = effect_size(s_x, s_y)
        p, test_method = permutation_p(s_x, s_y, rng=rng_for(seed, f"{BENCHMARK}/{test.name}/p"),
                                       n_samples=n_samples)
        boot = bootstrap_effects(s_x, s_y, rng=rng_for(seed, f"{BENCHMARK}/{test.name}/ci"),
                                 n_resamples=n_resamples)
        draws.append(np.abs(boot))
        low, high = _percentile(boot, alpha)
        rows.append(finding_row(
            benchmark=BENCHMARK, metric=METRIC, target=test.name, group_a=test.categories["targ1"],
            group_b=test.categories["targ2"], n_units=len(s_x) + len(s_y), effect=d, effect_unit="d",
            ci_low=low, ci_high=high, p_value=p if math.isfinite(d) else math.nan,
            method=f"{test_method}; CI: {level} percentile bootstrap {n_resamples} of X and Y; "
                   f"encoder: {pooling} of the last hidden layer, L2-normalised"))
    if rows:
        effects = np.array([abs(r["effect"]) for r in rows])
        low, high = _percentile(np.nanmean(np.vstack(draws), axis=0), alpha)
        rows.append(finding_row(
            benchmark=BENCHMARK, metric=METRIC, target=ALL, n_units=len(rows), effect=float(np.nanmean(effects)),
            effect_unit="mean |d|", ci_low=low, ci_high=high,
            method=f"mean |d| over {len(effects)} tests; no test; CI: {level} percentile of the tests' "
                   f"bootstrap draws"))
    return finish(rows, alpha=alpha, ideals={METRIC: 0.0})


def _percentile(values: np.ndarray, alpha: float) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size < 2:
        return math.nan, math.nan
    return float(np.quantile(v, alpha / 2)), float(np.quantile(v, 1 - alpha / 2))


def score(tests: Sequence[SeatTest], scorer: Scorer, *, pooling: str = "mean") -> pd.DataFrame:
    """The per-sentence association table of ``tests``, every distinct text encoded once."""
    encoded_texts = texts(tests)
    vectors = scorer.sentence_encodings(scorer.encode(encoded_texts).ids, pooling=pooling)
    return test_table(tests, vectors, encoded_texts)
