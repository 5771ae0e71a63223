"""compare.html: renders from a compare folder written in the test, its numbers trace to deltas.csv and to
each model's own findings.csv, untrusted text stays text, the utility verdict reads the ratio the right way
round, and every confidence level is printed from alpha (97.5% for alpha = 0.025, on both pages).
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from albert_audit import contract, registry
from albert_audit.errors import AuditError
from albert_audit.model_deltas import CHANGES, MATERIAL_CHANGES
from albert_audit.report import fmt
from albert_audit.report.compare_context import build_compare_context, utility_verdict
from albert_audit.report.compare_render import render_compare
from albert_audit.report.render import render_report
from tests.compare_fixture import (
    BASE_ID,
    CANDIDATES,
    JINJA_LITERAL,
    PROBE_SETS,
    QUOTES,
    XSS_IMG,
    XSS_SCRIPT,
    make_compare_folder,
)
from tests.test_report import make_fixture_run, parse

LEVEL_RE = re.compile(r"(\d+(?:\.\d+)?)% (?:CI\b|confidence|paired|BCa|percentile bootstrap confidence)")


class TableRows(HTMLParser):
    """The body rows of one table (by id): per row, its attributes and each cell's text (th and td)."""

    def __init__(self, table_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.table_id, self.rows, self.headers = table_id, [], []
        self._depth, self._cell, self._in_head = 0, None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and (self._depth or attrs.get("id") == self.table_id):
            self._depth += 1
        elif self._depth and tag == "thead":
            self._in_head = True
        elif self._depth and tag == "tr" and not self._in_head:
            self.rows.append({"attrs": attrs, "cells": []})
        elif self._depth and tag in ("td", "th"):
            self._cell = {"attrs": attrs, "text": ""}
            (self.headers if self._in_head else self.rows[-1]["cells"]).append(self._cell)

    def handle_endtag(self, tag):
        if tag == "table" and self._depth:
            self._depth -= 1
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def table(html: str, table_id: str) -> TableRows:
    parser = TableRows(table_id)
    parser.feed(html)
    assert parser.headers or parser.rows, f"no table {table_id}"
    return parser


@pytest.fixture(scope="module")
def compare_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    folder = make_compare_folder(tmp_path_factory.mktemp("cmp") / "out")
    path = render_compare(folder)
    return folder, path.read_text(encoding="utf-8"), build_compare_context(folder)


def _deltas(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / contract.DELTAS_FILE, keep_default_na=False, na_values=[""])


def _own_ci(folder: Path, run: str, probe_set: str) -> str:
    findings = pd.read_csv(folder / run / contract.FINDINGS_FILE, keep_default_na=False)
    row = findings[(findings["probe_set"] == probe_set) & (findings["metric"] == "bias_score")].iloc[0]
    return f"[{float(row['ci_low']):.2f}, {float(row['ci_high']):.2f}]"


# ------------------------------------------------------------------------------------------------ the kit
def test_confidence_level_is_exact_not_rounded() -> None:
    assert [fmt.ci_level(a) for a in (0.05, 0.025, 0.01, 0.1, 0.001)] == ["95%", "97.5%", "99%", "90%", "99.9%"]
    assert fmt.ci_label(0.025) == "97.5% CI"


def test_formatting_kit() -> None:
    assert fmt.number(-0.0) == "0.00" and fmt.number(float("nan")) == fmt.number(None) == "—"
    assert fmt.number(0.0001, keep_tiny=True) == "1.0e-04" and fmt.number(0.0001) == "0.00"
    assert fmt.number(0.5, signed=True) == "+0.50"
    assert fmt.ci(-0.1, 0.2, signed=True) == "[-0.10, +0.20]" and fmt.ci(1, float("inf")) == "—"
    assert fmt.p_value(0.0004) == "< 0.001" and fmt.q_phrase(0.012) == "q = 0.012"
    assert fmt.slug("A" * 50 + " b") == "a" * 40 and fmt.slug(XSS_SCRIPT) == "script-alert-1-script"
    assert fmt.text(float("nan")) == fmt.text(None) == fmt.text("") == "—" and fmt.text(10000.0) == "10000"
    assert fmt.text({"b": 1, "a": "<x>"}) == '{"a": "<x>", "b": 1}'


# ------------------------------------------------------------------------------------------------ the page
def test_compare_page_is_well_formed_with_valid_unique_charts(compare_page) -> None:
    _, html, context = compare_page
    collector = parse(html)
    assert collector.errors == [] and collector.stack == []
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    # 2 probe sets x 2 candidates x (2 forests + 1 scatter)
    assert len(svgs) == context["n_charts"] == len(context["chart_ids"]) == 12
    for svg in svgs:
        root = ET.fromstring(svg)
        title = root.find("{http://www.w3.org/2000/svg}title")
        title = title if title is not None else root.find("title")
        assert root.get("role") == "img" and title is not None and title.text
    ids = [attrs["id"] for _, attrs in collector.elements if attrs.get("id")]
    assert len(ids) == len(set(ids)), "duplicate ids"
    anchors = {attrs["href"][1:] for tag, attrs in collector.elements if tag == "a" and attrs.get("href")}
    assert anchors <= set(ids), "links point at missing sections"


def test_compare_page_is_self_contained_and_runs_no_script(compare_page) -> None:
    _, html, _ = compare_page
    collector = parse(html)
    for tag, attrs in collector.elements:
        assert tag not in ("script", "link", "iframe", "object", "embed", "img", "base"), tag
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = (attrs.get(name) or "").strip()
            assert not value or value.startswith("#"), (tag, name, value)
    assert "http://" not in html and "https://" not in html
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "default-src 'none'" in csp and "script-src 'none'" in csp


def test_probe_text_and_labels_are_escaped(compare_page) -> None:
    """Probe-set names, targets, group names, model labels and notes carry markup and quotes: all shown as text."""
    _, html, _ = compare_page
    collector = parse(html)
    tags = [tag for tag, _ in collector.elements]
    assert "script" not in tags and "img" not in tags and "b" not in tags
    for tag, attrs in collector.elements:
        for name in attrs:
            assert not name.startswith("on"), (tag, name)
    text = "".join(collector.text)
    targets = [t for _, ts in PROBE_SETS.values() for t in ts]
    groups = [g for gs, _ in PROBE_SETS.values() for g in gs]
    for hostile in [*PROBE_SETS, *targets, *groups, *CANDIDATES, BASE_ID, f"note {XSS_SCRIPT}", f"a note {XSS_IMG}"]:
        assert hostile in text, hostile
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and JINJA_LITERAL in text and QUOTES in text
    # Attribute values come back exactly (a `"` in a name cannot end the attribute).
    shown = {attrs["data-probe-set"] for _, attrs in collector.elements if "data-probe-set" in attrs}
    assert shown == set(PROBE_SETS)
    grafted = [attrs["data-grafted"] for _, attrs in collector.elements if "data-grafted" in attrs]
    assert grafted == [CANDIDATES[1]]


def test_bias_table_shows_each_models_own_interval_and_the_paired_delta(compare_page) -> None:
    folder, html, _ = compare_page
    deltas = _deltas(folder)
    scores = deltas[deltas["metric"] == "bias_score"]
    rows = table(html, "bias-table").rows
    assert len(rows) == len(scores) == 4
    runs = {CANDIDATES[0]: "candidate_1", CANDIDATES[1]: "candidate_2"}
    for row, (_, d) in zip(rows, scores.iterrows(), strict=True):
        cells = [c["text"] for c in row["cells"]]
        probe_set, candidate = cells[0], cells[1]
        assert (probe_set, candidate) == (d["probe_set"], d["candidate"])
        assert cells[2] == f"{d['base_effect']:.2f}" and cells[4] == f"{d['candidate_effect']:.2f}"
        assert cells[3] == _own_ci(folder, "base", probe_set)  # the base's own run, never the candidate's
        assert cells[5] == _own_ci(folder, runs[candidate], probe_set)
        assert cells[3] != cells[5]
        assert cells[6] == f"{d['delta']:+.2f}" and cells[7] == f"[{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]"
        assert float(row["cells"][6]["attrs"]["data-v"]) == d["delta"]
        assert cells[8] == fmt.p_value(d["q_value"]) and cells[9].strip() == d["change"].replace("_", " ")


def test_changed_table_lists_every_changed_delta(compare_page) -> None:
    folder, html, context = compare_page
    deltas = _deltas(folder)
    changed = deltas[deltas["change"].isin(MATERIAL_CHANGES)]
    rows = table(html, "changed-table").rows
    assert len(rows) == len(changed) == context["n_changed"]
    seen = set()
    for row in rows:
        change, candidate, probe_set, metric, target, pair, base, cand, delta, ci, p, q, scope, verdicts = \
            [c["text"].strip() for c in row["cells"]]
        match = changed[(changed["candidate"] == candidate) & (changed["probe_set"] == probe_set)
                        & (changed["target"].fillna("") == ("" if target == "(set level)" else target))
                        & (changed["metric"].map(lambda m: registry.label(m, short=True)) == metric)]
        assert len(match) == 1, (candidate, probe_set, metric, target)
        d = match.iloc[0]
        assert change == d["change"].replace("_", " ") and row["attrs"]["data-change"] == d["change"]
        assert pair == f"{d['group_a']} vs {d['group_b']}"
        assert (base, cand, delta) == (f"{d['base_effect']:.2f}", f"{d['candidate_effect']:.2f}", f"{d['delta']:+.2f}")
        assert ci == f"[{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]"
        assert (p, q) == (fmt.p_value(d["p_value"]), fmt.p_value(d["q_value"]))
        assert scope == (d["scope"] if isinstance(d["scope"], str) and d["scope"] else "—")
        labels = {"material": "material", "inconclusive": "inconclusive"}
        assert verdicts == f"{labels.get(d['base_verdict'], '—')} → {labels.get(d['candidate_verdict'], '—')}"
        seen.add(match.index[0])
    assert len(seen) == len(changed)
    counts = table(html, "change-counts").rows
    assert [c["cells"][0]["text"] for c in counts] == list(CANDIDATES)


def test_utility_verdict_reads_the_ratio_the_right_way_round(compare_page) -> None:
    _, html, _ = compare_page
    rows = {r["cells"][0]["text"]: [c["text"] for c in r["cells"]] for r in table(html, "utility-table").rows}
    # candidate / base pseudo-perplexity: 15 / 10 is worse language modelling, 8 / 10 better.
    assert rows[CANDIDATES[0]][1:] == ["10.00", "15.00", "1.500", "worse language modelling"]
    assert rows[CANDIDATES[1]][1:] == ["10.00", "8.00", "0.800", "better language modelling"]
    assert [utility_verdict(r) for r in (1.05, 0.95, 1.2, 1 / 1.2, None, float("nan"))] == [
        "about the same", "about the same", "worse language modelling", "better language modelling",
        "not measured", "not measured"]


def test_change_classes_unknown_to_the_page_still_render(tmp_path: Path) -> None:
    folder = make_compare_folder(tmp_path / "out")
    deltas = pd.read_csv(folder / contract.DELTAS_FILE, keep_default_na=False)
    deltas.loc[0, "change"] = "mutated"
    deltas.to_csv(folder / contract.DELTAS_FILE, index=False)
    html = render_compare(folder).read_text(encoding="utf-8")
    assert parse(html).errors == [] and "mutated" in html


# ------------------------------------------------------------------------------------------------ bad inputs
def test_missing_or_broken_compare_files_are_one_clear_error(tmp_path: Path) -> None:
    folder = make_compare_folder(tmp_path / "out")
    deltas = pd.read_csv(folder / contract.DELTAS_FILE, keep_default_na=False)
    deltas["delta"] = deltas["delta"].astype(object)
    deltas.loc[0, "delta"] = "lots"
    deltas.to_csv(folder / contract.DELTAS_FILE, index=False)
    with pytest.raises(AuditError, match=r"deltas\.csv: column delta is not float64"):
        render_compare(folder)
    make_compare_folder(folder)
    findings = pd.read_csv(folder / "base" / contract.FINDINGS_FILE, keep_default_na=False)
    findings["significant"] = "maybe"
    findings.to_csv(folder / "base" / contract.FINDINGS_FILE, index=False)
    with pytest.raises(AuditError, match=r"findings\.csv: column significant.*'maybe' is not a boolean"):
        render_compare(folder)
    (folder / contract.COMPARE_SUMMARY_FILE).unlink()
    with pytest.raises(AuditError, match="compare_summary.json: missing"):
        render_compare(folder)
    assert not (folder / contract.COMPARE_REPORT_FILE).exists()


def test_compare_page_shows_the_margins_and_verdict_classes(tmp_path: Path) -> None:
    """alpha 0.025 and a delta margin of 0.1 nats (not the defaults) are what the page prints."""
    folder = make_compare_folder(tmp_path / "out", alpha=0.025, delta_margin=0.1)
    html = render_compare(folder).read_text(encoding="utf-8")
    assert parse(html).errors == []
    margins = {r["attrs"]["data-metric"]: [c["text"] for c in r["cells"]] for r in table(html, "margins-table").rows}
    assert margins["logprob_gap"][1] == "0.1 nats (1.11x)" and margins["bias_score"][1] == "0.1 nats (1.11x)"
    text = " ".join(parse(html).text)
    assert "false discovery rate of 0.025" in text and "0.0953" not in text
    assert "delta margin 0.1 nats (a 1.11x ratio)" in text  # the methods
    assert text.count("material changes beyond ± 0.1 nats (1.11x) after FDR control at 0.025") == 8  # captions
    headers = [h["text"].strip() for h in table(html, "change-counts").headers]
    assert headers[1:-1] == [c for c in CHANGES]
    for change in CHANGES:
        assert f'<span class="badge {change}">' in html


# ------------------------------------------------------------------------------------------------ alpha
def _levels(html: str) -> list[str]:
    """Every confidence level the page prints (visible text and chart titles)."""
    return LEVEL_RE.findall(" ".join(parse(html).text))


def test_alpha_0025_compare_page_says_97_5_percent_everywhere(tmp_path: Path) -> None:
    folder = make_compare_folder(tmp_path / "out", alpha=0.025)
    html = render_compare(folder).read_text(encoding="utf-8")
    levels = _levels(html)
    assert set(levels) == {"97.5"}, sorted(set(levels))
    text = " ".join(parse(html).text)
    assert "98%" not in text and "95%" not in text
    headers = [h["text"] for t in ("bias-table", "changed-table") for h in table(html, t).headers]
    assert headers.count("97.5% CI") == 4
    assert text.count("with 97.5% confidence intervals (templates and terms crossed)") == 8  # every forest's caption
    assert text.count("with 97.5% confidence intervals") == 16  # and every forest's alt text
    assert "97.5% paired jackknife t interval" in text and "97.5% t interval" in text  # the methods
    assert "false discovery rate of 0.025" in text and "FDR control at 0.025" in text


def test_alpha_0025_run_report_says_97_5_percent_everywhere(tmp_path: Path) -> None:
    run = make_fixture_run(tmp_path / "run")
    summary = json.loads((run / contract.SUMMARY_FILE).read_text(encoding="utf-8"))
    summary["alpha"] = 0.025
    (run / contract.SUMMARY_FILE).write_text(json.dumps(summary), encoding="utf-8")
    html = render_report(run).read_text(encoding="utf-8")
    levels = _levels(html)
    assert set(levels) == {"97.5"}, sorted(set(levels))
    text = " ".join(parse(html).text)
    assert "98%" not in text and "95% CI" not in text
    assert text.count("97.5% CI") >= 3 + 2  # three findings tables' headers, the summary table, sentences
    assert "'nurse' is 8.2x more likely after female terms than after male terms (97.5% CI" in text
    assert "(97.5%, that is 1 − alpha)" in text  # methods
    assert "its 97.5% confidence interval" in text
    assert "its 97.5% confidence interval (line; jackknife over templates" in text  # the bias score chart
    assert text.count("with 97.5% confidence intervals") == 2 + 1  # alt text of the gap forests and the summary


# ------------------------------------------------------------------------------------------------ end to end
def test_compare_runs_of_saved_runs_renders_a_page_that_traces_to_the_runs(tmp_path: Path) -> None:
    """The real pipeline (api.compare_runs on two saved run folders, alpha = 0.025): the written page is
    well formed, escapes the runs' hostile probe text, prints 97.5% and shows each model's own interval."""
    from albert_audit.api import CompareConfig, compare_runs

    base = make_fixture_run(tmp_path / "base_run")
    cand = tmp_path / "cand_run"
    shutil.copytree(base, cand)
    targets = pd.read_parquet(cand / contract.TARGETS_FILE)
    targets["logprob"] = targets["logprob"] + 0.5 * (targets["item_id"] % 2)
    targets.to_parquet(cand / contract.TARGETS_FILE, index=False)
    findings = pd.read_csv(cand / contract.FINDINGS_FILE)
    findings.loc[findings["metric"] == "bias_score", ["ci_low", "ci_high"]] = [[0.7, 1.9], [0.6, 0.8]]
    findings.to_csv(cand / contract.FINDINGS_FILE, index=False)
    for folder, model_id, pppl in ((base, "org/base", 20.0), (cand, f"org/cand{XSS_SCRIPT}", 30.0)):
        summary = json.loads((folder / contract.SUMMARY_FILE).read_text(encoding="utf-8"))
        summary["model"]["id"], summary["utility"] = model_id, {"pppl": pppl}
        (folder / contract.SUMMARY_FILE).write_text(json.dumps(summary), encoding="utf-8")
    result = compare_runs(CompareConfig(out=tmp_path / "cmp", base_run=base, candidate_runs=[cand], alpha=0.025,
                                        n_resamples=200))
    html = (result.out / contract.COMPARE_REPORT_FILE).read_text(encoding="utf-8")
    collector = parse(html)
    assert collector.errors == [] and "script" not in [t for t, _ in collector.elements]
    assert set(_levels(html)) == {"97.5"}
    text = " ".join(collector.text)
    assert f"org/cand{XSS_SCRIPT}" in text and XSS_IMG in text  # a candidate label and a group name
    rows = table(html, "bias-table").rows
    assert [r["cells"][0]["text"] for r in rows] == ["occupation", "religion_like"]
    assert [r["cells"][3]["text"] for r in rows] == ["[0.41, 0.93]", "[0.05, 0.40]"]  # the base run's own
    assert [r["cells"][5]["text"] for r in rows] == ["[0.70, 1.90]", "[0.60, 0.80]"]  # the candidate's own
    utility = table(html, "utility-table").rows[0]["cells"]
    assert [c["text"] for c in utility[3:]] == ["1.500", "worse language modelling"]
