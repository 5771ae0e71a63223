"""The run-folder contract: file names, and the columns and dtypes of every table a run or compare writes.

One owner for the format of a run folder. Writers take file names and column orders from here; readers call
:func:`restore_types` once, so that booleans, integers, floats (NaN) and text come back as they were written,
whatever the file format. docs/data_contract.md documents the same tables for people.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from albert_audit.errors import AuditError

# ------------------------------------------------------------------------------------------ file names

ITEMS_FILE = "items.parquet"
FILLS_FILE = "fills.parquet"
TARGETS_FILE = "targets.parquet"
FINDINGS_FILE = "findings.csv"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
CHECKPOINT_FOLDER = ".partial"
"""Scored batches of an unfinished run (resumed by a rerun with the same work)."""

DELTAS_FILE = "deltas.csv"
COMPARE_SUMMARY_FILE = "compare_summary.json"
COMPARE_REPORT_FILE = "compare.html"

RUN_FILES = (ITEMS_FILE, FILLS_FILE, TARGETS_FILE, FINDINGS_FILE, SUMMARY_FILE, REPORT_FILE)
"""Every output of `albert-audit run` (removed before a rerun writes the folder again)."""
COMPARE_FILES = (DELTAS_FILE, COMPARE_SUMMARY_FILE, COMPARE_REPORT_FILE)
"""The outputs of `albert-audit compare` beside its per-model run folders."""

SUMMARY_SCHEMA_VERSION = 1
COMPARE_SCHEMA_VERSION = 1


# --------------------------------------------------------------------------------------------- tables

DTYPES = ("int64", "float64", "bool", "str")


@dataclass(frozen=True)
class Column:
    """One column of a table: its name, dtype (one of ``DTYPES``) and what it means."""

    name: str
    dtype: str
    doc: str


@dataclass(frozen=True)
class TableSpec:
    """A table of the run folder: its file name and its columns, in the order they are written."""

    file: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in order."""
        return tuple(c.name for c in self.columns)

    def names_of(self, dtype: str) -> tuple[str, ...]:
        """Names of the columns of one dtype."""
        return tuple(c.name for c in self.columns if c.dtype == dtype)


ITEMS = TableSpec(ITEMS_FILE, (
    Column("item_id", "int64", "0..n-1, unique within a run"),
    Column("probe_set", "str", "the probe set's name"),
    Column("template_id", "int64", "0-based index of the template inside its probe set"),
    Column("template", "str", "the template text as written in the YAML file"),
    Column("group", "str", 'group name; "" for a template without a slot'),
    Column("term", "str", 'the term put in the slot; "" for a template without a slot'),
    Column("term_index", "int64", "position of the term inside its group's list; -1 if no slot"),
    Column("text", "str", "the masked sentence the model sees"),
    Column("prior_text", "str", "the same sentence with the group term masked too (one mask per piece)"),
))

TARGETS = TableSpec(TARGETS_FILE, (
    Column("item_id", "int64", "key into items"),
    Column("target", "str", "the target word as written in the probe set"),
    Column("n_pieces", "int64", "number of tokenizer pieces of the target in context"),
    Column("logprob", "float64", "natural-log probability of the target at the mask (chain rule)"),
    Column("prior_logprob", "float64", "the same in prior_text (group term masked)"),
))

FILLS = TableSpec(FILLS_FILE, (
    Column("item_id", "int64", "key into items"),
    Column("rank", "int64", "1..k"),
    Column("token_id", "int64", "vocabulary id"),
    Column("token", "str", "the decoded token (the fill-mask pipeline's token_str)"),
    Column("prob", "float64", "softmax probability at the mask"),
    Column("logprob", "float64", "natural log of prob (fp32 log_softmax)"),
))

