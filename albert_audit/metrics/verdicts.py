"""The signed gaps' group-level inference and every findings row's verdict.

* :func:`term_cube`: one probe set's item values as (targets, groups, templates, terms) arrays, the term axis
  being ``term_index`` within the group (NaN where a group has no such term in a template, or the value is
  not finite): the design of :func:`albert_audit.inference.crossed.crossed_gap`.
* :func:`gap_inference`: crossed inference of the signed gap a - b for every target of one group pair, with
  what a reviewer reads beside it (probability ratio, share of templates where a > b, prediction interval).
* :func:`add_verdicts`: the last step of ``compute_findings``: q_material and the verdict of every row with a
  margin, Benjamini-Hochberg within each (probe set, metric) family (:func:`albert_audit.inference.verdicts.
  classify`). Rows without a margin (omnibus, reference alignment, rows without a test) keep verdict "".
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from albert_audit import registry, units
from albert_audit.errors import AuditError
from albert_audit.inference.crossed import crossed_gap
from albert_audit.inference.verdicts import classify

SCORE_VALUES = ("logprob", "association")


@dataclass(frozen=True)
class TermCube:
    """Item values of one probe set: ``values[score]`` has shape (targets, groups, templates, terms)."""

    targets: list[str]
    groups: list[str]
    templates: np.ndarray
    values: dict[str, np.ndarray]
    bad: dict[str, np.ndarray]
    """Per score: True where a cell held a non-finite value (then NaN in ``values``)."""


def term_cube(scores: pd.DataFrame, groups: list[str], *, targets: list[str] | None = None,
              templates: np.ndarray | None = None, n_terms: int | None = None) -> TermCube:
    """(targets, groups, templates, terms) arrays of one probe set's joined scores (``units.SCORE_COLUMNS``).

    Targets sorted, groups in the order given, templates sorted, terms by ``term_index`` (0..max), unless
    ``targets``, ``templates`` or ``n_terms`` fix an axis (rows outside it are left out: two models' cubes on
    the same axes). Several values in one cell are averaged; a cell with a non-finite value is NaN (a
    missing item).
    """
    term_index = scores["term_index"].to_numpy(dtype=np.int64)
    term_index = np.where(term_index < 0, 0, term_index)
    target = scores["target"].astype(str)
    names = sorted(target.unique()) if targets is None else list(targets)
    templates = np.sort(scores["template_id"].unique()) if templates is None else np.asarray(templates)
    if n_terms is None:
        n_terms = int(term_index.max()) + 1 if len(term_index) else 0
    t_code = pd.Categorical(target, categories=names).codes
    g_code = pd.Categorical(scores["group"].astype(str), categories=groups).codes
    j_code = pd.Index(templates).get_indexer(scores["template_id"].to_numpy())
    keep = (t_code >= 0) & (g_code >= 0) & (j_code >= 0) & (term_index < n_terms)
    scores, t_code, g_code, j_code, term_index = (scores[keep], t_code[keep], g_code[keep], j_code[keep],
                                                  term_index[keep])
    shape = (len(names), len(groups), len(templates), n_terms)
    values, bad = {}, {}
    for name, value in units.item_values(scores).items():
        values[name], bad[name], _ = units.cell_means(value, (t_code, g_code, j_code, term_index), shape)
    return TermCube(targets=names, groups=list(groups), templates=templates, values=values, bad=bad)


def gap_inference(a: np.ndarray, b: np.ndarray, *, rng: np.random.Generator, alpha: float, margin: float,
                  n_resamples: int) -> dict[str, Any]:
    """Crossed inference of the gap a - b per row, plus ratio, share of templates with a > b and the
    prediction interval of the gap in one new template (``a``, ``b``: (rows, templates, terms))."""
    res = crossed_gap(a, b, rng=rng, alpha=alpha, margin=margin, n_resamples=n_resamples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_a = np.nanmean(a, axis=2)
        mean_b = np.nanmean(b, axis=2)
    d = mean_a - mean_b  # NaN where either group lacks the template
    used = np.isfinite(d)
    n = used.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(used, d > 0, False).sum(axis=1) / n
        mean_d = np.where(used, d, 0.0).sum(axis=1) / n
        sd = np.sqrt(np.where(used, (d - mean_d[:, None]) ** 2, 0.0).sum(axis=1) / (n - 1))
        t = scipy.stats.t.ppf(1.0 - alpha / 2.0, np.where(n > 1, n - 1, 1))
        half = np.where(n > 1, t * sd * np.sqrt(1.0 + 1.0 / n), np.nan)
    return {"res": res, "share": share, "pi_low": res.effect - half, "pi_high": res.effect + half, "n": n}


def gap_effect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The effect of :func:`crossed_gap` alone: mean over templates of (mean of a's terms - mean of b's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        d = np.nanmean(a, axis=2) - np.nanmean(b, axis=2)
        return np.nanmean(d, axis=1)


def ratio_fields(effect: float, low: float, high: float) -> dict[str, float]:
    """``ratio``, ``ratio_low``, ``ratio_high``: exp of a log-ratio effect and of its interval."""
    def ex(x: float) -> float:
        if math.isnan(x):
            return math.nan
        return math.inf if x > 700 else math.exp(x)  # exp(-inf) = 0

    return {"ratio": ex(effect), "ratio_low": ex(low), "ratio_high": ex(high)}


def families(table: pd.DataFrame, *extra: str) -> np.ndarray:
    """One family label per row: (extra columns..., probe set, metric)."""
    cols = [*extra, "probe_set", "metric"]
    return np.array(["\x1f".join(map(str, key)) for key in table.loc[:, cols].itertuples(index=False, name=None)],
                    dtype=object)


def add_verdicts(table: pd.DataFrame, *, alpha: float) -> pd.DataFrame:
    """``q_material`` and ``verdict`` of every findings row with a margin (BH within (probe set, metric)).

    Rows without a margin (metrics whose registry entry declares none) get verdict "" and NaN q_material.
    The verdict order is that of :func:`albert_audit.inference.verdicts.classify`: material, negligible,
    below_margin, inconclusive.
    """
    out = table.copy()
    has = np.isfinite(out["margin"].to_numpy(dtype=float)) if len(out) else np.zeros(0, dtype=bool)
    verdict = np.full(len(out), "", dtype=object)
    q_material = np.full(len(out), np.nan)
    if has.any():
        sub = out.loc[has]
        v, _, qm = classify(p_value=sub["p_value"].to_numpy(dtype=float),
                            p_material=sub["p_material"].to_numpy(dtype=float),
                            p_equivalence=sub["p_equivalence"].to_numpy(dtype=float),
                            alpha=alpha, families=families(sub))
        undefined = ~np.isfinite(sub["p_value"].to_numpy(dtype=float))
        v[undefined] = "inconclusive"
        verdict[has], q_material[has] = v, qm
    out["verdict"] = pd.Series(verdict, index=out.index, dtype=object)
    out["q_material"] = q_material
    return out


def margin_for(metric: str, override: float | None) -> float:
    """The margin of a signed gap metric (the run's ``margin`` or the registry default)."""
    value = registry.margin_of(metric, override)
    return float(value) if value is not None else math.nan


def check_margin(margin: float | None, name: str = "margin") -> float | None:
    """A margin given by the user: None, or a finite number >= 0 (an AuditError otherwise)."""
    if margin is None:
        return None
    try:
        value = float(margin)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(margin, bool) or not math.isfinite(value) or value < 0:
        raise AuditError(f"{name} {margin!r}: must be a finite number >= 0 (nats)")
    return value
