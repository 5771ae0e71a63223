"""The reference-alignment part of a probe set's section in report.html: one sentence and one chart.

The sentence reads the findings row of ``reference_alignment`` (slope, CI, p) and names the verdict by the rule
of :func:`albert_audit.inference.reference_slope.verdict` (where the slope's 1 - alpha CI lies): **inverts** (CI
below 0), **exceeds** (CI above 1), **attenuates** (CI between 0 and 1), **tracks** (CI above 0 and including 1),
**inconclusive** (CI includes 0); before these, **flat** (CI within ± ``FLAT_SLOPE`` = 0.051 nats per logit:
the skew moves by less than log 1.25 between reference shares of 10% and 90%). The chart
(:func:`albert_audit.report.run_figures.alignment_chart`) shows the words the row fits
(:func:`albert_audit.metrics.reference_alignment.points`).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from albert_audit.inference.reference_slope import FLAT_SLOPE, verdict
from albert_audit.report import fmt
from albert_audit.report.run_figures import alignment_chart

METRIC = "reference_alignment"
VERDICT_TEXT = {
    "tracks": "it tracks the reference",
    "exceeds": "it exceeds the reference (amplifies it)",
    "attenuates": "it follows the reference but attenuates it",
    "inverts": "it inverts the reference",
    "inconclusive": "whether it tracks, exceeds or inverts the reference is inconclusive",
    "flat": "it is flat: from a share of 10% to one of 90% the skew moves by less than log 1.25",
}
"""The sentence's conclusion per verdict."""
WHERE_TEXT = {
    "tracks": "above 0 and includes 1",
    "exceeds": "above 1",
    "attenuates": "between 0 and 1",
    "inverts": "below 0",
    "inconclusive": "includes 0",
    "flat": f"within ± {FLAT_SLOPE:.3f}",
}
"""Where the slope's interval lies, per verdict (the rule)."""


def alignment_sentence(row: pd.Series | dict[str, Any], *, alpha: float, n_words: int | None = None) -> str:
    """One sentence for a (typed) reference_alignment findings row, e.g. "The model's skew (female − male)
    grows 0.80 nats per logit of the reference share: it tracks the reference (95% CI of the slope 0.52 to
    1.31, above 0 and includes 1; p = 0.002; 53 words)."."""
    slope = fmt.as_float(row["effect"])
    a, b = row["group_a"], row["group_b"]
    if not math.isfinite(slope):
        reason = str(row.get("method", "")).rpartition("undefined: ")[2] or "too few words or templates"
        return f"The reference alignment is undefined: {reason}."
    low, high = fmt.as_float(row["ci_low"]), fmt.as_float(row["ci_high"])
    word = verdict(low, high)
    moves = "grows" if slope >= 0 else "falls"
    words = f"; {n_words} words" if n_words is not None else ""
    tiny = {"keep_tiny": True}  # a toy model's slope of 1e-6 must not read as 0.00
    return (f"The model's skew ({a} − {b}) {moves} {fmt.number(abs(slope), **tiny)} nats per logit of the "
            f"reference share: {VERDICT_TEXT[word]} ({fmt.ci_label(alpha)} of the slope {fmt.number(low, **tiny)} "
            f"to {fmt.number(high, **tiny)}, {WHERE_TEXT[word]}; {_p_phrase(row['p_value'])}{words}).")


def _p_phrase(value: Any) -> str:
    text = fmt.p_value(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def alignment_section(rows: pd.DataFrame, points: Any, *, chart_id: str, alpha: float) -> dict[str, Any] | None:
    """``{"sentence", "verdict", "chart"}`` of a probe set's reference_alignment row, or None without one."""
    found = rows[rows["metric"] == METRIC]
    if found.empty:
        return None
    row = found.iloc[0]
    n_words = len(points.words) if points is not None else None
    finite = math.isfinite(fmt.as_float(row["effect"]))
    return {
        "sentence": alignment_sentence(row, alpha=alpha, n_words=n_words),
        "verdict": verdict(fmt.as_float(row["ci_low"]), fmt.as_float(row["ci_high"])) if finite else "",
        "chart": alignment_chart(points, row, chart_id=chart_id) if finite else None,
    }
