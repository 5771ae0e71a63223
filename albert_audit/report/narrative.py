"""Plain-language sentences of report.html: which findings get one (material first, then significant), and how
each reads (probability ratio with its interval, q, the verdict, the scope, the share of templates).

Where a probe set's group shift (the association gap common to all its targets) is material for a group pair,
that pair's target sentences are worded relative to it, from the gap_beyond_shift rows: "All targets are
1.3x more strongly associated with female terms than with male terms (the group shift); 'nurse' 5.4x more
with female terms beyond that"."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from albert_audit import registry
from albert_audit.report import fmt

TOP_FINDINGS_PER_SET = 3
#: Which significant rows make the plain-language top findings first (lower is preferred).
_SENTENCE_PRIORITY = {"logprob_gap": 0, "association_gap": 1, "gap_beyond_shift": 1, "group_shift": 2,
                      "fill_divergence": 3, "disco": 4, "omnibus": 5}
#: Verdicts as the pages name them, and the order in which findings get a sentence.
VERDICT_LABELS = {"material": "material", "negligible": "negligible", "below_margin": "below the margin",
                  "inconclusive": "inconclusive"}
_VERDICT_RANK = {"material": 0}
SCOPE_TEXT = {"group": "generalises to new terms", "terms": "about these terms"}
"""How the scope reads: a group-scope claim holds for other terms of the groups, a terms-scope claim for the
probe set's own terms only."""


def verdict_phrase(row: pd.Series | dict[str, Any]) -> str:
    """The verdict, margin, scope and share of templates of a signed-gap row, for a sentence ("" otherwise).

    E.g. "material: beyond the 1.25x margin; generalises to new terms; higher after female terms in 14 of
    16 templates".
    """
    verdict = str(row.get("verdict", "") or "")
    if verdict not in VERDICT_LABELS:
        return ""
    margin = fmt.as_float(row.get("margin"))
    parts = [VERDICT_LABELS[verdict]]
    if math.isfinite(margin):
        bound = (f"the {fmt.margin_ratio(margin)} margin" if row.get("effect_unit") == "nats"
                 else f"the margin {fmt.number(margin, 3)}")
        parts[0] += {"material": f": beyond {bound}", "negligible": f": within {bound}",
                     "below_margin": f": differs from 0 but not shown beyond {bound}"}.get(verdict, "")
    scope = SCOPE_TEXT.get(str(row.get("scope", "") or ""))
    if scope:
        parts.append(scope)
    share, n = fmt.as_float(row.get("share_a_gt_b")), fmt.as_float(row.get("n_units"))
    if math.isfinite(share) and math.isfinite(n) and n > 0:
        parts.append(f"{row['group_a']} > {row['group_b']} in {round(share * n):d} of {int(n)} templates")
    return "; ".join(parts)


_LOG_RATIO = ("logprob_gap", "association_gap", "group_shift", "gap_beyond_shift")
"""Metrics whose effect is a log probability ratio (exp(effect) reads as "x times")."""


def _ratio_reading(a: str, b: str, effect: float, low: float, high: float,
                   level: str) -> tuple[str, str, float, str]:
    """(higher group, lower group, ratio >= 1, "95% CI lo–hi") of a log-ratio effect a - b."""
    if effect >= 0:
        higher, lower, ratio, r_low, r_high = a, b, math.exp(effect), math.exp(low), math.exp(high)
    else:
        higher, lower, ratio, r_low, r_high = b, a, math.exp(-effect), math.exp(-high), math.exp(-low)
    ci = (f"{level} {fmt.ratio(r_low)}–{fmt.ratio(r_high)}"
          if math.isfinite(low) and math.isfinite(high) else f"{level} not available")
    return higher, lower, ratio, ci


def shift_of(row: pd.Series | dict[str, Any], rows: pd.DataFrame) -> pd.Series | None:
    """The material group_shift row of ``row``'s probe set and group pair (None when there is none)."""
    if "verdict" not in rows.columns:
        return None
    found = rows[(rows["metric"] == "group_shift") & (rows["verdict"] == "material")
                 & (rows["probe_set"] == row["probe_set"]) & (rows["group_a"] == row["group_a"])
                 & (rows["group_b"] == row["group_b"])]
    return found.iloc[0] if len(found) else None


