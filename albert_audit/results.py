"""The run folder: atomic writes and reads of the score tables, findings and summary.json.

Every file is written to a temporary file in the same folder, flushed to disk and renamed over the target,
so a crash or Ctrl-C never leaves a half-written file behind (the old file, if any, stays intact).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit import contract, csvcell, inputs
from albert_audit.errors import AuditError, shown

# Names that moved to albert_audit.contract (the owner), kept here so that older imports keep working.
SUMMARY_SCHEMA_VERSION = contract.SUMMARY_SCHEMA_VERSION
ITEMS_FILE, FILLS_FILE, TARGETS_FILE = contract.ITEMS_FILE, contract.FILLS_FILE, contract.TARGETS_FILE
FINDINGS_FILE, SUMMARY_FILE, REPORT_FILE = contract.FINDINGS_FILE, contract.SUMMARY_FILE, contract.REPORT_FILE
RUN_FILES = contract.RUN_FILES
FINDINGS_TEXT_COLUMNS = contract.FINDINGS.names_of("str")
#: Columns each score table of a run folder must have (derived from the contract's table specs).
REQUIRED_COLUMNS = {spec.file: spec.names for spec in (contract.ITEMS, contract.FILLS, contract.TARGETS)}
FORMULA_STARTS = csvcell.FORMULA_STARTS
#: Largest table file read back (a guard against a hand-damaged folder holding something huge).
MAX_TABLE_BYTES = 2 * 2**30
MAX_JSON_BYTES = 64 * 2**20


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


STAGING_PREFIX = ".staging-"
"""A run is written into ``OUT/.staging-<pid>`` and moved into OUT only once every output is written."""
COMPLETE_MARK = ".complete"
"""Written into a staging folder once it holds every output: from then on its files replace OUT's."""
_TEMPORARY_PREFIXES = (".albert-audit-write-check.",)


class Staging:
    """The staging folder of one run folder: outputs are written here, then :meth:`commit` moves them into
    the run folder (replacing the previous results); until then the previous results stay untouched.

    Use it under the run folder's lock (:class:`albert_audit.runlock.RunLock`): the lock is what makes any other
    staging folder there stale.
    """

    def __init__(self, out: Path, names: tuple[str, ...] = contract.RUN_OUTPUTS) -> None:
        self.out = Path(out)
        self.names = names
        self.folder = self.out / f"{STAGING_PREFIX}{os.getpid()}"

    def open(self) -> Path:
        """Create the (empty) staging folder and return it."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        return self.folder

    def commit(self) -> None:
        """Mark the staging folder complete, then move its files over the run folder's; an output the new
        results lack (report.html after --no-report) is removed, so old and new files never mix."""
        plan = [f"+{n}" if (self.folder / n).exists() else f"-{n}" for n in self.names]
        write_text(self.folder / COMPLETE_MARK, "\n".join(plan) + "\n")
        _roll_forward(self.folder, self.out)

    def discard(self) -> None:
        """Drop the staging folder (a failed run): the run folder keeps its previous results."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _roll_forward(staging: Path, out: Path) -> None:
    """Carry out a complete staging folder's plan (``+name``: move it into ``out``; ``-name``: remove ``out``'s);
    idempotent, so a move killed half-way is finished by the next command."""
    for line in (staging / COMPLETE_MARK).read_text(encoding="utf-8").splitlines():
        action, name = line[:1], line[1:]
        if not name or "/" in name or name.startswith("."):
            continue  # only plain output names
        if action == "+" and (staging / name).is_dir():  # a folder of outputs (benchmarks/): replaced whole
            shutil.rmtree(out / name, ignore_errors=True)
            os.replace(staging / name, out / name)
        elif action == "+" and (staging / name).is_file():
            os.replace(staging / name, out / name)
        elif action == "-" and (out / name).is_dir():
            shutil.rmtree(out / name, ignore_errors=True)
        elif action == "-" and (out / name).is_file():
            (out / name).unlink()
    _fsync_folder(out)
    shutil.rmtree(staging, ignore_errors=True)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sweep_stale(out: Path) -> list[str]:
    """Clean a run folder before a command writes it (call it under the folder's lock): a staging folder that
    was complete is moved in (its process was killed while moving); any other staging folder, and the
    temporary files of killed atomic writes, are removed. Returns the names removed or rolled forward."""
    out = Path(out)
    done: list[str] = []
    if not out.is_dir():
        return done
    for path in sorted(out.iterdir()):
        name = path.name
        if name.startswith(STAGING_PREFIX) and path.is_dir() and not path.is_symlink():
            if (path / COMPLETE_MARK).is_file():
                _roll_forward(path, out)
            else:
                shutil.rmtree(path, ignore_errors=True)
            done.append(name)
        elif path.is_file() and ((name.startswith(".") and name.endswith(".tmp"))
                                 or name.startswith(_TEMPORARY_PREFIXES)):
            path.unlink(missing_ok=True)
            done.append(name)
    return done


