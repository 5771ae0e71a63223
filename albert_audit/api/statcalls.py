"""Calls into the statistics with the options a run or comparison was given.

``margin`` (findings) and ``delta_margin`` (deltas) are passed only when set, and only to a statistics module
that takes them; asking for a margin that the installed statistics cannot honour is an AuditError, never
silently ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pandas as pd

from albert_audit.api.options import StatsOptions
from albert_audit.errors import AuditError


def _optional(func: Callable[..., Any], flag: str, name: str, value: float | None) -> dict[str, Any]:
    if value is None:
        return {}
    if name not in inspect.signature(func).parameters:
        raise AuditError(f"{flag} is not supported by this version's statistics ({func.__module__}."
                         f"{func.__name__} has no {name!r} parameter); leave {flag} out")
    return {name: float(value)}


def compute_findings(items: pd.DataFrame, targets: pd.DataFrame, fills: pd.DataFrame,
                     stats: StatsOptions, **more: Any) -> pd.DataFrame:
    """The findings table of score tables with ``stats`` (seed, alpha, n_resamples, unit, margin); ``more``:
    further keywords of ``metrics.compute_findings`` (``tags``)."""
    from albert_audit import metrics

    func = metrics.compute_findings
    return func(items, targets, fills, seed=stats.seed, alpha=stats.alpha, n_resamples=stats.n_resamples,
                unit=stats.unit, **_optional(func, "--margin", "margin", stats.margin), **more)


def compute_deltas(base: Any, candidates: list[Any], stats: StatsOptions, *,
                   delta_margin: float | None) -> pd.DataFrame:
    """The deltas table of ``candidates`` against ``base`` (albert_audit.compare.RunScores)."""
    from albert_audit import compare

    func = compare.compute_deltas
    return func(base, candidates, seed=stats.seed, alpha=stats.alpha, n_resamples=stats.n_resamples,
                **_optional(func, "--delta-margin", "delta_margin", delta_margin))
