"""Checks of a whole probe set: its size (findings rows it would give) and the scope its gaps can claim.

- Size: the validator warns (``PATH:LINE`` at the ``groups:`` key) when the estimated findings rows exceed the
  documented limit :data:`FINDINGS_ROWS_LIMIT`; `probes validate --max-findings` and `run` apply another limit
  when one is asked for (:func:`size_warnings`).
- Scope (`probes validate`): the findings' crossed analysis (:mod:`albert_audit.inference.crossed`) generalises a
  gap to new terms of the groups (scope ``group``) only with at least ``MIN_TERMS`` terms in each group and
  ``MIN_TEMPLATES`` templates; with fewer, inference runs over templates only and the claim is about the set's
  own terms (scope ``terms``): :func:`scope_warnings`.
"""

from __future__ import annotations

from collections.abc import Callable

import yaml

from albert_audit.errors import shown
from albert_audit.inference.crossed import MIN_TEMPLATES, MIN_TERMS
from albert_audit.probeset.model import ProbeSet
from albert_audit.probeset.nodes import Problems
from albert_audit.registry import METRICS

FINDINGS_ROWS_LIMIT = 50_000
"""Documented size guard: a probe set whose estimated findings rows exceed this gets a warning."""


# Findings rows of one metric for (targets, group pairs), by the registry's ``rows`` ("one row per ...").
ROWS_PER_KIND: dict[str, Callable[[int, int], int]] = {
    "target x group pair": lambda targets, pairs: targets * pairs,
    "group pair": lambda targets, pairs: pairs,
    "target (probe sets with > 2 groups)": lambda targets, pairs: targets,
    "probe set": lambda targets, pairs: 1,
    "probe set with reference shares": lambda targets, pairs: 1,  # an upper bound: only sets with references
    # crossed sets only (``factors``), which the estimate does not see; at most targets x pairs there
    "target x pair of levels of each factor (crossed sets)": lambda targets, pairs: 0,
}


def estimate_findings_rows(n_groups: int, n_targets: int) -> int:
    """About how many findings rows a probe set gives: summed over the registered metrics (a metric whose
    ``rows`` is not known here is counted as one row per target and group pair, the most any has)."""
    pairs = n_groups * (n_groups - 1) // 2
    total = 0
    for spec in METRICS:
        if spec.from_items and n_groups >= spec.min_groups:  # benchmark metrics have no rows per probe set
            total += ROWS_PER_KIND.get(spec.rows, ROWS_PER_KIND["target x group pair"])(n_targets, pairs)
    return total


def warn_size(n_groups: int, n_targets: int, node: yaml.Node, problems: Problems) -> None:
    """The size guard: warn when the estimated findings rows exceed :data:`FINDINGS_ROWS_LIMIT`."""
    rows = estimate_findings_rows(n_groups, n_targets)
    if rows > FINDINGS_ROWS_LIMIT:
        pairs = n_groups * (n_groups - 1) // 2
        problems.warn(node, f"about {rows:,} findings rows ({n_groups} groups = {pairs:,} group pairs, "
                            f"{n_targets} targets), over the documented limit of {FINDINGS_ROWS_LIMIT:,} per probe "
                            "set: the run is slow and its report unreadable; narrow it: compare fewer groups per "
                            "file (split them over several probe sets), use fewer targets, and run the set alone "
                            "(--probes FILE)")


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


def scope_warnings(probe_sets: list[ProbeSet]) -> list[str]:
    """One warning per probe set with two or more groups and a slot whose gaps can only get scope ``terms``
    (a group with fewer than ``MIN_TERMS`` terms, or fewer than ``MIN_TEMPLATES`` templates with a slot)."""
    warnings = []
    for probe_set in probe_sets:
        slotted = sum(1 for t in probe_set.templates if t.slot is not None)
        if len(probe_set.groups) < 2 or not slotted:
            continue
        few = [g for g in probe_set.groups if len(g.terms) < MIN_TERMS]
        if not few and slotted >= MIN_TEMPLATES:
            continue
        why = []
        if few:
            listed = ", ".join(f"{g.name}: {len(g.terms)}" for g in few[:4]) + (", ..." if len(few) > 4 else "")
            why.append(f"{len(few)} of {len(probe_set.groups)} groups have fewer than {MIN_TERMS} terms ({listed})")
        if slotted < MIN_TEMPLATES:
            why.append(f"{slotted} template{'s' if slotted != 1 else ''} with a slot")
        warnings.append(
            f"{shown(probe_set.path)}: can only make 'terms' claims: {'; '.join(why)} (a 'group' claim, one that "
            f"generalises to new terms, needs >= {MIN_TERMS} terms in every group and >= {MIN_TEMPLATES} "
            "templates); its gaps are tested over templates only and speak about these terms, not the groups")
    return warnings
