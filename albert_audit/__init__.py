"""albert-audit: bias and fairness auditing of masked language models.

Importing this package stays light (no torch); heavy stages are imported when used. The Python API lives in
:mod:`albert_audit.api`; its main entry points are also reachable from here (``albert_audit.run_audit``,
``albert_audit.AuditConfig``, ...), loaded on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: Names of albert_audit.api offered at the top level (imported when first used).
_API_NAMES = ("AuditConfig", "CompareConfig", "ModelOptions", "StatsOptions", "compare_runs", "run_demo",
              "rerender_report")

__all__ = ["__version__", "run_audit", *_API_NAMES]


def run_audit(*args: Any, **kwargs: Any) -> Any:
    """Run an audit (see :func:`albert_audit.api.run_audit`)."""
    from albert_audit.api import run_audit as _run_audit

    return _run_audit(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        from albert_audit import api

        return getattr(api, name)
    raise AttributeError(f"module 'albert_audit' has no attribute {name!r}")
