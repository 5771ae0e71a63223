"""`albert-audit compare --benchmark ...` end to end through the installed script: benchmark_deltas.csv (paired
deltas of every benchmark, staged with the other outputs), the `benchmarks` record of compare_summary.json and
the benchmark section of compare.html (content and escaping)."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from albert_audit import contract
from tests.benchmark_files import one_torch_thread
from tests.conftest import REPO, TEST_WORDS, shipped_words
from tests.test_benchmarks_crows import PAIRS
from tests.test_benchmarks_crows import write_csv as write_crows
from tests.test_benchmarks_stereoset import EXAMPLES, write_dev

_threads = pytest.fixture(scope="module", autouse=True)(one_torch_thread)
ALPHA = "0.025"
HOSTILE = "<img src=x onerror=alert(1)>"


def _script(argv: list[str]) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("albert-audit")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(script), *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def bench_compare(tmp_path_factory, tiny_model_dir) -> dict:
    from tests.toy_models import build_toy_albert

    folder = tmp_path_factory.mktemp("bench_compare")
    candidate = build_toy_albert(folder / "candidate", words=TEST_WORDS + shipped_words(), seed=1)
    crows = write_crows(folder, PAIRS + [("The young man was late.", "The old man was late.", "stereo",
                                          "age" + HOSTILE)])
    dev = write_dev(folder, [{**e, "bias_type": e["bias_type"] + HOSTILE} if i == 0 else e
                             for i, e in enumerate(EXAMPLES)])
    out = folder / "cmp"
    done = _script(["compare", "--base", str(tiny_model_dir), "--candidate", str(candidate), "--probes",
                    "seed_model_card", "--benchmark", f"crows_pairs={crows}", "--benchmark", f"stereoset={dev}",
                    "--out", str(out), "--quiet", "--no-utility", "--no-run-reports", "--n-resamples", "300",
                    "--alpha", ALPHA, "--device", "cpu"])
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / contract.COMPARE_SUMMARY_FILE).read_text(encoding="utf-8"))
    return {"out": out, "summary": summary, "candidate": summary["candidates"][0]["label"],
            "deltas": pd.read_csv(out / contract.BENCHMARK_DELTAS_FILE, keep_default_na=False,
                                  na_values=[""])}


def _run_table(out: Path, run: str, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / run / contract.BENCHMARKS_FOLDER / f"{name}.parquet")


def test_benchmark_deltas_file_holds_every_benchmark_paired_over_examples(bench_compare):
    from albert_audit.benchmarks import crows_pairs, stereoset

    out, deltas = bench_compare["out"], bench_compare["deltas"]
    assert list(deltas.columns) == list(contract.BENCHMARK_DELTAS.names)
    assert list(pd.unique(deltas["benchmark"])) == ["crows_pairs", "stereoset"]
    assert set(deltas["candidate"]) == {bench_compare["candidate"]}  # the same labels as deltas.csv
    base_c, cand_c = _run_table(out, "base", "crows_pairs"), _run_table(out, "candidate_1", "crows_pairs")
    row = deltas[(deltas["benchmark"] == "crows_pairs") & (deltas["target"] == "all")].iloc[0]
    assert row["base_effect"] == pytest.approx(crows_pairs.metric_score(base_c))
    assert row["delta"] == pytest.approx(crows_pairs.metric_score(cand_c) - crows_pairs.metric_score(base_c))
    base_s, cand_s = stereoset.scores(_run_table(out, "base", "stereoset")), stereoset.scores(
        _run_table(out, "candidate_1", "stereoset"))
    for metric, key in (("stereoset_ss", "SS"), ("stereoset_lms", "LMS"), ("stereoset_icat", "ICAT")):
        got = deltas[(deltas["metric"] == metric) & (deltas["target"] == "all")].iloc[0]
        assert got["delta"] == pytest.approx(cand_s["all"][key] - base_s["all"][key])
        assert "paired over 4 examples" in got["method"]
    assert (deltas["ci_low"].dropna() <= deltas["delta"][deltas["ci_low"].notna()] + 1e-9).all()
    assert any(HOSTILE in t for t in deltas["target"])  # names kept as written (the CSV is not HTML)
    assert set(deltas["change"].fillna("")) <= {"amplified", "reduced", "reversed", "emerged", "inconclusive", ""}


def test_compare_summary_records_the_benchmarks(bench_compare):
    summary, deltas = bench_compare["summary"], bench_compare["deltas"]
    assert summary["files"]["benchmark_deltas"] == contract.BENCHMARK_DELTAS_FILE
    records = summary["benchmarks"]
    assert [r["name"] for r in records] == ["crows_pairs", "stereoset"]
    for record in records:
        rows = deltas[deltas["benchmark"] == record["name"]]
        assert len(record["deltas"]) == len(rows) and record["candidates"] == [bench_compare["candidate"]]
        assert set(record["deltas"][0]) == set(contract.BENCHMARK_DELTAS.names) - {"benchmark", "method"}
        for got, want in zip(record["deltas"], rows.itertuples(), strict=True):
            assert got["target"] == want.target and got["metric"] == want.metric
            assert (got["q_value"] is None and np.isnan(want.q_value)) or got["q_value"] == pytest.approx(
                want.q_value)
        assert sum(record["changes"][bench_compare["candidate"]].values()) == int(
            (rows["change"].fillna("") != "").sum())
        assert all(len(h) == 64 for h in record["files"].values())
    assert set(contract.field_docs(contract.CompareBenchmark)) == set(records[0])
    assert "swap test over examples" in summary["methods"]["benchmarks"]


def test_compare_html_shows_the_benchmark_deltas_escaped(bench_compare):
    page = (bench_compare["out"] / contract.COMPARE_REPORT_FILE).read_text(encoding="utf-8")
    section = page[page.index('<section id="benchmarks"'):page.index('<section id="models"')]
    assert 'href="#benchmarks"' in page
    methods = page[page.index('<section id="methods"'):]
    assert "swap test over examples" in methods
    assert section.count('<table class="findings benchmark-deltas"') == 2
    assert "CrowS-Pairs (Nangia et al. 2020)" in section and "StereoSet intrasentence" in section
    assert "97.5% CI" in section and "Change" in section
    assert HOSTILE not in page and html.escape(HOSTILE) in section  # bias type and domain escaped
    deltas = bench_compare["deltas"]
    assert section.count('<tr class="change-') == len(deltas)  # a row per delta
    ss = deltas[(deltas["metric"] == "stereoset_ss") & (deltas["target"] == "all")].iloc[0]
    assert f'data-v="{float(ss["delta"])!r}"' in section


def test_no_benchmark_leaves_no_file_and_no_record(tmp_path, tiny_model_dir):
    out = tmp_path / "cmp"
    done = _script(["compare", "--base", str(tiny_model_dir), "--candidate", str(tiny_model_dir), "--probes",
                    "seed_model_card", "--out", str(out), "--quiet", "--no-utility", "--no-run-reports",
                    "--no-report", "--n-resamples", "100"])
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / contract.COMPARE_SUMMARY_FILE).read_text(encoding="utf-8"))
    assert "benchmarks" not in summary and summary["files"]["benchmark_deltas"] is None
    assert "benchmarks" not in summary["methods"]
    assert not (out / contract.BENCHMARK_DELTAS_FILE).exists()


def _saved(bench_compare, out: Path):
    from albert_audit.api.compare import compare_runs
    from albert_audit.api.options import CompareConfig

    runs = bench_compare["out"]
    return compare_runs(CompareConfig(out=out, base_run=runs / "base", candidate_runs=[runs / "candidate_1"],
                                      write_report=False, n_resamples=300, alpha=float(ALPHA)))


def test_saved_runs_get_the_same_benchmark_deltas(bench_compare, tmp_path):
    result = _saved(bench_compare, tmp_path / "saved")
    got = pd.read_csv(tmp_path / "saved" / contract.BENCHMARK_DELTAS_FILE, keep_default_na=False, na_values=[""])
    pd.testing.assert_frame_equal(got, bench_compare["deltas"])  # same seed, alpha and resamples: same rows
    assert [r["name"] for r in result.summary["benchmarks"]] == ["crows_pairs", "stereoset"]


def test_a_crash_before_the_commit_leaves_the_previous_benchmark_deltas(bench_compare, tmp_path, monkeypatch):
    from albert_audit import results

    out = tmp_path / "saved"
    _saved(bench_compare, out)
    before = (out / contract.BENCHMARK_DELTAS_FILE).read_bytes()
    (out / contract.BENCHMARK_DELTAS_FILE).write_bytes(before + b"# marker\n")
    real = results.write_json

    def crash(path, data):
        if Path(path).name == contract.COMPARE_SUMMARY_FILE:
            assert (Path(path).parent / contract.BENCHMARK_DELTAS_FILE).is_file()  # written into the staging folder
            raise KeyboardInterrupt
        return real(path, data)

    monkeypatch.setattr(results, "write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        _saved(bench_compare, out)
    assert (out / contract.BENCHMARK_DELTAS_FILE).read_bytes() == before + b"# marker\n"  # untouched
    assert not list(out.glob(".staging-*")) and not list(out.glob("*.tmp"))
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        _saved(bench_compare, fresh)
    assert not (fresh / contract.BENCHMARK_DELTAS_FILE).exists()  # no partial output in a new folder
