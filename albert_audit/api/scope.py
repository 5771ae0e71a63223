"""What a probe set's log-ratio gaps can claim (`probes validate`): scope ``group`` or only ``terms``.

The findings' crossed analysis (:mod:`albert_audit.inference.crossed`) generalises a gap to new terms of the
groups (scope ``group``) only with at least ``MIN_TERMS`` terms in each group and ``MIN_TEMPLATES`` templates;
with fewer, inference runs over templates only and the claim is about the set's own terms (scope ``terms``).
"""

from __future__ import annotations

from albert_audit.errors import shown
from albert_audit.inference.crossed import MIN_TEMPLATES, MIN_TERMS
from albert_audit.probeset.spec import ProbeSet


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
