"""The shipped probe library and report templates: where they are, and resolving a ``--probes`` argument.

From a source checkout the top-level ``probes/`` and ``templates/`` folders are used; an installed wheel
carries copies at ``albert_audit/_data/probes`` and ``albert_audit/_data/templates``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from albert_audit.errors import AuditError, os_reason, shown

_PACKAGE_DIR = Path(__file__).resolve().parent
_PROBE_SUFFIXES = (".yaml", ".yml")


def _shipped_dir(name: str) -> Path:
    checkout = _PACKAGE_DIR.parent
    # pyproject.toml marks a source checkout, so an unrelated site-packages/probes is never picked up.
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    return _PACKAGE_DIR / "_data" / name


def shipped_probes_dir() -> Path:
    """The folder of the shipped probe sets (``<repo>/probes`` in a checkout, else the wheel's copy)."""
    return _shipped_dir("probes")


def shipped_templates_dir() -> Path:
    """The folder of the shipped HTML report templates (``<repo>/templates`` or the wheel's copy)."""
    return _shipped_dir("templates")


def list_shipped() -> list[Path]:
    """The shipped probe-set files, sorted by name (empty when the library is missing)."""
    folder = shipped_probes_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in _PROBE_SUFFIXES and p.is_file())


def resolve_probe_arg(arg: str) -> Path:
    """Resolve a ``--probes`` argument: an existing file, or the name of a shipped probe set.

    Raises :class:`AuditError` for a directory, a missing path, or an unknown name (listing the names).
    """
    path = Path(arg)
    try:
        if path.is_dir():
            raise AuditError(f"{shown(arg)}: is a directory; pass a probe-set YAML file or a shipped set's name")
        if path.exists() or path.is_symlink():
            return path  # a file, or a device, FIFO or broken link that the reader refuses with its own line
    except OSError as exc:
        raise AuditError(f"{shown(arg)}: cannot use this path ({os_reason(exc)})") from None
    shipped = {p.stem: p for p in list_shipped()}
    if arg in shipped:
        return shipped[arg]
    looks_like_path = any(sep in arg for sep in ("/", "\\")) or arg.endswith(_PROBE_SUFFIXES)
    if looks_like_path:
        raise AuditError(f"{shown(arg)}: no such file")
    close = difflib.get_close_matches(arg, list(shipped), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    available = ", ".join(shipped) if shipped else f"none found in {shipped_probes_dir()}"
    raise AuditError(
        f"'{shown(arg)}' is neither a file nor a shipped probe set{hint}; shipped probe sets: {available}"
    )
