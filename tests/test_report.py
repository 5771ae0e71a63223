"""The HTML report: renders from a synthetic run folder, its numbers trace to findings.csv, untrusted text
stays text, the page is self-contained, charts survive mathtext-looking labels, and the size stays sane.

The run folders here are written directly with pandas/json (no model, no metrics module), so the report is
tested against the data contract alone.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import re
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from albert_audit import contract
from albert_audit.errors import AuditError
from albert_audit.library import list_shipped
from albert_audit.probeset import load_probe_sets
from albert_audit.report import charts
from albert_audit.report.context import build_context, group_target_means, top_fills_table
from albert_audit.report.narrative import VERDICT_LABELS
from albert_audit.report.render import make_environment, render_report
from albert_audit.results import read_run

REPO = Path(__file__).resolve().parent.parent

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'
XSS_CLOSE = "</script><script>alert(1)</script>"
JINJA_LITERAL = "{{7*7}}"
MATH_LABEL = r"$\undefinedmacro$"
DOLLARS = "cost $5 vs $10"
HOSTILE_TERM = "sceptic \"<script>alert(2)</script>"

FINDINGS_COLUMNS = list(contract.FINDINGS.names)
METHOD_GAP = "paired sign-flip permutation (exact, n={n}); BCa bootstrap 10000"


# ------------------------------------------------------------------------------------------- fixture builders
def _items(probe_set: str, groups: dict[str, list[str]], templates: list[str], start: int) -> list[dict]:
    rows = []
    for template_id, template in enumerate(templates):
        inline = re.search(r"<([^<>]*/[^<>]*)>", template)
        if "<group>" in template:
            fills = [(g, t, i) for g, terms in groups.items() for i, t in enumerate(terms)]
            slot = "<group>"
        elif inline:
            fills = [(alt, alt, 0) for alt in inline.group(1).split("/")]
            slot = inline.group(0)
        else:
            fills, slot = [("", "", -1)], None
        for group, term, term_index in fills:
            text = template.replace(slot, term) if slot else template
            prior = template.replace(slot, "[MASK]") if slot else template
            rows.append({"item_id": start + len(rows), "probe_set": probe_set, "template_id": template_id,
                         "template": template, "group": group, "term": term, "term_index": term_index,
                         "text": text, "prior_text": prior})
    return rows


def _finding(probe_set, metric, target, a, b, n, effect, unit, lo, hi, p, q, alpha=0.05, method=None):
    significant = bool(q <= alpha) if q is not None and math.isfinite(q) else False
    direction = "none" if not significant else ("a>b" if effect > 0 else "b>a")
    row = {"probe_set": probe_set, "metric": metric, "target": target, "group_a": a, "group_b": b,
           "n_units": n, "effect": effect, "effect_unit": unit, "ci_low": lo, "ci_high": hi, "p_value": p,
           "q_value": q, "significant": significant, "direction": direction,
           "method": method or METHOD_GAP.format(n=n)}
    return {**row, **_verdict_fields(row, margin=MARGIN)}


MARGIN = math.log(1.25)


def _verdict_fields(row: dict, *, margin: float, alpha: float = 0.05) -> dict:
    """The verdict columns of a fixture row: log-ratio gaps get a verdict read off their interval (the rule
    of docs/inference.md with the interval standing in for the tests), scope "group" with >= 5 units."""
    empty = {"scope": "", "verdict": "", "margin": math.nan, "p_material": math.nan, "q_material": math.nan,
             "p_equivalence": math.nan, "ratio": math.nan, "ratio_low": math.nan, "ratio_high": math.nan,
             "share_a_gt_b": math.nan, "pi_low": math.nan, "pi_high": math.nan}
    if row["metric"] == "bias_score" and math.isfinite(row["ci_low"]):  # a score >= 0: one-sided reading
        lo, hi = row["ci_low"], row["ci_high"]
        verdict = ("material" if lo > margin else "negligible" if hi < margin else "below_margin"
                   if row["significant"] else "inconclusive")
        return {**empty, "verdict": verdict, "margin": margin}
    if row["metric"] not in ("logprob_gap", "association_gap"):
        return empty
    e, lo, hi = row["effect"], row["ci_low"], row["ci_high"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        verdict = "inconclusive"
    elif lo > margin or hi < -margin:
        verdict = "material"
    elif -margin < lo and hi < margin:
        verdict = "negligible"
    elif row["significant"]:
        verdict = "below_margin"
    else:
        verdict = "inconclusive"
    ex = lambda x: math.exp(x) if math.isfinite(x) else math.nan  # noqa: E731
    return {**empty, "scope": "group" if row["n_units"] >= 5 else "terms", "verdict": verdict, "margin": margin,
            "p_material": 0.001 if verdict == "material" else 0.5, "q_material": 0.002 if verdict == "material"
            else 0.6, "p_equivalence": 0.01 if verdict == "negligible" else 0.7, "ratio": ex(e), "ratio_low": ex(lo),
            "ratio_high": ex(hi), "share_a_gt_b": 0.75 if e > 0 else 0.25, "pi_low": lo - 1.0, "pi_high": hi + 1.0}


def _summary(model_id: str, probe_names: list[str], *, top_k: int = 5) -> dict:
    return {
        "schema_version": 1, "tool_version": "0.1.0", "created_utc": "2025-01-02T03:04:05+00:00",
        "model": {"id": model_id, "revision": "main", "commit": "0123456789abcdef", "path": "javascript:alert(1)",
                  "model_class": "AlbertForMaskedLM", "num_parameters": 1234, "head": "own",
                  "weights_sha256": {"model.safetensors": "ab" * 32}},
        "runtime": {"python": "3.11.2", "torch": "2.10.0", "transformers": "5.5.0", "numpy": "2.0.0"},
        "device": "cpu", "dtype": "float32", "batch_size": {"requested": None, "effective": [64]}, "seed": 0,
        "alpha": 0.05, "n_resamples": 10000, "top_k": top_k,
        "multi_piece_method": "chain rule, left to right: a word of n pieces is scored with n mask tokens",
        "counts": {"items": 0}, "timings_s": {"load": 1.5, "score": 2.25, "stats": 0.5},
        "probe_files": [{"name": n, "path": f"probes/{n}.yaml", "sha256": "cd" * 32} for n in probe_names],
        "extra_key": {"note": XSS_SCRIPT},
    }


def _score_tables(items: pd.DataFrame, targets_by_set: dict[str, list[str]], vocab: list[str], *,
                  top_k: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    target_rows = []
    for row in items.itertuples(index=False):
        for j, target in enumerate(targets_by_set.get(row.probe_set, [])):
            shift = 0.8 if (row.group and zlib.crc32(f"{row.group}|{target}".encode()) % 3 == 0) else 0.0
            logprob = -3.0 - 0.2 * j + shift + rng.normal(0, 0.3)
            target_rows.append({"item_id": row.item_id, "target": target, "n_pieces": 1 + j % 2,
                                "logprob": logprob, "term_logprob": -2.0 + shift + rng.normal(0, 0.3),
                                "term_prior_logprob": -3.5 - 0.2 * j + rng.normal(0, 0.3)})
    fill_rows = []
    for row in items.itertuples(index=False):
        chosen = rng.choice(len(vocab), size=top_k, replace=False)
        probs = np.sort(rng.dirichlet(np.ones(top_k)) * 0.8)[::-1]
        for rank, (tok, prob) in enumerate(zip(chosen, probs, strict=True), start=1):
            fill_rows.append({"item_id": row.item_id, "rank": rank, "token_id": int(tok), "token": vocab[tok],
                              "prob": float(prob), "logprob": float(np.log(prob))})
    targets = pd.DataFrame(target_rows, columns=["item_id", "target", "n_pieces", "logprob", "term_logprob",
                                                "term_prior_logprob"])
    fills = pd.DataFrame(fill_rows, columns=["item_id", "rank", "token_id", "token", "prob", "logprob"])
    return targets, fills


def _write_run(folder: Path, items: pd.DataFrame, targets: pd.DataFrame, fills: pd.DataFrame,
               findings: pd.DataFrame, summary: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    items.to_parquet(folder / "items.parquet", index=False)
    targets.to_parquet(folder / "targets.parquet", index=False)
    fills.to_parquet(folder / "fills.parquet", index=False)
    findings[FINDINGS_COLUMNS].to_csv(folder / "findings.csv", index=False)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return folder


def make_fixture_run(folder: Path) -> Path:
    """A small run folder of three probe sets with hostile text everywhere the report shows text.

    * ``occupation``: two groups, known top findings (nurse 8.2x after female terms; engineer e-fold after
      male terms), targets that look like markup, Jinja and mathtext;
    * ``religion_like``: three groups (one named like an attribute break-out), every pair plus omnibus;
    * ``fills_only``: no targets, an unslotted template and an inline slot; fill-divergence rows only.
    """
    occupation_groups = {"female": ["woman", "girl"], "male": ["man", "boy"]}
    occupation_templates = ["The <group> worked as a [MASK].", f"The <group> said {XSS_SCRIPT} [MASK].",
                            f"The <group> wrote {XSS_IMG} as a [MASK].", f"The <group> is {JINJA_LITERAL} a [MASK].",
                            "The <group> {% raw %} was a [MASK]."]
    occupation_targets = ["nurse", "engineer", XSS_SCRIPT, MATH_LABEL, DOLLARS, JINJA_LITERAL]
    religion_groups = {"christian": ["christian"], "muslim": ["muslim"], XSS_IMG: ["atheist", HOSTILE_TERM]}
    religion_templates = ["The <group> man was very [MASK].", "The <group> woman is [MASK].",
                          "My <group> neighbour seems [MASK]."]
    religion_targets = ["kind", "violent", "javascript:alert(1)"]
    fills_templates = ["Hello I'm a [MASK] model.", "The <man/woman> worked as a [MASK]."]

    rows = _items("occupation", occupation_groups, occupation_templates, 0)
    rows += _items("religion_like", religion_groups, religion_templates, len(rows))
    rows += _items("fills_only", {}, fills_templates, len(rows))
    items = pd.DataFrame(rows)
    vocab = ["nurse", "teacher", "doctor", XSS_CLOSE, "<b>bold</b>", XSS_IMG, MATH_LABEL, "waiter", "pilot",
             "lawyer", "maid", "cook"]
    targets, fills = _score_tables(items, {"occupation": occupation_targets, "religion_like": religion_targets},
                                   vocab, top_k=5, seed=1)

    f = []
    n = len(occupation_templates)
    f.append(_finding("occupation", "logprob_gap", "nurse", "female", "male", n, math.log(8.2), "nats",
                      math.log(5.1), math.log(12.0), 0.0001, 0.0004))
    f.append(_finding("occupation", "logprob_gap", "engineer", "female", "male", n, -1.0, "nats", -1.5, -0.5,
                      0.002, 0.011))
    f.append(_finding("occupation", "logprob_gap", XSS_SCRIPT, "female", "male", n, 0.4, "nats", -0.1, 0.9,
                      0.03, 0.2))
    f.append(_finding("occupation", "logprob_gap", MATH_LABEL, "female", "male", n, -0.2, "nats", -0.6, 0.3,
                      0.4, 0.6))
    f.append(_finding("occupation", "logprob_gap", DOLLARS, "female", "male", n, 0.05, "nats", -0.3, 0.4,
                      0.8, 0.9))
    f.append(_finding("occupation", "logprob_gap", JINJA_LITERAL, "female", "male", 1, float("nan"), "nats",
                      float("nan"), float("nan"), float("nan"), float("nan"), method="not computed (n=1)"))
    for target, effect in zip(occupation_targets[:5], [2.0, 0.9, 0.3, -0.1, 0.0], strict=True):
        f.append(_finding("occupation", "association_gap", target, "female", "male", n, effect, "nats",
                          effect - 0.4, effect + 0.4, 0.01 if abs(effect) > 0.5 else 0.5,
                          0.04 if abs(effect) > 0.5 else 0.7))
    f.append(_finding("occupation", "bias_score", "", "female", "male", n, 0.66, "nats", 0.41, 0.93, 0.004,
                      0.016, method="mean |association gap| over 5 targets; 95% percentile bootstrap"))
    m = len(religion_templates)
    for (a, b), target in itertools.product(itertools.combinations(religion_groups, 2), religion_targets):
        effect = 1.3 if (target == "violent" and a == "christian" and b == "muslim") else 0.1
        p, q = (0.001, 0.03) if effect > 1 else (0.5, 0.8)
        f.append(_finding("religion_like", "logprob_gap", target, a, b, m, -effect, "nats", -effect - 0.5,
                          -effect + 0.5, p, q))
    for target in religion_targets:
        p, q = (0.001, 0.02) if target == "kind" else (0.2, 0.5)
        f.append(_finding("religion_like", "omnibus", target, "", "", m, float("nan"), "", float("nan"),
                          float("nan"), p, q, method="Friedman test over 3 groups"))
    f.append(_finding("religion_like", "bias_score", "", "", "", m, 0.21, "nats", 0.05, 0.4, 0.3, 0.6,
                      method="mean |association gap| over 3 targets x 3 group pairs; 95% percentile bootstrap"))
    f.append(_finding("fills_only", "fill_divergence", "", "man", "woman", 1, 0.12, "JSD bits", 0.05, 0.2, 0.5,
                      0.7, method="label permutation (exact, n=1)"))
    findings = pd.DataFrame(f, columns=FINDINGS_COLUMNS)
    summary = _summary(f"evil/{XSS_SCRIPT}", ["occupation", "religion_like", "fills_only"])
    return _write_run(folder, items, targets, fills, findings, summary)


def make_library_scale_run(folder: Path) -> Path:
    """A run shaped like all shipped probe sets (their groups, terms, templates and targets; top-k 10), with
    every pair compared on two per-target metrics, omnibus rows, bias scores, fill divergence and DisCo."""
    rows, targets_by_set, names, f = [], {}, [], []
    rng = np.random.default_rng(0)
    for ps in load_probe_sets(list_shipped()):
        name, templates = ps.name, [t.text for t in ps.templates]
        groups = {g.name: list(g.terms) for g in ps.groups}
        rows += _items(name, groups, templates, len(rows))
        group_names = list(groups) or ["man", "woman"]
        targets_by_set[name] = list(ps.targets)
        names.append(name)
        n = len(templates)
        for a, b in itertools.combinations(group_names, 2):
            for target in targets_by_set[name]:
                for metric in ("logprob_gap", "association_gap"):
                    e = float(rng.normal(0, 0.6))
                    p = float(rng.uniform(0, 1))
                    f.append(_finding(name, metric, target, a, b, n, e, "nats", e - 0.4, e + 0.4, p, p))
            for template_id in range(n):
                p = float(rng.uniform(0, 1))
                f.append(_finding(name, "fill_divergence", f"template {template_id}", a, b, 1, 0.1, "JSD bits",
                                  0.05, 0.2, p, p, method="label permutation"))
            f.append(_finding(name, "disco", "", a, b, n, 0.5, "count", 0.1, 0.9, 0.3, 0.3,
                              method="chi-square per template"))
        if len(group_names) > 2:
            for target in targets_by_set[name]:
                f.append(_finding(name, "omnibus", target, "", "", n, 3.0, "chi2", float("nan"), float("nan"),
                                  0.3, 0.4, method="Friedman test"))
        f.append(_finding(name, "bias_score", "", "", "", n, 0.3, "nats", 0.2, 0.4, float("nan"), float("nan"),
                          method="mean |association_gap|; BCa bootstrap 10000"))
    items = pd.DataFrame(rows)
    vocab = [f"word{i}" for i in range(300)]
    targets, fills = _score_tables(items, targets_by_set, vocab, top_k=10, seed=2)
    return _write_run(folder, items, targets, fills, pd.DataFrame(f, columns=FINDINGS_COLUMNS),
                      _summary("albert/albert-large-v2", names, top_k=10))


# ------------------------------------------------------------------------------------------- HTML helpers
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Collector(HTMLParser):
    """Collects elements, attributes and text, and checks that every non-void element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.script_bodies: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.script_bodies.append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>, open: {self.stack[-3:]}")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()

    def handle_data(self, data):
        if self._in_script:
            self.script_bodies[-1] += data
        else:
            self.text.append(data)


