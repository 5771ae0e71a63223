"""The run folder: atomic writes and reads of the score tables, findings and summary.json.

Every file is written to a temporary file in the same folder, flushed to disk and renamed over the target,
so a crash or Ctrl-C never leaves a half-written file behind (the old file, if any, stays intact).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit import contract
from albert_audit.errors import AuditError

# Names that moved to albert_audit.contract (the owner), kept here so that older imports keep working.
SUMMARY_SCHEMA_VERSION = contract.SUMMARY_SCHEMA_VERSION
ITEMS_FILE, FILLS_FILE, TARGETS_FILE = contract.ITEMS_FILE, contract.FILLS_FILE, contract.TARGETS_FILE
FINDINGS_FILE, SUMMARY_FILE, REPORT_FILE = contract.FINDINGS_FILE, contract.SUMMARY_FILE, contract.REPORT_FILE
RUN_FILES = contract.RUN_FILES
FINDINGS_TEXT_COLUMNS = contract.FINDINGS.names_of("str")
#: Columns each score table of a run folder must have (derived from the contract's table specs).
REQUIRED_COLUMNS = {spec.file: spec.names for spec in (contract.ITEMS, contract.FILLS, contract.TARGETS)}
FORMULA_STARTS = ("=", "+", "-", "@")


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp_path), fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions of a normal write
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove_outputs(folder: Path, names: tuple[str, ...] = RUN_FILES) -> list[str]:
    """Delete earlier outputs in a folder about to be written again, so old and new files never mix."""
    removed = []
    for name in names:
        path = Path(folder) / name
        if path.is_file():
            path.unlink()
            removed.append(name)
    return removed


def write_text(path: Path, text: str) -> Path:
    """Atomically write a UTF-8 text file."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_parquet(path: Path, table: pd.DataFrame) -> Path:
    """Atomically write a DataFrame as Parquet (no index)."""
    return atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))


def write_csv(path: Path, table: pd.DataFrame) -> Path:
    """Atomically write a DataFrame as CSV (no index), with spreadsheet-formula prefixes neutralised."""
    safe = table.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(_defuse_formula)
    return atomic_write(path, lambda tmp: safe.to_csv(tmp, index=False))


def _defuse_formula(value: Any) -> Any:
    """Prefix a cell that a spreadsheet would run as a formula (=, +, -, @) with a quote (undone on reading)."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def _restore_formula(value: Any) -> Any:
    """Undo :func:`_defuse_formula` when a CSV is read back."""
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1] in FORMULA_STARTS:
        return value[1:]
    return value


def read_csv_table(path: Path, *, text_columns: tuple[str, ...], required: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV written by :func:`write_csv`: text columns as str ("" for empty), formula prefixes undone;
    a missing, empty or malformed file, or a missing required column, is an AuditError naming the file."""
    try:
        table = pd.read_csv(path, dtype={c: str for c in text_columns})
    except FileNotFoundError as exc:
        raise AuditError(f"{path}: missing") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise AuditError(f"{path}: not a readable CSV table ({type(exc).__name__})") from exc
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise AuditError(f"{path}: missing column(s) {', '.join(missing)}")
    for column in text_columns:
        if column in table:
            table[column] = table[column].fillna("").map(_restore_formula)
    return table


def _json_safe(value: Any) -> Any:
    """Replace NaN/inf (invalid JSON) with None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Atomically write strict JSON (NaN becomes null), indented, keys in insertion order."""
    text = json.dumps(_json_safe(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return write_text(path, text)


def read_json(path: Path, *, missing_hint: str = "") -> dict[str, Any]:
    """A JSON file's content; a missing or invalid file is an AuditError naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AuditError(f"{path}: missing{missing_hint}") from exc
    except ValueError as exc:
        raise AuditError(f"{path}: not valid JSON ({exc})") from exc


@dataclass
class RunTables:
    """The saved tables of one run folder."""

    folder: Path
    items: pd.DataFrame
    fills: pd.DataFrame
    targets: pd.DataFrame
    summary: dict[str, Any]
    findings: pd.DataFrame | None = None


def read_run(folder: str | Path, *, need_findings: bool = False) -> RunTables:
    """Read a run folder written by `albert-audit run`, every table typed by :func:`contract.restore_types`;
    a missing or broken file is an AuditError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AuditError(f"{folder}: no such run folder")
    tables = {spec.file: _read_parquet(folder, spec) for spec in (contract.ITEMS, contract.FILLS, contract.TARGETS)}
    summary = read_summary(folder / SUMMARY_FILE, schema_version=SUMMARY_SCHEMA_VERSION)
    findings = None
    findings_path = folder / FINDINGS_FILE
    if findings_path.is_file():
        findings = contract.restore_types(read_csv_table(findings_path, text_columns=FINDINGS_TEXT_COLUMNS),
                                          contract.FINDINGS, str(findings_path))
    elif need_findings:
        raise AuditError(f"{findings_path}: missing")
    return RunTables(folder=folder, items=tables[ITEMS_FILE], fills=tables[FILLS_FILE],
                     targets=tables[TARGETS_FILE], summary=summary, findings=findings)


def _read_parquet(folder: Path, spec: contract.TableSpec) -> pd.DataFrame:
    path = folder / spec.file
    if not path.is_file():
        raise AuditError(f"{path}: missing; is {folder} a run folder of `albert-audit run`?")
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for broken files
        raise AuditError(f"{path}: unreadable Parquet file ({type(exc).__name__})") from exc
    return contract.restore_types(table, spec, str(path))


def read_summary(path: Path, *, schema_version: int) -> dict[str, Any]:
    """A summary JSON file (summary.json, compare_summary.json): an object of the schema version expected."""
    summary = read_json(path)
    if not isinstance(summary, dict):
        raise AuditError(f"{path}: expected a JSON object")
    if summary.get("schema_version") != schema_version:
        raise AuditError(f"{path}: schema_version {summary.get('schema_version')!r}, this tool reads "
                         f"{schema_version}")
    return summary
