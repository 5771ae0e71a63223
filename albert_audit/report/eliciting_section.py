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
MAX_ROWS = 40
"""Rows the part's table shows (the strongest: material, then significant, then by |effect|); the file has all."""


def strongest(rows: pd.DataFrame, limit: int = MAX_ROWS) -> pd.DataFrame:
    """The ``limit`` rows to show: material first, then significant, then by q and |effect| (file order kept
    among equals)."""
    ranked = rows.assign(_m=(rows["verdict"] != "material").astype(int), _s=(~rows["significant"]).astype(int),
                         _q=rows["q_value"].fillna(1.0), _e=-rows["effect"].abs().fillna(0.0))
    return rows.loc[ranked.sort_values(["_m", "_s", "_q", "_e"], kind="mergesort").index[:limit]]


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
    shown = strongest(rows) if len(rows) else rows
    note = (f"the {len(shown)} strongest of {len(rows)} rows of {contract.ELICITING_FINDINGS_FILE} (material, then "
            f"significant, then by q and |effect|)" if len(shown) < len(rows) else
            f"{len(rows)} row{'s' if len(rows) != 1 else ''} of {contract.ELICITING_FINDINGS_FILE}")
    return {
        "templates": templates,
        "n_templates": len(templates),
        "top": top_items(rows, alpha=alpha) if len(rows) else [],
        "headers": findings_headers(alpha),
        "rows": findings_rows(shown, method_index) if len(shown) else [],
        "caption": note,
        "n_tests": int(len(tested)),
        "n_significant": int(tested["significant"].sum()) if len(tested) else 0,
        "methods": [{"index": method_index[m], "text": m} for m in dict.fromkeys(shown["method"]) if m]
        if len(shown) else [],
        "file": contract.ELICITING_FINDINGS_FILE,
        "missing": eliciting is None,
    }
