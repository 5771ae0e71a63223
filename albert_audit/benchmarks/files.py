"""Readers of benchmark files: every missing or malformed file becomes one AuditError line naming it."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit.errors import AuditError


def existing_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path, or an AuditError when it is not a readable file."""
    p = Path(path)
    if not p.exists():
        raise AuditError(f"{p}: {what} file not found")
    if not p.is_file():
        raise AuditError(f"{p}: {what} path is not a file")
    return p


def read_table(path: str | Path, what: str, *, required: Sequence[str], sep: str = ",",
               index_column: bool = False) -> pd.DataFrame:
    """A CSV/TSV file as a table of strings with the ``required`` columns (an AuditError otherwise).

    ``index_column``: the file's first column has an empty header (pandas' index, as in CrowS-Pairs) and is
    returned as column ``""``.
    """
    p = existing_file(path, what)
    try:
        table = pd.read_csv(p, sep=sep, dtype=str, keep_default_na=False, quoting=csv.QUOTE_MINIMAL,
                            encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AuditError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except pd.errors.EmptyDataError as exc:
        raise AuditError(f"{p}: empty {what} file") from exc
    except pd.errors.ParserError as exc:
        raise AuditError(f"{p}: malformed {what} file ({str(exc).strip().splitlines()[-1][:120]})") from exc
    if index_column:
        first = table.columns[0] if len(table.columns) else None
        if first is None or not (first == "" or str(first).startswith("Unnamed: 0")):
            raise AuditError(f"{p}: the first column must be the unnamed pair-id column")
        table = table.rename(columns={first: ""})
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise AuditError(f"{p}: missing column(s) {', '.join(missing)} in the {what} header")
    if table.empty:
        raise AuditError(f"{p}: no rows in the {what} file")
    return table


def read_json(path: str | Path, what: str) -> Any:
    """A JSON file's content (an AuditError with line and column when it is not valid JSON)."""
    p = existing_file(path, what)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise AuditError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise AuditError(f"{p}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from exc

