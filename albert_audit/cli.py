"""The `albert-audit` command line: parse arguments, call the Python API, print. No logic lives here.

Exit codes: 0 success, 1 an internal error (a bug: please report it; it shows a traceback), 2 a bad input, an
unusable model, a folder in use or an operating-system failure such as a full disk (one line on stderr saying
what and where), 130 interrupted by Ctrl-C (SIGINT), 143 stopped by SIGTERM.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from albert_audit import __version__, signals
from albert_audit.contract import COMPARE_REPORT_FILE, DELTAS_FILE, REPORT_FILE
from albert_audit.errors import AuditError, os_reason, shown
from albert_audit.signals import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "EXIT_TERMINATED", "Terminated", "build_parser", "main"]

if TYPE_CHECKING:
    from albert_audit.api import CompareResult

EXIT_BAD_INPUT = 2
#: The commands that score a model (and so keep scored batches to resume from after an interruption).
SCORING_COMMANDS = ("run", "compare", "demo", "lineage")


class _Parser(argparse.ArgumentParser):
    """argparse, with the values it repeats in its error line escaped and cut (albert_audit.errors.shown)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {shown(message, limit=300)}\n")


def _batch_size(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {value!r}")
    return number


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer >= minimum, else a clear message."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {value!r}")
        return number

    return parse


_positive_int = _int_at_least(1, "positive")
_non_negative_int = _int_at_least(0, "non-negative")


def _alpha(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value!r}") from None
    if not 0.0 < number < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value!r}")
    return number


def _margin(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 (nats), got {shown(repr(value))}") from None
    if not number >= 0.0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0 (nats), got {shown(repr(value))}")
    return number


def _add_model_options(parser: argparse.ArgumentParser, *, revision: bool = True) -> None:
    if revision:
        parser.add_argument("--revision", help="hub branch, tag or commit of the model")
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="auto",
                        help="auto (bf16 on a GPU that has it, fp32 otherwise), float32, bfloat16, float16")
    parser.add_argument("--batch-size", type=_batch_size, default="auto",
                        help="sequences per forward pass, or auto (halves on GPU out-of-memory)")
    parser.add_argument("--top-k", type=_positive_int, default=10, help="fills kept per item (default 10)")
    parser.add_argument("--offline", action="store_true", help="never touch the network (hub cache only)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow code shipped with a hub model to run (off by default)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow pickle (.bin) weights, which can run code when loaded (off by default)")


