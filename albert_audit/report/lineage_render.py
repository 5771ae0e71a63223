"""Render ``lineage.html`` of a lineage folder, and the page of `albert-audit history --out`.

Same environment as the other reports (autoescape always on, undefined names are errors); the pages load
nothing from the network and run no script (their Content-Security-Policy allows none).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from albert_audit.contract import LINEAGE_REPORT_FILE
from albert_audit.report.render import make_environment
from albert_audit.results import write_text

LINEAGE_TEMPLATE = "lineage.html.j2"
HISTORY_TEMPLATE = "history.html.j2"


def render_lineage(folder: Path, *, out_path: Path | None = None) -> Path:
    """Draw lineage.html from the lineage folder's files; return the written path."""
    from albert_audit.report.lineage_context import build_lineage_context

    folder = Path(folder)
    html = make_environment().get_template(LINEAGE_TEMPLATE).render(**build_lineage_context(folder))
    return write_text(Path(out_path) if out_path is not None else folder / LINEAGE_REPORT_FILE, html)


def render_history(table: pd.DataFrame, subject: str) -> str:
    """The history page as HTML text."""
    from albert_audit.report.lineage_context import build_history_context

    return make_environment().get_template(HISTORY_TEMPLATE).render(**build_history_context(table, subject))
