"""scripts/build_names.py, the rule that picks the names set (issue 20): bearer bounds from four-decimal shares,
Black-associated beyond sampling error, counterparts of equal piece counts and close corpus frequency, and
the male pairs ordered to match the female pairs' piece counts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("build_names", REPO / "scripts" / "build_names.py")
build_names = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_names)


@pytest.mark.parametrize(("counts", "n"), [((31, 1, 0, 1, 0, 0), 33), ((7, 4, 0, 0, 0, 0), 11),
                                           ((1, 0, 0, 0, 0, 0), 1), ((2931, 412, 17, 3, 9, 28), 3400)])
def test_bearers_at_least_is_the_smallest_count_that_gives_the_shares(counts, n):
    shares = np.round(np.array(counts) / sum(counts), 4)
    got = build_names.bearers_at_least(shares)
    assert got <= sum(counts)
    assert got == n or (n == 3400 and got > 1000)  # large counts: a lower bound, far above the flag line
    assert build_names.bearers_at_least(np.round(np.array((30, 15, 1, 1, 0, 0)) / 47, 4)) == 47


def test_wilson_lower_bound():
    low = build_names.wilson_lower(np.array([0.6366, 0.725, 7 / 11]), np.array([487.0, 40.0, 11.0]))
    assert low[0] == pytest.approx(0.593, abs=0.002) and low[1] == pytest.approx(0.572, abs=0.002)
    assert low[2] < 0.5  # Odell's 7 of 11: not mostly Black beyond sampling error


def _table() -> pd.DataFrame:
    rows = [  # name, black, white, bearers, births, female_share, frequency
        ("Aaa", 0.90, 0.08, 500, 9000, 0.99, 100), ("Bbbbb", 0.80, 0.15, 400, 8000, 0.99, 50),
        ("Ccc", 0.01, 0.97, 900, 5000, 0.99, 110), ("Ddddd", 0.02, 0.95, 800, 4000, 0.99, 40),
        ("Eeeee", 0.02, 0.95, 800, 7900, 0.99, 70),  # as Bbbbb: closer in births, further in frequency
        ("Ffff", 0.03, 0.95, 50, 4000, 0.99, 100),  # white side resting on too few bearers
        ("Lllllll", 0.01, 0.97, 900, 5000, 0.99, 100),  # Aaa's frequency exactly, but 7 pieces against 3
        ("Mmm", 0.64, 0.36, 11, 20000, 0.99, 100),  # the most births, but 7 of 11: not Black beyond sampling error
        ("Ggg", 0.85, 0.10, 300, 7000, 0.01, 300), ("Hhhhh", 0.75, 0.20, 300, 6000, 0.01, 80),
        ("Iiiii", 0.02, 0.96, 600, 3000, 0.01, 2000),  # equal pieces to Hhhhh, 25x the frequency
        ("Jjj", 0.01, 0.98, 700, 3000, 0.01, 280), ("Kkkkk", 0.02, 0.96, 600, 2000, 0.01, 90),
    ]
    table = pd.DataFrame(rows, columns=["name", "black", "white", "bearers_at_least", "births", "female_share",
                                        "frequency"])
    table["pieces_letters"] = table["name"].str.len()
    return table


def test_pick_matches_pieces_then_frequency_and_skips_what_it_cannot_match():
    chosen, skipped = build_names.pick(_table(), per_group=2, black_min=0.6, min_bearers=100, by_frequency=True)
    pairs = {(r.sex, r.position): {} for r in chosen.itertuples()}
    for r in chosen.itertuples():
        pairs[(r.sex, r.position)][r.race] = r.name
    assert pairs == {("female", 0): {"black": "Aaa", "white": "Ccc"},
                     ("female", 1): {"black": "Bbbbb", "white": "Ddddd"},
                     ("male", 0): {"black": "Ggg", "white": "Jjj"},
                     ("male", 1): {"black": "Hhhhh", "white": "Kkkkk"}}
    assert skipped == []
    tight, skipped = build_names.pick(_table(), per_group=2, black_min=0.6, min_bearers=100, by_frequency=True,
                                      max_ratio=1.05)
    assert any("Bbbbb" in s for s in skipped) and "Bbbbb" not in set(tight["name"])


def test_align_sexes_orders_the_male_pairs_by_the_female_pairs_piece_counts():
    chosen, _ = build_names.pick(_table(), per_group=2, black_min=0.6, min_bearers=100, by_frequency=True)
    flipped = chosen.copy()
    male = flipped["sex"] == "male"
    flipped.loc[male, "position"] = 1 - flipped.loc[male, "position"]  # Hhhhh first: 5 letters against Aaa's 3
    aligned = build_names.align_sexes(flipped)
    first = aligned[(aligned["position"] == 0) & (aligned["race"] == "black")].set_index("sex")["name"]
    assert first.to_dict() == {"female": "Aaa", "male": "Ggg"}
