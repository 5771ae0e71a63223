"""Probe-set files (YAML, schema_version 1) -> validated, frozen :class:`ProbeSet` objects.

Loading is strict and safe: the file is composed into a YAML node tree with ``yaml.SafeLoader`` (nothing in
the file is ever constructed or executed) and every value is read from the nodes, so each problem can be
reported as ``PATH:LINE: problem``. All problems of a file are collected and raised together as one
:class:`~albert_audit.errors.AuditError` (one line per problem).
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import yaml

from albert_audit.errors import AuditError

MASK_PLACEHOLDER = "[MASK]"
"""How probe files write the mask; the engine replaces it with the model's own mask token."""

SCHEMA_VERSION = 1
MAX_FILE_BYTES = 5 * 1024 * 1024
MIN_TEMPLATES = 8
"""Below this many templates a probe set gets a warning (templates are the statistical unit)."""

KNOWN_KEYS = (
    "schema_version",
    "name",
    "description",
    "category",
    "source",
    "groups",
    "templates",
    "targets",
    "pair_terms_by_position",
)
REQUIRED_KEYS = ("name", "description", "category", "templates")

_NAME_RE = re.compile(r"[a-z0-9_]+")
_SLOT_RE = re.compile(r"<([^<>\n]*)>")
# Near-misses of [MASK] that a tokenizer would not turn into the mask token.
_MISSPELT_MASK_RE = re.compile(r"[\[<{(]\s*mask\s*[\]>})]", re.IGNORECASE)
_SPECIAL_TOKEN_RE = re.compile(r"\[(?:CLS|SEP|PAD|UNK)\]|</?(?:s|pad|unk|cls|sep)>", re.IGNORECASE)
# Special tokens (and the mask itself, in any spelling) as a term or target: never a word the model can fill in.
_SPECIAL_TERM_RE = re.compile(r"\[(?:CLS|SEP|PAD|UNK|MASK)\]|</?(?:s|pad|unk|cls|sep|mask)>", re.IGNORECASE)
_HYPHENS = r"\-\u2010\u2011"  # for a regex character class: hyphen-minus, hyphen, non-breaking hyphen
_GLUED_AFTER_RE = re.compile(rf"\[MASK\](?=[\w'’{_HYPHENS}])")
_GLUED_BEFORE_RE = re.compile(r"(?<=[^\W_])\[MASK\]")
_GLUED_HYPHEN_BEFORE_RE = re.compile(rf"(?<=[{_HYPHENS}])\[MASK\]")

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _BOOL, _NULL, _FLOAT = (_TAG + t for t in ("str", "int", "bool", "null", "float"))
_SEQ, _MAP = _TAG + "seq", _TAG + "map"
_SCALAR_TAGS = {_STR, _INT, _BOOL, _NULL, _FLOAT, _TAG + "timestamp"}


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

    def split_at_slot(self) -> tuple[str, str]:
        """Return the text before and after the slot (``(text, "")`` for a template without a slot)."""
        if self.slot is None:
            return self.text, ""
        match = _SLOT_RE.search(self.text)
        if match is None:  # pragma: no cover - guaranteed by validation
            raise ValueError(f"template {self.text!r} has no slot")
        return self.text[: match.start()], self.text[match.end() :]


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

    @property
    def group_names(self) -> tuple[str, ...]:
        """The group names in file order."""
        return tuple(g.name for g in self.groups)


