"""The standard-benchmarks section of compare.html: per benchmark, a table of its paired deltas.

Reads the typed benchmark_deltas.csv (:func:`albert_audit.report.sources.read_benchmark_deltas`) and the
``benchmarks`` records of compare_summary.json (files, skipped candidates). Names (benchmarks, subgroups,
candidates, SEAT test names) stay plain ``str`` so the autoescaping template escapes them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from albert_audit import registry
from albert_audit.report import fmt
from albert_audit.report.benchmark_section import TITLES

HEADERS = ("Metric", "Subgroup", "Candidate", "n", "Base", "Candidate score", "Delta", "CI", "p", "q", "Change")
"""Column headings of each benchmark's table (the CI heading gets the level in the template)."""


def _row(r: Any) -> dict[str, Any]:
    return {"metric": registry.label(str(r.metric), short=True), "target": str(r.target),
            "candidate": str(r.candidate), "n": fmt.text(r.n_units),
            "base": fmt.number(r.base_effect, keep_tiny=True),
            "candidate_effect": fmt.number(r.candidate_effect, keep_tiny=True),
            "delta": fmt.number(r.delta, signed=True, keep_tiny=True), "delta_v": fmt.attr(r.delta),
            "ci": fmt.ci(r.ci_low, r.ci_high, signed=True, keep_tiny=True), "p": fmt.p_value(r.p_value),
            "q": fmt.p_value(r.q_value), "change": str(r.change) or "—", "change_class": str(r.change),
            "method": str(r.method)}


def compare_benchmark_blocks(table: pd.DataFrame | None, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per benchmark compared (name, title, anchor, rows, skipped), in benchmark_deltas.csv's order."""
    if table is None or table.empty:
        return []
    records = {str(b.get("name")): b for b in (summary.get("benchmarks") or []) if isinstance(b, dict)}
    blocks = []
    for name in pd.unique(table["benchmark"]):
        sub = table[table["benchmark"] == name]
        record = records.get(str(name), {})
        blocks.append({"name": str(name), "title": TITLES.get(str(name), str(name)),
                       "anchor": f"cmp-benchmark-{fmt.slug(str(name))}-{len(blocks)}",
                       "rows": [_row(r) for r in sub.itertuples(index=False)],
                       "skipped": [str(s) for s in record.get("skipped") or []]})
    return blocks
