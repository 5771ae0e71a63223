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


# ------------------------------------------------------------------------ StereoSet, SEAT, HONEST deltas

def _stereo_table(rng: np.random.Generator, targets: list[str], domains: list[str]) -> pd.DataFrame:
    n = len(targets)
    return pd.DataFrame({"example_id": [f"e{i}" for i in range(n)], "bias_type": domains, "target": targets,
                         "context": "x BLANK", "stereotype": [f"s{i}" for i in range(n)],
                         "anti_stereotype": [f"a{i}" for i in range(n)], "unrelated": [f"u{i}" for i in range(n)],
                         "score_stereotype": rng.normal(size=n), "score_anti_stereotype": rng.normal(size=n),
                         "score_unrelated": rng.normal(size=n) - 0.5})


STEREO_TARGETS = ["t1", "t1", "t1", "t2", "t2", "t3", "t3", "t4"]
STEREO_DOMAINS = ["gender"] * 5 + ["race"] * 3


def _plain_scores(scores: np.ndarray, targets: list[str], domains: list[str]) -> dict[str, dict[str, float]]:
    """The reference's SS / LMS / ICAT from (examples x 3) scores, written out plainly (per domain and all)."""
    out = {}
    for name in ["all", *sorted(set(domains))]:
        per_term: dict[str, list[float]] = {}
        for (s, a, u), t, d in zip(scores, targets, domains, strict=True):
            if name in ("all", d):
                c = per_term.setdefault(t, [0.0, 0.0, 0.0])
                c[0] += 1
                c[1] += int(s > a)
                c[2] += int(s > u) + int(a > u)
        ss = float(np.mean([100 * pro / n for n, pro, _ in per_term.values()]))
        lms = float(np.mean([100 * rel / (2 * n) for n, _, rel in per_term.values()]))
        out[name] = {"SS": ss, "LMS": lms, "ICAT": lms * min(ss, 100 - ss) / 50}
    return out


def test_stereoset_deltas_equal_the_reference_scores_and_a_brute_force_swap_test():
    import itertools

    from albert_audit.benchmarks import stereoset
    from albert_audit.benchmarks.stereoset_deltas import stereoset_deltas

    rng = np.random.default_rng(5)
    base = _stereo_table(rng, STEREO_TARGETS, STEREO_DOMAINS)
    cand = _stereo_table(rng, STEREO_TARGETS, STEREO_DOMAINS).sample(frac=1, random_state=1)  # row order differs
    got = stereoset_deltas(base, cand, candidate_label="c1", seed=0, alpha=0.05, n_resamples=400)
    assert list(got.columns) == list(COLUMNS)
    ref_b, ref_c = stereoset.scores(base), stereoset.scores(cand)
    names = {"stereoset_ss": "SS", "stereoset_lms": "LMS", "stereoset_icat": "ICAT"}
    cand_sorted = cand.set_index("example_id").loc[base["example_id"]].reset_index()
    cols = ["score_stereotype", "score_anti_stereotype", "score_unrelated"]
    sb_all, sc_all = base[cols].to_numpy(), cand_sorted[cols].to_numpy()
    patterns = list(itertools.product([False, True], repeat=len(base)))  # every swap of all 8 examples
    swapped = [(_plain_scores(np.where(np.array(p)[:, None], sc_all, sb_all), STEREO_TARGETS, STEREO_DOMAINS),
                _plain_scores(np.where(np.array(p)[:, None], sb_all, sc_all), STEREO_TARGETS, STEREO_DOMAINS))
               for p in patterns]
    for row in got.itertuples():
        key = names[row.metric]
        assert row.base_effect == pytest.approx(ref_b[row.target][key])
        assert row.candidate_effect == pytest.approx(ref_c[row.target][key])
        assert row.delta == pytest.approx(ref_c[row.target][key] - ref_b[row.target][key])
        hits = sum(abs(sc[row.target][key] - sb[row.target][key]) >= abs(row.delta) - 1e-9 for sb, sc in swapped)
        assert row.p_value == pytest.approx(hits / len(patterns))  # equal outcomes swapped: same share
    for _, family in got.groupby("candidate"):
        p = family["p_value"].to_numpy()
        np.testing.assert_allclose(family["q_value"].to_numpy()[np.isfinite(p)],
                                   benjamini_hochberg(p[np.isfinite(p)]))


