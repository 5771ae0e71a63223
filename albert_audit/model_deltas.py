"""Two runs' tables -> the deltas table: how a candidate model's findings differ from its base model's.

Pure pandas/numpy (statistics from :mod:`albert_audit.inference` and :mod:`albert_audit.stats`); no model,
no torch.

What is compared
----------------
The rows of the base run's findings table whose metric has a paired structure (``COMPARED_METRICS``:
``logprob_gap``, ``association_gap`` and the set-level ``bias_score``), recomputed from both models' items
and targets tables.

* ``logprob_gap`` / ``association_gap`` (signed, group a minus group b, nats): the item values of both
  models as (templates x terms) arrays per group (:func:`albert_audit.units.term_cube`), paired
  item by item (items where either model is not finite are left out of both);
  :func:`albert_audit.inference.crossed.crossed_delta` runs the crossed analysis of the findings on the
  item-wise differences candidate - base: ``delta`` = candidate effect - base effect over the paired items,
  its interval, p, and the margin tests at ``delta_margin`` (default log 1.1 = 0.0953 nats). Scope
  ``group`` with >= 5 terms per group and >= 5 templates, else ``terms`` (exact sign flips over templates).
* ``bias_score`` (the findings' estimator, :mod:`albert_audit.metrics.bias_score`: the debiased RMS
  association gap over the bias targets, definitional controls left out): ``delta = score_candidate -
  score_base`` over the templates complete in both models; CI: paired jackknife t interval over templates;
  p: two-sided test swapping the two models' per-template gaps within each template (exact for n <= 12);
  margin tests: t tests of the delta against +-delta_margin with the jackknife se
  (:func:`albert_audit.inference.bias.paired_delta`).

The delta's verdict (``delta_verdict``: material / negligible / below_margin / inconclusive) and its q-values
come from :func:`albert_audit.inference.margin_verdicts.classify`, Benjamini-Hochberg within each (candidate,
probe set, metric) family.

How a change is classed
-----------------------
:func:`albert_audit.inference.margin_verdicts.change` from the delta's verdict and the two findings' verdicts (the
``verdict`` column of each model's findings.csv; a row without a verdict counts as not material):

* ``negligible``: the delta is shown to lie within +-delta_margin (equivalence);
* ``inconclusive``: the delta is neither negligible nor material;
* with a material delta: ``emerged`` (the base finding not material, the candidate's material),
  ``reversed`` (both material, opposite signs), ``amplified`` (the gap grew in size, keeping its sign or from
  a base that is not material), else ``reduced``.

A self-comparison is negligible everywhere (the bias score's delta is exactly 0 with a [0, 0] interval);
``bias_score`` rows are never reversed (the score is >= 0).
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

from albert_audit import contract, registry, stats
from albert_audit.errors import AuditError
from albert_audit.inference.crossed import crossed_delta
from albert_audit.inference.margin_verdicts import CHANGES as _CHANGES
from albert_audit.inference.margin_verdicts import VERDICTS, change, classify
from albert_audit.metrics.bias_score import delta as bias_score_delta
from albert_audit.metrics.row_verdicts import check_margin, families, gap_effect
from albert_audit.units import join_scores, template_cells, term_cube

DELTA_COLUMNS = contract.DELTAS.names
"""The columns of deltas.csv, in order (an API: see the README)."""
CHANGES = _CHANGES
"""The values of the ``change`` column: amplified, reduced, reversed, emerged, negligible, inconclusive."""
MATERIAL_CHANGES = ("amplified", "reduced", "reversed", "emerged")
"""The classes that need a material delta."""
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
    contract.require_columns(items, ITEM_KEY_COLUMNS, "items table")
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


@dataclass
class _Cubes:
    """Both models' item cubes of one probe set, on the same axes."""

    base: Any
    cand: Any


def _model_cubes(base: pd.DataFrame, cand: pd.DataFrame, groups: list[str]) -> _Cubes:
    targets = sorted(set(base["target"].astype(str)) | set(cand["target"].astype(str)))
    templates = np.union1d(base["template_id"].unique(), cand["template_id"].unique())
    n_terms = int(max(base["term_index"].max() if len(base) else 0, cand["term_index"].max() if len(cand) else 0,
                      0)) + 1
    kw = dict(targets=targets, templates=templates, n_terms=n_terms)
    return _Cubes(term_cube(base, groups, **kw), term_cube(cand, groups, **kw))  # type: ignore[arg-type]


