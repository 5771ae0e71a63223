"""Score tables (items, targets, fills) -> the findings table: one row per comparison.

Every metric is documented in docs/metrics.md (formula, reference, meaning, ideal value, unit). The
statistics come from :mod:`albert_audit.stats`; every resampling stream is keyed by
``rng_for(seed, "<probe set>/<metric>/...")``, so a row's CI and p-value depend only on the seed and on
that row's data (adding a probe set or a target never shifts another row).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import entr

from albert_audit import stats
from albert_audit.errors import AuditError

FINDINGS_COLUMNS = (
    "probe_set",
    "metric",
    "target",
    "group_a",
    "group_b",
    "n_units",
    "effect",
    "effect_unit",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "significant",
    "direction",
    "method",
)
METRICS = ("logprob_gap", "association_gap", "omnibus", "fill_divergence", "disco", "bias_score")
"""Metric ids, in the order rows are sorted within a probe set."""
SIGNED_METRICS = ("logprob_gap", "association_gap")
"""Metrics whose effect has a sign (group a minus group b); only these get a direction other than none."""
UNITS = ("template", "template_term_pair")
DISCO_TOP = 3
DISCO_CHI2_CRIT = 3.841458820694124
"""chi-square(1) critical value at 0.05: DisCo's fixed per-fill threshold (independent of --alpha)."""

_STR_COLUMNS = ("probe_set", "metric", "target", "group_a", "group_b", "effect_unit", "direction", "method")
_FLOAT_COLUMNS = ("effect", "ci_low", "ci_high", "p_value", "q_value")
_ITEM_COLUMNS = ("item_id", "probe_set", "template_id", "group", "term", "term_index")
_TARGET_COLUMNS = ("item_id", "target", "logprob", "prior_logprob")
_FILL_COLUMNS = ("item_id", "rank", "token", "prob")


@dataclass(frozen=True)
class _Config:
    seed: int
    alpha: float
    n_resamples: int
    unit: str

    @property
    def confidence(self) -> float:
        return 1.0 - self.alpha


# ------------------------------------------------------------------------------------------ validation


