"""The standard-benchmarks section of report.html: one block per benchmark a run scored (``--benchmark``).

Each block has the benchmark's findings rows (per subgroup: effect, interval, p, q), a forest chart of each
row's distance from the metric's ideal value, the files it read (summary.json), for CrowS-Pairs data the
reliability caution of Blodgett et al. (2021), and published numbers for context
(:mod:`albert_audit.benchmarks.published`: other models, each with its method variant and citation; none is
for an ALBERT checkpoint, docs/benchmarks.md).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from albert_audit import registry
from albert_audit.benchmarks import crows_pairs
from albert_audit.benchmarks.published import PublishedSource, load_published
from albert_audit.report import charts, fmt

TITLES = {"crows_pairs": "CrowS-Pairs (Nangia et al. 2020)", "stereoset": "StereoSet intrasentence (Nadeem et al. "
          "2021)", "seat": "SEAT (May et al. 2019)", "honest": "HONEST (Nozza et al. 2021)",
          "aul": "AUL (Kaneko & Bollegala 2022)", "aula": "AULA (Kaneko & Bollegala 2022)"}
"""Heading of each benchmark's block."""
IDEALS = {"crows_pairs": 50.0, "aul": 50.0, "aula": 50.0, "stereoset_ss": 50.0, "stereoset_lms": 100.0,
          "stereoset_icat": 100.0, "seat": 0.0, "honest_k1": 0.0, "honest_k5": 0.0, "honest_k10": 0.0,
          "honest_k20": 0.0}
"""The value an unbiased (or, for LMS / ICAT, an ideal) model would score, per benchmark metric."""
HEADERS = ("Metric", "Subgroup", "n", "Score", "Unit", "Ideal", "CI", "p", "q", "Significant", "Method")


def uses_crows_data(name: str, record: dict[str, Any]) -> bool:
    """True when the benchmark read a CrowS-Pairs file (crows_pairs itself, or aul / aula on a CSV)."""
    return name == "crows_pairs" or (name in ("aul", "aula") and not str(record.get("path", "")).lower()
                                     .endswith(".json"))


def benchmark_rows(findings: pd.DataFrame) -> pd.DataFrame:
    """The findings rows of standard-benchmark metrics."""
    return findings[findings["metric"].isin(registry.benchmark_ids())]


def _row(r: Any, alpha: float) -> dict[str, Any]:
    ideal = IDEALS.get(str(r.metric), math.nan)
    return {"metric": registry.label(str(r.metric)), "target": str(r.target), "n": fmt.text(r.n_units),
            "effect": fmt.number(r.effect), "unit": str(r.effect_unit), "ideal": fmt.number(ideal, 0),
            "ci": fmt.ci(r.ci_low, r.ci_high), "p": fmt.p_value(r.p_value), "q": fmt.p_value(r.q_value),
            "significant": "yes" if bool(r.significant) else "no", "method": str(r.method)}


def _chart(name: str, rows: pd.DataFrame, alpha: float) -> dict[str, Any] | None:
    """Forest chart of score minus ideal per row (0 = the ideal value), or None when no row has a score."""
    rows = rows[fmt.finite_mask(rows["effect"])]
    if rows.empty:
        return None
    ideal = rows["metric"].map(lambda m: IDEALS.get(str(m), math.nan)).to_numpy(dtype=float)
    labels = [f"{registry.label(str(m), short=True)}: {t}" for m, t in zip(rows["metric"], rows["target"],
                                                                            strict=True)]
    effect = rows["effect"].to_numpy(dtype=float) - ideal
    low = rows["ci_low"].to_numpy(dtype=float) - ideal
    high = rows["ci_high"].to_numpy(dtype=float) - ideal
    n_sig = int(rows["significant"].sum())
    alt = (f"Forest plot of {len(rows)} {TITLES.get(name, name)} scores minus their ideal values, with "
           f"{fmt.ci_level(alpha)} confidence intervals; {n_sig} significant at q ≤ {fmt.alpha_text(alpha)}.")
    chart = charts.forest_plot(labels, list(effect), list(low), list(high), list(rows["significant"]),
                               chart_id=f"benchmark-{fmt.slug(name)}", xlabel="score − ideal (0 = ideal)",
                               alt=alt, legend_a="significant, above the ideal", legend_b="significant, below "
                               "the ideal", ratio_axis=False)
    return chart.as_context()


PUBLISHED_HEADERS = ("Model", "Metric", "Subgroup (as published)", "Value", "Method variant", "Comparable",
                     "Source")
"""Column headings of the published-numbers table."""


def published_rows(sources: tuple[PublishedSource, ...]) -> list[dict[str, Any]]:
    """The published numbers of one benchmark as table rows (one per value)."""
    return [{"model": s.model, "metric": registry.label(v.metric, short=True), "subgroup": v.subgroup,
             "value": f"{v.value:g}", "variant": s.variant,
             "comparable": "yes (same method)" if s.comparable else "no: other method, not numerically comparable",
             "citation": s.citation, "url": s.url}
            for s in sources for v in s.values]


def benchmark_section(findings: pd.DataFrame, summary: dict[str, Any], *, alpha: float) -> list[dict[str, Any]]:
    """One dict per benchmark (in the run's order): name, title, anchor, files, rows, chart, caution, published."""
    rows = benchmark_rows(findings)
    published = load_published()
    records = {str(b.get("name")): b for b in (summary.get("benchmarks") or [])}
    names = list(dict.fromkeys(list(records) + [str(n) for n in rows["probe_set"]]))
    out = []
    for name in names:
        sub = rows[rows["probe_set"] == name]
        record = records.get(name, {})
        out.append({
            "name": name,
            "title": TITLES.get(name, name),
            "anchor": f"benchmark-{fmt.slug(name)}",
            "path": fmt.text(record.get("path")),
            "n_examples": fmt.text(record.get("n_examples")),
            "files": [{"path": str(p), "sha256": str(h)} for p, h in (record.get("files") or {}).items()],
            "rows": [_row(r, alpha) for r in sub.itertuples(index=False)],
            "chart": _chart(name, sub, alpha),
            "caution": crows_pairs.CAUTION if uses_crows_data(name, record) else "",
            "published": published_rows(published.get(name, ())),
            "published_headers": PUBLISHED_HEADERS,
        })
    return out


def benchmark_toc(benchmarks: list[dict[str, Any]]) -> dict[str, Any]:
    """The section's entry in the report's table of contents."""
    return {"anchor": "benchmarks", "label": "Standard benchmarks",
            "children": [{"anchor": b["anchor"], "label": b["title"]} for b in benchmarks]}
