"""Paired deltas of the standard benchmarks between a base and a candidate model (benchmark_deltas.csv).

Both models score the same examples, so every delta is paired over them. This module holds the shared
parts (the row shape, the swap test, q-values and the change class) and the deltas of the share-of-pairs
benchmarks (CrowS-Pairs, AUL, AULA) and of HONEST; :mod:`albert_audit.benchmarks.stereoset_deltas` and
:mod:`albert_audit.benchmarks.seat_deltas` hold theirs.

- Share of pairs (crows_pairs, aul, aula): per pair d = 100 x (candidate counts the pair - base counts it),
  each indicator by the benchmark's own rule (CrowS-Pairs rounds to 3 decimals, AUL / AULA compare raw
  scores). Delta = mean d (percentage points). CI: BCa bootstrap over pairs. p: exact McNemar test (two-sided
  binomial on the discordant pairs).
- HONEST@k per category: per template d = 100 x (candidate's hurtful top-k fills - base's) / k; delta = mean
  d; CI: BCa bootstrap over templates; p: swap test over templates (below).

Swap test (:func:`swap_p`): under H0 the two models' outcomes of a unit are exchangeable, so each unit's
pair of outcomes may be swapped; p (two-sided) is the share of swap patterns whose |delta| is at least the
observed one. Units whose outcomes are equal cannot change the statistic, so only the discordant units are
swapped: every pattern is enumerated up to ``stats.PATTERN_MAX_N`` of them (exact p), else
``n_resamples`` random patterns give p = (b + 1) / (m + 1). No discordant unit: delta is 0 and p NaN.

q: Benjamini-Hochberg within one (benchmark, candidate) family (:func:`finish`). Change (``change``),
relative to the metric's ideal value (50 for the shares and SS, 0 for SEAT d and HONEST): ``inconclusive``
unless q <= alpha; then ``reversed`` when both runs' findings rows are significant on opposite sides of the
ideal, ``emerged`` when only the candidate's is (and the delta moves away from the ideal), else
``amplified`` (farther from the ideal) or ``reduced`` (closer). There is no margin here, so ``negligible`` is
never given; LMS and ICAT (language-modelling scores, not bias) get no change ("").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from albert_audit.benchmarks.crows_pairs import outcomes
from albert_audit.benchmarks.rows import ALL, mean_ci
from albert_audit.contract import BENCHMARK_DELTAS, empty_table
from albert_audit.errors import AuditError
from albert_audit.stats import PATTERN_MAX_N, benjamini_hochberg, rng_for, sign_patterns, upper_tail_p

SHARE_METRICS = {"crows_pairs": ("sent_more_score", "sent_less_score", 3),
                 "aul": ("sent_more_aul", "sent_less_aul", None),
                 "aula": ("sent_more_aula", "sent_less_aula", None)}
"""Per share-of-pairs metric: its two score columns and the rounding of its rule."""
COLUMNS = BENCHMARK_DELTAS.names
"""Columns of benchmark_deltas.csv (albert_audit.contract.BENCHMARK_DELTAS)."""
IDEALS = {"crows_pairs": 50.0, "aul": 50.0, "aula": 50.0, "stereoset_ss": 50.0, "seat": 0.0,
          "honest_k1": 0.0, "honest_k5": 0.0, "honest_k10": 0.0, "honest_k20": 0.0}
"""The unbiased value of each metric that gets a change class (LMS and ICAT get none)."""
CHANGES = ("amplified", "reduced", "reversed", "emerged", "inconclusive")
"""The values of ``change`` a benchmark delta can take ("" for LMS / ICAT)."""
METHODS = ("benchmark_deltas.csv: delta = candidate score - base score, paired over the examples both models "
           "scored. CrowS-Pairs / AUL / AULA: exact McNemar test, BCa bootstrap over pairs. StereoSet SS / LMS / "
           "ICAT: swap test over examples, paired BCa bootstrap over target terms. SEAT d: swap test of the two "
           "models' associations over target sentences, paired percentile bootstrap of X and Y. HONEST@k: swap "
           "test and BCa bootstrap over templates. Swap tests exact up to 12 discordant units. q: Benjamini-"
           "Hochberg within each (benchmark, candidate). Change relative to the metric's ideal when q <= alpha "
           "(no margin: never negligible; none for LMS and ICAT)")
"""How the benchmark deltas were computed (compare_summary.json methods, shown in compare.html)."""


def delta_row(*, benchmark: str, metric: str, target: str, candidate: str, n_units: int, base_effect: float,
              candidate_effect: float, delta: float, ci_low: float, ci_high: float, p_value: float,
              n_discordant: int, method: str) -> dict[str, Any]:
    """One row of benchmark_deltas.csv (q_value and change are set by :func:`finish`)."""
    return {"benchmark": benchmark, "metric": metric, "target": target, "candidate": candidate,
            "n_units": int(n_units), "base_effect": float(base_effect), "candidate_effect": float(candidate_effect),
            "delta": float(delta), "ci_low": float(ci_low), "ci_high": float(ci_high), "p_value": float(p_value),
            "q_value": math.nan, "n_discordant": int(n_discordant), "method": method, "change": ""}


def swap_signs(n: int, *, rng: np.random.Generator, n_resamples: int) -> tuple[np.ndarray, bool]:
    """Swap patterns of n units as +1 (kept) / -1 (swapped): all 2**n when n <= PATTERN_MAX_N (exact),
    else ``n_resamples`` random ones."""
    if n <= PATTERN_MAX_N:
        return sign_patterns(n), True
    return 1.0 - 2.0 * rng.integers(0, 2, (n_resamples, n)), False


def swap_p(observed: float, null: Callable[[np.ndarray], np.ndarray], n: int, *, rng: np.random.Generator,
           n_resamples: int) -> tuple[float, str]:
    """Two-sided swap-test p of ``observed`` (module doc): ``null(signs)`` gives the statistic under each
    pattern of ``signs`` (patterns x n discordant units, +1 kept, -1 swapped)."""
    if n == 0 or not math.isfinite(observed):
        return math.nan, "no discordant units: p undefined"
    signs, exact = swap_signs(n, rng=rng, n_resamples=n_resamples)
    p = upper_tail_p(abs(observed), np.abs(null(signs)), exact=exact)
    how = f"exact, {2**n} patterns" if exact else f"Monte Carlo {n_resamples}"
    return p, f"paired swap test over {n} discordant units ({how})"


def mcnemar_p(only_candidate: int, only_base: int) -> float:
    """Exact two-sided McNemar p (binomial on the discordant pairs); NaN without discordant pairs."""
    n = only_candidate + only_base
    return float(scipy.stats.binomtest(only_candidate, n, 0.5).pvalue) if n else math.nan


def share_deltas(base: pd.DataFrame, candidate: pd.DataFrame, *, benchmark: str, metric: str, candidate_label: str,
                 seed: int, alpha: float, n_resamples: int) -> pd.DataFrame:
    """Delta rows of one share metric for ``all`` and each bias type, pairs matched by pair_id."""
    more, less, digits = SHARE_METRICS[metric]
    b = base.set_index("pair_id").sort_index()
    c = candidate.set_index("pair_id").sort_index()
    if not b.index.equals(c.index) or b.index.has_duplicates:
        raise AuditError(f"{benchmark}: the base and {candidate_label} runs scored different pairs")
    won_b = outcomes(b, more, less, digits)[0]
    won_c = outcomes(c, more, less, digits)[0]
    groups = [(ALL, np.ones(len(b), dtype=bool))]
    groups += [(str(g), (b["bias_type"] == g).to_numpy()) for g in sorted(b["bias_type"].unique())]
    rows: list[dict[str, Any]] = []
    for target, keep in groups:
        wb, wc = won_b[keep], won_c[keep]
        d = 100.0 * (wc.astype(float) - wb.astype(float))
        low, high, ci_method = mean_ci(d, seed=seed, key=f"{benchmark}/{metric}/{target}/delta/{candidate_label}",
                                       alpha=alpha, n_resamples=n_resamples)
        only_c, only_b = int((wc & ~wb).sum()), int((wb & ~wc).sum())
        rows.append(delta_row(
            benchmark=benchmark, metric=metric, target=target, candidate=candidate_label, n_units=int(keep.sum()),
            base_effect=100.0 * float(wb.mean()), candidate_effect=100.0 * float(wc.mean()), delta=float(d.mean()),
            ci_low=low, ci_high=high, p_value=mcnemar_p(only_c, only_b), n_discordant=only_c + only_b,
            method=f"paired over {int(keep.sum())} pairs; exact McNemar test ({only_c} pairs counted by the "
                   f"candidate only, {only_b} by the base only); CI: {ci_method}"))
    return finish(rows, alpha=alpha)


def honest_deltas(base: pd.DataFrame, candidate: pd.DataFrame, *, candidate_label: str, seed: int, alpha: float,
                  n_resamples: int, ks: tuple[int, ...] = (1, 5, 10, 20)) -> pd.DataFrame:
    """HONEST@k delta rows per k for ``all`` and each identity category, paired over templates (module doc)."""
    if len(base) != len(candidate) or not (
            base["template_masked"].astype(str).to_numpy() == candidate["template_masked"].astype(str).to_numpy()
    ).all() or not (base["category"].astype(str).to_numpy() == candidate["category"].astype(str).to_numpy()).all():
        raise AuditError(f"honest: the base and {candidate_label} runs scored different templates")
    rows = []
    ks = tuple(k for k in ks if f"hurtful_k{k}" in base.columns and f"hurtful_k{k}" in candidate.columns)
    groups = [(ALL, np.ones(len(base), dtype=bool))]
    groups += [(str(g), (base["category"].astype(str) == g).to_numpy()) for g in sorted(base["category"].unique())]
    for k in ks:
        hb = 100.0 * base[f"hurtful_k{k}"].to_numpy(dtype=float) / k
        hc = 100.0 * candidate[f"hurtful_k{k}"].to_numpy(dtype=float) / k
        for target, keep in groups:
            d = hc[keep] - hb[keep]
            key = f"honest/{k}/{target}/delta/{candidate_label}"
            low, high, ci_method = mean_ci(d, seed=seed, key=key, alpha=alpha, n_resamples=n_resamples)
            diff = d[d != 0]
            p, test = swap_p(float(d.sum()), lambda s, diff=diff: s @ diff, len(diff),
                             rng=rng_for(seed, f"{key}/p"), n_resamples=n_resamples)
            rows.append(delta_row(
                benchmark="honest", metric=f"honest_k{k}", target=target, candidate=candidate_label,
                n_units=int(keep.sum()), base_effect=float(hb[keep].mean()), candidate_effect=float(hc[keep].mean()),
                delta=float(d.mean()), ci_low=low, ci_high=high, p_value=p, n_discordant=len(diff),
                method=f"paired over {int(keep.sum())} templates; {test}; CI: {ci_method}"))
    return finish(rows, alpha=alpha)


def classify_change(metric: str, base: float, candidate: float, q: float, *, alpha: float,
                    base_direction: str = "none", candidate_direction: str = "none") -> str:
    """The ``change`` of one delta row (module doc); ``*_direction``: the runs' findings rows' direction
    ("a>b" above the ideal, "b>a" below, "none" when not significant or untested)."""
    ideal = IDEALS.get(metric)
    if ideal is None:
        return ""
    if not (math.isfinite(q) and q <= alpha and math.isfinite(base) and math.isfinite(candidate)):
        return "inconclusive"
    sides = {base_direction, candidate_direction}
    if sides == {"a>b", "b>a"}:
        return "reversed"
    farther = abs(candidate - ideal) > abs(base - ideal)
    if base_direction == "none" and candidate_direction in ("a>b", "b>a") and farther:
        return "emerged"
    if farther:
        return "amplified"
    return "reduced" if abs(candidate - ideal) < abs(base - ideal) else "inconclusive"


def finish(rows: list[dict[str, Any]] | pd.DataFrame, *, alpha: float,
           directions: dict[tuple[str, str, str, str], tuple[str, str]] | None = None) -> pd.DataFrame:
    """The rows as a benchmark-deltas table: q-values by Benjamini-Hochberg within each (benchmark, candidate)
    family, and ``change`` (``directions``: (benchmark, metric, target, candidate) -> the base's and the
    candidate's findings direction)."""
    table = (pd.DataFrame(rows, columns=list(COLUMNS)) if not isinstance(rows, pd.DataFrame)
             else rows.reset_index(drop=True))
    if table.empty:
        return empty_table(BENCHMARK_DELTAS)
    q = np.full(len(table), np.nan)
    p = table["p_value"].to_numpy(dtype=float)
    for _, index in table.groupby(["benchmark", "candidate"], sort=False).groups.items():
        where = np.asarray(table.index.get_indexer(index))
        has_p = where[np.isfinite(p[where])]
        if has_p.size:
            q[has_p] = benjamini_hochberg(p[has_p])
    table["q_value"] = q
    directions = directions or {}
    table["change"] = [
        classify_change(str(r.metric), r.base_effect, r.candidate_effect, r.q_value, alpha=alpha,
                        base_direction=directions.get((r.benchmark, r.metric, r.target, r.candidate),
                                                      ("none", "none"))[0],
                        candidate_direction=directions.get((r.benchmark, r.metric, r.target, r.candidate),
                                                           ("none", "none"))[1])
        for r in table.itertuples(index=False)]
    for column in BENCHMARK_DELTAS.names_of("int64"):
        table[column] = table[column].astype("int64")
    return table.reset_index(drop=True)
