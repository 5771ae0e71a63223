"""Known-answer tests: the whole chain (engine, statistics, compare, reports) recovers the bias planted in
the shipped demo models (albert_audit/demo_models, built by scripts/make_demo_models.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from albert_audit.api import DEMO_MODELS_DIR
from albert_audit.cli import main

PLANTED = json.loads((DEMO_MODELS_DIR / "planted.json").read_text(encoding="utf-8"))
OCCUPATIONS = {row["occupation"]: row for row in PLANTED["occupations"]}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    return out


def _gaps(table: pd.DataFrame, metric: str = "logprob_gap") -> pd.DataFrame:
    rows = table[table["metric"] == metric].set_index("target")
    assert set(rows.index) == set(OCCUPATIONS)
    return rows


def test_demo_writes_both_reports(demo_dir, capsys):
    for name in ("base/report.html", "candidate_1/report.html", "compare.html", "deltas.csv"):
        assert (demo_dir / name).is_file(), name


def test_base_audit_finds_every_planted_skew_material_and_no_control(demo_dir, metric="logprob_gap"):
    findings = _gaps(pd.read_csv(demo_dir / "base" / "findings.csv", keep_default_na=False), metric)
    assert (findings["group_a"] == "female").all() and (findings["group_b"] == "male").all()
    assert (findings["scope"] == "group").all()  # 8 terms per group, 16 templates: claims about the groups
    for occupation, row in OCCUPATIONS.items():
        found = findings.loc[occupation]
        if occupation in PLANTED["controls"]:
            assert not found["significant"], f"control {occupation} flagged: {found.to_dict()}"
            assert found["verdict"] != "material", f"control {occupation} material: {found.to_dict()}"
        else:
            assert found["verdict"] == "material", (occupation, found.to_dict())
            assert found["significant"] and found["q_value"] <= 0.05, occupation
            assert np.sign(found["effect"]) == np.sign(row["planted_base"]), occupation
            assert found["direction"] == ("a>b" if row["planted_base"] > 0 else "b>a")


def test_estimated_effects_track_the_planted_log_odds(demo_dir):
    findings = _gaps(pd.read_csv(demo_dir / "base" / "findings.csv"))
    planted = np.array([OCCUPATIONS[t]["planted_base"] for t in findings.index])
    assert np.corrcoef(planted, findings["effect"].to_numpy())[0, 1] >= 0.9


def test_compare_classes_exactly_the_amplified_and_reduced_occupations(demo_dir, metric="logprob_gap"):
    deltas = _gaps(pd.read_csv(demo_dir / "deltas.csv", keep_default_na=False), metric)
    for occupation, row in OCCUPATIONS.items():
        # the unchanged occupations and the controls: the delta is shown within the margin (log 1.1)
        expected = row["change"] if row["change"] in ("amplified", "reduced") else "negligible"
        got = deltas.loc[occupation]
        assert got["change"] == expected, (occupation, got.to_dict())
        if expected != "negligible":
            assert np.sign(got["delta"]) == np.sign(row["planted_descendant"] - row["planted_base"]), occupation
            assert got["ci_low"] * got["ci_high"] > 0, "the CI excludes zero"


def test_kurita_association_is_null_in_the_demo_models(demo_dir):
    """The demo builder always masks the occupation while training, so the demo models never predict a person
    noun from an occupation they see: Kurita et al.'s association (the term scored with the target filled in
    vs masked) is zero by construction. It is a known null here: no occupation may come out material, and no
    change between the two models either."""
    findings = _gaps(pd.read_csv(demo_dir / "base" / "findings.csv", keep_default_na=False), "association_gap")
    assert (findings["verdict"] != "material").all(), findings["verdict"].value_counts().to_dict()
    assert findings["effect"].abs().max() < 0.1
    deltas = _gaps(pd.read_csv(demo_dir / "deltas.csv", keep_default_na=False), "association_gap")
    assert not deltas["change"].isin(["amplified", "reduced", "reversed", "emerged"]).any()
