"""The per-probe-set numbers the report shows, read from a findings table."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from albert_audit.contract import require_columns
from albert_audit.metrics.core import FINDINGS_COLUMNS


def summarise_bias(findings: pd.DataFrame, *, top_n: int = 5) -> dict[str, dict[str, Any]]:
    """Per probe set with a bias_score row: the numbers the report shows.

    ``{probe_set: {bias_score, ci_low, ci_high, p_value, q_value, share_significant, n_targets,
    top_targets: {group: [targets...]}}}``. ``share_significant`` is the share of the set's association_gap
    rows (target x group pair) with a p-value that are significant after FDR; ``top_targets[g]`` lists up to
    ``top_n`` targets whose significant association gap favours g, largest effect first (every group of the
    set is a key, possibly with an empty list). Works on a findings table read back from findings.csv.
    """
    require_columns(findings, FINDINGS_COLUMNS, "findings table")
    out: dict[str, dict[str, Any]] = {}
    text = findings.copy()
    for column in ("probe_set", "metric", "target", "group_a", "group_b", "direction"):
        text[column] = text[column].fillna("").astype(str)
    significant = text["significant"].astype(str).str.lower().isin(["true", "1"])
    for probe_set in pd.unique(text["probe_set"]):
        sub = text[text["probe_set"] == probe_set]
        score = sub[sub["metric"] == "bias_score"]
        if score.empty:
            continue
        first = score.iloc[0]
        gaps = sub[(sub["metric"] == "association_gap")]
        tested = gaps[gaps["p_value"].notna()]
        sig = gaps[significant.loc[gaps.index]]
        groups = list(dict.fromkeys([*gaps["group_a"], *gaps["group_b"]]))
        favours: dict[str, dict[str, float]] = {g: {} for g in groups}
        for _, row in sig.iterrows():
            winner = row["group_a"] if row["direction"] == "a>b" else row["group_b"]
            size = abs(float(row["effect"]))
            favours[winner][row["target"]] = max(size, favours[winner].get(row["target"], 0.0))
        top = {
            g: [t for t, _ in sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]]
            for g, v in favours.items()
        }
        out[str(probe_set)] = {
            "bias_score": float(first["effect"]),
            "ci_low": float(first["ci_low"]),
            "ci_high": float(first["ci_high"]),
            "p_value": float(first["p_value"]),
            "q_value": float(first["q_value"]),
            "share_significant": (float(significant.loc[tested.index].mean()) if len(tested) else math.nan),
            "n_targets": int(gaps["target"].nunique()),
            "top_targets": top,
        }
    return out