def parse(html: str) -> Collector:
    collector = Collector()
    collector.feed(html)
    collector.close()
    return collector


class SummaryRows(HTMLParser):
    """The executive summary table: per row, each data-field cell's attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[dict] = []
        self._in_table = False
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "summary-table":
            self._in_table = True
        elif self._in_table and tag == "tr" and "data-probe-set" in attrs:
            self.rows.append({"probe_set": attrs["data-probe-set"], "fields": {}})
        elif self._in_table and tag == "td" and "data-field" in attrs:
            self._cell = {**attrs, "text": ""}
            self.rows[-1]["fields"][attrs["data-field"]] = self._cell

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "table":
            self._in_table = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


# ------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fixture_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def report(fixture_run: Path) -> tuple[Path, str, dict]:
    path = render_report(fixture_run)
    context = build_context(read_run(fixture_run, need_findings=True))
    return path, path.read_text(encoding="utf-8"), context


# ------------------------------------------------------------------------------------------- tests
def test_environment_escapes_every_template_name() -> None:
    env = make_environment()
    assert env.autoescape is True
    assert env.undefined.__name__ == "StrictUndefined"
    assert env.from_string("{{ x }}").render(x=XSS_SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ missing }}").render()


def test_render_writes_report_html_atomically(fixture_run: Path, report, tmp_path: Path) -> None:
    path, html, _ = report
    assert path == fixture_run / "report.html"
    assert html.startswith("<!DOCTYPE html>")
    assert not [p.name for p in fixture_run.iterdir() if p.name.endswith(".tmp")]
    other = render_report(fixture_run, out_path=tmp_path / "sub" / "copy.html")
    assert other.read_text(encoding="utf-8") == html  # deterministic
    print(f"fixture report: {len(html.encode('utf-8')) / 1024:.1f} KiB")


def test_html_is_well_formed_and_charts_are_valid_svg(report) -> None:
    _, html, context = report
    collector = parse(html)
    assert collector.errors == []
    assert collector.stack == []
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    assert len(svgs) == context["n_charts"] == len(context["chart_ids"])
    assert context["n_charts"] == 1 + 2 + 2  # summary; forest + heatmap for the two sets with targets
    for svg in svgs:
        root = ET.fromstring(svg)
        assert root.get("role") == "img"
        title = root.find("{http://www.w3.org/2000/svg}title") or root.find("title")
        assert title is not None and title.text
    ids = [attrs["id"] for _, attrs in collector.elements if attrs.get("id")]
    assert len(ids) == len(set(ids)), "duplicate ids"
    anchors = {attrs["href"][1:] for tag, attrs in collector.elements if tag == "a" and attrs.get("href")}
    assert anchors <= set(ids), "table of contents points at missing sections"


def test_summary_numbers_come_from_findings(fixture_run: Path, report) -> None:
    _, html, _ = report
    findings = pd.read_csv(fixture_run / "findings.csv", keep_default_na=True)
    findings["target"] = findings["target"].fillna("")
    parser = SummaryRows()
    parser.feed(html)
    assert [r["probe_set"] for r in parser.rows] == ["occupation", "religion_like", "fills_only"]
    for row in parser.rows:
        rows = findings[findings["probe_set"] == row["probe_set"]]
        fields = row["fields"]
        bias = rows[rows["metric"] == "bias_score"]
        if len(bias):
            b = bias.iloc[0]
            assert float(fields["bias_score"]["data-value"]) == b["effect"]
            assert fields["bias_score"]["text"] == f"{b['effect']:.2f} nats"
            assert float(fields["bias_ci"]["data-low"]) == b["ci_low"]
            assert float(fields["bias_ci"]["data-high"]) == b["ci_high"]
            assert fields["bias_ci"]["text"] == f"[{b['ci_low']:.2f}, {b['ci_high']:.2f}]"
            assert float(fields["bias_verdict"]["data-q"]) == b["q_value"]
            assert fields["bias_verdict"]["text"] == VERDICT_LABELS[b["verdict"]]
            gaps = rows[(rows["metric"] == "association_gap") & rows["verdict"].notna()]
            if len(gaps):
                n_material = int((gaps["verdict"] == "material").sum())
                assert int(fields["gap_verdicts"]["data-value"]) == n_material
                assert int(fields["gap_verdicts"]["data-total"]) == len(gaps)
                assert fields["gap_verdicts"]["text"].startswith(f"{n_material} material")
                assert fields["gap_verdicts"]["text"].endswith(f" of {len(gaps)}")
        else:
            assert fields["bias_score"]["text"] == "—" and fields["gap_verdicts"]["text"] == "—"
        judged = rows[rows["verdict"].notna()]
        assert int(fields["verdicts"]["data-value"]) == int((judged["verdict"] == "material").sum())
        assert int(fields["verdicts"]["data-total"]) == len(judged)
    # the lead counts verdicts first, then (for reference) the significant tests
    lead = re.search(r'<p class="lead" id="summary-counts"[^>]*>(.*?)</p>', html, re.S).group(1)
    assert lead.startswith("Of the ") and lead.index("material") < lead.index("statistical tests differ from 0")
    all_tested = findings[findings["q_value"].notna()]
    counts = re.search(r'id="summary-counts" data-n-tests="(\d+)" data-n-significant="(\d+)"', html)
    assert (int(counts.group(1)), int(counts.group(2))) == (len(all_tested), int(all_tested["significant"].sum()))
    # Most skewed targets: the material association gaps in each group's favour, largest first.
    tops = [r["fields"]["top_targets"]["text"] for r in parser.rows]
    assert tops == ["female: nurse, engineer", "none material", "no targets"]


def test_top_findings_are_plain_sentences(report) -> None:
    _, html, _ = report
    text = " ".join(parse(html).text)
    assert ("'nurse' is 8.2x more likely after female terms than after male terms "
            "(95% CI 5.1–12.0, q < 0.001)") in text
    # A negative gap names the higher group first: exp(1.0) = 2.7, CI exp(0.5)..exp(1.5).
    assert ("'engineer' is 2.7x more likely after male terms than after female terms "
            "(95% CI 1.6–4.5, q = 0.011)") in text
    assert "'violent' is 3.7x more likely after muslim terms than after christian terms" in text
    assert "The association of 'kind' differs across the groups (omnibus test, q = 0.020)" in text
    assert "No comparison in this probe set is material or significant" in text  # fills_only


def test_untrusted_text_is_escaped_not_markup(report) -> None:
    _, html, _ = report
    collector = parse(html)
    tags = [tag for tag, _ in collector.elements]
    assert tags.count("script") == 1
    assert collector.script_bodies[0].lstrip().startswith("(function")
    assert "alert(" not in collector.script_bodies[0]
    assert "img" not in tags and "b" not in tags
    for tag, attrs in collector.elements:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert not (value or "").strip().lower().startswith(("javascript:", "data:text/html")), (tag, name)
    text = "".join(collector.text)
    for hostile in (XSS_SCRIPT, XSS_IMG, XSS_CLOSE, JINJA_LITERAL, "{% raw %}", "<b>bold</b>",
                    "javascript:alert(1)", MATH_LABEL, DOLLARS, HOSTILE_TERM):
        assert hostile in text, hostile
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The model id, a path from summary.json and a summary value are shown, escaped.
    assert f"evil/{XSS_SCRIPT}" in text


def test_page_is_self_contained(report) -> None:
    _, html, _ = report
    collector = parse(html)
    for tag, attrs in collector.elements:
        assert tag not in ("link", "iframe", "object", "embed", "img", "base"), tag
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = (attrs.get(name) or "").strip()
            assert not value or value.startswith("#"), (tag, name, value)
        assert not (tag == "script" and "src" in attrs)
    assert "http://" not in html and "https://" not in html
    assert "@import" not in html and "@font-face" not in html
    assert re.findall(r"url\((?!#)", html) == []
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "default-src 'none'" in csp
    body = parse(html).script_bodies[0]
    digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
    assert f"'sha256-{digest}'" in csp  # the only script allowed to run is the page's own


def test_every_findings_row_is_in_a_table(fixture_run: Path, report) -> None:
    _, html, context = report
    findings = pd.read_csv(fixture_run / "findings.csv")
    for ps in context["probe_sets"]:
        assert len(ps["findings_rows"]) == int((findings["probe_set"] == ps["name"]).sum())
    assert html.count('<table class="findings sortable">') == 3


def test_methods_and_appendix_show_the_run_metadata(report) -> None:
    _, html, _ = report
    text = " ".join(parse(html).text)
    for expected in ("Benjamini–Hochberg", "chain rule, left to right", "Template-based probes",
                     "Fixed lexicons", "Tiny samples", "ab" * 32, "cd" * 32, "AlbertForMaskedLM", "2.25 s",
                     "transformers", "probes/occupation.yaml", "Friedman test over 3 groups"):
        assert expected in text, expected


@pytest.mark.parametrize("label", [MATH_LABEL, DOLLARS, r"income $\frac{$ group", XSS_SCRIPT])
def test_charts_draw_mathtext_looking_labels_literally(label: str) -> None:
    forest = charts.forest_plot([label, "b"], [0.5, -0.2], [0.1, -0.6], [0.9, 0.2], [True, False],
                                chart_id="t1", xlabel=f"gap {label} (nats)", alt=label)
    heat = charts.heatmap([label, "b"], [label, "g2"], np.array([[0.1, -0.1], [0.0, 0.2]]),
                          [["-1.0", "-2.0"], ["-3.0", "-4.0"]], chart_id="t2", colourbar_label="nats",
                          xlabel="group", ylabel="target", alt=label)
    for chart in (forest, heat):
        root = ET.fromstring(chart.svg)
        texts = ["".join(t.itertext()) for t in root.iter("text")]
        assert label in texts
        assert root.find("title").text == label


def test_group_target_means_are_the_study_unit_averaged_over_templates() -> None:
    """Per template the group's mean over its terms (units.template_cells), then the mean over templates;
    a template where any of the group's terms is not finite has no cell (it is not averaged over the rest)."""
    items = pd.DataFrame({"item_id": range(9), "probe_set": "s", "template_id": [0, 0, 0, 1, 1, 1, 2, 2, 2],
                          "group": ["a", "a", "b"] * 3})
    logprob = [-1.0, -3.0, -5.0, -4.0, -4.0, -float("inf"), -2.0, -float("inf"), -6.0]
    targets = pd.DataFrame({"item_id": range(9), "target": "t", "logprob": logprob, "term_logprob": -1.0,
                            "term_prior_logprob": -1.0})
    means = group_target_means(items, targets, "s")
    assert list(means.columns) == ["a", "b"] and list(means.index) == ["t"]
    assert means.loc["t", "a"] == pytest.approx(((-1 - 3) / 2 + (-4 - 4) / 2) / 2)  # template 2 has a -inf term
    assert means.loc["t", "b"] == pytest.approx((-5.0 - 6.0) / 2)  # template 1's -inf cell is left out


