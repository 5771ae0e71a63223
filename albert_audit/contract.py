"""The run-folder contract: file names, and the columns and dtypes of every table a run or compare writes.

One owner for the format of a run folder. Writers take file names and column orders from here; readers call
:func:`restore_types` once, so that booleans, integers, floats (NaN) and text come back as they were written,
whatever the file format. docs/data_contract.md documents the same tables for people.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from albert_audit.errors import AuditError

# ------------------------------------------------------------------------------------------ file names

ITEMS_FILE = "items.parquet"
FILLS_FILE = "fills.parquet"
TARGETS_FILE = "targets.parquet"
FINDINGS_FILE = "findings.csv"
ELICITING_FINDINGS_FILE = "findings_stereotype_eliciting.csv"
"""The same statistics over the stereotype-eliciting templates alone (own FDR families; absent when the run
has no such template). findings.csv uses the neutral templates only."""
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
CHECKPOINT_FOLDER = ".partial"
"""Scored batches of an unfinished run (resumed by a rerun with the same work)."""
BENCHMARKS_FOLDER = "benchmarks"
"""Per-example tables of the standard benchmarks a run scored: ``benchmarks/<name>.parquet``."""

DELTAS_FILE = "deltas.csv"
COMPARE_SUMMARY_FILE = "compare_summary.json"
COMPARE_REPORT_FILE = "compare.html"
BENCHMARK_DELTAS_FILE = "benchmark_deltas.csv"
"""compare, when the runs scored standard benchmarks: their paired deltas (albert_audit.benchmarks.deltas)."""

RUN_FILES = (ITEMS_FILE, FILLS_FILE, TARGETS_FILE, FINDINGS_FILE, ELICITING_FINDINGS_FILE, SUMMARY_FILE, REPORT_FILE)
"""Every output file of `albert-audit run` (removed before a rerun writes the folder again)."""
RUN_OUTPUTS = (*RUN_FILES, BENCHMARKS_FOLDER)
"""What a run's commit replaces as a whole: its files and the benchmark tables' folder."""
COMPARE_FILES = (DELTAS_FILE, BENCHMARK_DELTAS_FILE, COMPARE_SUMMARY_FILE, COMPARE_REPORT_FILE)
"""The outputs of `albert-audit compare` beside its per-model run folders (committed together)."""

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
    default: Any = None
    """Value a reader fills in when a table lacks the column (None: the column is required)."""


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
    Column("template_tag", "str", "the template's tag: neutral or stereotype_eliciting (kept out of the statistics)",
           default="neutral"),
    Column("term_reference_share", "float64",
           "the term's share in the set's first term-keyed reference; NaN if none or left out (reference_note)",
           default=float("nan")),
    Column("group_factors", "str", 'a crossed set\'s levels of the group, "race=black;gender=female" ("" if none)',
           default=""),
    Column("reference_note", "str", "the probe set's words left out of reference alignment (another sense) and "
           'shares on few observations ("" if none)', default=""),
))

TARGETS = TableSpec(TARGETS_FILE, (
    Column("item_id", "int64", "key into items"),
    Column("target", "str", "the target word as written in the probe set"),
    Column("n_pieces", "int64", "number of tokenizer pieces of the target in context"),
    Column("logprob", "float64", "natural-log probability of the target at the mask (chain rule)"),
    Column("term_logprob", "float64",
           "log P(group term) at its masks, target filled in (Kurita association; chain rule); NaN without slot"),
    Column("term_prior_logprob", "float64", "the same with the target masked too (one mask per target piece)"),
    Column("category", "str", 'the target\'s category in the probe set ("" for a plain list)', default=""),
    Column("control", "bool", "a definitional target (positive control, kept out of bias scores)", default=False),
    Column("reference_share", "float64",
           "the target's share in the set's first target-keyed reference; NaN if none or left out (reference_note)",
           default=float("nan")),
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
    Column("scope", "str", 'signed gaps: "group" (generalises to new templates and terms) or "terms" (a claim '
                           'about these terms, inference over templates only); "" for other metrics'),
    Column("verdict", "str", 'signed gaps: "material", "negligible", "below_margin" or "inconclusive" '
                             '(docs/inference.md); "" for metrics without a margin'),
    Column("margin", "float64", "the practical margin of the verdict, in effect_unit (NaN: no verdict)"),
    Column("p_material", "float64", "p of |effect| <= margin against |effect| > margin"),
    Column("q_material", "float64", "Benjamini-Hochberg q of p_material within (probe set, metric)"),
    Column("p_equivalence", "float64", "TOST p of |effect| >= margin (equivalence shown when <= alpha)"),
    Column("ratio", "float64", "signed gaps: exp(effect), the probability ratio a : b; NaN otherwise"),
    Column("ratio_low", "float64", "exp(ci_low)"),
    Column("ratio_high", "float64", "exp(ci_high)"),
    Column("share_a_gt_b", "float64", "signed gaps: share of templates whose per-template gap is > 0"),
    Column("pi_low", "float64", "signed gaps: lower end of the 1 - alpha prediction interval of the gap in one "
                                "new template (these terms), nats"),
    Column("pi_high", "float64", "upper end of that prediction interval"),
))

ELICITING_FINDINGS = TableSpec(ELICITING_FINDINGS_FILE, FINDINGS.columns)
"""findings_stereotype_eliciting.csv: the findings columns, rows of the stereotype-eliciting templates alone."""

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
    Column("change", "str", "amplified, reduced, reversed, emerged, negligible or inconclusive "
                            "(see albert_audit.model_deltas)"),
    Column("scope", "str", 'the delta\'s scope: "group", "terms" (signed gaps) or "" (bias_score)'),
    Column("margin", "float64", "the delta's practical margin (delta_margin), in the effect's unit"),
    Column("p_material", "float64", "p of |delta| <= margin against |delta| > margin"),
    Column("q_material", "float64", "Benjamini-Hochberg q of p_material within (candidate, probe set, metric)"),
    Column("p_equivalence", "float64", "TOST p of |delta| >= margin"),
    Column("delta_verdict", "str", "the delta's verdict: material, negligible, below_margin or inconclusive"),
    Column("base_verdict", "str", "the base finding's verdict (its findings.csv)"),
    Column("candidate_verdict", "str", "the candidate finding's verdict (its findings.csv)"),
))

BENCHMARK_DELTAS = TableSpec(BENCHMARK_DELTAS_FILE, (
    Column("benchmark", "str", "the benchmark (--benchmark NAME)"),
    Column("metric", "str", "a registered benchmark metric id (crows_pairs, stereoset_ss, seat, honest_k5, ...)"),
    Column("target", "str", "the subgroup (bias type, domain, SEAT test, HONEST category) or all"),
    Column("candidate", "str", "the candidate's label (as in deltas.csv)"),
    Column("n_units", "int64", "paired units: pairs, examples, target sentences or templates both models scored"),
    Column("base_effect", "float64", "the base model's score (the metric's own unit)"),
    Column("candidate_effect", "float64", "the candidate's score"),
    Column("delta", "float64", "candidate_effect - base_effect"),
    Column("ci_low", "float64", "lower end of the delta's paired interval (1 - alpha)"),
    Column("ci_high", "float64", "upper end of that interval"),
    Column("p_value", "float64", "two-sided p of delta = 0 (paired over units); NaN: no test"),
    Column("q_value", "float64", "Benjamini-Hochberg q within (benchmark, candidate)"),
    Column("n_discordant", "int64", "units whose outcome differs between the two models"),
    Column("method", "str", "how the row was computed (pairing, test, interval)"),
    Column("change", "str", "amplified, reduced, reversed, emerged or inconclusive relative to the metric's ideal; "
                            '"" for LMS / ICAT (albert_audit.benchmarks.deltas)', default=""),
))

TABLES = {spec.file: spec for spec in (ITEMS, TARGETS, FILLS, FINDINGS, ELICITING_FINDINGS, DELTAS, BENCHMARK_DELTAS)}

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


def require_columns(table: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    """Raise an AuditError naming ``where`` when the table lacks any of ``columns`` (the one wording of a
    missing column in a score or findings table)."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise AuditError(f"{where}: missing column(s) {', '.join(missing)} (see docs/data_contract.md)")


