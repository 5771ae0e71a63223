"""The interaction part of a crossed probe set's section in report.html (``factors:``, e.g. race x gender).

It says how many targets show an interaction beyond the two main effects (the ``interaction`` rows of
findings.csv, :mod:`albert_audit.metrics.interaction`) and gives a sentence for the strongest ones: material
first, then significant, then by q and |effect|.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from albert_audit.report import fmt
from albert_audit.report.narrative import VERDICT_LABELS, verdict_phrase

METRIC = "interaction"
TOP = 5


def _split(label: str) -> tuple[str, str]:
    """ "black (women - men)" -> ("black", "women − men"); a label of another form is kept whole."""
    level, sep, rest = str(label).rpartition(" (")
    if not sep or not rest.endswith(")"):
        return str(label), ""
    return level, rest[:-1].replace(" - ", " − ")


def interaction_sentence(row: pd.Series | dict[str, Any], *, alpha: float) -> str:
    """One sentence for an interaction row, e.g. "'angry': the women − men gap is 0.52 nats larger among black
    than among white (ratio of ratios 1.68x, 95% CI 1.21–2.33, q = 0.003) — material: ..."."""
    effect = fmt.as_float(row["effect"])
    a, within = _split(row["group_a"])
    b, _ = _split(row["group_b"])
    gap = f"the {within} gap" if within else "the gap"
    low, high = fmt.as_float(row["ci_low"]), fmt.as_float(row["ci_high"])
    if not math.isfinite(effect):
        return f"'{row['target']}': {gap} among {a} vs among {b}: undefined"
    larger, smaller = (a, b) if effect >= 0 else (b, a)
    ratio, r_low, r_high = (math.exp(abs(effect)), math.exp(low if effect >= 0 else -high),
                            math.exp(high if effect >= 0 else -low))
    ci = (f"{fmt.ci_label(alpha)} {fmt.ratio(r_low)}–{fmt.ratio(r_high)}" if math.isfinite(low) and
          math.isfinite(high) else f"{fmt.ci_label(alpha)} not available")
    tail = verdict_phrase(row)
    return (f"'{row['target']}': {gap} is {fmt.number(abs(effect))} nats larger among {larger} than among "
            f"{smaller} (ratio of the two probability ratios {fmt.ratio(ratio)}x, {ci}, "
            f"{fmt.q_phrase(row['q_value'])}){' — ' + tail if tail else ''}")


def interaction_section(rows: pd.DataFrame, *, alpha: float) -> dict[str, Any] | None:
    """``{"n_rows", "n_targets", "verdicts", "top", "factors"}`` of a probe set's interaction rows, or None."""
    found = rows[rows["metric"] == METRIC]
    if found.empty:
        return None
    ranked = found.assign(
        _m=(found["verdict"] != "material").astype(int), _s=(~found["significant"]).astype(int),
        _q=found["q_value"].fillna(1.0), _size=-found["effect"].abs().fillna(0.0),
    ).sort_values(["_m", "_s", "_q", "_size"], kind="mergesort")
    chosen = ranked[(ranked["verdict"] == "material") | ranked["significant"]].head(TOP)
    return {
        "n_rows": int(len(found)),
        "n_targets": int(found["target"].nunique()),
        "verdicts": {VERDICT_LABELS[v]: int((found["verdict"] == v).sum()) for v in VERDICT_LABELS},
        "top": [{"text": interaction_sentence(r, alpha=alpha), "verdict": str(r["verdict"]),
                 "verdict_label": VERDICT_LABELS.get(str(r["verdict"]), "")} for _, r in chosen.iterrows()],
        "contrasts": list(dict.fromkeys(f"{a} vs {b}" for a, b in zip(found["group_a"], found["group_b"],
                                                                          strict=True))),
    }