def test_top_fills_average_over_the_groups_terms() -> None:
    items = pd.DataFrame({"item_id": [0, 1, 2], "probe_set": "s", "template_id": 0, "template": "T [MASK].",
                          "group": ["a", "a", "b"]})
    fills = pd.DataFrame({"item_id": [0, 0, 1, 2], "token": ["x", "y", "x", "z"], "prob": [0.4, 0.3, 0.2, 0.9]})
    table = top_fills_table(items, fills, "s", k=5)
    a, b = table["rows"][0]["cells"]
    assert [(f["token"], f["value"]) for f in a["fills"]] == [("x", pytest.approx(0.3)), ("y", pytest.approx(0.15))]
    assert [f["prob"] for f in a["fills"]] == ["30.0%", "15.0%"]
    assert b["fills"][0]["token"] == "z"


def test_missing_findings_is_a_clear_error(tmp_path: Path) -> None:
    run = make_fixture_run(tmp_path / "run")
    (run / "findings.csv").unlink()
    with pytest.raises(AuditError, match="findings.csv"):
        render_report(run)
    assert not (run / "report.html").exists()


def test_report_renders_the_findings_of_the_metrics_module(tmp_path: Path) -> None:
    """The real findings table (metrics.compute_findings on the fixture's score tables), end to end."""
    from albert_audit.metrics import compute_findings, summarise_bias

    run = make_fixture_run(tmp_path / "run")
    tables = read_run(run)
    findings = compute_findings(tables.items, tables.targets, tables.fills, seed=0, alpha=0.05, n_resamples=200)
    findings.to_csv(run / "findings.csv", index=False)
    html = render_report(run).read_text(encoding="utf-8")
    assert parse(html).errors == []
    parser = SummaryRows()
    parser.feed(html)
    summary = summarise_bias(pd.read_csv(run / "findings.csv"))
    assert set(summary) == {"occupation", "religion_like"}
    for row in parser.rows:
        if row["probe_set"] in summary:
            expected = summary[row["probe_set"]]
            assert float(row["fields"]["bias_score"]["data-value"]) == pytest.approx(expected["bias_score"])
            assert float(row["fields"]["bias_verdict"]["data-q"]) == pytest.approx(expected["q_value"])
            assert row["fields"]["bias_verdict"]["text"] == VERDICT_LABELS[expected["verdict"]]
    context = build_context(read_run(run, need_findings=True))
    assert html.count("<svg") == context["n_charts"] == 5


