"""Probe-set files (YAML, schema_version 1) -> validated, frozen :class:`~albert_audit.probeset.model.ProbeSet`
objects.

Loading is strict and safe: the file is composed into a YAML node tree with ``yaml.SafeLoader`` (nothing in
the file is ever constructed or executed) and every value is read from the nodes, so each problem can be
reported as ``PATH:LINE: problem``. All problems of a file are collected and raised together as one
:class:`~albert_audit.errors.AuditError` (one line per problem). The build runs in steps: the top-level keys
(:mod:`.fields`), the words (groups, templates and targets, written out or drawn from lexicons), what the file
says about them (references, polysemous words, factors), the checks of the design as a whole, then the set.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import yaml

from albert_audit.errors import AuditError, quoted
from albert_audit.errors import shown as shown_text
from albert_audit.probeset import fields as schema
from albert_audit.probeset.checks import warn_size
from albert_audit.probeset.lexicons import groups_from_lexicons, targets_from_lexicons, use_lexicons
from albert_audit.probeset.model import MIN_TEMPLATES, Lexicon, ProbeSet, Reference, Template
from albert_audit.probeset.nodes import Problems, describe, line_of, shown_path
from albert_audit.probeset.references import build_references, rekey
from albert_audit.probeset.sections import (
    GroupLines,
    build_factors,
    build_groups,
    build_polysemous,
    build_targets,
    warn_shared_terms,
)
from albert_audit.probeset.templates import build_templates, check_articles
from albert_audit.probeset.yaml_file import check_aliases, check_tree, compose, read_text


@dataclass
class _Words:
    """The groups, templates and targets of a file, and the lexicons and references they came with."""

    groups: GroupLines
    templates: list[Template]
    targets: tuple[str, ...]
    categories: dict[str, str]
    used: list[Lexicon] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)

    @property
    def terms(self) -> list[str]:
        """Every group term, then every inline alternative (in template order)."""
        return [t for g, _ in self.groups for t in g.terms] + [a for t in self.templates for a in t.alternatives]


def _words(fields: schema.Fields, path: str, problems: Problems) -> _Words:
    """Groups (``groups:`` or ``groups_from:``), templates and targets (``targets:`` or ``targets_from:``)."""
    probe_dir = Path(path).parent
    used: list[Lexicon] = []
    references: list[Reference] = []
    for plain, from_key in (("groups", "groups_from"), ("targets", "targets_from")):
        if plain in fields and from_key in fields:
            problems.error(fields[from_key][0], f"give either {plain} or {from_key}, not both")
    if "groups_from" in fields:
        key_node = fields["groups_from"][0]
        lexicons = use_lexicons(fields["groups_from"], probe_dir, problems)
        used += lexicons
        groups = groups_from_lexicons(lexicons, key_node, problems)
        references += [rekey(r, "term") for lex in lexicons for r in lex.references]
    else:
        groups = build_groups(fields.get("groups"), problems)
    templates, derived = build_templates(fields.get("templates"), groups, problems)
    if derived is not None:
        groups = derived
    if "targets_from" in fields:
        key_node = fields["targets_from"][0]
        lexicons = use_lexicons(fields["targets_from"], probe_dir, problems)
        used += lexicons
        targets, categories = targets_from_lexicons(lexicons, key_node, problems)
        references += [rekey(r, "target") for lex in lexicons for r in lex.references]
    else:
        targets, categories = build_targets(fields.get("targets"), problems)
    return _Words(groups, templates, targets, categories, used, references)


def _check_design(root: yaml.Node, fields: schema.Fields, words: _Words, pair: bool, problems: Problems) -> None:
    """Checks of the set as a whole: shared terms, paired groups of equal size, its size, enough templates."""
    groups, templates, targets = words.groups, words.templates, words.targets
    if groups:
        warn_shared_terms(groups, problems)
    if pair and "pair_terms_by_position" in fields:
        node = fields["pair_terms_by_position"][1]
        sizes = {len(g.terms) for g, _ in groups}
        if not groups:
            problems.error(node, "pair_terms_by_position is true but the file declares no groups")
        elif len(sizes) > 1:
            sizes_text = shown_text(", ".join(f"{g.name} has {len(g.terms)}" for g, _ in groups), 200)
            problems.error(node, f"pair_terms_by_position needs groups with equal numbers of terms: {sizes_text}")

    slotted = [t for t in templates if t.slot is not None]
    if slotted and groups:
        where = next((fields[k][0] for k in ("groups", "groups_from", "templates") if k in fields), root)
        warn_size(len(groups), len(targets), where, problems)
    if "templates" in fields and templates:
        templates_line = line_of(fields["templates"][0])
        if len(groups) == 1 and slotted:
            problems.warn(templates_line, "only one group: there is nothing to compare it with")
        if slotted and len(slotted) < MIN_TEMPLATES:
            n = len(slotted)
            problems.warn(
                templates_line,
                f"only {n} template{'s' if n != 1 else ''} with a slot: templates are the unit of "
                f"analysis, and the smallest p-value an exact two-sided sign-flip test over {n} can give "
                f"is 2/2^{n} = {2 / 2 ** n:.3g}; use at least {MIN_TEMPLATES}",
            )
        if groups and not slotted and "groups" in fields:
            problems.warn(fields["groups"][0], "groups are declared but no template has a slot")


def _build(root: yaml.Node, path: str, sha256: str, problems: Problems) -> ProbeSet | None:
    if not isinstance(root, yaml.MappingNode):
        problems.error(
            root,
            "the top level must be a mapping (name:, description:, templates:, ...), "
            f"found {describe(root)}",
        )
        return None
    fields = schema.read_fields(root, schema.PROBE_SET, problems)
    values = schema.read_values(fields, schema.PROBE_SET, problems)
    pair = values["pair_terms_by_position"]

    words = _words(fields, path, problems)
    groups, templates, targets, terms = words.groups, words.templates, words.targets, words.terms
    references = words.references + build_references(fields.get("reference"), problems,
                                                     {"target": targets, "term": terms})
    polysemous = {w: sense for lex in words.used for w, sense in lex.polysemous}
    polysemous.update(build_polysemous(fields.get("polysemous"), problems, list(dict.fromkeys(terms + list(targets)))))
    check_articles(templates, [t for g, _ in groups for t in g.terms], targets, problems)
    factors = build_factors(fields.get("factors"), [g.name for g, _ in groups], problems)
    _check_design(root, fields, words, pair, problems)

    if problems.errors or problems.foreign:
        return None
    if words.used:  # the set's identity covers the lexicons it draws from
        sha256 = hashlib.sha256((sha256 + "".join(lex.sha256 for lex in words.used)).encode()).hexdigest()
    return ProbeSet(
        name=values["name"],
        description=values["description"],
        category=values["category"],
        source=values["source"],
        groups=tuple(g for g, _ in groups),
        templates=tuple(templates),
        targets=targets,
        pair_terms_by_position=pair,
        path=path,
        sha256=sha256,
        schema_version=values["schema_version"],
        warnings=tuple(problems.format(problems.warnings)),
        target_categories=tuple((t, words.categories.get(t, "")) for t in targets if words.categories.get(t, "")),
        references=tuple(references),
        polysemous=tuple((w, polysemous[w]) for w in polysemous if w in set(terms) | set(targets)),
        lexicons=tuple(dict.fromkeys((lex.name, lex.source) for lex in words.used)),
        factors=factors,
    )


def load_probe_set(path: str | PathLike[str]) -> ProbeSet:
    """Load and validate one probe-set YAML file.

    Raises :class:`AuditError` whose message has one ``PATH:LINE: problem`` line per problem found.
    """
    shown = shown_path(path)
    text, sha = read_text(Path(path), shown)
    root = compose(text, shown)
    if root is None:
        raise AuditError(f"{shown}:1: file is empty (no YAML content); see docs for the probe-set format")
    problems = Problems(shown)
    if check_tree(root, problems):
        check_aliases(text, problems)
        problems.raise_if_any()  # never build from a tree that shares nodes
    probe_set = _build(root, str(path), sha, problems)
    problems.raise_if_any()
    assert probe_set is not None
    return probe_set


def _name_line(path: str) -> int:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return 1
    match = re.search(r"^name\s*:", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else 1


def load_probe_sets(paths: Sequence[str | PathLike[str]]) -> list[ProbeSet]:
    """Load several probe sets (in the given order); all files' problems are reported together.

    Also refuses two files that use the same probe-set ``name``.
    """
    loaded: list[ProbeSet] = []
    messages: list[str] = []
    for path in paths:
        try:
            loaded.append(load_probe_set(path))
        except AuditError as exc:
            messages.append(str(exc))
    by_name: dict[str, ProbeSet] = {}
    for probe_set in loaded:
        if probe_set.name in by_name:
            other = by_name[probe_set.name]
            messages.append(
                f"{shown_path(probe_set.path)}:{_name_line(probe_set.path)}: probe set name "
                f"{quoted(probe_set.name)} is also used by {shown_path(other.path)}:{_name_line(other.path)}; "
                "names must be unique within a run"
            )
        else:
            by_name[probe_set.name] = probe_set
    if messages:
        raise AuditError("\n".join(messages))
    return loaded
