"""fill_divergence and disco: per group pair, how differently the model fills the mask after each group's terms.

Both are a per-template statistic of the terms' fills, averaged over templates; CI: expanded bootstrap over
templates; p: group labels permuted among the pair's terms within templates. They differ only in the
per-template statistic (:class:`FillStatistic`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import entr

from albert_audit import registry, stats
from albert_audit.metrics.core import Config, ProbeSetScores, row

DISCO_TOP = 3
"""DisCo compares the terms' top-3 fills."""
DISCO_CHI2_CRIT = 3.841458820694124
"""chi-square(1) critical value at 0.05: DisCo's fixed per-fill threshold (independent of --alpha)."""


@dataclass(frozen=True)
class FillStatistic:
    """A per-template statistic of two groups' fills."""

    what: str
    """What it is, for the method string."""
    reads: str
    """"probs" (the terms' top-k probabilities) or "top" (1 where a fill is in the term's top-3)."""
    stat: Callable[[np.ndarray, np.ndarray], np.ndarray]
    """(labelings (L, terms) bool, True = group a; data (terms, tokens)) -> the statistic per labeling (L,)."""


def jsd_bits(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in bits between rows of two (..., V) probability arrays."""
    m = 0.5 * (p + q)
    value = entr(m).sum(axis=-1) - 0.5 * (entr(p).sum(axis=-1) + entr(q).sum(axis=-1))
    return np.maximum(value / math.log(2.0), 0.0)


def group_distributions(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average the terms' fill probabilities per group (labels True = a), renormalised over the tokens."""
    la = labels.astype(float)
    a = la @ probs / la.sum(axis=1, keepdims=True)
    b = (1.0 - la) @ probs / (1.0 - la).sum(axis=1, keepdims=True)
    return a / a.sum(axis=1, keepdims=True), b / b.sum(axis=1, keepdims=True)


def disco_count(labels: np.ndarray, indicator: np.ndarray) -> np.ndarray:
    """Number of tokens whose top-3 frequency differs between the groups (2x2 Pearson chi-square > crit)."""
    la = labels.astype(float)
    n_a = la.sum(axis=1, keepdims=True)
    n_b = labels.shape[1] - n_a
    c_a = la @ indicator
    c_b = (1.0 - la) @ indicator
    total = c_a + c_b
    n = n_a + n_b
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2 = n * (c_a * (n_b - c_b) - c_b * (n_a - c_a)) ** 2 / (n_a * n_b * total * (n - total))
    chi2 = np.where((total > 0) & (total < n), chi2, 0.0)
    return np.count_nonzero(chi2 > DISCO_CHI2_CRIT, axis=1).astype(float)


JSD = FillStatistic("JSD (bits) of the groups' mean top-k fill distributions", "probs",
                    lambda labels, data: jsd_bits(*group_distributions(labels, data)))
DISCO = FillStatistic(f"fills in the terms' top-{DISCO_TOP} whose frequency differs (chi-square 0.05)", "top",
                      disco_count)


def fill_divergence(data: ProbeSetScores, cfg: Config) -> list[dict[str, Any]]:
    """The fill_divergence rows (one per group pair) of a probe set."""
    return fill_rows(data, cfg, "fill_divergence", JSD)


def disco(data: ProbeSetScores, cfg: Config) -> list[dict[str, Any]]:
    """The disco rows (one per group pair) of a probe set."""
    return fill_rows(data, cfg, "disco", DISCO)


@dataclass
class TemplateFills:
    """One template's fills as (terms x tokens) arrays."""

    groups: np.ndarray  # (n_terms,) group code of each item (term)
    probs: np.ndarray  # (n_terms, V) top-k probabilities (0 where a token is outside the term's top-k)
    top: np.ndarray  # (n_terms, V) 1.0 where a token is in the term's top-3


def fill_tables(fdf: pd.DataFrame, groups: list[str]) -> list[TemplateFills]:
    """Per template (sorted by template_id): the terms' top-k probabilities and top-3 indicators."""
    token_key = "token_id" if "token_id" in fdf.columns else "token"
    template = fdf["template_id"].to_numpy()
    item = fdf["item_id"].to_numpy()
    tokens, _ = pd.factorize(fdf[token_key], sort=False)
    group = pd.Categorical(fdf["group"], categories=groups).codes
    prob = fdf["prob"].to_numpy(dtype=float)
    in_top = fdf["rank"].to_numpy() <= DISCO_TOP
    order = np.lexsort((item, template))  # rows stay in (item, rank) order within a template
    bounds = np.flatnonzero(np.diff(template[order])) + 1
    out: list[TemplateFills] = []
    for rows in np.split(order, bounds):
        item_ids, item_pos = np.unique(item[rows], return_inverse=True)
        tok_ids, tok_pos = np.unique(tokens[rows], return_inverse=True)
        probs = np.zeros((item_ids.size, tok_ids.size))
        probs[item_pos, tok_pos] = prob[rows]
        top = np.zeros_like(probs)
        top[item_pos[in_top[rows]], tok_pos[in_top[rows]]] = 1.0
        first = np.zeros(item_ids.size, dtype=np.int64)
        first[item_pos] = np.arange(rows.size)  # any row of each item gives its group
        out.append(TemplateFills(groups=np.asarray(group[rows][first]), probs=probs, top=top))
    return out


def fill_rows(data: ProbeSetScores, cfg: Config, metric: str, statistic: FillStatistic) -> list[dict[str, Any]]:
    """One row per group pair: the mean over templates with both groups of the per-template statistic."""
    tables = data.cached("fill_tables", lambda: fill_tables(data.fills, data.groups))
    pairs = list(itertools.combinations(range(len(data.groups)), 2))
    pair_blocks: list[list[np.ndarray]] = []
    pair_sizes: list[list[tuple[int, int]]] = []
    values: list[np.ndarray] = []
    for a, b in pairs:
        blocks, sizes = [], []
        for table in tables:
            ia, ib = np.flatnonzero(table.groups == a), np.flatnonzero(table.groups == b)
            if ia.size and ib.size:
                block = getattr(table, statistic.reads)[np.concatenate([ia, ib])]
                blocks.append(block[:, block.any(axis=0)])
                sizes.append((ia.size, ib.size))
        pair_blocks.append(blocks)
        pair_sizes.append(sizes)
        values.append(np.array([statistic.stat(np.arange(sum(size))[None, :] < size[0], block)[0]
                                for block, size in zip(blocks, sizes, strict=True)]))
    n = np.array([v.size for v in values])
    low, high = np.full(len(pairs), np.nan), np.full(len(pairs), np.nan)
    ci_methods = [""] * len(pairs)
    for size in np.unique(n):
        idx = np.flatnonzero(n == size)
        lo, hi, m = stats.bootstrap_ci_rows(
            np.array([values[i] for i in idx]).reshape(idx.size, int(size)),
            rng=stats.rng_for(cfg.seed, f"{data.name}/{metric}/bootstrap/n={size}"),
            n_resamples=cfg.n_resamples,
            confidence=cfg.confidence,
            expand=True,
        )
        low[idx], high[idx] = lo, hi
        for i, method in zip(idx, m, strict=True):
            ci_methods[i] = method
    unit = registry.metric(metric).unit
    rows: list[dict[str, Any]] = []
    for i, (a, b) in enumerate(pairs):
        base = dict(group_a=data.groups[a], group_b=data.groups[b], n_units=int(n[i]), effect_unit=unit)
        if n[i] == 0:
            rows.append(row(data.name, metric, method=f"{statistic.what}; no template with both groups", **base))
            continue
        p, p_method = _permutation_p(statistic, pair_blocks[i], pair_sizes[i],
                                     key=f"{data.name}/{metric}/{data.groups[a]}/{data.groups[b]}/permutation",
                                     cfg=cfg)
        rows.append(row(data.name, metric, effect=float(values[i].mean()), ci_low=low[i], ci_high=high[i],
                        p_value=p, method=f"{statistic.what}, mean over templates; {ci_methods[i]} over templates; "
                                          f"{p_method}", **base))
    return rows


def _permutation_p(statistic: FillStatistic, blocks: list[np.ndarray], sizes: list[tuple[int, int]], *, key: str,
                   cfg: Config) -> tuple[float, str]:
    if all(size == (1, 1) for size in sizes):
        return math.nan, "p undefined: one term per group in every template (labels cannot be permuted)"
    p, _ = stats.label_permutation_test(lambda j, labels: statistic.stat(labels, blocks[j]), sizes,
                                        rng=stats.rng_for(cfg.seed, key), n_resamples=cfg.n_resamples)
    return p, f"p: group labels permuted among terms within templates (Monte Carlo {cfg.n_resamples})"
