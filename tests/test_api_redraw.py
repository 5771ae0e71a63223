"""`albert-audit report DIR` redraws exactly the report a run, compare or demo wrote (the summaries are
written once, before the reports, and drawing a report never rewrites them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from albert_audit.api import CompareConfig, compare_runs
from albert_audit.cli import main
from tests.test_cli import SMALL_PROBES

REPORTS = ("base/report.html", "candidate_1/report.html", "compare.html")


def _assert_redrawn_identically(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {name: (folder / name).read_bytes() for name in REPORTS}
    summaries = {p: p.read_bytes() for p in folder.rglob("*summary.json")}
    for name in REPORTS:
        (folder / name).unlink()
    for target in ("base", "candidate_1", "."):
        assert main(["report", str(folder / target)]) == 0
    printed = capsys.readouterr().out
    assert f"report: {folder / 'compare.html'}" in printed.replace("/./", "/")
    for name, drawn in files.items():
        assert (folder / name).read_bytes() == drawn, f"{name} differs from what the command drew"
    assert {p: p.read_bytes() for p in folder.rglob("*summary.json")} == summaries


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory, tiny_model_dir) -> Path:
    folder = tmp_path_factory.mktemp("redraw")
    probe = folder / "small_occupation.yaml"
    probe.write_text(SMALL_PROBES, encoding="utf-8")
    sample = folder / "sample.txt"
    sample.write_text("# a short neutral sample keeps the test quick\nThe nurse said that the doctor was here.\n"
                      "My friend always wanted to become a pilot.\n", encoding="utf-8")
    config = CompareConfig(out=folder / "cmp", base=str(tiny_model_dir), candidates=[str(tiny_model_dir)],
                           probes=[str(probe)], device="cpu", n_resamples=200, alpha=0.025, progress=False,
                           utility_sample=sample)
    return compare_runs(config).out


def test_run_summaries_of_a_comparison_hold_everything_before_the_reports(compare_dir):
    for name, role in (("base", "base"), ("candidate_1", "candidate")):
        summary = json.loads((compare_dir / name / "summary.json").read_text(encoding="utf-8"))
        assert summary["comparison"]["role"] == role and summary["utility"]["pppl"] > 0
        assert summary["utility"]["sample"] == "sample.txt" and summary["alpha"] == 0.025
        assert set(summary["timings_s"]) == {"load", "score", "stats", "total"}
        assert ("notes" in summary) == (role == "candidate")
    summary = json.loads((compare_dir / "compare_summary.json").read_text(encoding="utf-8"))
    assert summary["alpha"] == 0.025 and set(summary["timings_s"]) == {"deltas", "total"}
    assert summary["candidates"][0]["pppl_ratio"] == pytest.approx(1.0)


def test_report_redraws_a_compare_folder_and_its_runs(compare_dir, capsys):
    _assert_redrawn_identically(compare_dir, capsys)


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_a_folder_of_neither_kind_is_one_clear_error(tmp_path, capsys, content):
    if content:
        (tmp_path / content).write_text("x")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "neither a run folder" in err and "\n" not in err


def test_a_broken_compare_summary_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "compare_summary.json").write_text('{"schema_version": 7}')
    assert main(["report", str(tmp_path)]) == 2
    assert "schema_version 7" in capsys.readouterr().err


@pytest.mark.slow
def test_report_redraws_the_demo_exactly(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    _assert_redrawn_identically(out, capsys)
