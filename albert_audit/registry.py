"""The metric registry: one declaration per metric, read by findings, compare, the reports and the docs.

A metric declares its id, whether its effect has a sign (group a minus group b), its unit, its labels, its
default practical margin, whether `compare` reports deltas for it, and its position in the row order. The
compute functions that make its findings rows are attached by :mod:`albert_audit.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass


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


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("logprob_gap", "target log-prob gap", "log-prob gap", "nats", True, True,
               "log P(target | group a's terms) - log P(target | group b's terms), template means over terms"),
    MetricSpec("association_gap", "association gap (prior-normalised)", "association gap", "nats", True, True,
               "the log-prob gap of the prior-normalised association (Kurita et al. 2019)"),
    MetricSpec("omnibus", "omnibus test", "omnibus", "", False, False,
               "whether a target's association differs among more than two groups (permutation test)"),
    MetricSpec("fill_divergence", "fill-distribution divergence", "fill JSD", "JSD bits", False, False,
               "Jensen-Shannon divergence of the groups' top-k fill distributions"),
    MetricSpec("disco", "DisCo-style count", "DisCo", "count", False, False,
               "fills in the terms' top-3 whose frequency differs between groups (Webster et al. 2020)"),
    MetricSpec("bias_score", "probe-set bias score", "bias score", "nats", False, True,
               "mean absolute association gap over a probe set's targets and group pairs"),
)
"""Every metric, in the order its rows are sorted within a probe set."""

_BY_ID = {spec.id: spec for spec in METRICS}


def metric(metric_id: str) -> MetricSpec:
    """The spec of a registered metric (KeyError for an unknown id)."""
    return _BY_ID[metric_id]


def metric_ids() -> tuple[str, ...]:
    """Registered metric ids in row order."""
    return tuple(spec.id for spec in METRICS)


def signed_ids() -> tuple[str, ...]:
    """Ids of the metrics whose effect has a sign."""
    return tuple(spec.id for spec in METRICS if spec.signed)


def compared_ids() -> tuple[str, ...]:
    """Ids of the metrics `compare` reports deltas for."""
    return tuple(spec.id for spec in METRICS if spec.compare_deltas)


def label(metric_id: str, *, short: bool = False) -> str:
    """A metric's label for people; an unknown id is shown as itself."""
    spec = _BY_ID.get(metric_id)
    if spec is None:
        return metric_id
    return spec.short_label if short else spec.label
