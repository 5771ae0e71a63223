"""`--benchmark NAME=PATH`: the standard benchmarks inside a run.

Two steps, so that a bad file stops the run before the model loads:

1. :func:`load_benchmarks` parses every ``NAME=PATH``, reads and validates its file(s) (one AuditError line
   naming the file otherwise) and hashes them;
2. :func:`score_benchmarks` scores each with the loaded model (``engine.benchmark_scoring.BenchmarkScorer``),
   writes its per-example table to ``benchmarks/<name>.parquet`` and returns its findings rows (one FDR
   family per benchmark) and the records of summary.json.

What PATH is, per NAME (the benchmark's published format; docs/benchmarks.md):

- ``crows_pairs``: the CrowS-Pairs CSV (``crows_pairs_anonymized.csv``);
- ``stereoset``: a StereoSet JSON (``dev.json`` / ``test.json``; intrasentence examples);
- ``seat``: a folder of SEAT ``*.jsonl`` tests (bias-bench's format);
- ``honest``: HurtLex's TSV (the lexicon; the templates are the shipped ``binary`` set);
- ``aul`` / ``aula``: a CrowS-Pairs CSV, or a StereoSet JSON (its stereotype / anti-stereotype sentences
  as pairs); ``aul`` scores AUL only, ``aula`` AULA only (its forward passes read attention weights).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit import contract, results
from albert_audit.benchmarks import aul, crows_pairs, honest, seat, stereoset
from albert_audit.benchmarks.deltas import CHANGES
from albert_audit.errors import AuditError

NAMES = ("crows_pairs", "stereoset", "seat", "honest", "aul", "aula")
"""The NAME values of ``--benchmark NAME=PATH``, in the order their sections are shown."""


@dataclass(frozen=True)
class BenchmarkInput:
    """One ``--benchmark`` argument, read and validated (nothing scored yet)."""

    name: str
    path: str
    data: Any
    """What the benchmark's ``score`` takes (pairs, examples, SEAT tests, HONEST templates + lexicon)."""
    files: dict[str, str]
    """sha256 of every file read, keyed by its path."""


def parse_benchmark_arg(text: str) -> tuple[str, str]:
    """``NAME=PATH`` -> (name, path); an AuditError line for anything else."""
    name, sep, path = str(text).partition("=")
    name = name.strip()
    if not sep or not path.strip():
        raise AuditError(f"--benchmark {text!r}: expected NAME=PATH with NAME one of {', '.join(NAMES)}")
    if name not in NAMES:
        raise AuditError(f"--benchmark {text!r}: unknown benchmark {name!r}; expected one of {', '.join(NAMES)}")
    return name, path


