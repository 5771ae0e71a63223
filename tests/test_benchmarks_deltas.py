"""Paired deltas of the share-of-pairs benchmarks between two models, against straightforward computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from albert_audit.benchmarks.deltas import COLUMNS, share_deltas
from albert_audit.errors import AuditError
from albert_audit.stats import benjamini_hochberg


def table(wins: list[bool], bias: list[str], *, margin: float = 1.0) -> pd.DataFrame:
    more = np.where(wins, margin, -margin)
    return pd.DataFrame({"pair_id": np.arange(len(wins)), "bias_type": bias, "stereo_antistereo": "stereo",
                         "sent_more": "a", "sent_less": "b", "sent_more_score": more,
                         "sent_less_score": np.zeros(len(wins)), "n_scored_tokens": 3,
                         "sent_more_aul": more, "sent_less_aul": 0.0})


RNG = np.random.default_rng(3)
BASE_WINS = list(RNG.random(40) < 0.5)
CAND_WINS = [w if RNG.random() < 0.6 else not w for w in BASE_WINS]
BIAS = ["gender"] * 25 + ["race"] * 15


def test_deltas_equal_a_straightforward_computation():
    got = share_deltas(table(BASE_WINS, BIAS), table(CAND_WINS, BIAS), benchmark="crows_pairs", metric="crows_pairs",
                       candidate_label="c1", seed=0, alpha=0.05, n_resamples=500)
    assert list(got.columns) == list(COLUMNS) and got["target"].tolist() == ["all", "gender", "race"]
    b, c = np.array(BASE_WINS), np.array(CAND_WINS)
    for row, keep in zip(got.itertuples(), [slice(None), slice(0, 25), slice(25, 40)], strict=True):
        bb, cc = b[keep], c[keep]
        assert row.delta == pytest.approx(100 * (cc.mean() - bb.mean()))
        assert row.base_effect == pytest.approx(100 * bb.mean())
        assert row.candidate_effect == pytest.approx(100 * cc.mean())
        only_c, only_b = int((cc & ~bb).sum()), int((bb & ~cc).sum())
        assert row.n_discordant == only_c + only_b
        assert row.p_value == pytest.approx(scipy.stats.binomtest(only_c, only_c + only_b, 0.5).pvalue)
        assert row.ci_low < row.delta < row.ci_high
    np.testing.assert_allclose(got["q_value"], benjamini_hochberg(got["p_value"].to_numpy()))


def test_alpha_sets_the_interval_level():
    args = dict(benchmark="aul", metric="aul", candidate_label="c1", seed=0, n_resamples=2000)
    wide = share_deltas(table(BASE_WINS, BIAS), table(CAND_WINS, BIAS), alpha=0.025, **args)
    narrow = share_deltas(table(BASE_WINS, BIAS), table(CAND_WINS, BIAS), alpha=0.2, **args)
    assert (wide["ci_high"] - wide["ci_low"] > narrow["ci_high"] - narrow["ci_low"]).all()
    assert "97.5%" in wide["method"].iloc[0]


def test_crows_rounding_rule_and_pair_matching():
    base = table([True, False, True], ["g"] * 3)
    cand = table([True, False, True], ["g"] * 3, margin=0.0001)  # rounds to a tie: not counted
    got = share_deltas(base, cand, benchmark="crows_pairs", metric="crows_pairs", candidate_label="c",
                       seed=0, alpha=0.05, n_resamples=100)
    assert got["candidate_effect"].iloc[0] == 0.0 and got["delta"].iloc[0] == pytest.approx(-200 / 3)
    raw = share_deltas(base, cand, benchmark="aul", metric="aul", candidate_label="c", seed=0, alpha=0.05,
                       n_resamples=100)  # AUL compares raw scores: no rounding
    assert raw["delta"].iloc[0] == 0.0 and np.isnan(raw["p_value"].iloc[0])
    with pytest.raises(AuditError, match="scored different pairs"):
        share_deltas(base, cand.iloc[:2], benchmark="aul", metric="aul", candidate_label="c", seed=0, alpha=0.05,
                     n_resamples=100)