def test_stereoset_self_comparison_is_zero_and_mismatch_is_refused():
    from albert_audit.benchmarks.stereoset_deltas import stereoset_deltas

    base = _stereo_table(np.random.default_rng(1), STEREO_TARGETS, STEREO_DOMAINS)
    got = stereoset_deltas(base, base, candidate_label="c", seed=0, alpha=0.05, n_resamples=100)
    assert (got["delta"] == 0).all() and got["p_value"].isna().all() and (got["n_discordant"] == 0).all()
    assert set(got["change"]) == {"inconclusive", ""}  # LMS and ICAT get no change class
    assert set(got.loc[got["metric"] != "stereoset_ss", "change"]) == {""}
    with pytest.raises(AuditError, match="different examples"):
        stereoset_deltas(base, base.iloc[1:], candidate_label="c", seed=0, alpha=0.05, n_resamples=100)


def test_stereoset_interval_level_follows_alpha():
    from albert_audit.benchmarks.stereoset_deltas import stereoset_deltas

    rng = np.random.default_rng(7)
    targets = [f"t{i // 3}" for i in range(30)]
    base, cand = _stereo_table(rng, targets, ["d"] * 30), _stereo_table(rng, targets, ["d"] * 30)
    wide = stereoset_deltas(base, cand, candidate_label="c", seed=0, alpha=0.025, n_resamples=2000)
    narrow = stereoset_deltas(base, cand, candidate_label="c", seed=0, alpha=0.2, n_resamples=2000)
    rows = wide["target"] == "all"
    assert ((wide["ci_high"] - wide["ci_low"])[rows] > (narrow["ci_high"] - narrow["ci_low"])[rows]).all()
    assert "97.5% paired BCa bootstrap 2000 over 10 target terms" in wide["method"].iloc[0]


def _seat_table(assoc: dict[str, tuple[list[float], list[float]]]) -> pd.DataFrame:
    rows = []
    for test, (x, y) in assoc.items():
        rows += [{"test": test, "set": "targ1", "category": "X", "text": f"x{i}", "association": v}
                 for i, v in enumerate(x)]
        rows += [{"test": test, "set": "targ2", "category": "Y", "text": f"y{i}", "association": v}
                 for i, v in enumerate(y)]
    return pd.DataFrame(rows)


def test_seat_deltas_equal_weat_d_and_a_brute_force_swap_test():
    import itertools

    from albert_audit.benchmarks import seat
    from albert_audit.benchmarks.seat_deltas import seat_deltas

    rng = np.random.default_rng(11)
    base_values = {"t<b>": (list(rng.normal(0.3, 0.2, 3)), list(rng.normal(0, 0.2, 3))),
                   "t2": (list(rng.normal(0, 0.2, 4)), list(rng.normal(0, 0.2, 4)))}
    cand_values = {k: ([v + rng.normal(0, 0.1) for v in x], [v + rng.normal(0, 0.1) for v in y])
                   for k, (x, y) in base_values.items()}
    base, cand = _seat_table(base_values), _seat_table(cand_values)
    got = seat_deltas(base, cand.iloc[::-1], candidate_label="c", seed=0, alpha=0.05, n_resamples=500)
    assert got["target"].tolist() == ["t<b>", "t2", "all"]
    for row in got.iloc[:2].itertuples():
        (xb, yb), (xc, yc) = base_values[row.target], cand_values[row.target]
        d_b = seat.effect_size(np.array(xb), np.array(yb))
        d_c = seat.effect_size(np.array(xc), np.array(yc))
        assert row.base_effect == pytest.approx(d_b) and row.delta == pytest.approx(d_c - d_b)
        kb, kc = np.array(xb + yb), np.array(xc + yc)
        hits = 0
        patterns = list(itertools.product([False, True], repeat=len(kb)))
        for pattern in patterns:
            swap = np.array(pattern)
            nb, nc = np.where(swap, kc, kb), np.where(swap, kb, kc)
            n = len(xb)
            delta = seat.effect_size(nc[:n], nc[n:]) - seat.effect_size(nb[:n], nb[n:])
            hits += abs(delta) >= abs(row.delta) - 1e-9
        assert row.p_value == pytest.approx(hits / len(patterns))
        assert row.ci_low <= row.delta <= row.ci_high
    last = got.iloc[2]
    assert last["base_effect"] == pytest.approx(np.mean(np.abs(got["base_effect"].iloc[:2])))
    assert last["delta"] == pytest.approx(last["candidate_effect"] - last["base_effect"])
    assert 0 < last["p_value"] <= 1 and "Monte Carlo 500" in last["method"]
    with pytest.raises(AuditError, match="different sentences"):
        seat_deltas(base, cand.assign(text="other"), candidate_label="c", seed=0, alpha=0.05, n_resamples=50)


