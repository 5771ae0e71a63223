"""Calls into the statistics with the options a run or comparison was given (one place maps StatsOptions
onto the statistics' keyword arguments)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from albert_audit.api.options import StatsOptions


def compute_findings(items: pd.DataFrame, targets: pd.DataFrame, fills: pd.DataFrame,
                     stats: StatsOptions, **more: Any) -> pd.DataFrame:
    """The findings table of score tables with ``stats`` (seed, alpha, n_resamples, unit, margin); ``more``:
    further keywords of ``metrics.compute_findings`` (``tags``)."""
    from albert_audit import metrics

    return metrics.compute_findings(items, targets, fills, seed=stats.seed, alpha=stats.alpha,
                                    n_resamples=stats.n_resamples, unit=stats.unit, margin=stats.margin, **more)


def compute_deltas(base: Any, candidates: list[Any], stats: StatsOptions, *,
                   delta_margin: float | None) -> pd.DataFrame:
    """The deltas table of ``candidates`` against ``base`` (albert_audit.model_deltas.RunScores)."""
    from albert_audit import model_deltas

    return model_deltas.compute_deltas(base, candidates, seed=stats.seed, alpha=stats.alpha,
                                  n_resamples=stats.n_resamples, delta_margin=delta_margin)
