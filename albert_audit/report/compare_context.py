"""A compare folder -> every number, sentence and chart that compare.html shows (the template only lays out).

Reads ``compare_summary.json``, ``deltas.csv`` and (when present) ``benchmark_deltas.csv`` of the compare
folder and the ``findings.csv`` of each
model's run folder (for each model's own bias score and CI), all typed once by
:mod:`albert_audit.report.sources`; never a model. Untrusted text (model ids, probe-set names, targets, group
names, paths) stays a plain ``str`` so the autoescaping template escapes it; only the charts' SVG is marked
safe. Every confidence level is printed from the comparison's alpha (:func:`albert_audit.report.fmt.ci_level`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit import contract, registry
from albert_audit.model_deltas import CHANGES, MATERIAL_CHANGES
from albert_audit.report import fmt
from albert_audit.report.compare_benchmarks import HEADERS as BENCHMARK_HEADERS
from albert_audit.report.compare_benchmarks import compare_benchmark_blocks
from albert_audit.report.compare_figures import delta_forest, effect_scatter
from albert_audit.report.compare_models import GRAFT_SENTENCE, model_context, shorten_labels
from albert_audit.report.narrative import VERDICT_LABELS
from albert_audit.report.sources import read_benchmark_deltas, read_compare_folder, run_findings

CHANGED_MAX_ROWS = 300
UTILITY_MARGIN = 1.1
"""A pseudo-perplexity ratio (candidate / base) beyond this factor either way is a change of utility."""
_SIGNED_METRICS = ("logprob_gap", "association_gap")


def utility_verdict(ratio: Any) -> str:
    """How a pseudo-perplexity ratio candidate / base reads: lower perplexity is better language modelling."""
    if not fmt.finite(ratio):
        return "not measured"
    if float(ratio) > UTILITY_MARGIN:
        return "worse language modelling"
    if float(ratio) < 1 / UTILITY_MARGIN:
        return "better language modelling"
    return "about the same"


def _bias_lookup(findings: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """Per probe set, a run's own bias score, interval and q (from its typed findings)."""
    if findings is None:
        return {}
    rows = findings[findings["metric"] == "bias_score"]
    return {str(r.probe_set): {"effect": r.effect, "ci_low": r.ci_low, "ci_high": r.ci_high, "q": r.q_value}
            for r in rows.itertuples()}


def _utility_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for row in summary.get("utility") or []:
        ratio = row.get("ratio")
        rows.append({
            "candidate": fmt.text(row.get("candidate")), "base": fmt.number(row.get("base_pppl"), keep_tiny=True),
            "sample": fmt.text(row.get("sample") or "neutral_sample.txt"),
            "candidate_pppl": fmt.number(row.get("candidate_pppl"), keep_tiny=True),
            "ratio": fmt.number(ratio, 3, keep_tiny=True), "ratio_v": fmt.attr(ratio),
            "verdict": utility_verdict(ratio),
        })
    return rows


def _bias_rows(deltas: pd.DataFrame, base_bias: dict[str, dict[str, Any]],
               cand_bias: dict[str, dict[str, dict[str, Any]]], anchors: dict[str, str]) -> list[dict[str, Any]]:
    """The side-by-side table: each model's own score interval (its run) and the paired delta (deltas.csv)."""
    rows = []
    for r in deltas[deltas["metric"] == "bias_score"].itertuples():
        b = base_bias.get(r.probe_set, {})
        c = cand_bias.get(r.candidate, {}).get(r.probe_set, {})
        rows.append({
            "probe_set": r.probe_set, "candidate": r.candidate, "anchor": anchors.get(r.probe_set, ""),
            "base": fmt.number(r.base_effect, keep_tiny=True),
            "base_ci": fmt.ci(b.get("ci_low"), b.get("ci_high"), keep_tiny=True),
            "candidate_score": fmt.number(r.candidate_effect, keep_tiny=True),
            "candidate_ci": fmt.ci(c.get("ci_low"), c.get("ci_high"), keep_tiny=True),
            "delta": fmt.number(r.delta, signed=True, keep_tiny=True),
            "delta_ci": fmt.ci(r.ci_low, r.ci_high, signed=True, keep_tiny=True),
            "q": fmt.p_value(r.q_value), "change": r.change, "delta_v": fmt.attr(r.delta),
        })
    return rows


