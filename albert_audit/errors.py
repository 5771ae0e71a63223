"""User-facing errors, and how user-supplied values are shown in them."""

from __future__ import annotations

import unicodedata

SHOWN_LIMIT = 80
"""Longest value (in characters) an error message repeats; longer ones are cut in the middle."""


class AuditError(Exception):
    """A user-facing error; its message is one clear line (or several, one problem per line)."""


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """``value`` as text safe to print in one line: control, format and surrogate characters escaped
    (``\\x1b``, ``\\u200b``, ``\\udc80``), cut to ``limit`` characters in the middle with an ellipsis."""
    text = str(value)
    out = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs", "Zl", "Zp") or (category == "Zs" and char != " "):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    safe = "".join(out)
    if len(safe) <= limit:
        return safe
    head = max(1, (limit - 1) * 2 // 3)
    tail = max(1, limit - 1 - head)
    return f"{safe[:head]}…{safe[-tail:]}"
