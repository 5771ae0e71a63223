"""Render ``compare.html`` of a compare folder: context (numbers, charts) + ``templates/compare.html.j2``.

Same environment as the run report (autoescape always on, undefined names are errors); the page loads
nothing from the network and runs no script (its Content-Security-Policy allows none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from albert_audit.contract import COMPARE_REPORT_FILE
from albert_audit.report.render import make_environment
from albert_audit.results import write_text

COMPARE_TEMPLATE = "compare.html.j2"


def render_compare_html(context: dict[str, Any], *, env: jinja2.Environment | None = None) -> str:
    """Lay a context from :func:`albert_audit.report.compare_context.build_compare_context` out as HTML."""
    env = env or make_environment()
    return env.get_template(COMPARE_TEMPLATE).render(**context)


def render_compare(folder: Path, *, out_path: Path | None = None) -> Path:
    """Render ``compare.html`` for a compare folder from its saved files; return the written path.

    Reads ``compare_summary.json``, ``deltas.csv`` and each run's ``findings.csv`` (never a model); writes
    ``out_path`` (default ``folder/compare.html``) atomically.
    """
    from albert_audit.report.compare_context import build_compare_context  # matplotlib loads only here

    folder = Path(folder)
    html = render_compare_html(build_compare_context(folder))
    return write_text(Path(out_path) if out_path is not None else folder / COMPARE_REPORT_FILE, html)
