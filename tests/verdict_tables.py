"""Items and targets tables from synthetic item values (targets x templates x terms per group), for the
end-to-end verdict tests: the design of :func:`tests.simulate.crossed_items`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.simulate import crossed_items


def tables_from_values(values: dict[str, np.ndarray], *, probe_set: str = "sim",
                       target_names: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(items, targets, empty fills) of one probe set; ``values[group]`` has shape (targets, templates, terms).

    The term log-prob equals the target log-prob and its prior is a constant, so the association gap equals
    the log-prob gap.
    """
    first = next(iter(values.values()))
    n_targets, n_templates = first.shape[:2]
    names = target_names or [f"t{i:03d}" for i in range(n_targets)]
    items, rows = [], []
    item_id = 0
    for j in range(n_templates):
        for group, x in values.items():
            for k in range(x.shape[2]):
                term = f"{group}{k}"
                items.append((item_id, probe_set, j, f"T{j} <group> [MASK]", group, term, k, f"T{j} {term} [MASK]",
                              f"T{j} [MASK] [MASK]"))
                for t in range(n_targets):
                    rows.append((item_id, names[t], 1, float(x[t, j, k]), float(x[t, j, k]), -5.0))
                item_id += 1
    items_df = pd.DataFrame(items, columns=["item_id", "probe_set", "template_id", "template", "group", "term",
                                            "term_index", "text", "prior_text"])
    targets_df = pd.DataFrame(rows, columns=["item_id", "target", "n_pieces", "logprob", "term_logprob",
                                             "term_prior_logprob"])
    fills = pd.DataFrame({"item_id": pd.Series(dtype="int64"), "rank": pd.Series(dtype="int64"),
                          "token_id": pd.Series(dtype="int64"), "token": pd.Series(dtype=object),
                          "prob": pd.Series(dtype=float), "logprob": pd.Series(dtype=float)})
    return items_df, targets_df, fills


def simulated_tables(seed: int, *, gaps: np.ndarray, n_templates: int = 12, n_terms: int = 6,
                     term_sd: float = 0.3, template_group_sd: float = 0.1, noise_sd: float = 0.2
                     ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Tables of one probe set with groups "a" and "b" whose true gap per target is ``gaps``; term effects
    persist across templates (the issue's realistic null when a gap is 0)."""
    a, b = crossed_items(np.random.default_rng(seed), n_rows=len(gaps), n_templates=n_templates, n_terms_a=n_terms,
                         n_terms_b=n_terms, gap=np.asarray(gaps, dtype=float), term_sd=term_sd,
                         template_group_sd=template_group_sd, noise_sd=noise_sd)
    return tables_from_values({"a": a - 6.0, "b": b - 6.0})
