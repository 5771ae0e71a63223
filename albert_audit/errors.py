"""User-facing errors, how user-supplied values are shown in them, and the plain reason of an OS error."""

from __future__ import annotations

import errno
import unicodedata

SHOWN_LIMIT = 80
"""Longest value (in characters) an error message repeats; longer ones are cut in the middle."""


class AuditError(Exception):
    """A user-facing error; its message is one clear line (or several, one problem per line)."""


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """``value`` as text safe to print in one line: control, format and surrogate characters escaped
    (``\\n``, ``\\x1b``, ``\\u200b``, ``\\udc80``), cut to ``limit`` characters in the middle with an ellipsis."""
    text = str(value)
    out = []
    short = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    for char in text:
        if char in short:
            out.append(short[char])
            continue
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


def quoted(value: object, limit: int = SHOWN_LIMIT) -> str:
    """:func:`shown` between single quotes (for names inside a sentence), at most ``limit`` characters."""
    return f"'{shown(value, max(3, limit - 2))}'"


def os_reason(exc: OSError) -> str:
    """A short, plain reason for an OS error (the ones users meet when writing results)."""
    reasons = {errno.ENAMETOOLONG: "a name in the path is too long for the file system",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on the device",
               errno.EDQUOT: "disk quota exceeded"}
    return reasons.get(exc.errno or 0, exc.strerror or str(exc))
