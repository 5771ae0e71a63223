"""A run folder -> every number, sentence and chart the report shows (the templates only lay them out).

All values are plain strings, numbers, lists and dicts (plus the charts' SVG, marked safe because it is
built by :mod:`albert_audit.report.charts`, which escapes its text). Untrusted text (probe templates,
group names, targets, model ids, paths, predicted tokens) stays a plain ``str`` so that the autoescaping
templates escape it.

Where the numbers come from:

* the executive summary and the findings tables: ``findings.csv`` only (every number can be traced to a row):
  bias score, CI, q, share of significant association gaps and most skewed targets per probe set through
  :func:`albert_audit.metrics.summarise_bias`, counts of significant rows directly;
* the heatmaps: ``targets.parquet`` joined to ``items.parquet`` (mean over templates of the mean over each
  group's terms, the design's unit of analysis);
* the top-k fills: ``fills.parquet`` joined to ``items.parquet``;
* the header, methods and appendix: ``summary.json``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from albert_audit.errors import AuditError
from albert_audit.metrics import summarise_bias
from albert_audit.report import charts
from albert_audit.results import RunTables

FINDINGS_COLUMNS = (
    "probe_set", "metric", "target", "group_a", "group_b", "n_units", "effect", "effect_unit",
    "ci_low", "ci_high", "p_value", "q_value", "significant", "direction", "method",
)
METRIC_LABELS = {
    "logprob_gap": "target log-prob gap",
    "association_gap": "association gap (prior-normalised)",
    "fill_divergence": "fill-distribution divergence",
    "disco": "DisCo-style count",
    "bias_score": "probe-set bias score",
    "omnibus": "omnibus test",
}
#: Which significant rows make the plain-language top findings first (lower is preferred).
_SENTENCE_PRIORITY = {"logprob_gap": 0, "association_gap": 1, "fill_divergence": 2, "disco": 3, "omnibus": 4}
TOP_FINDINGS_PER_SET = 3
TOP_TARGETS_PER_GROUP = 3
FOREST_MAX_ROWS = 60
TOP_FILLS = 5
NO_SLOT_LABEL = "(no group slot)"


# ----------------------------------------------------------------------------------------------- formatting
def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _finite_mask(values: pd.Series) -> pd.Series:
    """Boolean mask of the finite numbers of a column (a real bool Series even when the table is empty)."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    return pd.Series(np.isfinite(numbers.to_numpy()), index=values.index, dtype=bool)


def format_number(value: Any, digits: int = 2) -> str:
    """A number with a fixed number of decimals; "—" for a missing or non-finite value."""
    return f"{float(value):.{digits}f}" if _finite(value) else "—"


def format_p(value: Any) -> str:
    """A p- or q-value: "< 0.001" below 0.001, else three decimals; "—" when missing."""
    if not _finite(value):
        return "—"
    return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def format_q_phrase(value: Any) -> str:
    """``q < 0.001`` or ``q = 0.012`` (for sentences)."""
    text = format_p(value)
    return f"q {text}" if text.startswith("<") else f"q = {text}"


def format_ci(low: Any, high: Any, digits: int = 2) -> str:
    """``[low, high]``, or "—" when either bound is missing."""
    if not (_finite(low) and _finite(high)):
        return "—"
    return f"[{float(low):.{digits}f}, {float(high):.{digits}f}]"


def format_ratio(value: float) -> str:
    """A probability ratio: one decimal below 100, whole numbers up to 100,000, then 3 significant digits."""
    if not math.isfinite(value):
        return "∞" if value > 0 else "—"
    if value < 100:
        return f"{value:.1f}"
    if value < 100_000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _number_attr(value: Any) -> str | None:
    """The exact value for a ``data-v`` attribute (round-trips through float), or None when missing."""
    return repr(float(value)) if _finite(value) else None


def _as_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    if _finite(value):
        return bool(float(value))
    return False


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"