FINDINGS = TableSpec(FINDINGS_FILE, (
    Column("probe_set", "str", "the probe set's name"),
    Column("metric", "str", "a registered metric id"),
    Column("target", "str", "the target word; empty for set-level rows"),
    Column("group_a", "str", "first group of the comparison"),
    Column("group_b", "str", "second group of the comparison"),
    Column("n_units", "int64", "number of units (templates) the statistic used"),
    Column("effect", "float64", "the effect, in effect_unit"),
    Column("effect_unit", "str", 'e.g. "nats", "JSD bits", "count"'),
    Column("ci_low", "float64", "lower end of the two-sided 1 - alpha interval"),
    Column("ci_high", "float64", "upper end of the interval"),
    Column("p_value", "float64", "p-value of the row's test (NaN when undefined)"),
    Column("q_value", "float64", "Benjamini-Hochberg q-value"),
    Column("significant", "bool", "q_value <= alpha"),
    Column("direction", "str", '"a>b", "b>a" or "none"'),
    Column("method", "str", "how the row was computed (test, interval, units)"),
))

DELTAS = TableSpec(DELTAS_FILE, (
    Column("probe_set", "str", "the probe set's name"),
    Column("metric", "str", "a metric id that compare reports deltas for"),
    Column("target", "str", "the target word; empty for set-level rows"),
    Column("group_a", "str", "first group"),
    Column("group_b", "str", "second group"),
    Column("base_effect", "float64", "the base model's effect over the paired units"),
    Column("candidate", "str", "the candidate's label"),
    Column("candidate_effect", "float64", "the candidate's effect over the paired units"),
    Column("delta", "float64", "candidate_effect - base_effect"),
    Column("ci_low", "float64", "lower end of the delta's interval"),
    Column("ci_high", "float64", "upper end of the delta's interval"),
    Column("p_value", "float64", "p-value of delta = 0"),
    Column("q_value", "float64", "Benjamini-Hochberg q-value"),
    Column("change", "str", "how the finding changed (see albert_audit.compare)"),
))

TABLES = {spec.file: spec for spec in (ITEMS, TARGETS, FILLS, FINDINGS, DELTAS)}

_TRUE = frozenset({"true", "1", "1.0", "yes"})
_FALSE = frozenset({"false", "0", "0.0", "no", ""})


def _to_bool(value: object, where: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower() if value is not None and value == value else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise AuditError(f"{where}: {str(value)[:40]!r} is not a boolean")


def check_columns(table: pd.DataFrame, spec: TableSpec, where: str) -> None:
    """Raise an AuditError naming ``where`` when the table lacks a column of ``spec``."""
    missing = [c for c in spec.names if c not in table.columns]
    if missing:
        raise AuditError(f"{where}: missing column(s) {', '.join(missing)} (see docs/data_contract.md)")


def restore_types(table: pd.DataFrame, spec: TableSpec, where: str) -> pd.DataFrame:
    """The table with every column of ``spec`` in its contract dtype (text: str with "" for empty; bool;
    int64; float64 with NaN), columns in contract order first, extra columns kept after them.

    ``where`` names the file in errors (a missing column or a value of the wrong type).
    """
    check_columns(table, spec, where)
    out = pd.DataFrame(index=table.index)
    for column in spec.columns:
        values = table[column.name]
        try:
            if column.dtype == "str":
                out[column.name] = pd.Series(values.map(lambda v: "" if v is None or v != v else str(v))
                                             .to_numpy(dtype=object), index=table.index, dtype=object)
            elif column.dtype == "bool":
                label = f"{where}: column {column.name}"
                out[column.name] = values.map(lambda v, label=label: _to_bool(v, label)).astype(bool)
            elif column.dtype == "int64":
                out[column.name] = pd.to_numeric(values, errors="raise").astype("int64")
            else:
                out[column.name] = pd.to_numeric(values, errors="raise").astype("float64")
        except (ValueError, TypeError) as exc:
            raise AuditError(f"{where}: column {column.name} is not {column.dtype} ({str(exc)[:80]})") from exc
    for extra in table.columns:
        if extra not in out.columns:
            out[extra] = table[extra]
    return out


def empty_table(spec: TableSpec) -> pd.DataFrame:
    """An empty table with the spec's columns and dtypes."""
    dtypes = {"str": object, "bool": bool, "int64": "int64", "float64": "float64"}
    return pd.DataFrame({c.name: pd.Series(dtype=dtypes[c.dtype]) for c in spec.columns})
