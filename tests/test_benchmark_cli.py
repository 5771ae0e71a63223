"""`albert-audit run --benchmark NAME=PATH` end to end on the tiny model: per-example tables, findings rows,
summary.json, the report section; bad inputs stop before the model loads."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from albert_audit import contract, registry
from albert_audit.benchmarks import crows_pairs, stereoset
from albert_audit.cli import main
from albert_audit.stats import benjamini_hochberg
from tests.benchmark_files import one_torch_thread
from tests.test_benchmarks_crows import PAIRS
from tests.test_benchmarks_crows import write_csv as write_crows
from tests.test_benchmarks_stereoset import write_dev

_threads = pytest.fixture(scope="module", autouse=True)(one_torch_thread)
ALPHA = 0.025  # not the default: the benchmark rows must be computed at the run's alpha
N_RESAMPLES = 400
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, tiny_model_dir) -> dict:
    folder = tmp_path_factory.mktemp("bench_cli")
    rows = PAIRS + [("The young " + HOSTILE + " man was late.", "The old " + HOSTILE + " man was late.",
                     "stereo", "age")]
    crows = write_crows(folder, rows)
    dev = write_dev(folder)
    out = folder / "run"
    code = main(["run", "--model", str(tiny_model_dir), "--benchmark", f"crows_pairs={crows}",
                 "--benchmark", f"stereoset={dev}", "--out", str(out), "--quiet", "--n-resamples",
                 str(N_RESAMPLES), "--alpha", str(ALPHA)])
    assert code == 0
    return {"out": out, "crows": crows, "dev": dev}


def test_per_example_tables(bench_run):
    out = bench_run["out"]
    crows = pd.read_parquet(out / contract.BENCHMARKS_FOLDER / "crows_pairs.parquet")
    assert list(crows.columns) == list(crows_pairs.PAIR_COLUMNS) and len(crows) == len(PAIRS) + 1
    assert np.isfinite(crows["sent_more_score"]).all() and (crows["n_scored_tokens"] > 0).all()
    sset = pd.read_parquet(out / contract.BENCHMARKS_FOLDER / "stereoset.parquet")
    assert len(sset) == len(stereoset.load_intrasentence(bench_run["dev"]))
    assert sorted(p.name for p in (out / contract.BENCHMARKS_FOLDER).iterdir()) == ["crows_pairs.parquet",
                                                                                    "stereoset.parquet"]
    items = pd.read_parquet(out / contract.ITEMS_FILE)
    assert items.empty  # no --probes: a run of benchmarks only


def test_findings_rows_are_the_benchmarks_own_at_the_run_alpha(bench_run):
    out = bench_run["out"]
    found = contract.restore_types(pd.read_csv(out / contract.FINDINGS_FILE, keep_default_na=False,
                                               na_values=[""]), contract.FINDINGS, "findings")
    assert set(found["probe_set"]) == {"crows_pairs", "stereoset"}
    assert set(found["metric"]) == {"crows_pairs", "stereoset_ss", "stereoset_lms", "stereoset_icat"}
    assert set(found["metric"]) <= set(registry.benchmark_ids())
    crows = pd.read_parquet(out / contract.BENCHMARKS_FOLDER / "crows_pairs.parquet")
    sset = pd.read_parquet(out / contract.BENCHMARKS_FOLDER / "stereoset.parquet")
    expected = pd.concat([crows_pairs.findings(crows, seed=0, alpha=ALPHA, n_resamples=N_RESAMPLES),
                          stereoset.findings(sset, seed=0, alpha=ALPHA, n_resamples=N_RESAMPLES)],
                         ignore_index=True)
    for column in ("probe_set", "metric", "target", "n_units", "method"):
        assert found[column].tolist() == expected[column].tolist(), column
    for column in ("effect", "ci_low", "ci_high", "p_value", "q_value"):
        np.testing.assert_allclose(found[column].to_numpy(float), expected[column].to_numpy(float), rtol=1e-9,
                                   err_msg=column)
    default = stereoset.findings(sset, seed=0, alpha=0.05, n_resamples=N_RESAMPLES)
    assert default["method"].tolist() != found.loc[found["probe_set"] == "stereoset", "method"].tolist(), \
        "the test must see the alpha: 0.05 gives other rows"
    assert any("97.5% BCa" in m for m in found.loc[found["probe_set"] == "stereoset", "method"])
    for _, family in found.groupby("probe_set"):  # q within the benchmark's own family
        tested = family[np.isfinite(family["p_value"])]
        if len(tested):
            np.testing.assert_allclose(tested["q_value"], benjamini_hochberg(tested["p_value"].to_numpy()))
    assert (found["significant"] == (found["q_value"] <= ALPHA)).all()


def test_summary_records_the_benchmarks(bench_run):
    out = bench_run["out"]
    summary = json.loads((out / contract.SUMMARY_FILE).read_text())
    records = summary["benchmarks"]
    assert [r["name"] for r in records] == ["crows_pairs", "stereoset"]
    for record, path in zip(records, (bench_run["crows"], bench_run["dev"]), strict=True):
        assert record["path"] == str(path)
        assert record["files"] == {str(path): hashlib.sha256(path.read_bytes()).hexdigest()}
        assert record["n_examples"] == len(pd.read_parquet(out / record["table"]))
        assert record["table"] == f"benchmarks/{record['name']}.parquet"
    assert summary["alpha"] == ALPHA and "benchmarks" in summary["timings_s"]


def test_report_section_escapes_and_cautions(bench_run):
    html = (bench_run["out"] / contract.REPORT_FILE).read_text(encoding="utf-8")
    section = html[html.index('<section id="benchmarks"'):html.index('<section id="methods"')]
    assert "CrowS-Pairs (Nangia et al. 2020)" in section and "StereoSet intrasentence" in section
    assert "Blodgett et al. (2021)" in section  # crows_pairs.CAUTION, HTML-escaped
    assert section.count("<svg") == 2  # a chart per benchmark
    assert "97.5%" in section and "q ≤ 0.025" in section
    for metric in ("CrowS-Pairs score", "StereoSet stereotype score (SS)", "StereoSet idealized CAT score (ICAT)"):
        assert metric in section
    assert 'href="#benchmarks"' in html
    assert "<script>alert" not in html  # a hostile subgroup name (bias type) is escaped
    probe_sets = html[html.index('<section id="probe-sets"'):html.index('<section id="benchmarks"')]
    assert "crows_pairs" not in probe_sets  # benchmark rows are not shown as probe sets
    assert section.count('<table class="findings published-numbers">') == 2  # CrowS-Pairs and StereoSet
    crows = section[:section.index("StereoSet intrasentence")]
    assert "60.81" in crows and "bias-bench" in crows and "not numerically comparable" in crows
    assert "60.48" in crows and "yes (same method)" in crows and "Ej-zhou/BS" in crows
    stereo = section[section.index("StereoSet intrasentence"):]
    assert "57.82" in stereo and "71.15" in stereo and "60.81" not in stereo


def test_report_section_escapes_a_hostile_path(tmp_path):
    from albert_audit.report.benchmark_section import benchmark_section
    from albert_audit.report.render import make_environment

    rows = crows_pairs.findings(pd.DataFrame({
        "pair_id": [0, 1], "bias_type": [HOSTILE, HOSTILE], "stereo_antistereo": ["stereo", "stereo"],
        "sent_more": ["a", "b"], "sent_less": ["c", "d"], "sent_more_score": [1.0, 0.0],
        "sent_less_score": [0.0, 1.0], "n_scored_tokens": [1, 1]}), seed=0, alpha=ALPHA, n_resamples=50)
    summary = {"benchmarks": [{"name": "crows_pairs", "path": f"/x/{HOSTILE}.csv", "n_examples": 2,
                               "files": {f"/x/{HOSTILE}.csv": "ab" * 32}, "table": "benchmarks/crows_pairs.parquet"}]}
    blocks = benchmark_section(rows, summary, alpha=ALPHA)
    html = make_environment().get_template("_benchmarks.html.j2").render(
        benchmarks=blocks, benchmark_headers=("a",), methods={"ci_level": "97.5%", "alpha": "0.025"},
        files={"findings": "findings.csv"})
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert blocks[0]["caution"] == crows_pairs.CAUTION


def test_published_numbers_are_escaped_and_come_from_the_data_file(tmp_path, monkeypatch):
    from albert_audit.benchmarks import published
    from albert_audit.report import benchmark_section as section_module
    from albert_audit.report.render import make_environment

    data = tmp_path / "published.yaml"
    data.write_text(f"""crows_pairs:
  - model: "{HOSTILE}"
    source: s
    citation: "cite {HOSTILE}"
    url: https://example.org/x
    variant: v
    comparable: false
    values:
      - {{metric: crows_pairs, subgroup: all, value: 61.5}}
