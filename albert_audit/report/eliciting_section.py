"""The stereotype-eliciting part of a probe set's section in report.html.

Templates tagged ``stereotype_eliciting`` ("Everyone says the <group> is [MASK].") are left out of every
statistic of findings.csv. The run computes the same statistics over them alone into
findings_stereotype_eliciting.csv (their own FDR families); this part shows those rows apart, labelled, with
the templates they come from. Numbers come from that file only.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from albert_audit import contract
from albert_audit.report.narrative import top_items
from albert_audit.report.run_tables import findings_headers, findings_rows

ELICITING_TAG = "stereotype_eliciting"


def eliciting_section(name: str, items: pd.DataFrame, eliciting: pd.DataFrame | None, *, alpha: float,
                      method_index: dict[str, int]) -> dict[str, Any] | None:
    """``{"templates", "n_templates", "top", "rows", "headers", "caption", "n_tests", "n_significant",
    "methods"}`` of one probe set's stereotype-eliciting templates, or None when it has none."""
    if "template_tag" not in items.columns:
        return None
    its = items[(items["probe_set"] == name) & (items["template_tag"] == ELICITING_TAG)]
    if its.empty:
        return None
    templates = list(dict.fromkeys(its.sort_values("template_id", kind="mergesort")["template"]))
    rows = (eliciting[eliciting["probe_set"] == name] if eliciting is not None
            else pd.DataFrame(columns=list(contract.FINDINGS.names)))
    tested = rows[rows["q_value"].notna()] if len(rows) else rows
    return {
        "templates": templates,
        "n_templates": len(templates),
        "top": top_items(rows, alpha=alpha) if len(rows) else [],
        "headers": findings_headers(alpha),
        "rows": findings_rows(rows, method_index) if len(rows) else [],
        "caption": f"{len(rows)} row{'s' if len(rows) != 1 else ''} of {contract.ELICITING_FINDINGS_FILE}",
        "n_tests": int(len(tested)),
        "n_significant": int(tested["significant"].sum()) if len(tested) else 0,
        "methods": [{"index": method_index[m], "text": m} for m in dict.fromkeys(rows["method"]) if m]
        if len(rows) else [],
        "file": contract.ELICITING_FINDINGS_FILE,
        "missing": eliciting is None,
    }
