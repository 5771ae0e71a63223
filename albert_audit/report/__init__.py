"""The HTML report of a run folder: charts (data -> SVG), context (run folder -> numbers), render (HTML).

No torch here: a report is made from the saved files of a run, without the model.
"""

from __future__ import annotations

from albert_audit.report.render import render_report

__all__ = ["render_report"]