def check_columns(table: pd.DataFrame, spec: TableSpec, where: str) -> None:
    """Raise an AuditError naming ``where`` when the table lacks a required column of ``spec``."""
    require_columns(table, [c.name for c in spec.columns if c.default is None], where)


def restore_types(table: pd.DataFrame, spec: TableSpec, where: str) -> pd.DataFrame:
    """The table with every column of ``spec`` in its contract dtype (text: str with "" for empty; bool;
    int64; float64 with NaN), columns in contract order first, extra columns kept after them.

    ``where`` names the file in errors (a missing column or a value of the wrong type).
    """
    check_columns(table, spec, where)
    out = pd.DataFrame(index=table.index)
    for column in spec.columns:
        values = table[column.name] if column.name in table.columns else pd.Series(column.default, index=table.index)
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


# ------------------------------------------------------------------------------------------ summaries


def doc(text: str, **kwargs: Any) -> Any:
    """A dataclass field documented by one line (``field(metadata={"doc": text})``)."""
    return field(metadata={"doc": text}, **kwargs)


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its one-line doc, in declaration order (docs/data_contract.md lists the same)."""
    return {f.name: f.metadata.get("doc", "") for f in fields(cls)}


class _JsonRecord:
    """Turns a summary dataclass into the JSON object written to disk (optional parts left out when None)."""

    #: Fields written only when they hold a value (None leaves the key out of the file).
    OPTIONAL: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in field order."""
        data = asdict(self)  # type: ignore[call-overload]
        return {k: v for k, v in data.items() if not (k in self.OPTIONAL and v is None)}


