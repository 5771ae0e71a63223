"""A compare folder -> every number, sentence and chart that compare.html shows (the template only lays out).

Reads ``compare_summary.json`` and ``deltas.csv`` of the compare folder and the ``findings.csv`` of each
model's run folder (for each model's own bias score and CI); never a model. Untrusted text (model ids,
probe-set names, targets, group names, paths) stays a plain ``str`` so the autoescaping template escapes it;
only the charts' SVG (built by matplotlib, which escapes its text) is marked safe.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure

from albert_audit.compare import CHANGES, DELTA_COLUMNS
from albert_audit.errors import AuditError
from albert_audit.report import charts
from albert_audit.results import FINDINGS_TEXT_COLUMNS, read_csv_table, read_json

COMPARE_SUMMARY_FILE, DELTAS_FILE = "compare_summary.json", "deltas.csv"
GRAFT_SENTENCE = "probed with the base model's MLM head"
FOREST_MAX_ROWS = 40
CHANGED_MAX_ROWS = 300
METRIC_LABELS = {
    "logprob_gap": "target log-prob gap",
    "association_gap": "association gap (prior-normalised)",
    "bias_score": "probe-set bias score",
}
SHORT_METRIC_LABELS = {"logprob_gap": "log-prob gap", "association_gap": "association gap",
                       "bias_score": "bias score"}
#: Colour and marker of each change class in the scatter (Okabe-Ito; shape as well as colour).
CHANGE_STYLE = {
    "amplified": (charts.OKABE_ITO["vermillion"], "^"),
    "reduced": (charts.OKABE_ITO["blue"], "v"),
    "reversed": (charts.OKABE_ITO["reddish_purple"], "D"),
    "newly_significant": (charts.OKABE_ITO["orange"], "s"),
    "unchanged": ("#8c8c8c", "o"),
}
_TEXT_COLUMNS = ("probe_set", "metric", "target", "group_a", "group_b", "candidate", "change")


# ------------------------------------------------------------------------------------------------ formatting


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fmt(value: Any, digits: int = 2, *, sign: str = "") -> str:
    """A number with fixed decimals (two significant digits when it would round to 0); "—" when missing."""
    if not _finite(value):
        return "—"
    number = float(value) + 0.0  # -0.0 prints as 0.00
    if number != 0.0 and abs(number) < 0.5 * 10.0**-digits:
        return f"{number:{sign}.1e}"
    return f"{number:{sign}.{digits}f}"


def fmt_signed(value: Any, digits: int = 2) -> str:
    """A number with an explicit sign (for deltas)."""
    return fmt(value, digits, sign="+")


def fmt_p(value: Any) -> str:
    """A p- or q-value: "< 0.001" below 0.001, three decimals otherwise."""
    if not _finite(value):
        return "—"
    return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def fmt_ci(low: Any, high: Any, digits: int = 2, *, signed: bool = False) -> str:
    """``[low, high]``; "—" when a bound is missing."""
    if not (_finite(low) and _finite(high)):
        return "—"
    f = fmt_signed if signed else fmt
    return f"[{f(low, digits)}, {f(high, digits)}]"


def _attr(value: Any) -> str | None:
    return repr(float(value)) if _finite(value) else None


def _text(value: Any) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:30] or "x"


def _pair(row: pd.Series | dict[str, Any]) -> str:
    return f"{row['group_a']} vs {row['group_b']}" if row["group_a"] or row["group_b"] else ""


# ----------------------------------------------------------------------------------------------------- charts


def effect_scatter(base: Sequence[float], candidate: Sequence[float], changes: Sequence[str], *, chart_id: str,
                   alt: str, xlabel: str, ylabel: str, title: str = "") -> charts.Chart:
    """Scatter of per-target effects, base (x) against candidate (y), with the y = x line and y = 0, x = 0.

    Points above the diagonal (for positive effects) grew in the candidate. Colour and marker shape both
    show the change class, so the chart reads without colour.
    """
    points = [(float(b), float(c), str(ch)) for b, c, ch in zip(base, candidate, changes, strict=True)
              if _finite(b) and _finite(c)]
    with matplotlib.rc_context({**charts.CHART_RC, "svg.hashsalt": chart_id}):
        fig = Figure(figsize=(5.6, 4.6), layout="constrained")
        ax = fig.add_subplot()
        values = [v for p in points for v in p[:2]] or [0.0]
        lo, hi = min(min(values), 0.0), max(max(values), 0.0)
        pad = 0.06 * (hi - lo or 1.0)
        lo, hi = lo - pad, hi + pad
        ax.plot([lo, hi], [lo, hi], color="#444444", linewidth=0.9, linestyle="--", label="y = x (no change)")
        ax.axhline(0.0, color="#bbbbbb", linewidth=0.6)
        ax.axvline(0.0, color="#bbbbbb", linewidth=0.6)
        for change in CHANGES:
            chosen = [(b, c) for b, c, ch in points if ch == change]
            if not chosen:
                continue
            colour, marker = CHANGE_STYLE[change]
            ax.plot([b for b, _ in chosen], [c for _, c in chosen], marker=marker, linestyle="none",
                    markersize=5, color=colour, markerfacecolor=colour if change != "unchanged" else "white",
                    markeredgewidth=1.0, label=f"{change.replace('_', ' ')} ({len(chosen)})")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(color="#eeeeee", linewidth=0.6)
        ax.set_axisbelow(True)
        if title:
            ax.set_title(title, loc="left")
        fig.legend(loc="outside right center", frameon=False)
        svg = charts.svg_fragment(fig, chart_id=chart_id, alt=alt)
    return charts.Chart(chart_id=chart_id, svg=svg, alt=alt)


def _chart_dict(chart: charts.Chart | None, caption: str = "") -> dict[str, Any] | None:
    if chart is None:
        return None
    return {"id": chart.chart_id, "svg": Markup(chart.svg), "alt": chart.alt, "caption": caption}


def _forest(rows: pd.DataFrame, *, chart_id: str, metric: str, candidate: str, probe_set: str,
            alpha: float) -> dict[str, Any] | None:
    rows = rows[rows["delta"].map(_finite)]
    if rows.empty:
        return None
    shown = rows.reindex(rows["delta"].abs().sort_values(ascending=False, kind="stable").index)
    shown = shown.head(FOREST_MAX_ROWS).sort_values("delta", ascending=False, kind="stable")
    several_pairs = rows[["group_a", "group_b"]].drop_duplicates().shape[0] > 1
    labels = [f"{r.target} ({r.group_a} vs {r.group_b})" if several_pairs else str(r.target)
              for r in shown.itertuples()]
    significant = [_finite(q) and float(q) <= alpha for q in shown["q_value"]]
    pair = "" if several_pairs else f" ({shown.iloc[0]['group_a']} minus {shown.iloc[0]['group_b']})"
    alt = (f"Forest plot of the change in {METRIC_LABELS.get(metric, metric)}{pair} per target, {candidate} minus "
           f"the base, probe set {probe_set}, with confidence intervals: "
           + "; ".join(f"{lab} {fmt_signed(d)}" for lab, d in zip(labels, shown["delta"], strict=True)) + ".")
    chart = charts.forest_plot(labels, shown["delta"].tolist(), shown["ci_low"].tolist(), shown["ci_high"].tolist(),
                               significant, chart_id=chart_id, xlabel=f"delta{pair}, nats (candidate − base)",
                               alt=alt, legend_a="significant, candidate higher",
                               legend_b="significant, candidate lower", ratio_axis=False)
    caption = (f"Change in the {METRIC_LABELS.get(metric, metric)} per target{pair}: candidate minus base, with "
               f"{1 - alpha:.0%} paired bootstrap intervals over templates. Filled markers: significant after "
               f"FDR control (q ≤ {alpha:g}).")
    if len(rows) > len(shown):
        caption += f" The {len(shown)} largest of {len(rows)} changes are shown; deltas.csv has all."
    return _chart_dict(chart, caption)


def _scatter(rows: pd.DataFrame, *, chart_id: str, candidate: str, probe_set: str,
             base_label: str) -> dict[str, Any] | None:
    rows = rows[rows["base_effect"].map(_finite) & rows["candidate_effect"].map(_finite)]
    if rows.empty:
        return None
    counts = rows["change"].value_counts()
    alt = (f"Scatter plot of per-target effects (log-prob and association gaps, nats) of probe set {probe_set}: "
           f"{base_label} on the x axis, {candidate} on the y axis, {len(rows)} points; "
           + ", ".join(f"{int(counts.get(c, 0))} {c.replace('_', ' ')}" for c in CHANGES) + ".")
    chart = effect_scatter(rows["base_effect"].tolist(), rows["candidate_effect"].tolist(), rows["change"].tolist(),
                           chart_id=chart_id, alt=alt, xlabel="base effect (nats)", ylabel="candidate effect (nats)")
    caption = ("Per-target effects of the base (x) against the candidate (y), log-prob and association gaps "
               "together. On the dashed line y = x nothing changed; points farther from 0 than the line grew. "
               "Marker shape and colour give the change class.")
    return _chart_dict(chart, caption)


# ---------------------------------------------------------------------------------------------------- reading


def read_compare_folder(folder: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """compare_summary.json and deltas.csv of a compare folder (an AuditError when missing or broken)."""
    summary_path, deltas_path = folder / COMPARE_SUMMARY_FILE, folder / DELTAS_FILE
    summary = read_json(summary_path, missing_hint=f"; is {folder} a folder of `albert-audit compare`?")
    if not isinstance(summary, dict):
        raise AuditError(f"{summary_path}: expected a JSON object")
    deltas = read_csv_table(deltas_path, text_columns=_TEXT_COLUMNS, required=DELTA_COLUMNS)
    return summary, deltas


def _run_findings(folder: Path, entry: dict[str, Any]) -> pd.DataFrame | None:
    run = Path(entry.get("run") or "")
    path = (run if run.is_absolute() else folder / run) / "findings.csv"
    if not path.is_file():
        return None
    return read_csv_table(path, text_columns=FINDINGS_TEXT_COLUMNS)


def _bias_lookup(findings: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    if findings is None:
        return {}
    rows = findings[findings["metric"] == "bias_score"]
    return {str(r.probe_set): {"effect": r.effect, "ci_low": r.ci_low, "ci_high": r.ci_high, "q": r.q_value}
            for r in rows.itertuples()}


# ---------------------------------------------------------------------------------------------------- context


def _model_context(entry: dict[str, Any], base_id: str) -> dict[str, Any]:
    model = entry.get("model") or {}
    utility = entry.get("utility") or {}
    hashes = model.get("weights_sha256") or {}
    head = str(model.get("head") or "own")
    grafted = head.startswith("grafted")
    return {
        "role": entry.get("role", ""),
        "label": _text(entry.get("label")),
        "id": _text(model.get("id")),
        "class": _text(model.get("model_class")),
        "model_type": _text(model.get("model_type")),
        "head": head,
        "grafted": grafted,
        "head_note": f"{GRAFT_SENTENCE} ({head})" if grafted else "own MLM head",
        "revision": _text(model.get("revision")),
        "commit": _text(model.get("commit")),
        "parameters": f"{int(model['num_parameters']):,}" if _finite(model.get("num_parameters")) else "—",
        "device": _text(entry.get("device")),
        "dtype": _text(entry.get("dtype")),
        "weights": [{"file": str(f), "sha256": str(h)} for f, h in hashes.items()] if isinstance(hashes, dict)
        else [],
        "pppl": fmt(utility.get("pppl")),
        "run": _text(entry.get("run")),
        "created": _text(entry.get("created_utc")),
        "notes": [str(n) for n in entry.get("notes") or []],
        "base_id": base_id,
    }


def display_name(model_id: str) -> str:
    """A short name for a model in headings and tables: a hub id as it is, a local folder by its last two
    path parts (the full path stays in the Models section and in the files)."""
    path = Path(model_id)
    if path.is_absolute() or model_id.startswith((".", "~")) or len(path.parts) > 2:
        return "/".join(path.parts[-2:])
    return model_id


def _shorten_labels(summary: dict[str, Any], deltas: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """Replace long model labels by their display names everywhere the page shows them (if still unique)."""
    entries = [summary.get("base") or {}, *(summary.get("candidates") or [])]
    full = [str(e.get("label")) for e in entries]
    short = {label: display_name(label) for label in full}
    if len(set(short.values())) != len(set(full)):
        return summary, deltas
    summary = {**summary, "base": {**entries[0], "label": short[full[0]]},
               "candidates": [{**e, "label": short[str(e.get("label"))]} for e in entries[1:]],
               "utility": [{**row, "candidate": short.get(str(row.get("candidate")), row.get("candidate"))}
                           for row in summary.get("utility") or []],
               "changes": {short.get(str(k), k): v for k, v in (summary.get("changes") or {}).items()}}
    deltas = deltas.assign(candidate=deltas["candidate"].map(lambda c: short.get(str(c), c)))
    return summary, deltas


def build_compare_context(folder: Path) -> dict[str, Any]:
    """Everything compare.html shows, from a compare folder's files (and its runs' findings.csv)."""
    folder = Path(folder)
    summary, deltas = _shorten_labels(*read_compare_folder(folder))
    alpha = float(summary["alpha"]) if _finite(summary.get("alpha")) else 0.05
    base_entry = summary.get("base") or {}
    cand_entries = list(summary.get("candidates") or [])
    base_label = _text(base_entry.get("label"))
    base_id = _text((base_entry.get("model") or {}).get("id"))
    models = [_model_context(base_entry, base_id)] + [_model_context(e, base_id) for e in cand_entries]
    base_bias = _bias_lookup(_run_findings(folder, base_entry))
    cand_bias = {str(e.get("label")): _bias_lookup(_run_findings(folder, e)) for e in cand_entries}
    grafted = [m for m in models[1:] if m["grafted"]]

    utility = []
    for row in summary.get("utility") or []:
        ratio = row.get("ratio")
        utility.append({
            "candidate": _text(row.get("candidate")), "base": fmt(row.get("base_pppl")),
            "sample": _text(row.get("sample") or "neutral_sample.txt"),
            "candidate_pppl": fmt(row.get("candidate_pppl")), "ratio": fmt(ratio, 3),
            "ratio_v": _attr(ratio),
            "verdict": ("not measured" if not _finite(ratio) else
                        "worse language modelling" if float(ratio) > 1.1 else
                        "better language modelling" if float(ratio) < 1 / 1.1 else "about the same"),
        })

    change_table = [{"candidate": str(c), "counts": [int((counts or {}).get(ch, 0)) for ch in CHANGES],
                     "total": int(sum((counts or {}).values()))}
                    for c, counts in (summary.get("changes") or {}).items()]

    bias_rows = []
    for r in deltas[deltas["metric"] == "bias_score"].itertuples():
        b = base_bias.get(r.probe_set, {})
        c = cand_bias.get(r.candidate, {}).get(r.probe_set, {})
        bias_rows.append({
            "probe_set": r.probe_set, "candidate": r.candidate, "anchor": f"set-{_slug(r.probe_set)}",
            "base": fmt(r.base_effect), "base_ci": fmt_ci(b.get("ci_low"), b.get("ci_high")),
            "candidate_score": fmt(r.candidate_effect), "candidate_ci": fmt_ci(c.get("ci_low"), c.get("ci_high")),
            "delta": fmt_signed(r.delta), "delta_ci": fmt_ci(r.ci_low, r.ci_high, signed=True),
            "q": fmt_p(r.q_value), "change": r.change, "delta_v": _attr(r.delta),
        })

    changed = deltas[deltas["change"] != "unchanged"].copy()
    order = {c: i for i, c in enumerate(CHANGES)}
    changed["_o"] = changed["change"].map(order)
    changed["_m"] = -changed["delta"].abs()
    changed = changed.sort_values(["_o", "candidate", "probe_set", "_m"], kind="stable")
    changed_rows = [{
        "change": r.change, "candidate": r.candidate, "probe_set": r.probe_set,
        "metric": SHORT_METRIC_LABELS.get(r.metric, r.metric), "target": r.target or "(set level)",
        "pair": _pair(r._asdict()), "base": fmt(r.base_effect), "candidate_effect": fmt(r.candidate_effect),
        "delta": fmt_signed(r.delta), "ci": fmt_ci(r.ci_low, r.ci_high, signed=True), "p": fmt_p(r.p_value),
        "q": fmt_p(r.q_value), "delta_v": _attr(r.delta), "q_v": _attr(r.q_value),
    } for r in changed.head(CHANGED_MAX_ROWS).itertuples()]

    sets = []
    chart_ids: list[str] = []
    counter = 0
    for probe_set in pd.unique(deltas["probe_set"]):
        per_candidate = []
        for candidate in pd.unique(deltas["candidate"]):
            sub = deltas[(deltas["probe_set"] == probe_set) & (deltas["candidate"] == candidate)]
            if sub.empty:
                continue
            block: dict[str, Any] = {"candidate": str(candidate), "forests": [], "scatter": None}
            for metric in ("logprob_gap", "association_gap"):
                counter += 1
                forest = _forest(sub[sub["metric"] == metric], chart_id=f"cmp-forest-{counter}", metric=metric,
                                 candidate=str(candidate), probe_set=str(probe_set), alpha=alpha)
                if forest:
                    block["forests"].append(forest)
                    chart_ids.append(forest["id"])
            counter += 1
            scatter = _scatter(sub[sub["metric"].isin(["logprob_gap", "association_gap"])],
                               chart_id=f"cmp-scatter-{counter}", candidate=str(candidate),
                               probe_set=str(probe_set), base_label=base_label)
            if scatter:
                block["scatter"] = scatter
                chart_ids.append(scatter["id"])
            per_candidate.append(block)
        sets.append({"name": str(probe_set), "anchor": f"set-{_slug(probe_set)}-{len(sets)}",
                     "candidates": per_candidate})
    for row in bias_rows:
        match = next((s for s in sets if s["name"] == row["probe_set"]), None)
        row["anchor"] = match["anchor"] if match else ""

    candidates = [m["label"] for m in models[1:]]
    return {
        "title": f"Comparison: {', '.join(candidates)} against {base_label}",
        "header": {
            "base": base_label, "candidates": candidates, "date": _text(summary.get("created_utc")),
            "mode": "models scored in this comparison" if summary.get("mode") == "models" else "saved runs",
            "items_sha256": _text(summary.get("items_sha256")), "seed": _text(summary.get("seed")),
            "alpha": f"{alpha:g}", "n_resamples": _text(summary.get("n_resamples")),
            "tool_version": _text(summary.get("tool_version")), "quantize": _text(summary.get("quantize")),
        },
        "graft_sentence": GRAFT_SENTENCE,
        "grafted": grafted,
        "models": models,
        "utility": utility,
        "utility_measured": any(u["ratio_v"] is not None for u in utility),
        "changes": list(CHANGES),
        "change_table": change_table,
        "bias_rows": bias_rows,
        "changed_rows": changed_rows,
        "n_changed": int(len(changed)),
        "changed_max": CHANGED_MAX_ROWS,
        "n_deltas": int(len(deltas)),
        "sets": sets,
        "methods": [{"name": str(k).replace("_", " "), "text": str(v)}
                    for k, v in (summary.get("methods") or {}).items()],
        "notes": [str(n) for n in summary.get("notes") or []],
        "alpha": f"{alpha:g}",
        "ci_level": f"{1 - alpha:.0%}",
        "chart_ids": chart_ids,
        "n_charts": len(chart_ids),
    }
