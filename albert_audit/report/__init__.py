"""The HTML reports of a run folder (report.html) and of a compare folder (compare.html). No torch here: a
report is made from saved files, without the model.

* ``fmt``: the formatting kit of both pages (numbers, p/q, intervals, confidence level from alpha, slugs, text);
* ``sources``: the findings and deltas tables typed once (contract.restore_types), a compare folder's files;
* ``charts`` (drawing) and ``svg`` (figure -> inline SVG);
* report.html: ``context`` (the whole page), ``run_tables``, ``run_figures``, ``narrative``, ``metadata``;
  ``render`` writes it;
* compare.html: ``compare_context``, ``compare_figures``, ``compare_models``; ``compare_render`` writes it.
"""

from __future__ import annotations

from albert_audit.report.render import render_report

__all__ = ["render_report"]