@dataclass(frozen=True, kw_only=True)
class BatchSizes(_JsonRecord):
    """Batch sizes of a run's scoring."""

    requested: int | str = doc("the --batch-size asked for: an integer or 'auto'")
    start: int = doc("the batch size the scoring loop started with")
    effective: list[int] = doc("every batch size used (smaller ones after a GPU out-of-memory back-off)")


@dataclass(frozen=True, kw_only=True)
class RunCounts(_JsonRecord):
    """How much a run scored."""

    items: int = doc("rows of items.parquet")
    unique_sequences: int = doc("distinct token sequences put through the model")
    resumed_sequences: int = doc("of those, read back from a checkpoint of an interrupted run")
    targets: int = doc("rows of targets.parquet")
    fills: int = doc("rows of fills.parquet")
    multi_piece_targets: int = doc("target rows whose word is several tokenizer pieces")


@dataclass(frozen=True, kw_only=True)
class ProbeFile(_JsonRecord):
    """One probe-set file a run read."""

    name: str = doc("the probe set's name")
    path: str = doc("the file as given (a path or a shipped set's file)")
    sha256: str = doc("sha256 of the file's bytes")


@dataclass(frozen=True, kw_only=True)
class BenchmarkRun(_JsonRecord):
    """One standard benchmark a run scored (``--benchmark NAME=PATH``)."""

    name: str = doc("the benchmark: crows_pairs, stereoset, seat, honest, aul or aula")
    path: str = doc("the file or folder as given")
    files: dict[str, str] = doc("sha256 of every file read, keyed by its path (a folder: each file in it)")
    n_examples: int = doc("rows of its per-example table (pairs, examples, sentences or templates)")
    table: str = doc("its per-example table, relative to the run folder (benchmarks/<name>.parquet)")


@dataclass(frozen=True, kw_only=True)
class RunSummary(_JsonRecord):
    """summary.json of a run folder: written once, after every table, before the report (which reads it)."""

    OPTIONAL = ("utility", "comparison", "notes", "benchmarks")

    schema_version: int = doc("version of this layout (SUMMARY_SCHEMA_VERSION)")
    tool_version: str = doc("albert-audit version that wrote the run")
    created_utc: str = doc("when the run started (ISO 8601, UTC, seconds)")
    model: dict[str, Any] = doc("the engine's ModelInfo: id, revision, commit, path, weights_sha256, head, ...")
    runtime: dict[str, str] = doc("versions of Python and of the libraries that shape the numbers")
    device: str = doc("device the model ran on (cpu, cuda, cuda:N, mps)")
    dtype: str = doc("dtype the model ran in (float32, bfloat16, float16, int8-dynamic)")
    batch_size: BatchSizes = doc("requested, starting and effective batch sizes")
    seed: int = doc("seed of every resampling")
    alpha: float = doc("false discovery rate: a finding is significant when q_value <= alpha")
    n_resamples: int = doc("bootstrap and Monte Carlo permutation resamples")
    unit: str = doc("unit of the paired group comparisons: template or template_term_pair")
    margin: float | None = doc("--margin of practical significance (nats) the findings used; null: each metric's "
                               "registry default", default=None)
    top_k: int = doc("fills kept per item in fills.parquet")
    multi_piece_method: str = doc("how a target of several pieces is scored (chain rule, see README)")
    counts: RunCounts = doc("how much was scored")
    probe_files: list[ProbeFile] = doc("the probe-set files read, in the order given")
    timings_s: dict[str, float] = doc("seconds spent: load, score, stats, total (the report's own time is "
                                      "not recorded: the report reads this file)")
    utility: dict[str, Any] | None = doc("compare only: pseudo-perplexity on the neutral sample (pppl, "
                                         "mean_logprob, n_sentences, n_tokens, sample, method)", default=None)
    comparison: dict[str, Any] | None = doc("compare only: role (base or candidate), and for a candidate its "
                                            "base and quantize", default=None)
    notes: list[str] | None = doc("compare only: what was done to the model (grafted head, quantized)",
                                  default=None)
    benchmarks: list[BenchmarkRun] | None = doc("the standard benchmarks scored (--benchmark), in the order "
                                                "given; absent when none", default=None)


