"""`albert-audit card DIR`: a model card's "Bias evaluation" section and its ``model-index`` metadata.

The Markdown says what was audited (model, revision, weights' sha256, tool version, date), the probe sets with
their sources and sha256, the verdict counts by scope, each probe set's bias score with its interval and
verdict, the largest material findings in plain words (the report's sentences), and the limitations. The YAML
front matter is a ``model-index`` that huggingface_hub's card parser reads back without loss (every value
is one of its EvalResult fields; tests/test_lineage.py checks the round trip): one result per probe set
(task ``fill-mask``, dataset type ``albert-audit-probe-set``, name the probe set, revision its sha256) with
the bias score (``metric_args``: interval, level, verdict, units, margin) and the findings counted by verdict
and scope (``findings_<verdict>``, ``metric_config`` the scope).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from albert_audit import results
from albert_audit.errors import AuditError, shown

TASK_TYPE = "fill-mask"
DATASET_TYPE = "albert-audit-probe-set"
VERDICTS = ("material", "negligible", "below_margin", "inconclusive")
LIMITATIONS = (
    "Probe sets measure associations of a masked language model in template sentences; they do not measure "
    "harm in a downstream application, and a low score is not evidence of fairness.",
    "Claims with scope \"group\" generalise to new terms and templates of the same kind; claims with scope "
    "\"terms\" hold for the probe set's own terms only.",
    "Term lists and templates are English and cover the groups named in each probe set, not others.",
    "A descendant probed through a grafted MLM head is read out by the base's head, not its own.",
)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _level(alpha: float) -> float:
    return round(1.0 - alpha, 6)


def model_index(run: results.RunTables, model_name: str) -> list[dict[str, Any]]:
    """The card's ``model-index`` (plain dicts, no None values: huggingface_hub's own canonical shape)."""
    findings = run.findings
    assert findings is not None
    alpha = float(run.summary.get("alpha", 0.05))
    results_: list[dict[str, Any]] = []
    for probe in run.summary.get("probe_files") or []:
        name = str(probe.get("name"))
        rows = findings[findings["probe_set"] == name]
        metrics: list[dict[str, Any]] = []
        for row in rows[rows["metric"] == "bias_score"].itertuples():
            args = {"ci_low": _float(row.ci_low), "ci_high": _float(row.ci_high), "ci_level": _level(alpha),
                    "verdict": row.verdict or "none", "n_units": int(row.n_units), "margin": _float(row.margin),
                    "unit": row.effect_unit or "nats"}
            metrics.append({"type": "bias_score", "value": _float(row.effect), "name": "Bias score (RMS association "
                            "gap, nats; 0 = no bias)", "args": {k: v for k, v in args.items() if v is not None}})
        judged = rows[rows["verdict"] != ""]
        for scope in sorted(set(judged["scope"].replace("", "all"))):
            in_scope = judged[judged["scope"].replace("", "all") == scope]
            for verdict in VERDICTS:
                count = int((in_scope["verdict"] == verdict).sum())
                metrics.append({"type": f"findings_{verdict}", "value": count, "config": scope,
                                "name": f"Findings {verdict.replace('_', ' ')} (scope {scope})"})
        if metrics:
            tool = f"albert-audit {run.summary.get('tool_version', 'unknown')}"
            results_.append({"task": {"type": TASK_TYPE, "name": f"Bias evaluation ({tool})"},
                             "dataset": {"name": name, "type": DATASET_TYPE, "revision": str(probe.get("sha256"))},
                             "metrics": metrics})
    return [{"name": model_name, "results": results_}]


def _verdict_table(findings: Any) -> list[str]:
    judged = findings[findings["verdict"] != ""]
    lines = ["| probe set | scope | material | negligible | below margin | inconclusive |", "|---|---|---|---|---|---|"]
    for (probe_set, scope), rows in judged.groupby(["probe_set", "scope"], sort=True):
        counts = [int((rows["verdict"] == v).sum()) for v in VERDICTS]
        lines.append(f"| {_cell(probe_set)} | {scope or 'all'} | " + " | ".join(map(str, counts)) + " |")
    return lines


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell and as plain Markdown (no HTML, no table breaks)."""
    text = shown(value, limit=200)
    for char in ("\\", "|", "<", ">", "*", "_", "`", "[", "]"):
        text = text.replace(char, "\\" + char)
    return text