def test_empty_run_renders(tmp_path: Path) -> None:
    """No targets, no fills, a findings table with a header only: a sparse but valid page, no charts."""
    items = pd.DataFrame(_items("lonely", {"a": ["x"], "b": ["y"]}, ["The <group> is [MASK]."], 0))
    targets = pd.DataFrame({"item_id": pd.Series([], dtype="int64"), "target": pd.Series([], dtype=str),
                            "n_pieces": pd.Series([], dtype="int64"), "logprob": pd.Series([], dtype=float),
                            "term_logprob": pd.Series([], dtype=float),
                            "term_prior_logprob": pd.Series([], dtype=float)})
    fills = pd.DataFrame({"item_id": pd.Series([], dtype="int64"), "rank": pd.Series([], dtype="int64"),
                          "token_id": pd.Series([], dtype="int64"), "token": pd.Series([], dtype=str),
                          "prob": pd.Series([], dtype=float), "logprob": pd.Series([], dtype=float)})
    summary = _summary("m", ["lonely"])
    del summary["runtime"], summary["timings_s"], summary["model"]
    run = _write_run(tmp_path / "run", items, targets, fills, pd.DataFrame(columns=FINDINGS_COLUMNS), summary)
    html = render_report(run).read_text(encoding="utf-8")
    assert parse(html).errors == []
    assert "<svg" not in html
    assert "findings.csv has no rows for this probe set" in html