def _add_stats_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="seed of every resampling (default 0)")
    parser.add_argument("--alpha", type=_alpha, default=0.05, help="false discovery rate (default 0.05)")
    parser.add_argument("--n-resamples", type=_positive_int, default=10_000,
                        help="bootstrap and Monte Carlo permutation resamples (default 10000)")
    parser.add_argument("--margin", type=_margin, default=None, metavar="NATS",
                        help="margin of practical significance of every signed finding, in nats (log probability "
                             "ratio, >= 0); default: each metric's registry default")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(
        prog="albert-audit",
        description="Bias and fairness audits of masked language models (albert-large-v2 and descendants).")
    parser.add_argument("--version", action="version", version=f"albert-audit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="audit one model: score probe sets, compute findings, write a report")
    run.add_argument("--model", required=True, help="hub id (e.g. albert-large-v2) or a local model folder")
    run.add_argument("--probes", action="append", default=[], metavar="FILE_OR_NAME",
                     help="probe-set YAML file or shipped set name; repeat for several (needed unless "
                          "--benchmark is given)")
    run.add_argument("--benchmark", action="append", default=[], metavar="NAME=PATH",
                     help="also score a standard benchmark: NAME in crows_pairs, stereoset, seat, honest, aul, "
                          "aula; PATH its file or folder in the published format (docs/benchmarks.md); repeat")
    run.add_argument("--out", required=True, type=Path, help="run folder to write")
    run.add_argument("--unit", choices=("template", "template_term_pair"), default="template",
                     help="unit of the paired group comparisons: template (default; group means over terms) or "
                          "template_term_pair (terms paired by position, for sets with pair_terms_by_position)")
    run.add_argument("--no-report", action="store_true", help="skip report.html")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_model_options(run)
    _add_stats_options(run)
    run.set_defaults(handler=cmd_run)

    report = commands.add_parser("report", help="redraw report.html of a run folder, or compare.html of a compare "
                                 "or demo folder, from its files (no model needed)")
    report.add_argument("run_dir", type=Path, metavar="DIR")
    report.set_defaults(handler=cmd_report)

    demo = commands.add_parser("demo", help="audit the shipped demo models (planted bias), offline, in about a minute")
    demo.add_argument("--out", type=Path, default=Path("reports/demo"), help="output folder (default reports/demo)")
    demo.add_argument("--seed", type=_non_negative_int, default=0, help="seed of every resampling (default 0)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(handler=cmd_demo)

    probes = commands.add_parser("probes", help="list or validate probe sets")
    probe_commands = probes.add_subparsers(dest="probes_command", metavar="ACTION", required=True)
    listing = probe_commands.add_parser("list", help="list the shipped probe sets")
    listing.set_defaults(handler=cmd_probes_list)
    validate = probe_commands.add_parser("validate", help="check probe-set files; exit 2 on the first bad one")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.set_defaults(handler=cmd_probes_validate)
    validate.add_argument("--max-findings", type=_positive_int, default=None, metavar="ROWS",
                          help="warn above this many estimated findings rows per set (default 50000)")
    _add_compare_parser(commands)
    _add_analyze_parser(commands)
    _add_lineage_parsers(commands)
    return parser


def _ray_address(value: str) -> str:
    if value in ("local", "auto") or (":" in value and value.rsplit(":", 1)[1].isdigit()):
        return value
    raise argparse.ArgumentTypeError(f"expected local, auto or HOST:PORT, got {shown(repr(value))}")


def _add_lineage_parsers(commands: argparse._SubParsersAction) -> None:
    """`lineage`, `catalogue add|query`, `history` and `card` (albert_audit.lineage, catalogue, card)."""
    lineage = commands.add_parser(
        "lineage", help="audit a base model and its descendants on Ray; compare each with its parent and the root",
        description="Audit a root base and its descendants (from a manifest, a folder of model folders, model "
                    "cards or the hub's model tree) as Ray tasks, compare each with its parent and the root, and "
                    "write lineage_status.csv, lineage_summary.json, lineage.html and a DuckDB catalogue.")
    source = lineage.add_argument_group("the tree (give one)")
    source.add_argument("--manifest", type=Path, metavar="FILE", help="lineage manifest (YAML; README)")
    source.add_argument("--models-dir", type=Path, metavar="DIR",
                        help="a folder of model folders, each a descendant of --base (or of the sibling its model "
                             "card names as base_model)")
    source.add_argument("--base", metavar="MODEL", help="the root of --models-dir")
    source.add_argument("--cards", type=Path, metavar="DIR",
                        help="offline: a folder of model cards (ORG--NAME.md or ORG--NAME/README.md) linked by "
                             "base_model, read from --root down")
    source.add_argument("--hub-cache", action="store_true",
                        help="offline: the model cards of the local hub cache, read from --root down")
    source.add_argument("--root", metavar="MODEL", help="the root of --cards / --hub-cache")
    source.add_argument("--hub-tree", metavar="MODEL", help="online: the hub's model tree under MODEL (base_model)")
    lineage.add_argument("--max-models", type=_positive_int, default=500, help="refuse a larger tree (default 500)")
    lineage.add_argument("--probes", action="append", default=[], metavar="FILE_OR_NAME",
                         help="probe-set YAML file or shipped set name; repeat for several")
    lineage.add_argument("--benchmark", action="append", default=[], metavar="NAME=PATH",
                         help="also score a standard benchmark in every model's run folder (as in `run`); repeat")
    lineage.add_argument("--out", required=True, type=Path, help="lineage folder to write (runs/, compares/, "
                         "lineage_status.csv, lineage_summary.json, lineage.html, catalogue.duckdb)")
    lineage.add_argument("--ray-address", type=_ray_address, default=None, metavar="auto|HOST:PORT",
                         help="join a running Ray cluster (default: start a local Ray instance for this command)")
    lineage.add_argument("--ray-cpus", type=_positive_int, default=None, metavar="N",
                         help="CPUs of the local Ray instance (default: all of the machine's)")
    lineage.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                         help="at most N model actors (default: one per GPU, else one per CPU)")
    lineage.add_argument("--retries", type=_non_negative_int, default=2,
                         help="retries of a model whose worker process was lost (default 2)")
    lineage.add_argument("--catalogue", type=Path, default=None, metavar="FILE",
                         help="DuckDB catalogue to register the lineage in (default OUT/catalogue.duckdb)")
    lineage.add_argument("--no-catalogue", action="store_true", help="do not register the lineage in a catalogue")
    lineage.add_argument("--unit", choices=("template", "template_term_pair"), default="template",
                         help="unit of the paired group comparisons (as in `run`)")
    lineage.add_argument("--delta-margin", type=_margin, default=None, metavar="NATS",
                         help="margin of the deltas' verdicts, in nats (>= 0); default: the registry defaults")
    lineage.add_argument("--utility-sample", type=Path, default=None, metavar="FILE",
                         help="text sample of the pseudo-perplexity (one sentence per line; default: the shipped one)")
    lineage.add_argument("--no-utility", action="store_true", help="skip the pseudo-perplexity of each model")
    lineage.add_argument("--no-report", action="store_true", help="skip lineage.html and the compare.html pages")
    lineage.add_argument("--no-run-reports", action="store_true", help="skip each model's report.html")
    lineage.add_argument("--quiet", action="store_true", help="no progress")
    _add_model_options(lineage, revision=False)
    _add_stats_options(lineage)
    lineage.set_defaults(handler=cmd_lineage)

    catalogue = commands.add_parser("catalogue", help="register run, compare and lineage folders in a DuckDB "
                                    "catalogue and query it with SQL")
    actions = catalogue.add_subparsers(dest="catalogue_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="register folders (runs, compares, lineages) in the catalogue")
    add.add_argument("folders", nargs="+", type=Path, metavar="DIR")
    add.add_argument("--catalogue", type=Path, default=Path("catalogue.duckdb"), metavar="FILE",
                     help="the DuckDB file (default ./catalogue.duckdb; created when missing)")
    add.set_defaults(handler=cmd_catalogue_add)
    query = actions.add_parser("query", help="run one SQL query (read only) and print the table, or write it")
    query.add_argument("sql", metavar="SQL")
    query.add_argument("--catalogue", type=Path, default=Path("catalogue.duckdb"), metavar="FILE",
                       help="the DuckDB file (default ./catalogue.duckdb)")
    query.add_argument("--out", type=Path, default=None, metavar="FILE",
                       help="write the result to FILE (.csv or .parquet) instead of printing it")
    query.set_defaults(handler=cmd_catalogue_query)

    history = commands.add_parser("history", help="bias scores and change counts across a model's checkpoints or a "
                                  "lineage, with intervals, from the catalogue")
    history.add_argument("subject", metavar="MODEL_OR_LINEAGE")
    history.add_argument("--catalogue", type=Path, default=Path("catalogue.duckdb"), metavar="FILE",
                         help="the DuckDB file (default ./catalogue.duckdb)")
    history.add_argument("--out", type=Path, default=None, metavar="FILE.html",
                         help="also draw the chart into a self-contained HTML page")
    history.set_defaults(handler=cmd_history)

    card = commands.add_parser("card", help="write a model-card 'Bias evaluation' section with model-index metadata")
    card.add_argument("run_dir", type=Path, metavar="DIR", help="a run folder (or a lineage run: runs/LABEL)")
    card.add_argument("--out", type=Path, default=None, metavar="FILE.md",
                      help="write the card to FILE.md (default: print it)")
    card.add_argument("--model-name", default=None, help="the model's name in model-index (default: its id)")
    card.set_defaults(handler=cmd_card)


def _add_analyze_parser(commands: argparse._SubParsersAction) -> None:
    """The `analyze` subcommand: findings (and report) again from a run folder's saved scores."""
    analyze = commands.add_parser(
        "analyze", help="recompute findings.csv (and report.html) of a run folder from its saved scores (no model)",
        description="Recompute a run folder's findings from its score tables, with the run's own statistics "
                    "options or the ones given here; the score tables are never rewritten.")
    analyze.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    analyze.add_argument("--seed", type=_non_negative_int, default=None, help="seed of every resampling "
                         "(default: the run's)")
    analyze.add_argument("--alpha", type=_alpha, default=None, help="false discovery rate (default: the run's)")
    analyze.add_argument("--n-resamples", type=_positive_int, default=None,
                         help="bootstrap and Monte Carlo permutation resamples (default: the run's)")
    analyze.add_argument("--margin", type=_margin, default=None, metavar="NATS",
                         help="margin of practical significance, in nats (default: the run's)")
    analyze.add_argument("--unit", choices=("template", "template_term_pair"), default=None,
                         help="unit of the paired group comparisons (default: the run's)")
    analyze.add_argument("--no-report", action="store_true", help="skip report.html (an old one is removed)")
    analyze.set_defaults(handler=cmd_analyze)


def _add_compare_parser(commands: argparse._SubParsersAction) -> None:
    """The `compare` subcommand: a base model and its descendants (or saved runs), deltas, compare.html."""
    compare = commands.add_parser(
        "compare", help="compare descendants (fine-tunes, classifiers, quantizations) with their base model",
        description="Audit a base model and its descendants on the same items (or compare saved runs) and "
                    "report, per finding, the change with a paired CI, a permutation p-value and FDR q-values.")
    compare.add_argument("--base", metavar="MODEL", help="the base model: hub id or local folder")
    compare.add_argument("--candidate", action="append", default=[], metavar="MODEL",
                         help="a descendant to compare with the base; repeat for several. A checkpoint "
                              "without an MLM head is probed with the base's head, grafted")
    compare.add_argument("--base-run", type=Path, metavar="DIR", help="a saved run folder of the base model")
    compare.add_argument("--candidate-run", action="append", default=[], type=Path, metavar="DIR",
                         help="a saved run folder of a candidate (same items as --base-run); repeat for several")
    compare.add_argument("--probes", action="append", default=[], metavar="FILE_OR_NAME",
                         help="probe-set YAML file or shipped set name (with --base); repeat for several")
    compare.add_argument("--allow-different-architecture", action="store_true",
                         help="compare candidates whose architecture or vocabulary differs from the base's "
                              "(refused otherwise; each difference is noted in the candidate's run and report)")
    compare.add_argument("--benchmark", action="append", default=[], metavar="NAME=PATH",
                         help="also score a standard benchmark in every model's run folder (with --base; as in "
                              "`run`); crows_pairs, aul and aula get paired deltas in benchmark_deltas.csv; repeat")
    compare.add_argument("--quantize", metavar="KIND", help="audit the candidates dynamically quantized: int8 (CPU)")
    compare.add_argument("--out", required=True, type=Path, help="folder to write (a run folder per model, "
                         "deltas.csv, compare_summary.json, compare.html)")
    _add_model_options(compare, revision=False)
    _add_stats_options(compare)
    compare.add_argument("--delta-margin", type=_margin, default=None, metavar="NATS",
                         help="margin of the deltas' verdicts, in nats (>= 0); default: the registry defaults")
    compare.add_argument("--no-report", action="store_true", help="skip compare.html")
    compare.add_argument("--no-run-reports", action="store_true", help="skip each model's report.html")
    compare.add_argument("--no-utility", action="store_true", help="skip the pseudo-perplexity of each model")
    compare.add_argument("--quiet", action="store_true", help="no progress bar")
    compare.set_defaults(handler=cmd_compare)


def _model_options(args: argparse.Namespace) -> dict[str, Any]:
    """The model options of `run` and `compare` (albert_audit.api.ModelOptions) from their arguments."""
    return {"device": args.device, "dtype": args.dtype, "batch_size": args.batch_size, "top_k": args.top_k,
            "offline": args.offline, "trust_remote_code": args.trust_remote_code, "allow_pickle": args.allow_pickle,
            "progress": not args.quiet}


def _stats_options(args: argparse.Namespace) -> dict[str, Any]:
    """The statistics options (albert_audit.api.StatsOptions) from the arguments."""
    options = {"seed": args.seed, "alpha": args.alpha, "n_resamples": args.n_resamples, "margin": args.margin}
    if hasattr(args, "unit"):
        options["unit"] = args.unit
    return options


def cmd_run(args: argparse.Namespace) -> int:
    """`albert-audit run`."""
    from albert_audit.api import AuditConfig, run_audit

    config = AuditConfig(model=args.model, probes=args.probes, benchmarks=args.benchmark, out=args.out,
                         revision=args.revision,
                         write_report=not args.no_report, **_model_options(args), **_stats_options(args))
    result = run_audit(config)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    summary = result.summary
    counts = summary["counts"]
    print(f"scored {counts['items']} items ({counts['unique_sequences']} unique sequences) on "
          f"{summary['device']} in {summary['timings_s']['score']:.1f} s")
    if result.findings is not None:
        print(findings_line(result.findings, alpha=summary["alpha"]))
    for bench in summary.get("benchmarks") or []:
        print(f"benchmark {bench['name']}: {bench['n_examples']} examples -> {bench['table']}")
    print(f"run folder: {result.out}")
    if config.write_report:
        print(f"report: {result.out / REPORT_FILE}")
    return 0


#: Verdicts in the order the summary line gives them (the findings' ``verdict`` column).
VERDICTS = ("material", "negligible", "below margin", "inconclusive")


def findings_line(findings: Any, *, alpha: float) -> str:
    """The CLI's summary of a findings table: verdict counts when it has a ``verdict`` column, else the count
    of significant rows."""
    if "verdict" in findings.columns:
        verdicts = findings["verdict"].fillna("").astype(str).str.replace("_", " ")
        counts = verdicts[verdicts != ""].value_counts()
        listed = [f"{int(counts[v])} {v}" for v in VERDICTS if v in counts]
        listed += [f"{int(n)} {v}" for v, n in counts.items() if v not in VERDICTS]
        n_sig = int(findings["significant"].astype(bool).sum()) if "significant" in findings.columns else 0
        return (f"{len(findings)} findings: {', '.join(listed) or 'no verdicts'} ({n_sig} significant at FDR "
                f"{alpha})")
    n_sig = int(findings["significant"].astype(bool).sum())
    return f"{len(findings)} findings, {n_sig} significant at FDR {alpha}"


def cmd_analyze(args: argparse.Namespace) -> int:
    """`albert-audit analyze RUN_DIR`."""
    from albert_audit.api import analyze_run

    result = analyze_run(args.run_dir, write_report=not args.no_report, seed=args.seed, alpha=args.alpha,
                         n_resamples=args.n_resamples, margin=args.margin, unit=args.unit)
    summary = result.summary
    if result.findings is not None:
        print(findings_line(result.findings, alpha=summary["alpha"]))
    margin = summary.get("margin")
    print(f"findings: {result.out / 'findings.csv'} (seed {summary['seed']}, n_resamples {summary['n_resamples']}, "
          f"unit {summary['unit']}, margin {'registry defaults' if margin is None else margin})")
    if not args.no_report:
        print(f"report: {result.out / REPORT_FILE}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """`albert-audit report DIR`: a run folder's report.html, or a compare folder's compare.html."""
    from albert_audit.api import rerender_report

    print(f"report: {rerender_report(args.run_dir)}")
    return 0


def cmd_probes_list(args: argparse.Namespace) -> int:
    """`albert-audit probes list`."""
    from albert_audit.library import list_shipped
    from albert_audit.probeset import load_probe_set

    for path in list_shipped():
        probe_set = load_probe_set(path)
        groups = ", ".join(probe_set.group_names) or "-"
        print(f"{probe_set.name:<22} {probe_set.category:<18} {len(probe_set.templates):>3} templates  "
              f"{len(probe_set.targets):>3} targets  groups: {groups}")
    return 0


def cmd_probes_validate(args: argparse.Namespace) -> int:
    """`albert-audit probes validate PATH...`."""
    from albert_audit.api import load_probes, scope_warnings, size_warnings

    probe_sets = load_probes(args.paths)
    for probe_set in probe_sets:
        for warning in [*probe_set.warnings, *size_warnings([probe_set], args.max_findings),
                        *scope_warnings([probe_set])]:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"ok: {probe_set.path} ({probe_set.name}: {len(probe_set.templates)} templates, "
              f"{len(probe_set.groups)} groups, {len(probe_set.targets)} targets)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """`albert-audit compare`."""
    from albert_audit.api import CompareConfig, compare_runs

    config = CompareConfig(
        out=args.out, base=args.base, candidates=args.candidate, probes=args.probes, base_run=args.base_run,
        candidate_runs=args.candidate_run, quantize=args.quantize, write_report=not args.no_report,
        delta_margin=args.delta_margin, allow_different=args.allow_different_architecture,
        write_run_reports=not args.no_run_reports, utility=not args.no_utility, benchmarks=args.benchmark,
        **_model_options(args),
        **_stats_options(args))
    result = compare_runs(config)
    _print_comparison(result, report=not args.no_report)
    return 0


def _print_comparison(result: CompareResult, *, report: bool) -> None:
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    summary = result.summary
    for entry in [summary["base"], *summary["candidates"]]:
        utility = entry.get("utility") or {}
        pppl = f"; pseudo-perplexity {utility['pppl']:.2f}" if utility.get("pppl") is not None else ""
        print(f"{entry['role']}: {entry['label']} (head: {entry['model'].get('head', 'own')}, "
              f"dtype {entry['dtype']}){pppl}; run folder {result.out / entry['run']}")
    for candidate, counts in summary["changes"].items():
        listed = ", ".join(f"{n} {change.replace('_', ' ')}" for change, n in counts.items())
        print(f"{candidate}: {listed} (of {sum(counts.values())} findings, FDR {summary['alpha']})")
    print(f"deltas: {result.out / DELTAS_FILE}")
    if report:
        print(f"report: {result.out / COMPARE_REPORT_FILE}")


def cmd_demo(args: argparse.Namespace) -> int:
    """`albert-audit demo`."""
    from albert_audit.api import run_demo

    result = run_demo(args.out, seed=args.seed, progress=not args.quiet)
    base_report = result.out / result.summary["base"]["run"] / REPORT_FILE
    _print_comparison(result, report=True)
    print(f"base model report: {base_report}")
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    """`albert-audit lineage`."""
    from albert_audit.lineage.run import LineageConfig, run_lineage

    config = LineageConfig(
        out=args.out, probes=args.probes, benchmarks=args.benchmark, manifest=args.manifest,
        models_dir=args.models_dir, base=args.base, cards=args.cards, hub_cache=args.hub_cache,
        hub_tree=args.hub_tree, root=args.root, max_models=args.max_models, ray_address=args.ray_address,
        ray_cpus=args.ray_cpus, workers=args.workers, retries=args.retries, utility=not args.no_utility,
        utility_sample=args.utility_sample, delta_margin=args.delta_margin, write_report=not args.no_report,
        write_run_reports=not args.no_run_reports, catalogue=args.catalogue, register=not args.no_catalogue,
        **_model_options(args), **_stats_options(args))
    result = run_lineage(config)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for row in result.status.itertuples():
        detail = f"failed: {row.reason}" if row.status == "failed" else f"{row.status}, {row.kind}, head {row.head}"
        changes = f"; vs parent: {row.changes_vs_parent}" if row.changes_vs_parent else ""
        print(f"{'  ' * int(row.depth)}{row.label}: {detail}{changes}")
    counts = result.summary["counts"]
    print(f"{counts['done']} audited, {counts['resumed']} resumed, {counts['failed']} failed; "
          f"status: {result.out / 'lineage_status.csv'}")
    if result.summary["files"].get("report"):
        print(f"report: {result.out / result.summary['files']['report']}")
    if result.summary["files"].get("catalogue"):
        print(f"catalogue: {result.summary['files']['catalogue']}")
    if counts["done"] + counts["resumed"] == 0:
        print("error: no model of the lineage could be audited (see the status table)", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def cmd_catalogue_add(args: argparse.Namespace) -> int:
    """`albert-audit catalogue add DIR...`."""
    from albert_audit.catalogue import add_folders

    added = add_folders(args.catalogue, args.folders)
    for kind, count in added.items():
        print(f"{kind}: {count}")
    print(f"catalogue: {args.catalogue}")
    return 0


def cmd_catalogue_query(args: argparse.Namespace) -> int:
    """`albert-audit catalogue query SQL`."""
    from albert_audit.catalogue import format_table, query, write_table

    table = query(args.catalogue, args.sql)
    if args.out is not None:
        print(f"{len(table)} rows: {write_table(table, args.out)}")
    else:
        print(format_table(table))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """`albert-audit history MODEL_OR_LINEAGE`."""
    from albert_audit.catalogue import history, history_text

    table = history(args.catalogue, args.subject)
    print(history_text(table))
    if args.out is not None:
        from albert_audit.catalogue import write_history_page

        print(f"chart: {write_history_page(table, args.subject, args.out)}")
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    """`albert-audit card DIR`."""
    from albert_audit.card import model_card

    text = model_card(args.run_dir, model_name=args.model_name)
    if args.out is not None:
        from albert_audit.card import write_card

        print(f"card: {write_card(args.out, text)}")
    else:
        print(text, end="")
    return 0


#: OS errors a command meets from its surroundings (a full disk, a read-only file system...), shown as one line.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EIO,
                                errno.ENAMETOOLONG, errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EFBIG,
                                errno.ELOOP, errno.EXDEV, errno.EBUSY, errno.ETXTBSY, errno.ESTALE})


def _os_error_line(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else None
    return f"error: {shown(where) + ': ' if where is not None else ''}{os_reason(exc)}"


def _quiet_stdout() -> None:
    """After a closed pipe (`albert-audit probes list | head -1`): point stdout at /dev/null so that Python's
    final flush at exit raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _run_handler(args: argparse.Namespace) -> int:
    """The command's handler, with Python warnings from the libraries held back while it runs: shown after
    a success, dropped after an error (so that nothing precedes the error line)."""
    handler: Callable[[argparse.Namespace], int] = args.handler
    with warnings.catch_warnings(record=True) as caught:
        code = handler(args)
    for warning in caught:
        print(f"warning: {shown(warning.message, limit=300)}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    signals.install_stop_handlers()  # Ctrl-C and SIGTERM stop a run even when inherited as ignored
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt as exc:
        print("interrupted", file=sys.stderr)
        return signals.exit_code(exc)
    if getattr(args, "offline", False):
        # read by huggingface_hub when it is imported, which happens later, inside the engine
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        code = _run_handler(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _quiet_stdout()  # the reader went away (`| head`): not an error
        return 0
    except AuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise  # not the surroundings: a bug, shown with its traceback
        print(_os_error_line(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        if args.command in SCORING_COMMANDS:
            print("interrupted: scored batches are kept; rerun the same command to resume (the previous results "
                  "of the folder are untouched until a run completes)", file=sys.stderr)
        else:
            print("interrupted", file=sys.stderr)
        return signals.exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
