"""Two runs' tables -> the deltas table: how a candidate model's findings differ from its base model's.

Pure pandas/numpy (statistics from :mod:`albert_audit.stats`); no model, no torch.

What is compared
----------------
The rows of the base run's findings table whose metric has a per-template paired structure
(``COMPARED_METRICS``: ``logprob_gap``, ``association_gap`` and the set-level ``bias_score``). For each such
row and each candidate, the per-template effects of *both* models are recomputed from their items and targets
tables (the study's unit, :func:`albert_audit.units.template_cells`, the cells the findings use) and paired by
``(probe_set, template_id)``; only templates where both models have a finite value are used.

* ``logprob_gap`` / ``association_gap`` (signed, group a minus group b, nats): per template
  ``d_j = gap_candidate_j - gap_base_j``; ``delta = mean_j d_j``; CI: bootstrap over templates of the
  mean of ``d_j`` (BCa, percentile fallback, at Hesterberg's expanded level as in the findings;
  :func:`albert_audit.stats.bootstrap_ci_rows`); p: two-sided
  sign-flip permutation test of ``mean d_j = 0`` (exact for n <= 20; :func:`albert_audit.stats.sign_flip_p_rows`).
* ``bias_score`` (mean over targets and group pairs of |association gap|, >= 0; computed by
  :mod:`albert_audit.metrics.bias_score`, the findings' implementation): ``delta = score_candidate -
  score_base``; CI: paired bootstrap over templates (the same resampled templates for both models,
  BCa with a jackknife over templates); p: two-sided permutation test that swaps the two models' per-template
  gaps within each template (exact over all 2**n swaps for n <= 12, Monte Carlo otherwise).

q-values: Benjamini-Hochberg within each (candidate, probe set, metric) family of the deltas table.
Every resampling stream is keyed by ``rng_for(seed, "compare/<probe set>/<metric>/...")``.

How a change is classed (:func:`classify_changes`)
---------------------------------------------------
A delta is *significant* when its q-value <= alpha. With ``b`` the base effect and ``c`` the candidate
effect over the paired templates, and "finding significant" meaning the ``significant`` column of that
model's own findings.csv:

1. ``newly_significant``: the delta is significant, and the candidate's own finding is significant while the
   base's is not. The base had no established bias (its sign is noise), so nothing can be amplified, reduced
   or reversed. (A base q of 0.051 against a candidate q of 0.049 is no change: the delta itself must be
   significant.)
2. ``reversed``: the delta is significant, ``b`` and ``c`` have opposite signs, and both models' own
   findings are significant (an established bias turned into an established opposite bias).
3. ``amplified``: the delta is significant, the signs agree (or b = 0), and ``|c| > |b|``.
4. ``reduced``: the delta is significant, and either the signs agree and ``|c| < |b|``, or the sign flipped
   but the candidate's own finding is not significant (the base's bias is gone; no opposite bias is
   established).
5. ``unchanged``: everything else (including rows without a p-value).

``bias_score`` is never negative, so its rows are amplified, reduced, newly significant or unchanged.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from albert_audit import registry, stats
from albert_audit.errors import AuditError
from albert_audit.metrics.bias_score import delta as bias_score_delta
from albert_audit.units import template_cells

DELTA_COLUMNS = ("probe_set", "metric", "target", "group_a", "group_b", "base_effect", "candidate",
                 "candidate_effect", "delta", "ci_low", "ci_high", "p_value", "q_value", "change")
"""The columns of deltas.csv, in order (an API: see the README)."""
CHANGES = ("amplified", "reduced", "reversed", "newly_significant", "unchanged")
"""The values of the ``change`` column."""
COMPARED_METRICS = registry.compared_ids()
"""Findings metrics that get a delta row (those with a per-template paired structure)."""
SIGNED_METRICS = registry.signed_ids()
ITEM_KEY_COLUMNS = ("probe_set", "template_id", "group", "term", "text")
"""The items columns whose content must match between two runs for them to be compared."""
EXACT_MAX_N = stats.EXACT_MAX_N
_KEY = ["probe_set", "metric", "target", "group_a", "group_b"]


@dataclass(frozen=True)
class RunScores:
    """What the comparison needs from one run: its label and its items, targets and findings tables."""

    label: str
    items: pd.DataFrame
    targets: pd.DataFrame
    findings: pd.DataFrame


# ----------------------------------------------------------------------------------------------- item identity


def items_fingerprint(items: pd.DataFrame) -> str:
    """sha256 (hex) of the content of an items table's ``ITEM_KEY_COLUMNS``, independent of row order and ids.

    Two runs can be compared when their fingerprints are equal: the same probe sets, templates, groups,
    terms and masked sentences.
    """
    missing = [c for c in ITEM_KEY_COLUMNS if c not in items.columns]
    if missing:
        raise AuditError(f"items table lacks column(s) {', '.join(missing)} (see docs/data_contract.md)")
    rows = sorted(
        "\x1f".join(str(v) for v in row)
        for row in items.loc[:, list(ITEM_KEY_COLUMNS)].itertuples(index=False, name=None)
    )
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()


def check_same_items(base: pd.DataFrame, candidate: pd.DataFrame, *, base_name: str, candidate_name: str) -> str:
    """Raise an AuditError naming the first difference when two items tables differ; return the fingerprint."""
    base_hash, cand_hash = items_fingerprint(base), items_fingerprint(candidate)
    if base_hash == cand_hash:
        return base_hash
    keys = list(ITEM_KEY_COLUMNS)
    b = base.loc[:, keys].astype(str).drop_duplicates()
    c = candidate.loc[:, keys].astype(str).drop_duplicates()
    joined = b.merge(c, how="outer", on=keys, indicator=True)
    only_b = joined[joined["_merge"] == "left_only"]
    only_c = joined[joined["_merge"] == "right_only"]
    example = ""
    if len(only_b):
        row = only_b.iloc[0]
        example = f"; e.g. {row['probe_set']} template {row['template_id']}: {row['text']!r} is only in {base_name}"
    elif len(only_c):
        row = only_c.iloc[0]
        example = (f"; e.g. {row['probe_set']} template {row['template_id']}: {row['text']!r} is only in "
                   f"{candidate_name}")
    raise AuditError(
        f"the items of {candidate_name} (sha256 {cand_hash[:12]}, {len(candidate)} items) differ from those of "
        f"{base_name} (sha256 {base_hash[:12]}, {len(base)} items){example}; runs are compared only on the "
        "same probe sets and masked sentences")


# ------------------------------------------------------------------------------------- per-template effects


def _gap_rows(cells: pd.DataFrame, keys: list[tuple[str, str, str, str]], columns: pd.Index) -> np.ndarray:
    """(rows x templates) of group a minus group b for (probe_set, target, group_a, group_b) keys."""
    if not keys:
        return np.zeros((0, len(columns)))
    wide = cells.reindex(columns=columns)
    a = wide.reindex(pd.MultiIndex.from_tuples([(p, t, ga) for p, t, ga, _ in keys])).to_numpy(dtype=float)
    b = wide.reindex(pd.MultiIndex.from_tuples([(p, t, gb) for p, t, _, gb in keys])).to_numpy(dtype=float)
    return np.ascontiguousarray(a - b)  # row-major, as in the findings: sums then round the same way


# ------------------------------------------------------------------------------------------------ statistics


def _signed_delta_stats(gap_b: np.ndarray, gap_c: np.ndarray, *, key: str, seed: int, alpha: float,
                        n_resamples: int) -> dict[str, np.ndarray]:
    """Base effect, candidate effect, delta, CI and p per row of paired (rows x templates) gaps."""
    paired = np.isfinite(gap_b) & np.isfinite(gap_c)
    n = paired.sum(axis=1)
    n_rows = gap_b.shape[0]
    d = np.where(paired, gap_c - gap_b, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        base = np.where(paired, gap_b, 0.0).sum(axis=1) / n
        cand = np.where(paired, gap_c, 0.0).sum(axis=1) / n
        delta = np.where(paired, d, 0.0).sum(axis=1) / n
    low, high, p = (np.full(n_rows, np.nan) for _ in range(3))
    for size in np.unique(n):
        if size < 1:
            continue
        rows = np.flatnonzero(n == size)
        compact = d[rows][paired[rows]].reshape(rows.size, int(size))
        lo, hi, _ = stats.bootstrap_ci_rows(compact, rng=stats.rng_for(seed, f"{key}/bootstrap/n={size}"),
                                            n_resamples=n_resamples, confidence=1.0 - alpha, expand=True)
        pv, _ = stats.sign_flip_p_rows(compact, rng=stats.rng_for(seed, f"{key}/signflip/n={size}"),
                                       n_resamples=n_resamples, exact_max_n=EXACT_MAX_N)
        low[rows], high[rows], p[rows] = lo, hi, pv
    return {"base": base, "cand": cand, "delta": delta, "low": low, "high": high, "p": p, "n": n}


# ------------------------------------------------------------------------------------------- classification


def classify_changes(base_effect: Sequence[float], candidate_effect: Sequence[float], q_value: Sequence[float],
                     base_significant: Sequence[bool], candidate_significant: Sequence[bool], *,
                     alpha: float) -> list[str]:
    """The ``change`` of each delta row (see the module docstring for the rule)."""
    b = np.asarray(base_effect, dtype=float)
    c = np.asarray(candidate_effect, dtype=float)
    q = np.asarray(q_value, dtype=float)
    sig = np.nan_to_num(q, nan=np.inf) <= alpha
    base_sig = np.asarray(base_significant, dtype=bool)
    cand_sig = np.asarray(candidate_significant, dtype=bool)
    flipped = np.sign(b) * np.sign(c) < 0
    bigger = np.abs(c) > np.abs(b)
    smaller = np.abs(c) < np.abs(b)
    out = np.full(b.shape, "unchanged", dtype=object)
    out[sig & ~flipped & smaller] = "reduced"
    out[sig & ~flipped & bigger] = "amplified"
    out[sig & flipped & ~cand_sig] = "reduced"
    out[sig & flipped & cand_sig & base_sig] = "reversed"
    out[sig & cand_sig & ~base_sig] = "newly_significant"
    return [str(v) for v in out]


# ------------------------------------------------------------------------------------------------------ API


def _significance(findings: pd.DataFrame) -> dict[tuple[str, ...], bool]:
    if findings is None or len(findings) == 0:
        return {}
    sig = findings["significant"].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))
    keys = findings.loc[:, _KEY].fillna("").astype(str).itertuples(index=False, name=None)
    return dict(zip(keys, sig, strict=True))


def _compared_rows(findings: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in [*_KEY, "significant"] if c not in findings.columns]
    if missing:
        raise AuditError(f"findings table lacks column(s) {', '.join(missing)} (see docs/data_contract.md)")
    rows = findings.loc[findings["metric"].isin(COMPARED_METRICS), _KEY].copy()
    for column in _KEY:
        rows[column] = rows[column].fillna("").astype(str)
    return rows.reset_index(drop=True)


def _group_order(items: pd.DataFrame) -> dict[str, list[str]]:
    slot = items[items["group"].fillna("").astype(str) != ""]
    return {str(ps): [str(g) for g in pd.unique(sub["group"])] for ps, sub in slot.groupby("probe_set", sort=False)}


def compute_deltas(base: RunScores, candidates: Sequence[RunScores], *, seed: int = 0, alpha: float = 0.05,
                   n_resamples: int = 10_000) -> pd.DataFrame:
    """The deltas table (columns ``DELTA_COLUMNS``) of every candidate against the base.

    The items of every run must match the base's (:func:`check_same_items`; an AuditError otherwise). One
    row per candidate and per base findings row of a ``COMPARED_METRICS`` metric, in the base findings'
    order; CIs are ``1 - alpha`` two-sided; q-values are Benjamini-Hochberg within each (candidate, probe set,
    metric) family; ``change`` follows
    :func:`classify_changes`.
    """
    if not 0.0 < float(alpha) < 1.0:
        raise AuditError(f"alpha {alpha!r}: must be between 0 and 1")
    stats.rng_for(seed, "check")
    labels = [c.label for c in candidates]
    if len(set(labels)) != len(labels):
        raise AuditError(f"candidate labels must be unique, got {labels}")
    rows = _compared_rows(base.findings)
    base_sig = _significance(base.findings)
    base_cells = template_cells(base.items, base.targets)
    groups = _group_order(base.items)
    tables: list[pd.DataFrame] = []
    for cand in candidates:
        check_same_items(base.items, cand.items, base_name=base.label, candidate_name=cand.label)
        cand_cells = template_cells(cand.items, cand.targets)
        cand_sig = _significance(cand.findings)
        result = {name: np.full(len(rows), np.nan) for name in ("base", "cand", "delta", "low", "high", "p")}
        for probe_set, metric in rows[["probe_set", "metric"]].drop_duplicates().itertuples(index=False):
            where = np.flatnonzero((rows["probe_set"] == probe_set).to_numpy() & (rows["metric"] == metric).to_numpy())
            key = f"compare/{probe_set}/{metric}"
            kind = registry.metric(metric).value
            columns = base_cells[kind].columns.union(cand_cells[kind].columns)
            if metric in SIGNED_METRICS:
                keys = [(probe_set, *rows.loc[i, ["target", "group_a", "group_b"]]) for i in where]
                got = _signed_delta_stats(_gap_rows(base_cells[kind], keys, columns),
                                          _gap_rows(cand_cells[kind], keys, columns), key=key, seed=seed,
                                          alpha=alpha, n_resamples=n_resamples)
                for name in result:
                    result[name][where] = got[name]
                continue
            gb, gc = _bias_score_gaps(base_cells[kind], cand_cells[kind], probe_set, groups.get(probe_set, []),
                                      columns)
            n_pairs = max(1, math.comb(len(groups.get(probe_set, [])), 2))
            got_one = bias_score_delta(gb, gc, key=key, seed=seed, alpha=alpha, n_resamples=n_resamples,
                                       n_pairs=n_pairs)
            for name in result:
                result[name][where] = got_one[name]
        keys_all = list(rows.itertuples(index=False, name=None))
        table = rows.copy()
        table["base_effect"] = result["base"]
        table["candidate"] = cand.label
        table["candidate_effect"] = result["cand"]
        table["delta"] = result["delta"]
        table["ci_low"] = result["low"]
        table["ci_high"] = result["high"]
        table["p_value"] = result["p"]
        table["_base_sig"] = [base_sig.get(k, False) for k in keys_all]
        table["_cand_sig"] = [cand_sig.get(k, False) for k in keys_all]
        tables.append(table)
    if not tables:
        return _typed(pd.DataFrame(columns=list(DELTA_COLUMNS)))
    deltas = pd.concat(tables, ignore_index=True)
    families = list(zip(deltas["candidate"], deltas["probe_set"], deltas["metric"], strict=True))
    deltas["q_value"] = stats.benjamini_hochberg_by(deltas["p_value"].to_numpy(dtype=float), families)
    deltas["change"] = classify_changes(deltas["base_effect"], deltas["candidate_effect"], deltas["q_value"],
                                        deltas["_base_sig"], deltas["_cand_sig"], alpha=alpha)
    return _typed(deltas)


def _bias_score_gaps(base_cells: pd.DataFrame, cand_cells: pd.DataFrame, probe_set: str, groups: list[str],
                     columns: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Per-template gaps (rows = target x group pair) of both models over the templates complete in both."""
    pairs = list(itertools.combinations(groups, 2))
    targets = sorted(set(base_cells.loc[probe_set].index.get_level_values("target"))
                     if probe_set in base_cells.index.get_level_values("probe_set") else set())
    keys = [(probe_set, t, a, b) for t in targets for a, b in pairs]
    gb, gc = _gap_rows(base_cells, keys, columns), _gap_rows(cand_cells, keys, columns)
    finite = np.isfinite(gb) & np.isfinite(gc)
    if keys:
        n_targets, n_pairs = len(targets), len(pairs)
        # a target takes part when it has a usable template at all; then keep templates complete for all
        per_target = finite.reshape(n_targets, n_pairs, -1).all(axis=1)
        keep_t = np.repeat(per_target.any(axis=1), n_pairs)
        gb, gc, finite = gb[keep_t], gc[keep_t], finite[keep_t]
    keep_j = finite.all(axis=0) if len(finite) else np.zeros(len(columns), dtype=bool)
    return gb[:, keep_j], gc[:, keep_j]


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=table.index)
    for column in DELTA_COLUMNS:
        if column in ("probe_set", "metric", "target", "group_a", "group_b", "candidate", "change"):
            out[column] = pd.Series(table[column].astype(str).to_numpy(dtype=object), index=table.index, dtype=object)
        else:
            out[column] = table[column].astype("float64")
    return out


