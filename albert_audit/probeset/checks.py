"""The size guard's limit on the command line (`probes validate --max-findings`, `run`).

The estimate and the warning at the documented limit are the probe-set validator's
(:func:`albert_audit.probeset.spec.estimate_findings_rows`, a `warning: FILE:LINE` at the `groups:` key); this module
applies another limit when one is asked for.
"""

from __future__ import annotations

from albert_audit.errors import shown
from albert_audit.probeset.spec import FINDINGS_ROWS_LIMIT, ProbeSet, estimate_findings_rows

MAX_FINDINGS_ROWS = FINDINGS_ROWS_LIMIT
"""Findings rows a probe set may produce before `probes validate` and `run` warn (README, "Size limits")."""


def estimated_rows(probe_set: ProbeSet) -> int:
    """About how many findings rows ``probe_set`` gives (the validator's estimate)."""
    return estimate_findings_rows(len(probe_set.groups), len(probe_set.targets))


def size_warnings(probe_sets: list[ProbeSet], limit: int | None = None) -> list[str]:
    """One warning per probe set whose estimated findings rows exceed ``limit`` (default MAX_FINDINGS_ROWS),
    saying how to narrow it; none at the validator's own limit, where loading the set already warned."""
    limit = MAX_FINDINGS_ROWS if limit is None else limit
    if limit == FINDINGS_ROWS_LIMIT:
        return []
    warnings = []
    for probe_set in probe_sets:
        rows = estimated_rows(probe_set)
        if rows > limit:
            warnings.append(
                f"{shown(probe_set.path)}: about {rows:,} findings rows ({len(probe_set.groups)} groups, "
                f"{len(probe_set.targets)} targets), over the {limit:,} limit; split the set into smaller ones "
                "(fewer groups per set: rows grow with the square of the groups) or fewer targets")
    return warnings
