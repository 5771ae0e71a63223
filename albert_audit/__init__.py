"""albert-audit: bias and fairness auditing of masked language models.

Importing this package stays light (no torch); heavy stages are imported when used.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "run_audit"]


def run_audit(*args: Any, **kwargs: Any) -> Any:
    """Run an audit (see :func:`albert_audit.api.run_audit`)."""
    from albert_audit.api import run_audit as _run_audit

    return _run_audit(*args, **kwargs)
