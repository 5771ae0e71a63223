"""Checking and creating an output folder (``--out``) before any work is done.

One clear line for every unusable place: a file or a path under a file, a symlink loop or a dangling link,
pseudo file systems (/proc, /sys, /dev), a name too long for the file system, a folder that can't be written,
and places where results must never go: inside the installed package, inside the audited model's folder,
or in a probe library (the shipped one, or a folder holding the probe files of the run).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from albert_audit.errors import AuditError, os_reason, shown

PSEUDO_FILE_SYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))
_PACKAGE_DIR = Path(__file__).resolve().parent


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _resolve(out: Path) -> Path:
    name = shown(out)
    try:
        if out.is_symlink() and not out.exists():
            try:
                os.stat(out)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise AuditError(f"--out {name}: a symbolic-link loop") from None
            raise AuditError(f"--out {name}: a symbolic link to nothing ({shown(os.readlink(out))})")
        return out.resolve(strict=False)
    except RuntimeError:  # Python < 3.13: symlink loop
        raise AuditError(f"--out {name}: a symbolic-link loop") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AuditError(f"--out {name}: a symbolic-link loop") from None
        raise AuditError(f"--out {name}: {os_reason(exc)}") from None


def forbidden_places(*, model_dir: str | Path | None = None,
                     probe_files: Iterable[str | Path] = ()) -> list[tuple[Path, str]]:
    """The folders an output folder must not be inside, each with the reason shown to the user."""
    from albert_audit.library import shipped_probes_dir, shipped_templates_dir

    places = [(_PACKAGE_DIR, "the installed albert_audit package"),
              (shipped_probes_dir().resolve(), "the shipped probe library"),
              (shipped_templates_dir().resolve(), "the shipped report templates")]
    if model_dir is not None and Path(model_dir).is_dir():
        places.append((Path(model_dir).resolve(), "the model's folder"))
    places += [(Path(p).resolve().parent, "a folder holding the run's probe files") for p in probe_files]
    return places


def prepare_out_folder(out: str | Path, *, forbidden: Iterable[tuple[Path, str]] = ()) -> Path:
    """Check ``out`` and create it (with parents); the resolved folder, or AuditError with one line."""
    out = Path(out)
    name = shown(out)
    if not str(out):
        raise AuditError("--out: empty path")
    resolved = _resolve(out)
    for pseudo in PSEUDO_FILE_SYSTEMS:
        if _inside(resolved, pseudo):
            raise AuditError(f"--out {name}: inside {pseudo}, a pseudo file system; choose a normal folder")
    for folder, reason in forbidden:
        exact_only = reason.startswith("a folder holding")
        if (resolved == folder) if exact_only else _inside(resolved, folder):
            raise AuditError(f"--out {name}: inside {reason} ({shown(folder)}); write results elsewhere")
    try:
        for parent in [resolved, *resolved.parents]:
            if parent.exists():
                if not parent.is_dir():
                    where = "is a file" if parent == resolved else f"is under a file ({shown(parent)})"
                    raise AuditError(f"--out {name}: {where}; expected a folder")
                break
        resolved.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".albert-audit-write-check.", dir=resolved)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise AuditError(f"--out {name}: cannot write there ({os_reason(exc)})") from None
    return resolved
