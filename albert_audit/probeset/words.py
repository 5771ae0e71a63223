"""Checks of one written word or text: no invisible or control characters, no special tokens, no slot marks."""

from __future__ import annotations

import re
import unicodedata

import yaml

from albert_audit.errors import quoted
from albert_audit.probeset.model import MASK_PLACEHOLDER
from albert_audit.probeset.nodes import Problems, char_name

# Special tokens (and the mask itself, in any spelling) as a term or target: never a word the model can fill in.
_SPECIAL_TERM_RE = re.compile(r"\[(?:CLS|SEP|PAD|UNK|MASK)\]|</?(?:s|pad|unk|cls|sep|mask)>", re.IGNORECASE)
_INVISIBLE_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")
"""Control, format (zero-width, bidi overrides), surrogate and line/paragraph-separator characters: never part of
a word; in a template, term, target or group name they hide text or change how it is scored."""


def visible(problems: Problems, node: yaml.Node, what: str, value: str) -> bool:
    """True if ``value`` has no invisible or control character; else records an error naming the first one."""
    for char in value:
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            problems.error(node, f"{what} {quoted(value)} contains the invisible or control character "
                                 f"{char_name(char)}; remove it (it is not part of any word)")
            return False
    return True


def check_term(problems: Problems, node: yaml.Node, what: str) -> str | None:
    """A group term or target as written (a visible word, no special token, no mask or slot mark), or None
    after recording the problem."""
    term = problems.word(node, what)
    if term is None or not visible(problems, node, what, term):
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
