"""A size guard: warn before a probe set's comparisons make a findings table too large to read or compute.

The estimate is an upper bound per probe set: (registered metrics) x (targets, at least 1) x (group pairs).
"""

from __future__ import annotations

from albert_audit import registry
from albert_audit.errors import shown
from albert_audit.spec import ProbeSet

MAX_FINDINGS_ROWS = 50_000
"""Findings rows a probe set may produce before `probes validate` and `run` warn (README, "Size limits")."""


def estimated_rows(probe_set: ProbeSet) -> int:
    """An upper estimate of the findings rows of ``probe_set``: metrics x max(targets, 1) x group pairs."""
    n_groups = len(probe_set.groups)
    pairs = n_groups * (n_groups - 1) // 2
    return len(registry.metric_ids()) * max(len(probe_set.targets), 1) * max(pairs, 1)


def size_warnings(probe_sets: list[ProbeSet], limit: int | None = None) -> list[str]:
    """One warning per probe set whose estimated findings rows exceed ``limit`` (default MAX_FINDINGS_ROWS),
    saying how to narrow it."""
    limit = MAX_FINDINGS_ROWS if limit is None else limit
    warnings = []
    for probe_set in probe_sets:
        rows = estimated_rows(probe_set)
        if rows > limit:
            warnings.append(
                f"{shown(probe_set.path)}: about {rows:,} findings rows ({len(probe_set.groups)} groups, "
                f"{len(probe_set.targets)} targets, {len(registry.metric_ids())} metrics), over the {limit:,} "
                "limit; split the set into smaller ones (fewer groups per set: rows grow with the square of the "
                "groups) or fewer targets")
    return warnings
