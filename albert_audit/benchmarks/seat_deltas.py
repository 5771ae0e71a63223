"""Paired deltas of SEAT effect sizes (per test, and the mean |d| over tests) between a base and a candidate.

Both models encode the same sentences; the per-sentence tables hold each target sentence's association
s(w, A, B) (each model's own attribute encodings). Per test, delta = d_candidate - d_base, WEAT's d of each
model (sample standard deviation, ddof 1).

- p: swap test over the target sentences (:func:`albert_audit.benchmarks.deltas.swap_p`): under H0 the two
  models' associations of a sentence are exchangeable, so a pattern swaps them for some sentences (X and Y
  keep their members), both d are recomputed, and p is the share of patterns with |delta| at least the
  observed one (exact up to 12 sentences, else Monte Carlo).
- CI: paired percentile bootstrap: X and Y resampled with replacement (sizes kept), the same draws for both
  models, as the findings' interval of d.
- ``all``: delta of the mean |d| over tests (bias-bench's summary); CI from the tests' paired bootstrap draws
  and p from their Monte Carlo swap draws (draw r of every test together).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from albert_audit.benchmarks.deltas import delta_row, finish, swap_signs
from albert_audit.benchmarks.rows import ALL
from albert_audit.benchmarks.seat import BENCHMARK, METRIC
from albert_audit.errors import AuditError
from albert_audit.stats import rng_for, upper_tail_p

_KEYS = ["test", "set", "text"]


def _d(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """WEAT d along the last axis of x (.., nx) and y (.., ny); NaN where the pooled sd is 0."""
    pooled = np.concatenate([x, y], axis=-1)
    sd = pooled.std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, (x.mean(axis=-1) - y.mean(axis=-1)) / np.where(sd > 0, sd, 1.0), np.nan)


def _aligned(base: pd.DataFrame, candidate: pd.DataFrame, label: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The base table and the candidate's associations in the base's row order (matched by test, set, text
    and occurrence); an AuditError when the runs encoded other sentences."""
    b = base.reset_index(drop=True).copy()
    c = candidate.reset_index(drop=True).copy()
    for t in (b, c):
        t["_n"] = t.groupby(_KEYS, sort=False).cumcount()
    merged = b[[*_KEYS, "_n"]].merge(c[[*_KEYS, "_n", "association"]], on=[*_KEYS, "_n"], how="left")
    if len(c) != len(b) or merged["association"].isna().any():
        raise AuditError(f"{BENCHMARK}: the base and {label} runs encoded different sentences")
    return b, merged["association"].to_numpy(dtype=float)


