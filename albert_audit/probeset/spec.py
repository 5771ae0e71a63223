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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import yaml

from albert_audit import inputs
from albert_audit.errors import AuditError, quoted
from albert_audit.errors import shown as shown_text

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
    "groups_from",
    "templates",
    "targets",
    "targets_from",
    "pair_terms_by_position",
    "reference",
    "polysemous",
    "factors",
)
REQUIRED_KEYS = ("name", "description", "category", "templates")
LEXICON_KEYS = ("schema_version", "lexicon", "description", "source", "licence", "groups", "reference", "polysemous")
LEXICON_REQUIRED_KEYS = ("lexicon", "description", "source", "licence", "groups")
LEXICON_FOLDER = "lexicons"
"""Lexicons are looked up in ``<folder of the probe file>/lexicons/NAME.yaml``, then in the shipped library's."""

TEMPLATE_TAGS = ("neutral", "stereotype_eliciting")
"""Tags of templates (``templates:`` as a mapping tag -> list); a plain list is all ``neutral``."""
DEFINITIONAL = "definitional"
"""Target category of words that carry the group in their meaning (waitress, actress, handsome): positive
controls, kept out of bias scores."""
CONVENTIONAL_TARGET_CATEGORIES = (
    "positive", "negative", "stereotype_linked", "occupation", DEFINITIONAL, "female", "male"
)
REFERENCE_KEYS = ("name", "source", "licence", "measure", "keyed_by", "values")
N_FACTORS = 2
"""``factors:`` crosses exactly two factors (group names ``<level of the first>_<level of the second>``)."""
FINDINGS_ROWS_LIMIT = 50_000
"""Documented size guard: a probe set whose estimated findings rows exceed this gets a warning."""

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
_ARTICLE_SLOT_RE = re.compile(r"(?<![\w])[Aa]\(n\)")
_ARTICLE_BEFORE_SLOT_RE = re.compile(r"(?<![\w(])([Aa]n?) +<")
_ARTICLE_BEFORE_MASK_RE = re.compile(r"(?<![\w(])([Aa]n?) +\[MASK\]")

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
    tag: str = "neutral"

    def split_at_slot(self) -> tuple[str, str]:
        """Return the text before and after the slot (``(text, "")`` for a template without a slot)."""
        if self.slot is None:
            return self.text, ""
        match = _SLOT_RE.search(self.text)
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

    def bias_targets(self) -> tuple[str, ...]:
        """The targets that enter bias scores: all but the ``definitional`` ones (positive controls)."""
        return tuple(t for t in self.targets if self.target_category(t) != DEFINITIONAL)

    def control_targets(self) -> tuple[str, ...]:
        """The ``definitional`` targets: words whose meaning carries the group, expected to differ."""
        return tuple(t for t in self.targets if self.target_category(t) == DEFINITIONAL)

    def template_tags(self) -> dict[int, str]:
        """template_id -> tag (``neutral`` or ``stereotype_eliciting``)."""
        return {t.template_id: t.tag for t in self.templates}

    def reference(self, name: str = "") -> Reference | None:
        """The reference named ``name`` (the first one when ``name`` is empty), or None."""
        for ref in self.references:
            if not name or ref.name == name:
                return ref
        return None

    def target_rows(self) -> list[dict[str, object]]:
        """One dict per target: probe_set, target, category, control (definitional), polysemous (the other
        sense or ""), and ``reference_<name>`` shares of the target-keyed references (NaN when absent)."""
        other_sense = dict(self.polysemous)
        refs = [r for r in self.references if r.keyed_by == "target"]
        rows: list[dict[str, object]] = []
        for target in self.targets:
            category = self.target_category(target)
            row: dict[str, object] = {"probe_set": self.name, "target": target, "category": category,
                                      "control": category == DEFINITIONAL, "polysemous": other_sense.get(target, "")}
            for ref in refs:
                row[f"reference_{ref.name or 'share'}"] = ref.as_dict().get(target, float("nan"))
            rows.append(row)
        return rows

    def template_rows(self) -> list[dict[str, object]]:
        """One dict per template: probe_set, template_id, template, tag."""
        return [{"probe_set": self.name, "template_id": t.template_id, "template": t.text, "tag": t.tag}
                for t in self.templates]


# --------------------------------------------------------------------------------------------- helpers


PATH_SHOWN_LIMIT = 240
"""Longest file name an error message repeats (longer ones are cut in the middle, like values)."""


def shown_path(path: str | PathLike[str]) -> str:
    """A file name as messages show it: control characters escaped, cut past :data:`PATH_SHOWN_LIMIT`."""
    return shown_text(path, PATH_SHOWN_LIMIT)


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
        return f"the integer {shown_text(raw)}"
    if tag == _FLOAT:
        return f"the number {shown_text(raw)}"
    if tag == _TAG + "timestamp":
        return f"the date {shown_text(raw)}"
    if tag == _STR:
        return f"the string {quoted(raw)}"
    return f"a value tagged {_short_tag(tag)}"


def _short_tag(tag: str) -> str:
    """A tag for messages (``!!python/object``), escaped and cut."""
    return shown_text("!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag)


def _char_name(char: str | int) -> str:
    """A character for messages: ``U+200B ZERO WIDTH SPACE (\\u200b)``."""
    char = chr(char) if isinstance(char, int) else char
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}{' ' + name if name else ''} ({shown_text(char)})"


