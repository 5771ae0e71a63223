"""albert_audit.inference.margin_verdicts: classification rules, FDR families, change classes, false-material rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from albert_audit import stats
from albert_audit.errors import AuditError
from albert_audit.inference.crossed import crossed_gap
from albert_audit.inference.margin_verdicts import change, classify, fdr_by_family
from tests.simulate import crossed_items


def test_classification_rules_and_precedence() -> None:
    # rows: material; negligible; negligible although also != 0; below margin; inconclusive; NaN
    p = np.array([0.001, 0.5, 0.001, 0.001, 0.5, np.nan])
    pm = np.array([0.001, 1.0, 1.0, 0.5, 0.5, np.nan])
    pe = np.array([1.0, 0.01, 0.01, 0.5, 0.5, np.nan])
    verdict, q, qm = classify(p_value=p, p_material=pm, p_equivalence=pe)
    assert verdict.tolist() == ["material", "negligible", "negligible", "below_margin", "inconclusive",
                                "inconclusive"]
    np.testing.assert_allclose(q, stats.benjamini_hochberg(p), equal_nan=True)
    np.testing.assert_allclose(qm, stats.benjamini_hochberg(pm), equal_nan=True)


def test_alpha_is_the_fdr_and_the_tost_level() -> None:
    p, pm, pe = np.array([0.03]), np.array([0.03]), np.array([1.0])
    assert classify(p_value=p, p_material=pm, p_equivalence=pe)[0][0] == "material"
    assert classify(p_value=p, p_material=pm, p_equivalence=pe, alpha=0.025)[0][0] == "inconclusive"
    eq = classify(p_value=np.array([0.5]), p_material=np.array([1.0]), p_equivalence=np.array([0.03]), alpha=0.025)
    assert eq[0][0] == "inconclusive"
    eq = classify(p_value=np.array([0.5]), p_material=np.array([1.0]), p_equivalence=np.array([0.04]))
    assert eq[0][0] == "negligible"


def test_q_values_stay_within_their_family() -> None:
    g = np.random.default_rng(0)
    p_set = g.uniform(0, 0.05, 10)
    q_alone = fdr_by_family(p_set)
    q_joint = fdr_by_family(np.r_[p_set, g.uniform(0.5, 1, 200)], ["age"] * 10 + ["gender"] * 200)
    np.testing.assert_allclose(q_joint[:10], q_alone)
    assert not np.allclose(stats.benjamini_hochberg(np.r_[p_set, g.uniform(0.5, 1, 200)])[:10], q_alone)
    with pytest.raises(AuditError, match="labels"):
        fdr_by_family([0.1, 0.2], ["a"])


def test_change_classes() -> None:
    cases = [  # base effect, base verdict, candidate effect, candidate verdict, delta verdict -> change
        (0.4, "material", 0.9, "material", "material", "amplified"),
        (-0.4, "material", -0.9, "material", "material", "amplified"),
        (0.9, "material", 0.4, "material", "material", "reduced"),
        (0.5, "material", -0.05, "inconclusive", "material", "reduced"),
        (0.5, "material", -0.6, "inconclusive", "material", "reduced"),  # crossed zero, candidate not material
        (0.5, "material", -0.6, "material", "material", "reversed"),
        (0.01, "negligible", 0.5, "material", "material", "emerged"),
        (-0.02, "inconclusive", 0.2, "below_margin", "material", "amplified"),
        (0.4, "material", 0.45, "material", "negligible", "negligible"),
        (0.4, "material", 0.9, "material", "below_margin", "inconclusive"),
        (0.4, "material", 0.9, "material", "inconclusive", "inconclusive"),
    ]
    be, bv, ce, cv, dv, expected = (list(x) for x in zip(*cases, strict=True))
    got = change(base_effect=be, base_verdict=bv, candidate_effect=ce, candidate_verdict=cv, delta_verdict=dv)
    assert got.tolist() == expected


def test_change_rejects_unknown_verdicts_and_lengths() -> None:
    with pytest.raises(AuditError, match="unknown verdict"):
        change(base_effect=[0.1], base_verdict=["big"], candidate_effect=[0.1], candidate_verdict=["material"],
               delta_verdict=["material"])
    with pytest.raises(AuditError, match="same length"):
        change(base_effect=[0.1, 0.2], base_verdict=["material"], candidate_effect=[0.1],
               candidate_verdict=["material"], delta_verdict=["material"])


def test_effects_at_the_margin_are_rarely_material() -> None:
    """Every target's true gap is exactly the margin: 'material' is then always a false claim."""
    n, margin = 2000, math.log(1.25)
    a, b = crossed_items(np.random.default_rng(1), n_rows=n, n_templates=14, n_terms_a=8, n_terms_b=8,
                         gap=margin, term_sd=0.1, template_group_sd=0.05, noise_sd=0.2, skew=True)
    res = crossed_gap(a, b, rng=np.random.default_rng(2))
    families = np.repeat(np.arange(n // 40), 40)
    verdict, _, _ = classify(p_value=res.p_value, p_material=res.p_material, p_equivalence=res.p_equivalence,
                             families=families)
    assert np.mean(verdict == "material") <= 0.05
    assert np.mean(verdict == "below_margin") > 0.5  # and the gap itself is found
    far = crossed_gap(a + 0.5, b, rng=np.random.default_rng(2))
    verdict, _, _ = classify(p_value=far.p_value, p_material=far.p_material, p_equivalence=far.p_equivalence,
                             families=families)
    assert np.mean(verdict == "material") > 0.8
