"""An exclusive lock on a run folder, so that two processes never write (or read half-written) one folder.

The lock is an advisory ``flock`` on ``LOCK_FILE`` inside the folder, held for the life of the command. The
kernel drops it when the owner exits or is killed, so a lock left by a dead process is simply taken over;
a live owner makes the second command stop with one line naming its pid and start time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from types import TracebackType

from albert_audit.errors import AuditError, shown

try:  # POSIX; elsewhere the lock degrades to "no lock" (documented in the README)
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms CI runs
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".albert-audit.lock"


class RunLock:
    """``with RunLock(folder, command="run"):`` holds the folder's lock; AuditError when another holds it."""

    def __init__(self, folder: str | Path, *, command: str) -> None:
        self.folder = Path(folder)
        self.command = command
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        """The lock file."""
        return self.folder / LOCK_FILE

    def acquire(self) -> RunLock:
        """Take the lock (creating the folder's lock file); AuditError if a live process holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise AuditError(f"{shown(self.folder)}: cannot create the run lock ({exc.strerror or exc})") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = _read_owner(fd)
                os.close(fd)
                raise AuditError(f"{shown(self.folder)}: in use by another albert-audit process ({owner}); wait "
                                 "for it to finish or use another --out") from None
        self._fd = fd
        record = {"pid": os.getpid(), "started_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "command": self.command}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        return self

    def release(self) -> None:
        """Drop the lock (the file stays; its content is only informative)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _read_owner(fd: int) -> str:
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        return f"pid {int(record['pid'])}, {record.get('command', '?')} started {record.get('started_utc', '?')}"
    except (OSError, ValueError, KeyError, TypeError):
        return "owner unknown"