def _honest_table(hurt: dict[int, list[int]], categories: list[str]) -> pd.DataFrame:
    table = pd.DataFrame({"template_masked": [f"the [M] {i}" for i in range(len(categories))],
                          "identity": "x", "category": categories})
    for k, values in hurt.items():
        table[f"hurtful_k{k}"] = values
    return table


def test_honest_deltas_by_hand():
    from albert_audit.benchmarks.deltas import honest_deltas

    cats = ["female", "female", "male", "male"]
    base = _honest_table({1: [0, 1, 0, 0], 5: [1, 2, 0, 1]}, cats)
    cand = _honest_table({1: [1, 1, 1, 0], 5: [1, 4, 0, 1]}, cats)
    got = honest_deltas(base, cand, candidate_label="c", seed=0, alpha=0.05, n_resamples=200, ks=(1, 5))
    assert got["metric"].tolist() == ["honest_k1"] * 3 + ["honest_k5"] * 3
    assert got["target"].tolist() == ["all", "female", "male"] * 2
    k1_all = got.iloc[0]
    assert k1_all["base_effect"] == 25.0 and k1_all["candidate_effect"] == 75.0 and k1_all["delta"] == 50.0
    assert k1_all["n_discordant"] == 2 and k1_all["p_value"] == pytest.approx(0.5)  # 2 of 4 swap patterns
    k5_all = got.iloc[3]
    assert k5_all["delta"] == pytest.approx(100 * 2 / 5 / 4) and k5_all["p_value"] == 1.0  # one unit: both signs
    with pytest.raises(AuditError, match="different templates"):
        honest_deltas(base, cand.assign(category="other"), candidate_label="c", seed=0, alpha=0.05,
                      n_resamples=10, ks=(1,))


@pytest.mark.parametrize(("metric", "base", "cand", "q", "dirs", "expected"), [
    ("crows_pairs", 55.0, 60.0, 0.01, ("a>b", "a>b"), "amplified"),
    ("crows_pairs", 60.0, 55.0, 0.01, ("a>b", "a>b"), "reduced"),
    ("crows_pairs", 60.0, 40.0, 0.01, ("a>b", "b>a"), "reversed"),
    ("crows_pairs", 60.0, 45.0, 0.01, ("a>b", "none"), "reduced"),
    ("crows_pairs", 51.0, 60.0, 0.01, ("none", "a>b"), "emerged"),
    ("crows_pairs", 51.0, 60.0, 0.2, ("none", "a>b"), "inconclusive"),
    ("seat", -0.2, -0.8, 0.01, ("none", "none"), "amplified"),
    ("honest_k5", 3.0, 1.0, 0.01, ("none", "none"), "reduced"),
    ("stereoset_lms", 80.0, 90.0, 0.001, ("none", "none"), ""),
    ("stereoset_icat", 80.0, 90.0, 0.001, ("none", "none"), ""),
])
def test_change_classes(metric, base, cand, q, dirs, expected):
    from albert_audit.benchmarks.deltas import classify_change

    assert classify_change(metric, base, cand, q, alpha=0.05, base_direction=dirs[0],
                           candidate_direction=dirs[1]) == expected


def test_change_uses_the_alpha_given():
    from albert_audit.benchmarks.deltas import classify_change

    assert classify_change("aul", 55.0, 60.0, 0.03, alpha=0.025) == "inconclusive"
    assert classify_change("aul", 55.0, 60.0, 0.03, alpha=0.05) == "amplified"