def write_text(path: Path, text: str) -> Path:
    """Atomically write a UTF-8 text file."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_parquet(path: Path, table: pd.DataFrame) -> Path:
    """Atomically write a DataFrame as Parquet (no index)."""
    return atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))


def write_csv(path: Path, table: pd.DataFrame) -> Path:
    """Atomically write a DataFrame as CSV (no index); text cells a spreadsheet could run are defused
    (:mod:`albert_audit.csvcell`), which :func:`read_csv_table` undoes exactly."""
    safe = table.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(csvcell.defuse)
    return atomic_write(path, lambda tmp: safe.to_csv(tmp, index=False))


def read_csv_table(path: Path, *, text_columns: tuple[str, ...], required: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV written by :func:`write_csv`: text columns as str ("" for empty), defused cells restored;
    a missing, empty or malformed file, or a missing required column, is an AuditError naming the file."""
    name = shown(path)
    try:
        inputs.check_regular_file(path, what="a CSV table", max_bytes=MAX_TABLE_BYTES)
        table = pd.read_csv(path, dtype={c: str for c in text_columns}, lineterminator="\n")
    except FileNotFoundError as exc:
        raise AuditError(f"{name}: missing") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise AuditError(f"{name}: not a readable CSV table ({type(exc).__name__})") from exc
    except OSError as exc:
        raise AuditError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise AuditError(f"{name}: missing column(s) {', '.join(shown(c) for c in missing)}")
    for column in text_columns:
        if column in table:
            table[column] = table[column].fillna("").map(csvcell.restore)
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
    name = shown(path)
    try:
        text = inputs.read_text_limited(path, what="a JSON file", max_bytes=MAX_JSON_BYTES)
    except AuditError as exc:
        if not Path(path).exists() and not Path(path).is_symlink():
            raise AuditError(f"{name}: missing{missing_hint}") from exc
        raise
    try:
        return json.loads(text)
    except ValueError as exc:
        raise AuditError(f"{name}: not valid JSON ({shown(exc)})") from exc


@dataclass
class RunTables:
    """The saved tables of one run folder."""

    folder: Path
    items: pd.DataFrame
    fills: pd.DataFrame
    targets: pd.DataFrame
    summary: dict[str, Any]
    findings: pd.DataFrame | None = None
    eliciting: pd.DataFrame | None = None
    """findings_stereotype_eliciting.csv (the stereotype-eliciting templates' own findings); None when absent."""


def read_run(folder: str | Path, *, need_findings: bool = False) -> RunTables:
    """Read a run folder written by `albert-audit run`, every table typed by :func:`contract.restore_types`;
    a missing or broken file is an AuditError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AuditError(f"{shown(folder)}: no such run folder")
    tables = {spec.file: _read_parquet(folder, spec) for spec in (contract.ITEMS, contract.FILLS, contract.TARGETS)}
    summary = read_summary(folder / SUMMARY_FILE, schema_version=SUMMARY_SCHEMA_VERSION)
    findings = None
    findings_path = folder / FINDINGS_FILE
    if findings_path.is_file():
        findings = contract.restore_types(read_csv_table(findings_path, text_columns=FINDINGS_TEXT_COLUMNS),
                                          contract.FINDINGS, str(findings_path))
    elif need_findings:
        raise AuditError(f"{shown(findings_path)}: missing")
    eliciting = None
    eliciting_path = folder / contract.ELICITING_FINDINGS_FILE
    if eliciting_path.is_file():
        eliciting = contract.restore_types(read_csv_table(eliciting_path, text_columns=FINDINGS_TEXT_COLUMNS),
                                           contract.ELICITING_FINDINGS, str(eliciting_path))
    return RunTables(folder=folder, items=tables[ITEMS_FILE], fills=tables[FILLS_FILE],
                     targets=tables[TARGETS_FILE], summary=summary, findings=findings, eliciting=eliciting)


def _read_parquet(folder: Path, spec: contract.TableSpec) -> pd.DataFrame:
    path = folder / spec.file
    if path.is_dir():
        raise AuditError(f"{shown(path)}: is a folder, expected a Parquet table")
    if not path.is_file():
        raise AuditError(f"{shown(path)}: missing; is {shown(folder)} a run folder of `albert-audit run`?")
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for broken files
        raise AuditError(f"{shown(path)}: unreadable Parquet file ({type(exc).__name__})") from exc
    return contract.restore_types(table, spec, str(path))


def read_summary(path: Path, *, schema_version: int) -> dict[str, Any]:
    """A summary JSON file (summary.json, compare_summary.json): an object of the schema version expected."""
    summary = read_json(path)
    if not isinstance(summary, dict):
        raise AuditError(f"{shown(path)}: expected a JSON object")
    if summary.get("schema_version") != schema_version:
        raise AuditError(f"{shown(path)}: schema_version {shown(repr(summary.get('schema_version')))}, this tool reads "
                         f"{schema_version}")
    return summary