""", encoding="utf-8")
    monkeypatch.setattr(section_module, "load_published", lambda: published.load_published(data))
    rows = crows_pairs.findings(pd.DataFrame({
        "pair_id": [0, 1], "bias_type": ["g", "g"], "stereo_antistereo": ["stereo", "stereo"],
        "sent_more": ["a", "b"], "sent_less": ["c", "d"], "sent_more_score": [1.0, 0.0],
        "sent_less_score": [0.0, 1.0], "n_scored_tokens": [1, 1]}), seed=0, alpha=ALPHA, n_resamples=50)
    blocks = section_module.benchmark_section(rows, {}, alpha=ALPHA)
    html = make_environment().get_template("_benchmarks.html.j2").render(
        benchmarks=blocks, benchmark_headers=("a",), methods={"ci_level": "97.5%", "alpha": "0.025"},
        files={"findings": "findings.csv"})
    assert HOSTILE not in html and html.count("&lt;img src=x") == 0 and html.count("&lt;script&gt;") == 2
    assert "61.5" in html and "no: other method, not numerically comparable" in html


@pytest.mark.parametrize("argument, message", [
    ("crows_pairs={missing}", "missing.csv: CrowS-Pairs file not found"),
    ("crows_pairs={bad}", "bad.csv: missing column(s) stereo_antistereo"),
    ("stereoset={bad_json}", "bad.json: invalid JSON at line 1"),
    ("seat={missing}", "SEAT folder not found"),
    ("nonsense={bad}", "unknown benchmark 'nonsense'"),
    ("crows_pairs", "expected NAME=PATH"),
])
def test_bad_benchmark_path_is_one_line_before_the_model_loads(monkeypatch, capsys, tmp_path, argument, message):
    import albert_audit.engine.loading as loading

    def never(*args, **kwargs):
        raise AssertionError("the model must not load before the benchmark files are checked")

    monkeypatch.setattr(loading, "load_model", never)
    bad = write_crows(tmp_path, name="bad.csv")
    bad.write_text(bad.read_text().replace("stereo_antistereo", "direction"), encoding="utf-8")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json", encoding="utf-8")
    arg = argument.format(missing=tmp_path / "missing.csv", bad=bad, bad_json=bad_json)
    code = main(["run", "--model", "no/such-model", "--benchmark", arg, "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_no_probes_and_no_benchmarks_is_one_line(capsys, tmp_path):
    code = main(["run", "--model", "no/such-model", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no probe sets given" in err and len(err.splitlines()) == 1


def test_probes_and_a_benchmark_together(tmp_path, tiny_model_dir):
    crows = write_crows(tmp_path)
    out = tmp_path / "run"
    code = main(["run", "--model", str(tiny_model_dir), "--probes", "seed_model_card", "--benchmark",
                 f"aul={crows}", "--out", str(out), "--quiet", "--n-resamples", "200", "--no-report"])
    assert code == 0
    found = pd.read_csv(out / contract.FINDINGS_FILE)
    assert "seed_model_card" in set(found["probe_set"])
    aul = found[found["probe_set"] == "aul"]
    assert set(aul["metric"]) == {"aul"} and len(aul) == 1 + len({p[3] for p in PAIRS})
    assert not found.loc[found["probe_set"] != "aul", "metric"].isin(registry.benchmark_ids()).any()
    table = pd.read_parquet(out / "benchmarks" / "aul.parquet")
    assert table["sent_more_aula"].isna().all() and np.isfinite(table["sent_more_aul"]).all()


def test_registry_benchmark_metrics_are_not_computed_from_items():
    ids = registry.benchmark_ids()
    assert ids == ("crows_pairs", "aul", "aula", "stereoset_ss", "stereoset_lms", "stereoset_icat", "seat",
                   "honest_k1", "honest_k5", "honest_k10", "honest_k20")
    assert not set(ids) & set(registry.metric_ids())
    assert registry.label("stereoset_icat") == "StereoSet idealized CAT score (ICAT)"
    assert registry.metric("honest_k5").unit == "% fills" and registry.metric("seat").unit == "d"


def test_benchmark_run_fields_are_in_the_data_contract():
    page = (Path(__file__).resolve().parent.parent / "docs" / "data_contract.md").read_text(encoding="utf-8")
    section = page[page.index("`BenchmarkRun`"):]
    for name in contract.field_docs(contract.BenchmarkRun):
        assert re.search(rf"\|\s*{name}\s*\|", section), name


def test_compare_scores_the_benchmark_in_every_models_run(tmp_path, tiny_model_dir):
    crows = write_crows(tmp_path)
    out = tmp_path / "cmp"
    code = main(["compare", "--base", str(tiny_model_dir), "--candidate", str(tiny_model_dir), "--probes",
                 "seed_model_card", "--benchmark", f"aul={crows}", "--out", str(out), "--quiet", "--no-utility",
                 "--no-report", "--no-run-reports", "--n-resamples", "100"])
    assert code == 0
    tables = []
    for run in ("base", "candidate_1"):
        summary = json.loads((out / run / contract.SUMMARY_FILE).read_text())
        assert [b["name"] for b in summary["benchmarks"]] == ["aul"]
        tables.append(pd.read_parquet(out / run / "benchmarks" / "aul.parquet"))
    pd.testing.assert_frame_equal(tables[0], tables[1])  # the same model twice: the same table
    deltas = pd.read_csv(out / contract.BENCHMARK_DELTAS_FILE)
    label = json.loads((out / contract.COMPARE_SUMMARY_FILE).read_text())["candidates"][0]["label"]
    assert set(deltas["benchmark"]) == {"aul"} and set(deltas["candidate"]) == {label}  # deltas.csv's label
    assert deltas["target"].tolist()[0] == "all" and (deltas["delta"] == 0).all()
    assert deltas["p_value"].isna().all() and (deltas["n_discordant"] == 0).all()


def test_compare_bad_benchmark_is_one_line_before_any_model_loads(monkeypatch, capsys, tmp_path):
    import albert_audit.engine.graft as graft

    def never(*args, **kwargs):
        raise AssertionError("no model may be read before the benchmark files are checked")

    monkeypatch.setattr(graft, "folder_config", never)
    code = main(["compare", "--base", "no/such", "--candidate", "no/such2", "--probes", "seed_model_card",
                 "--benchmark", f"crows_pairs={tmp_path / 'missing.csv'}", "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "missing.csv: CrowS-Pairs file not found" in err and len(err.splitlines()) == 1


def test_seat_honest_and_aula_through_the_cli(tmp_path, tiny_model_dir):
    from tests.test_benchmarks_honest import write_hurtlex
    from tests.test_benchmarks_seat import write_test

    seat_dir = tmp_path / "seat"
    seat_dir.mkdir()
    write_test(seat_dir, "a_test")
    write_test(seat_dir, "b_test")
    hurtlex = write_hurtlex(tmp_path)
    sset = write_dev(tmp_path)
    out = tmp_path / "run"
    code = main(["run", "--model", str(tiny_model_dir), "--benchmark", f"seat={seat_dir}", "--benchmark",
                 f"honest={hurtlex}", "--benchmark", f"aula={sset}", "--out", str(out), "--quiet",
                 "--n-resamples", "100", "--no-report"])
    assert code == 0
    found = pd.read_csv(out / contract.FINDINGS_FILE)
    assert set(found.loc[found["probe_set"] == "seat", "target"]) == {"a_test", "b_test", "all"}
    assert set(found.loc[found["probe_set"] == "honest", "metric"]) == {"honest_k1", "honest_k5", "honest_k10",
                                                                          "honest_k20"}
    assert set(found.loc[found["probe_set"] == "aula", "metric"]) == {"aula"}  # AUL rows only under aul
    summary = json.loads((out / contract.SUMMARY_FILE).read_text())
    records = {r["name"]: r for r in summary["benchmarks"]}
    assert sorted(records["seat"]["files"]) == [str(seat_dir / "a_test.jsonl"), str(seat_dir / "b_test.jsonl")]
    assert len(records["honest"]["files"]) == 2 and str(hurtlex) in records["honest"]["files"]
    assert records["honest"]["n_examples"] == len(pd.read_parquet(out / "benchmarks" / "honest.parquet")) == 810
    assert np.isfinite(pd.read_parquet(out / "benchmarks" / "aula.parquet")["sent_more_aula"]).all()


def test_a_benchmark_given_twice_and_stale_tables(tmp_path):
    from albert_audit import results
    from albert_audit.api.benchmarks import load_benchmarks

    crows = write_crows(tmp_path)
    with pytest.raises(Exception, match="--benchmark crows_pairs given twice"):
        load_benchmarks([f"crows_pairs={crows}", f"crows_pairs={crows}"])
    out = tmp_path / "out"
    stale = out / contract.BENCHMARKS_FOLDER / "seat.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    staging = results.Staging(out)  # how run_audit writes: a rerun's benchmarks/ replaces the old one whole
    (staging.open() / contract.BENCHMARKS_FOLDER).mkdir()
    (staging.folder / contract.BENCHMARKS_FOLDER / "crows_pairs.parquet").write_bytes(b"new")
    staging.commit()
    assert not stale.exists()  # a rerun into the folder never keeps another run's table
    assert (out / contract.BENCHMARKS_FOLDER / "crows_pairs.parquet").read_bytes() == b"new"
