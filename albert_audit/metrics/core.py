"""What every metric module shares: the run's settings, one probe set's scores, and the findings row."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from albert_audit import units
from albert_audit.contract import FINDINGS

FINDINGS_COLUMNS = FINDINGS.names
"""The columns of findings.csv, in order (albert_audit.contract.FINDINGS)."""


@dataclass(frozen=True)
class Config:
    """The settings of one findings computation."""

    seed: int
    alpha: float
    n_resamples: int
    unit: str
    """The unit of the paired target comparisons (one of ``units.UNITS``)."""
    margin: float | None = None
    """The practical margin of the signed log-ratio gaps in nats (None: the registry's default)."""

    @property
    def confidence(self) -> float:
        """The two-sided interval level, 1 - alpha."""
        return 1.0 - self.alpha


@dataclass
class ProbeSetScores:
    """One probe set's scores, as the metrics read them.

    ``targets``: one row per (item, target), columns ``units.SCORE_COLUMNS`` plus item_id; ``fills``: one row
    per (item, rank) with item_id, rank, token (and token_id when known), prob, template_id, group. Only
    items with a group slot. Derived views (unit cubes, fill tables) are computed once and shared.
    """

    name: str
    groups: list[str]
    targets: pd.DataFrame
    fills: pd.DataFrame
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per probe set and key."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def cube(self, unit: str = "template") -> units.UnitCube:
        """The study's unit cells of this probe set (:func:`albert_audit.units.unit_cube`)."""
        return self.cached(f"cube/{unit}", lambda: units.unit_cube(self.targets, self.groups, unit))


def row(probe_set: str, metric: str, **fields: Any) -> dict[str, Any]:
    """A findings row with every column: defaults (no effect, no test) overridden by ``fields``."""
    out: dict[str, Any] = {
        "probe_set": probe_set,
        "metric": metric,
        "target": "",
        "group_a": "",
        "group_b": "",
        "n_units": 0,
        "effect": math.nan,
        "effect_unit": "",
        "ci_low": math.nan,
        "ci_high": math.nan,
        "p_value": math.nan,
        "q_value": math.nan,
        "significant": False,
        "direction": "none",
        "method": "",
        "scope": "",
        "verdict": "",
        "margin": math.nan,
        "p_material": math.nan,
        "q_material": math.nan,
        "p_equivalence": math.nan,
        "ratio": math.nan,
        "ratio_low": math.nan,
        "ratio_high": math.nan,
        "share_a_gt_b": math.nan,
        "pi_low": math.nan,
        "pi_high": math.nan,
    }
    out.update(fields)
    return out
