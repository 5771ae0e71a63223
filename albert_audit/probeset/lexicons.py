"""Lexicons: shared word-list files (``lexicons/NAME.yaml``) that probe sets draw groups and targets from."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import yaml

from albert_audit.errors import AuditError, quoted
from albert_audit.errors import shown as shown_text
from albert_audit.library import shipped_probes_dir
from albert_audit.probeset import fields as schema
from albert_audit.probeset.model import NAME_RE, Group, Lexicon
from albert_audit.probeset.nodes import Problems, line_of, shown_path
from albert_audit.probeset.references import build_references
from albert_audit.probeset.sections import GroupLines, build_groups, build_polysemous
from albert_audit.probeset.yaml_file import check_aliases, check_tree, compose, read_text

LEXICON_FOLDER = "lexicons"
"""Lexicons are looked up in ``<folder of the probe file>/lexicons/NAME.yaml``, then in the shipped library's."""


def find_lexicon(name: str, probe_dir: Path | None = None) -> Path | None:
    """The file of lexicon ``name``: ``<probe_dir>/lexicons/NAME.yaml``, else the shipped library's."""
    folders = ([probe_dir / LEXICON_FOLDER] if probe_dir is not None else []) + [
        shipped_probes_dir() / LEXICON_FOLDER
    ]
    for folder in folders:
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def load_lexicon(path: str | PathLike[str]) -> Lexicon:
    """Load and validate one lexicon file; problems are raised as one AuditError (``PATH:LINE: problem``)."""
    shown = shown_path(path)
    text, sha = read_text(Path(path), shown)
    root = compose(text, shown)
    problems = Problems(shown)
    if root is None or not isinstance(root, yaml.MappingNode):
        raise AuditError(f"{shown}:1: a lexicon file is a mapping (lexicon:, description:, source:, licence:, "
                         "groups:)")
    if check_tree(root, problems):
        check_aliases(text, problems)
        problems.raise_if_any()
    fields = schema.read_fields(root, schema.LEXICON, problems)
    words = schema.read_values(fields, schema.LEXICON, problems)
    if words["lexicon"] and words["lexicon"] != Path(path).stem:
        problems.error(fields["lexicon"][1], f"lexicon name {quoted(words['lexicon'])} must equal the file name "
                                             f"{quoted(Path(path).stem)}")
    groups = build_groups(fields.get("groups"), problems)
    all_words = [t for g, _ in groups for t in g.terms]
    refs = build_references(fields.get("reference"), problems, {"word": all_words}, lexicon=True)
    poly = build_polysemous(fields.get("polysemous"), problems, all_words)
    problems.raise_if_any()
    return Lexicon(words["lexicon"], words["description"], words["source"], words["licence"],
                   tuple(g for g, _ in groups), tuple(refs), tuple(poly.items()), str(path), sha)


_LEXICON_NAME_MAX = 100


def _lexicon_names(entry: tuple[yaml.Node, yaml.Node], problems: Problems) -> list[tuple[str, yaml.Node]]:
    key_node, node = entry
    nodes = list(node.value) if isinstance(node, yaml.SequenceNode) else [node]
    names = []
    for n in nodes:
        name = problems.word(n, f"{key_node.value} (a lexicon name)")
        if name is None:
            continue
        if not NAME_RE.fullmatch(name) or len(name) > _LEXICON_NAME_MAX:
            # Lexicon names become file names: never a path ('../x'), never longer than a file name may be.
            problems.error(n, f"lexicon name {quoted(name)} must match [a-z0-9_]+ (at most {_LEXICON_NAME_MAX} "
                              "characters): it names lexicons/NAME.yaml")
            continue
        names.append((name, n))
    if not names and not problems.errors:
        problems.error(node, f"{key_node.value} names no lexicon")
    return names


def use_lexicons(
    entry: tuple[yaml.Node, yaml.Node], probe_dir: Path, problems: Problems
) -> list[Lexicon]:
    """Load the lexicons named by ``groups_from`` / ``targets_from`` (their own problems are kept)."""
    out = []
    for name, node in _lexicon_names(entry, problems):
        path = find_lexicon(name, probe_dir)
        if path is None:
            problems.error(node, f"no lexicon {quoted(name)} (looked for {LEXICON_FOLDER}/{shown_text(name)}.yaml "
                                 "beside this file and in the shipped library)")
            continue
        try:
            out.append(load_lexicon(path))
        except AuditError as exc:
            problems.foreign.append(str(exc))
    return out


def _merge_lexicon_groups(
    lexicons: list[Lexicon], node: yaml.Node, problems: Problems
) -> list[tuple[str, list[str]]]:
    """Groups of several lexicons, concatenated per group name; every lexicon must name the same groups."""
    if not lexicons:
        return []
    order = [g.name for g in lexicons[0].groups]
    merged: dict[str, list[str]] = {g: [] for g in order}
    for lex in lexicons:
        names = [g.name for g in lex.groups]
        if names != order:
            problems.error(node, f"lexicon {quoted(lex.name)} has groups {', '.join(names)} but "
                                 f"{quoted(lexicons[0].name)} has {', '.join(order)}; combined lexicons need the same "
                                 "groups in the same order")
            return []
        for g in lex.groups:
            merged[g.name].extend(g.terms)
    return list(merged.items())


def groups_from_lexicons(lexicons: list[Lexicon], key_node: yaml.Node, problems: Problems) -> GroupLines:
    """Every group of the lexicons (concatenated per group name) as a group of the probe set; a word a group
    gets twice is an error at the ``groups_from:`` key."""
    line = line_of(key_node)
    groups: GroupLines = []
    for name, words in _merge_lexicon_groups(lexicons, key_node, problems):
        dups = sorted({w for w in words if words.count(w) > 1})
        if dups:
            problems.error(key_node, f"group {quoted(name)} gets {', '.join(map(quoted, dups))} twice from the "
                                     "lexicons")
        groups.append((Group(name, tuple(dict.fromkeys(words))), {w: line for w in words}))
    return groups


def targets_from_lexicons(
    lexicons: list[Lexicon], key_node: yaml.Node, problems: Problems
) -> tuple[tuple[str, ...], dict[str, str]]:
    """Every word of the lexicons' groups becomes a target whose category is its group's name."""
    categories: dict[str, str] = {}
    for name, words in _merge_lexicon_groups(lexicons, key_node, problems):
        for word in words:
            if any(ch.isspace() for ch in word):
                problems.error(key_node, f"target {quoted(word)} (from the lexicons) must be a single word")
            elif word in categories:
                problems.error(key_node, f"target {quoted(word)} comes twice from the lexicons")
            else:
                categories[word] = name
    return tuple(categories), categories
