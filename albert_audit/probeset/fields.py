"""The top-level keys of a probe-set file and of a lexicon file, as declarative tables, and the one walker that
reads a file's top level with them: unknown keys (with a suggestion), missing required keys (at a misspelt key's
line when there is one) and the scalar values (schema version, name, texts, flags), each checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from albert_audit.errors import quoted
from albert_audit.probeset.model import NAME_RE, SCHEMA_VERSION
from albert_audit.probeset.nodes import BOOL, INT, Problems, closest, describe, is_str, suggest

Fields = dict[str, tuple[yaml.Node, yaml.Node]]
"""Top-level key -> (its key node, its value node), for the keys a file gives."""


@dataclass(frozen=True)
class Field:
    """One top-level key: its name, whether a file must give it, and how its value is read."""

    key: str
    required: bool = False
    value: str = "section"
    """``version`` (the integer :data:`SCHEMA_VERSION`), ``name`` (matches ``[a-z0-9_]+``), ``text`` (a non-empty
    string), ``bool`` (true or false), or ``section`` (read by the section's own builder)."""


@dataclass(frozen=True)
class Schema:
    """The top level of one kind of file."""

    fields: tuple[Field, ...]
    known_label: str
    """How the unknown-key message introduces the known keys."""
    keys_must_be_strings: bool
    """True: a key that is not a string gets its own message; False: it is an unknown key."""
    version_note: str = ""
    """Added to the schema_version message after the version."""

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields if f.required)


PROBE_SET = Schema(
    fields=(
        Field("schema_version", value="version"),
        Field("name", required=True, value="name"),
        Field("description", required=True, value="text"),
        Field("category", required=True, value="text"),
        Field("source", value="text"),
        Field("groups"),
        Field("groups_from"),
        Field("templates", required=True),
        Field("targets"),
        Field("targets_from"),
        Field("pair_terms_by_position", value="bool"),
        Field("reference"),
        Field("polysemous"),
        Field("factors"),
    ),
    known_label="known keys",
    keys_must_be_strings=True,
    version_note=" (the only version this albert-audit reads)",
)
LEXICON = Schema(
    fields=(
        Field("schema_version", value="version"),
        Field("lexicon", required=True, value="text"),
        Field("description", required=True, value="text"),
        Field("source", required=True, value="text"),
        Field("licence", required=True, value="text"),
        Field("groups", required=True),
        Field("reference"),
        Field("polysemous"),
    ),
    known_label="known lexicon keys",
    keys_must_be_strings=False,
)


def read_fields(root: yaml.MappingNode, schema: Schema, problems: Problems) -> Fields:
    """The keys of ``root`` that ``schema`` knows (the first of a repeated key; repeats are reported by the tree
    check); records every unknown key and every missing required key."""
    fields: Fields = {}
    typos: dict[str, yaml.Node] = {}
    known = schema.keys
    for key, value in root.value:
        if not is_str(key) and schema.keys_must_be_strings:
            problems.error(key, f"keys must be strings, found {describe(key)}")
            continue
        if not is_str(key) or key.value not in known:
            shown_key = key.value if isinstance(key, yaml.ScalarNode) else "?"
            problems.error(key, f"unknown key {quoted(shown_key)}{suggest(str(shown_key), known)}; "
                                f"{schema.known_label}: {', '.join(known)}")
            close = closest(str(shown_key), known)
            if close is not None:
                typos.setdefault(close, key)
            continue
        fields.setdefault(key.value, (key, value))
    report_missing(root, schema.required, fields, typos, problems)
    return fields


def report_missing(root: yaml.Node, required: tuple[str, ...], fields: Fields, typos: dict[str, yaml.Node],
                   problems: Problems) -> None:
    """Record each missing required key; one that a misspelt key probably meant is reported at that key's line
    (right after it), so the typo, not its consequence, is the first problem."""
    for key in required:
        if key in fields:
            continue
        if key in typos:
            problems.error(typos[key], f"missing required key {quoted(key)} (misspelt as "
                                       f"{quoted(typos[key].value)}?)")
        else:
            problems.error(root, f"missing required key {quoted(key)}")


def read_values(fields: Fields, schema: Schema, problems: Problems) -> dict[str, Any]:
    """The value of every scalar field of ``schema`` (all but sections), in table order, each checked; a key the
    file does not give (or gives wrongly) has its default: the schema version, "" or False."""
    values: dict[str, Any] = {}
    for field in schema.fields:
        node = fields[field.key][1] if field.key in fields else None
        if field.value == "version":
            values[field.key] = SCHEMA_VERSION
            if node is not None and not _is_version(node):
                problems.error(node, f"schema_version must be {SCHEMA_VERSION}{schema.version_note}, "
                                     f"found {describe(node)}")
        elif field.value == "name":
            values[field.key] = _name(node, field.key, problems) if node is not None else ""
        elif field.value == "text":
            values[field.key] = (problems.word(node, field.key) or "") if node is not None else ""
        elif field.value == "bool":
            values[field.key] = _flag(node, field.key, problems) if node is not None else False
    return values


def _is_version(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == INT and node.value.lstrip("+") == str(SCHEMA_VERSION)


def _name(node: yaml.Node, key: str, problems: Problems) -> str:
    value = problems.word(node, key)
    if value is None:
        return ""
    if NAME_RE.fullmatch(value):
        return value
    fixed = re.sub(r"[^a-z0-9_]+", "_", value.lower()).strip("_")
    problems.error(
        node,
        f"{key} {quoted(value)} must match [a-z0-9_]+ (lower-case letters, digits and underscores)"
        + (f", e.g. {quoted(fixed)}" if fixed else ""),
    )
    return ""


def _flag(node: yaml.Node, key: str, problems: Problems) -> bool:
    if isinstance(node, yaml.ScalarNode) and node.tag == BOOL:
        return node.value.lower() in ("yes", "true", "on")
    problems.error(node, f"{key} must be true or false, found {describe(node)}")
    return False
