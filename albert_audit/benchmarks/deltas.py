"""Paired deltas of the share-of-pairs benchmarks (CrowS-Pairs, AUL, AULA) between a base and a candidate.

Both models score the same pairs, so the comparison is paired over pairs: per pair, d = 100 x (candidate
counts the pair - base counts it) (each indicator as the benchmark's own rule: CrowS-Pairs rounds to 3
decimals, AUL / AULA compare raw scores). Delta = mean d = candidate score - base score (percentage
points). CI: BCa bootstrap over pairs at 1 - alpha. p: exact McNemar test (two-sided binomial on the
discordant pairs: counted by the candidate only vs by the base only). q: Benjamini-Hochberg within one
benchmark, metric and candidate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from albert_audit.benchmarks.crows_pairs import outcomes
from albert_audit.benchmarks.rows import ALL, mean_ci
from albert_audit.errors import AuditError
from albert_audit.stats import benjamini_hochberg

SHARE_METRICS = {"crows_pairs": ("sent_more_score", "sent_less_score", 3),
                 "aul": ("sent_more_aul", "sent_less_aul", None),
                 "aula": ("sent_more_aula", "sent_less_aula", None)}
"""Per share-of-pairs metric: its two score columns and the rounding of its rule."""
COLUMNS = ("benchmark", "metric", "target", "candidate", "n_units", "base_effect", "candidate_effect", "delta",
           "ci_low", "ci_high", "p_value", "q_value", "n_discordant", "method")
"""Columns of benchmark_deltas.csv."""


def mcnemar_p(only_candidate: int, only_base: int) -> float:
    """Exact two-sided McNemar p (binomial on the discordant pairs); NaN without discordant pairs."""
    n = only_candidate + only_base
    return float(scipy.stats.binomtest(only_candidate, n, 0.5).pvalue) if n else math.nan


def share_deltas(base: pd.DataFrame, candidate: pd.DataFrame, *, benchmark: str, metric: str, candidate_label: str,
                 seed: int, alpha: float, n_resamples: int) -> pd.DataFrame:
    """Delta rows (``COLUMNS``) of one share metric for ``all`` and each bias type, pairs matched by pair_id."""
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
        rows.append({"benchmark": benchmark, "metric": metric, "target": target, "candidate": candidate_label,
                     "n_units": int(keep.sum()), "base_effect": 100.0 * float(wb.mean()),
                     "candidate_effect": 100.0 * float(wc.mean()), "delta": float(d.mean()), "ci_low": low,
                     "ci_high": high, "p_value": mcnemar_p(only_c, only_b), "q_value": math.nan,
                     "n_discordant": only_c + only_b,
                     "method": f"paired over {int(keep.sum())} pairs; exact McNemar test ({only_c} pairs counted by "
                               f"the candidate only, {only_b} by the base only); CI: {ci_method}"})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    p = table["p_value"].to_numpy(dtype=float)
    has_p = np.isfinite(p)
    if has_p.any():
        q = np.full(len(p), np.nan)
        q[has_p] = benjamini_hochberg(p[has_p])
        table["q_value"] = q
    return table