def _changed_rows(deltas: pd.DataFrame) -> tuple[list[dict[str, Any]], int]:
    """The rows with a material change (amplified, reduced, reversed, emerged; in that order, then candidate, set,
    |delta|), and their count."""
    changed = deltas[deltas["change"].isin(MATERIAL_CHANGES)].copy()
    order = {c: i for i, c in enumerate(CHANGES)}
    changed["_o"] = changed["change"].map(order).fillna(len(order))
    changed["_m"] = -changed["delta"].abs()
    changed = changed.sort_values(["_o", "candidate", "probe_set", "_m"], kind="stable")
    rows = [{
        "change": r.change, "candidate": r.candidate, "probe_set": r.probe_set,
        "metric": registry.label(r.metric, short=True), "target": r.target or "(set level)",
        "pair": fmt.pair(r.group_a, r.group_b), "base": fmt.number(r.base_effect, keep_tiny=True),
        "candidate_effect": fmt.number(r.candidate_effect, keep_tiny=True),
        "delta": fmt.number(r.delta, signed=True, keep_tiny=True),
        "ci": fmt.ci(r.ci_low, r.ci_high, signed=True, keep_tiny=True), "p": fmt.p_value(r.p_value),
        "q": fmt.p_value(r.q_value), "delta_v": fmt.attr(r.delta), "q_v": fmt.attr(r.q_value),
        "scope": r.scope or "—", "verdicts": f"{_verdict_text(r.base_verdict)} → {_verdict_text(r.candidate_verdict)}",
    } for r in changed.head(CHANGED_MAX_ROWS).itertuples()]
    return rows, int(len(changed))


def _verdict_text(verdict: str) -> str:
    return VERDICT_LABELS.get(verdict, "—")


