"""A probe or lexicon file -> its YAML node tree, safely: size and encoding checked, composed with
``yaml.SafeLoader`` (nothing constructed or executed), parser errors placed at the line that caused them, and
aliases, unsupported tags and duplicate keys refused."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

import yaml

from albert_audit import inputs
from albert_audit.errors import AuditError, quoted
from albert_audit.errors import shown as shown_text
from albert_audit.probeset.nodes import MAP, SCALAR_TAGS, SEQ, Problems, char_name, line_of, short_tag

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Largest probe or lexicon file read."""


def read_text(path: Path, shown: str) -> tuple[str, str]:
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


def compose(text: str, shown: str) -> yaml.Node | None:
    """The YAML node tree of ``text`` (None for an empty document); a parser error is one ``PATH:LINE`` line."""
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
            f"{shown}:{line}: invalid YAML: the control character {char_name(exc.character)} (column {column}) is "
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


def check_aliases(text: str, problems: Problems) -> None:
    """Record an error at every alias (``*name``) of the document."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            problems.error(
                event.start_mark.line + 1,
                f"YAML alias *{event.anchor} is not supported (no anchors/aliases); write the values out",
            )


def check_tree(root: yaml.Node, problems: Problems) -> bool:
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
            if node.tag not in SCALAR_TAGS:
                problems.error(
                    node, f"unsupported YAML tag {short_tag(node.tag)}; probe files hold plain data only"
                )
        elif isinstance(node, yaml.SequenceNode):
            if node.tag != SEQ:
                problems.error(
                    node, f"unsupported YAML tag {short_tag(node.tag)}; probe files hold plain data only"
                )
            stack.extend(reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            if node.tag != MAP:
                problems.error(
                    node, f"unsupported YAML tag {short_tag(node.tag)}; probe files hold plain data only"
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
                        first[ident] = line_of(key)
                stack.extend((value, key))
    return has_alias