# --------------------------------------------------------------------------------------------- helpers


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _describe(node: yaml.Node) -> str:
    """How YAML reads a node, for messages ('the boolean False', 'a list', ...)."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    tag, raw = node.tag, node.value
    if tag == _BOOL:
        return f"the boolean {raw.lower() in ('yes', 'true', 'on')}"
    if tag == _NULL:
        return "null (no value)"
    if tag == _INT:
        return f"the integer {raw}"
    if tag == _FLOAT:
        return f"the number {raw}"
    if tag == _TAG + "timestamp":
        return f"the date {raw}"
    if tag == _STR:
        return f"the string {raw!r}"
    return f"a value tagged {_short_tag(tag)}"


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _is_str(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _STR


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Problems:
    """Collects errors and warnings of one file as (line, message)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[tuple[int, str]] = []
        self.warnings: list[tuple[int, str]] = []

    def error(self, node_or_line: yaml.Node | int, message: str) -> None:
        line = node_or_line if isinstance(node_or_line, int) else _line(node_or_line)
        self.errors.append((line, message))

    def warn(self, node_or_line: yaml.Node | int, message: str) -> None:
        line = node_or_line if isinstance(node_or_line, int) else _line(node_or_line)
        self.warnings.append((line, message))

    def format(self, items: list[tuple[int, str]]) -> list[str]:
        return [f"{self.path}:{line}: {msg}" for line, msg in sorted(items, key=lambda x: x[0])]

    def raise_if_any(self) -> None:
        if self.errors:
            raise AuditError("\n".join(self.format(self.errors)))

    def text(self, node: yaml.Node, what: str) -> str | None:
        """The string value of ``node``, or None after recording a type error."""
        if _is_str(node):
            return node.value
        if node.tag not in _SCALAR_TAGS | {_SEQ, _MAP}:
            return None  # an unsupported tag, already reported by _check_tree
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL and not node.value:
            self.error(node, f"{what} is missing (YAML reads an empty value as null); give a string")
        elif isinstance(node, yaml.ScalarNode):
            self.error(
                node,
                f"{what} must be a string, but YAML reads {node.value!r} as {_describe(node)}; "
                f'quote it ("{node.value}") if you mean the text',
            )
        else:
            self.error(node, f"{what} must be a string, found {_describe(node)}")
        return None

    def word(self, node: yaml.Node, what: str) -> str | None:
        """A non-empty string without surrounding whitespace, or None after recording the problem."""
        value = self.text(node, what)
        if value is None:
            return None
        if not value.strip():
            self.error(node, f"{what} is an empty string")
            return None
        if value != value.strip():
            self.error(node, f"{what} {value!r} has leading or trailing spaces; remove them")
            return None
        return value


# ------------------------------------------------------------------------------------------ reading


