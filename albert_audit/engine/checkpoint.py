"""Scored batches saved as they finish, so that a crash or Ctrl-C loses at most the batch in flight.

Parts are plain .npz arrays (never pickle) in a folder next to the run's outputs, keyed by a fingerprint of
the work (model weights, dtype, device type, the exact token sequences and read-outs). A rerun of the same
command finds the parts, checks the fingerprint and scores only what is missing.

No two processes can mix their parts: each writer names its parts ``part-<pid>-<random>-<n>.npz`` (never the
name of another writer's part) and stores its work key inside every part (``WORK_KEY``). A reader uses only the
parts whose stored key is its own; parts of other work (or of the old format, without a stored key) are
removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

WORK_KEY = "work_key"
"""The array of a part that holds its work key (the fingerprint of the work it belongs to)."""
PART_GLOB = "part-*.npz"


def fingerprint(*parts: Any) -> str:
    """sha256 of the JSON form of the given parts."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
        digest.update(b"\0")
    return digest.hexdigest()


class ScoreCheckpoint:
    """Append-only store of scored batches for one piece of work; a batch is a dict of the arrays ``part_keys``."""

    def __init__(self, folder: Path, key: str, part_keys: tuple[str, ...], *, every_s: float = 20.0) -> None:
        if WORK_KEY in part_keys:
            raise ValueError(f"{WORK_KEY!r} is reserved for the work key")
        self.folder = Path(folder)
        self.key = key
        self.part_keys = part_keys
        self.every_s = every_s
        self._pending: list[dict[str, np.ndarray]] = []
        self._last_save = time.monotonic()
        self._n_parts = 0
        self._prefix = f"part-{os.getpid()}-{secrets.token_hex(4)}-"

    def _is_mine(self, data: Any) -> bool:
        """True when an opened part stores this checkpoint's work key."""
        return WORK_KEY in data.files and str(data[WORK_KEY]) == self.key

    def load(self) -> list[dict[str, np.ndarray]]:
        """Parts saved earlier for the same work (by any process); parts of other work are removed."""
        parts = []
        for path in sorted(self.folder.glob(PART_GLOB)):
            try:
                with np.load(path, allow_pickle=False) as data:
                    part = {key: data[key] for key in self.part_keys} if self._is_mine(data) else None
            except (OSError, ValueError, KeyError, EOFError):
                part = None  # a part cut off mid-write is scored again
            if part is None:
                path.unlink(missing_ok=True)  # other work, the old format (no stored key) or unreadable
            else:
                parts.append(part)
        (self.folder / "fingerprint").unlink(missing_ok=True)  # the stamp file of the old format
        for stale in self.folder.glob("*.npz.tmp"):  # a part whose writer was killed mid-write (the run folder's
            stale.unlink(missing_ok=True)            # lock makes every other writer dead)
        return parts

    def add(self, part: dict[str, np.ndarray]) -> None:
        """Queue one batch's results; write them out every `every_s` seconds."""
        self._pending.append(part)
        if time.monotonic() - self._last_save >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Write the queued batches as one part (atomically), with the work key inside."""
        if not self._pending:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        merged = {key: np.concatenate([p[key] for p in self._pending]) for key in self.part_keys}
        merged[WORK_KEY] = np.array(self.key)
        fd, tmp = tempfile.mkstemp(suffix=".npz.tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **merged)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.folder / f"{self._prefix}{self._n_parts:05d}.npz")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._n_parts += 1
        self._pending = []
        self._last_save = time.monotonic()

    def clear(self) -> None:
        """Remove the parts of this work (written by any process); the folder too once nothing else is in it."""
        for path in self.folder.glob(PART_GLOB):
            try:
                with np.load(path, allow_pickle=False) as data:
                    if not self._is_mine(data):
                        continue
            except (OSError, ValueError, KeyError, EOFError):
                pass  # unreadable: remove it too
            path.unlink(missing_ok=True)
        (self.folder / "fingerprint").unlink(missing_ok=True)
        for stale in self.folder.glob("*.npz.tmp"):
            stale.unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:
            pass  # missing, or still holds another process's parts
