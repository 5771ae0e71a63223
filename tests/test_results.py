"""The run folder's readers and writers: atomic, round-trip safe, and clear about broken files."""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pytest

from albert_audit import contract, results
from albert_audit.errors import AuditError


def _findings(**overrides) -> pd.DataFrame:
    row = {"probe_set": "p", "metric": "logprob_gap", "target": "@nurse", "group_a": "a", "group_b": "=b",
           "n_units": 4, "effect": 0.1, "effect_unit": "nats", "ci_low": -0.2, "ci_high": 0.4, "p_value": 0.5,
           "q_value": 0.5, "significant": False, "direction": "a>b", "method": "m", "scope": "terms",
           "verdict": "inconclusive", "margin": 0.2231, "p_material": 0.9, "q_material": 0.9, "p_equivalence": 0.6,
           "ratio": 1.105, "ratio_low": 0.819, "ratio_high": 1.492, "share_a_gt_b": 0.75, "pi_low": -0.9,
           "pi_high": 1.1}
    row.update(overrides)
    return pd.DataFrame([row])


def _run_folder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    items = pd.DataFrame({"item_id": [0], "probe_set": ["p"], "template_id": [0], "template": ["<group> [MASK]."],
                          "group": ["a"], "term": ["x"], "term_index": [0], "text": ["x [MASK]."],
                          "prior_text": ["[MASK] [MASK]."]})
    fills = pd.DataFrame({"item_id": [0], "rank": [1], "token_id": [5], "token": ["y"], "prob": [0.5],
                          "logprob": [-0.69]})
    targets = pd.DataFrame({"item_id": [0], "target": ["@nurse"], "n_pieces": [1], "logprob": [-1.0],
                            "term_logprob": [-1.5], "term_prior_logprob": [-2.0]})
    results.write_parquet(folder / results.ITEMS_FILE, items)
    results.write_parquet(folder / results.FILLS_FILE, fills)
    results.write_parquet(folder / results.TARGETS_FILE, targets)
    results.write_json(folder / results.SUMMARY_FILE, {"schema_version": 1, "nan": float("nan")})
    return folder


def test_spreadsheet_formulas_are_defused_on_disk_and_restored_on_reading(tmp_path):
    folder = _run_folder(tmp_path)
    results.write_csv(folder / results.FINDINGS_FILE, _findings())
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
    (lambda f: (f / results.FINDINGS_FILE).write_text(
        (f / results.FINDINGS_FILE).read_text().replace("False", "maybe")), "not a boolean"),
    (lambda f: (f / results.SUMMARY_FILE).write_text('{"schema_version": 99}'), "schema_version 99"),
])
def test_broken_run_folders_are_one_clear_error(tmp_path, breakage, message):
    folder = _run_folder(tmp_path)
    results.write_csv(folder / results.FINDINGS_FILE, _findings())
    breakage(folder)
    with pytest.raises(AuditError, match=message):
        results.read_run(folder, need_findings=True)


def test_read_run_restores_every_table_to_its_contract_types(tmp_path):
    folder = _run_folder(tmp_path)
    findings = pd.concat([_findings(significant=True, q_value=0.01), _findings(p_value=float("nan"), target="")])
    results.write_csv(folder / results.FINDINGS_FILE, findings)
    run = results.read_run(folder, need_findings=True)
    for spec, table in ((contract.ITEMS, run.items), (contract.FILLS, run.fills), (contract.TARGETS, run.targets),
                        (contract.FINDINGS, run.findings)):
        assert list(table.columns[:len(spec.columns)]) == list(spec.names)
        for column in spec.columns:
            expected = {"str": "object", "bool": "bool"}.get(column.dtype, column.dtype)
            assert str(table[column.name].dtype) == expected, (spec.file, column.name)
    assert run.findings["significant"].tolist() == [True, False]
    assert run.findings["target"].tolist() == ["@nurse", ""] and pd.isna(run.findings["p_value"].iloc[1])


def test_findings_written_by_other_tools_are_typed_once_on_reading(tmp_path):
    folder = _run_folder(tmp_path)
    text = _findings().to_csv(index=False).replace(",4,", ",4.0,").replace(",False,", ",0,")
    (folder / results.FINDINGS_FILE).write_text(text + text.splitlines()[1].replace(",0,", ",1,") + "\n")
    findings = results.read_run(folder, need_findings=True).findings
    assert str(findings["n_units"].dtype) == "int64" and findings["n_units"].tolist() == [4, 4]
    assert str(findings["significant"].dtype) == "bool" and findings["significant"].tolist() == [False, True]


def test_names_that_moved_to_the_contract_stay_importable_from_results():
    assert (results.ITEMS_FILE, results.FINDINGS_FILE, results.SUMMARY_FILE, results.REPORT_FILE) == (
        contract.ITEMS_FILE, contract.FINDINGS_FILE, contract.SUMMARY_FILE, contract.REPORT_FILE)
    assert results.RUN_FILES == contract.RUN_FILES and results.SUMMARY_SCHEMA_VERSION == contract.SUMMARY_SCHEMA_VERSION
    assert results.FINDINGS_TEXT_COLUMNS == ("probe_set", "metric", "target", "group_a", "group_b", "effect_unit",
                                             "direction", "method", "scope", "verdict")
