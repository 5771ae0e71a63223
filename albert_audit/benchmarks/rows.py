"""Findings rows of the benchmarks: the shared row shape, share-of-pairs statistics and q within a family.

Every benchmark returns its findings as a table with the columns of :data:`albert_audit.contract.FINDINGS`:
``probe_set`` = the benchmark, ``metric`` = the benchmark's metric id, ``target`` = its subgroup (bias type,
domain, test name, category) or ``all``. Benjamini-Hochberg q-values are computed within one benchmark's
rows (its family), so benchmarks never shift each other or the probe sets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from albert_audit.contract import FINDINGS, empty_table
from albert_audit.stats import benjamini_hochberg, bootstrap_ci_rows, rng_for

ALL = "all"
"""The ``target`` of a benchmark's overall row."""


def finding_row(*, benchmark: str, metric: str, target: str, group_a: str = "", group_b: str = "",
                n_units: int, effect: float, effect_unit: str, ci_low: float = math.nan,
                ci_high: float = math.nan, p_value: float = math.nan, method: str) -> dict[str, Any]:
    """One findings row (q_value, significant and direction are set by :func:`finish`)."""
    return {"probe_set": benchmark, "metric": metric, "target": target, "group_a": group_a, "group_b": group_b,
            "n_units": int(n_units), "effect": float(effect), "effect_unit": effect_unit,
            "ci_low": float(ci_low), "ci_high": float(ci_high), "p_value": float(p_value),
            "q_value": math.nan, "significant": False, "direction": "none", "method": method}


def finish(rows: Sequence[dict[str, Any]], *, alpha: float, ideals: dict[str, float]) -> pd.DataFrame:
    """The rows as a findings table: BH q-values over the rows that have a p-value (one family),
    ``significant = q <= alpha``, and ``direction`` "a>b" / "b>a" for significant rows of metrics with an
    ideal value (effect above / below it), "none" otherwise."""
    if not rows:
        return empty_table(FINDINGS)
    table = pd.DataFrame(list(rows), columns=list(FINDINGS.names))
    p = table["p_value"].to_numpy(dtype=float)
    q = np.full(len(p), np.nan)
    has_p = np.isfinite(p)
    if has_p.any():
        q[has_p] = benjamini_hochberg(p[has_p])
    table["q_value"] = q
    table["significant"] = np.isfinite(q) & (q <= alpha)
    ideal = table["metric"].map(lambda m: ideals.get(m, math.nan)).to_numpy(dtype=float)
    effect = table["effect"].to_numpy(dtype=float)
    direction = np.full(len(table), "none", dtype=object)
    sig = table["significant"].to_numpy() & np.isfinite(ideal)
    direction[sig & (effect > ideal)] = "a>b"
    direction[sig & (effect < ideal)] = "b>a"
    table["direction"] = direction
    for column in FINDINGS.names_of("str"):
        table[column] = table[column].fillna("").astype(object)
    return table


def mean_ci(values: np.ndarray, *, seed: int, key: str, alpha: float, n_resamples: int) -> tuple[float, float, str]:
    """BCa bootstrap interval of the mean of ``values`` (units resampled), level 1 - alpha."""
    low, high, methods = bootstrap_ci_rows(np.asarray(values, dtype=float)[None, :], rng=rng_for(seed, key),
                                           n_resamples=n_resamples, confidence=1.0 - alpha)
    return float(low[0]), float(high[0]), methods[0]


def sign_test_p(wins: int, losses: int) -> tuple[float, str]:
    """Exact two-sided sign test of P(win) = 1/2 among the non-tied pairs (binomial; ties dropped)."""
    n = wins + losses
    if n == 0:
        return math.nan, "no untied pairs: p undefined"
    return float(scipy.stats.binomtest(wins, n, 0.5).pvalue), f"exact sign test vs 50% ({n} untied pairs)"


def share_rows(table: pd.DataFrame, *, benchmark: str, metric: str, group_column: str, wins: str, ties: str,
               group_a: str, group_b: str, seed: int, alpha: float, n_resamples: int,
               note: str = "") -> list[dict[str, Any]]:
    """Rows for a share-of-pairs metric (CrowS-Pairs, AUL): the overall row and one per value of
    ``group_column``. ``wins``/``ties`` are boolean columns; effect = 100 x wins / N (ties stay in N, as
    the reference counts them); CI: bootstrap over pairs; p: exact sign test against 50% on untied pairs."""
    out = []
    groups = [(ALL, table)] + [(str(g), sub) for g, sub in table.groupby(group_column, sort=True)]
    for target, sub in groups:
        won = sub[wins].to_numpy(dtype=bool)
        tied = sub[ties].to_numpy(dtype=bool)
        n = len(sub)
        values = 100.0 * won.astype(float)
        low, high, ci_method = mean_ci(values, seed=seed, key=f"{benchmark}/{metric}/{target}", alpha=alpha,
                                       n_resamples=n_resamples)
        p, test = sign_test_p(int(won.sum()), int(n - won.sum() - tied.sum()))
        method = f"{test}; CI: {ci_method} over {n} pairs; {int(tied.sum())} ties counted in N" + note
        out.append(finding_row(benchmark=benchmark, metric=metric, target=target, group_a=group_a,
                               group_b=group_b, n_units=n, effect=float(values.mean()) if n else math.nan,
                               effect_unit="% pairs", ci_low=low, ci_high=high, p_value=p, method=method))
    return out
