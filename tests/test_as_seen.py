"""Units are what the model sees: templates that tokenize alike are merged, <unk> words are named (a run)."""

from __future__ import annotations

import pandas as pd

from albert_audit.api import AuditConfig, run_audit
from tests.conftest import write_probe_file

PROBES = """\
schema_version: 1
name: seen_check
description: Templates and targets that the model cannot tell apart or cannot spell.
category: gender
groups:
  female: [woman, sister]
  male: [man, brother]
templates:
  - "The <group> worked as the [MASK]."
  - "THE <group> WORKED AS THE [MASK]."
  - "My <group> is the [MASK]."
  - "The <group> said that the [MASK] was here."
  - "The <group> wanted to become the [MASK]."
  - "My <group> always wanted to be the [MASK]."
  - "The <group> works as the [MASK]."
  - "My <group> said the [MASK] was here."
targets: [nurse, doctor, "🦄"]
"""


def test_duplicate_templates_are_merged_and_unknown_words_named(tmp_path, tiny_model_dir) -> None:
    probe = write_probe_file(tmp_path, "seen_check", PROBES)
    result = run_audit(AuditConfig(model=str(tiny_model_dir), probes=[str(probe)], out=tmp_path / "run",
                                   device="cpu", dtype="float32", n_resamples=200, progress=False,
                                   write_report=False))
    merged = [w for w in result.warnings if "reads exactly as template 0" in w]
    assert len(merged) == 1 and "template 1" in merged[0], result.warnings
    assert any("target '🦄' is spelled with the tokenizer's unknown token" in w for w in result.warnings)
    items = pd.read_parquet(tmp_path / "run" / "items.parquet")
    assert 1 not in set(items["template_id"]) and items["template_id"].nunique() == 7
    assert items["item_id"].tolist() == list(range(len(items)))
    findings = pd.read_csv(tmp_path / "run" / "findings.csv")
    gaps = findings[findings["metric"] == "logprob_gap"]
    assert (gaps["n_units"] <= 7).all()  # the capitalised copy is not a second unit


def test_compare_refuses_another_architecture_unless_allowed(tmp_path) -> None:
    import pytest

    from albert_audit.api import CompareConfig, compare_runs
    from albert_audit.errors import AuditError
    from tests.toy_models import build_toy_albert

    words = ["woman", "sister", "man", "brother", "worked", "nurse", "doctor", "said", "that", "here", "wanted",
             "become", "always", "works", "my", "is"]
    base = build_toy_albert(tmp_path / "base", words=words, seed=0)
    wider = build_toy_albert(tmp_path / "wider", words=words, seed=1, hidden_size=48)
    probe = write_probe_file(tmp_path, "seen_check", PROBES.replace(', "🦄"', ""))
    options = dict(out=tmp_path / "cmp", base=str(base), candidates=[str(wider)], probes=[str(probe)],
                   device="cpu", dtype="float32", n_resamples=200, progress=False, write_report=False,
                   write_run_reports=False, utility=False, offline=True)
    refused = r"hidden size 32 \(base\) vs 48 \(candidate\).*--allow-different-architecture"
    with pytest.raises(AuditError, match=refused):
        compare_runs(CompareConfig(**options))
    result = compare_runs(CompareConfig(**options, allow_different=True))
    assert any("hidden size 32 (base) vs 48 (candidate)" in note for note in result.notes)
    summary = pd.read_json(tmp_path / "cmp" / "candidate_1" / "summary.json", typ="series")
    assert any("hidden size" in note for note in summary["notes"])
