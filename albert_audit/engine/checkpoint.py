"""Scored batches saved as they finish, so that a crash or Ctrl-C loses at most the batch in flight.

Parts are plain .npz arrays (never pickle) in a folder next to the run's outputs, keyed by a fingerprint of
the work (model weights, dtype, device type, the exact token sequences and read-outs). A rerun of the same
command finds the parts, checks the fingerprint and scores only what is missing; a different fingerprint
discards them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


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
        self.folder = Path(folder)
        self.key = key
        self.part_keys = part_keys
        self.every_s = every_s
        self._pending: list[dict[str, np.ndarray]] = []
        self._last_save = time.monotonic()
        self._n_parts = 0

    def load(self) -> list[dict[str, np.ndarray]]:
        """Parts saved earlier for the same work; parts of other work are discarded."""
        stamp = self.folder / "fingerprint"
        if not stamp.is_file() or stamp.read_text().strip() != self.key:
            self.clear()
            return []
        parts = []
        for path in sorted(self.folder.glob("part-*.npz")):
            try:
                with np.load(path, allow_pickle=False) as data:
                    parts.append({key: data[key] for key in self.part_keys})
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)  # a part cut off mid-write is scored again
        self._n_parts = len(parts)
        return parts

    def add(self, part: dict[str, np.ndarray]) -> None:
        """Queue one batch's results; write them out every `every_s` seconds."""
        self._pending.append(part)
        if time.monotonic() - self._last_save >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Write the queued batches as one part (atomically)."""
        if not self._pending:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = self.folder / "fingerprint"
        if not stamp.is_file():
            stamp.write_text(self.key + "\n")
        merged = {key: np.concatenate([p[key] for p in self._pending]) for key in self.part_keys}
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=self.folder)
        os.close(fd)
        with open(tmp, "wb") as handle:
            np.savez(handle, **merged)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.folder / f"part-{self._n_parts:05d}.npz")
        self._n_parts += 1
        self._pending = []
        self._last_save = time.monotonic()

    def clear(self) -> None:
        """Remove the folder and everything in it."""
        shutil.rmtree(self.folder, ignore_errors=True)
