"""fill_divergence and disco: per group pair, how differently the model fills the mask after each group's terms.

Both are a per-template statistic of the terms' fills, reported as its **excess over its permutation-null
mean** (the statistic minus its expectation when group labels carry no information), averaged over templates:
raw JSD and DisCo counts are positive without any group effect and grow or shrink with the number of terms,
the excess is centred on 0 at every set size. The null relabels the pair's *terms* once for the whole probe
set (a term keeps its permuted label in every template), so term effects that persist across templates are
part of the null instead of evidence against it. CI: expanded bootstrap over templates of the per-template
excess; p: one-sided, the observed mean against the relabellings. They differ only in the per-template
statistic (:class:`FillStatistic`).

Verdicts (margin: registry default, JSD_MARGIN bits / DISCO_MARGIN fills): ``material`` needs the relabelling
p and a one-sided sign-flip test over templates of "excess > margin" (p_material is the larger of the two);
there is no ``negligible`` verdict (p_equivalence NaN): the excess is a one-sided score whose interval
comes from templates only (term sampling is in the p, not in the interval), so an upper bound of it would not
show that the groups' fills do not differ. Rows are material, below_margin or inconclusive.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import entr

from albert_audit import registry, stats
from albert_audit.inference.exact import sign_flip_p
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
    terms: np.ndarray  # (n_terms,) the term's code in the probe set ((group, term_index), the same in every template)
    probs: np.ndarray  # (n_terms, V) top-k probabilities (0 where a token is outside the term's top-k)
    top: np.ndarray  # (n_terms, V) 1.0 where a token is in the term's top-3


def fill_tables(fdf: pd.DataFrame, groups: list[str]) -> list[TemplateFills]:
    """Per template (sorted by template_id): the terms' top-k probabilities and top-3 indicators."""
    token_key = "token_id" if "token_id" in fdf.columns else "token"
    template = fdf["template_id"].to_numpy()
    item = fdf["item_id"].to_numpy()
    tokens, _ = pd.factorize(fdf[token_key], sort=False)
    group = pd.Categorical(fdf["group"], categories=groups).codes
    term = group.astype(np.int64) * (int(fdf["term_index"].max()) + 1 if len(fdf) else 1) + fdf["term_index"].to_numpy()
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
        out.append(TemplateFills(groups=np.asarray(group[rows][first]), terms=np.asarray(term[rows][first]),
                                 probs=probs, top=top))
    return out


def fill_rows(data: ProbeSetScores, cfg: Config, metric: str, statistic: FillStatistic) -> list[dict[str, Any]]:
    """One row per group pair: the mean over templates with both groups of the per-template excess of the
    statistic over its mean under consistent term relabelling."""
    tables = data.cached("fill_tables", lambda: fill_tables(data.fills, data.groups))
    return [pair_row(data, cfg, metric, statistic, tables, a, b)
            for a, b in itertools.combinations(range(len(data.groups)), 2)]


def relabelled(statistic: FillStatistic, tables: list[TemplateFills], a: int, b: int, labelings: np.ndarray,
               pooled: np.ndarray) -> np.ndarray:
    """(labelings, templates) statistic of every template with both groups, each term labelled by its column
    of ``labelings`` (pooled term codes ``pooled``); NaN where a labelling leaves a template one group."""
    out = []
    for table in tables:
        idx = np.flatnonzero((table.groups == a) | (table.groups == b))
        block = getattr(table, statistic.reads)[idx]
        labels = labelings[:, np.searchsorted(pooled, table.terms[idx])]
        valid = labels.any(axis=1) & (~labels).any(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = statistic.stat(labels, block[:, block.any(axis=0)])
        out.append(np.where(valid, values, np.nan))
    return np.stack(out, axis=1)


def pair_row(data: ProbeSetScores, cfg: Config, metric: str, statistic: FillStatistic, tables: list[TemplateFills],
             a: int, b: int) -> dict[str, Any]:
    """The row of one group pair."""
    used = [t for t in tables if (t.groups == a).any() and (t.groups == b).any()]
    base = dict(group_a=data.groups[a], group_b=data.groups[b], n_units=len(used),
                effect_unit=registry.metric(metric).unit)
    if not used:
        return row(data.name, metric, method=f"{statistic.what}; no template with both groups", **base)
    terms_a = np.unique(np.concatenate([t.terms[t.groups == a] for t in used]))
    terms_b = np.unique(np.concatenate([t.terms[t.groups == b] for t in used]))
    order = np.argsort(np.concatenate([terms_a, terms_b]))
    pooled = np.concatenate([terms_a, terms_b])[order]
    identity = (np.arange(pooled.size) < terms_a.size)[order][None, :]
    observed = relabelled(statistic, used, a, b, identity, pooled)[0]
    raw = f"{statistic.what}: raw mean over templates {observed.mean():.4g}"
    if terms_a.size == 1 and terms_b.size == 1:
        return row(data.name, metric, method=f"{raw}; one term per group: no relabelling null, so no excess and "
                                              "no p (labels cannot be permuted)", **base)
    key = f"{data.name}/{metric}/{data.groups[a]}/{data.groups[b]}"
    labelings, exact = stats.term_labelings(terms_a.size, terms_b.size, rng=stats.rng_for(cfg.seed, f"{key}/terms"),
                                            n_resamples=cfg.n_resamples)
    null = relabelled(statistic, used, a, b, labelings[:, order], pooled)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns/rows stay NaN
        null_mean = np.nanmean(null, axis=0)
        null_stat = np.nanmean(null, axis=1)
    excess = observed - null_mean
    p = stats.upper_tail_p(float(observed.mean()), null_stat, exact=exact)
    low, high, ci = stats.bootstrap_ci_rows(excess[None, :], rng=stats.rng_for(cfg.seed, f"{key}/bootstrap"),
                                            n_resamples=cfg.n_resamples, confidence=cfg.confidence, expand=True)
    how = f"exact over {labelings.shape[0]} relabellings" if exact else f"Monte Carlo {labelings.shape[0]}"
    margin = float(registry.margin_of(metric, cfg.margin) or 0.0)
    beyond, _, _ = sign_flip_p(excess[None, :], shift=margin, alternative="greater",
                               rng=stats.rng_for(cfg.seed, f"{key}/margin"), n_resamples=cfg.n_resamples)
    unit = registry.metric(metric).unit
    return row(data.name, metric, effect=float(excess.mean()), ci_low=float(low[0]), ci_high=float(high[0]),
               p_value=p, method=f"{raw}, null mean {float(null_mean.mean()):.4g}; effect = excess over the null "
                                 f"mean; {ci[0]} over templates; p: the pair's {pooled.size} terms relabelled "
                                 f"consistently across templates ({how}); margin {margin:.4g} {unit}: material "
                                 "needs this p and a sign-flip test over templates of excess > margin; no "
                                 "negligible verdict (one-sided excess score)",
               margin=margin, p_material=max(p, float(beyond[0])) if np.isfinite(beyond[0]) else math.nan,
               **base)
