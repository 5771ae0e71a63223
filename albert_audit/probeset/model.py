"""The probe-set model: frozen dataclasses of a validated probe set and its parts, and the format's constants."""

from __future__ import annotations

import re
from dataclasses import dataclass

MASK_PLACEHOLDER = "[MASK]"
"""How probe files write the mask; the engine replaces it with the model's own mask token."""

SCHEMA_VERSION = 1
MIN_TEMPLATES = 8
"""Below this many templates a probe set gets a warning (templates are the statistical unit)."""
TEMPLATE_TAGS = ("neutral", "stereotype_eliciting")
"""Tags of templates (``templates:`` as a mapping tag -> list); a plain list is all ``neutral``."""
DEFINITIONAL = "definitional"
"""Target category of words that carry the group in their meaning (waitress, actress, handsome): positive
controls, kept out of bias scores."""
CONVENTIONAL_TARGET_CATEGORIES = (
    "positive", "negative", "stereotype_linked", "occupation", DEFINITIONAL, "female", "male"
)
N_FACTORS = 2
"""``factors:`` crosses exactly two factors (group names ``<level of the first>_<level of the second>``)."""
NAME_RE = re.compile(r"[a-z0-9_]+")
"""What a name in a probe file matches: probe sets, lexicons, references, factors, target categories."""
SLOT_RE = re.compile(r"<([^<>\n]*)>")
"""A slot in a template: ``<group>`` or inline alternatives ``<a/b>``."""


@dataclass(frozen=True)
class Group:
    """A named group and the terms that stand for it (in file order)."""

    name: str
    terms: tuple[str, ...]


@dataclass(frozen=True)
class Template:
    """One template of a probe set.

    ``text`` is the template as written in the file; ``slot`` is ``None`` (no slot), ``"group"`` (the
    ``<group>`` slot, filled with every term of every group) or ``"inline"`` (``<a/b/...>``: the i-th
    alternative belongs to the i-th group, listed in ``alternatives``).
    """

    template_id: int
    text: str
    line: int
    slot: str | None
    alternatives: tuple[str, ...] = ()
    tag: str = "neutral"

    def split_at_slot(self) -> tuple[str, str]:
        """Return the text before and after the slot (``(text, "")`` for a template without a slot)."""
        if self.slot is None:
            return self.text, ""
        match = SLOT_RE.search(self.text)
        if match is None:  # pragma: no cover - guaranteed by validation
            raise ValueError(f"template {self.text!r} has no slot")
        return self.text[: match.start()], self.text[match.end() :]


@dataclass(frozen=True)
class Reference:
    """Reference statistics for the words of a probe set: ``values`` maps a target (``keyed_by="target"``) or
    a group term (``keyed_by="term"``) to a share in (0, 1), e.g. the share of women in an occupation."""

    name: str
    source: str
    licence: str
    measure: str
    keyed_by: str
    values: tuple[tuple[str, float], ...]

    def as_dict(self) -> dict[str, float]:
        """The values as a dict (word -> share)."""
        return dict(self.values)


@dataclass(frozen=True)
class ProbeSet:
    """A validated probe set. ``warnings`` are ``PATH:LINE: message`` strings (not fatal)."""

    name: str
    description: str
    category: str
    source: str
    groups: tuple[Group, ...]
    templates: tuple[Template, ...]
    targets: tuple[str, ...]
    pair_terms_by_position: bool
    path: str
    sha256: str
    schema_version: int
    warnings: tuple[str, ...]
    target_categories: tuple[tuple[str, str], ...] = ()
    references: tuple[Reference, ...] = ()
    polysemous: tuple[tuple[str, str], ...] = ()
    lexicons: tuple[tuple[str, str], ...] = ()
    """(lexicon name, its source line) for every lexicon the set draws groups or targets from."""
    factors: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(factor, its levels) of a crossed set (``factors:``): each group is one combination of levels."""

    def group_levels(self) -> dict[str, tuple[str, ...]]:
        """group -> its level of each factor, in factor order (empty when the set declares no factors)."""
        if not self.factors:
            return {}
        (_, first), (_, second) = self.factors
        return {f"{a}_{b}": (a, b) for a in first for b in second}

    def group_factors(self, group: str) -> str:
        """The items column ``group_factors`` of a group: ``"race=black;gender=female"`` ("" without factors)."""
        levels = self.group_levels().get(group)
        if levels is None:
            return ""
        return ";".join(f"{name}={level}" for (name, _), level in zip(self.factors, levels, strict=True))

    @property
    def group_names(self) -> tuple[str, ...]:
        """The group names in file order."""
        return tuple(g.name for g in self.groups)

    def target_category(self, target: str) -> str:
        """The category a target is listed under ("" when ``targets:`` is a plain list)."""
        return dict(self.target_categories).get(target, "")


@dataclass(frozen=True)
class Lexicon:
    """A shared word list file (``lexicons/NAME.yaml``): named groups of words, their source and licence."""

    name: str
    description: str
    source: str
    licence: str
    groups: tuple[Group, ...]
    references: tuple[Reference, ...]
    polysemous: tuple[tuple[str, str], ...]
    path: str
    sha256: str