def _signed_deltas(cubes: _Cubes, value: str, keys: list[tuple[str, str, str]], *, key: str, seed: int,
                   alpha: float, margin: float, n_resamples: int) -> dict[str, np.ndarray]:
    """Base effect, candidate effect and the crossed delta inference per (target, group_a, group_b) key."""
    t_index = {t: i for i, t in enumerate(cubes.base.targets)}
    g_index = {g: i for i, g in enumerate(cubes.base.groups)}
    shape = (len(keys), len(cubes.base.templates), cubes.base.values[value].shape[-1])

    def pick(cube: Any, which: int) -> np.ndarray:
        out = np.full(shape, np.nan)
        for r, k in enumerate(keys):
            t, g = t_index.get(k[0]), g_index.get(k[which])
            if t is not None and g is not None:
                out[r] = cube.values[value][t, g]
        return out

    ba, bb, ca, cb = pick(cubes.base, 1), pick(cubes.base, 2), pick(cubes.cand, 1), pick(cubes.cand, 2)
    both_a, both_b = np.isfinite(ba) & np.isfinite(ca), np.isfinite(bb) & np.isfinite(cb)
    ba, ca = np.where(both_a, ba, np.nan), np.where(both_a, ca, np.nan)
    bb, cb = np.where(both_b, bb, np.nan), np.where(both_b, cb, np.nan)
    res = crossed_delta(ba, bb, ca, cb, rng=stats.rng_for(seed, f"{key}/crossed"), alpha=alpha, margin=margin,
                        n_resamples=n_resamples)
    return {"base": gap_effect(ba, bb), "cand": gap_effect(ca, cb), "delta": res.effect, "low": res.ci_low,
            "high": res.ci_high, "p": res.p_value, "p_material": res.p_material,
            "p_equivalence": res.p_equivalence, "scope": res.scope}


# ------------------------------------------------------------------------------------------- classification


def classify_changes(base_effect: Sequence[float], candidate_effect: Sequence[float],
                     delta_verdict: Sequence[str], base_verdict: Sequence[str],
                     candidate_verdict: Sequence[str]) -> list[str]:
    """The ``change`` of each delta row (:func:`albert_audit.inference.margin_verdicts.change`); a finding without
    a verdict ("", e.g. the bias score) counts as not material."""
    def known(values: Sequence[str]) -> np.ndarray:
        return np.array([v if v in VERDICTS else "inconclusive" for v in map(str, values)], dtype=object)

    out = change(base_effect=np.asarray(base_effect, dtype=float), base_verdict=known(base_verdict),
                 candidate_effect=np.asarray(candidate_effect, dtype=float),
                 candidate_verdict=known(candidate_verdict), delta_verdict=known(delta_verdict))
    return [str(v) for v in out]


# ------------------------------------------------------------------------------------------------------ API


