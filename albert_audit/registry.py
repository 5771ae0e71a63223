"""The metric registry: one declaration per metric, read by findings, compare, the reports and the docs.

A metric declares its id, whether its effect has a sign (group a minus group b), its unit, its labels, the
per-template score it reads, whether `compare` reports deltas for it, and its compute function; its
position in ``METRICS`` is its position in the row order. The compute function is named by a dotted path
("module:function") and imported only when findings are computed, so importing this module stays cheap
(no pandas, numpy or scipy).

Adding a metric: write its module under ``albert_audit/metrics/`` with a function
``(data: ProbeSetScores, cfg: Config) -> list[dict]`` (see :mod:`albert_audit.metrics.core`), add one
``MetricSpec`` here, and document it in docs/metrics.md (a test checks both).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SOURCES = ("targets", "fills")
"""The score tables a metric can read."""
LOG_RATIO_MARGIN = math.log(1.25)
"""Default practical margin of a log-probability-ratio effect: a 1.25x ratio (0.223 nats)."""
DELTA_MARGIN = math.log(1.1)
"""Default practical margin of a change between two models of a nats effect: a 1.1x ratio (0.095 nats)."""
JSD_MARGIN = 0.01
"""Default margin of the fill divergence's excess (JSD bits): two fill distributions that put half their mass
on fills 1.25x more likely after one group and half on fills 1.25x less likely differ by 0.0088 bits (the
log-ratio margin carried over to whole distributions), rounded up."""
DISCO_MARGIN = 1.0
"""Default margin of the DisCo excess (fills per template): fewer than one more fill per template differing
between the groups than chance gives does not change what the model fills in."""


@dataclass(frozen=True)
class MetricSpec:
    """What the rest of the tool needs to know about one metric."""

    id: str
    """The value of the findings ``metric`` column."""
    label: str
    """Its name in report headings and tables."""
    short_label: str
    """Its name where space is short (chart axes, compare tables)."""
    unit: str
    """The findings ``effect_unit`` ("nats", "JSD bits", "count", "" when the row has no effect)."""
    signed: bool
    """True when the effect is group a minus group b (the row gets a direction)."""
    compare_deltas: bool
    """True when `compare` reports a paired delta for its rows."""
    summary: str
    """One sentence for the docs' metric list: what it measures."""
    compute: str
    """Dotted path "module:function" of the function that makes its findings rows for one probe set."""
    source: str = "targets"
    """The score table it reads (one of ``SOURCES``); a probe set without rows there gets no rows."""
    value: str = ""
    """The per-template cell it reads from :mod:`albert_audit.units` ("logprob", "association"; "" for fills)."""
    min_groups: int = 2
    """The fewest groups a probe set needs for this metric's rows."""
    rows: str = ""
    """What one findings row is (for the docs' metric list)."""
    margin: float | None = None
    """Default practical margin of the effect (effect_unit); None: the rows get no verdict."""
    delta_margin: float | None = None
    """Default practical margin of a delta between two models (compare); None when not compared."""
    from_items: bool = True
    """False for a standard benchmark's metric (``--benchmark``): its rows come from the benchmark's own
    ``findings`` (``compute`` names it) over its per-example table, never from the items, so
    ``compute_findings``, ``metric_ids()`` and the docs' metric list skip it (``benchmark_ids()`` lists them)."""


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("logprob_gap", "target log-prob gap", "log-prob gap", "nats", signed=True, compare_deltas=True,
               summary="log P(target | group a's terms) - log P(target | group b's terms), paired by template",
               compute="albert_audit.metrics.gaps:logprob_gap", value="logprob",
               rows="target x group pair", margin=LOG_RATIO_MARGIN, delta_margin=DELTA_MARGIN),
    MetricSpec("association_gap", "association gap (prior-normalised)", "association gap", "nats", signed=True,
               compare_deltas=True,
               summary="gap of Kurita et al.'s association: log P(group term | target in) - log P(term | target "
                       "masked)",
               compute="albert_audit.metrics.gaps:association_gap", value="association",
               rows="target x group pair", margin=LOG_RATIO_MARGIN, delta_margin=DELTA_MARGIN),
    MetricSpec("group_shift", "group shift (common to all targets)", "group shift", "nats", signed=True,
               compare_deltas=False,
               summary="the association gap shared by every target of the set: per template the mean gap over "
                       "targets, averaged over templates",
               compute="albert_audit.metrics.shift:group_shift", value="association", rows="group pair",
               margin=LOG_RATIO_MARGIN),
    MetricSpec("gap_beyond_shift", "association gap beyond the group shift", "gap beyond shift", "nats",
               signed=True, compare_deltas=False,
               summary="a target's association gap minus the group shift (association_gap = group_shift + this)",
               compute="albert_audit.metrics.shift:gap_beyond_shift", value="association",
               rows="target x group pair", margin=LOG_RATIO_MARGIN),
    MetricSpec("omnibus", "omnibus test", "omnibus", "", signed=False, compare_deltas=False,
               summary="whether a target's association differs among more than two groups (permutation test)",
               compute="albert_audit.metrics.omnibus:omnibus", value="association", min_groups=3,
               rows="target (probe sets with > 2 groups)"),
    MetricSpec("fill_divergence", "fill-distribution divergence", "fill JSD", "JSD bits", signed=False,
               compare_deltas=False,
               summary="Jensen-Shannon divergence of the groups' top-k fill distributions, as excess over its "
                       "term-relabelling null mean (one-sided: no negligible verdict)",
               compute="albert_audit.metrics.fills:fill_divergence", source="fills", rows="group pair",
               margin=JSD_MARGIN),
    MetricSpec("disco", "DisCo-style count", "DisCo", "count", signed=False, compare_deltas=False,
               summary="fills in the terms' top-3 whose frequency differs between groups (Webster et al. 2020), "
                       "as excess over its term-relabelling null mean (one-sided: no negligible verdict)",
               compute="albert_audit.metrics.fills:disco", source="fills", rows="group pair", margin=DISCO_MARGIN),
    MetricSpec("bias_score", "probe-set bias score (RMS association gap)", "bias score (RMS)", "nats",
               signed=False, compare_deltas=True,
               summary="root-mean-square association gap over a probe set's bias targets (controls left out) and "
                       "group pairs, debiased (no bias: 0 on average; its interval covers the truth)",
               compute="albert_audit.metrics.bias_score:bias_score", value="association", rows="probe set",
               margin=LOG_RATIO_MARGIN, delta_margin=DELTA_MARGIN),
    MetricSpec("reference_alignment", "reference alignment (slope on logit share)", "ref. alignment",
               "nats per logit", signed=False, compare_deltas=False,
               summary="OLS slope of the words' log-prob gaps on logit(reference share): tracks (1), exceeds, "
                       "attenuates or inverts",
               compute="albert_audit.metrics.reference_alignment:reference_alignment", value="logprob",
               rows="probe set with reference shares"),
    MetricSpec("interaction", "interaction of crossed factors (difference of gaps)", "interaction", "nats",
               signed=True, compare_deltas=False,
               summary="in a crossed set (factors, e.g. race x gender): (A1B1 - A1B2) - (A2B1 - A2B2) of the "
                       "target's log P per template, the gap the two main effects leave unexplained",
               compute="albert_audit.metrics.interaction:interaction", value="logprob", min_groups=4,
               rows="target x pair of levels of each factor (crossed sets)", margin=LOG_RATIO_MARGIN),
    # standard benchmarks (--benchmark NAME=PATH; docs/benchmarks.md): rows from albert_audit.benchmarks
    MetricSpec("crows_pairs", "CrowS-Pairs score", "CrowS-Pairs", "% pairs", signed=False, compare_deltas=False,
               summary="share of CrowS-Pairs pairs whose more-stereotyping sentence has the higher pseudo-log-"
                       "likelihood (Nangia et al. 2020; ideal 50)",
               compute="albert_audit.benchmarks.crows_pairs:findings", rows="bias type or all",
               from_items=False),
    MetricSpec("aul", "AUL score", "AUL", "% pairs", signed=False, compare_deltas=False,
               summary="the same share with all-unmasked likelihoods (Kaneko & Bollegala 2022; ideal 50)",
               compute="albert_audit.benchmarks.aul:findings", rows="bias type or all", from_items=False),
    MetricSpec("aula", "AULA score", "AULA", "% pairs", signed=False, compare_deltas=False,
               summary="the same share with attention-weighted all-unmasked likelihoods (Kaneko & Bollegala "
                       "2022; ideal 50)",
               compute="albert_audit.benchmarks.aul:findings", rows="bias type or all", from_items=False),
    MetricSpec("stereoset_ss", "StereoSet stereotype score (SS)", "StereoSet SS", "score", signed=False,
               compare_deltas=False, summary="StereoSet intrasentence SS (Nadeem et al. 2021; ideal 50)",
               compute="albert_audit.benchmarks.stereoset:findings", rows="domain or all", from_items=False),
    MetricSpec("stereoset_lms", "StereoSet language-model score (LMS)", "StereoSet LMS", "score", signed=False,
               compare_deltas=False, summary="StereoSet intrasentence LMS (Nadeem et al. 2021; ideal 100)",
               compute="albert_audit.benchmarks.stereoset:findings", rows="domain or all", from_items=False),
    MetricSpec("stereoset_icat", "StereoSet idealized CAT score (ICAT)", "StereoSet ICAT", "score", signed=False,
               compare_deltas=False, summary="StereoSet intrasentence ICAT = LMS x min(SS, 100 - SS) / 50 "
                                             "(Nadeem et al. 2021; ideal 100)",
               compute="albert_audit.benchmarks.stereoset:findings", rows="domain or all", from_items=False),
    MetricSpec("seat", "SEAT effect size", "SEAT d", "d", signed=False, compare_deltas=False,
               summary="WEAT effect size of sentence encodings per SEAT test (May et al. 2019; ideal 0)",
               compute="albert_audit.benchmarks.seat:findings", rows="SEAT test, and all (mean |d|)",
               from_items=False),
    *(MetricSpec(f"honest_k{k}", f"HONEST@{k}", f"HONEST@{k}", "% fills", signed=False, compare_deltas=False,
                 summary=f"share of hurtful (HurtLex) words among the top-{k} fills of the HONEST templates "
                         "(Nozza et al. 2021; ideal 0)",
                 compute="albert_audit.benchmarks.honest:findings", rows="identity category or all",
                 from_items=False)
      for k in (1, 5, 10, 20)),
)
"""Every metric, in the order its rows are sorted within a probe set."""

