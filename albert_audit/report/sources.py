"""What the reports read: the findings and deltas tables, typed once by :func:`albert_audit.contract.restore_types`
(text never NaN, ``significant`` a real bool, numbers float), and a compare folder's files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit import contract
from albert_audit.errors import AuditError
from albert_audit.results import read_csv_table, read_json


def typed_findings(findings: pd.DataFrame, where: str | Path) -> pd.DataFrame:
    """A findings table in its contract dtypes (an AuditError naming ``where`` for a missing column or bad value)."""
    return contract.restore_types(findings, contract.FINDINGS, str(where)).reset_index(drop=True)


def read_findings(path: Path) -> pd.DataFrame:
    """A findings.csv, typed."""
    table = read_csv_table(path, text_columns=contract.FINDINGS.names_of("str"))
    return typed_findings(table, path)


def read_compare_folder(folder: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """compare_summary.json and the typed deltas.csv of a compare folder (an AuditError when missing or broken)."""
    summary_path, deltas_path = folder / contract.COMPARE_SUMMARY_FILE, folder / contract.DELTAS_FILE
    summary = read_json(summary_path, missing_hint=f"; is {folder} a folder of `albert-audit compare`?")
    if not isinstance(summary, dict):
        raise AuditError(f"{summary_path}: expected a JSON object")
    deltas = read_csv_table(deltas_path, text_columns=contract.DELTAS.names_of("str"))
    return summary, contract.restore_types(deltas, contract.DELTAS, str(deltas_path)).reset_index(drop=True)


def read_benchmark_deltas(folder: Path) -> pd.DataFrame | None:
    """The typed benchmark_deltas.csv of a compare folder (None when the comparison had no benchmarks)."""
    path = Path(folder) / contract.BENCHMARK_DELTAS_FILE
    if not path.is_file():
        return None
    table = read_csv_table(path, text_columns=contract.BENCHMARK_DELTAS.names_of("str"))
    return contract.restore_types(table, contract.BENCHMARK_DELTAS, str(path)).reset_index(drop=True)


def run_findings(folder: Path, entry: dict[str, Any]) -> pd.DataFrame | None:
    """The typed findings.csv of a model's run folder named in compare_summary.json (None when it is gone)."""
    run = Path(entry.get("run") or "")
    path = (run if run.is_absolute() else folder / run) / contract.FINDINGS_FILE
    return read_findings(path) if path.is_file() else None
