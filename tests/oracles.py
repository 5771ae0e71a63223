"""Independent or one-row reference computations the tests check the package against.

The first four were public functions of ``albert_audit.stats`` that nothing in the package used; they stay
here as oracles (one-sample wrappers around the ``*_rows`` workhorses, with the non-finite rule: drop and
count) and second opinions (Wilcoxon, Cohen's d_z). The others recompute the study's unit and the bias score
the slow, obvious way.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import scipy.stats
from numpy.typing import ArrayLike

from albert_audit import stats


def finite_values(values: ArrayLike) -> tuple[np.ndarray, int]:
    """The finite values of ``values`` (flattened, order kept) and how many non-finite ones were dropped."""
    x = np.asarray(values, dtype=float).ravel()
    keep = np.isfinite(x)
    return x[keep], int(x.size - np.count_nonzero(keep))


def dropped_note(n_dropped: int) -> str:
    """The method-string suffix that records dropped non-finite values ('' when none)."""
    return f"; dropped {n_dropped} non-finite" if n_dropped else ""


def paired_bootstrap_ci(
    diffs: ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    method: str = "BCa",
    expand: bool = False,
) -> tuple[float, float, str]:
    """Bootstrap CI of the mean of paired differences (resampling units): ``(low, high, method_used)``.

    Non-finite values are dropped first and counted in ``method_used``; otherwise as
    :func:`albert_audit.stats.bootstrap_ci_rows` on one row.
    """
    x, dropped = finite_values(diffs)
    low, high, methods = stats.bootstrap_ci_rows(
        x[None, :], rng=rng, n_resamples=n_resamples, confidence=confidence, method=method, expand=expand
    )
    return float(low[0]), float(high[0]), methods[0] + dropped_note(dropped)


def sign_flip_permutation_test(
    diffs: ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    exact_max_n: int = stats.EXACT_MAX_N,
) -> tuple[float, str]:
    """Two-sided paired sign-flip permutation test of mean(diffs) = 0: ``(p, method_used)``.

    Non-finite values are dropped first and counted; otherwise :func:`albert_audit.stats.sign_flip_p_rows`.
    """
    x, dropped = finite_values(diffs)
    p, method = stats.sign_flip_p_rows(x[None, :], rng=rng, n_resamples=n_resamples, exact_max_n=exact_max_n)
    return float(p[0]), method + dropped_note(dropped)


def wilcoxon_p(diffs: ArrayLike) -> float:
    """Two-sided Wilcoxon signed-rank p-value (scipy; zeros dropped, as scipy's default 'wilcox').

    Non-finite values are dropped; no values gives NaN; all values 0 gives 1.0.
    """
    x, _ = finite_values(diffs)
    if x.size == 0:
        return math.nan
    if not np.any(x != 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(scipy.stats.wilcoxon(x).pvalue)


def cohens_dz(diffs: ArrayLike) -> float:
    """Cohen's d_z of paired differences: mean / standard deviation (ddof = 1).

    Non-finite values are dropped; n < 2 gives NaN; zero spread gives 0.0 when the mean is 0 and
    +/-inf otherwise.
    """
    x, _ = finite_values(diffs)
    if x.size < 2:
        return math.nan
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    if sd == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / sd


# ------------------------------------------------------------------------------------ the study's unit


def template_cells_pandas(items: pd.DataFrame, targets: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per-template group means by a plain pandas group-by (the unit as compare first computed it).

    Same layout as :func:`albert_audit.units.template_cells`; pandas sums with compensation, so values agree
    to rounding, not bit for bit.
    """
    slot = items.loc[items["group"].fillna("").astype(str) != "", ["item_id", "probe_set", "template_id", "group"]]
    scores = ["logprob", "term_logprob", "term_prior_logprob"]
    joined = targets.loc[:, ["item_id", "target", *scores]].merge(slot, on="item_id")
    joined["target"] = joined["target"].astype(str)
    joined["group"] = joined["group"].astype(str)
    logprob = joined["logprob"].to_numpy(dtype=float)
    association = joined["term_logprob"].to_numpy(dtype=float) - joined["term_prior_logprob"].to_numpy(dtype=float)
    values = {"logprob": logprob, "association": association}
    keys = ["probe_set", "target", "group", "template_id"]
    out: dict[str, pd.DataFrame] = {}
    for name, value in values.items():
        frame = joined.loc[:, keys].copy()
        bad = ~np.isfinite(value)
        frame["value"] = np.where(bad, 0.0, value)
        frame["bad"] = bad
        grouped = frame.groupby(keys, sort=True).agg(value=("value", "mean"), bad=("bad", "any"))
        out[name] = grouped["value"].where(~grouped["bad"]).unstack("template_id")
    return out


# ---------------------------------------------------------------------------------------- the bias score


def bias_score_oracle(items: pd.DataFrame, targets: pd.DataFrame, probe_set: str, *, alpha: float) -> dict[str, float]:
    """The findings' bias score of one probe set, computed target by target and pattern by pattern.

    Rows: bias target x group pair, each over the templates where every group is present (rows with fewer
    than 3 left out). U = mean over rows of the mean over ordered pairs i != j of d_i d_j (unbiased for the
    squared RMS gap); score sqrt(max(U, 0)). Interval: U +- t_{J-1} se, se the leave-one-template-out
    jackknife, clipped at 0 and square-rooted; its lower end 0 unless the sign-flip p <= alpha / 2. p (two
    groups or more, n <= 12 templates): share of the 2**n joint sign patterns whose U is at least the
    observed one, doubled (reported two-sided).
    """
    cells = template_cells_pandas(items, targets)["association"].xs(probe_set)
    groups = list(dict.fromkeys(items.loc[(items["probe_set"] == probe_set) & (items["group"] != ""), "group"]))
    pairs = list(itertools.combinations(groups, 2))
    controls: set[str] = set()
    if "control" in targets.columns:
        controls = set(targets.loc[targets["control"].astype(bool), "target"].astype(str))
    templates = list(cells.columns)
    rows: list[dict[int, float]] = []  # template -> gap
    for target in sorted(set(cells.index.get_level_values("target")) - controls):
        table = cells.xs(target).reindex(groups)
        complete = [j for j in templates if table[j].notna().all()]
        if len(complete) < 3:
            continue
        for a, b in pairs:
            rows.append({j: float(table.loc[a, j] - table.loc[b, j]) for j in complete})
    used = sorted({j for r in rows for j in r})

    def u_stat(signs: dict[int, float], leave_out: int | None = None) -> float:
        per_row = []
        for r in rows:
            vals = np.array([signs[j] * v for j, v in r.items() if j != leave_out])
            products = np.outer(vals, vals)
            per_row.append(products[~np.eye(vals.size, dtype=bool)].mean())  # ordered pairs i != j
        return float(np.mean(per_row))

    ones = dict.fromkeys(used, 1.0)
    u = u_stat(ones)
    n = len(used)
    jack = np.array([u_stat(ones, j) for j in used])
    se = math.sqrt((n - 1) / n * float(np.sum((jack - jack.mean()) ** 2)))
    p_one = math.nan
    if n <= 12:
        nulls = [u_stat(dict(zip(used, s, strict=True))) for s in itertools.product([1.0, -1.0], repeat=n)]
        p_one = float(np.mean(np.array(nulls) >= u - 1e-9 * abs(u)))
    t = float(scipy.stats.t.ppf(1 - alpha / 2, n - 1))
    low2 = max(u - t * se, 0.0) if p_one <= alpha / 2 else 0.0
    return {"effect": math.sqrt(max(u, 0.0)), "ci_low": math.sqrt(low2), "ci_high": math.sqrt(max(u + t * se, 0.0)),
            "n_units": n, "p_value": min(1.0, 2 * p_one), "squared": u, "se": se}