def sha256_of(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pairs(path: str) -> tuple[pd.DataFrame, list[Path]]:
    """CrowS-shaped pairs from a CrowS-Pairs CSV or (a .json file) a StereoSet file."""
    if Path(path).suffix.lower() == ".json":
        return stereoset.as_pairs(stereoset.load_intrasentence(path)), [Path(path)]
    return crows_pairs.load_pairs(path), [Path(path)]


def _read(name: str, path: str) -> tuple[Any, list[Path]]:
    """The benchmark's data and the files it came from (every bad file is one AuditError line)."""
    if name == "crows_pairs":
        return crows_pairs.load_pairs(path), [Path(path)]
    if name == "stereoset":
        return stereoset.load_intrasentence(path), [Path(path)]
    if name == "seat":
        tests = seat.load_tests(path)
        return tests, sorted(Path(path).glob("*.jsonl"))
    if name == "honest":
        templates_path = honest.shipped_templates("binary")
        return (honest.load_templates(templates_path), honest.load_hurtlex(path)), [templates_path, Path(path)]
    return _pairs(path)  # aul, aula


def load_benchmarks(args: Sequence[str]) -> list[BenchmarkInput]:
    """Read every ``--benchmark NAME=PATH`` (before any model loads); a NAME given twice is an error."""
    out: list[BenchmarkInput] = []
    for text in args:
        name, path = parse_benchmark_arg(text)
        if any(b.name == name for b in out):
            raise AuditError(f"--benchmark {name} given twice; give each benchmark once")
        data, files = _read(name, path)
        out.append(BenchmarkInput(name=name, path=path, data=data,
                                  files={str(f): sha256_of(f) for f in files}))
    return out


def table_path(name: str) -> str:
    """A benchmark's per-example table, relative to the run folder."""
    return f"{contract.BENCHMARKS_FOLDER}/{name}.parquet"


def _score_and_find(bench: BenchmarkInput, scorer: Any, *, seed: int, alpha: float,
                    n_resamples: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-example table, findings rows) of one benchmark."""
    stats = {"seed": seed, "alpha": alpha, "n_resamples": n_resamples}
    name, data = bench.name, bench.data
    if name == "crows_pairs":
        table = crows_pairs.score(data, scorer)
        return table, crows_pairs.findings(table, **stats)
    if name == "stereoset":
        table = stereoset.score(data, scorer)
        return table, stereoset.findings(table, **stats)
    if name == "seat":
        table = seat.score(data, scorer)
        return table, seat.findings(data, table, **stats)
    if name == "honest":
        templates, lexicon = data
        table = honest.score(templates, lexicon, scorer)
        return table, honest.findings(table, **stats)
    table = aul.score(data, scorer, attention=name == "aula")
    other = "aul" if name == "aula" else "aula"  # one metric per NAME: the other's columns take no rows
    only = table.assign(**{f"sent_more_{other}": float("nan"), f"sent_less_{other}": float("nan")})
    return table, aul.findings(only, benchmark=name, **stats)


def score_benchmarks(loaded: Any, benchmarks: Sequence[BenchmarkInput], out: Path, *, batch_size: int | str,
                     seed: int, alpha: float, n_resamples: int,
                     progress: Callable[[str], None] | None = None,
                     ) -> tuple[pd.DataFrame, list[contract.BenchmarkRun], float]:
    """Score every benchmark with ``loaded``; write ``out/benchmarks/<name>.parquet``.

    Returns the findings rows of all benchmarks (each benchmark its own q-value family), the summary
    records, and the seconds spent.
    """
    from albert_audit.engine.benchmark_scoring import BenchmarkScorer

    started = time.perf_counter()
    scorer = BenchmarkScorer(loaded, batch_size=batch_size)
    found, records = [], []
    for bench in benchmarks:
        if progress is not None:
            progress(f"benchmark {bench.name}: scoring {bench.path}")
        table, rows = _score_and_find(bench, scorer, seed=seed, alpha=alpha, n_resamples=n_resamples)
        results.write_parquet(out / table_path(bench.name), _parquet_ready(table))
        found.append(rows)
        records.append(contract.BenchmarkRun(name=bench.name, path=bench.path, files=dict(bench.files),
                                             n_examples=len(table), table=table_path(bench.name)))
    findings = pd.concat(found, ignore_index=True) if found else contract.empty_table(contract.FINDINGS)
    return findings, records, time.perf_counter() - started


def _parquet_ready(table: pd.DataFrame) -> pd.DataFrame:
    """The table as Parquet takes it: list cells (e.g. HONEST's fills) kept, tuples made lists."""
    out = table.reset_index(drop=True).copy()
    for column in out.columns:
        if out[column].dtype == object and out[column].map(lambda v: isinstance(v, tuple)).any():
            out[column] = out[column].map(lambda v: list(v) if isinstance(v, tuple) else v)
    return out


@dataclass(frozen=True)
class ComparedRun:
    """What the benchmark deltas need from one run of a comparison."""

    label: str
    folder: Path
    summary: dict[str, Any]
    findings: pd.DataFrame | None


def _records(run: ComparedRun) -> dict[str, dict[str, Any]]:
    return {str(b.get("name")): b for b in (run.summary.get("benchmarks") or []) if isinstance(b, dict)}


def _deltas_of(name: str, base: pd.DataFrame, cand: pd.DataFrame, label: str, stats: dict[str, Any]) -> pd.DataFrame:
    """One benchmark's delta rows of one candidate (its own statistics; q-values are redone by the caller)."""
    from albert_audit.benchmarks.deltas import SHARE_METRICS, honest_deltas, share_deltas
    from albert_audit.benchmarks.seat_deltas import seat_deltas
    from albert_audit.benchmarks.stereoset_deltas import stereoset_deltas

    if name in SHARE_METRICS:
        return share_deltas(base, cand, benchmark=name, metric=name, candidate_label=label, **stats)
    if name == "stereoset":
        return stereoset_deltas(base, cand, candidate_label=label, **stats)
    if name == "seat":
        return seat_deltas(base, cand, candidate_label=label, **stats)
    return honest_deltas(base, cand, candidate_label=label, **stats)


def _directions(runs: Sequence[ComparedRun]) -> dict[tuple[str, str, str, str], tuple[str, str]]:
    """(benchmark, metric, target, candidate) -> (the base's, the candidate's) findings direction."""
    def lookup(findings: pd.DataFrame | None) -> dict[tuple[str, str, str], str]:
        if findings is None or findings.empty or "direction" not in findings.columns:
            return {}
        return {(str(r.probe_set), str(r.metric), str(r.target)): str(r.direction)
                for r in findings.itertuples(index=False)}

    base = lookup(runs[0].findings)
    out = {}
    for run in runs[1:]:
        cand = lookup(run.findings)
        for key in set(base) | set(cand):
            out[(*key, run.label)] = (base.get(key, "none"), cand.get(key, "none"))
    return out


def benchmark_deltas(runs: Sequence[ComparedRun], *, seed: int, alpha: float, n_resamples: int,
                     ) -> tuple[pd.DataFrame | None, list[contract.CompareBenchmark]]:
    """The paired deltas of every benchmark the base run and a candidate run both scored from the same files
    (sha256), read from their ``benchmarks/<name>.parquet`` (``runs``: the base first), and the records of
    compare_summary.json. None (no table) when no benchmark was compared."""
    from albert_audit.benchmarks.deltas import finish

    base, candidates = runs[0], runs[1:]
    base_records = _records(base)
    directions = _directions(runs)
    parts, records = [], []
    stats = {"seed": seed, "alpha": alpha, "n_resamples": n_resamples}
    for name in [n for n in NAMES if n in base_records]:
        base_path = Path(base.folder) / table_path(name)
        if not base_path.is_file():
            continue
        base_table = pd.read_parquet(base_path)
        files = dict(base_records[name].get("files") or {})
        found, skipped, labels = [], [], []
        for run in candidates:
            record = _records(run).get(name)
            cand_path = Path(run.folder) / table_path(name)
            if record is None or not cand_path.is_file():
                skipped.append(f"{run.label}: did not score {name}")
                continue
            if sorted((record.get("files") or {}).values()) != sorted(files.values()):
                skipped.append(f"{run.label}: scored {name} on other files than the base (sha256 differ)")
                continue
            found.append(_deltas_of(name, base_table, pd.read_parquet(cand_path), run.label, stats))
            labels.append(run.label)
        if not found:
            continue
        table = finish(pd.concat(found, ignore_index=True), alpha=alpha, directions=directions)
        parts.append(table)
        records.append(contract.CompareBenchmark(
            name=name, files=files, candidates=labels, skipped=skipped,
            changes={label: {change: int(((table["candidate"] == label) & (table["change"] == change)).sum())
                             for change in CHANGES} for label in labels},
            deltas=[{k: v for k, v in row.items() if k != "method" and k != "benchmark"}
                    for row in table.to_dict(orient="records")]))
    if not parts:
        return None, []
    return pd.concat(parts, ignore_index=True), records
