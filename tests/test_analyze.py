"""`albert-audit analyze RUN_DIR` (findings again from saved scores, no model), --margin / --delta-margin wired into
the statistics and recorded in the summaries, and the CLI's verdict summary line."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from albert_audit.cli import findings_line, main
from tests.conftest import REPO
from tests.test_reliability_wiring import OPTIONS, PROBES_TEXT

SCORE_FILES = ("items.parquet", "fills.parquet", "targets.parquet")


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("analyze_probes") / "wiring_occupation.yaml"
    path.write_text(PROBES_TEXT, encoding="utf-8")
    return path


def _run(tiny_model_dir: Path, probes: Path, out: Path, *extra: str) -> Path:
    assert main(["run", "--model", str(tiny_model_dir), "--probes", str(probes), "--out", str(out), *OPTIONS,
                 *extra]) == 0
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, probes: Path) -> Path:
    out = tmp_path_factory.mktemp("analyze") / "run"
    args = [a for a in OPTIONS if a != "--no-report"]
    assert main(["run", "--model", str(tiny_model_dir), "--probes", str(probes), "--out", str(out), *args]) == 0
    return out


def _fingerprints(folder: Path) -> dict[str, tuple[str, int]]:
    return {name: (hashlib.sha256((folder / name).read_bytes()).hexdigest(), (folder / name).stat().st_mtime_ns)
            for name in SCORE_FILES}


def test_analyze_with_the_runs_own_options_is_byte_identical(tmp_path, run_dir, monkeypatch, capsys):
    from albert_audit import results

    folder = Path(shutil.copytree(run_dir, tmp_path / "run"))
    before_findings = (folder / "findings.csv").read_bytes()
    before_summary = json.loads((folder / "summary.json").read_text())
    scores = _fingerprints(folder)
    writes: list[str] = []
    real_write_json = results.write_json
    monkeypatch.setattr(results, "write_json", lambda path, data: (writes.append(Path(path).name),
                                                                    real_write_json(path, data))[1])
    assert main(["analyze", str(folder)]) == 0
    assert (folder / "findings.csv").read_bytes() == before_findings
    assert _fingerprints(folder) == scores, "analyze must never rewrite the score tables"
    assert writes == ["summary.json"], "summary.json is written once"
    after = json.loads((folder / "summary.json").read_text())
    for key in ("seed", "alpha", "n_resamples", "unit", "margin", "counts", "model", "created_utc"):
        assert after.get(key) == before_summary.get(key), key
    assert (folder / "report.html").is_file()
    assert not list(folder.glob(".staging-*"))
    assert "findings" in capsys.readouterr().out


def test_analyze_with_other_options_equals_a_run_made_with_them(tmp_path, run_dir, tiny_model_dir, probes):
    folder = Path(shutil.copytree(run_dir, tmp_path / "run"))
    scores = _fingerprints(folder)
    assert main(["analyze", str(folder), "--seed", "3", "--alpha", "0.025", "--n-resamples", "300",
                 "--no-report"]) == 0
    direct = _run(tiny_model_dir, probes, tmp_path / "direct", "--seed", "3", "--alpha", "0.025",
                  "--n-resamples", "300")
    assert (folder / "findings.csv").read_bytes() == (direct / "findings.csv").read_bytes()
    assert (folder / "findings.csv").read_bytes() != (run_dir / "findings.csv").read_bytes()
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["seed"], summary["alpha"], summary["n_resamples"]) == (3, 0.025, 300)
    assert _fingerprints(folder) == scores
    assert not (folder / "report.html").exists(), "--no-report removes the report of the old findings"


def test_analyze_imports_no_torch(tmp_path, run_dir):
    folder = Path(shutil.copytree(run_dir, tmp_path / "run"))
    code = ("import sys\nfrom albert_audit.cli import main\n"
            f"assert main(['analyze', {str(folder)!r}]) == 0\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stderr[-2000:]


def test_analyze_of_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    assert main(["analyze", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.splitlines()) == 1


@pytest.fixture
def findings_spy(monkeypatch):
    """compute_findings wrapped to record the margin it gets (passed on when the real one takes it)."""
    from albert_audit import metrics

    real = metrics.compute_findings
    seen: list[float | None] = []

    def spy(items, targets, fills, *, margin=None, **options):
        seen.append(margin)
        if margin is not None and "margin" in inspect.signature(real).parameters:
            options["margin"] = margin
        return real(items, targets, fills, **options)

    monkeypatch.setattr(metrics, "compute_findings", spy)
    return seen


def test_margin_reaches_the_statistics_and_is_recorded(tmp_path, tiny_model_dir, probes, findings_spy):
    out = _run(tiny_model_dir, probes, tmp_path / "run", "--margin", "0.15")
    assert findings_spy == [0.15]
    assert json.loads((out / "summary.json").read_text())["margin"] == 0.15
    assert main(["analyze", str(out), "--margin", "0.3", "--no-report"]) == 0
    assert findings_spy == [0.15, 0.3]
    assert json.loads((out / "summary.json").read_text())["margin"] == 0.3
    assert main(["analyze", str(out), "--no-report"]) == 0  # the run's own (recorded) margin is kept
    assert findings_spy == [0.15, 0.3, 0.3]


def test_default_margin_is_not_passed_and_recorded_as_null(tmp_path, run_dir, findings_spy):
    folder = Path(shutil.copytree(run_dir, tmp_path / "run"))
    assert main(["analyze", str(folder), "--no-report"]) == 0
    assert findings_spy == [None]
    assert json.loads((folder / "summary.json").read_text())["margin"] is None


@pytest.mark.parametrize("value", ["-0.1", "nan", "inf", "abc"])
def test_margin_must_be_a_finite_non_negative_number(capsys, value):
    with pytest.raises(SystemExit) as caught:
        main(["run", "--model", "m", "--probes", "p", "--out", "o", "--margin", value])
    assert caught.value.code == 2
    assert "--margin: expected a" in capsys.readouterr().err


def test_compare_passes_the_delta_margin_and_records_both(monkeypatch, tmp_path, run_dir):
    from albert_audit import model_deltas

    real = model_deltas.compute_deltas
    seen: list[float | None] = []

    def spy(base, candidates, *, delta_margin=None, **options):
        seen.append(delta_margin)
        if delta_margin is not None and "delta_margin" in inspect.signature(real).parameters:
            options["delta_margin"] = delta_margin
        return real(base, candidates, **options)

    monkeypatch.setattr(model_deltas, "compute_deltas", spy)
    candidate = Path(shutil.copytree(run_dir, tmp_path / "candidate"))
    out = tmp_path / "cmp"
    assert main(["compare", "--base-run", str(run_dir), "--candidate-run", str(candidate), "--out", str(out),
                 "--no-report", "--n-resamples", "200", "--delta-margin", "0.07", "--margin", "0.2"]) == 0
    assert seen == [0.07]
    summary = json.loads((out / "compare_summary.json").read_text())
    assert (summary["margin"], summary["delta_margin"]) == (0.2, 0.07)
    assert (out / "deltas.csv").is_file() and not list(out.glob(".staging-*"))


def test_summary_line_leads_with_verdicts_when_findings_have_them():
    findings = pd.DataFrame({"significant": [True, False, True, False, False],
                             "verdict": ["material", "negligible", "material", "below_margin", "inconclusive"]})
    assert findings_line(findings, alpha=0.05) == ("5 findings: 2 material, 1 negligible, 1 below margin, "
                                                   "1 inconclusive (2 significant at FDR 0.05)")
    plain = findings.drop(columns="verdict")
    assert findings_line(plain, alpha=0.025) == "5 findings, 2 significant at FDR 0.025"
