"""What a run or a comparison is asked to do: model options, statistics options, and the configs they make.

Model options say how a model is loaded and scored; statistics options say how findings are computed. A
config is composed of both (their fields are its keyword arguments) plus what the command itself needs.
Defaults are the CLI's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass(kw_only=True)
class ModelOptions:
    """How a model is loaded and scored."""

    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps."""
    dtype: str = "auto"
    """auto (bf16 on a GPU that has it, fp32 otherwise), float32, bfloat16 or float16."""
    batch_size: int | str = "auto"
    """Sequences per forward pass, or "auto" (halves on a GPU out-of-memory)."""
    top_k: int = 10
    """Fills kept per item."""
    offline: bool = False
    """Never touch the network (hub cache only)."""
    trust_remote_code: bool = False
    """Allow code shipped with a hub model to run."""
    allow_pickle: bool = False
    """Allow pickle (.bin) weights, which can run code when loaded."""
    progress: bool = True
    """Show a progress bar while scoring."""

    def model_options(self) -> ModelOptions:
        """These options on their own (from a config composed of them)."""
        return ModelOptions(**_values(self, ModelOptions))

    def loading(self) -> dict[str, Any]:
        """Keyword arguments of the engine's model loaders."""
        return {"device": self.device, "dtype": self.dtype, "offline": self.offline,
                "trust_remote_code": self.trust_remote_code, "allow_pickle": self.allow_pickle}


@dataclass(kw_only=True)
class StatsOptions:
    """How findings (and deltas) are computed from the scores."""

    seed: int = 0
    """Seed of every resampling."""
    alpha: float = 0.05
    """False discovery rate: a row is significant when its q-value is at most alpha."""
    n_resamples: int = 10_000
    """Bootstrap and Monte Carlo permutation resamples."""
    unit: str = "template"
    """Unit of the paired group comparisons: template or template_term_pair."""
    margin: float | None = None
    """Margin of practical significance (nats, >= 0) of every signed finding; None: each metric's registry
    default."""

    def stats_options(self) -> StatsOptions:
        """These options on their own (from a config composed of them)."""
        return StatsOptions(**_values(self, StatsOptions))


def _values(obj: Any, cls: type) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(cls)}


def option_values(config: ModelOptions | StatsOptions) -> dict[str, Any]:
    """The model and statistics options of a config as keyword arguments (to build another config)."""
    values: dict[str, Any] = {}
    for cls in (ModelOptions, StatsOptions):
        if isinstance(config, cls):
            values.update(_values(config, cls))
    return values


@dataclass(kw_only=True)
class AuditConfig(ModelOptions, StatsOptions):
    """Everything `albert-audit run` needs: a model, probe sets, an output folder, and the options."""

    model: str
    """Hub id or local folder of the model."""
    probes: list[str]
    """Probe-set files or shipped set names."""
    out: Path
    """The run folder to write."""
    revision: str | None = None
    """Hub branch, tag or commit of the model."""
    write_report: bool = True
    """Draw report.html (last, from the written files)."""
    benchmarks: list[str] = field(default_factory=list)
    """Standard benchmarks to score too, each "NAME=PATH" (albert_audit.api.benchmarks); with benchmarks,
    ``probes`` may be empty."""


@dataclass(kw_only=True)
class CompareConfig(ModelOptions, StatsOptions):
    """Everything `albert-audit compare` needs: models (``base`` + ``candidates``) or saved runs.

    Give either ``base`` and ``candidates`` (model ids or folders; each is audited into its own run folder
    under ``out``: ``out/base``, ``out/candidate_1``, ...) or ``base_run`` and ``candidate_runs`` (run folders
    of `albert-audit run` or of an earlier compare, whose items must match). ``quantize="int8"`` audits every
    candidate dynamically quantized (CPU). ``utility`` measures each model's pseudo-perplexity on the shipped
    neutral sample (models only).
    """

    out: Path
    base: str | None = None
    candidates: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    base_run: Path | None = None
    candidate_runs: list[Path] = field(default_factory=list)
    quantize: str | None = None
    write_report: bool = True
    write_run_reports: bool = True
    utility: bool = True
    utility_sample: Path | None = None
    delta_margin: float | None = None
    """Margin (nats, >= 0) of the deltas' verdicts; None: the registry defaults."""
    allow_different: bool = False
    """Compare candidates whose architecture or vocabulary differs from the base's (noted in their runs)."""
    benchmarks: list[str] = field(default_factory=list)
    """Standard benchmarks ("NAME=PATH") scored in every model's run folder (models only); their paired deltas go
    to benchmark_deltas.csv."""


@dataclass
class RunResult:
    """Where a run was written and what it found."""

    out: Path
    summary: dict[str, Any]
    """summary.json as written."""
    findings: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class CompareResult:
    """Where a comparison was written, its deltas and what to tell the user."""

    out: Path
    summary: dict[str, Any]
    """compare_summary.json as written."""
    deltas: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