_BY_ID = {spec.id: spec for spec in METRICS}


def metric(metric_id: str) -> MetricSpec:
    """The spec of a registered metric (KeyError for an unknown id)."""
    return _BY_ID[metric_id]


def metric_ids() -> tuple[str, ...]:
    """Registered metric ids computed from the items, in row order (benchmark metrics excluded)."""
    return tuple(spec.id for spec in METRICS if spec.from_items)


def benchmark_ids() -> tuple[str, ...]:
    """Ids of the standard benchmarks' metrics (``from_items`` False), in registry order."""
    return tuple(spec.id for spec in METRICS if not spec.from_items)


def signed_ids() -> tuple[str, ...]:
    """Ids of the item metrics whose effect has a sign."""
    return tuple(spec.id for spec in METRICS if spec.signed and spec.from_items)


def compared_ids() -> tuple[str, ...]:
    """Ids of the item metrics `compare` reports deltas for."""
    return tuple(spec.id for spec in METRICS if spec.compare_deltas and spec.from_items)


def label(metric_id: str, *, short: bool = False) -> str:
    """A metric's label for people; an unknown id is shown as itself."""
    spec = _BY_ID.get(metric_id)
    if spec is None:
        return metric_id
    return spec.short_label if short else spec.label


def margin_of(metric_id: str, override: float | None = None) -> float | None:
    """The practical margin of a metric's effect: ``override`` for a log-ratio metric, else its default.

    ``override`` (the run's ``margin``) applies to every metric with a default margin in nats (the log-ratio
    gaps, the group shift and the gaps beyond it, the bias score's RMS gap); the others (JSD bits, DisCo
    counts) keep their own default (None: no verdict).
    """
    spec = metric(metric_id)
    if override is not None and spec.margin is not None and spec.unit == "nats":
        return float(override)
    return spec.margin