def _read_text(path: Path, shown: str) -> tuple[str, str]:
    """Read, size-check and decode a probe file; returns (NFC text, sha256 of the bytes)."""
    if not path.exists():
        raise AuditError(f"{shown}: no such file")
    if path.is_dir():
        raise AuditError(f"{shown}: is a directory, expected a probe-set YAML file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise AuditError(
                f"{shown}: file is {size / 2**20:.1f} MiB, over the {MAX_FILE_BYTES // 2**20} MiB limit "
                "for probe sets"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise AuditError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    sha = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise AuditError(
            f"{shown}:{line}: not valid UTF-8 (byte offset {exc.start}); save the file as UTF-8"
        ) from None
    # NFC so that composed and decomposed accents give the same terms (newlines are unaffected).
    return unicodedata.normalize("NFC", text), sha


def _compose(text: str, shown: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise AuditError(
            f"{shown}: the YAML is nested too deeply (lists or mappings inside each other); probe files need "
            "only a few levels"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        col = f" (column {mark.column + 1})" if mark is not None else ""
        what = ", ".join(part for part in (exc.context, exc.problem) if part) or "cannot parse"
        raise AuditError(f"{shown}:{line}: invalid YAML: {what}{col}") from None
    except yaml.YAMLError as exc:
        raise AuditError(f"{shown}:1: invalid YAML: {exc}") from None


def _check_aliases(text: str, problems: _Problems) -> None:
    """Record an error at every alias (``*name``) of the document."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            problems.error(
                event.start_mark.line + 1,
                f"YAML alias *{event.anchor} is not supported (no anchors/aliases); write the values out",
            )


def _check_tree(root: yaml.Node, problems: _Problems) -> bool:
    """Reject non-standard tags and duplicate mapping keys anywhere in the tree; True if it has aliases."""
    seen: set[int] = set()
    stack = [root]
    has_alias = False
    while stack:
        node = stack.pop()
        if id(node) in seen:
            # The composer returns the anchored node again for an alias; never expand it (alias bombs).
            has_alias = True
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                problems.error(
                    node, f"unsupported YAML tag {_short_tag(node.tag)}; probe files hold plain data only"
                )
        elif isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                problems.error(
                    node, f"unsupported YAML tag {_short_tag(node.tag)}; probe files hold plain data only"
                )
            stack.extend(reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                problems.error(
                    node, f"unsupported YAML tag {_short_tag(node.tag)}; probe files hold plain data only"
                )
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    ident = (key.tag, key.value)
                    if ident in first:
                        problems.error(
                            key,
                            f"duplicate key '{key.value}' (first at line {first[ident]}); "
                            "YAML would silently keep only the last one",
                        )
                    else:
                        first[ident] = _line(key)
                stack.extend((value, key))
    return has_alias


# -------------------------------------------------------------------------------------- templates


def _parse_template(text: str) -> tuple[str | None, tuple[str, ...], list[str]]:
    """Parse one template: (slot kind, inline alternatives, problems)."""
    problems: list[str] = []
    n_masks = text.count(MASK_PLACEHOLDER)
    misspelt = [m.group(0) for m in _MISSPELT_MASK_RE.finditer(text) if m.group(0) != MASK_PLACEHOLDER]
    for bad in misspelt:
        problems.append(f"'{bad}' is not the mask: write {MASK_PLACEHOLDER} exactly (upper case, no spaces)")
    if n_masks == 0 and not misspelt:
        problems.append(f"template has no {MASK_PLACEHOLDER}; every template needs exactly one")
    elif n_masks > 1:
        problems.append(f"template has {n_masks} {MASK_PLACEHOLDER}s; every template needs exactly one")
    for special in _SPECIAL_TOKEN_RE.finditer(text):
        problems.append(f"template contains the special token '{special.group(0)}'; remove it")
    for glued in _GLUED_AFTER_RE.finditer(text):
        nxt = text[glued.end() :].split(maxsplit=1)[0]
        problems.append(
            f"{MASK_PLACEHOLDER} is glued to {nxt!r}: the tokenizer treats the text after a mask token as a "
            "new word and adds a stray piece, so the masked sentence would not match the filled one; put a "
            "space after the mask or rephrase (e.g. 'the ... of the [MASK]')"
        )
    for glued in _GLUED_BEFORE_RE.finditer(text):
        prev = text[: glued.start()].split()[-1]
        problems.append(
            f"{MASK_PLACEHOLDER} is glued to the preceding {prev!r}: the mask stands for a whole word; put a "
            "space before it"
        )
    for glued in _GLUED_HYPHEN_BEFORE_RE.finditer(text):
        prev = text[: glued.start()].split()[-1]
        problems.append(
            f"{MASK_PLACEHOLDER} is glued to the hyphen of {prev!r}: the filled word would be tokenized as the "
            "middle of a hyphenated word (no word start), so the masked sentence would not match the filled "
            "one; rephrase so that the mask stands alone between spaces"
        )

    ignored = {m.span() for m in _MISSPELT_MASK_RE.finditer(text)} | {
        m.span() for m in _SPECIAL_TOKEN_RE.finditer(text)
    }
    slots = [m for m in _SLOT_RE.finditer(text) if m.span() not in ignored]
    rest = _SLOT_RE.sub("", text)
    if "<" in rest or ">" in rest:
        problems.append("unbalanced '<' or '>': a slot is written <group> or <a/b>")
    if len(slots) > 1:
        shown = ", ".join(m.group(0) for m in slots)
        problems.append(f"template has {len(slots)} slots ({shown}); a template has at most one slot")
    for slot in slots:
        if text.startswith(MASK_PLACEHOLDER, slot.end()) or text[: slot.start()].endswith(MASK_PLACEHOLDER):
            problems.append(
                f"the slot {slot.group(0)} is glued to {MASK_PLACEHOLDER}: the filled term and the mask would "
                "run together into one word and the tokenizer would add stray pieces; put a space between them"
            )
    if not slots:
        return None, (), problems
    content = slots[0].group(1)
    if content == "group":
        return "group", (), problems
    if "/" in content:
        alternatives = tuple(a.strip() for a in content.split("/"))
        if any(not a for a in alternatives):
            problems.append(f"inline alternatives <{content}> contain an empty alternative")
        dups = sorted({a for a in alternatives if a and alternatives.count(a) > 1})
        if dups:
            problems.append(f"inline alternatives <{content}> repeat {', '.join(map(repr, dups))}")
        if MASK_PLACEHOLDER in content:
            problems.append(f"inline alternatives <{content}> contain {MASK_PLACEHOLDER}")
        return "inline", alternatives, problems
    hint = " (did you mean <group>?)" if difflib.get_close_matches(content.strip().lower(), ["group"]) else ""
    problems.append(
        f"unknown slot <{content}>{hint}: the only named slot is <group>; inline alternatives are written "
        "<a/b>"
    )
    return None, (), problems


# ----------------------------------------------------------------------------------------- building


def _check_term(problems: _Problems, node: yaml.Node, what: str) -> str | None:
    term = problems.word(node, what)
    if term is None:
        return None
    special = _SPECIAL_TERM_RE.search(term)
    if special is not None and MASK_PLACEHOLDER not in term:
        problems.error(
            node,
            f"{what} {term!r} {'is' if special.group(0) == term else 'contains'} the special token "
            f"'{special.group(0)}': the tokenizer reads it as a control token, not as a word, so it cannot be "
            "filled in or scored; use plain words",
        )
        return None
    if MASK_PLACEHOLDER in term or "<" in term or ">" in term:
        problems.error(
            node,
            f"{what} {term!r} must not contain {MASK_PLACEHOLDER}, '<' or '>' ({MASK_PLACEHOLDER} is the "
            "mask token itself, not a word, and '<' '>' mark a slot)",
        )
        return None
    return term


def _build(root: yaml.Node, path: str, sha256: str, problems: _Problems) -> ProbeSet | None:
    if not isinstance(root, yaml.MappingNode):
        problems.error(
            root,
            "the top level must be a mapping (name:, description:, templates:, ...), "
            f"found {_describe(root)}",
        )
        return None

    fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in root.value:
        if not _is_str(key):
            problems.error(key, f"keys must be strings, found {_describe(key)}")
            continue
        if key.value not in KNOWN_KEYS:
            problems.error(
                key,
                f"unknown key '{key.value}'{_suggest(key.value, KNOWN_KEYS)}; "
                f"known keys: {', '.join(KNOWN_KEYS)}",
            )
            continue
        fields.setdefault(key.value, (key, value))
    for required in REQUIRED_KEYS:
        if required not in fields:
            problems.error(root, f"missing required key '{required}'")

    schema_version = SCHEMA_VERSION
    if "schema_version" in fields:
        node = fields["schema_version"][1]
        if not (isinstance(node, yaml.ScalarNode) and node.tag == _INT and node.value.lstrip("+") == "1"):
            problems.error(
                node,
                f"schema_version must be {SCHEMA_VERSION} (the only version this albert-audit reads), "
                f"found {_describe(node)}",
            )

    name = ""
    if "name" in fields:
        node = fields["name"][1]
        value = problems.word(node, "name")
        if value is not None:
            if _NAME_RE.fullmatch(value):
                name = value
            else:
                fixed = re.sub(r"[^a-z0-9_]+", "_", value.lower()).strip("_")
                problems.error(
                    node,
                    f"name {value!r} must match [a-z0-9_]+ (lower-case letters, digits and underscores)"
                    + (f", e.g. '{fixed}'" if fixed else ""),
                )

    def optional_text(key: str) -> str:
        if key not in fields:
            return ""
        return problems.word(fields[key][1], key) or ""

    description = optional_text("description")
    category = optional_text("category")
    source = optional_text("source")

    pair = False
    if "pair_terms_by_position" in fields:
        node = fields["pair_terms_by_position"][1]
        if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL:
            pair = node.value.lower() in ("yes", "true", "on")
        else:
            problems.error(node, f"pair_terms_by_position must be true or false, found {_describe(node)}")

    groups = _build_groups(fields.get("groups"), problems)
    templates, derived = _build_templates(fields.get("templates"), groups, problems)
    if derived is not None:
        groups = derived
    targets = _build_targets(fields.get("targets"), problems)

    if groups:
        _warn_shared_terms(groups, problems)
    if pair and "pair_terms_by_position" in fields:
        node = fields["pair_terms_by_position"][1]
        sizes = {len(g.terms) for g, _ in groups}
        if not groups:
            problems.error(node, "pair_terms_by_position is true but the file declares no groups")
        elif len(sizes) > 1:
            shown = ", ".join(f"{g.name} has {len(g.terms)}" for g, _ in groups)
            problems.error(node, f"pair_terms_by_position needs groups with equal numbers of terms: {shown}")

    slotted = [t for t in templates if t.slot is not None]
    if "templates" in fields and templates:
        templates_line = _line(fields["templates"][0])
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

    if problems.errors:
        return None
    return ProbeSet(
        name=name,
        description=description,
        category=category,
        source=source,
        groups=tuple(g for g, _ in groups),
        templates=tuple(templates),
        targets=targets,
        pair_terms_by_position=pair,
        path=path,
        sha256=sha256,
        schema_version=schema_version,
        warnings=tuple(problems.format(problems.warnings)),
    )


# (group, {term: line}) so later checks can point at the term's line.
_GroupLines = list[tuple[Group, dict[str, int]]]


def _build_groups(entry: tuple[yaml.Node, yaml.Node] | None, problems: _Problems) -> _GroupLines:
    if entry is None:
        return []
    key_node, node = entry
    if not isinstance(node, yaml.MappingNode):
        problems.error(
            node if node.tag != _NULL else key_node,
            f"groups must be a mapping of group name -> list of terms, found {_describe(node)}",
        )
        return []
    groups: _GroupLines = []
    seen: set[str] = set()
    for gkey, gvalue in node.value:
        # A bad group is still kept (without terms) so that later checks count the declared groups right.
        gname = problems.word(gkey, "group name")
        if gname is None:
            gname = str(gkey.value)
        if gname in seen:
            continue  # reported as a duplicate key by _check_tree
        seen.add(gname)
        terms: dict[str, int] = {}
        term_nodes: list[yaml.Node] = []
        if not isinstance(gvalue, yaml.SequenceNode):
            if gvalue.tag == _NULL or (_is_str(gvalue) and not gvalue.value):
                problems.error(gkey, f"group '{gname}' is empty; give it at least one term")
            else:
                problems.error(
                    gvalue, f"group '{gname}' must be a list of terms, e.g. [a, b]; found {_describe(gvalue)}"
                )
        elif not gvalue.value:
            problems.error(gkey, f"group '{gname}' is empty; give it at least one term")
        else:
            term_nodes = gvalue.value
        for tnode in term_nodes:
            term = _check_term(problems, tnode, f"term of group '{gname}'")
            if term is None:
                continue
            if term in terms:
                problems.error(
                    tnode, f"term {term!r} appears twice in group '{gname}' (first at line {terms[term]})"
                )
                continue
            terms[term] = _line(tnode)
        groups.append((Group(gname, tuple(terms)), terms))
    return groups


def _build_templates(
    entry: tuple[yaml.Node, yaml.Node] | None, groups: _GroupLines, problems: _Problems
) -> tuple[list[Template], _GroupLines | None]:
    """Parse the templates; returns them and, for files without groups, the groups their inline slots name."""
    if entry is None:
        return [], None
    key_node, node = entry
    if not isinstance(node, yaml.SequenceNode):
        hint = '; write it as a list: templates: ["..."]' if _is_str(node) else ""
        problems.error(
            node if node.tag != _NULL else key_node,
            f"templates must be a list of strings, found {_describe(node)}{hint}",
        )
        return [], None
    if not node.value:
        problems.error(node, "templates is empty; give at least one template")
        return [], None

    templates: list[Template] = []
    first_line: dict[str, int] = {}
    declared = bool(groups)
    # Without declared groups, the first inline template names the groups; later ones add their terms.
    derived: list[tuple[str, dict[str, int]]] | None = None
    derived_from = 0
    for tnode in node.value:
        text = problems.word(tnode, "template")
        if text is None:
            continue
        line = _line(tnode)
        if text in first_line:
            problems.error(tnode, f"duplicate template (first at line {first_line[text]})")
            continue
        first_line[text] = line
        slot, alternatives, template_problems = _parse_template(text)
        for message in template_problems:
            problems.error(tnode, message)
        if slot == "group" and not declared:
            problems.error(
                tnode, "template has a <group> slot but the file declares no groups (add a groups: mapping)"
            )
        if slot == "inline" and all(alternatives):
            names = ", ".join(g.name for g, _ in groups)
            if declared and len(alternatives) != len(groups):
                problems.error(
                    tnode,
                    f"inline slot has {len(alternatives)} alternatives but the file declares {len(groups)} "
                    f"group{'s' if len(groups) != 1 else ''} ({names}); the i-th alternative goes to the "
                    "i-th group",
                )
            elif not declared and derived is None:
                derived = [(alt, {alt: line}) for alt in alternatives]
                derived_from = line
            elif not declared and derived is not None:
                if len(alternatives) != len(derived):
                    problems.error(
                        tnode,
                        f"inline slot has {len(alternatives)} alternatives but the first inline template "
                        f"(line {derived_from}) has {len(derived)}; the i-th alternative goes to the i-th "
                        "group",
                    )
                else:
                    for (_, terms), alt in zip(derived, alternatives, strict=True):
                        terms.setdefault(alt, line)
        templates.append(Template(len(templates), text, line, slot, alternatives))
    derived_groups = None
    if derived is not None:
        derived_groups = [(Group(gname, tuple(terms)), terms) for gname, terms in derived]
    return templates, derived_groups


def _build_targets(entry: tuple[yaml.Node, yaml.Node] | None, problems: _Problems) -> tuple[str, ...]:
    if entry is None:
        return ()
    key_node, node = entry
    if not isinstance(node, yaml.SequenceNode):
        problems.error(
            node if node.tag != _NULL else key_node,
            f"targets must be a list of words, found {_describe(node)}"
            + ("; remove the key for no targets" if node.tag == _NULL else ""),
        )
        return ()
    targets: dict[str, int] = {}
    lowered: dict[str, str] = {}
    for tnode in node.value:
        target = _check_term(problems, tnode, "target")
        if target is None:
            continue
        if any(ch.isspace() for ch in target):
            problems.error(tnode, f"target {target!r} must be a single word (no spaces)")
            continue
        if target in targets:
            problems.error(tnode, f"target {target!r} is listed twice (first at line {targets[target]})")
            continue
        targets[target] = _line(tnode)
        low = target.lower()
        if low in lowered:
            problems.warn(
                tnode,
                f"targets {lowered[low]!r} and {target!r} differ only in case; an uncased tokenizer "
                "scores them identically",
            )
        else:
            lowered[low] = target
    return tuple(targets)


def _warn_shared_terms(groups: _GroupLines, problems: _Problems) -> None:
    owner: dict[str, str] = {}
    for group, lines in groups:
        for term in group.terms:
            if term in owner and owner[term] != group.name:
                problems.warn(
                    lines[term],
                    f"term {term!r} is in both group '{owner[term]}' and group '{group.name}'; "
                    "the comparison between them is blurred",
                )
            else:
                owner.setdefault(term, group.name)


# -------------------------------------------------------------------------------------------- API


def load_probe_set(path: str | PathLike[str]) -> ProbeSet:
    """Load and validate one probe-set YAML file.

    Raises :class:`AuditError` whose message has one ``PATH:LINE: problem`` line per problem found.
    """
    shown = str(path)
    text, sha = _read_text(Path(path), shown)
    root = _compose(text, shown)
    if root is None:
        raise AuditError(f"{shown}:1: file is empty (no YAML content); see docs for the probe-set format")
    problems = _Problems(shown)
    if _check_tree(root, problems):
        _check_aliases(text, problems)
        problems.raise_if_any()  # never build from a tree that shares nodes
    probe_set = _build(root, shown, sha, problems)
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
                f"{probe_set.path}:{_name_line(probe_set.path)}: probe set name '{probe_set.name}' is also "
                f"used by {other.path}:{_name_line(other.path)}; names must be unique within a run"
            )
        else:
            by_name[probe_set.name] = probe_set
    if messages:
        raise AuditError("\n".join(messages))
    return loaded
