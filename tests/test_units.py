"""albert_audit.units: the study's unit, against a plain pandas group-by, in both of its forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from albert_audit import units
from albert_audit.errors import AuditError
from tests.oracles import template_cells_pandas
from tests.test_metrics import TWO, make_tables

THREE = {"a": ["a1", "a2"], "b": ["b1"], "c": ["c1", "c2"]}


@pytest.fixture(scope="module")
def run() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two probe sets (2 and 3 groups), a slotless item, an infinite log-prob, a missing (item, target)."""
    i1, t1, _ = make_tables(groups=TWO, gaps={"nurse": 1.0})
    i2, t2, _ = make_tables(groups=THREE, probe_set="extra", n_templates=5, first_item_id=len(i1), seed=4)
    slotless = i1.iloc[:1].assign(item_id=999, group="", term="", term_index=-1)
    items = pd.concat([i1, i2, slotless], ignore_index=True)
    targets = pd.concat([t1, t2, t1.iloc[:1].assign(item_id=999)], ignore_index=True)
    targets.loc[3, "logprob"] = np.inf
    targets = targets[~((targets["item_id"] == 40) & (targets["target"] == "nurse"))]
    return items, targets.reset_index(drop=True)


def test_template_cells_match_a_pandas_group_by(run) -> None:
    items, targets = run
    got, want = units.template_cells(items, targets), template_cells_pandas(items, targets)
    for name in units.VALUES:
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=False, rtol=1e-14, atol=0)
    assert got["logprob"].index.names == ["probe_set", "target", "group"]
    assert got["logprob"].columns.name == "template_id"
    item = targets.loc[3, "item_id"]
    bad = items.loc[items["item_id"] == item].iloc[0]
    assert np.isnan(got["logprob"].loc[(bad["probe_set"], targets.loc[3, "target"], bad["group"]), bad["template_id"]])


def test_association_cells_subtract_the_prior(run) -> None:
    items, targets = run
    shifted = targets.assign(term_logprob=targets["logprob"] - 1.0,
                             term_prior_logprob=targets["term_prior_logprob"]
                             + np.where(targets["item_id"] % 2 == 0, 0.3, 0.0))
    cells = units.template_cells(items, shifted)
    prior = units.template_cells(items, shifted.assign(logprob=shifted["term_prior_logprob"]))["logprob"]
    term = units.template_cells(items, shifted.assign(logprob=shifted["term_logprob"]))["logprob"]
    expected = term - prior
    pd.testing.assert_frame_equal(cells["association"], expected, check_exact=False, rtol=0, atol=1e-12)


def test_cube_is_the_same_cells(run) -> None:
    items, targets = run
    joined = units.join_scores(items, targets)
    toy = joined[joined["probe_set"] == "toy"]
    cube = units.unit_cube(toy, ["female", "male"])
    wide = units.template_cells(items, targets)["association"].xs("toy")
    for t, target in enumerate(cube.targets):
        for g, group in enumerate(cube.groups):
            np.testing.assert_array_equal(cube.mean["association"][t, g], wide.loc[(target, group)].to_numpy())
    assert list(cube.units) == list(range(12)) and cube.count.sum() == len(toy)
    pairs = units.unit_cube(toy, ["female", "male"], "template_term_pair")
    assert pairs.units.names == ["template_id", "term_index"] and len(pairs.units) == 36
    # a pair unit holds one term per group: its mean is that term's value
    first = toy[(toy["template_id"] == 0) & (toy["term_index"] == 1) & (toy["target"] == "clerk")]
    female = first.loc[first["group"] == "female", "logprob"].iloc[0]
    assert pairs.mean["logprob"][pairs.targets.index("clerk"), 0, 1] == female


def test_empty_and_bad_inputs(run) -> None:
    items, targets = run
    empty = units.template_cells(items, targets.iloc[0:0])
    assert set(empty) == set(units.VALUES) and empty["logprob"].empty
    with pytest.raises(AuditError, match="missing column"):
        units.template_cells(items.drop(columns="group"), targets)
    with pytest.raises(AuditError, match="unit"):
        units.unit_cube(units.join_scores(items, targets), ["female", "male"], "term")
