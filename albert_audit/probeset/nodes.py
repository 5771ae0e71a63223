"""YAML nodes as the validators read them: tags, how a node is described in a message, and the problems of one
file collected as ``PATH:LINE: message`` lines."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Sequence
from os import PathLike

import yaml

from albert_audit.errors import AuditError, quoted
from albert_audit.errors import shown as shown_text
from albert_audit.probeset.model import NAME_RE

TAG = "tag:yaml.org,2002:"
STR, INT, BOOL, NULL, FLOAT = (TAG + t for t in ("str", "int", "bool", "null", "float"))
SEQ, MAP = TAG + "seq", TAG + "map"
SCALAR_TAGS = {STR, INT, BOOL, NULL, FLOAT, TAG + "timestamp"}


PATH_SHOWN_LIMIT = 240
"""Longest file name an error message repeats (longer ones are cut in the middle, like values)."""


def shown_path(path: str | PathLike[str]) -> str:
    """A file name as messages show it: control characters escaped, cut past :data:`PATH_SHOWN_LIMIT`."""
    return shown_text(path, PATH_SHOWN_LIMIT)


def line_of(node: yaml.Node) -> int:
    """The (1-based) line a node starts on."""
    return node.start_mark.line + 1


def describe(node: yaml.Node) -> str:
    """How YAML reads a node, for messages ('the boolean False', 'a list', ...)."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    tag, raw = node.tag, node.value
    if tag == BOOL:
        return f"the boolean {raw.lower() in ('yes', 'true', 'on')}"
    if tag == NULL:
        return "null (no value)"
    if tag == INT:
        return f"the integer {shown_text(raw)}"
    if tag == FLOAT:
        return f"the number {shown_text(raw)}"
    if tag == TAG + "timestamp":
        return f"the date {shown_text(raw)}"
    if tag == STR:
        return f"the string {quoted(raw)}"
    return f"a value tagged {short_tag(tag)}"


def short_tag(tag: str) -> str:
    """A tag for messages (``!!python/object``), escaped and cut."""
    return shown_text("!!" + tag[len(TAG) :] if tag.startswith(TAG) else tag)


def char_name(char: str | int) -> str:
    """A character for messages: ``U+200B ZERO WIDTH SPACE (\\u200b)``."""
    char = chr(char) if isinstance(char, int) else char
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}{' ' + name if name else ''} ({shown_text(char)})"


def is_str(node: yaml.Node) -> bool:
    """True for a plain string scalar."""
    return isinstance(node, yaml.ScalarNode) and node.tag == STR


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` is most probably a typo of, or None."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a probable typo, else ""."""
    close = closest(word, choices)
    return f" (did you mean {quoted(close)}?)" if close else ""


class Problems:
    """Collects errors and warnings of one file as (line, message)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[tuple[int, str]] = []
        self.warnings: list[tuple[int, str]] = []
        self.foreign: list[str] = []  # problems of another file (a lexicon), already formatted

    def error(self, node_or_line: yaml.Node | int, message: str) -> None:
        line = node_or_line if isinstance(node_or_line, int) else line_of(node_or_line)
        self.errors.append((line, message))

    def warn(self, node_or_line: yaml.Node | int, message: str) -> None:
        line = node_or_line if isinstance(node_or_line, int) else line_of(node_or_line)
        self.warnings.append((line, message))

    def format(self, items: list[tuple[int, str]]) -> list[str]:
        return [f"{self.path}:{line}: {msg}" for line, msg in sorted(items, key=lambda x: x[0])]

    def raise_if_any(self) -> None:
        if self.errors or self.foreign:
            raise AuditError("\n".join(self.format(self.errors) + self.foreign))

    def text(self, node: yaml.Node, what: str) -> str | None:
        """The string value of ``node``, or None after recording a type error."""
        if is_str(node):
            return node.value
        if node.tag not in SCALAR_TAGS | {SEQ, MAP}:
            return None  # an unsupported tag, already reported by check_tree
        if isinstance(node, yaml.ScalarNode) and node.tag == NULL and not node.value:
            self.error(node, f"{what} is missing (YAML reads an empty value as null); give a string")
        elif isinstance(node, yaml.ScalarNode):
            self.error(
                node,
                f"{what} must be a string, but YAML reads {quoted(node.value)} as {describe(node)}; "
                f'quote it ("{shown_text(node.value, 40)}") if you mean the text',
            )
        else:
            self.error(node, f"{what} must be a string, found {describe(node)}")
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


def tagged_lists(
    node: yaml.Node, key_node: yaml.Node, problems: Problems, what: str, names: Sequence[str], *, strict_names: bool
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
            problems.error(knode, f"unknown {what} tag {quoted(name)}{suggest(name, names)}: {what} is a list, or a "
                                  f"mapping tag -> list with the tags {', '.join(names)}")
            continue
        if not strict_names:
            close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.75)
            if not NAME_RE.fullmatch(name):
                problems.error(knode, f"{what} category {quoted(name)} must match [a-z0-9_]+")
                continue
            if close and close[0] != name:
                problems.error(knode, f"{what} category {quoted(name)} looks like a typo of {quoted(close[0])}")
                continue
        if not isinstance(vnode, yaml.SequenceNode):
            problems.error(vnode if vnode.tag != NULL else knode,
                           f"{what} under {quoted(name)} must be a list, found {describe(vnode)}")
            continue
        out.append((name, list(vnode.value)))
    return out
