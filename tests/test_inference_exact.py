"""albert_audit.inference.exact: meet-in-the-middle sign flips against brute force and the old stats module."""

from __future__ import annotations

import numpy as np
import pytest

from albert_audit import stats
from albert_audit.errors import AuditError
from albert_audit.inference.exact import sign_flip_p, sign_patterns


def brute(row: np.ndarray, shift: float, alternative: str) -> float:
    r = row[np.isfinite(row)] - shift
    sums = sign_patterns(r.size) @ r
    obs = r.sum()
    tol = 1e-9 * np.abs(r).sum()
    if alternative == "greater":
        return float(np.mean(sums >= obs - tol))
    if alternative == "less":
        return float(np.mean(sums <= obs + tol))
    return float(np.mean(np.abs(sums) >= abs(obs) - tol))


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_exact_equals_brute_force(alternative: str, shift: float) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0.2, 1.0, (6, 15))
    x[0, :6] = np.nan  # a shorter row (n = 9) in the same batch
    x[1, 4] = np.inf  # non-finite = missing
    x[2] = np.round(x[2], 1)  # ties
    p, n, exact = sign_flip_p(x, shift=shift, alternative=alternative, rng=rng)
    assert exact.all() and n.tolist() == [9, 14, 15, 15, 15, 15]
    for row, got in zip(x, p, strict=True):
        assert got == pytest.approx(brute(row, shift, alternative), abs=1e-15)


def test_matches_the_stats_module_for_small_n() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0.3, 1.0, (40, 11))
    p, _, _ = sign_flip_p(x, rng=rng)
    old, _ = stats.sign_flip_p_rows(x, rng=rng)
    np.testing.assert_allclose(p, old, rtol=0, atol=1e-15)


def test_exact_to_twenty_units_removes_the_monte_carlo_floor() -> None:
    x = np.full((1, 20), 0.5)
    p, _, exact = sign_flip_p(x, rng=np.random.default_rng(0))
    assert exact[0] and p[0] == pytest.approx(2.0 / 2**20)
    p_mc, _, exact_mc = sign_flip_p(x, rng=np.random.default_rng(0), exact_max_n=12, n_resamples=999)
    assert not exact_mc[0] and p_mc[0] >= 1.0 / 1000  # the floor Monte Carlo cannot go below


def test_monte_carlo_agrees_with_exact_above_the_limit() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0.25, 1.0, (8, 22))
    exact_p, _, exact = sign_flip_p(x, rng=rng, exact_max_n=22)
    mc_p, _, mc = sign_flip_p(x, rng=rng, n_resamples=20_000)  # default limit 20 < 22: Monte Carlo
    assert exact.all() and not mc.any()
    se = np.sqrt(exact_p * (1 - exact_p) / 20_000) + 1e-4
    assert np.all(np.abs(mc_p - exact_p) < 4.5 * se)


def test_edge_cases() -> None:
    rng = np.random.default_rng(0)
    p, n, _ = sign_flip_p(np.array([[np.nan, 1.0], [0.0, 0.0], [1.0, 1.0]]), rng=rng)
    assert np.isnan(p[0]) and n[0] == 1
    assert p[1] == 1.0  # all zero: every pattern is as extreme
    assert p[2] == pytest.approx(0.5)  # n = 2, identical values: 2 of 4 patterns
    p_less, _, _ = sign_flip_p(np.array([[1.0, 2.0, 3.0]]), alternative="less", rng=rng)
    assert p_less[0] == 1.0
    p_zero, _, _ = sign_flip_p(np.zeros((1, 4)), alternative="greater", rng=rng)
    assert p_zero[0] == 1.0  # every pattern ties with the observed 0


@pytest.mark.parametrize(("kwargs", "match"), [({"alternative": "bigger"}, "alternative"),
                                               ({"n_resamples": 0}, "n_resamples")])
def test_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(AuditError, match=match):
        sign_flip_p(np.ones((1, 3)), rng=np.random.default_rng(0), **kwargs)


def test_the_inference_package_never_imports_the_model_stack() -> None:
    import subprocess
    import sys

    code = (
        "import sys, albert_audit.inference.crossed, albert_audit.inference.margin_verdicts, "
        "albert_audit.inference.bias, albert_audit.inference.exact; "
        "print(sorted(m for m in ('torch', 'transformers', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
