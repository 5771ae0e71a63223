"""report.html's reference-alignment part: the sentence per verdict (the CI rule), the labelled scatter with
its fit line, escaping of target names, and the section end to end from a run folder."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from albert_audit.inference.reference_slope import logit
from albert_audit.metrics import compute_findings
from albert_audit.metrics.reference_alignment import Points
from albert_audit.report.alignment_section import alignment_sentence
from albert_audit.report.context import build_context
from albert_audit.report.render import render_report
from albert_audit.report.run_figures import alignment_chart
from albert_audit.results import read_run
from tests.test_metrics import TWO, make_tables
from tests.test_report import parse

HOSTILE = '<b>&"nurse</b>'


def write_scored_run(folder: Path, items: pd.DataFrame, targets: pd.DataFrame, fills: pd.DataFrame,
                     findings: pd.DataFrame) -> Path:
    """A run folder of score tables and their findings, with the summary.json fields the report reads."""
    folder.mkdir(parents=True, exist_ok=True)
    items.to_parquet(folder / "items.parquet", index=False)
    targets.to_parquet(folder / "targets.parquet", index=False)
    fills.to_parquet(folder / "fills.parquet", index=False)
    findings.to_csv(folder / "findings.csv", index=False)
    summary = {"schema_version": 1, "tool_version": "0.1.0", "created_utc": "2026-01-02T03:04:05+00:00",
               "model": {"id": "toy", "revision": "main"}, "device": "cpu", "dtype": "float32", "seed": 0,
               "alpha": 0.05, "n_resamples": 400, "top_k": 5, "counts": {"items": len(items)},
               "probe_files": [{"name": n, "path": f"{n}.yaml", "sha256": "ab" * 32}
                               for n in pd.unique(items["probe_set"])]}
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return folder


def _row(slope: float, low: float, high: float, p: float = 0.004) -> dict:
    return {"metric": "reference_alignment", "effect": slope, "ci_low": low, "ci_high": high, "p_value": p,
            "group_a": "female", "group_b": "male", "method": ""}


@pytest.mark.parametrize(("slope", "low", "high", "ending"), [
    (0.8, 0.45, 1.2, "grows 0.80 nats per logit of the reference share: it tracks the reference (95% CI of the "
                     "slope 0.45 to 1.20, above 0 and includes 1; p = 0.004; 7 words)."),
    (2.1, 1.3, 2.9, "grows 2.10 nats per logit of the reference share: it exceeds the reference (amplifies it) "
                    "(95% CI of the slope 1.30 to 2.90, above 1;"),
    (-0.9, -1.4, -0.3, "falls 0.90 nats per logit of the reference share: it inverts the reference (95% CI of "
                       "the slope -1.40 to -0.30, below 0;"),
    (0.4, 0.1, 0.7, "it follows the reference but attenuates it (95% CI of the slope 0.10 to 0.70, between 0 and 1;"),
    (0.6, -0.2, 1.4, "whether it tracks, exceeds or inverts the reference is inconclusive (95% CI of the slope "
                     "-0.20 to 1.40, includes 0;"),
    (1e-6, 5e-7, 1.5e-6, "it is flat: from a share of 10% to one of 90% the skew moves by less than log 1.25 "
                         "(95% CI of the slope"),
])
def test_sentence_names_the_verdict_by_where_the_ci_lies(slope, low, high, ending):
    text = alignment_sentence(_row(slope, low, high), alpha=0.05, n_words=7)
    assert text.startswith("The model's skew (female − male) ")
    assert ending in text


def test_sentence_level_follows_alpha_and_undefined_rows_say_why():
    assert "97.5% CI of the slope" in alignment_sentence(_row(0.8, 0.45, 1.2), alpha=0.025)
    undefined = {**_row(float("nan"), float("nan"), float("nan")),
                 "method": "target-keyed reference; undefined: reference alignment needs at least 3 words"}
    assert alignment_sentence(undefined, alpha=0.05) == ("The reference alignment is undefined: reference "
                                                         "alignment needs at least 3 words.")


def _points(words: list[str], shares: list[float], effects: list[float]) -> Points:
    return Points(words=words, shares=np.array(shares), effects=np.array(effects), group_a="female",
                  group_b="male", what="")


def test_chart_labels_every_point_escapes_names_and_draws_the_fit():
    words = ["nurse", "engineer", HOSTILE, "pilot"]
    shares = [0.9, 0.15, 0.6, 0.05]
    x = logit(np.array(shares))
    effects = list(0.5 * x + 0.1)
    chart = alignment_chart(_points(words, shares, effects), pd.Series(_row(0.5, 0.2, 0.8)), chart_id="c-1")
    svg = str(chart["svg"])
    root = ET.fromstring(svg)  # well-formed: the hostile name did not become markup
    texts = ["".join(t.itertext()) for t in root.iter() if str(t.tag).rpartition("}")[2] == "text"]
    for word in words:
        assert word in texts  # every point carries its label
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg
    assert "least-squares fit: 0.50 nats per logit" in texts and "slope 1: tracks the reference" in texts
    assert chart["alt"].startswith("Scatter of 4 words") and "slope 0.50 nats per logit" in chart["alt"]


def _alignment_run(folder: Path, slope: float) -> Path:
    shares = {"nurse": 0.9, "engineer": 0.15, "clerk": 0.6, "pilot": 0.05, "teacher": 0.75, HOSTILE: 0.4}
    gaps = {t: slope * float(logit(np.array([s]))[0]) for t, s in shares.items()}
    items, targets, fills = make_tables(groups=TWO, targets=tuple(shares), gaps=gaps, noise=0.1)
    targets["reference_share"] = targets["target"].map(shares)
    findings = compute_findings(items, targets, fills, seed=0, n_resamples=400)
    return write_scored_run(folder, items, targets, fills, findings)


@pytest.mark.parametrize(("slope", "verdict"), [(1.0, "tracks"), (2.5, "exceeds"), (-1.0, "inverts")])
def test_report_shows_the_alignment_sentence_and_chart(tmp_path, slope, verdict):
    run = _alignment_run(tmp_path / "run", slope)
    html = render_report(run).read_text(encoding="utf-8")
    assert parse(html).errors == []
    context = build_context(read_run(run, need_findings=True))
    section = context["probe_sets"][0]["alignment"]
    assert section["verdict"] == verdict and f"badge alignment-{verdict}" in html
    assert section["sentence"] in html.replace("&#39;", "'")
    assert "chart-1-alignment" in context["chart_ids"] and html.count("<svg") == context["n_charts"]
    svg = re.search(r'<svg id="chart-1-alignment".*?</svg>', html, flags=re.S).group(0)
    assert "&lt;b&gt;&amp;" in svg and "<b>" not in svg
    row = pd.read_csv(run / "findings.csv").query("metric == 'reference_alignment'").iloc[0]
    assert f"{abs(row['effect']):.2f} nats per logit" in section["sentence"]


def test_sets_without_a_reference_get_no_alignment_section(tmp_path):
    items, targets, fills = make_tables(groups=TWO)
    findings = compute_findings(items, targets, fills, seed=0, n_resamples=200)
    run = write_scored_run(tmp_path / "run", items, targets, fills, findings)
    context = build_context(read_run(run, need_findings=True))
    assert context["probe_sets"][0]["alignment"] is None
    assert "Reference alignment" not in render_report(run).read_text(encoding="utf-8")


def test_a_tiny_slope_does_not_read_as_zero():
    text = alignment_sentence(_row(9.2e-07, 5.9e-07, 1.0e-06), alpha=0.05)
    assert "grows 9.2e-07 nats per logit" in text and "slope 5.9e-07 to 1.0e-06" in text