def margin_rows(deltas: pd.DataFrame, base_findings: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The margins the comparison used: each compared metric's delta margin (deltas.csv) and the base findings'
    gap margin (its findings.csv), for the page's "margins" table."""
    rows = []
    for metric in registry.compared_ids():
        sub = deltas[(deltas["metric"] == metric) & fmt.finite_mask(deltas["margin"])]
        gap = (base_findings[(base_findings["metric"] == metric) & fmt.finite_mask(base_findings["margin"])]
               if base_findings is not None else None)
        if sub.empty and (gap is None or gap.empty):
            continue
        delta_values = sorted(set(sub["margin"].astype(float)))
        gap_values = sorted(set(gap["margin"].astype(float))) if gap is not None and len(gap) else []
        rows.append({"metric": registry.label(metric), "id": metric,
                     "delta": ", ".join(fmt.margin(v) for v in delta_values) or "—",
                     "delta_v": fmt.attr(delta_values[0]) if delta_values else None,
                     "gap": ", ".join(fmt.margin(v) for v in gap_values) or "— (no verdict)"})
    return rows


def _set_blocks(deltas: pd.DataFrame, *, alpha: float, base_label: str) -> list[dict[str, Any]]:
    """Per probe set and candidate: a delta forest per signed metric and the effect scatter."""
    sets = []
    counter = 0
    for probe_set in pd.unique(deltas["probe_set"]):
        per_candidate = []
        for candidate in pd.unique(deltas["candidate"]):
            sub = deltas[(deltas["probe_set"] == probe_set) & (deltas["candidate"] == candidate)]
            if sub.empty:
                continue
            block: dict[str, Any] = {"candidate": str(candidate), "forests": [], "scatter": None}
            for metric in _SIGNED_METRICS:
                counter += 1
                forest = delta_forest(sub[sub["metric"] == metric], chart_id=f"cmp-forest-{counter}",
                                      metric=metric, candidate=str(candidate), probe_set=str(probe_set), alpha=alpha)
                if forest:
                    block["forests"].append(forest)
            counter += 1
            block["scatter"] = effect_scatter(sub[sub["metric"].isin(_SIGNED_METRICS)],
                                              chart_id=f"cmp-scatter-{counter}", candidate=str(candidate),
                                              probe_set=str(probe_set), base_label=base_label)
            per_candidate.append(block)
        sets.append({"name": str(probe_set), "anchor": f"set-{fmt.slug(probe_set)}-{len(sets)}",
                     "candidates": per_candidate})
    return sets


def build_compare_context(folder: Path) -> dict[str, Any]:
    """Everything compare.html shows, from a compare folder's files (and its runs' findings.csv)."""
    folder = Path(folder)
    raw_summary, raw_deltas = read_compare_folder(folder)
    summary, deltas = shorten_labels(raw_summary, raw_deltas)
    bench_deltas = read_benchmark_deltas(folder)
    if bench_deltas is not None:
        bench_deltas = shorten_labels(raw_summary, bench_deltas)[1]
    alpha = fmt.alpha_of(summary)
    base_entry = summary.get("base") or {}
    cand_entries = list(summary.get("candidates") or [])
    base_label = fmt.text(base_entry.get("label"))
    base_id = fmt.text((base_entry.get("model") or {}).get("id"))
    models = [model_context(base_entry, base_id)] + [model_context(e, base_id) for e in cand_entries]
    base_findings = run_findings(folder, base_entry)
    base_bias = _bias_lookup(base_findings)
    cand_bias = {str(e.get("label")): _bias_lookup(run_findings(folder, e)) for e in cand_entries}

    change_table = [{"candidate": str(c), "counts": [int((counts or {}).get(ch, 0)) for ch in CHANGES],
                     "total": int(sum((counts or {}).values()))}
                    for c, counts in (summary.get("changes") or {}).items()]
    sets = _set_blocks(deltas, alpha=alpha, base_label=base_label)
    changed_rows, n_changed = _changed_rows(deltas)
    chart_ids = [c["id"] for s in sets for block in s["candidates"]
                 for c in [*block["forests"], block["scatter"]] if c]
    candidates = [m["label"] for m in models[1:]]
    utility = _utility_rows(summary)
    return {
        "title": f"Comparison: {', '.join(candidates)} against {base_label}",
        "header": {
            "base": base_label, "candidates": candidates, "date": fmt.text(summary.get("created_utc")),
            "mode": "models scored in this comparison" if summary.get("mode") == "models" else "saved runs",
            "items_sha256": fmt.text(summary.get("items_sha256")), "seed": fmt.text(summary.get("seed")),
            "alpha": fmt.alpha_text(alpha), "n_resamples": fmt.text(summary.get("n_resamples")),
            "tool_version": fmt.text(summary.get("tool_version")), "quantize": fmt.text(summary.get("quantize")),
        },
        "graft_sentence": GRAFT_SENTENCE,
        "grafted": [m for m in models[1:] if m["grafted"]],
        "models": models,
        "utility": utility,
        "utility_measured": any(u["ratio_v"] is not None for u in utility),
        "changes": list(CHANGES),
        "material_changes": list(MATERIAL_CHANGES),
        "margins": margin_rows(deltas, base_findings),
        "change_table": change_table,
        "bias_rows": _bias_rows(deltas, base_bias, cand_bias, {s["name"]: s["anchor"] for s in sets}),
        "changed_rows": changed_rows,
        "n_changed": n_changed,
        "changed_max": CHANGED_MAX_ROWS,
        "n_deltas": int(len(deltas)),
        "sets": sets,
        "methods": [{"name": str(k).replace("_", " "), "text": str(v)}
                    for k, v in (summary.get("methods") or {}).items()],
        "notes": [str(n) for n in summary.get("notes") or []],
        "alpha": fmt.alpha_text(alpha),
        "ci_level": fmt.ci_level(alpha),
        "benchmarks": compare_benchmark_blocks(bench_deltas, summary),
        "benchmark_headers": BENCHMARK_HEADERS,
        "files": {"deltas": contract.DELTAS_FILE, "compare_summary": contract.COMPARE_SUMMARY_FILE,
                  "benchmark_deltas": contract.BENCHMARK_DELTAS_FILE},
        "chart_ids": chart_ids,
        "n_charts": len(chart_ids),
    }