def _require(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise AuditError(f"{name} table lacks column(s) {', '.join(missing)} (see docs/data_contract.md)")


def _prepare_items(items: pd.DataFrame) -> pd.DataFrame:
    _require(items, _ITEM_COLUMNS, "items")
    out = items.loc[:, list(_ITEM_COLUMNS)].sort_values("item_id", kind="stable").reset_index(drop=True)
    if out["item_id"].duplicated().any():
        raise AuditError("items table: item_id values are not unique")
    for column in ("probe_set", "group", "term"):
        out[column] = out[column].fillna("").astype(str)
    return out


def _prepare_scores(
    table: pd.DataFrame, columns: Sequence[str], keys: list[str], name: str, item_ids: pd.Series
) -> pd.DataFrame:
    if len(table) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    _require(table, columns, name)
    extra = ["token_id"] if name == "fills" and "token_id" in table.columns else []
    out = table.loc[:, list(columns) + extra].sort_values(keys, kind="stable").reset_index(drop=True)
    if out.duplicated(keys).any():
        raise AuditError(f"{name} table: duplicate ({', '.join(keys)}) rows")
    unknown = ~out["item_id"].isin(item_ids)
    if unknown.any():
        raise AuditError(f"{name} table: {int(unknown.sum())} rows have an item_id that is not in items")
    return out


# ----------------------------------------------------------------------------------------- row helpers


def _row(probe_set: str, metric: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "probe_set": probe_set,
        "metric": metric,
        "target": "",
        "group_a": "",
        "group_b": "",
        "n_units": 0,
        "effect": math.nan,
        "effect_unit": "",
        "ci_low": math.nan,
        "ci_high": math.nan,
        "p_value": math.nan,
        "q_value": math.nan,
        "significant": False,
        "direction": "none",
        "method": "",
    }
    row.update(fields)
    return row


def _mean_test_rows(
    values: np.ndarray, *, cfg: _Config, key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Effect (mean), n, CI, sign-flip p and method for each row of (rows x units) with NaN = no unit.

    Rows are batched by their number of finite units; each batch shares resamples drawn from
    ``rng_for(seed, f"{key}/.../n={n}")``.
    """
    finite = np.isfinite(values)
    n = finite.sum(axis=1)
    n_rows = values.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        effect = np.where(finite, values, 0.0).sum(axis=1) / n
    low, high, p = (np.full(n_rows, np.nan) for _ in range(3))
    methods = [""] * n_rows
    for size in np.unique(n):
        rows = np.flatnonzero(n == size)
        compact = values[rows][finite[rows]].reshape(rows.size, int(size))
        lo, hi, ci_methods = stats.bootstrap_ci_rows(
            compact,
            rng=stats.rng_for(cfg.seed, f"{key}/bootstrap/n={size}"),
            n_resamples=cfg.n_resamples,
            confidence=cfg.confidence,
            expand=True,
        )
        pv, p_method = stats.sign_flip_p_rows(
            compact, rng=stats.rng_for(cfg.seed, f"{key}/signflip/n={size}"), n_resamples=cfg.n_resamples
        )
        low[rows], high[rows], p[rows] = lo, hi, pv
        for i, row in enumerate(rows):
            methods[row] = f"{p_method}; {ci_methods[i]}"
    return effect, n, low, high, p, methods


def _cube(
    value: np.ndarray, codes: tuple[np.ndarray, ...], shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``value`` per cell of ``shape`` (NaN where empty) and a mask of cells holding a non-finite."""
    flat = np.ravel_multi_index(codes, shape)
    size = int(np.prod(shape))
    bad = ~np.isfinite(value)
    sums = np.bincount(flat, weights=np.where(bad, 0.0, value), minlength=size)
    counts = np.bincount(flat, minlength=size)
    n_bad = np.bincount(flat, weights=bad.astype(float), minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    mean[(counts == 0) | (n_bad > 0)] = np.nan
    return mean.reshape(shape), (n_bad > 0).reshape(shape)


# ---------------------------------------------------------------------------------- target metrics


def _target_rows(probe_set: str, groups: list[str], tdf: pd.DataFrame, cfg: _Config) -> list[dict[str, Any]]:
    """logprob_gap, association_gap (each pair), omnibus (> 2 groups) and bias_score rows of a probe set."""
    rows: list[dict[str, Any]] = []
    if tdf.empty or len(groups) < 2:
        return rows
    target_names = sorted(tdf["target"].astype(str).unique())
    t_code = pd.Categorical(tdf["target"].astype(str), categories=target_names).codes
    g_code = pd.Categorical(tdf["group"], categories=groups).codes
    templates = np.sort(tdf["template_id"].unique())
    j_code = np.searchsorted(templates, tdf["template_id"].to_numpy())
    logprob = tdf["logprob"].to_numpy(dtype=float)
    assoc = logprob - tdf["prior_logprob"].to_numpy(dtype=float)
    shape_t = (len(target_names), len(groups), len(templates))
    cube_t = {
        "logprob_gap": _cube(logprob, (t_code, g_code, j_code), shape_t),
        "association_gap": _cube(assoc, (t_code, g_code, j_code), shape_t),
    }
    if cfg.unit == "template":
        cubes = cube_t
        unit_note = "units=templates (group means over terms)"
    else:
        pairs_ti = (
            tdf[["template_id", "term_index"]].drop_duplicates().sort_values(["template_id", "term_index"])
        )
        unit_index = pd.MultiIndex.from_frame(pairs_ti)
        u_code = unit_index.get_indexer(pd.MultiIndex.from_frame(tdf[["template_id", "term_index"]]))
        shape_u = (len(target_names), len(groups), len(unit_index))
        cubes = {
            "logprob_gap": _cube(logprob, (t_code, g_code, u_code), shape_u),
            "association_gap": _cube(assoc, (t_code, g_code, u_code), shape_u),
        }
        unit_note = "units=template x term pairs (paired by term_index; not independent within a template)"
    pairs = list(itertools.combinations(range(len(groups)), 2))
    for metric in SIGNED_METRICS:
        cube, bad = cubes[metric]
        diffs = np.concatenate([cube[:, a, :] - cube[:, b, :] for a, b in pairs], axis=0)
        n_bad = np.concatenate([(bad[:, a, :] | bad[:, b, :]).sum(axis=1) for a, b in pairs])
        n_missing = np.concatenate(
            [
                (~np.isfinite(cube[:, a, :] - cube[:, b, :]) & ~(bad[:, a, :] | bad[:, b, :])).sum(axis=1)
                for a, b in pairs
            ]
        )
        effect, n, low, high, p, methods = _mean_test_rows(
            diffs, cfg=cfg, key=f"{probe_set}/{metric}/{cfg.unit}"
        )
        prefix = "" if metric == "logprob_gap" else "association = logprob - prior_logprob; "
        for r, (pair, t) in enumerate(itertools.product(range(len(pairs)), range(len(target_names)))):
            notes = f"; dropped {n_bad[r]} non-finite" if n_bad[r] else ""
            notes += f"; {n_missing[r]} units lacked a group" if n_missing[r] else ""
            a, b = pairs[pair]
            rows.append(
                _row(
                    probe_set,
                    metric,
                    target=target_names[t],
                    group_a=groups[a],
                    group_b=groups[b],
                    n_units=int(n[r]),
                    effect=effect[r],
                    effect_unit="nats",
                    ci_low=low[r],
                    ci_high=high[r],
                    p_value=p[r],
                    method=f"{prefix}{methods[r]}; {unit_note}{notes}",
                )
            )
    assoc_cube = cube_t["association_gap"][0]
    if len(groups) > 2:
        rows.extend(_omnibus_rows(probe_set, groups, target_names, assoc_cube, cfg))
    rows.append(_bias_score_row(probe_set, groups, target_names, assoc_cube, cfg))
    return rows


def _omnibus_rows(
    probe_set: str, groups: list[str], target_names: list[str], cube: np.ndarray, cfg: _Config
) -> list[dict[str, Any]]:
    """Per target: permutation omnibus over groups within templates (Friedman p in the method string)."""
    complete = np.all(np.isfinite(cube), axis=1)  # (targets, templates)
    n = complete.sum(axis=1)
    p = np.full(len(target_names), np.nan)
    methods = [""] * len(target_names)
    for size in np.unique(n):
        rows = np.flatnonzero(n == size)
        blocks = np.transpose(cube[rows], (0, 2, 1))[complete[rows]].reshape(
            rows.size, int(size), len(groups)
        )
        pv, method = stats.permutation_omnibus_rows(
            blocks, rng=stats.rng_for(cfg.seed, f"{probe_set}/omnibus/n={size}"), n_resamples=cfg.n_resamples
        )
        p[rows] = pv
        for i, row in enumerate(rows):
            friedman = stats.friedman_p(blocks[i]) if size >= 2 else math.nan
            methods[row] = (
                f"association = logprob - prior_logprob; {method}, groups permuted within "
                f"templates; Friedman p={friedman:.4g}"
            )
    return [
        _row(probe_set, "omnibus", target=name, n_units=int(n[t]), p_value=p[t], method=methods[t])
        for t, name in enumerate(target_names)
    ]


def _bias_score_row(
    probe_set: str, groups: list[str], target_names: list[str], cube: np.ndarray, cfg: _Config
) -> dict[str, Any]:
    """Mean |association gap| over targets (and group pairs), templates resampled; p by label permutation."""
    k = len(groups)
    pairs = np.array(list(itertools.combinations(range(k), 2)))
    complete = np.all(np.isfinite(cube), axis=1)  # (targets, templates): every group present
    keep = complete.any(axis=1)
    cube, complete = cube[keep], complete[keep]
    n_targets = int(keep.sum())
    used_templates = complete.any(axis=0)
    cube, complete = cube[:, :, used_templates], complete[:, used_templates]
    n_units = int(used_templates.sum())
    ga, gb = (groups[0], groups[1]) if k == 2 else ("", "")
    base = dict(group_a=ga, group_b=gb, n_units=n_units, effect_unit="nats")
    if n_targets == 0:
        return _row(probe_set, "bias_score", method="no target with a complete template", **base)
    x0 = np.where(complete[:, None, :], cube, 0.0)  # (T, G, J)
    w = complete.astype(float)  # (T, J)

    def score(group_means: np.ndarray) -> np.ndarray:
        """(..., T, G) group means -> mean over targets and pairs of |gap|, shape (...)."""
        gaps = group_means[..., pairs[:, 0]] - group_means[..., pairs[:, 1]]
        return np.abs(gaps).mean(axis=(-1, -2))

    cnt = w.sum(axis=1)  # (T,)
    theta = float(score(x0.sum(axis=2) / cnt[:, None]))
    target_list = f"{n_targets} targets" + (f" x {len(pairs)} group pairs" if k > 2 else "")
    method = f"mean |association gap| over {target_list}"
    if n_units < 2:
        return _row(
            probe_set, "bias_score", effect=theta, method=f"{method}; n={n_units}: CI and p undefined", **base
        )
    counts = stats.bootstrap_counts(
        stats.rng_for(cfg.seed, f"{probe_set}/bias_score/bootstrap"), n=n_units, n_resamples=cfg.n_resamples
    )  # (B, J)
    boot = np.empty(cfg.n_resamples)
    step = max(1, 4_000_000 // max(1, x0.shape[0] * k * n_units))
    for start in range(0, cfg.n_resamples, step):
        c = counts[start : start + step]  # (b, J)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.einsum("tgj,bj->btg", x0, c) / (w @ c.T).T[:, :, None]
            gaps = np.abs(means[..., pairs[:, 0]] - means[..., pairs[:, 1]]).mean(axis=-1)
        boot[start : start + step] = np.nanmean(gaps, axis=1) if np.isnan(gaps).any() else gaps.mean(axis=1)
    level = f"{round(cfg.confidence * 100, 6):g}%"
    if np.all(np.isnan(boot)):
        low = high = math.nan
        ci_method = "CI undefined (no resample kept a target)"
    else:
        # Percentile, not BCa: a mean of absolute values is biased upward, its bootstrap distribution often
        # lies wholly above the estimate and the BCa bias correction then collapses the interval.
        lo, hi, _ = stats.bca_interval_rows(
            theta_hat=np.array([theta]),
            boot=boot[None, ~np.isnan(boot)],
            jackknife=None,
            confidence=cfg.confidence,
            method="percentile",
        )
        low, high = float(lo[0]), float(hi[0])
        ci_method = f"{level} percentile bootstrap {cfg.n_resamples} over templates"
    p, p_method = _bias_score_p(x0, w, score, probe_set=probe_set, cfg=cfg)
    return _row(
        probe_set,
        "bias_score",
        effect=theta,
        ci_low=low,
        ci_high=high,
        p_value=p,
        method=f"{method}; {ci_method}; {p_method}",
        **base,
    )


def _bias_score_p(
    x0: np.ndarray, w: np.ndarray, score: Any, *, probe_set: str, cfg: _Config
) -> tuple[float, str]:
    """Permute group labels within each template, jointly for all targets (one-sided, large = biased)."""
    n_t, k, n_j = x0.shape
    cnt = w.sum(axis=1)
    observed = float(score(x0.sum(axis=2) / cnt[:, None]))
    exact = k == 2 and n_j <= 12
    if exact:
        signs = stats.sign_patterns(n_j)  # swapping the two groups in template j = flipping its sign
        perms = np.where(signs[:, :, None] > 0, np.array([0, 1]), np.array([1, 0]))  # (M, J, 2)
        label = f"exact, {2**n_j} patterns"
    else:
        rng = stats.rng_for(cfg.seed, f"{probe_set}/bias_score/permutation")
        perms = np.argsort(rng.random((cfg.n_resamples, n_j, k)), axis=2)
        label = f"Monte Carlo {cfg.n_resamples}"
    m = perms.shape[0]
    null = np.empty(m)
    # permuted group means: sum_j x0[t, perm[m, j, g], j] / cnt[t]
    flat = np.transpose(x0, (0, 2, 1)).reshape(n_t, n_j * k)  # (T, J*G)
    step = max(1, 4_000_000 // max(1, n_t * n_j * k))
    for start in range(0, m, step):
        idx = (np.arange(n_j)[None, :, None] * k + perms[start : start + step]).reshape(-1, n_j * k)
        permuted = flat[:, idx].reshape(n_t, -1, n_j, k).sum(axis=2) / cnt[:, None, None]  # (T, b, G)
        null[start : start + step] = score(np.transpose(permuted, (1, 0, 2)))
    scale = max(abs(observed), float(np.max(np.abs(null))), np.finfo(float).tiny)
    hits = int(np.count_nonzero(null >= observed - 1e-9 * scale))
    p = hits / m if exact else (hits + 1.0) / (m + 1.0)
    return min(p, 1.0), (
        f"p: group labels permuted within templates jointly over targets ({label}); "
        f"score expected without bias (permutation mean) {null.mean():.4g}"
    )


# ------------------------------------------------------------------------------------ fill metrics


def _jsd_bits(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in bits between rows of two (..., V) probability arrays."""
    m = 0.5 * (p + q)
    value = entr(m).sum(axis=-1) - 0.5 * (entr(p).sum(axis=-1) + entr(q).sum(axis=-1))
    return np.maximum(value / math.log(2.0), 0.0)


def _group_distributions(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average the terms' fill probabilities per group (labels True = a), renormalised over the tokens."""
    la = labels.astype(float)
    a = la @ probs / la.sum(axis=1, keepdims=True)
    b = (1.0 - la) @ probs / (1.0 - la).sum(axis=1, keepdims=True)
    return a / a.sum(axis=1, keepdims=True), b / b.sum(axis=1, keepdims=True)


def _disco_count(labels: np.ndarray, indicator: np.ndarray) -> np.ndarray:
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


@dataclass
class _TemplateFills:
    groups: np.ndarray  # (n_terms,) group code of each item (term)
    probs: np.ndarray  # (n_terms, V) top-k probabilities (0 where a token is outside the term's top-k)
    top: np.ndarray  # (n_terms, V) 1.0 where a token is in the term's top-3


def _fill_tables(fdf: pd.DataFrame, groups: list[str]) -> list[_TemplateFills]:
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
    out: list[_TemplateFills] = []
    for rows in np.split(order, bounds):
        item_ids, item_pos = np.unique(item[rows], return_inverse=True)
        tok_ids, tok_pos = np.unique(tokens[rows], return_inverse=True)
        probs = np.zeros((item_ids.size, tok_ids.size))
        probs[item_pos, tok_pos] = prob[rows]
        top = np.zeros_like(probs)
        top[item_pos[in_top[rows]], tok_pos[in_top[rows]]] = 1.0
        first = np.zeros(item_ids.size, dtype=np.int64)
        first[item_pos] = np.arange(rows.size)  # any row of each item gives its group
        out.append(_TemplateFills(groups=np.asarray(group[rows][first]), probs=probs, top=top))
    return out


def _fill_rows(probe_set: str, groups: list[str], fdf: pd.DataFrame, cfg: _Config) -> list[dict[str, Any]]:
    """fill_divergence and disco rows (one per group pair) of a probe set."""
    rows: list[dict[str, Any]] = []
    if fdf.empty or len(groups) < 2:
        return rows
    tables = _fill_tables(fdf, groups)
    pairs = list(itertools.combinations(range(len(groups)), 2))
    for metric, unit in (("fill_divergence", "JSD bits"), ("disco", "count")):
        what = (
            "JSD (bits) of the groups' mean top-k fill distributions"
            if metric == "fill_divergence"
            else f"fills in the terms' top-{DISCO_TOP} whose frequency differs (chi-square 0.05)"
        )
        pair_blocks: list[list[np.ndarray]] = []
        pair_sizes: list[list[tuple[int, int]]] = []
        values: list[np.ndarray] = []
        for a, b in pairs:
            blocks, sizes = [], []
            for table in tables:
                ia, ib = np.flatnonzero(table.groups == a), np.flatnonzero(table.groups == b)
                if ia.size and ib.size:
                    data = (table.probs if metric == "fill_divergence" else table.top)[
                        np.concatenate([ia, ib])
                    ]
                    blocks.append(data[:, data.any(axis=0)])
                    sizes.append((ia.size, ib.size))
            pair_blocks.append(blocks)
            pair_sizes.append(sizes)
            values.append(
                np.array(
                    [
                        _fill_stat(metric, block, np.arange(sum(size))[None, :] < size[0])[0]
                        for block, size in zip(blocks, sizes, strict=True)
                    ]
                )
            )
        n = np.array([v.size for v in values])
        low, high = np.full(len(pairs), np.nan), np.full(len(pairs), np.nan)
        ci_methods = [""] * len(pairs)
        for size in np.unique(n):
            idx = np.flatnonzero(n == size)
            lo, hi, m = stats.bootstrap_ci_rows(
                np.array([values[i] for i in idx]).reshape(idx.size, int(size)),
                rng=stats.rng_for(cfg.seed, f"{probe_set}/{metric}/bootstrap/n={size}"),
                n_resamples=cfg.n_resamples,
                confidence=cfg.confidence,
                expand=True,
            )
            low[idx], high[idx] = lo, hi
            for i, method in zip(idx, m, strict=True):
                ci_methods[i] = method
        for i, (a, b) in enumerate(pairs):
            base = dict(group_a=groups[a], group_b=groups[b], n_units=int(n[i]), effect_unit=unit)
            if n[i] == 0:
                rows.append(_row(probe_set, metric, method=f"{what}; no template with both groups", **base))
                continue
            p, p_method = _fill_p(
                metric,
                pair_blocks[i],
                pair_sizes[i],
                key=f"{probe_set}/{metric}/{groups[a]}/{groups[b]}/permutation",
                cfg=cfg,
            )
            rows.append(
                _row(
                    probe_set,
                    metric,
                    effect=float(values[i].mean()),
                    ci_low=low[i],
                    ci_high=high[i],
                    p_value=p,
                    method=f"{what}, mean over templates; {ci_methods[i]} over templates; {p_method}",
                    **base,
                )
            )
    return rows


def _fill_stat(metric: str, data: np.ndarray, labels: np.ndarray) -> np.ndarray:
    if metric == "fill_divergence":
        return _jsd_bits(*_group_distributions(labels, data))
    return _disco_count(labels, data)


def _fill_p(
    metric: str, blocks: list[np.ndarray], sizes: list[tuple[int, int]], *, key: str, cfg: _Config
) -> tuple[float, str]:
    if all(size == (1, 1) for size in sizes):
        return math.nan, "p undefined: one term per group in every template (labels cannot be permuted)"
    p, _ = stats.label_permutation_test(
        lambda j, labels: _fill_stat(metric, blocks[j], labels),
        sizes,
        rng=stats.rng_for(cfg.seed, key),
        n_resamples=cfg.n_resamples,
    )
    return p, f"p: group labels permuted among terms within templates (Monte Carlo {cfg.n_resamples})"


# ---------------------------------------------------------------------------------------------- API


def compute_findings(
    items: pd.DataFrame,
    targets: pd.DataFrame,
    fills: pd.DataFrame,
    *,
    seed: int = 0,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    unit: str = "template",
) -> pd.DataFrame:
    """The findings table (columns ``FINDINGS_COLUMNS``, docs/data_contract.md) of one run's score tables.

    ``unit`` is the unit of the paired target comparisons: ``"template"`` (default: group means over terms
    within a template) or ``"template_term_pair"`` (terms paired by term_index). q-values are
    Benjamini-Hochberg over every row with a p-value; ``significant`` is ``q_value <= alpha``; CIs are
    ``1 - alpha`` two-sided. Rows are sorted by probe set (run order), metric (``METRICS`` order), target,
    then group pair (group order = first appearance in items); the result does not depend on the input
    row order or on PYTHONHASHSEED.
    """
    if not 0.0 < float(alpha) < 1.0:
        raise AuditError(f"alpha {alpha!r}: must be between 0 and 1")
    if unit not in UNITS:
        raise AuditError(f"unit {unit!r}: expected one of {', '.join(UNITS)}")
    stats.rng_for(seed, "check")  # validates the seed
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise AuditError(f"n_resamples {n_resamples!r}: must be a positive integer")
    cfg = _Config(seed=int(seed), alpha=float(alpha), n_resamples=int(n_resamples), unit=unit)

    items = _prepare_items(items)
    targets = _prepare_scores(targets, _TARGET_COLUMNS, ["item_id", "target"], "targets", items["item_id"])
    fills = _prepare_scores(fills, _FILL_COLUMNS, ["item_id", "rank"], "fills", items["item_id"])
    slot = items[items["group"] != ""]
    item_info = slot[["item_id", "probe_set", "template_id", "group", "term_index"]]
    tjoined = targets.merge(item_info, on="item_id", how="inner", sort=False)
    tjoined["target"] = tjoined["target"].astype(str)
    fjoined = fills.merge(item_info, on="item_id", how="inner", sort=False)

    rows: list[dict[str, Any]] = []
    for probe_set in pd.unique(items["probe_set"]):
        ps_items = slot[slot["probe_set"] == probe_set]
        groups = [str(g) for g in pd.unique(ps_items["group"])]
        rows.extend(_target_rows(probe_set, groups, tjoined[tjoined["probe_set"] == probe_set], cfg))
        rows.extend(_fill_rows(probe_set, groups, fjoined[fjoined["probe_set"] == probe_set], cfg))
    return _finish(rows, items, cfg)


def _finish(rows: list[dict[str, Any]], items: pd.DataFrame, cfg: _Config) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(FINDINGS_COLUMNS))
    if table.empty:
        return _typed(table)
    set_order = {name: i for i, name in enumerate(pd.unique(items["probe_set"]))}
    metric_order = {name: i for i, name in enumerate(METRICS)}
    group_order: dict[tuple[str, str], int] = {}
    for probe_set, sub in items[items["group"] != ""].groupby("probe_set", sort=False):
        for i, g in enumerate(pd.unique(sub["group"])):
            group_order[(str(probe_set), str(g))] = i
    keys = pd.DataFrame(
        {
            "s": table["probe_set"].map(set_order),
            "m": table["metric"].map(metric_order),
            "t": table["target"],
            "a": [
                group_order.get((s, g), -1) for s, g in zip(table["probe_set"], table["group_a"], strict=True)
            ],
            "b": [
                group_order.get((s, g), -1) for s, g in zip(table["probe_set"], table["group_b"], strict=True)
            ],
        }
    )
    table = table.loc[keys.sort_values(["s", "m", "t", "a", "b"], kind="stable").index].reset_index(drop=True)
    table = _typed(table)
    q = stats.benjamini_hochberg(table["p_value"].to_numpy(dtype=float))
    table["q_value"] = q
    table["significant"] = np.nan_to_num(q, nan=np.inf) <= cfg.alpha
    signed = table["metric"].isin(SIGNED_METRICS).to_numpy()
    effect = table["effect"].to_numpy(dtype=float)
    direction = np.full(len(table), "none", dtype=object)
    direction[signed & table["significant"].to_numpy() & (effect > 0)] = "a>b"
    direction[signed & table["significant"].to_numpy() & (effect < 0)] = "b>a"
    table["direction"] = pd.Series(direction, index=table.index, dtype=object)
    return table


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=table.index)
    for column in FINDINGS_COLUMNS:
        if column in _STR_COLUMNS:
            out[column] = pd.Series(
                table[column].astype(str).to_numpy(dtype=object), index=table.index, dtype=object
            )
        elif column in _FLOAT_COLUMNS:
            out[column] = table[column].astype("float64")
        elif column == "n_units":
            out[column] = table[column].astype("int64")
        else:
            out[column] = table[column].astype(bool)
    return out


def summarise_bias(findings: pd.DataFrame, *, top_n: int = 5) -> dict[str, dict[str, Any]]:
    """Per probe set with a bias_score row: the numbers the report shows.

    ``{probe_set: {bias_score, ci_low, ci_high, p_value, q_value, share_significant, n_targets,
    top_targets: {group: [targets...]}}}``. ``share_significant`` is the share of the set's association_gap
    rows (target x group pair) with a p-value that are significant after FDR; ``top_targets[g]`` lists up to
    ``top_n`` targets whose significant association gap favours g, largest effect first (every group of the
    set is a key, possibly with an empty list). Works on a findings table read back from findings.csv.
    """
    _require(findings, FINDINGS_COLUMNS, "findings")
    out: dict[str, dict[str, Any]] = {}
    text = findings.copy()
    for column in ("probe_set", "metric", "target", "group_a", "group_b", "direction"):
        text[column] = text[column].fillna("").astype(str)
    significant = text["significant"].astype(str).str.lower().isin(["true", "1"])
    for probe_set in pd.unique(text["probe_set"]):
        sub = text[text["probe_set"] == probe_set]
        score = sub[sub["metric"] == "bias_score"]
        if score.empty:
            continue
        first = score.iloc[0]
        gaps = sub[(sub["metric"] == "association_gap")]
        tested = gaps[gaps["p_value"].notna()]
        sig = gaps[significant.loc[gaps.index]]
        groups = list(dict.fromkeys([*gaps["group_a"], *gaps["group_b"]]))
        favours: dict[str, dict[str, float]] = {g: {} for g in groups}
        for _, row in sig.iterrows():
            winner = row["group_a"] if row["direction"] == "a>b" else row["group_b"]
            size = abs(float(row["effect"]))
            favours[winner][row["target"]] = max(size, favours[winner].get(row["target"], 0.0))
        top = {
            g: [t for t, _ in sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]]
            for g, v in favours.items()
        }
        out[str(probe_set)] = {
            "bias_score": float(first["effect"]),
            "ci_low": float(first["ci_low"]),
            "ci_high": float(first["ci_high"]),
            "p_value": float(first["p_value"]),
            "q_value": float(first["q_value"]),
            "share_significant": (float(significant.loc[tested.index].mean()) if len(tested) else math.nan),
            "n_targets": int(gaps["target"].nunique()),
            "top_targets": top,
        }
    return out