def _verdicts(findings: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """Key -> the finding's verdict ("" when the findings table has no verdict column or the row none)."""
    if findings is None or len(findings) == 0 or "verdict" not in findings.columns:
        return {}
    keys = findings.loc[:, _KEY].fillna("").astype(str).itertuples(index=False, name=None)
    return dict(zip(keys, findings["verdict"].fillna("").astype(str), strict=True))


def _compared_rows(findings: pd.DataFrame) -> pd.DataFrame:
    contract.require_columns(findings, _KEY, "findings table")
    rows = findings.loc[findings["metric"].isin(COMPARED_METRICS), _KEY].copy()
    for column in _KEY:
        rows[column] = rows[column].fillna("").astype(str)
    return rows.reset_index(drop=True)


def _group_order(items: pd.DataFrame) -> dict[str, list[str]]:
    slot = items[items["group"].fillna("").astype(str) != ""]
    return {str(ps): [str(g) for g in pd.unique(sub["group"])] for ps, sub in slot.groupby("probe_set", sort=False)}


_RESULTS = ("base", "cand", "delta", "low", "high", "p", "p_material", "p_equivalence", "margin")


def compute_deltas(base: RunScores, candidates: Sequence[RunScores], *, seed: int = 0, alpha: float = 0.05,
                   n_resamples: int = 10_000, delta_margin: float | None = None) -> pd.DataFrame:
    """The deltas table (columns ``DELTA_COLUMNS``) of every candidate against the base.

    The items of every run must match the base's (:func:`check_same_items`; an AuditError otherwise). One
    row per candidate and per base findings row of a ``COMPARED_METRICS`` metric, in the base findings'
    order; CIs are ``1 - alpha`` two-sided; q-values are Benjamini-Hochberg within each (candidate, probe
    set, metric); ``delta_margin`` (nats; None: each metric's registry default, log 1.1) is the margin of
    the delta's verdict; ``change`` follows :func:`classify_changes`.
    """
    if not 0.0 < float(alpha) < 0.5:
        raise AuditError(f"alpha {alpha!r}: must be between 0 and 0.5")
    delta_margin = check_margin(delta_margin, "delta_margin")
    stats.rng_for(seed, "check")
    labels = [c.label for c in candidates]
    if len(set(labels)) != len(labels):
        raise AuditError(f"candidate labels must be unique, got {labels}")
    rows = _compared_rows(base.findings)
    base_verdicts = _verdicts(base.findings)
    base_cells = template_cells(base.items, base.targets)
    base_scores = join_scores(base.items, base.targets) if len(base.targets) else None
    groups = _group_order(base.items)
    tables: list[pd.DataFrame] = []
    for cand in candidates:
        check_same_items(base.items, cand.items, base_name=base.label, candidate_name=cand.label)
        cand_cells = template_cells(cand.items, cand.targets)
        cand_scores = join_scores(cand.items, cand.targets) if len(cand.targets) else None
        cand_verdicts = _verdicts(cand.findings)
        result = {name: np.full(len(rows), np.nan) for name in _RESULTS}
        scope = np.full(len(rows), "", dtype=object)
        for probe_set, metric in rows[["probe_set", "metric"]].drop_duplicates().itertuples(index=False):
            where = np.flatnonzero((rows["probe_set"] == probe_set).to_numpy() & (rows["metric"] == metric).to_numpy())
            key = f"compare/{probe_set}/{metric}"
            kind = registry.metric(metric).value
            margin = float(registry.delta_margin_of(metric, delta_margin) or 0.0)
            result["margin"][where] = margin
            if metric in SIGNED_METRICS:
                if base_scores is None or cand_scores is None:
                    continue
                cubes = _model_cubes(base_scores[base_scores["probe_set"] == probe_set],
                                     cand_scores[cand_scores["probe_set"] == probe_set], groups.get(probe_set, []))
                keys = [tuple(rows.loc[i, ["target", "group_a", "group_b"]]) for i in where]
                got = _signed_deltas(cubes, kind, keys, key=key, seed=seed, alpha=alpha, margin=margin,
                                     n_resamples=n_resamples)
                for name in _RESULTS[:-1]:
                    result[name][where] = got[name]
                scope[where] = got["scope"]
                continue
            columns = base_cells[kind].columns.union(cand_cells[kind].columns)
            gb, gc = _bias_score_gaps(base_cells[kind], cand_cells[kind], probe_set, groups.get(probe_set, []),
                                      columns, _controls(base.targets, base.items, probe_set))
            got_one = bias_score_delta(gb, gc, key=key, seed=seed, alpha=alpha, n_resamples=n_resamples,
                                       margin=margin)
            for name, value in got_one.items():
                if name in result and name != "margin":
                    result[name][where] = value
        keys_all = list(rows.itertuples(index=False, name=None))
        table = rows.copy()
        table["base_effect"] = result["base"]
        table["candidate"] = cand.label
        table["candidate_effect"] = result["cand"]
        table["delta"] = result["delta"]
        table["ci_low"] = result["low"]
        table["ci_high"] = result["high"]
        table["p_value"] = result["p"]
        table["scope"] = scope
        table["margin"] = result["margin"]
        table["p_material"] = result["p_material"]
        table["p_equivalence"] = result["p_equivalence"]
        table["base_verdict"] = [base_verdicts.get(k, "") for k in keys_all]
        table["candidate_verdict"] = [cand_verdicts.get(k, "") for k in keys_all]
        tables.append(table)
    if not tables or sum(len(t) for t in tables) == 0:
        return _typed(pd.DataFrame(columns=list(DELTA_COLUMNS)))
    deltas = pd.concat(tables, ignore_index=True)
    verdict, q, qm = classify(p_value=deltas["p_value"].to_numpy(dtype=float),
                              p_material=deltas["p_material"].to_numpy(dtype=float),
                              p_equivalence=deltas["p_equivalence"].to_numpy(dtype=float), alpha=alpha,
                              families=families(deltas, "candidate"))
    deltas["q_value"], deltas["q_material"], deltas["delta_verdict"] = q, qm, verdict
    deltas["change"] = classify_changes(deltas["base_effect"], deltas["candidate_effect"], deltas["delta_verdict"],
                                        deltas["base_verdict"], deltas["candidate_verdict"])
    return _typed(deltas)


def _controls(targets: pd.DataFrame, items: pd.DataFrame, probe_set: str) -> set[str]:
    """The definitional targets of a probe set (targets column ``control``), left out of its bias score."""
    if "control" not in targets.columns or len(targets) == 0:
        return set()
    ids = items.loc[items["probe_set"] == probe_set, "item_id"]
    sub = targets[targets["item_id"].isin(ids)]
    return set(sub.loc[sub["control"].fillna(False).astype(bool), "target"].astype(str))


def _bias_score_gaps(base_cells: pd.DataFrame, cand_cells: pd.DataFrame, probe_set: str, groups: list[str],
                     columns: pd.Index, controls: set[str] = frozenset()) -> tuple[np.ndarray, np.ndarray]:
    """Per-template gaps (rows = bias target x group pair) of both models over the templates complete in both
    (definitional ``controls`` left out, as in the findings)."""
    pairs = list(itertools.combinations(groups, 2))
    targets = sorted(set(base_cells.loc[probe_set].index.get_level_values("target"))
                     if probe_set in base_cells.index.get_level_values("probe_set") else set())
    targets = [t for t in targets if str(t) not in controls]
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
    for column in contract.DELTAS.columns:
        if column.dtype == "str":
            values = table[column.name].map(lambda v: "" if v is None or v != v else str(v))
            out[column.name] = pd.Series(values.to_numpy(dtype=object), index=table.index, dtype=object)
        else:
            out[column.name] = table[column.name].astype("float64")
    return out


def change_counts(deltas: pd.DataFrame) -> dict[str, dict[str, int]]:
    """``{candidate: {change: count}}`` over every change class (zeros included)."""
    out: dict[str, dict[str, int]] = {}
    for cand in pd.unique(deltas["candidate"]):
        sub = deltas[deltas["candidate"] == cand]
        out[str(cand)] = {change: int((sub["change"] == change).sum()) for change in CHANGES}
    return out


def methods_text(*, alpha: float, n_resamples: int, delta_margin: float | None = None) -> dict[str, Any]:
    """How each delta was computed (recorded in compare_summary.json and shown in compare.html)."""
    level = f"{round((1 - alpha) * 100, 6):g}%"
    margins = sorted({registry.delta_margin_of(m, delta_margin) for m in COMPARED_METRICS} - {None})
    margin_text = ", ".join(f"{m:.4g} nats (a {math.exp(m):.3g}x ratio)" for m in margins)
    return {
        "pairing": "the item values of both models paired item by item (probe set, template, group, term); items "
                   "where either model is not finite are left out of both",
        "signed_gaps": f"delta = candidate gap - base gap over the paired items, by the crossed analysis of the "
                       f"item-wise differences (templates and terms crossed; scope group with >= 5 terms per "
                       f"group and >= 5 templates, else exact sign flips over templates, scope terms); "
                       f"{level} t interval",
        "bias_score": f"delta = candidate score - base score (debiased RMS association gap, the findings' "
                      f"estimator, over the templates complete in both models); {level} paired jackknife t "
                      "interval over templates; p: the two models' gaps swapped within templates (exact for "
                      f"n <= {stats.PATTERN_MAX_N}, else Monte Carlo {n_resamples}); margin tests: t tests of "
                      "the delta with the jackknife standard error",
        "margin": f"delta margin {margin_text}: a delta is material when it lies beyond the margin at FDR "
                  f"{alpha:g}, negligible when equivalence within the margin is shown (TOST at {alpha:g})",
        "q_value": "Benjamini-Hochberg within each (candidate, probe set, metric)",
        "change": "amplified / reduced / reversed / emerged need a material delta: emerged when the base finding "
                  "is not material and the candidate's is; reversed when both are material with opposite signs; "
                  "amplified when the gap grew in size; else reduced. Otherwise negligible (delta shown within "
                  "the margin) or inconclusive",
    }