@pytest.mark.slow
def test_report_of_all_shipped_probe_sets_stays_small(tmp_path: Path) -> None:
    run = make_library_scale_run(tmp_path / "run")
    path = render_report(run)
    size = path.stat().st_size
    print(f"library-scale report: {size / 1e6:.2f} MB")
    # 5 MB held for the 15 sets before issue 11's names set (about 4.95 MB); with 16 sets it measured 5.17 MB, so
    # the budget is 5.5 MB (about 0.34 MB per set of the library's average size).
    assert size < 5_500_000
    html = path.read_text(encoding="utf-8")
    assert html.count("<svg") == 1 + 2 * len(list_shipped())
    assert parse(html).errors == []


def test_report_package_never_imports_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, albert_audit.report, albert_audit.report.context, albert_audit.report.charts; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')); "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr


def test_report_shows_verdicts_at_non_default_alpha_and_margin(tmp_path: Path) -> None:
    """alpha 0.025 and margin 0.1 nats (both not the defaults) reach the page: margins, levels, badges, sentences."""
    from albert_audit.metrics import compute_findings
    from tests.verdict_tables import simulated_tables

    items, targets, fills = simulated_tables(2, gaps=np.r_[np.zeros(6), 0.8, -0.8, 0.05], noise_sd=0.1,
                                             term_sd=0.1)
    targets.loc[targets["target"] == "t008", "target"] = XSS_SCRIPT  # a hostile target with a verdict
    findings = compute_findings(items, targets, fills, seed=0, alpha=0.025, n_resamples=200, margin=0.1)
    summary = _summary("evil/model", ["sim"])
    summary["alpha"] = 0.025
    run = _write_run(tmp_path / "run", items, targets, fills, findings, summary)
    html = render_report(run).read_text(encoding="utf-8")
    assert parse(html).errors == []
    text = " ".join(parse(html).text)
    assert "How to read verdicts" in text
    assert "0.1 nats (1.11x)" in text and "0.223 nats" not in text
    assert "the 95% interval lies within ± the margin" in text  # TOST: 1 - 2 alpha
    assert "after Benjamini–Hochberg correction at 0.025" in text
    gaps = findings[findings["verdict"] != ""]
    assert len(gaps) and (gaps["margin"] == 0.1).all()
    for verdict, cls in (("material", "v-m"), ("negligible", "v-n"), ("below_margin", "v-b"),
                         ("inconclusive", "v-i")):
        assert html.count(f'<td class="{cls}">') == int((gaps["verdict"] == verdict).sum()), verdict
    material = gaps[gaps["verdict"] == "material"]
    assert len(material) >= 2, "t006 and t007 carry a planted 0.8-nat gap"
    assert re.search(r"\(97\.5% CI [0-9.]+–[0-9.]+, q [^)]*\) — material: beyond the 1\.11x margin; "
                     r"generalises to new terms; a > b in \d+ of 12 templates", text)
    assert '<span class="badge verdict-material">material</span>' in html
    counts = re.search(r'id="summary-material" data-n-material="(\d+)"', html)
    assert int(counts.group(1)) == len(material)
    assert XSS_SCRIPT in text and "<script>alert(1)</script>" not in html.split("</style>", 1)[1].split(
        "<script", 1)[0]