def change_counts(deltas: pd.DataFrame) -> dict[str, dict[str, int]]:
    """``{candidate: {change: count}}`` over every change class (zeros included)."""
    out: dict[str, dict[str, int]] = {}
    for cand in pd.unique(deltas["candidate"]):
        sub = deltas[deltas["candidate"] == cand]
        out[str(cand)] = {change: int((sub["change"] == change).sum()) for change in CHANGES}
    return out


def methods_text(*, alpha: float, n_resamples: int) -> dict[str, Any]:
    """How each delta was computed (recorded in compare_summary.json and shown in compare.html)."""
    level = f"{round((1 - alpha) * 100, 6):g}%"
    return {
        "pairing": "per-template effects of both models recomputed from items and targets, paired by "
                   "(probe_set, template_id); templates where either model is not finite are left out",
        "signed_gaps": f"delta = mean over templates of (candidate gap - base gap); {level} BCa bootstrap "
                       f"{n_resamples} over templates; two-sided sign-flip permutation p (exact for n <= "
                       f"{EXACT_MAX_N}, else Monte Carlo {n_resamples})",
        "bias_score": f"delta = candidate score - base score; {level} paired BCa bootstrap {n_resamples} over "
                      "templates (same resamples for both models); p: the two models' gaps swapped within "
                      f"templates (exact for n <= {stats.PATTERN_MAX_N}, else Monte Carlo {n_resamples})",
        "q_value": "Benjamini-Hochberg within each (candidate, probe set, metric) family of deltas.csv",
        "change": "a change needs a significant delta (q <= alpha); then newly_significant: the candidate's "
                  "finding significant and the base's not; reversed: sign flipped and both findings "
                  "significant; amplified: same sign, larger magnitude; reduced: same sign and smaller "
                  "magnitude, or sign flipped without a significant candidate finding; else unchanged",
    }
