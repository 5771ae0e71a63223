"""The metric registry: one contract test over every registered metric; the docs list; adding a metric."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from albert_audit import registry
from albert_audit.contract import FINDINGS
from albert_audit.metrics import METRICS, SIGNED_METRICS, compute_findings
from albert_audit.metrics.core import Config, ProbeSetScores, row
from tests.test_metrics import make_tables

REPO = Path(__file__).resolve().parent.parent
GROUPS = {"a": ["a1", "a2"], "b": ["b1", "b2"], "c": ["c1", "c2"]}
_DTYPES = {"str": object, "float64": np.float64, "int64": np.int64, "bool": bool}


@pytest.fixture(scope="module")
def findings() -> pd.DataFrame:
    """Three groups (so every metric has rows), planted target gaps, a group shift and a fill skew."""
    items, targets, fills = make_tables(groups=GROUPS, n_templates=10, gaps={"nurse": 1.2, "engineer": -1.0},
                                        shift=0.8, fill_boost=3.0)
    targets["reference_share"] = targets["target"].map({"nurse": 0.9, "engineer": 0.2, "clerk": 0.5})  # alignment
    # a second, crossed set (2 x 2 factors) with a planted interaction, for the interaction metric
    crossed = {f"{r}_{s}": [f"{r}{s}{i}" for i in range(2)] for r in ("x", "y") for s in ("f", "m")}
    items2, targets2, fills2 = make_tables(groups=crossed, n_templates=10, gaps={"nurse": 1.5}, probe_set="crossed",
                                           first_item_id=len(items), seed=1)
    items2["group_factors"] = items2["group"].map(lambda g: f"race={g[0]};gender={g[2]}")
    return compute_findings(pd.concat([items.assign(group_factors=""), items2], ignore_index=True),
                            pd.concat([targets, targets2], ignore_index=True), pd.concat([fills, fills2],
                                                                                          ignore_index=True),
                            seed=0, n_resamples=300)


@pytest.mark.parametrize("metric_id", registry.metric_ids())
def test_every_metric_keeps_the_contract(findings: pd.DataFrame, metric_id: str) -> None:
    spec = registry.metric(metric_id)
    rows = findings[findings["metric"] == metric_id]
    assert len(rows) > 0, f"{metric_id} made no rows"
    assert tuple(rows.columns) == FINDINGS.names
    for column in FINDINGS.columns:
        assert rows[column.name].dtype == _DTYPES[column.dtype], column.name
    assert (rows["effect_unit"] == spec.unit).all()
    assert (rows["method"] != "").all() and (rows["n_units"] > 0).all()
    if spec.unit:
        assert np.isfinite(rows["effect"]).all()
    else:
        assert rows["effect"].isna().all()
    if spec.signed:
        assert set(rows["direction"]) <= {"a>b", "b>a", "none"}
        assert (rows.loc[rows["significant"], "direction"] != "none").all()
        assert (rows["direction"] != "none").any()  # the planted gaps are found, with a direction
    else:
        assert (rows["direction"] == "none").all()
    assert spec.source in registry.SOURCES and spec.min_groups >= 2
    assert spec.value in ("", "logprob", "association") and (spec.value != "") == (spec.source == "targets")
    assert callable(registry.compute_function(metric_id))


def test_rows_follow_the_registry_order(findings: pd.DataFrame) -> None:
    order = list(findings["metric"].drop_duplicates())
    assert order == list(registry.metric_ids()) == list(METRICS)
    assert SIGNED_METRICS == registry.signed_ids() == ("logprob_gap", "association_gap", "group_shift",
                                                                  "gap_beyond_shift", "interaction")
    assert registry.compared_ids() == ("logprob_gap", "association_gap", "bias_score")
    assert registry.label("disco") == "DisCo-style count" and registry.label("disco", short=True) == "DisCo"
    assert registry.label("unknown") == "unknown"
    compute = registry.metric("reference_alignment").compute
    assert compute == "albert_audit.metrics.reference_alignment:reference_alignment"


def test_docs_list_every_metric() -> None:
    text = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert registry.docs_table() in text, "regenerate the metric list in docs/metrics.md from registry.docs_table()"
    for metric_id in registry.metric_ids():
        assert f"### `{metric_id}`" in text, f"docs/metrics.md has no section for {metric_id}"


def test_importing_the_registry_is_cheap() -> None:
    code = ("import sys, albert_audit.registry; "
            "print(sorted(m for m in ('numpy', 'pandas', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                          env={"PYTHONPATH": str(REPO)})
    assert done.stdout.strip() == "[]"


def constant_rows(data: ProbeSetScores, cfg: Config) -> list[dict[str, Any]]:
    """A toy metric for the test below: one row per probe set with the number of target rows."""
    return [row(data.name, "toy_count", n_units=len(data.targets), effect=float(len(data.targets)),
                effect_unit="count", method="rows counted")]


def test_adding_a_metric_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry.MetricSpec("toy_count", "toy count", "toy", "count", signed=False, compare_deltas=False,
                               summary="a test metric", compute="tests.test_registry:constant_rows")
    metrics = (*registry.METRICS[:1], spec, *registry.METRICS[1:])
    monkeypatch.setattr(registry, "METRICS", metrics)
    monkeypatch.setattr(registry, "_BY_ID", {s.id: s for s in metrics})
    tables = make_tables(groups={"x": ["x1"], "y": ["y1"]}, n_templates=3)
    found = compute_findings(*tables, seed=0, n_resamples=50)
    assert list(found["metric"].drop_duplicates())[:3] == ["logprob_gap", "toy_count", "association_gap"]
    toy = found[found["metric"] == "toy_count"].iloc[0]
    assert toy["effect"] == 18 and toy["direction"] == "none"