# ----------------------------------------------------------------------------------------------- findings
def normalise_findings(findings: pd.DataFrame) -> pd.DataFrame:
    """Check the findings columns and give them usable types (text columns never NaN, significant bool)."""
    missing = [c for c in FINDINGS_COLUMNS if c not in findings.columns]
    if missing:
        raise AuditError(f"findings.csv: missing column(s) {', '.join(missing)}")
    table = findings.copy()
    for column in ("probe_set", "metric", "target", "group_a", "group_b", "effect_unit", "direction", "method"):
        table[column] = table[column].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v))
                                          else str(v))
    for column in ("n_units", "effect", "ci_low", "ci_high", "p_value", "q_value"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["significant"] = table["significant"].map(_as_bool).astype(bool)
    return table.reset_index(drop=True)


def ci_label(alpha: float) -> str:
    """The confidence level of the run's intervals (1 - alpha, as metrics computes them), e.g. "95%"."""
    return f"{round((1.0 - alpha) * 100, 6):g}%"


def finding_sentence(row: pd.Series | dict[str, Any], *, alpha: float = 0.05) -> str:
    """One plain-language sentence for a findings row.

    For ``logprob_gap`` the effect is a log-probability difference in nats, so exp(effect) is the ratio of
    probabilities: "'nurse' is 8.2x more likely after female terms than after male terms (95% CI 5.1–12.0,
    q < 0.001)". The sentence always names the higher group first (a negative effect swaps the groups and
    the CI bounds).
    """
    metric, target = row["metric"], row["target"]
    a, b, effect = row["group_a"], row["group_b"], float(row["effect"])
    low, high = float(row["ci_low"]), float(row["ci_high"])
    level = f"{ci_label(alpha)} CI"
    q = format_q_phrase(row["q_value"])
    if metric in ("logprob_gap", "association_gap") and math.isfinite(effect):
        if effect >= 0:
            higher, lower, ratio, r_low, r_high = a, b, math.exp(effect), math.exp(low), math.exp(high)
        else:
            higher, lower, ratio, r_low, r_high = b, a, math.exp(-effect), math.exp(-high), math.exp(-low)
        ci = (f"{level} {format_ratio(r_low)}–{format_ratio(r_high)}"
              if math.isfinite(low) and math.isfinite(high) else f"{level} not available")
        if metric == "logprob_gap":
            return (f"'{target}' is {format_ratio(ratio)}x more likely after {higher} terms than after "
                    f"{lower} terms ({ci}, {q})")
        return (f"Relative to its prior, '{target}' is {format_ratio(ratio)}x more strongly associated with "
                f"{higher} terms than with {lower} terms ({ci}, {q})")
    unit = f" {row['effect_unit']}" if row["effect_unit"] else ""
    ci = f"{level} {format_ci(low, high)}"
    if metric == "fill_divergence":
        where = f" for '{target}'" if target else ""
        return (f"The top fills{where} after {a} terms and after {b} terms differ: Jensen-Shannon divergence "
                f"{format_number(effect, 3)}{unit} ({ci}, {q})")
    if metric == "disco":
        return (f"On average {format_number(effect)}{unit} of the top-3 fills per template depend on whether "
                f"the sentence names {a} or {b} terms (DisCo-style count, {ci}, {q})")
    if metric == "omnibus":
        if target:
            return f"The association of '{target}' differs across the groups (omnibus test, {q})"
        return f"The scores differ across the groups (omnibus test, {q})"
    label = METRIC_LABELS.get(metric, metric)
    subject = f"'{target}', " if target else ""
    return f"{label}: {subject}{a} vs {b}: {format_number(effect)}{unit} ({ci}, {q})"


def top_findings(rows: pd.DataFrame, *, limit: int = TOP_FINDINGS_PER_SET) -> list[pd.Series]:
    """The significant rows worth a sentence: log-prob gaps first, then by q, then by |effect|; one per target."""
    candidates = rows[rows["significant"] & rows["metric"].isin(_SENTENCE_PRIORITY)
                      & (_finite_mask(rows["effect"]) | (rows["metric"] == "omnibus"))].copy()
    if candidates.empty:
        return []
    candidates["_priority"] = candidates["metric"].map(_SENTENCE_PRIORITY)
    candidates["_q"] = candidates["q_value"].fillna(1.0)
    candidates["_size"] = -candidates["effect"].abs().fillna(0.0)
    candidates = candidates.sort_values(["_priority", "_q", "_size"], kind="mergesort")
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


# ----------------------------------------------------------------------------------------------- score tables
def group_target_means(items: pd.DataFrame, targets: pd.DataFrame, probe_set: str) -> pd.DataFrame:
    """Mean log-probability of each target (rows) after each group's terms (columns), in nats.

    Per (template, group, target) the log-probabilities are averaged over the group's terms, then averaged
    over templates. Non-finite log-probabilities are left out. Rows and columns keep the run's order.
    """
    its = items.loc[(items["probe_set"] == probe_set) & (items["group"] != ""),
                    ["item_id", "template_id", "group"]]
    if its.empty or targets.empty:
        return pd.DataFrame()
    joined = targets.loc[:, ["item_id", "target", "logprob"]].merge(its, on="item_id")
    joined = joined[np.isfinite(joined["logprob"].astype(float))]
    if joined.empty:
        return pd.DataFrame()
    per_template = joined.groupby(["target", "group", "template_id"], sort=False)["logprob"].mean()
    means = per_template.groupby(level=["target", "group"], sort=False).mean().unstack("group")
    target_order = list(dict.fromkeys(targets.loc[targets["item_id"].isin(its["item_id"]), "target"]))
    group_order = list(dict.fromkeys(its["group"]))
    return means.reindex(index=[t for t in target_order if t in means.index],
                         columns=[g for g in group_order if g in means.columns])


def top_fills_table(items: pd.DataFrame, fills: pd.DataFrame, probe_set: str, *,
                    k: int = TOP_FILLS) -> dict[str, Any]:
    """Top-k fills per template and group, as on the albert-large-v2 model card.

    A fill's score for a group is its probability averaged over the group's items of that template (a fill
    outside an item's saved top-k counts as 0 for that item).
    """
    its = items.loc[items["probe_set"] == probe_set, ["item_id", "template_id", "template", "group"]]
    groups = list(dict.fromkeys(its["group"]))
    columns = [{"name": g or NO_SLOT_LABEL} for g in groups]
    joined = fills.loc[:, ["item_id", "token", "prob"]].merge(its, on="item_id")
    rows = []
    for template_id, template_items in its.groupby("template_id", sort=True):
        cells = []
        for group in groups:
            group_items = template_items[template_items["group"] == group]
            if group_items.empty:
                cells.append({"present": False, "n_items": 0, "fills": []})
                continue
            chosen = joined[(joined["template_id"] == template_id) & (joined["group"] == group)]
            scores = chosen.groupby("token", sort=False)["prob"].sum() / len(group_items)
            ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
            cells.append({
                "present": True,
                "n_items": int(len(group_items)),
                "fills": [{"token": _show_token(tok), "prob": _format_share(p), "value": float(p)}
                          for tok, p in ordered],
            })
        rows.append({"template_id": int(template_id), "template": str(template_items["template"].iloc[0]),
                     "cells": cells})
    return {"columns": columns, "rows": rows, "k": k}


def _show_token(token: Any) -> str:
    text = "" if token is None else str(token)
    return text if text.strip() else "␣" * max(len(text), 1)


def _format_share(p: float) -> str:
    percent = 100.0 * float(p)
    return "< 0.1%" if percent < 0.1 else f"{percent:.1f}%"


# ----------------------------------------------------------------------------------------------- per probe set
def _findings_table(rows: pd.DataFrame, method_index: dict[str, int]) -> list[dict[str, Any]]:
    table = []
    for _, r in rows.iterrows():
        direction = {"a>b": r["group_a"], "b>a": r["group_b"]}.get(r["direction"], "—")
        n_units = int(r["n_units"]) if _finite(r["n_units"]) else None
        # data-v (the sort key) only where the shown text does not sort right by itself: the script sorts
        # plain numbers by their text, which keeps big tables small.
        table.append({"significant": bool(r["significant"]), "cells": [
            {"text": r["metric"], "v": None},
            {"text": r["target"] or "(whole set)", "v": None},
            {"text": r["group_a"] or "—", "v": None},
            {"text": r["group_b"] or "—", "v": None},
            {"text": str(n_units) if n_units is not None else "—", "v": None},
            {"text": format_number(r["effect"], 3), "v": None},
            {"text": r["effect_unit"], "v": None},
            {"text": format_ci(r["ci_low"], r["ci_high"], 3), "v": _sort_attr(r["ci_low"], 3)},
            _p_cell(r["p_value"]),
            _p_cell(r["q_value"]),
            {"text": "yes" if r["significant"] else "no", "v": None},
            {"text": direction, "v": None},
            {"text": str(method_index[r["method"]]) if r["method"] else "—", "v": None},
        ]})
    return table


def _sort_attr(value: Any, digits: int) -> str | None:
    return f"{float(value):.{digits}f}" if _finite(value) else None


def _p_cell(value: Any) -> dict[str, Any]:
    text = format_p(value)
    return {"text": text, "v": f"{float(value):.3g}" if text.startswith("<") else None}


FINDINGS_HEADERS = ("Metric", "Target", "Group A", "Group B", "n", "Effect", "Unit", "95% CI", "p", "q",
                    "Significant", "Higher", "Method")


def _forest(rows: pd.DataFrame, *, chart_id: str, alpha: float) -> tuple[charts.Chart | None, str]:
    gaps = rows[(rows["metric"] == "logprob_gap") & (rows["target"] != "") & _finite_mask(rows["effect"])]
    if gaps.empty:
        return None, ""
    pairs = list(dict.fromkeys(zip(gaps["group_a"], gaps["group_b"], strict=True)))
    total = len(gaps)
    if len(gaps) > FOREST_MAX_ROWS:
        gaps = gaps.assign(_size=-gaps["effect"].abs()).sort_values("_size", kind="mergesort")
        gaps = gaps.head(FOREST_MAX_ROWS)
    gaps = gaps.sort_values("effect", ascending=False, kind="mergesort")
    n_sig = int(gaps["significant"].sum())
    if len(pairs) == 1:
        a, b = pairs[0]
        labels = list(gaps["target"])
        short_a, short_b = _short(a, 20), _short(b, 20)
        xlabel = f"log-probability gap, {short_a} − {short_b} (nats); > 0: more likely after {short_a}"
        legend_a, legend_b = f"significant, higher after {a}", f"significant, higher after {b}"
        what = f"{a} minus {b}"
    else:
        labels = [f"{_short(t, 24)}: {_short(a, 16)} − {_short(b, 16)}"
                  for t, a, b in zip(gaps["target"], gaps["group_a"], gaps["group_b"], strict=True)]
        xlabel = "log-probability gap, group A − group B (nats); > 0: more likely after A"
        legend_a, legend_b = "significant, group A higher", "significant, group B higher"
        what = "group A minus group B"
    top, bottom = gaps.iloc[0], gaps.iloc[-1]
    alt = (f"Forest plot of {len(gaps)} per-target log-probability gaps ({what}, in nats) with "
           f"{ci_label(alpha)} confidence intervals; {n_sig} significant at q ≤ {alpha:g}. Largest: "
           f"{labels[0]} {format_number(top['effect'])}; smallest: {labels[-1]} "
           f"{format_number(bottom['effect'])}.")
    note = (f"Showing the {len(gaps)} largest of {total} per-target comparisons; all of them are in the "
            f"findings table." if total > len(gaps) else "")
    chart = charts.forest_plot(labels, list(gaps["effect"]), list(gaps["ci_low"]), list(gaps["ci_high"]),
                               list(gaps["significant"]), chart_id=chart_id, xlabel=xlabel, alt=alt,
                               legend_a=legend_a, legend_b=legend_b)
    return chart, note


def _heatmap(items: pd.DataFrame, targets: pd.DataFrame, probe_set: str, *,
             chart_id: str) -> charts.Chart | None:
    means = group_target_means(items, targets, probe_set)
    if means.empty or means.shape[1] < 1:
        return None
    values = means.to_numpy(dtype=float)
    centred = values - np.nanmean(values, axis=1, keepdims=True)
    text = [[format_number(v, 1) if math.isfinite(v) else "" for v in row] for row in values]
    finite = np.where(np.isfinite(centred), np.abs(centred), -1.0)
    i, j = np.unravel_index(int(np.argmax(finite)), finite.shape)
    alt = (f"Heatmap of the mean log-probability (nats) of {means.shape[0]} targets (rows) after the terms "
           f"of {means.shape[1]} groups (columns); colour shows each value minus the target's mean over the "
           f"groups. Largest deviation: '{means.index[i]}' after {means.columns[j]} terms, "
           f"{format_number(centred[i, j])} nats.")
    return charts.heatmap(
        [str(t) for t in means.index], [str(g) for g in means.columns], centred, text, chart_id=chart_id,
        colourbar_label="vs the target's mean over groups\n(nats; purple = higher)",
        xlabel="group (cells: mean log-probability, nats)", ylabel="target", alt=alt)


def _set_bias(rows: pd.DataFrame, bias: dict[str, Any] | None) -> dict[str, Any] | None:
    """The executive-summary numbers of one probe set, from :func:`albert_audit.metrics.summarise_bias`."""
    if bias is None:
        return None
    score_rows = rows[rows["metric"] == "bias_score"]
    unit = score_rows["effect_unit"].iloc[0] if len(score_rows) else ""
    gaps = rows[(rows["metric"] == "association_gap") & _finite_mask(rows["p_value"])]
    share = bias.get("share_significant")
    top = bias.get("top_targets") or {}
    return {
        "score": format_number(bias["bias_score"]), "score_v": _number_attr(bias["bias_score"]),
        "unit": unit,
        "ci": format_ci(bias["ci_low"], bias["ci_high"]),
        "ci_low_v": _number_attr(bias["ci_low"]), "ci_high_v": _number_attr(bias["ci_high"]),
        "q": format_p(bias.get("q_value")), "q_v": _number_attr(bias.get("q_value")),
        "share": f"{100 * float(share):.0f}% of {len(gaps)}" if _finite(share) else "—",
        "share_v": _number_attr(share), "share_total": len(gaps),
        "top_targets": [{"group": g, "targets": ", ".join(ts[:TOP_TARGETS_PER_GROUP])}
                        for g, ts in top.items() if ts],
        "effect": float(bias["bias_score"]) if _finite(bias["bias_score"]) else float("nan"),
        "ci_low": float(bias["ci_low"]) if _finite(bias["ci_low"]) else float("nan"),
        "ci_high": float(bias["ci_high"]) if _finite(bias["ci_high"]) else float("nan"),
        "significant": _finite(bias.get("q_value")) and bool(rows.loc[score_rows.index, "significant"].any()),
    }


def _probe_set_context(name: str, index: int, run: RunTables, findings: pd.DataFrame, *, alpha: float,
                       method_index: dict[str, int], top_k: int,
                       bias: dict[str, Any] | None) -> dict[str, Any]:
    items = run.items
    rows = findings[findings["probe_set"] == name]
    its = items[items["probe_set"] == name]
    groups = []
    for group, group_items in its.groupby("group", sort=False):
        terms = list(dict.fromkeys(group_items.sort_values("term_index", kind="mergesort")["term"]))
        groups.append({"name": group or NO_SLOT_LABEL, "terms": ", ".join(t for t in terms if t) or "—",
                       "n_terms": sum(1 for t in terms if t)})
    set_targets = run.targets[run.targets["item_id"].isin(its["item_id"])] if len(run.targets) else run.targets
    target_names = list(dict.fromkeys(set_targets["target"])) if len(set_targets) else []
    anchor = f"set-{index + 1}-{_slug(name)}"
    tested = rows[_finite_mask(rows["q_value"])]
    forest, forest_note = _forest(rows, chart_id=f"chart-{index + 1}-forest", alpha=alpha)
    heat = _heatmap(items, run.targets, name, chart_id=f"chart-{index + 1}-heatmap") if len(run.targets) else None
    methods_here = [{"index": method_index[m], "text": m} for m in dict.fromkeys(rows["method"]) if m]
    return {
        "name": name,
        "anchor": anchor,
        "n_templates": int(its["template_id"].nunique()),
        "n_items": int(len(its)),
        "groups": groups,
        "n_groups": sum(1 for g in groups if g["name"] != NO_SLOT_LABEL),
        "targets": target_names,
        "n_targets": len(target_names),
        "bias": _set_bias(rows, bias),
        "n_tests": int(len(tested)),
        "n_significant": int(tested["significant"].sum()),
        "sentences": [finding_sentence(r, alpha=alpha) for r in top_findings(rows)],
        "forest": _chart_dict(forest),
        "forest_note": forest_note,
        "heatmap": _chart_dict(heat),
        "fills": top_fills_table(items, run.fills, name, k=min(TOP_FILLS, top_k) if top_k else TOP_FILLS),
        "findings_headers": [f"{ci_label(alpha)} CI" if h == "95% CI" else h for h in FINDINGS_HEADERS],
        "findings_rows": _findings_table(rows, method_index),
        "findings_caption": f"{len(rows)} row{'s' if len(rows) != 1 else ''} of findings.csv",
        "methods": methods_here,
    }


def _chart_dict(chart: charts.Chart | None) -> dict[str, Any] | None:
    if chart is None:
        return None
    # The SVG is produced by charts.svg_fragment, whose text matplotlib has escaped; it is not user text.
    return {"id": chart.chart_id, "svg": Markup(chart.svg), "alt": chart.alt}


# ----------------------------------------------------------------------------------------------- metadata
def _text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _seconds(value: Any) -> str:
    return f"{float(value):.2f} s" if _finite(value) else "—"


def _header(summary: dict[str, Any], probe_sets: list[str]) -> dict[str, Any]:
    model = summary.get("model") or {}
    hashes = model.get("weights_sha256") or {}
    if isinstance(hashes, dict) and hashes:
        weights = "; ".join(f"{f}: {str(h)[:16]}…" if len(str(h)) > 16 else f"{f}: {h}"
                            for f, h in hashes.items())
    else:
        weights = "—"
    runtime = summary.get("runtime") or {}
    return {
        "model_id": _text(model.get("id")),
        "revision": _text(model.get("revision")),
        "commit": _text(model.get("commit")),
        "weights": weights,
        "date": _text(summary.get("created_utc")),
        "device": _text(summary.get("device")),
        "dtype": _text(summary.get("dtype")),
        "probe_sets": ", ".join(probe_sets) or "—",
        "versions": " · ".join(f"{k} {v}" for k, v in runtime.items()) or "—",
        "tool_version": _text(summary.get("tool_version")),
    }


_SHOWN_SUMMARY_KEYS = {"schema_version", "tool_version", "created_utc", "model", "runtime", "device", "dtype",
                       "batch_size", "seed", "alpha", "n_resamples", "top_k", "timings_s", "counts",
                       "probe_files", "multi_piece_method"}


def _appendix(summary: dict[str, Any]) -> dict[str, Any]:
    model = summary.get("model") or {}
    model_rows = [(k, _text(v)) for k, v in model.items() if k != "weights_sha256"]
    hashes = model.get("weights_sha256") or {}
    weights = [{"file": str(f), "sha256": str(h)} for f, h in hashes.items()] if isinstance(hashes, dict) else []
    batch = summary.get("batch_size")
    run_rows = [
        ("tool version", _text(summary.get("tool_version"))),
        ("summary schema version", _text(summary.get("schema_version"))),
        ("created (UTC)", _text(summary.get("created_utc"))),
        ("device", _text(summary.get("device"))),
        ("dtype", _text(summary.get("dtype"))),
        ("batch size", _text(batch)),
        ("seed", _text(summary.get("seed"))),
        ("alpha (FDR level)", _text(summary.get("alpha"))),
        ("bootstrap resamples", _text(summary.get("n_resamples"))),
        ("top-k fills saved", _text(summary.get("top_k"))),
        ("multi-piece target method", _text(summary.get("multi_piece_method"))),
    ]
    counts = [(k, _text(v)) for k, v in (summary.get("counts") or {}).items()]
    timings = [(k, _seconds(v)) for k, v in (summary.get("timings_s") or {}).items()]
    versions = [(k, _text(v)) for k, v in (summary.get("runtime") or {}).items()]
    files = [{"name": _text(f.get("name")), "path": _text(f.get("path")), "sha256": _text(f.get("sha256"))}
             for f in summary.get("probe_files") or [] if isinstance(f, dict)]
    other = [(k, _text(v)) for k, v in summary.items() if k not in _SHOWN_SUMMARY_KEYS]
    return {"model": model_rows, "weights": weights, "run": run_rows, "counts": counts, "timings": timings,
            "versions": versions, "probe_files": files, "other": other}


# ----------------------------------------------------------------------------------------------- the whole report
def build_context(run: RunTables) -> dict[str, Any]:
    """Everything the report templates show, computed from one run folder's tables and summary.json.

    Needs ``run.findings`` (findings.csv). Keys: ``title``, ``header``, ``summary`` (executive summary),
    ``probe_sets`` (one dict per probe set), ``methods``, ``appendix``, ``toc``, ``chart_ids`` and
    ``n_charts`` (every chart the page shows, each rendered as one inline ``<svg>``).
    """
    if run.findings is None:
        raise AuditError(f"{run.folder}: findings.csv missing; the report needs the findings table")
    findings = normalise_findings(run.findings)
    summary = run.summary or {}
    alpha = float(summary["alpha"]) if _finite(summary.get("alpha")) else 0.05
    top_k = int(summary["top_k"]) if _finite(summary.get("top_k")) else TOP_FILLS
    names = list(dict.fromkeys(list(run.items["probe_set"]) + list(findings["probe_set"])))
    method_index = {m: i + 1 for i, m in enumerate(dict.fromkeys(m for m in findings["method"] if m))}
    summaries = summarise_bias(findings, top_n=TOP_TARGETS_PER_GROUP)
    sets = [_probe_set_context(name, i, run, findings, alpha=alpha, method_index=method_index, top_k=top_k,
                               bias=summaries.get(name))
            for i, name in enumerate(names)]
    summary_chart = _summary_chart(sets, alpha=alpha)
    tested = findings[_finite_mask(findings["q_value"])]
    chart_ids = [c["id"] for c in _iter_charts(summary_chart, sets)]
    header = _header(summary, names)
    metrics_present = list(dict.fromkeys(findings["metric"]))
    return {
        "title": f"Bias audit: {header['model_id']}",
        "header": header,
        "summary": {
            "alpha": f"{alpha:g}",
            "n_tests": int(len(tested)),
            "n_significant": int(tested["significant"].sum()),
            "n_probe_sets": len(sets),
            "chart": summary_chart,
        },
        "probe_sets": sets,
        "methods": {
            "alpha": f"{alpha:g}",
            "ci_level": ci_label(alpha),
            "n_resamples": _text(summary.get("n_resamples")),
            "seed": _text(summary.get("seed")),
            "multi_piece_method": _text(summary.get("multi_piece_method")),
            "metrics": [{"id": m, "label": METRIC_LABELS.get(m, m), "present": m in metrics_present}
                        for m in list(METRIC_LABELS) + [m for m in metrics_present if m not in METRIC_LABELS]],
            "method_strings": [{"index": i, "text": m} for m, i in method_index.items()],
            "top_fills": TOP_FILLS,
            "forest_max_rows": FOREST_MAX_ROWS,
        },
        "appendix": _appendix(summary),
        "toc": _toc(sets),
        "chart_ids": chart_ids,
        "n_charts": len(chart_ids),
    }


def _summary_chart(sets: list[dict[str, Any]], *, alpha: float) -> dict[str, Any] | None:
    points = [(s["name"], s["bias"]) for s in sets if s["bias"] and math.isfinite(s["bias"]["effect"])]
    if not points:
        return None
    units = {b["unit"] for _, b in points}
    unit = units.pop() if len(units) == 1 else "mixed units"
    alt = (f"Bias score of {len(points)} probe sets with {ci_label(alpha)} confidence intervals ({unit}); "
           + "; ".join(f"{label} {format_number(b['effect'])}" for label, b in points) + ".")
    chart = charts.forest_plot(
        [label for label, _ in points], [b["effect"] for _, b in points], [b["ci_low"] for _, b in points],
        [b["ci_high"] for _, b in points], [b["significant"] for _, b in points], chart_id="chart-summary",
        xlabel=f"probe-set bias score: mean |association gap| over targets ({unit})", alt=alt,
        legend_a=f"significant (q ≤ {alpha:g})", legend_b="", ratio_axis=False, show_legend=False)
    return _chart_dict(chart)


def _iter_charts(summary_chart: dict[str, Any] | None, sets: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    if summary_chart:
        yield summary_chart
    for s in sets:
        for key in ("forest", "heatmap"):
            if s[key]:
                yield s[key]


def _toc(sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"anchor": "summary", "label": "Executive summary", "children": []},
        {"anchor": "probe-sets", "label": "Probe sets",
         "children": [{"anchor": s["anchor"], "label": s["name"]} for s in sets]},
        {"anchor": "methods", "label": "Methods", "children": []},
        {"anchor": "appendix", "label": "Appendix: run metadata", "children": []},
    ]
