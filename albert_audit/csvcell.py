"""Spreadsheet-safe CSV text cells that round-trip exactly.

Readers must split lines on "\\n" only (``pd.read_csv(..., lineterminator="\\n")``): pandas writes a lone
"\\r" inside a cell unquoted.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and some also treat a
leading tab or carriage return as one. Such cells are written with a leading apostrophe (which spreadsheets
hide). A cell that already starts with an apostrophe gets one more, so that reading strips exactly one
apostrophe from every cell that has one and gives back the written value, whatever it was.
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def defuse(value: Any) -> Any:
    """The cell as written: text that a spreadsheet could run, or that starts with an apostrophe, is
    prefixed with an apostrophe; anything else is returned unchanged."""
    if isinstance(value, str) and value[:1] in (*FORMULA_STARTS, QUOTE):
        return QUOTE + value
    return value


def restore(value: Any) -> Any:
    """The inverse of :func:`defuse` for a cell read back from the CSV."""
    if isinstance(value, str) and value[:1] == QUOTE:
        return value[1:]
    return value