def delta_margin_of(metric_id: str, override: float | None = None) -> float | None:
    """The practical margin of a compare delta: ``override`` when given (compared metrics), else the default."""
    spec = metric(metric_id)
    if spec.delta_margin is None:
        return None
    return float(override) if override is not None else spec.delta_margin


def compute_function(metric_id: str) -> Callable[..., list[dict[str, Any]]]:
    """The function that makes a metric's findings rows (imported on first use)."""
    module, _, name = metric(metric_id).compute.partition(":")
    return getattr(importlib.import_module(module), name)


def docs_table() -> str:
    """The metric list of docs/metrics.md, as a markdown table (a test checks that the docs contain it)."""
    lines = ["| metric | rows: one per | unit | signed | compare deltas | margin | delta margin | what it measures |",
             "|---|---|---|---|---|---|---|---|"]
    for spec in (s for s in METRICS if s.from_items):
        lines.append(f"| `{spec.id}` | {spec.rows} | {spec.unit or '(p only)'} | {'yes' if spec.signed else 'no'} "
                     f"| {'yes' if spec.compare_deltas else 'no'} | {_margin_text(spec.margin)} "
                     f"| {_margin_text(spec.delta_margin)} | {spec.summary} |")
    return "\n".join(lines)


def _margin_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f} (log {math.exp(value):.4g})"
