"""The study's unit: per template, a group's mean over its terms of a target's score.

Computed here and nowhere else; metrics, compare and the report read it. A cell (probe set, target, group,
template) is the mean over the group's terms of the score in that template, NaN where the group has no
term there or any of its terms' scores is not finite.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from albert_audit.errors import AuditError

VALUES = ("logprob", "association")
"""The scores a cell can hold: log P(target), or the association logprob - prior_logprob."""


def template_cells(items: pd.DataFrame, targets: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per-template group means of one run: ``{"logprob": wide, "association": wide}``.

    Each wide table has the index ``(probe_set, target, group)`` and one column per template_id. Items
    without a group slot are left out.
    """
    index = pd.MultiIndex.from_tuples([], names=["probe_set", "target", "group"])
    empty = pd.DataFrame(index=index, dtype=float)
    if len(targets) == 0:
        return {name: empty for name in VALUES}
    for name, table, columns in (("items", items, ("item_id", "probe_set", "template_id", "group")),
                                 ("targets", targets, ("item_id", "target", "logprob", "prior_logprob"))):
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise AuditError(f"{name} table lacks column(s) {', '.join(missing)} (see docs/data_contract.md)")
    slot = items.loc[items["group"].fillna("").astype(str) != "", ["item_id", "probe_set", "template_id", "group"]]
    joined = targets.loc[:, ["item_id", "target", "logprob", "prior_logprob"]].merge(slot, on="item_id")
    joined["target"] = joined["target"].astype(str)
    joined["group"] = joined["group"].astype(str)
    logprob = joined["logprob"].to_numpy(dtype=float)
    values = {"logprob": logprob, "association": logprob - joined["prior_logprob"].to_numpy(dtype=float)}
    keys = ["probe_set", "target", "group", "template_id"]
    out: dict[str, pd.DataFrame] = {}
    for name, value in values.items():
        frame = joined.loc[:, keys].copy()
        bad = ~np.isfinite(value)
        frame["value"] = np.where(bad, 0.0, value)
        frame["bad"] = bad
        grouped = frame.groupby(keys, sort=True).agg(value=("value", "mean"), bad=("bad", "any"))
        out[name] = grouped["value"].where(~grouped["bad"]).unstack("template_id")
    return out
