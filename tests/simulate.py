"""Synthetic item values with a known truth, for the simulation tests and scripts/simulate_verdicts.py
(test support, not part of the installed package).

``y[r, t, k] = template_r,t + gap * (k in a) + u_r,k + w_r,t,g + e_r,t,k``: a template level shared by the
groups, the true gap, term effects that persist across templates, template x group interactions and
residuals. ``skew=True`` draws term effects and residuals from centred lognormals (right-skewed, same sd).
"""

from __future__ import annotations

import numpy as np


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sd: float, skew: bool) -> np.ndarray:
    if sd == 0.0:
        return np.zeros(shape)
    if not skew:
        return rng.normal(0.0, sd, shape)
    s = 1.0  # lognormal shape: skewness ~ 6
    z = np.exp(s * rng.standard_normal(shape))
    mean, var = np.exp(s**2 / 2.0), (np.exp(s**2) - 1.0) * np.exp(s**2)
    return (z - mean) / np.sqrt(var) * sd


def crossed_items(
    rng: np.random.Generator,
    *,
    n_rows: int,
    n_templates: int = 12,
    n_terms_a: int = 6,
    n_terms_b: int = 6,
    gap: float | np.ndarray = 0.0,
    term_sd: float = 0.2,
    template_group_sd: float = 0.1,
    noise_sd: float = 0.3,
    template_sd: float = 1.0,
    skew: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Item values ``(a, b)`` of shapes (n_rows, n_templates, n_terms_a / n_terms_b); ``gap`` may be (n_rows,)."""
    shape_a = (n_rows, n_templates, n_terms_a)
    shape_b = (n_rows, n_templates, n_terms_b)
    level = rng.normal(0.0, template_sd, (n_rows, n_templates, 1))
    gap_rows = np.broadcast_to(np.asarray(gap, dtype=float), (n_rows,))[:, None, None]
    a = (
        level
        + gap_rows
        + _noise(rng, (n_rows, 1, n_terms_a), term_sd, skew)
        + _noise(rng, (n_rows, n_templates, 1), template_group_sd, False)
        + _noise(rng, shape_a, noise_sd, skew)
    )
    b = (
        level
        + _noise(rng, (n_rows, 1, n_terms_b), term_sd, skew)
        + _noise(rng, (n_rows, n_templates, 1), template_group_sd, False)
        + _noise(rng, shape_b, noise_sd, skew)
    )
    return a, b
