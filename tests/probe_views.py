"""Views of a ProbeSet that only the tests read (test support, not part of the installed package): the run
reads these facts from the items and targets tables (albert_audit.probeset.expand), not from these."""

from __future__ import annotations

from albert_audit.probeset.model import DEFINITIONAL, ProbeSet, Reference


def bias_targets(probe_set: ProbeSet) -> tuple[str, ...]:
    """The targets that enter bias scores: all but the ``definitional`` ones (positive controls)."""
    return tuple(t for t in probe_set.targets if probe_set.target_category(t) != DEFINITIONAL)


def control_targets(probe_set: ProbeSet) -> tuple[str, ...]:
    """The ``definitional`` targets: words whose meaning carries the group, expected to differ."""
    return tuple(t for t in probe_set.targets if probe_set.target_category(t) == DEFINITIONAL)


def template_tags(probe_set: ProbeSet) -> dict[int, str]:
    """template_id -> tag (``neutral`` or ``stereotype_eliciting``)."""
    return {t.template_id: t.tag for t in probe_set.templates}


def reference(probe_set: ProbeSet, name: str = "") -> Reference | None:
    """The reference named ``name`` (the first one when ``name`` is empty), or None."""
    for ref in probe_set.references:
        if not name or ref.name == name:
            return ref
    return None


def target_rows(probe_set: ProbeSet) -> list[dict[str, object]]:
    """One dict per target: probe_set, target, category, control (definitional), polysemous (the other
    sense or ""), and ``reference_<name>`` shares of the target-keyed references (NaN when absent)."""
    other_sense = dict(probe_set.polysemous)
    refs = [r for r in probe_set.references if r.keyed_by == "target"]
    rows: list[dict[str, object]] = []
    for target in probe_set.targets:
        category = probe_set.target_category(target)
        row: dict[str, object] = {"probe_set": probe_set.name, "target": target, "category": category,
                                  "control": category == DEFINITIONAL, "polysemous": other_sense.get(target, "")}
        for ref in refs:
            row[f"reference_{ref.name or 'share'}"] = ref.as_dict().get(target, float("nan"))
        rows.append(row)
    return rows


def template_rows(probe_set: ProbeSet) -> list[dict[str, object]]:
    """One dict per template: probe_set, template_id, template, tag."""
    return [{"probe_set": probe_set.name, "template_id": t.template_id, "template": t.text, "tag": t.tag}
            for t in probe_set.templates]