@dataclass(frozen=True, kw_only=True)
class CompareModel(_JsonRecord):
    """One model (run) of a comparison."""

    label: str = doc("the model's name in deltas.csv and compare.html (made unique)")
    role: str = doc("base or candidate")
    run: str = doc("its run folder: relative to the compare folder when inside it, else absolute")
    model: dict[str, Any] = doc("the run's summary.json model entry")
    device: str | None = doc("device the run scored on")
    dtype: str | None = doc("dtype the run scored in")
    utility: dict[str, Any] | None = doc("the run's pseudo-perplexity, when measured")
    notes: list[str] = doc("the run's notes (grafted head, quantized)")
    created_utc: str | None = doc("when the run started")
    pppl_ratio: float | None = doc("candidate's pseudo-perplexity / the base's (None for the base or when "
                                   "not measured)", default=None)


@dataclass(frozen=True, kw_only=True)
class UtilityRow(_JsonRecord):
    """Pseudo-perplexity of one candidate beside the base's."""

    candidate: str = doc("the candidate's label")
    base_pppl: float | None = doc("the base's pseudo-perplexity")
    candidate_pppl: float | None = doc("the candidate's pseudo-perplexity")
    ratio: float | None = doc("candidate_pppl / base_pppl")
    sample: str | None = doc("the text sample's file name (None: the shipped English sample)")


@dataclass(frozen=True, kw_only=True)
class CompareBenchmark(_JsonRecord):
    """One standard benchmark of a comparison: its paired deltas (the rows of benchmark_deltas.csv)."""

    name: str = doc("the benchmark: crows_pairs, stereoset, seat, honest, aul or aula")
    files: dict[str, str] = doc("sha256 of every file the base run read for it, keyed by path")
    candidates: list[str] = doc("the candidates compared on it (labels)")
    changes: dict[str, dict[str, int]] = doc("per candidate label: how many of its rows have each change")
    deltas: list[dict[str, Any]] = doc("its rows of benchmark_deltas.csv (metric, target, candidate, n_units, "
                                       "base_effect, candidate_effect, delta, ci_low, ci_high, p_value, q_value, "
                                       "n_discordant, change); NaN written as null")
    skipped: list[str] = doc("why a candidate got no deltas on it (other files than the base's, no table)")


@dataclass(frozen=True, kw_only=True)
class CompareSummary(_JsonRecord):
    """compare_summary.json of a compare folder: written once, after deltas.csv, before compare.html."""

    OPTIONAL = ("benchmarks",)

    schema_version: int = doc("version of this layout (COMPARE_SCHEMA_VERSION)")
    tool_version: str = doc("albert-audit version that wrote the comparison")
    created_utc: str = doc("when the comparison of the runs started (ISO 8601, UTC, seconds)")
    mode: str = doc("models (scored here) or saved_runs")
    items_sha256: str = doc("fingerprint of the items every run shares")
    seed: int = doc("seed of the deltas' resampling")
    alpha: float = doc("false discovery rate of the deltas")
    n_resamples: int = doc("bootstrap and permutation resamples of the deltas")
    margin: float | None = doc("--margin (nats) the runs' findings were asked for; null: registry defaults",
                               default=None)
    delta_margin: float | None = doc("--delta-margin (nats) of the deltas' verdicts; null: registry defaults",
                                     default=None)
    quantize: str | None = doc("int8 when the candidates were dynamically quantized, else None")
    base: CompareModel = doc("the base model's run")
    candidates: list[CompareModel] = doc("each candidate's run, in order")
    utility: list[UtilityRow] = doc("pseudo-perplexity of each candidate beside the base's")
    changes: dict[str, dict[str, int]] = doc("per candidate label: how many deltas of each change")
    n_deltas: int = doc("rows of deltas.csv")
    methods: dict[str, Any] = doc("how the deltas were computed (text shown in compare.html)")
    notes: list[str] = doc("what was done to the models (grafted heads, quantization)")
    files: dict[str, str | None] = doc("deltas: deltas.csv; benchmark_deltas: benchmark_deltas.csv, or None "
                                       "without benchmarks; report: compare.html, or None when not drawn")
    timings_s: dict[str, float] = doc("seconds spent: deltas, total (the report's own time is not recorded)")
    benchmarks: list[CompareBenchmark] | None = doc("the standard benchmarks both the base and a candidate "
                                                    "scored, with their paired deltas; absent when none",
                                                    default=None)


