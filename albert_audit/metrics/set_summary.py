"""The per-probe-set numbers the report shows, read from a findings table."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from albert_audit.contract import require_columns
from albert_audit.inference.margin_verdicts import VERDICTS
from albert_audit.metrics.core import FINDINGS_COLUMNS


def summarise_bias(findings: pd.DataFrame, *, top_n: int = 5) -> dict[str, dict[str, Any]]:
    """Per probe set with a bias_score row: the numbers the report shows.

    ``{probe_set: {bias_score, ci_low, ci_high, p_value, q_value, verdict, gap_verdicts, n_gap_verdicts,
    share_material, share_significant, n_targets, top_targets: {group: [targets...]}, top_basis, shifts}}``.
    ``verdict`` is the bias score's verdict; ``gap_verdicts`` counts the set's association_gap rows (target x
    group pair) by verdict (every verdict a key) and ``share_material`` is the material share of those with a
    verdict; ``share_significant`` (kept for callers) is the share of the rows with a p-value that are
    significant after FDR. ``top_targets[g]`` lists up to ``top_n`` targets whose *material* gap favours g,
    largest effect first (every group of the set is a key, possibly with an empty list): the association gap,
    or, for a group pair whose group shift is material, the gap beyond the shift (``top_basis`` says which:
    "association gaps" or "gaps beyond the group shift"). ``shifts`` lists the material group shifts as
    ``{group_a, group_b, effect}``. Works on a findings table read back from findings.csv.
    """
    require_columns(findings, FINDINGS_COLUMNS, "findings table")
    out: dict[str, dict[str, Any]] = {}
    text = findings.copy()
    for column in ("probe_set", "metric", "target", "group_a", "group_b", "direction", "verdict"):
        text[column] = text[column].fillna("").astype(str)
    significant = text["significant"].astype(str).str.lower().isin(["true", "1"])
    verdict = text["verdict"]
    for probe_set in pd.unique(text["probe_set"]):
        sub = text[text["probe_set"] == probe_set]
        score = sub[sub["metric"] == "bias_score"]
        if score.empty:
            continue
        first = score.iloc[0]
        gaps = sub[(sub["metric"] == "association_gap")]
        tested = gaps[gaps["p_value"].notna()]
        gap_verdicts = {v: int((verdict.loc[gaps.index] == v).sum()) for v in VERDICTS}
        n_verdicts = sum(gap_verdicts.values())
        shifts = sub[(sub["metric"] == "group_shift") & (verdict.loc[sub.index] == "material")]
        shifted = {(a, b) for a, b in zip(shifts["group_a"], shifts["group_b"], strict=True)}
        pair = list(zip(sub["group_a"], sub["group_b"], strict=True))
        in_shifted = pd.Series([p in shifted for p in pair], index=sub.index)
        basis = sub[((sub["metric"] == "association_gap") & ~in_shifted)
                    | ((sub["metric"] == "gap_beyond_shift") & in_shifted)]
        material = basis[verdict.loc[basis.index] == "material"]
        groups = list(dict.fromkeys([*gaps["group_a"], *gaps["group_b"]]))
        favours: dict[str, dict[str, float]] = {g: {} for g in groups}
        for _, row in material.iterrows():
            effect = float(row["effect"])
            winner = row["group_a"] if effect > 0 else row["group_b"]
            favours.setdefault(winner, {})
            favours[winner][row["target"]] = max(abs(effect), favours[winner].get(row["target"], 0.0))
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
            "verdict": str(verdict.loc[first.name]),
            "gap_verdicts": gap_verdicts,
            "n_gap_verdicts": n_verdicts,
            "share_material": gap_verdicts["material"] / n_verdicts if n_verdicts else math.nan,
            "share_significant": (float(significant.loc[tested.index].mean()) if len(tested) else math.nan),
            "n_targets": int(gaps["target"].nunique()),
            "top_targets": top,
            "top_basis": "gaps beyond the group shift" if shifted else "association gaps",
            "shifts": [{"group_a": str(r["group_a"]), "group_b": str(r["group_b"]), "effect": float(r["effect"])}
                       for _, r in shifts.iterrows()],
        }
    return out
