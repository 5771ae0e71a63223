"""The signed gaps' group-level inference and every findings row's verdict.

* :func:`gap_inference`: crossed inference of the signed gap a - b for every target of one group pair, with
  what a reviewer reads beside it (probability ratio, share of templates where a > b, prediction interval).
* :func:`add_verdicts`: the last step of ``compute_findings``: q_material and the verdict of every row with a
  margin, Benjamini-Hochberg within each (probe set, metric) family (:func:`albert_audit.inference.margin_verdicts.
  classify`). Rows without a margin (omnibus, reference alignment, rows without a test) keep verdict "".
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from albert_audit import registry
from albert_audit.errors import AuditError
from albert_audit.inference.crossed import crossed_gap
from albert_audit.inference.margin_verdicts import classify


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
    The verdict order is that of :func:`albert_audit.inference.margin_verdicts.classify`: material, negligible,
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