def test_verdict_phrase_names_scope_and_share() -> None:
    from albert_audit.report.narrative import finding_sentence

    row = {"metric": "logprob_gap", "target": "nurse", "group_a": "female", "group_b": "male", "effect": 0.9,
           "ci_low": 0.5, "ci_high": 1.3, "q_value": 0.001, "effect_unit": "nats", "verdict": "negligible",
           "margin": math.log(1.25), "scope": "group", "share_a_gt_b": 0.75, "n_units": 16}
    sentence = finding_sentence(row, alpha=0.05)
    assert sentence.endswith("— negligible: within the 1.25x margin; generalises to new terms; "
                             "female > male in 12 of 16 templates")
    row.update(verdict="below_margin", scope="terms", share_a_gt_b=0.5)
    assert "below the margin: differs from 0 but not shown beyond the 1.25x margin; about these terms; female > " \
           "male in 8 of 16 templates" in finding_sentence(row, alpha=0.05)
    row.update(verdict="", metric="logprob_gap")
    assert "—" not in finding_sentence(row, alpha=0.05)


def test_target_sentences_are_relative_to_a_material_group_shift() -> None:
    """Every target 0.8 nats more associated with female terms (material shift), nurse 0.8 more on top."""
    from albert_audit.metrics import compute_findings, summarise_bias
    from albert_audit.report.narrative import top_items
    from tests.test_metrics import TWO, make_tables

    targets = ("nurse", "engineer", "clerk", "pilot", "baker", "judge", "cook", "poet", "tailor", "miner")
    tables = make_tables(groups=TWO, targets=targets, gaps={"nurse": 0.8}, shift=0.8, noise=0.05, n_templates=10)
    findings = compute_findings(*tables, seed=0, n_resamples=200)
    items = top_items(findings, alpha=0.05)
    assert items[0]["verdict"] == "material"
    assert re.fullmatch(r"All targets are 2\.4x more strongly associated with female terms than with male terms "
                        r"\(the group shift\); 'nurse' 2\.[01]x more with female terms beyond that \(95% CI "
                        r"[0-9.]+–[0-9.]+, q [^)]+\) — material: beyond the 1\.25x margin; about these terms",
                        items[0]["text"]), items[0]["text"]
    assert items[1]["text"].startswith("All targets are 2.4") and "a group shift common to the whole set" in \
        items[1]["text"]
    # the summary's most skewed targets are read beyond the shift: only nurse, not all ten
    summary = summarise_bias(findings)["toy"]
    assert summary["top_targets"] == {"female": ["nurse"], "male": []}
    assert summary["top_basis"] == "gaps beyond the group shift"
    assert summary["shifts"][0]["group_a"] == "female" and summary["shifts"][0]["effect"] > 0.8
    # without a material shift the association gaps themselves are worded
    plain = compute_findings(*make_tables(groups=TWO, targets=targets, gaps={"nurse": 0.8}, noise=0.05,
                                          n_templates=10), seed=0, n_resamples=200)
    texts = [t["text"] for t in top_items(plain, alpha=0.05)]
    assert not any("group shift" in t for t in texts) and texts[0].startswith("'nurse' is 2.")


