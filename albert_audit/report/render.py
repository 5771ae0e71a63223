"""Render ``report.html`` of a run folder: context (numbers) + jinja2 templates (layout) -> one HTML file.

The environment escapes every variable (``autoescape=True``, whatever the template's file name; jinja2's
``select_autoescape`` would leave ``.j2`` files unescaped) and fails on an undefined name
(``StrictUndefined``) instead of printing nothing. Templates come from :func:`shipped_templates_dir`
(``<repo>/templates`` in a checkout, the wheel's copy when installed); users never supply templates.

The page carries a Content-Security-Policy that blocks every network load and allows only the report's
own inline script, identified by its SHA-256 hash.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import jinja2

from albert_audit.contract import REPORT_FILE
from albert_audit.library import shipped_templates_dir
from albert_audit.results import read_run, write_text

BASE_TEMPLATE = "base.html.j2"
SCRIPT_TEMPLATE = "_sortable.js.j2"


def make_environment(templates_dir: Path | None = None) -> jinja2.Environment:
    """The report's jinja2 environment: autoescape always on, undefined names are errors."""
    folder = Path(templates_dir) if templates_dir is not None else shipped_templates_dir()
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def script_hash(env: jinja2.Environment) -> str:
    """CSP source (``'sha256-…'`` without quotes) of the inline script exactly as the page includes it."""
    script = env.get_template(SCRIPT_TEMPLATE).render()
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def render_html(context: dict[str, Any], *, env: jinja2.Environment | None = None) -> str:
    """Lay a context from :func:`albert_audit.report.context.build_context` out as one HTML page."""
    env = env or make_environment()
    return env.get_template(BASE_TEMPLATE).render(**context, csp_script_hash=script_hash(env))


def render_report(run_dir: Path, *, out_path: Path | None = None) -> Path:
    """Render ``report.html`` for a run folder from its saved files and return the written path.

    Reads ``items.parquet``, ``fills.parquet``, ``targets.parquet``, ``findings.csv`` and ``summary.json``
    (never the model). Writes ``out_path`` (default ``run_dir/report.html``) atomically: a temporary file in
    the same folder, fsynced, then renamed over the target, so a crash never leaves half a report.
    Raises :class:`~albert_audit.errors.AuditError` for a missing or unreadable run folder.
    """
    from albert_audit.report.context import build_context  # matplotlib loads only when a report is made

    run_dir = Path(run_dir)
    run = read_run(run_dir, need_findings=True)
    html = render_html(build_context(run))
    target = Path(out_path) if out_path is not None else run_dir / REPORT_FILE
    return write_text(target, html)
