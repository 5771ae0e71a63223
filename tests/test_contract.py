"""The run-folder contract: every summary field documented (here and in docs/data_contract.md), summaries
written as their dataclasses say, and the API kept small (a package of short functions)."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from albert_audit import contract
from tests.conftest import REPO

SUMMARIES = (contract.RunSummary, contract.BatchSizes, contract.RunCounts, contract.ProbeFile,
             contract.CompareSummary, contract.CompareModel, contract.UtilityRow, contract.CompareBenchmark)


@pytest.mark.parametrize("cls", SUMMARIES, ids=lambda c: c.__name__)
def test_every_summary_field_has_a_one_line_doc_and_is_in_the_data_contract(cls):
    docs = contract.field_docs(cls)
    assert docs and all(text and "\n" not in text for text in docs.values()), docs
    page = (REPO / "docs" / "data_contract.md").read_text(encoding="utf-8")
    section = page[page.index(f"`{cls.__name__}`"):]
    missing = [name for name in docs if not re.search(rf"\|\s*{name}\s*\|", section)]
    assert not missing, f"docs/data_contract.md lacks {cls.__name__} fields {missing}"


def _run_summary(**overrides) -> contract.RunSummary:
    values = dict(schema_version=1, tool_version="0", created_utc="t", model={"id": "m"}, runtime={}, device="cpu",
                  dtype="float32", batch_size=contract.BatchSizes(requested="auto", start=8, effective=[8]), seed=0,
                  alpha=0.025, n_resamples=10, unit="template", top_k=5, multi_piece_method="chain rule",
                  counts=contract.RunCounts(items=1, unique_sequences=2, resumed_sequences=0, targets=1, fills=5,
                                            multi_piece_targets=0),
                  probe_files=[contract.ProbeFile(name="p", path="p.yaml", sha256="0" * 64)], timings_s={"total": 1.0})
    values.update(overrides)
    return contract.RunSummary(**values)


def test_run_summary_leaves_out_the_compare_only_fields_unless_given():
    plain = _run_summary().to_dict()
    assert list(plain) == [f.name for f in dataclasses.fields(contract.RunSummary)
                           if f.name not in contract.RunSummary.OPTIONAL]
    assert plain["batch_size"] == {"requested": "auto", "start": 8, "effective": [8]}
    assert plain["probe_files"] == [{"name": "p", "path": "p.yaml", "sha256": "0" * 64}]
    compared = _run_summary(utility={"pppl": 2.0}, comparison={"role": "base"}, notes=[]).to_dict()
    assert compared["utility"] == {"pppl": 2.0} and compared["comparison"] == {"role": "base"}
    assert compared["notes"] == []


def test_summaries_are_complete_when_built():
    with pytest.raises(TypeError):
        contract.RunSummary(schema_version=1)  # every required field must be given: no silent gaps in the file


def _api_functions() -> list[tuple[str, int]]:
    found = []
    for path in sorted((REPO / "albert_audit" / "api").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((f"{path.name}:{node.name}", node.end_lineno - node.lineno + 1))
    return found


def test_the_api_is_a_package_of_short_functions():
    assert not (REPO / "albert_audit" / "api.py").exists()
    functions = _api_functions()
    assert len(functions) > 10
    too_long = [(name, n) for name, n in functions if n > 60]
    assert not too_long, too_long


def test_the_api_package_re_exports_its_public_names():
    import albert_audit
    from albert_audit import api

    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert {"run_audit", "compare_runs", "run_demo", "rerender_report", "AuditConfig", "CompareConfig",
            "ModelOptions", "StatsOptions"} <= set(api.__all__)
    assert albert_audit.run_audit.__doc__ and callable(albert_audit.run_audit)
    assert albert_audit.AuditConfig is api.AuditConfig and albert_audit.compare_runs is api.compare_runs
    with pytest.raises(AttributeError):
        albert_audit.no_such_name  # noqa: B018


def test_importing_the_package_and_its_api_stays_free_of_torch():
    import subprocess
    import sys

    code = ("import sys, albert_audit, albert_audit.api\nalbert_audit.AuditConfig\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_configs_are_composed_of_model_and_statistics_options():
    from albert_audit.api import AuditConfig, CompareConfig, ModelOptions, StatsOptions
    from albert_audit.api.options import option_values

    model_fields = {f.name for f in dataclasses.fields(ModelOptions)}
    stats_fields = {f.name for f in dataclasses.fields(StatsOptions)}
    assert model_fields == {"device", "dtype", "batch_size", "top_k", "offline", "trust_remote_code",
                            "allow_pickle", "progress"}
    assert stats_fields == {"seed", "alpha", "n_resamples", "unit", "margin"}
    compare = CompareConfig(out=Path("o"), device="cuda", batch_size=4, alpha=0.025, seed=3, unit="template_term_pair")
    assert compare.model_options() == ModelOptions(device="cuda", batch_size=4)
    assert compare.stats_options() == StatsOptions(alpha=0.025, seed=3, unit="template_term_pair")
    audit = AuditConfig(model="m", probes=["p"], out=Path("o"), **option_values(compare))
    assert audit.model_options() == compare.model_options() and audit.stats_options() == compare.stats_options()
    assert compare.loading() == {"device": "cuda", "dtype": "auto", "offline": False, "trust_remote_code": False,
                                 "allow_pickle": False}


def test_benchmark_deltas_columns_are_in_the_data_contract():
    page = (REPO / "docs" / "data_contract.md").read_text(encoding="utf-8")
    section = page[page.index("## benchmarks/NAME.parquet and benchmark_deltas.csv"):page.index("## deltas.csv")]
    for name in contract.BENCHMARK_DELTAS.names:
        assert re.search(rf"\|\s*{name}[\s,|]", section), name
    assert contract.BENCHMARK_DELTAS_FILE in contract.COMPARE_FILES  # committed with compare's other outputs
    assert contract.TABLES[contract.BENCHMARK_DELTAS_FILE] is contract.BENCHMARK_DELTAS
