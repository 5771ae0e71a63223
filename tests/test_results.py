"""The run folder's readers and writers: atomic, round-trip safe, and clear about broken files."""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pytest

from albert_audit import results
from albert_audit.errors import AuditError


def _run_folder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    items = pd.DataFrame({"item_id": [0], "probe_set": ["p"], "template_id": [0], "template": ["<group> [MASK]."],
                          "group": ["a"], "term": ["x"], "term_index": [0], "text": ["x [MASK]."],
                          "prior_text": ["[MASK] [MASK]."]})
    fills = pd.DataFrame({"item_id": [0], "rank": [1], "token_id": [5], "token": ["y"], "prob": [0.5],
                          "logprob": [-0.69]})
    targets = pd.DataFrame({"item_id": [0], "target": ["@nurse"], "n_pieces": [1], "logprob": [-1.0],
                            "prior_logprob": [-2.0]})
    results.write_parquet(folder / results.ITEMS_FILE, items)
    results.write_parquet(folder / results.FILLS_FILE, fills)
    results.write_parquet(folder / results.TARGETS_FILE, targets)
    results.write_json(folder / results.SUMMARY_FILE, {"schema_version": 1, "nan": float("nan")})
    return folder


def test_spreadsheet_formulas_are_defused_on_disk_and_restored_on_reading(tmp_path):
    folder = _run_folder(tmp_path)
    findings = pd.DataFrame({"probe_set": ["p"], "metric": ["logprob_gap"], "target": ["@nurse"], "group_a": ["a"],
                             "group_b": ["=b"], "effect": [0.1], "significant": [False]})
    results.write_csv(folder / results.FINDINGS_FILE, findings)
    assert "'@nurse" in (folder / results.FINDINGS_FILE).read_text()
    back = results.read_run(folder, need_findings=True).findings
    assert back.loc[0, "target"] == "@nurse" and back.loc[0, "group_b"] == "=b"


def test_files_get_normal_permissions_and_strict_json(tmp_path):
    folder = _run_folder(tmp_path)
    mode = stat.S_IMODE(os.stat(folder / results.ITEMS_FILE).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert json.loads((folder / results.SUMMARY_FILE).read_text())["nan"] is None


@pytest.mark.parametrize("breakage, message", [
    (lambda f: (f / results.FINDINGS_FILE).write_text(""), "not a readable CSV table"),
    (lambda f: (f / results.FINDINGS_FILE).write_text("a,b\n1,2\n"), "missing column"),
    (lambda f: (f / results.SUMMARY_FILE).write_text("[1, 2]"), "expected a JSON object"),
    (lambda f: (f / results.SUMMARY_FILE).write_text("{"), "not valid JSON"),
    (lambda f: pd.DataFrame({"item_id": [0]}).to_parquet(f / results.FILLS_FILE), "missing column"),
    (lambda f: (f / results.TARGETS_FILE).write_bytes(b"garbage"), "unreadable Parquet"),
])
def test_broken_run_folders_are_one_clear_error(tmp_path, breakage, message):
    folder = _run_folder(tmp_path)
    results.write_csv(folder / results.FINDINGS_FILE, pd.DataFrame({"probe_set": ["p"]}))
    breakage(folder)
    with pytest.raises(AuditError, match=message):
        results.read_run(folder, need_findings=True)


def test_rerun_removes_the_earlier_outputs_first(tmp_path):
    folder = _run_folder(tmp_path)
    (folder / results.REPORT_FILE).write_text("old report")
    (folder / "notes.txt").write_text("the user's own file")
    removed = results.remove_outputs(folder)
    assert set(removed) == {results.ITEMS_FILE, results.FILLS_FILE, results.TARGETS_FILE, results.SUMMARY_FILE,
                            results.REPORT_FILE}
    assert (folder / "notes.txt").is_file()