# -------------------------------------------------------------------------------- lineage and catalogue

LINEAGE_SUMMARY_FILE = "lineage_summary.json"
LINEAGE_STATUS_FILE = "lineage_status.csv"
LINEAGE_REPORT_FILE = "lineage.html"
LINEAGE_RUNS_FOLDER = "runs"
"""A lineage folder's run folders: ``runs/<label>/`` (ordinary run folders)."""
LINEAGE_COMPARES_FOLDER = "compares"
"""A lineage folder's compare folders: ``compares/<label>--vs-parent/`` and ``compares/<label>--vs-root/``."""
LINEAGE_FILES = (LINEAGE_STATUS_FILE, LINEAGE_SUMMARY_FILE, LINEAGE_REPORT_FILE)
LINEAGE_SCHEMA_VERSION = 1
CATALOGUE_SCHEMA_VERSION = 1
"""Version of the catalogue's tables and views (albert_audit.catalogue; docs/catalogue.md)."""

LINEAGE_STATUS = TableSpec(LINEAGE_STATUS_FILE, (
    Column("label", "str", "the model's label (its run folder is runs/<label>)"),
    Column("model", "str", "hub id or folder"),
    Column("revision", "str", 'hub revision asked for ("" for none)'),
    Column("parent", "str", 'the parent\'s label ("" for the root)'),
    Column("depth", "int64", "generations below the root (0 for the root)"),
    Column("kind", "str", "mlm, grafted or task (how it was audited); the manifest's kind when it failed early"),
    Column("head", "str", 'the MLM head used: "own" or "grafted from <root>"'),
    Column("status", "str", "done, resumed (a complete run with the same weights and settings kept) or failed"),
    Column("reason", "str", 'why it failed, one line ("" otherwise)'),
    Column("attempts", "int64", "attempts of its audit (more than 1: its worker was lost and Ray retried it)"),
    Column("seconds", "float64", "seconds its audit took in its worker (resume checks included)"),
    Column("weights_sha256", "str", "sha256 of its weight files, name=hash joined by ';'"),
    Column("run", "str", 'its run folder, relative to the lineage folder ("" when failed)'),
    Column("vs_parent", "str", 'its compare folder against the parent ("" when none)'),
    Column("vs_root", "str", 'its compare folder against the root ("" when none; the same as vs_parent for a '
                             "child of the root)"),
    Column("changes_vs_parent", "str", 'change counts against the parent, "amplified=2;reduced=1;..."'),
    Column("changes_vs_root", "str", "change counts against the root"),
))


@dataclass(frozen=True, kw_only=True)
class LineageSummary(_JsonRecord):
    """lineage_summary.json of a lineage folder: written after every run and comparison, before lineage.html."""

    schema_version: int = doc("version of this layout (LINEAGE_SCHEMA_VERSION)")
    tool_version: str = doc("albert-audit version that wrote it")
    created_utc: str = doc("when the command started (ISO 8601, UTC, seconds)")
    name: str = doc("the lineage's name (manifest name, folder or root)")
    source: str = doc("where the tree came from: manifest PATH, folder DIR, cards DIR, hub cache, hub tree")
    root: str = doc("the root's label")
    nodes: list[dict[str, Any]] = doc("every model: label, model, revision, parent, kind, in tree order")
    probe_files: list[ProbeFile] = doc("the probe-set files every model was audited on")
    benchmarks: list[str] = doc("the --benchmark NAME=PATH arguments")
    options: dict[str, Any] = doc("model and statistics options, delta_margin, utility")
    counts: dict[str, int] = doc("models by status: done, resumed, failed")
    compares: list[dict[str, str]] = doc("every comparison: label, against (parent or root), base label, folder")
    cluster: dict[str, Any] = doc("Ray: address (local or joined), gcs_address (a local instance: 127.0.0.1:PORT), "
                                  "GPUs, CPUs, actors and each actor's resources")
    timings_s: dict[str, float] = doc("seconds spent: audits (wall), reports, compares, total")
    files: dict[str, str | None] = doc("status: lineage_status.csv; report: lineage.html (None when not drawn); "
                                       "catalogue: the DuckDB file registered in (None when not)")
