"""The CLI end to end on the tiny fixture model, its error lines, and what it imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from albert_audit.cli import main
from tests.conftest import PROBES, REPO, write_probe_file

SMALL_PROBES = """\
schema_version: 1
name: small_occupation
description: A small gender-occupation probe set for CLI tests.
category: gender
groups:
  female: [woman, sister]
  male: [man, brother]
pair_terms_by_position: true
templates:
  - "The <group> worked as a [MASK]."
  - "My <group> is a [MASK]."
  - "The <group> wanted to become a [MASK]."
  - "<group> said that the [MASK] was here."
targets: [nurse, engineer, nursemaid]
"""


#: Not the default (0.05): a run must hand --alpha to the findings, the summary and the report.
ALPHA = 0.025


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model_dir) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    probe = folder / "small_occupation.yaml"
    probe.write_text(SMALL_PROBES, encoding="utf-8")
    out = folder / "run"
    code = main(["run", "--model", str(tiny_model_dir), "--probes", str(probe), "--probes", "seed_model_card",
                 "--out", str(out), "--quiet", "--n-resamples", "500", "--top-k", "5", "--alpha", str(ALPHA)])
    assert code == 0
    return out


def test_run_writes_every_file(run_dir):
    for name in ("items.parquet", "fills.parquet", "targets.parquet", "findings.csv", "summary.json",
                 "report.html"):
        assert (run_dir / name).is_file(), name
    assert not list(run_dir.glob(".*.tmp")), "no temporary files left behind"
    assert not (run_dir / ".partial").exists(), "the checkpoint of scored batches is cleared after success"


def test_items_columns(run_dir):
    items = pd.read_parquet(run_dir / "items.parquet")
    assert list(items.columns) == ["item_id", "probe_set", "template_id", "template", "group", "term",
                                   "term_index", "text", "prior_text", "template_tag", "term_reference_share",
                                   "group_factors", "reference_note"]
    assert items["item_id"].tolist() == list(range(len(items)))
    assert len(items) == 4 * 4 + 1 + 2  # small set: 4 templates x 4 terms; seed: 1 + 2
    small = items[items["probe_set"] == "small_occupation"]
    assert set(small["group"]) == {"female", "male"} and set(small["term"]) == {"woman", "sister", "man", "brother"}
    assert small["text"].str.count(r"\[MASK\]").eq(1).all()
    assert (small["prior_text"].str.count(r"\[MASK\]") >= 2).all()
    seed = items[items["probe_set"] == "seed_model_card"]
    assert "Hello I'm a [MASK] model." in set(seed["text"])
    assert "The man worked as a [MASK]." in set(seed["text"])


def test_fills_columns(run_dir):
    fills = pd.read_parquet(run_dir / "fills.parquet")
    items = pd.read_parquet(run_dir / "items.parquet")
    assert list(fills.columns) == ["item_id", "rank", "token_id", "token", "prob", "logprob"]
    assert len(fills) == 5 * len(items)
    assert fills.groupby("item_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4, 5]).all()
    np.testing.assert_allclose(fills["prob"], np.exp(fills["logprob"]), rtol=1e-12)
    assert fills.groupby("item_id")["prob"].apply(lambda p: p.is_monotonic_decreasing).all()
    assert (fills["prob"].between(0, 1)).all() and fills["token"].map(lambda t: isinstance(t, str)).all()


def test_targets_columns(run_dir):
    targets = pd.read_parquet(run_dir / "targets.parquet")
    items = pd.read_parquet(run_dir / "items.parquet")
    assert list(targets.columns) == ["item_id", "target", "n_pieces", "logprob", "term_logprob", "term_prior_logprob",
                                     "category", "control", "reference_share"]
    small_ids = set(items.loc[items["probe_set"] == "small_occupation", "item_id"])
    small = targets[targets["item_id"].isin(small_ids)]
    assert len(small) == 16 * 3
    assert dict(small.groupby("target")["n_pieces"].first()) == {"engineer": 1, "nurse": 1, "nursemaid": 2}
    assert (targets["logprob"] < 0).all()
    slotted = targets["item_id"].isin(items.loc[items["term"] != "", "item_id"])
    assert np.isfinite(targets.loc[slotted, ["term_logprob", "term_prior_logprob"]]).all().all()
    assert targets.loc[~slotted, "term_logprob"].isna().all()
    assert str(targets["logprob"].dtype) == "float64" and str(targets["n_pieces"].dtype) == "int64"


def test_summary(run_dir, tiny_model_dir):
    from albert_audit.contract import RunSummary
    from albert_audit.engine.loading import resolve_device, resolve_dtype

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["schema_version"] == 1
    assert list(summary) == [f for f in RunSummary.__dataclass_fields__ if f not in RunSummary.OPTIONAL]
    assert summary["model"]["id"] == str(tiny_model_dir)
    assert summary["model"]["weights_sha256"]["model.safetensors"]
    device = resolve_device("auto")  # --device and --dtype auto: cpu/float32 here, cuda/bfloat16 on a GPU
    assert summary["device"] == device and summary["dtype"] == str(resolve_dtype("auto", device)).split(".")[-1]
    assert summary["counts"]["items"] == 19 and summary["top_k"] == 5
    assert summary["alpha"] == ALPHA and summary["seed"] == 0 and summary["n_resamples"] == 500
    assert set(summary["timings_s"]) == {"load", "score", "stats", "total"}, "the report's time is not recorded"
    assert [p["name"] for p in summary["probe_files"]] == ["small_occupation", "seed_model_card"]
    assert all(len(p["sha256"]) == 64 for p in summary["probe_files"])
    assert {"torch", "transformers", "python"} <= set(summary["runtime"])


def test_findings_written(run_dir):
    findings = pd.read_csv(run_dir / "findings.csv")
    assert list(findings.columns) == ["probe_set", "metric", "target", "group_a", "group_b", "n_units", "effect",
                                      "effect_unit", "ci_low", "ci_high", "p_value", "q_value", "significant",
                                      "direction", "method", "scope", "verdict", "margin", "p_material",
                                      "q_material", "p_equivalence", "ratio", "ratio_low", "ratio_high",
                                      "share_a_gt_b", "pi_low", "pi_high"]
    assert "logprob_gap" in set(findings["metric"])


def test_findings_follow_the_alpha_given(run_dir):
    from albert_audit.metrics import compute_findings
    from albert_audit.results import read_run

    run = read_run(run_dir, need_findings=True)
    tested = run.findings["q_value"].notna()
    assert (run.findings.loc[tested, "significant"] == (run.findings.loc[tested, "q_value"] <= ALPHA)).all()
    again = compute_findings(run.items, run.targets, run.fills, seed=0, alpha=ALPHA, n_resamples=500)
    pd.testing.assert_frame_equal(run.findings[["ci_low", "ci_high", "q_value"]].reset_index(drop=True),
                                  again[["ci_low", "ci_high", "q_value"]].reset_index(drop=True), check_dtype=False)
    default = compute_findings(run.items, run.targets, run.fills, seed=0, alpha=0.05, n_resamples=500)
    finite = np.isfinite(again["ci_low"]) & (again["ci_high"] > again["ci_low"])
    assert finite.any() and (again.loc[finite, "ci_low"] < default.loc[finite, "ci_low"]).any(), "wider at 0.025"
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "97.5% CI" in html and "95% CI" not in html


def test_report_redraws_exactly_what_the_run_drew(run_dir, capsys):
    drawn = (run_dir / "report.html").read_bytes()
    summary = (run_dir / "summary.json").read_bytes()
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").read_bytes() == drawn
    assert (run_dir / "summary.json").read_bytes() == summary, "drawing a report never rewrites the summary"


def test_rerun_removes_the_earlier_outputs(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("report.html", "findings.csv", "summary.json"):
        (out / name).write_text("stale output of an earlier run")
    (out / "mine.txt").write_text("the user's own file")
    assert main(["run", "--model", str(tiny_model_dir), "--probes", "seed_model_card", "--out", str(out), "--quiet",
                 "--n-resamples", "50", "--no-report"]) == 0
    assert not (out / "report.html").exists(), "a report of the earlier run must not sit beside the new files"
    assert "stale" not in (out / "findings.csv").read_text() and "stale" not in (out / "summary.json").read_text()
    assert (out / "mine.txt").read_text() == "the user's own file"


def test_bad_probe_file_is_one_line_exit_2(tmp_path, tiny_model_dir, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndescription: x\ncategory: y\ntemplates:\n  - no mask here\n")
    code = main(["run", "--model", str(tiny_model_dir), "--probes", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "bad.yaml:5" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, fragment", [
    (["run", "--model", "./missing_model", "--probes", "seed_model_card", "--out", "{tmp}/o"], "no such folder"),
    (["run", "--model", "{model}", "--probes", "no_such_set", "--out", "{tmp}/o"], "no_such_set"),
    (["report", "{tmp}/nothing"], "no such run folder"),
    (["probes", "validate", "{tmp}/missing.yaml"], "missing.yaml"),
])
def test_bad_inputs_exit_2_with_one_line(tmp_path, tiny_model_dir, capsys, argv, fragment):
    argv = [a.format(tmp=tmp_path, model=tiny_model_dir) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and fragment in err and len(err.splitlines()) == 1


def test_probes_list_and_validate_shipped(capsys):
    assert main(["probes", "list"]) == 0
    listed = capsys.readouterr().out
    for path in PROBES.glob("*.yaml"):
        assert path.stem in listed
    assert main(["probes", "validate", *map(str, sorted(PROBES.glob("*.yaml")))]) == 0


def _scope_probes(folder: Path, name: str, n_terms: int, n_templates: int) -> Path:
    female = ", ".join(["woman", "sister", "mother", "daughter", "girl", "lady"][:n_terms])
    male = ", ".join(["man", "brother", "father", "son", "boy", "gentleman"][:n_terms])
    templates = "".join(f'  - "The <group> number {i} worked as the [MASK]."\n' for i in range(n_templates))
    return write_probe_file(folder, name, f"schema_version: 1\nname: {name}\ndescription: scope\ncategory: gender\n"
                                          f"groups:\n  female: [{female}]\n  male: [{male}]\ntemplates:\n{templates}"
                                          "targets: [nurse, engineer]\n")


@pytest.mark.parametrize("n_terms, n_templates, why", [(4, 8, "2 of 2 groups have fewer than 5 terms (female: 4, "
                                                                 "male: 4)"),
                                                        (1, 8, "(female: 1, male: 1)"),
                                                        (5, 4, "4 templates with a slot")])
def test_validate_warns_when_a_set_can_only_make_terms_claims(tmp_path, capsys, n_terms, n_templates, why):
    path = _scope_probes(tmp_path, "few", n_terms, n_templates)
    assert main(["probes", "validate", str(path)]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "'terms' claims" in line]
    assert len(lines) == 1 and lines[0].startswith(f"warning: {path}: can only make 'terms' claims: ")
    assert why in lines[0] and ">= 5 terms in every group and >= 5 templates" in lines[0]
    assert captured.out.startswith(f"ok: {path} ")


def test_validate_is_quiet_about_scope_with_five_terms_and_templates(tmp_path, capsys):
    assert main(["probes", "validate", str(_scope_probes(tmp_path, "enough", 5, 5))]) == 0
    assert "claims" not in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["probes", "list"], ["probes", "validate", "probes/age.yaml"],
                                  ["report", "--help"]])
def test_light_commands_do_not_import_torch(argv):
    code = (f"import sys\nfrom albert_audit.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n"
            "    pass\nassert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("signal_exc, code", [("KeyboardInterrupt", 130), ("Terminated", 143)])
def test_interruption_exit_codes_and_message(monkeypatch, capsys, tiny_model_dir, tmp_path, signal_exc, code):
    import albert_audit.api
    import albert_audit.signals

    exc = KeyboardInterrupt if signal_exc == "KeyboardInterrupt" else albert_audit.signals.Terminated

    def interrupted(config):
        raise exc()

    monkeypatch.setattr(albert_audit.api, "run_audit", interrupted)
    assert main(["run", "--model", str(tiny_model_dir), "--probes", "seed_model_card", "--out",
                 str(tmp_path / "o")]) == code
    assert "rerun the same command to resume" in capsys.readouterr().err


def test_term_pair_unit_is_offered_and_labelled(tmp_path, tiny_model_dir):
    probe = tmp_path / "small_occupation.yaml"
    probe.write_text(SMALL_PROBES, encoding="utf-8")
    out = tmp_path / "pairs"
    assert main(["run", "--model", str(tiny_model_dir), "--probes", str(probe), "--out", str(out), "--quiet",
                 "--n-resamples", "200", "--no-report", "--unit", "template_term_pair"]) == 0
    findings = pd.read_csv(out / "findings.csv")
    gaps = findings[findings["metric"] == "logprob_gap"]
    assert (gaps["n_units"] == 8).all(), "4 templates x 2 term pairs"
    assert gaps["method"].str.contains("pair").all()
    assert json.loads((out / "summary.json").read_text())["unit"] == "template_term_pair"


@pytest.mark.parametrize("command", [
    ["run", "--model", "m", "--probes", "p", "--out", "o"],
    ["compare", "--base", "m", "--candidate", "c", "--probes", "p", "--out", "o"],
    ["demo"],
])
@pytest.mark.parametrize("seed", ["-1", "1.5", "abc"])
def test_seed_must_be_a_non_negative_integer(capsys, command, seed):
    with pytest.raises(SystemExit) as caught:
        main([*command, "--seed", seed])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --seed: expected a non-negative integer, got {seed!r}" in err and "Traceback" not in err


@pytest.mark.parametrize("command", [
    ["run", "--model", "m", "--probes", "p", "--out", "o"],
    ["compare", "--base", "m", "--candidate", "c", "--probes", "p", "--out", "o"],
    ["demo"],
])
def test_seed_zero_and_large_seeds_are_accepted(command):
    from albert_audit.cli import build_parser

    assert build_parser().parse_args(command).seed == 0
    assert build_parser().parse_args([*command, "--seed", "0"]).seed == 0
    assert build_parser().parse_args([*command, "--seed", str(2**70)]).seed == 2**70


@pytest.mark.parametrize("argv, patched", [
    (["compare", "--base", "m", "--candidate", "c", "--probes", "p", "--out", "{tmp}/o"], "compare_runs"),
    (["demo", "--out", "{tmp}/o"], "run_demo"),
])
def test_interrupted_scoring_commands_say_how_to_resume(monkeypatch, capsys, tmp_path, argv, patched):
    import albert_audit.api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt()

    monkeypatch.setattr(albert_audit.api, patched, interrupted)
    assert main([a.format(tmp=tmp_path) for a in argv]) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err


@pytest.mark.parametrize("argv, module, patched", [
    (["report", "{tmp}/run"], "albert_audit.api", "rerender_report"),
    (["probes", "validate", "{tmp}/a.yaml"], "albert_audit.api", "load_probes"),
    (["probes", "list"], "albert_audit.library", "list_shipped"),
])
@pytest.mark.parametrize("signal_exc, code", [("KeyboardInterrupt", 130), ("Terminated", 143)])
def test_interrupted_commands_that_do_not_score_say_only_interrupted(monkeypatch, capsys, tmp_path, argv, module,
                                                                     patched, signal_exc, code):
    import importlib

    import albert_audit.signals

    exc = KeyboardInterrupt if signal_exc == "KeyboardInterrupt" else albert_audit.signals.Terminated

    def interrupted(*args, **kwargs):
        raise exc()

    monkeypatch.setattr(importlib.import_module(module), patched, interrupted)
    assert main([a.format(tmp=tmp_path) for a in argv]) == code
    assert capsys.readouterr().err == "interrupted\n"
