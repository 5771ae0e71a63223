"""`albert-audit lineage` on a local Ray instance: equal to one-by-one audits in one process, one failure alone,
a killed worker retried, a rerun resumed, the catalogue equal to the files, the card round trip.

One lineage is audited for the whole session (tests/conftest.py ``lineage_folder``); every test reads it."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from albert_audit import contract, results
from albert_audit.api import DEMO_MODELS_DIR
from albert_audit.cli import main
from albert_audit.errors import AuditError
from albert_audit.lineage import manifest as manifests

REPO = Path(__file__).resolve().parent.parent
PROBES = str(DEMO_MODELS_DIR / "demo_probes.yaml")
OK = ("base", "noisy", "planted", "headless")


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _status(out: Path) -> pd.DataFrame:
    table = results.read_csv_table(out / contract.LINEAGE_STATUS_FILE,
                                   text_columns=contract.LINEAGE_STATUS.names_of("str"))
    return contract.restore_types(table, contract.LINEAGE_STATUS, "status").set_index("label")


@pytest.fixture(scope="module")
def lineage(lineage_folder):
    assert lineage_folder["exit_code"] == 0, lineage_folder["stderr"][-3000:]
    return lineage_folder


@pytest.fixture(scope="module")
def references(lineage, tmp_path_factory):
    """The same models audited one by one in this process with the existing commands (run, compare)."""
    ref = tmp_path_factory.mktemp("one_by_one")
    models = {"base": str(DEMO_MODELS_DIR / "base"), **{k: str(v.resolve()) for k, v in lineage["models"].items()}}
    common = ["--device", "cpu", "--dtype", "float32", "--offline", "--n-resamples", "200", "--quiet"]
    for label in ("base", "noisy", "planted"):
        code, _, err = _cli(["run", "--model", models[label], "--probes", PROBES, "--out", str(ref / label),
                             "--no-report", *common])
        assert code == 0, err
    code, _, err = _cli(["compare", "--base", models["base"], "--candidate", models["headless"], "--probes", PROBES,
                         "--out", str(ref / "graft"), "--no-report", "--no-run-reports", "--no-utility", *common])
    assert code == 0, err
    runs = {"base": ref / "base", "noisy": ref / "noisy", "planted": ref / "planted",
            "headless": ref / "graft" / "candidate_1"}
    for label, base in (("planted", "base"), ("headless", "planted"), ("headless", "base")):
        code, _, err = _cli(["compare", "--base-run", str(runs[base]), "--candidate-run", str(runs[label]),
                             "--out", str(ref / f"{label}--{base}"), "--no-report", "--n-resamples", "200"])
        assert code == 0, err
    return {"runs": runs, "folder": ref}


# --------------------------------------------------------------------------------------- the lineage run


def test_status_table_every_model_and_the_damaged_one_fails_alone(lineage):
    status = _status(lineage["out"])
    assert list(status.index) == ["base", "noisy", "planted", "headless", "damaged"]  # tree order
    assert (status.loc[list(OK), "status"] == "done").all()
    damaged = status.loc["damaged"]
    assert damaged["status"] == "failed" and damaged["run"] == ""
    assert damaged["reason"] and "\n" not in damaged["reason"] and "safetensor" in damaged["reason"].lower()
    assert status.loc["headless", "kind"] == "grafted" and status.loc["headless", "head"].startswith("grafted from ")
    assert status.loc["planted", "kind"] == "mlm" and status.loc["planted", "head"] == "own"
    assert status.loc["headless", "parent"] == "planted" and status.loc["headless", "depth"] == 2
    assert "damaged: failed: " in lineage["stdout"]
    assert "4 audited, 0 resumed, 1 failed" in lineage["stdout"]


def test_killed_worker_is_retried_by_ray(lineage):
    assert lineage["killed_marker"].is_file(), "the fault injection did not fire"
    status = _status(lineage["out"])
    assert status.loc["noisy", "attempts"] == 2 and status.loc["noisy", "status"] == "done"
    assert (status.loc[["base", "planted", "headless"], "attempts"] == 1).all()
    summary = json.loads((lineage["out"] / "runs" / "noisy" / "summary.json").read_text())
    assert summary["counts"]["resumed_sequences"] >= 0


def test_findings_equal_one_by_one_audits_in_one_process(lineage, references):
    for label in OK:
        mine = lineage["out"] / "runs" / label
        theirs = references["runs"][label]
        assert (mine / "findings.csv").read_bytes() == (theirs / "findings.csv").read_bytes(), label
        a, b = results.read_run(mine), results.read_run(theirs)
        for table in ("items", "targets", "fills"):
            pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table), check_exact=True, obj=label)
        sa, sb = a.summary, b.summary
        assert sa["counts"] == sb["counts"] and sa["model"]["weights_sha256"] == sb["model"]["weights_sha256"]
        assert sa["model"]["head"] == sb["model"]["head"]


def test_deltas_equal_one_by_one_compares(lineage, references):
    out, ref = lineage["out"], references["folder"]
    for folder, theirs in (("planted--vs-parent", "planted--base"), ("headless--vs-parent", "headless--planted"),
                           ("headless--vs-root", "headless--base")):
        mine = out / "compares" / folder
        assert (mine / "deltas.csv").read_bytes() == (ref / theirs / "deltas.csv").read_bytes(), folder
        sa = json.loads((mine / "compare_summary.json").read_text())
        sb = json.loads((ref / theirs / "compare_summary.json").read_text())
        for key in ("changes", "items_sha256", "n_deltas", "seed", "alpha", "n_resamples"):
            assert sa[key] == sb[key], (folder, key)


def test_planted_changes_are_found_against_parent_and_root(lineage):
    status = _status(lineage["out"])
    assert status.loc["planted", "changes_vs_parent"].startswith("amplified=8;reduced=8;")
    assert status.loc["planted", "vs_root"] == status.loc["planted", "vs_parent"] == "compares/planted--vs-parent"
    assert status.loc["headless", "vs_root"] == "compares/headless--vs-root"
    assert status.loc["noisy", "changes_vs_parent"].startswith("amplified=0;reduced=0;reversed=0;emerged=0;")


def test_rerun_resumes_complete_runs(lineage, tmp_path):
    out = lineage["out"]
    before = {label: (out / "runs" / label / "findings.csv").stat().st_mtime_ns for label in OK}
    code, stdout, err = _cli(lineage["argv"] + ["--quiet", "--no-catalogue", "--no-run-reports"])
    assert code == 0, err
    status = _status(out)
    assert (status.loc[list(OK), "status"] == "resumed").all(), status["status"]
    assert status.loc["damaged", "status"] == "failed"
    assert "0 audited, 4 resumed, 1 failed" in stdout
    assert before == {label: (out / "runs" / label / "findings.csv").stat().st_mtime_ns for label in OK}


def test_resume_needs_the_same_weights_and_settings(lineage, tmp_path):
    from albert_audit.api import load_probes
    from albert_audit.lineage.run import LineageConfig, plan_jobs
    from albert_audit.lineage.worker import resumable

    config = LineageConfig(out=tmp_path, probes=[PROBES], device="cpu", dtype="float32", offline=True,
                           n_resamples=200, utility_sample=DEMO_MODELS_DIR / "neutral_sample.txt")
    tree = manifests.load_manifest(lineage["manifest"])
    jobs = {job.label: job for job in plan_jobs(config, tree, load_probes([PROBES]), tmp_path)}
    job = dataclasses.replace(jobs["planted"], run_dir=str(lineage["out"] / "runs" / "planted"))
    assert resumable(job) is not None and resumable(job).status == "resumed"
    assert resumable(dataclasses.replace(job, audit_key="other settings")) is None
    other_weights = dataclasses.replace(job, model=str(lineage["models"]["noisy"]))  # same folder, other weights
    assert resumable(other_weights) is None
    import shutil

    scored_only = Path(shutil.copytree(lineage["out"] / "runs" / "planted", tmp_path / "scored"))
    (scored_only / "findings.csv").unlink()  # scored, statistics not yet computed: kept, statistics redone
    resumed = resumable(dataclasses.replace(job, run_dir=str(scored_only)))
    assert resumed is not None and resumed.needs_stats
    assert not resumable(job).needs_stats
    seeded = LineageConfig(**{**dataclasses.asdict(config), "seed": 1})
    assert plan_jobs(seeded, tree, load_probes([PROBES]), tmp_path)[2].audit_key != jobs["planted"].audit_key


def test_lineage_report_links_and_escaping(lineage):
    from albert_audit.report.lineage_context import build_lineage_context
    from albert_audit.report.render import make_environment

    out = lineage["out"]
    html = (out / "lineage.html").read_text(encoding="utf-8")
    assert "script-src 'none'" in html and "<script" not in html
    for label in OK:
        assert f'href="runs/{label}/report.html"' in html and (out / "runs" / label / "report.html").is_file()
    assert 'href="compares/headless--vs-root/compare.html"' in html
    assert "SafetensorError" in html and 'data-status="failed"' in html
    context = build_lineage_context(out)
    assert html.count("<svg") == context["n_charts"] == 1
    context["models"][0]["model"] = "<script>alert(1)</script>"
    context["models"][0]["label"] = '"><img src=x>'
    hostile = make_environment().get_template("lineage.html.j2").render(**context)
    assert "<script>alert(1)" not in hostile and "<img src=x>" not in hostile
    assert "&lt;script&gt;alert(1)" in hostile


def test_catalogue_equals_the_files(lineage):
    from albert_audit.catalogue import query

    out = lineage["out"]
    catalogue = out / "catalogue.duckdb"
    for label in OK:
        run = results.read_run(out / "runs" / label, need_findings=True)
        rows = query(catalogue, f"SELECT * EXCLUDE (run_id) FROM findings WHERE run_id = "
                                f"'{(out / 'runs' / label).resolve()}'")
        pd.testing.assert_frame_equal(rows.reset_index(drop=True), run.findings.reset_index(drop=True),
                                      check_exact=True, check_dtype=False, obj=label)
    deltas = contract.restore_types(results.read_csv_table(out / "compares" / "planted--vs-parent" / "deltas.csv",
                                                           text_columns=contract.DELTAS.names_of("str")),
                                    contract.DELTAS, "deltas")
    rows = query(catalogue, "SELECT * EXCLUDE (compare_id) FROM deltas WHERE compare_id LIKE '%planted--vs-parent'")
    pd.testing.assert_frame_equal(rows.reset_index(drop=True), deltas.reset_index(drop=True), check_exact=True,
                                  check_dtype=False)
    runs = query(catalogue, "SELECT label, weights_sha256, parent, probe_sets FROM runs ORDER BY label")
    status = _status(out)
    assert sorted(runs["label"]) == sorted(OK)
    for row in runs.itertuples():
        assert row.weights_sha256 == status.loc[row.label, "weights_sha256"]
        assert row.parent == status.loc[row.label, "parent"]
        assert row.probe_sets.startswith("demo_gender_occupation=")


def test_catalogue_answers_which_descendants_amplified_a_finding_of_the_base(lineage):
    from albert_audit.catalogue import query

    out = lineage["out"]
    answer = query(out / "catalogue.duckdb",
                   "SELECT label, count(*) AS n FROM lineage_changes WHERE against = 'root' AND change = 'amplified' "
                   "GROUP BY label ORDER BY label")
    expected = {}
    for label, folder in (("planted", "planted--vs-parent"), ("headless", "headless--vs-root"),
                          ("noisy", "noisy--vs-parent")):
        deltas = pd.read_csv(out / "compares" / folder / "deltas.csv", keep_default_na=False)
        if (deltas["change"] == "amplified").sum():
            expected[label] = int((deltas["change"] == "amplified").sum())
    assert dict(zip(answer["label"], answer["n"], strict=True)) == expected == {"headless": 8, "planted": 8}


def test_catalogue_and_history_cli(lineage, tmp_path):
    out = lineage["out"]
    catalogue = str(out / "catalogue.duckdb")
    code, stdout, err = _cli(["catalogue", "query", "SELECT label, status FROM lineage_nodes ORDER BY position",
                              "--catalogue", catalogue])
    assert code == 0, err
    assert stdout.split() == ["label", "status", "base", "done", "noisy", "done", "planted", "done", "headless",
                              "done", "damaged", "failed"]
    target = tmp_path / "scores.csv"
    code, stdout, _ = _cli(["catalogue", "query", "SELECT * FROM bias_scores ORDER BY label", "--catalogue",
                            catalogue, "--out", str(target)])
    assert code == 0 and stdout.startswith("4 rows: ")
    assert list(pd.read_csv(target)["label"]) == sorted(OK)
    code, _, err = _cli(["catalogue", "query", "SELECT * FROM no_such_table", "--catalogue", catalogue])
    assert code == 2 and err.startswith("error: SQL: ") and err.count("\n") == 1
    code, _, err = _cli(["catalogue", "query", "DROP TABLE runs", "--catalogue", catalogue])
    assert code == 2 and "read-only" in err.lower()
    page = tmp_path / "history.html"
    code, stdout, err = _cli(["history", "demo_zoo", "--catalogue", catalogue, "--out", str(page)])
    assert code == 0, err
    lines = stdout.splitlines()
    assert [line.split()[1] for line in lines[:4]] == ["base", "noisy", "planted", "headless"]
    assert "changes: amplified=8;negligible=25;reduced=8" in lines[2]
    assert "bias score" in lines[0] and "[" in lines[0]
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 1 and "script-src 'none'" in html


def test_catalogue_add_run_and_compare_folders(references, tmp_path):
    from albert_audit.catalogue import add_folders, query

    catalogue = tmp_path / "cat.duckdb"
    counts = add_folders(catalogue, [references["runs"]["base"], references["folder"] / "planted--base"])
    assert counts == {"runs": 3, "compares": 1, "lineages": 0}  # base twice (itself and in the compare): one row
    assert query(catalogue, "SELECT count(*) AS n FROM runs")["n"][0] == 2
    n_deltas = len(pd.read_csv(references["folder"] / "planted--base" / "deltas.csv"))
    assert query(catalogue, "SELECT count(*) AS n FROM deltas")["n"][0] == n_deltas
    with pytest.raises(AuditError, match="not a run, compare or lineage folder"):
        add_folders(catalogue, [tmp_path])


def test_history_of_a_model_across_its_catalogued_runs(lineage, references, tmp_path):
    from albert_audit.catalogue import add_folders, history

    catalogue = tmp_path / "cat.duckdb"
    add_folders(catalogue, [references["runs"]["base"], lineage["out"]])
    table = history(catalogue, str(DEMO_MODELS_DIR / "base"))  # the demo base: audited twice, two "checkpoints"
    assert list(table["position"]) == [0, 1] and table["probe_set"].nunique() == 1
    assert table["bias_score"].nunique() == 1  # same model, same scores, same statistics options
    assert (table["ci_low"] < table["bias_score"]).all() and (table["bias_score"] < table["ci_high"]).all()
    with pytest.raises(AuditError, match="neither a catalogued lineage nor a catalogued model id"):
        history(catalogue, "nobody/nothing")


def test_card_round_trips_through_huggingface_hub(lineage, tmp_path):
    import yaml
    from huggingface_hub import ModelCard

    run_dir = lineage["out"] / "runs" / "planted"
    target = tmp_path / "README.md"
    code, stdout, err = _cli(["card", str(run_dir), "--model-name", "demo-planted", "--out", str(target)])
    assert code == 0, err
    text = target.read_text(encoding="utf-8")
    written = yaml.safe_load(text.split("---\n")[1])["model-index"]
    card = ModelCard(text)
    assert card.data.to_dict()["model-index"] == written  # read back without loss
    assert card.data.model_name == "demo-planted"
    findings = results.read_run(run_dir, need_findings=True).findings
    score = findings[findings["metric"] == "bias_score"].iloc[0]
    result = next(r for r in card.data.eval_results if r.metric_type == "bias_score")
    assert result.metric_value == score["effect"] and result.metric_args["ci_low"] == score["ci_low"]
    assert result.dataset_name == "demo_gender_occupation" and len(result.dataset_revision) == 64
    material = next(r for r in card.data.eval_results if r.metric_type == "findings_material"
                    and r.metric_config == "group")
    assert material.metric_value == int(((findings["verdict"] == "material") & (findings["scope"] == "group")).sum())
    assert "## Bias evaluation" in text and "### Limitations" in text and "more likely after" in text


# ------------------------------------------------------------------------------- without Ray: the tree, kinds


def _manifest(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(("body", "line", "message"), [
    ("base: a\ndescendants:\n  - model: b\n    parnet: a\n", 4, "unknown key 'parnet' (did you mean 'parent'?)"),
    ("base: a\ndescendants:\n  - model: b\n    parent: zz\n", 3, "parent 'zz' of 'b' is not a label"),
    ("base: a\ndescendants:\n  - model: b\n  - model: c/b\n", 4, "label 'b' is used twice (also line 3)"),
    ("base: a\ndescendants:\n  - model: b\n    kind: tasks\n", 4, "kind 'tasks' (did you mean 'task'?)"),
    ("base: a\ndescendants:\n  - label: b\n", 3, "missing key 'model'"),
    ("base: a\ndescendants:\n  - model: b\n    revision: [1]\n", 4, "revision must be text"),
    ("base: a\ndescendants:\n  - model: b\n    parent: c\n  - model: c\n    parent: b\n", 3, "form a cycle"),
    ("base: a\ndescendants: [\n", 3, "invalid YAML"),
    ("descendants: []\n", 1, "missing key 'base'"),
    ("base: a\ndescendants:\n  - model: b\n    label: 'x y'\n", 4, "label 'x y': use letters"),
    ("schema_version: 2\nbase: a\ndescendants: []\n", 1, "schema_version '2'"),
])
def test_manifest_problems_are_path_line_messages(tmp_path, body, line, message):
    path = _manifest(tmp_path, body)
    with pytest.raises(AuditError) as caught:
        manifests.load_manifest(path)
    first = str(caught.value).splitlines()[0]
    assert first.startswith(f"{path}:{line}: ") and message in first, str(caught.value)


def test_manifest_reports_every_problem_at_once_and_cli_exits_2(tmp_path):
    path = _manifest(tmp_path, "base: a\nfoo: 1\ndescendants:\n  - model: b\n    kind: x\n")
    code, _, err = _cli(["lineage", "--manifest", str(path), "--probes", PROBES, "--out", str(tmp_path / "o")])
    assert code == 2
    lines = err.splitlines()
    assert lines[0] == f"error: {path}:2: the manifest: unknown key 'foo'; expected schema_version, name, base, " \
                       "descendants"
    assert lines[1].startswith(f"{path}:5: descendant 1: kind 'x'")
    assert not (tmp_path / "o").exists()


def test_manifest_defaults_and_tree_order(tmp_path):
    (tmp_path / "local").mkdir()
    path = _manifest(tmp_path, "name: zoo\nbase: org/root\ndescendants:\n  - model: org/a\n  - model: local\n"
                               "    parent: a\n  - model: org/b\n    revision: v2\n")
    tree = manifests.load_manifest(path)
    assert [n.label for n in tree.nodes] == ["root", "a", "b", "local"]  # breadth first
    assert [n.label for n in tree.tree_order()] == ["root", "a", "local", "b"]  # depth first: the report's order
    assert tree.node("local").model == str((tmp_path / "local").resolve()) and tree.node("local").parent == "a"
    assert tree.node("b").revision == "v2" and tree.node("a").parent == "root" and tree.node("a").model == "org/a"


def test_tree_from_a_folder_of_models_and_from_cards(tmp_path):
    for name, card in (("ft", ""), ("ft-sst2", "---\nbase_model: my-org/ft\n---\n")):
        (tmp_path / "zoo" / name).mkdir(parents=True)
        (tmp_path / "zoo" / name / "config.json").write_text("{}", encoding="utf-8")
        if card:
            (tmp_path / "zoo" / name / "README.md").write_text(card, encoding="utf-8")
    tree = manifests.from_folder(str(DEMO_MODELS_DIR / "base"), tmp_path / "zoo")
    assert [(n.label, n.parent) for n in tree.nodes] == [("base", None), ("ft", "base"), ("ft-sst2", "ft")]
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "org--child.md").write_text("---\nbase_model: albert/albert-large-v2\n---\n# child\n", encoding="utf-8")
    (cards / "org--grandchild").mkdir()
    (cards / "org--grandchild" / "README.md").write_text("---\nbase_model:\n- org/child\n---\n", encoding="utf-8")
    (cards / "other--model.md").write_text("---\nbase_model: bert-base-uncased\n---\n", encoding="utf-8")
    tree = manifests.from_cards("albert-large-v2", manifests.cards_in_folder(cards), source="cards")
    assert [(n.model, n.parent) for n in tree.nodes] == [
        ("albert-large-v2", None), ("org/child", "albert-large-v2"), ("org/grandchild", "child")]
    cache = tmp_path / "hub" / "models--org--child" / "snapshots" / ("a" * 40)
    cache.mkdir(parents=True)
    (cache / "README.md").write_text("---\nbase_model: albert-large-v2\n---\n", encoding="utf-8")
    tree = manifests.from_cards("albert-large-v2", manifests.cards_in_cache(tmp_path / "hub"), source="hub cache")
    assert [n.model for n in tree.nodes] == ["albert-large-v2", "org/child"]
    with pytest.raises(AuditError, match="no descendants of 'nobody'"):
        manifests.from_cards("nobody", {}, source="cards")


def test_task_models_are_refused_with_one_line_until_task_audits_land(lineage, tmp_path):
    import shutil

    from albert_audit.lineage.kinds import detect_kind
    from albert_audit.lineage.worker import NodeJob, audit_node

    task = Path(shutil.copytree(lineage["models"]["headless"], tmp_path / "sst2"))
    config = json.loads((task / "config.json").read_text())
    config["architectures"] = ["AlbertForSequenceClassification"]
    (task / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert detect_kind(str(task), offline=True) == "task"
    assert detect_kind(str(lineage["models"]["headless"]), offline=True) == "grafted"
    assert detect_kind(str(lineage["models"]["planted"]), offline=True) == "mlm"
    job = NodeJob(label="sst2", model=str(task), revision=None, kind="auto", root_model=str(DEMO_MODELS_DIR / "base"),
                  root_revision=None, run_dir=str(tmp_path / "run"), probes=[PROBES], benchmarks=[],
                  options={"device": "cpu", "dtype": "float32", "offline": True, "trust_remote_code": False,
                           "allow_pickle": False, "batch_size": "auto"}, utility=False, utility_sample=None,
                  audit_key="k", comparison={"root": "base"})
    outcome = audit_node(job)
    assert outcome.status == "failed" and "\n" not in outcome.reason
    assert "a task model" in outcome.reason and "task audits are not available yet" in outcome.reason
    assert "kind: grafted" in outcome.reason and not (tmp_path / "run").exists()

    # a task audit plugs in by registering the kind: it is then called with the run's config, and the refusal goes
    from albert_audit.api import RunResult
    from albert_audit.lineage import kinds

    calls = []

    def fake_task_audit(request, config, extras):
        calls.append((request.model, config.out, extras.comparison["kind"]))
        return RunResult(out=config.out, summary={"model": {"head": "task head", "weights_sha256": {"w": "h"}}})

    refused = kinds._AUDITORS["task"]
    kinds.register(kinds.KindAuditor("task", "test task audit", audit=fake_task_audit))
    try:
        outcome = audit_node(job)
    finally:
        kinds.register(refused)
    assert outcome.status == "done" and outcome.kind == "task" and outcome.head == "task head", outcome
    assert calls == [(str(task), tmp_path / "run", "task")]
    assert audit_node(job).status == "failed"


@pytest.mark.parametrize("argv", [["--help"], ["probes", "list"], ["report", "--help"], ["analyze", "--help"],
                                  ["lineage", "--help"], ["card", "--help"]])
def test_light_commands_import_neither_ray_nor_duckdb(argv):
    code = (f"import sys\nfrom albert_audit.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n"
            "    pass\nbad = [m for m in ('ray', 'duckdb', 'torch') if m in sys.modules]\nassert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr


def test_lineage_folder_and_catalogue_are_documented():
    import re

    from albert_audit import catalogue

    page = (REPO / "docs" / "data_contract.md").read_text(encoding="utf-8")
    section = page[page.index("`LineageSummary`"):]
    assert all(re.search(rf"\|\s*{f.name}\s*\|", section) for f in dataclasses.fields(contract.LineageSummary))
    status = page[page.index("### lineage_status.csv"):]
    assert all(re.search(rf"\|\s*{name}\s*\|", status) for name in contract.LINEAGE_STATUS.names)
    docs = (REPO / "docs" / "catalogue.md").read_text(encoding="utf-8")
    for name in [*catalogue.TABLES_SQL, *catalogue.FILE_VIEWS, *catalogue.DERIVED_VIEWS]:
        assert f"**{name}**" in docs or f"| {name} |" in docs or f"| {name}," in docs, name
    assert f"`CATALOGUE_SCHEMA_VERSION` {contract.CATALOGUE_SCHEMA_VERSION}" in docs


@pytest.mark.hub
@pytest.mark.skipif("not __import__('tests.conftest', fromlist=['x']).hub_is_reachable()",
                    reason="the Hugging Face hub cannot be reached (offline)")
def test_hub_model_tree_of_albert_large_v2():
    tree = manifests.from_hub("albert/albert-large-v2", limit=5)
    assert tree.root.model == "albert/albert-large-v2" and len(tree.nodes) >= 2
    assert all(node.parent for node in tree.nodes[1:])


def test_ray_address_that_does_not_answer_is_one_line(tmp_path):
    path = _manifest(tmp_path, f"base: {DEMO_MODELS_DIR / 'base'}\n"
                               f"descendants:\n  - {DEMO_MODELS_DIR / 'descendant'}\n")
    code, _, err = _cli(["lineage", "--manifest", str(path), "--probes", PROBES, "--out", str(tmp_path / "o"),
                         "--ray-address", "127.0.0.1:1", "--quiet"])
    assert code == 2 and err == "error: --ray-address 127.0.0.1:1: no Ray cluster answers there (Connection refused)\n"


def test_local_ray_instance_is_on_loopback(lineage):
    summary = json.loads((lineage["out"] / "lineage_summary.json").read_text())
    cluster = summary["cluster"]
    assert cluster["address"] == "local" and cluster["gcs_address"].startswith("127.0.0.1:")
    assert cluster["actors"] == 2 and cluster["actor_resources"] == {"num_cpus": 1.0} and cluster["gpus"] == 0


def test_ray_address_joins_a_running_cluster(lineage, tmp_path):
    """A cluster started here (on loopback, like the command's own); a second process joins it with
    --ray-address HOST:PORT, audits there, and leaves it running."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        gcs = ray.get_runtime_context().gcs_address
        assert gcs.startswith("127.0.0.1:")
        path = _manifest(tmp_path, f"name: joined\nbase: {DEMO_MODELS_DIR / 'base'}\n"
                                   f"descendants:\n  - {lineage['models']['planted']}\n")
        argv = ["-m", "albert_audit.cli", "lineage", "--manifest", str(path), "--probes", PROBES, "--out",
                str(tmp_path / "out"), "--ray-address", gcs, "--device", "cpu", "--offline", "--quiet",
                "--no-report", "--no-run-reports", "--no-utility", "--no-catalogue", "--n-resamples", "200"]
        done = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads((tmp_path / "out" / "lineage_summary.json").read_text())
        assert summary["cluster"]["address"] == gcs and summary["counts"] == {"done": 2, "resumed": 0, "failed": 0}
        assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2  # still running
        mine = (tmp_path / "out" / "runs" / "planted" / "findings.csv").read_bytes()
        assert mine == (lineage["out"] / "runs" / "planted" / "findings.csv").read_bytes()
    finally:
        ray.shutdown()