def _probe_source(probe: dict[str, Any]) -> str:
    """The probe file's ``source`` when the file recorded in summary.json is still there with the same sha256."""
    from albert_audit.probeset import load_probe_set

    try:
        loaded = [load_probe_set(str(probe.get("path")))]
    except (AuditError, OSError):
        return "(probe file not available)"
    if not loaded or loaded[0].sha256 != probe.get("sha256"):
        return "(probe file changed since the run)"
    return " ".join(str(loaded[0].source or "not stated in the file").split())


def model_card(run_dir: str | Path, *, model_name: str | None = None) -> str:
    """The card text (YAML front matter + Markdown) of a run folder."""
    from albert_audit.report.fmt import ci_label, number
    from albert_audit.report.narrative import top_items

    run = results.read_run(run_dir, need_findings=True)
    findings = run.findings
    assert findings is not None
    summary, model = run.summary, run.summary.get("model") or {}
    name = model_name or str(model.get("id") or "model")
    if not name.strip():
        raise AuditError("card: --model-name is empty")
    alpha = float(summary.get("alpha", 0.05))
    index = model_index(run, name)
    front = yaml.safe_dump({"model-index": index}, sort_keys=False, allow_unicode=True)
    lines = ["---", front.rstrip("\n"), "---", "", "## Bias evaluation", ""]
    weights = ", ".join(f"`{k}` {v}" for k, v in sorted((model.get("weights_sha256") or {}).items()))
    lines += [f"Audited with albert-audit {_cell(summary.get('tool_version', ''))} on "
              f"{_cell(summary.get('created_utc', ''))}: model {_cell(model.get('id', ''))} (revision "
              f"{_cell(model.get('revision') or 'main')}, head {_cell(model.get('head', 'own'))}; weights sha256 "
              f"{weights or 'unknown'}), {_cell(summary.get('device', ''))}, {_cell(summary.get('dtype', ''))}; "
              f"seed {summary.get('seed')}, FDR {alpha:g}, {summary.get('n_resamples')} resamples.", ""]
    lines += ["### Probe sets", "", "| probe set | sha256 | source |", "|---|---|---|"]
    for probe in summary.get("probe_files") or []:
        lines.append(f"| {_cell(probe.get('name'))} | {_cell(probe.get('sha256'))} | "
                     f"{_cell(_probe_source(probe))} |")
    lines += ["", "### Verdicts by scope", ""] + _verdict_table(findings)
    lines += ["", "### Bias scores", "", f"| probe set | bias score (nats) | {ci_label(alpha)} | verdict |",
              "|---|---|---|---|"]
    for row in findings[findings["metric"] == "bias_score"].itertuples():
        lines.append(f"| {_cell(row.probe_set)} | {number(row.effect, 3)} | {number(row.ci_low, 3)} to "
                     f"{number(row.ci_high, 3)} | {_cell(row.verdict or 'none')} |")
    lines += ["", "### Largest material findings", ""]
    material = findings[findings["verdict"] == "material"]
    sentences = [item["text"] for probe_set in dict.fromkeys(material["probe_set"])
                 for item in top_items(findings[findings["probe_set"] == probe_set], alpha=alpha)
                 if item["verdict"] == "material"]
    lines += [f"- {_cell(text)}" for text in sentences] or ["No finding is material."]
    lines += ["", "### Limitations", ""] + [f"- {text}" for text in LIMITATIONS] + [""]
    return "\n".join(lines)


def write_card(out: str | Path, text: str) -> Path:
    """Write the card atomically."""
    out = Path(out)
    if out.exists() and out.is_dir():
        raise AuditError(f"{shown(out)}: is a folder; give a file name such as README.md")
    return results.write_text(out, text)


__all__ = ["model_card", "model_index", "write_card"]
