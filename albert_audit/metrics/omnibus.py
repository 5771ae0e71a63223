"""omnibus: per target, does the association differ among more than two groups (templates as blocks)?"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from albert_audit import stats
from albert_audit.metrics.core import Config, ProbeSetScores, row


def omnibus(data: ProbeSetScores, cfg: Config) -> list[dict[str, Any]]:
    """Per target: permutation omnibus over groups within templates (Friedman p in the method string)."""
    cube = data.cube("template")
    values = cube.mean["association"]  # (targets, groups, templates)
    complete = np.all(np.isfinite(values), axis=1)  # (targets, templates)
    n = complete.sum(axis=1)
    p = np.full(len(cube.targets), np.nan)
    methods = [""] * len(cube.targets)
    for size in np.unique(n):
        rows = np.flatnonzero(n == size)
        blocks = np.transpose(values[rows], (0, 2, 1))[complete[rows]].reshape(rows.size, int(size), len(data.groups))
        pv, method = stats.permutation_omnibus_rows(
            blocks, rng=stats.rng_for(cfg.seed, f"{data.name}/omnibus/n={size}"), n_resamples=cfg.n_resamples
        )
        p[rows] = pv
        for i, r in enumerate(rows):
            friedman = stats.friedman_p(blocks[i]) if size >= 2 else math.nan
            methods[r] = (
                f"association = term_logprob - term_prior_logprob (Kurita); {method}, groups permuted within "
                f"templates; Friedman p={friedman:.4g}"
            )
    return [
        row(data.name, "omnibus", target=name, n_units=int(n[t]), p_value=p[t], method=methods[t])
        for t, name in enumerate(cube.targets)
    ]