def finding_sentence(row: pd.Series | dict[str, Any], *, alpha: float = 0.05,
                     shift: pd.Series | dict[str, Any] | None = None) -> str:
    """One plain-language sentence for a (typed) findings row.

    For ``logprob_gap`` the effect is a log-probability difference in nats, so exp(effect) is the ratio of
    probabilities: "'nurse' is 8.2x more likely after female terms than after male terms (95% CI 5.1–12.0,
    q < 0.001)". The sentence always names the higher group first (a negative effect swaps the groups and
    the CI bounds). The interval's level is 1 - alpha. A gap_beyond_shift row is worded relative to
    ``shift``, its pair's material group_shift row, when given.
    """
    metric, target = row["metric"], row["target"]
    a, b, effect = row["group_a"], row["group_b"], fmt.as_float(row["effect"])
    low, high = fmt.as_float(row["ci_low"]), fmt.as_float(row["ci_high"])
    level = fmt.ci_label(alpha)
    q = fmt.q_phrase(row["q_value"])
    if metric in _LOG_RATIO and math.isfinite(effect):
        higher, lower, ratio, ci = _ratio_reading(a, b, effect, low, high, level)
        verdict = verdict_phrase(row)
        tail = f" — {verdict}" if verdict else ""
        if metric == "logprob_gap":
            return (f"'{target}' is {fmt.ratio(ratio)}x more likely after {higher} terms than after "
                    f"{lower} terms ({ci}, {q}){tail}")
        if metric == "association_gap":
            return (f"Relative to its prior, '{target}' is {fmt.ratio(ratio)}x more strongly associated with "
                    f"{higher} terms than with {lower} terms ({ci}, {q}){tail}")
        if metric == "group_shift":
            return (f"All targets are {fmt.ratio(ratio)}x more strongly associated with {higher} terms than with "
                    f"{lower} terms, a group shift common to the whole set ({ci}, {q}){tail}")
        if shift is not None and math.isfinite(fmt.as_float(shift["effect"])):
            s_higher, s_lower, s_ratio, _ = _ratio_reading(a, b, fmt.as_float(shift["effect"]), math.nan,
                                                           math.nan, level)
            return (f"All targets are {fmt.ratio(s_ratio)}x more strongly associated with {s_higher} terms than "
                    f"with {s_lower} terms (the group shift); '{target}' {fmt.ratio(ratio)}x more with {higher} "
                    f"terms beyond that ({ci}, {q}){tail}")
        return (f"Beyond the group shift, '{target}' is {fmt.ratio(ratio)}x more strongly associated with "
                f"{higher} terms than with {lower} terms ({ci}, {q}){tail}")
    unit = f" {row['effect_unit']}" if row["effect_unit"] else ""
    ci = f"{level} {fmt.ci(low, high)}"
    if metric == "fill_divergence":
        where = f" for '{target}'" if target else ""
        return (f"The top fills{where} after {a} terms and after {b} terms differ: Jensen-Shannon divergence "
                f"{fmt.number(effect, 3)}{unit} ({ci}, {q})")
    if metric == "disco":
        return (f"On average {fmt.number(effect)}{unit} of the top-3 fills per template depend on whether "
                f"the sentence names {a} or {b} terms (DisCo-style count, {ci}, {q})")
    if metric == "omnibus":
        if target:
            return f"The association of '{target}' differs across the groups (omnibus test, {q})"
        return f"The scores differ across the groups (omnibus test, {q})"
    subject = f"'{target}', " if target else ""
    return f"{registry.label(metric)}: {subject}{a} vs {b}: {fmt.number(effect)}{unit} ({ci}, {q})"


def top_items(rows: pd.DataFrame, *, alpha: float) -> list[dict[str, str]]:
    """The top findings of a probe set as ``{"text", "verdict", "verdict_label"}`` (the badge beside the text)."""
    return [{"text": finding_sentence(r, alpha=alpha, shift=shift_of(r, rows)),
             "verdict": str(r.get("verdict", "") or ""),
             "verdict_label": VERDICT_LABELS.get(str(r.get("verdict", "") or ""), "")} for r in top_findings(rows)]


def top_findings(rows: pd.DataFrame, *, limit: int = TOP_FINDINGS_PER_SET) -> list[pd.Series]:
    """The rows worth a sentence: material or significant ones; material first, then log-prob gaps first, then
    by q, then by |effect|; one per target. For a group pair whose group shift is material, the targets'
    gaps beyond the shift stand in for their association gaps (the sentence names the shift), the shift gets
    a sentence of its own, and that pair's log-prob gaps (which carry the shift too) come last; otherwise the
    beyond-shift rows are left out (they would repeat the association gaps)."""
    verdict = rows["verdict"] if "verdict" in rows.columns else pd.Series("", index=rows.index)
    material = verdict == "material"
    shifted = {(r["probe_set"], r["group_a"], r["group_b"])
               for _, r in rows[(rows["metric"] == "group_shift") & material].iterrows()}
    in_shifted = pd.Series([key in shifted for key in zip(rows["probe_set"], rows["group_a"], rows["group_b"],
                                                          strict=True)], index=rows.index, dtype=bool)
    relevant = ~(((rows["metric"] == "association_gap") & in_shifted)
                 | ((rows["metric"] == "gap_beyond_shift") & ~in_shifted)
                 | ((rows["metric"] == "group_shift") & ~material))
    candidates = rows[(rows["significant"] | material) & rows["metric"].isin(_SENTENCE_PRIORITY) & relevant
                      & (fmt.finite_mask(rows["effect"]) | (rows["metric"] == "omnibus"))].copy()
    if candidates.empty:
        return []
    candidates["_verdict"] = verdict[candidates.index].map(_VERDICT_RANK).fillna(1)
    # in a shifted pair the log-prob gaps carry the shift too: the shift-relative sentences come first
    candidates["_priority"] = candidates["metric"].map(_SENTENCE_PRIORITY).where(
        ~((candidates["metric"] == "logprob_gap") & in_shifted[candidates.index]), max(_SENTENCE_PRIORITY.values()) + 1)
    candidates["_q"] = candidates["q_value"].fillna(1.0)
    candidates["_size"] = -candidates["effect"].abs().fillna(0.0)
    candidates = candidates.sort_values(["_verdict", "_priority", "_q", "_size"], kind="mergesort")
    chosen: list[pd.Series] = []
    seen: set[tuple[str, ...]] = set()
    for _, row in candidates.iterrows():
        # One sentence per target; set-level rows (no target) once per metric and pair.
        key = (row["target"],) if row["target"] else (row["metric"], row["group_a"], row["group_b"])
        if key in seen:
            continue
        seen.add(key)
        chosen.append(row)
        if len(chosen) == limit:
            break
    return chosen
