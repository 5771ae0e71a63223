"""Reading user-named input files safely: regular files only, size-limited, decoded with a clear error.

Devices (``/dev/zero``), FIFOs (which block a reader forever), sockets and folders are refused before anything
is read, and so is a file over the caller's size limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from albert_audit.errors import AuditError, shown


def check_regular_file(path: str | Path, *, what: str, max_bytes: int) -> int:
    """The size of ``path`` when it is a regular file of at most ``max_bytes``; AuditError otherwise."""
    name = shown(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise AuditError(f"{name}: no such file") from None
    except OSError as exc:
        raise AuditError(f"{name}: cannot read {what} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise AuditError(f"{name}: is a directory, expected {what}")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
        raise AuditError(f"{name}: is {kind}, not a regular file; expected {what}")
    if info.st_size > max_bytes:
        raise AuditError(f"{name}: {info.st_size / 2**20:.1f} MiB, over the {max_bytes / 2**20:g} MiB limit for "
                         f"{what}")
    return info.st_size


def read_bytes_limited(path: str | Path, *, what: str, max_bytes: int) -> bytes:
    """The content of a regular file of at most ``max_bytes`` (re-checked while reading)."""
    check_regular_file(path, what=what, max_bytes=max_bytes)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise AuditError(f"{shown(path)}: cannot read {what} ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise AuditError(f"{shown(path)}: over the {max_bytes / 2**20:g} MiB limit for {what}")
    return data


def read_text_limited(path: str | Path, *, what: str, max_bytes: int) -> str:
    """A UTF-8 text file (BOM allowed) of at most ``max_bytes``; a decoding error names the line."""
    data = read_bytes_limited(path, what=what, max_bytes=max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise AuditError(f"{shown(path)}:{line}: not valid UTF-8 (byte offset {exc.start})") from None