def seat_deltas(base: pd.DataFrame, candidate: pd.DataFrame, *, candidate_label: str, seed: int, alpha: float,
                n_resamples: int) -> pd.DataFrame:
    """One ``seat`` delta row per test and an ``all`` row (mean |d| over tests)."""
    b, assoc_c = _aligned(base, candidate, candidate_label)
    level = f"{round((1 - alpha) * 100, 6):g}%"
    rows, boot_b, boot_c, swaps_b, swaps_c = [], [], [], [], []
    for test in pd.unique(b["test"]):
        in_test = (b["test"] == test).to_numpy()
        in_x, in_y = in_test & (b["set"] == "targ1").to_numpy(), in_test & (b["set"] == "targ2").to_numpy()
        sb = b["association"].to_numpy(dtype=float)
        xb, yb, xc, yc = sb[in_x], sb[in_y], assoc_c[in_x], assoc_c[in_y]
        d_b, d_c = float(_d(xb, yb)), float(_d(xc, yc))
        delta = d_c - d_b
        key = f"{BENCHMARK}/{test}/delta/{candidate_label}"
        rng = rng_for(seed, f"{key}/ci")
        ix = rng.integers(0, len(xb), (n_resamples, len(xb)))
        iy = rng.integers(0, len(yb), (n_resamples, len(yb)))
        bb, bc = _d(xb[ix], yb[iy]), _d(xc[ix], yc[iy])
        boot_b.append(bb)
        boot_c.append(bc)
        low, high = _percentile(bc - bb, alpha)
        moved = np.concatenate([xb != xc, yb != yc])
        n_moved = int(moved.sum())
        signs, exact = swap_signs(n_moved, rng=rng_for(seed, f"{key}/p"), n_resamples=n_resamples)
        full = np.ones((len(signs), len(moved)))
        full[:, moved] = signs
        null_b, null_c = _swap_with_both(xb, yb, xc, yc, full)
        null = null_c - null_b
        p = upper_tail_p(abs(delta), np.abs(null), exact=exact) if n_moved and math.isfinite(delta) else math.nan
        mc = np.ones((n_resamples, len(moved)))
        mc[:, moved] = 1.0 - 2.0 * rng_for(seed, f"{key}/all-p").integers(0, 2, (n_resamples, n_moved))
        swaps = _swap_with_both(xb, yb, xc, yc, mc)
        swaps_b.append(swaps[0])
        swaps_c.append(swaps[1])
        how = (f"exact, {len(signs)} patterns" if exact else f"Monte Carlo {n_resamples}")
        rows.append(delta_row(
            benchmark=BENCHMARK, metric=METRIC, target=str(test), candidate=candidate_label,
            n_units=len(xb) + len(yb), base_effect=d_b, candidate_effect=d_c, delta=delta, ci_low=low, ci_high=high,
            p_value=p, n_discordant=n_moved,
            method=f"paired over {len(xb) + len(yb)} target sentences; swap test of the two models' associations "
                   f"over {n_moved} sentences ({how}); CI: {level} paired percentile bootstrap {n_resamples} of "
                   "X and Y"))
    if rows:
        mean_b = float(np.nanmean([abs(r["base_effect"]) for r in rows]))
        mean_c = float(np.nanmean([abs(r["candidate_effect"]) for r in rows]))
        delta = mean_c - mean_b
        draws = np.nanmean(np.abs(np.vstack(boot_c)), axis=0) - np.nanmean(np.abs(np.vstack(boot_b)), axis=0)
        low, high = _percentile(draws, alpha)
        null = np.nanmean(np.abs(np.vstack(swaps_c)), axis=0) - np.nanmean(np.abs(np.vstack(swaps_b)), axis=0)
        n_moved = sum(r["n_discordant"] for r in rows)
        p = upper_tail_p(abs(delta), np.abs(null), exact=False) if n_moved and math.isfinite(delta) else math.nan
        rows.append(delta_row(
            benchmark=BENCHMARK, metric=METRIC, target=ALL, candidate=candidate_label, n_units=len(rows),
            base_effect=mean_b, candidate_effect=mean_c, delta=delta, ci_low=low, ci_high=high, p_value=p,
            n_discordant=n_moved,
            method=f"delta of the mean |d| over {len(rows)} tests; swap test (Monte Carlo {n_resamples}, draw r "
                   f"of every test together); CI: {level} percentile of the tests' paired bootstrap draws"))
    return finish(rows, alpha=alpha)


def _swap_with_both(xb: np.ndarray, yb: np.ndarray, xc: np.ndarray, yc: np.ndarray,
                    signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d_b, d_c) under each swap pattern (for the ``all`` row's mean |d|)."""
    kb, kc = np.concatenate([xb, yb]), np.concatenate([xc, yc])
    keep = signs > 0
    new_c, new_b = np.where(keep, kc, kb), np.where(keep, kb, kc)
    nx = len(xb)
    return _d(new_b[:, :nx], new_b[:, nx:]), _d(new_c[:, :nx], new_c[:, nx:])


def _percentile(values: np.ndarray, alpha: float) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size < 2:
        return math.nan, math.nan
    return float(np.quantile(v, alpha / 2)), float(np.quantile(v, 1 - alpha / 2))
