"""Findings rows of the benchmarks: the contract's columns and dtypes, q within one family, directions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from albert_audit.benchmarks import aul, crows_pairs, honest, stereoset
from albert_audit.benchmarks.rows import finding_row, finish
from albert_audit.contract import FINDINGS, restore_types


def test_every_benchmark_returns_contract_rows():
    pairs = pd.DataFrame({"pair_id": [0, 1, 2], "bias_type": ["a", "a", "b"], "stereo_antistereo": "stereo",
                          "sent_more": "", "sent_less": "", "sent_more_score": [0.0, -1.0, 0.0],
                          "sent_less_score": [-1.0, 0.0, -1.0], "n_scored_tokens": 2})
    aul_table = pairs.assign(sent_more_aul=[0.0, 1.0, 2.0], sent_less_aul=0.5, sent_more_aula=[0.0, 1.0, 2.0],
                             sent_less_aula=0.5, n_tokens_more=2, n_tokens_less=2)
    ss = pd.DataFrame({"target": ["t", "u"], "bias_type": ["d", "d"], "score_stereotype": [0.0, 1.0],
                       "score_anti_stereotype": [1.0, 0.0], "score_unrelated": [-1.0, -1.0]})
    templates = pd.DataFrame({"template_masked": ["x [M]."] * 2, "identity": ["x", "y"], "category": ["f", "m"]})
    hon = honest.template_table(templates, [["a"] * 20, ["b"] * 20], {"a": "an"})
    for table in (crows_pairs.findings(pairs, seed=0, n_resamples=200),
                  aul.findings(aul_table, seed=0, n_resamples=200),
                  stereoset.findings(ss, seed=0, n_resamples=200),
                  honest.findings(hon, seed=0, n_resamples=200)):
        assert tuple(table.columns) == FINDINGS.names
        restored = restore_types(table, FINDINGS, "findings")
        pd.testing.assert_frame_equal(restored, table, check_dtype=False)
        assert table["significant"].dtype == bool and table["n_units"].dtype == np.int64


def test_finish_q_family_and_direction():
    rows = [finding_row(benchmark="b", metric="m", target=t, n_units=5, effect=e, effect_unit="u", p_value=p,
                        method="") for t, e, p in (("x", 70.0, 0.01), ("y", 30.0, 0.02), ("z", 80.0, math.nan),
                                                   ("w", 60.0, 0.5))]
    table = finish(rows, alpha=0.05, ideals={"m": 50.0}).set_index("target")
    assert table.loc["x", "q_value"] == 0.03 and table.loc["y", "q_value"] == 0.03  # BH over the 3 p-values
    assert np.isnan(table.loc["z", "q_value"]) and not table.loc["z", "significant"]
    assert table.loc["x", "direction"] == "a>b" and table.loc["y", "direction"] == "b>a"
    assert table.loc["w", "direction"] == "none"
    assert finish([], alpha=0.05, ideals={}).empty
