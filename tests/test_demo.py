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


METRICS = PLANTED["metrics_with_planted_effects"]  # logprob_gap and (Kurita) association_gap


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(("folder", "planted_key"), [("base", "planted_base"), ("candidate_1", "planted_descendant")])
def test_every_planted_skew_is_material_and_every_control_negligible(demo_dir, metric, folder, planted_key):
    """No calibration: the controls' gaps are what training gave, and equivalence (TOST within log 1.25) must
    be shown for each; every planted skew must come out material in its planted direction. A control may still
    differ from zero "significantly" (a few hundredths of a nat that the model really has, e.g. lawyer's
    logprob_gap of -0.026 in the base): the verdict, not raw significance, is the claim."""
    findings = _gaps(pd.read_csv(demo_dir / folder / "findings.csv", keep_default_na=False), metric)
    assert (findings["group_a"] == "female").all() and (findings["group_b"] == "male").all()
    assert (findings["scope"] == "group").all()  # 8 terms per group, 16 templates: claims about the groups
    for occupation, row in OCCUPATIONS.items():
        found = findings.loc[occupation]
        if occupation in PLANTED["controls"]:
            assert found["verdict"] == "negligible", f"control {occupation}: {found.to_dict()}"
            assert abs(found["effect"]) < float(found["margin"]) / 4, f"control {occupation}: {found.to_dict()}"
        else:
            assert found["verdict"] == "material", (occupation, found.to_dict())
            assert found["significant"] and found["q_value"] <= 0.05, occupation
            assert np.sign(found["effect"]) == np.sign(row[planted_key]), occupation
            assert found["direction"] == ("a>b" if row[planted_key] > 0 else "b>a")


@pytest.mark.parametrize("metric", METRICS)
def test_estimated_effects_track_the_planted_log_odds(demo_dir, metric):
    for folder, key in (("base", "planted_base"), ("candidate_1", "planted_descendant")):
        findings = _gaps(pd.read_csv(demo_dir / folder / "findings.csv"), metric)
        planted = np.array([OCCUPATIONS[t][key] for t in findings.index])
        assert np.corrcoef(planted, findings["effect"].to_numpy())[0, 1] >= 0.9, (folder, metric)


@pytest.mark.parametrize("metric", METRICS)
def test_the_builder_and_the_pipeline_agree(demo_dir, metric):
    """planted.json holds what the builder measured with its own code; the engine must find the same."""
    prefix = "" if metric == "logprob_gap" else "association_"
    for folder, stage in (("base", "base"), ("candidate_1", "descendant")):
        findings = _gaps(pd.read_csv(demo_dir / folder / "findings.csv", keep_default_na=False), metric)
        for occupation, row in OCCUPATIONS.items():
            assert findings.loc[occupation, "effect"] == pytest.approx(row[f"{prefix}measured_{stage}"], abs=1e-3)
            assert findings.loc[occupation, "verdict"] == row[f"{prefix}verdict_{stage}"], (folder, occupation)


@pytest.mark.parametrize("metric", METRICS)
def test_compare_classes_exactly_the_amplified_and_reduced_occupations(demo_dir, metric):
    deltas = _gaps(pd.read_csv(demo_dir / "deltas.csv", keep_default_na=False), metric)
    for occupation, row in OCCUPATIONS.items():
        # the unchanged occupations and the controls: the delta is shown within the margin (log 1.1)
        expected = row["change"] if row["change"] in ("amplified", "reduced") else "negligible"
        got = deltas.loc[occupation]
        assert got["change"] == expected, (occupation, got.to_dict())
        if expected != "negligible":
            assert np.sign(got["delta"]) == np.sign(row["planted_descendant"] - row["planted_base"]), occupation
            assert got["ci_low"] * got["ci_high"] > 0, "the CI excludes zero"


def test_the_association_is_trained_not_a_null():
    """The builder trains the term-at-mask direction (occupation shown, person noun masked), so Kurita's
    association carries the planted skews; built with --term-share 0 it would be a null by construction."""
    assert "association_gap" in METRICS
    assert PLANTED["training"]["base"]["term_share"] > 0