def _is_str(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _STR


def _closest(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = _closest(word, choices)
    return f" (did you mean {quoted(close)}?)" if close else ""


def _report_missing(root: yaml.Node, required: Sequence[str], fields: dict[str, tuple[yaml.Node, yaml.Node]],
                    typos: dict[str, yaml.Node], problems: _Problems) -> None:
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


class _Problems:
    """Collects errors and warnings of one file as (line, message)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[tuple[int, str]] = []
        self.warnings: list[tuple[int, str]] = []
        self.foreign: list[str] = []  # problems of another file (a lexicon), already formatted

    def error(self, node_or_line: yaml.Node | int, message: str) -> None:
        line = node_or_line if isinstance(node_or_line, int) else _line(node_or_line)
        self.errors.append((line, message))

    def warn(self, node_or_line: yaml.Node | int, message: str) -> None:
        line = node_or_line if isinstance(node_or_line, int) else _line(node_or_line)
        self.warnings.append((line, message))

    def format(self, items: list[tuple[int, str]]) -> list[str]:
        return [f"{self.path}:{line}: {msg}" for line, msg in sorted(items, key=lambda x: x[0])]

    def raise_if_any(self) -> None:
        if self.errors or self.foreign:
            raise AuditError("\n".join(self.format(self.errors) + self.foreign))

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
                f"{what} must be a string, but YAML reads {quoted(node.value)} as {_describe(node)}; "
                f'quote it ("{shown_text(node.value, 40)}") if you mean the text',
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
            self.error(node, f"{what} {quoted(value)} has leading or trailing spaces; remove them")
            return None
        return value


# ------------------------------------------------------------------------------------------ reading


def _read_text(path: Path, shown: str) -> tuple[str, str]:
    """Read, size-check and decode a probe file; returns (NFC text, sha256 of the bytes).

    Only regular files are read (albert_audit.inputs): a device such as /dev/zero, a FIFO or a folder is refused
    before any byte is read, and so is a file over MAX_FILE_BYTES.
    """
    data = inputs.read_bytes_limited(path, what="a probe-set YAML file", max_bytes=MAX_FILE_BYTES)
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
        line, depth = _nesting_line(text)
        raise AuditError(
            f"{shown}:{line}: the YAML is nested too deeply ({depth}+ lists or mappings inside each other); probe "
            "files need only a few levels"
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise AuditError(f"{shown}:{_yaml_error(exc, text)}") from None
    except yaml.reader.ReaderError as exc:
        # Raised by the reader for a character YAML forbids (NUL, most C0 controls); it has no mark, only the
        # character's position in the text.
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise AuditError(
            f"{shown}:{line}: invalid YAML: the control character {_char_name(exc.character)} (column {column}) is "
            "not allowed in a YAML file; remove it (write \\x.. escapes inside double quotes if you mean it)"
        ) from None
    except yaml.YAMLError as exc:
        raise AuditError(f"{shown}:1: invalid YAML: {shown_text(exc, 200)}") from None


_NESTING_LIMIT = 100
"""Collections deeper than this are reported (the composer's recursion gives up a few hundred levels down)."""
# YAML errors whose context is something left open: the line that opened it is the cause, not where the
# parser gave up (often the end of the file).
_OPEN_FLOW = ("while parsing a flow sequence", "while parsing a flow mapping")
_OPEN_SCALAR_PROBLEMS = ("end of stream", "document separator")


def _yaml_error(exc: yaml.MarkedYAMLError, text: str) -> str:
    """``LINE: invalid YAML: ...`` for a parser error, at the line that caused it."""
    context, problem = exc.context or "", exc.problem or ""
    ctx, mark = exc.context_mark, exc.problem_mark
    quote = _runaway_quote(text, mark) if mark is not None else None
    if quote is not None and mark is not None:
        what = ", ".join(part for part in (context, problem) if part)
        return (f"{quote.line + 1}: invalid YAML: the quoted text opened here (column {quote.column + 1}) runs on to "
                f"line {mark.line + 1}, where the parser found: {shown_text(what, 200)} (column {mark.column + 1}); "
                "is its closing quote missing?")
    left_open = ctx is not None and mark is not None and ctx.line != mark.line and (
        context in _OPEN_FLOW
        or ("quoted scalar" in context and any(p in problem for p in _OPEN_SCALAR_PROBLEMS))
    )
    if left_open:
        assert ctx is not None and mark is not None
        opened = context.removeprefix("while scanning ").removeprefix("while parsing ")
        what = (f"{opened} opened here (column {ctx.column + 1}) is not closed: at line {mark.line + 1} "
                f"(column {mark.column + 1}) the parser {problem}")
        return f"{ctx.line + 1}: invalid YAML: {shown_text(what, 300)}"
    at = mark or ctx
    line = at.line + 1 if at is not None else 1
    col = f" (column {at.column + 1})" if at is not None else ""
    what = ", ".join(part for part in (context, problem) if part) or "cannot parse"
    return f"{line}: invalid YAML: {shown_text(what, 300)}{col}"


def _runaway_quote(text: str, mark: yaml.Mark) -> yaml.Mark | None:
    """The start of a quoted scalar that spans lines and ends right before the error (a missing closing quote
    makes the scalar swallow text up to the next quote, and the error only shows up there), else None."""
    last: yaml.Token | None = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.index >= mark.index:
                break
            last = token
    except yaml.YAMLError:
        pass
    if (isinstance(last, yaml.ScalarToken) and last.style in ('"', "'")
            and last.start_mark.line < last.end_mark.line == mark.line):
        return last.start_mark
    return None


def _nesting_line(text: str) -> tuple[int, int]:
    """(line, depth) where the document first nests deeper than :data:`_NESTING_LIMIT` (else its deepest point).

    The event parser keeps its own stack, so it walks any depth without recursion.
    """
    depth, deepest, deepest_line = 0, 0, 1
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > deepest:
                    deepest, deepest_line = depth, event.start_mark.line + 1
                if depth > _NESTING_LIMIT:
                    return event.start_mark.line + 1, _NESTING_LIMIT
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        pass
    return deepest_line, deepest


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
                            f"duplicate key {quoted(key.value)} (first at line {first[ident]}); "
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
        problems.append(f"{quoted(bad)} is not the mask: write {MASK_PLACEHOLDER} exactly (upper case, no spaces)")
    if n_masks == 0 and not misspelt:
        problems.append(f"template has no {MASK_PLACEHOLDER}; every template needs exactly one")
    elif n_masks > 1:
        problems.append(f"template has {n_masks} {MASK_PLACEHOLDER}s; every template needs exactly one")
    for special in _SPECIAL_TOKEN_RE.finditer(text):
        problems.append(f"template contains the special token '{special.group(0)}'; remove it")
    for glued in _GLUED_AFTER_RE.finditer(text):
        nxt = text[glued.end() :].split(maxsplit=1)[0]
        problems.append(
            f"{MASK_PLACEHOLDER} is glued to {quoted(nxt)}: the tokenizer treats the text after a mask token as a "
            "new word and adds a stray piece, so the masked sentence would not match the filled one; put a "
            "space after the mask or rephrase (e.g. 'the ... of the [MASK]')"
        )
    for glued in _GLUED_BEFORE_RE.finditer(text):
        prev = text[: glued.start()].split()[-1]
        problems.append(
            f"{MASK_PLACEHOLDER} is glued to the preceding {quoted(prev)}: the mask stands for a whole word; put a "
            "space before it"
        )
    for glued in _GLUED_HYPHEN_BEFORE_RE.finditer(text):
        prev = text[: glued.start()].split()[-1]
        problems.append(
            f"{MASK_PLACEHOLDER} is glued to the hyphen of {quoted(prev)}: the filled word would be tokenized as the "
            "middle of a hyphenated word (no word start), so the masked sentence would not match the filled "
            "one; rephrase so that the mask stands alone between spaces"
        )

    for article in _ARTICLE_SLOT_RE.finditer(text):
        rest_after = text[article.end() :]
        if rest_after.startswith(" " + MASK_PLACEHOLDER):
            problems.append(
                f"'{article.group(0)} {MASK_PLACEHOLDER}': no article can agree with every target scored at the "
                "mask; rephrase so that no article precedes the mask (e.g. 'as the new [MASK]', 'as a trained "
                "[MASK]') or put the word with its article in the slot (see docs/probe_library.md)"
            )
        elif not rest_after.startswith(" <"):
            problems.append(
                f"'{article.group(0)}' must stand right before the slot ('a(n) <group>'): it is resolved to 'a' "
                "or 'an' for the term filled in there"
            )

    ignored = {m.span() for m in _MISSPELT_MASK_RE.finditer(text)} | {
        m.span() for m in _SPECIAL_TOKEN_RE.finditer(text)
    }
    slots = [m for m in _SLOT_RE.finditer(text) if m.span() not in ignored]
    rest = _SLOT_RE.sub("", text)
    if "<" in rest or ">" in rest:
        problems.append("unbalanced '<' or '>': a slot is written <group> or <a/b>")
    if len(slots) > 1:
        listed = shown_text(", ".join(m.group(0) for m in slots), 120)
        problems.append(f"template has {len(slots)} slots ({listed}); a template has at most one slot")
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
            problems.append(f"inline alternatives <{shown_text(content, 60)}> contain an empty alternative")
        dups = sorted({a for a in alternatives if a and alternatives.count(a) > 1})
        if dups:
            problems.append(f"inline alternatives <{shown_text(content, 60)}> repeat {', '.join(map(quoted, dups))}")
        if MASK_PLACEHOLDER in content:
            problems.append(f"inline alternatives <{shown_text(content, 60)}> contain {MASK_PLACEHOLDER}")
        return "inline", alternatives, problems
    hint = " (did you mean <group>?)" if difflib.get_close_matches(content.strip().lower(), ["group"]) else ""
    problems.append(
        f"unknown slot <{shown_text(content, 60)}>{hint}: the only named slot is <group>; inline alternatives are "
        "written <a/b>"
    )
    return None, (), problems


# ----------------------------------------------------------------------------------------- building


_INVISIBLE_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")
"""Control, format (zero-width, bidi overrides), surrogate and line/paragraph-separator characters: never part of
a word; in a template, term, target or group name they hide text or change how it is scored."""


def _visible(problems: _Problems, node: yaml.Node, what: str, value: str) -> bool:
    """True if ``value`` has no invisible or control character; else records an error naming the first one."""
    for char in value:
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            problems.error(node, f"{what} {quoted(value)} contains the invisible or control character "
                                 f"{_char_name(char)}; remove it (it is not part of any word)")
            return False
    return True


def _check_term(problems: _Problems, node: yaml.Node, what: str) -> str | None:
    term = problems.word(node, what)
    if term is None or not _visible(problems, node, what, term):
        return None
    special = _SPECIAL_TERM_RE.search(term)
    if special is not None and MASK_PLACEHOLDER not in term:
        problems.error(
            node,
            f"{what} {quoted(term)} {'is' if special.group(0) == term else 'contains'} the special token "
            f"'{special.group(0)}': the tokenizer reads it as a control token, not as a word, so it cannot be "
            "filled in or scored; use plain words",
        )
        return None
    if MASK_PLACEHOLDER in term or "<" in term or ">" in term:
        problems.error(
            node,
            f"{what} {quoted(term)} must not contain {MASK_PLACEHOLDER}, '<' or '>' ({MASK_PLACEHOLDER} is the "
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
    typos: dict[str, yaml.Node] = {}
    for key, value in root.value:
        if not _is_str(key):
            problems.error(key, f"keys must be strings, found {_describe(key)}")
            continue
        if key.value not in KNOWN_KEYS:
            problems.error(
                key,
                f"unknown key {quoted(key.value)}{_suggest(key.value, KNOWN_KEYS)}; "
                f"known keys: {', '.join(KNOWN_KEYS)}",
            )
            close = _closest(key.value, KNOWN_KEYS)
            if close is not None:
                typos.setdefault(close, key)
            continue
        fields.setdefault(key.value, (key, value))
    _report_missing(root, REQUIRED_KEYS, fields, typos, problems)

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
                    f"name {quoted(value)} must match [a-z0-9_]+ (lower-case letters, digits and underscores)"
                    + (f", e.g. {quoted(fixed)}" if fixed else ""),
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

    probe_dir = Path(path).parent
    used: list[Lexicon] = []
    references: list[Reference] = []
    for plain, from_key in (("groups", "groups_from"), ("targets", "targets_from")):
        if plain in fields and from_key in fields:
            problems.error(fields[from_key][0], f"give either {plain} or {from_key}, not both")
    if "groups_from" in fields:
        key_node = fields["groups_from"][0]
        lexicons = _use_lexicons(fields["groups_from"], probe_dir, problems)
        used += lexicons
        groups = _groups_from_lexicons(lexicons, key_node, problems)
        references += [_rekey(r, "term") for lex in lexicons for r in lex.references]
    else:
        groups = _build_groups(fields.get("groups"), problems)
    templates, derived = _build_templates(fields.get("templates"), groups, problems)
    if derived is not None:
        groups = derived
    if "targets_from" in fields:
        key_node = fields["targets_from"][0]
        lexicons = _use_lexicons(fields["targets_from"], probe_dir, problems)
        used += lexicons
        targets, categories = _targets_from_lexicons(lexicons, key_node, problems)
        references += [_rekey(r, "target") for lex in lexicons for r in lex.references]
    else:
        targets, categories = _build_targets(fields.get("targets"), problems)
    terms = [t for g, _ in groups for t in g.terms] + [a for t in templates for a in t.alternatives]
    references += _build_references(fields.get("reference"), problems, {"target": targets, "term": terms})
    polysemous = {w: sense for lex in used for w, sense in lex.polysemous}
    polysemous.update(_build_polysemous(fields.get("polysemous"), problems, list(dict.fromkeys(terms + list(targets)))))
    _check_articles(templates, [t for g, _ in groups for t in g.terms], targets, problems)
    factors = _build_factors(fields.get("factors"), [g.name for g, _ in groups], problems)

    if groups:
        _warn_shared_terms(groups, problems)
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
        _warn_size(len(groups), len(targets), where, problems)
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

    if problems.errors or problems.foreign:
        return None
    if used:  # the set's identity covers the lexicons it draws from
        sha256 = hashlib.sha256((sha256 + "".join(lex.sha256 for lex in used)).encode()).hexdigest()
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
        target_categories=tuple((t, categories.get(t, "")) for t in targets if categories.get(t, "")),
        references=tuple(references),
        polysemous=tuple((w, polysemous[w]) for w in polysemous if w in set(terms) | set(targets)),
        lexicons=tuple(dict.fromkeys((lex.name, lex.source) for lex in used)),
        factors=factors,
    )


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
    from albert_audit.registry import METRICS

    pairs = n_groups * (n_groups - 1) // 2
    total = 0
    for spec in METRICS:
        if spec.from_items and n_groups >= spec.min_groups:  # benchmark metrics have no rows per probe set
            total += ROWS_PER_KIND.get(spec.rows, ROWS_PER_KIND["target x group pair"])(n_targets, pairs)
    return total


def _warn_size(n_groups: int, n_targets: int, node: yaml.Node, problems: _Problems) -> None:
    """The size guard: warn when the estimated findings rows exceed :data:`FINDINGS_ROWS_LIMIT`."""
    rows = estimate_findings_rows(n_groups, n_targets)
    if rows > FINDINGS_ROWS_LIMIT:
        pairs = n_groups * (n_groups - 1) // 2
        problems.warn(node, f"about {rows:,} findings rows ({n_groups} groups = {pairs:,} group pairs, "
                            f"{n_targets} targets), over the documented limit of {FINDINGS_ROWS_LIMIT:,} per probe "
                            "set: the run is slow and its report unreadable; narrow it: compare fewer groups per "
                            "file (split them over several probe sets), use fewer targets, and run the set alone "
                            "(--probes FILE)")


def _rekey(ref: Reference, keyed_by: str) -> Reference:
    return Reference(ref.name, ref.source, ref.licence, ref.measure, keyed_by, ref.values)


def _groups_from_lexicons(lexicons: list[Lexicon], key_node: yaml.Node, problems: _Problems) -> _GroupLines:
    line = _line(key_node)
    groups: _GroupLines = []
    for name, words in _merge_lexicon_groups(lexicons, key_node, problems):
        dups = sorted({w for w in words if words.count(w) > 1})
        if dups:
            problems.error(key_node, f"group {quoted(name)} gets {', '.join(map(quoted, dups))} twice from the "
                                     "lexicons")
        groups.append((Group(name, tuple(dict.fromkeys(words))), {w: line for w in words}))
    return groups


def _targets_from_lexicons(
    lexicons: list[Lexicon], key_node: yaml.Node, problems: _Problems
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
        if gname is None or not _visible(problems, gkey, "group name", gname):
            gname = str(gkey.value)
        if gname in seen:
            continue  # reported as a duplicate key by _check_tree
        seen.add(gname)
        terms: dict[str, int] = {}
        term_nodes: list[yaml.Node] = []
        if not isinstance(gvalue, yaml.SequenceNode):
            if gvalue.tag == _NULL or (_is_str(gvalue) and not gvalue.value):
                problems.error(gkey, f"group {quoted(gname)} is empty; give it at least one term")
            else:
                problems.error(
                    gvalue, f"group {quoted(gname)} must be a list of terms, e.g. [a, b]; found {_describe(gvalue)}"
                )
        elif not gvalue.value:
            problems.error(gkey, f"group {quoted(gname)} is empty; give it at least one term")
        else:
            term_nodes = gvalue.value
        for tnode in term_nodes:
            term = _check_term(problems, tnode, f"term of group {quoted(gname)}")
            if term is None:
                continue
            if term in terms:
                problems.error(
                    tnode, f"term {quoted(term)} appears twice in group {quoted(gname)} (first at line {terms[term]})"
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
    tagged = _tagged_lists(node, key_node, problems, "templates", TEMPLATE_TAGS, strict_names=True)
    if tagged is None:
        hint = '; write it as a list: templates: ["..."]' if _is_str(node) else ""
        problems.error(
            node if node.tag != _NULL else key_node,
            f"templates must be a list of strings (or a mapping tag -> list), found {_describe(node)}{hint}",
        )
        return [], None
    if not any(items for _, items in tagged):
        problems.error(node, "templates is empty; give at least one template")
        return [], None

    templates: list[Template] = []
    first_line: dict[str, int] = {}
    first_folded: dict[str, int] = {}
    declared = bool(groups)
    # Without declared groups, the first inline template names the groups; later ones add their terms.
    derived: list[tuple[str, dict[str, int]]] | None = None
    derived_from = 0
    for tag, tnode in ((tag, t) for tag, items in tagged for t in items):
        text = problems.word(tnode, "template")
        if text is None or not _visible(problems, tnode, "template", text):
            continue
        line = _line(tnode)
        if text in first_line:
            problems.error(tnode, f"duplicate template (first at line {first_line[text]})")
            continue
        first_line[text] = line
        folded = text.casefold()
        if folded in first_folded:
            problems.warn(tnode, f"templates at lines {first_folded[folded]} and {line} differ only in case: an "
                                 "uncased tokenizer (ALBERT's lower-cases its input) reads them the same, so they are "
                                 "not independent units; remove one")
        else:
            first_folded[folded] = line
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
        templates.append(Template(len(templates), text, line, slot, alternatives, tag or TEMPLATE_TAGS[0]))
    derived_groups = None
    if derived is not None:
        derived_groups = [(Group(gname, tuple(terms)), terms) for gname, terms in derived]
    return templates, derived_groups


def _tagged_lists(
    node: yaml.Node, key_node: yaml.Node, problems: _Problems, what: str, names: Sequence[str], *, strict_names: bool
) -> list[tuple[str, list[yaml.Node]]] | None:
    """A list (one untagged entry ``("", items)``) or a mapping name -> list; None when it is neither.

    With ``strict_names`` a mapping key must be one of ``names``; otherwise any ``[a-z0-9_]+`` name is allowed
    and a near-miss of one of ``names`` is an error (a typo would silently make a new category).
    """
    if isinstance(node, yaml.SequenceNode):
        return [("", list(node.value))]
    if not isinstance(node, yaml.MappingNode):
        return None
    out: list[tuple[str, list[yaml.Node]]] = []
    for knode, vnode in node.value:
        name = problems.word(knode, f"a {what} tag")
        if name is None:
            continue
        if strict_names and name not in names:
            problems.error(knode, f"unknown {what} tag {quoted(name)}{_suggest(name, names)}: {what} is a list, or a "
                                  f"mapping tag -> list with the tags {', '.join(names)}")
            continue
        if not strict_names:
            close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.75)
            if not _NAME_RE.fullmatch(name):
                problems.error(knode, f"{what} category {quoted(name)} must match [a-z0-9_]+")
                continue
            if close and close[0] != name:
                problems.error(knode, f"{what} category {quoted(name)} looks like a typo of {quoted(close[0])}")
                continue
        if not isinstance(vnode, yaml.SequenceNode):
            problems.error(vnode if vnode.tag != _NULL else knode,
                           f"{what} under {quoted(name)} must be a list, found {_describe(vnode)}")
            continue
        out.append((name, list(vnode.value)))
    return out


def _build_targets(
    entry: tuple[yaml.Node, yaml.Node] | None, problems: _Problems
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The targets (file order) and target -> category (empty categories for a plain list)."""
    if entry is None:
        return (), {}
    key_node, node = entry
    tagged = _tagged_lists(node, key_node, problems, "targets", CONVENTIONAL_TARGET_CATEGORIES, strict_names=False)
    if tagged is None:
        problems.error(
            node if node.tag != _NULL else key_node,
            f"targets must be a list of words (or a mapping category -> list), found {_describe(node)}"
            + ("; remove the key for no targets" if node.tag == _NULL else ""),
        )
        return (), {}
    targets: dict[str, int] = {}
    categories: dict[str, str] = {}
    lowered: dict[str, str] = {}
    for category, tnode in ((c, t) for c, items in tagged for t in items):
        target = _check_term(problems, tnode, "target")
        if target is None:
            continue
        if any(ch.isspace() for ch in target):
            problems.error(tnode, f"target {quoted(target)} must be a single word (no spaces)")
            continue
        if target in targets:
            problems.error(tnode, f"target {quoted(target)} is listed twice (first at line {targets[target]})")
            continue
        targets[target] = _line(tnode)
        categories[target] = category
        low = target.lower()
        if low in lowered:
            problems.warn(
                tnode,
                f"targets {quoted(lowered[low])} and {quoted(target)} differ only in case; an uncased tokenizer "
                "scores them identically",
            )
        else:
            lowered[low] = target
    return tuple(targets), categories


def _warn_shared_terms(groups: _GroupLines, problems: _Problems) -> None:
    owner: dict[str, str] = {}
    for group, lines in groups:
        for term in group.terms:
            if term in owner and owner[term] != group.name:
                problems.warn(
                    lines[term],
                    f"term {quoted(term)} is in both group {quoted(owner[term])} and group {quoted(group.name)}; "
                    "the comparison between them is blurred",
                )
            else:
                owner.setdefault(term, group.name)


def _build_references(
    entry: tuple[yaml.Node, yaml.Node] | None, problems: _Problems, known: dict[str, Sequence[str]],
    *, lexicon: bool = False,
) -> list[Reference]:
    """``reference:`` (a mapping, or a list of mappings each with a ``name``) -> validated references.

    ``known`` maps ``keyed_by`` ("target", "term") to the words a reference may give values for. In a lexicon
    the values are keyed by the lexicon's own words (``keyed_by`` is not written; it is set where it is used).
    """
    if entry is None:
        return []
    key_node, node = entry
    if isinstance(node, yaml.MappingNode):
        nodes, listed = [node], False
    elif isinstance(node, yaml.SequenceNode) and node.value:
        nodes, listed = list(node.value), True
    else:
        problems.error(node if node.tag != _NULL else key_node,
                       f"reference must be a mapping (source:, measure:, values:) or a list of them, "
                       f"found {_describe(node)}")
        return []
    refs: list[Reference] = []
    names: set[str] = set()
    allowed = tuple(k for k in REFERENCE_KEYS if not (lexicon and k == "keyed_by"))
    for rnode in nodes:
        if not isinstance(rnode, yaml.MappingNode):
            problems.error(rnode, "a reference must be a mapping (source:, measure:, values:), "
                                  f"found {_describe(rnode)}")
            continue
        fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in rnode.value:
            if not _is_str(k) or k.value not in allowed:
                shown = k.value if isinstance(k, yaml.ScalarNode) else "?"
                problems.error(k, f"unknown reference key {quoted(shown)}{_suggest(str(shown), allowed)}; "
                                  f"known keys: {', '.join(allowed)}")
                continue
            fields.setdefault(k.value, (k, v))
        required = ("source", "measure", "values") + (("name",) if listed else ())
        missing = [r for r in required if r not in fields]
        for r in missing:
            problems.error(rnode, f"reference is missing {quoted(r)}" + (" (several references need names)"
                                                                  if r == "name" else ""))
        text = {k: (problems.word(fields[k][1], f"reference {k}") or "") if k in fields else ""
                for k in ("name", "source", "licence", "measure", "keyed_by")}
        if text["name"] and not _NAME_RE.fullmatch(text["name"]):
            problems.error(fields["name"][1], f"reference name {quoted(text['name'])} must match [a-z0-9_]+")
        if text["name"] in names:
            problems.error(fields["name"][1], f"reference name {quoted(text['name'])} is used twice")
        names.add(text["name"])
        keyed_by = "word" if lexicon else (text["keyed_by"] or "target")
        if not lexicon and keyed_by not in known:
            problems.error(fields["keyed_by"][1],
                           f"reference keyed_by must be 'target' or 'term', found {quoted(keyed_by)}")
            continue
        values: dict[str, float] = {}
        if "values" in fields:
            vnode = fields["values"][1]
            if not isinstance(vnode, yaml.MappingNode) or not vnode.value:
                problems.error(vnode, f"reference values must be a mapping word -> share, found {_describe(vnode)}")
            else:
                words = known.get(keyed_by, ())
                for wnode, num in vnode.value:
                    word = problems.word(wnode, "a reference word")
                    if word is None:
                        continue
                    if word not in words:
                        kind = "word of the lexicon" if lexicon else f"{keyed_by} of the probe set"
                        problems.error(wnode, f"reference value for {quoted(word)}, which is not a {kind}"
                                              f"{_suggest(word, words)}")
                        continue
                    if word in values:
                        problems.error(wnode, f"reference value for {quoted(word)} is given twice")
                        continue
                    if not (isinstance(num, yaml.ScalarNode) and num.tag in (_INT, _FLOAT)):
                        problems.error(num, f"reference share of {quoted(word)} must be a number, found "
                                            f"{_describe(num)}")
                        continue
                    share = float(num.value)
                    if not 0.0 < share < 1.0:
                        problems.error(num, f"reference share of {quoted(word)} is {shown_text(num.value)}; shares "
                                            "lie strictly between 0 and 1 (write 0.42 for 42 %)")
                        continue
                    values[word] = share
        if not missing and values:
            refs.append(Reference(text["name"], text["source"], text["licence"], text["measure"], keyed_by,
                                  tuple(values.items())))
    return refs


def _build_factors(
    entry: tuple[yaml.Node, yaml.Node] | None, group_names: Sequence[str], problems: _Problems
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``factors: {race: [black, white], gender: [female, male]}``: two crossed factors whose level
    combinations ``<first>_<second>`` are exactly the groups (each group one cell of the crossing)."""
    if entry is None:
        return ()
    key_node, node = entry
    if not isinstance(node, yaml.MappingNode) or len(node.value) != N_FACTORS:
        problems.error(node if node.tag != _NULL else key_node,
                       f"factors must be a mapping of {N_FACTORS} factor names -> lists of levels, e.g. "
                       f"{{race: [black, white], gender: [female, male]}}; found {_describe(node)}")
        return ()
    factors: list[tuple[str, tuple[str, ...]]] = []
    for fnode, lnode in node.value:
        name = problems.word(fnode, "a factor name")
        if name is None:
            return ()
        if not _NAME_RE.fullmatch(name):
            problems.error(fnode, f"factor name {quoted(name)} must match [a-z0-9_]+")
            return ()
        levels = []
        if isinstance(lnode, yaml.SequenceNode):
            levels = [problems.word(v, f"a level of factor {quoted(name)}") for v in lnode.value]
        if len(levels) < 2 or any(v is None or not _NAME_RE.fullmatch(v) for v in levels) or \
                len(set(levels)) != len(levels):
            problems.error(lnode, f"factor {quoted(name)} needs a list of at least 2 distinct levels matching "
                                  f"[a-z0-9_]+, found {_describe(lnode)}")
            return ()
        factors.append((name, tuple(str(v) for v in levels)))
    (_, first), (_, second) = factors
    cells = [f"{a}_{b}" for a in first for b in second]
    if len(set(cells)) != len(cells):
        twice = sorted({c for c in cells if cells.count(c) > 1})
        problems.error(key_node, f"factors: the group name {quoted(twice[0])} stands for two combinations of "
                                 "levels; rename a level")
        return ()
    missing = [c for c in cells if c not in group_names]
    extra = [g for g in group_names if g not in cells]
    if missing or extra:
        parts = ([f"no group for {shown_text(', '.join(missing), 160)}"] if missing else []) + \
                ([f"group(s) {shown_text(', '.join(extra), 160)} match no combination"] if extra else [])
        problems.error(key_node, "factors: every group must be named <level of "
                                 f"{factors[0][0]}>_<level of {factors[1][0]}>, once per combination: "
                                 + "; ".join(parts))
        return ()
    return tuple(factors)


def _build_polysemous(
    entry: tuple[yaml.Node, yaml.Node] | None, problems: _Problems, words: Sequence[str]
) -> dict[str, str]:
    """``polysemous: {word: other sense}``: flags words with a second, unrelated sense (gay/happy)."""
    if entry is None:
        return {}
    key_node, node = entry
    if not isinstance(node, yaml.MappingNode):
        problems.error(node if node.tag != _NULL else key_node,
                       f"polysemous must be a mapping word -> its other sense, found {_describe(node)}")
        return {}
    out: dict[str, str] = {}
    for wnode, snode in node.value:
        word = problems.word(wnode, "a polysemous word")
        sense = problems.word(snode, f"the other sense of {quoted(word)}")
        if word is None or sense is None:
            continue
        if word not in words:
            problems.error(wnode, f"polysemous word {quoted(word)} is not a term or target of this file"
                                  f"{_suggest(word, words)}")
            continue
        out[word] = sense
    return out


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


def find_lexicon(name: str, probe_dir: Path | None = None) -> Path | None:
    """The file of lexicon ``name``: ``<probe_dir>/lexicons/NAME.yaml``, else the shipped library's."""
    from albert_audit.library import shipped_probes_dir

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
    text, sha = _read_text(Path(path), shown)
    root = _compose(text, shown)
    problems = _Problems(shown)
    if root is None or not isinstance(root, yaml.MappingNode):
        raise AuditError(f"{shown}:1: a lexicon file is a mapping (lexicon:, description:, source:, licence:, "
                         "groups:)")
    if _check_tree(root, problems):
        _check_aliases(text, problems)
        problems.raise_if_any()
    fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    typos: dict[str, yaml.Node] = {}
    for key, value in root.value:
        if not _is_str(key) or key.value not in LEXICON_KEYS:
            shown_key = key.value if isinstance(key, yaml.ScalarNode) else "?"
            problems.error(key, f"unknown key {quoted(shown_key)}{_suggest(str(shown_key), LEXICON_KEYS)}; "
                                f"known lexicon keys: {', '.join(LEXICON_KEYS)}")
            close = _closest(str(shown_key), LEXICON_KEYS)
            if close is not None:
                typos.setdefault(close, key)
            continue
        fields.setdefault(key.value, (key, value))
    _report_missing(root, LEXICON_REQUIRED_KEYS, fields, typos, problems)
    if "schema_version" in fields:
        node = fields["schema_version"][1]
        if not (isinstance(node, yaml.ScalarNode) and node.tag == _INT and node.value.lstrip("+") == "1"):
            problems.error(node, f"schema_version must be {SCHEMA_VERSION}, found {_describe(node)}")
    words = {k: (problems.word(fields[k][1], k) or "") if k in fields else ""
             for k in ("lexicon", "description", "source", "licence")}
    if words["lexicon"] and words["lexicon"] != Path(path).stem:
        problems.error(fields["lexicon"][1], f"lexicon name {quoted(words['lexicon'])} must equal the file name "
                                             f"{quoted(Path(path).stem)}")
    groups = _build_groups(fields.get("groups"), problems)
    all_words = [t for g, _ in groups for t in g.terms]
    refs = _build_references(fields.get("reference"), problems, {"word": all_words}, lexicon=True)
    poly = _build_polysemous(fields.get("polysemous"), problems, all_words)
    problems.raise_if_any()
    return Lexicon(words["lexicon"], words["description"], words["source"], words["licence"],
                   tuple(g for g, _ in groups), tuple(refs), tuple(poly.items()), str(path), sha)


_LEXICON_NAME_MAX = 100


def _lexicon_names(entry: tuple[yaml.Node, yaml.Node], problems: _Problems) -> list[tuple[str, yaml.Node]]:
    key_node, node = entry
    nodes = list(node.value) if isinstance(node, yaml.SequenceNode) else [node]
    names = []
    for n in nodes:
        name = problems.word(n, f"{key_node.value} (a lexicon name)")
        if name is None:
            continue
        if not _NAME_RE.fullmatch(name) or len(name) > _LEXICON_NAME_MAX:
            # Lexicon names become file names: never a path ('../x'), never longer than a file name may be.
            problems.error(n, f"lexicon name {quoted(name)} must match [a-z0-9_]+ (at most {_LEXICON_NAME_MAX} "
                              "characters): it names lexicons/NAME.yaml")
            continue
        names.append((name, n))
    if not names and not problems.errors:
        problems.error(node, f"{key_node.value} names no lexicon")
    return names


def _use_lexicons(
    entry: tuple[yaml.Node, yaml.Node], probe_dir: Path, problems: _Problems
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
    lexicons: list[Lexicon], node: yaml.Node, problems: _Problems
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


def _check_articles(templates: list[Template], terms: Sequence[str], targets: Sequence[str],
                    problems: _Problems) -> None:
    """Warn where a written "a"/"an" cannot agree with the words put after it."""
    from albert_audit.probeset.articles import agrees

    for t in templates:
        if t.slot is not None:
            words = t.alternatives if t.slot == "inline" else terms
            for match in _ARTICLE_BEFORE_SLOT_RE.finditer(t.text):
                wrong = [w for w in words if not agrees(match.group(1), w)]
                if wrong:
                    problems.warn(t.line, f"'{match.group(1)}' before the slot does not agree with "
                                          f"{len(wrong)} of {len(words)} terms ({', '.join(wrong[:4])}"
                                          f"{', ...' if len(wrong) > 4 else ''}); write 'a(n) <...>'")
        for match in _ARTICLE_BEFORE_MASK_RE.finditer(t.text):
            wrong = [w for w in targets if not agrees(match.group(1), w)]
            if wrong:
                problems.warn(t.line, f"'{match.group(1)} [MASK]' puts {len(wrong)} of {len(targets)} targets "
                                      f"after the wrong article ({', '.join(wrong[:4])}"
                                      f"{', ...' if len(wrong) > 4 else ''}); rephrase so that no article "
                                      "precedes the mask")


# -------------------------------------------------------------------------------------------- API


def load_probe_set(path: str | PathLike[str]) -> ProbeSet:
    """Load and validate one probe-set YAML file.

    Raises :class:`AuditError` whose message has one ``PATH:LINE: problem`` line per problem found.
    """
    shown = shown_path(path)
    text, sha = _read_text(Path(path), shown)
    root = _compose(text, shown)
    if root is None:
        raise AuditError(f"{shown}:1: file is empty (no YAML content); see docs for the probe-set format")
    problems = _Problems(shown)
    if _check_tree(root, problems):
        _check_aliases(text, problems)
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
