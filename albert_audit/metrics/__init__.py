"""Findings from a run's score tables: one module per metric family, each metric a registry entry.

``compute_findings`` (findings.py) runs every metric of :mod:`albert_audit.registry`; ``core`` holds what
the metric modules share; ``gaps``, ``shift``, ``omnibus``, ``fills``, ``bias_score``, ``reference_alignment`` and
``interaction`` make the rows; ``set_summary``
condenses a findings table for the report. docs/metrics.md documents every metric.
"""

from __future__ import annotations

from albert_audit import registry
from albert_audit.metrics.core import FINDINGS_COLUMNS
from albert_audit.metrics.findings import UNITS, compute_findings
from albert_audit.metrics.set_summary import summarise_bias

METRICS = registry.metric_ids()
"""Metric ids, in the order rows are sorted within a probe set."""
SIGNED_METRICS = registry.signed_ids()
"""Metrics whose effect has a sign (group a minus group b); only these get a direction other than none."""

__all__ = ["FINDINGS_COLUMNS", "METRICS", "SIGNED_METRICS", "UNITS", "compute_findings", "summarise_bias"]