def test_q_values_are_per_benchmark_and_candidate():
    from albert_audit.benchmarks.deltas import delta_row, finish

    rows = [delta_row(benchmark=b, metric="aul", target=t, candidate=c, n_units=10, base_effect=50,
                      candidate_effect=60, delta=10, ci_low=1, ci_high=20, p_value=p, n_discordant=3, method="")
            for b, c, t, p in [("aul", "c1", "all", 0.01), ("aul", "c1", "g", 0.04), ("aul", "c2", "all", 0.04),
                               ("aula", "c1", "all", 0.02)]]
    got = finish(rows, alpha=0.05)
    np.testing.assert_allclose(got["q_value"], [0.02, 0.04, 0.04, 0.02])  # BH of (0.01, 0.04); 0.04; 0.02
    assert got["n_units"].dtype == "int64"


def test_api_dispatches_every_benchmark_and_skips_other_files(tmp_path):
    from albert_audit.api.benchmarks import ComparedRun, benchmark_deltas

    rng = np.random.default_rng(2)
    seat_b = _seat_table({"t1": ([0.3, 0.2, 0.4], [0.0, 0.1, -0.1])})
    seat_c = seat_b.assign(association=seat_b["association"] + rng.normal(0, 0.05, len(seat_b)))
    honest_b = _honest_table({k: [0, 1, 0, 0] for k in (1, 5, 10, 20)}, ["female", "female", "male", "male"])
    honest_c = _honest_table({k: [1, 1, 0, 0] for k in (1, 5, 10, 20)}, ["female", "female", "male", "male"])
    runs = []
    for label, seat_t, honest_t, seat_hash in (("base", seat_b, honest_b, "a"), ("cand", seat_c, honest_c, "a"),
                                               ("other", seat_c, honest_c, "b")):
        folder = tmp_path / label
        (folder / "benchmarks").mkdir(parents=True)
        seat_t.to_parquet(folder / "benchmarks" / "seat.parquet")
        honest_t.to_parquet(folder / "benchmarks" / "honest.parquet")
        records = [{"name": "honest", "files": {"h.tsv": "h"}}, {"name": "seat", "files": {"x/t1.jsonl": seat_hash}}]
        runs.append(ComparedRun(label, folder, {"benchmarks": records}, None))
    table, records = benchmark_deltas(runs, seed=0, alpha=0.05, n_resamples=200)
    assert [r.name for r in records] == ["seat", "honest"]  # NAMES order
    assert records[0].candidates == ["cand"] and "other: scored seat on other files" in records[0].skipped[0]
    assert records[1].candidates == ["cand", "other"]
    assert set(table["metric"]) == {"seat", "honest_k1", "honest_k5", "honest_k10", "honest_k20"}
    fam = table[(table["benchmark"] == "honest") & (table["candidate"] == "cand")]
    p = fam["p_value"].to_numpy()
    np.testing.assert_allclose(fam["q_value"].to_numpy()[np.isfinite(p)], benjamini_hochberg(p[np.isfinite(p)]))


def test_api_reads_each_runs_findings_direction_for_the_change(tmp_path):
    from albert_audit.api.benchmarks import ComparedRun, benchmark_deltas

    runs = []
    for label, wins, direction in (("base", [True] * 30, "a>b"), ("cand", [False] * 30, "b>a")):
        folder = tmp_path / label
        (folder / "benchmarks").mkdir(parents=True)
        table(wins, ["g"] * 30).to_parquet(folder / "benchmarks" / "aul.parquet")
        findings = pd.DataFrame({"probe_set": ["aul"], "metric": ["aul"], "target": ["all"],
                                 "direction": [direction]})
        runs.append(ComparedRun(label, folder, {"benchmarks": [{"name": "aul", "files": {"c.csv": "x"}}]},
                                findings))
    got, _ = benchmark_deltas(runs, seed=0, alpha=0.05, n_resamples=100)
    assert got.set_index("target").loc["all", "change"] == "reversed"  # both findings significant, opposite sides
    assert got.set_index("target").loc["g", "change"] == "inconclusive"  # no findings row: |100-50| = |0-50|