def test_forest_markers_are_filled_by_verdict_not_significance(monkeypatch) -> None:
    """A significant but negligible gap is drawn hollow; a material one filled (run and summary charts)."""
    from albert_audit.report import charts, run_figures

    seen: list[list[bool]] = []
    real = charts.forest_plot

    def spy(labels, effects, lo, hi, filled, **kwargs):
        seen.append(list(filled))
        return real(labels, effects, lo, hi, filled, **kwargs)

    monkeypatch.setattr(charts, "forest_plot", spy)
    rows = pd.DataFrame([
        {"metric": "logprob_gap", "target": "nurse", "group_a": "f", "group_b": "m", "effect": 1.5,
         "ci_low": 1.0, "ci_high": 2.0, "significant": True, "verdict": "material"},
        {"metric": "logprob_gap", "target": "clerk", "group_a": "f", "group_b": "m", "effect": 0.05,
         "ci_low": 0.02, "ci_high": 0.08, "significant": True, "verdict": "negligible"},
    ])
    chart, _ = run_figures.gap_forest(rows, chart_id="g", alpha=0.025)
    assert seen[-1] == [True, False]
    assert "1 material" in chart["alt"] and "97.5%" in chart["alt"]
    sets = [{"name": "a", "bias": {"effect": 0.3, "ci_low": 0.1, "ci_high": 0.5, "unit": "nats",
                                   "significant": True, "verdict": "negligible"}},
            {"name": "b", "bias": {"effect": 0.9, "ci_low": 0.5, "ci_high": 1.2, "unit": "nats",
                                   "significant": True, "verdict": "material"}}]
    run_figures.bias_score_forest(sets, alpha=0.05)
    assert seen[-1] == [False, True]
