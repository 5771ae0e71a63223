"""Stereotype-eliciting templates reported apart: findings_stereotype_eliciting.csv (the same statistics over
those templates alone, their own FDR families), written by run and analyze, shown in its own report part."""

from __future__ import annotations

import numpy as np
import pandas as pd

from albert_audit import contract, stats, units
from albert_audit.api import AuditConfig, analyze_run, run_audit
from albert_audit.metrics import compute_findings
from albert_audit.metrics.core import row
from tests.conftest import write_probe_file
from tests.test_metrics import TWO, make_tables

PROBE = """
schema_version: 1
name: tagged
description: A set with both template tags.
category: gender
groups:
  female: [woman, mother, sister]
  male: [man, father, brother]
pair_terms_by_position: true
templates:
  neutral:
    - "The <group> is very [MASK]."
    - "The <group> was [MASK]."
    - "The <group> seemed [MASK] today."
    - "The <group> has always been [MASK]."
    - "I think the <group> is rather [MASK]."
    - "The <group> can be quite [MASK]."
    - "At work, the <group> is [MASK]."
    - "The neighbors find the <group> [MASK]."
  stereotype_eliciting:
    - "Everyone says the <group> is [MASK]."
    - "People think the <group> is too [MASK]."
    - "Most people say the <group> is [MASK]."
targets: [kind, angry, calm]
"""
PLAIN = PROBE.replace("  stereotype_eliciting:\n", "").replace("name: tagged", "name: plain")
PLAIN = "\n".join(line for line in PLAIN.splitlines() if "say" not in line and "think the" not in line)


def test_eliciting_rows_are_the_statistics_of_those_templates_alone():
    items, targets, fills = make_tables(groups=TWO, gaps={"nurse": 0.4})
    stereo = items["template_id"] >= 9
    tagged = items.assign(template_tag=np.where(stereo, "stereotype_eliciting", "neutral"))
    got = compute_findings(tagged, targets, fills, seed=2, n_resamples=300, alpha=0.025, tags=units.ELICITING_TAGS)
    ids = items.loc[stereo, "item_id"]
    want = compute_findings(items[stereo], targets[targets["item_id"].isin(ids)], fills[fills["item_id"].isin(ids)],
                            seed=2, n_resamples=300, alpha=0.025)
    pd.testing.assert_frame_equal(got, want)
    assert set(got.loc[got["metric"] == "logprob_gap", "n_units"]) == {3}
    neutral = compute_findings(tagged, targets, fills, seed=2, n_resamples=300, alpha=0.025)
    assert set(neutral.loc[neutral["metric"] == "logprob_gap", "n_units"]) == {9}


def test_run_writes_the_eliciting_table_and_the_report_shows_it_apart(tmp_path, tiny_model_dir):
    probe = write_probe_file(tmp_path, "tagged", PROBE)
    out = tmp_path / "run"
    run_audit(AuditConfig(model=str(tiny_model_dir), probes=[str(probe)], out=out, device="cpu", dtype="float32",
                          n_resamples=200, progress=False))
    main = pd.read_csv(out / contract.FINDINGS_FILE)
    eliciting = pd.read_csv(out / contract.ELICITING_FINDINGS_FILE)
    assert set(main.loc[main["metric"] == "logprob_gap", "n_units"]) == {8}
    assert set(eliciting.loc[eliciting["metric"] == "logprob_gap", "n_units"]) == {3}
    assert list(eliciting.columns) == list(contract.FINDINGS.names)
    # own FDR families: the q-values are BH within (probe set, metric) of this file alone
    fam = list(zip(eliciting["probe_set"], eliciting["metric"], strict=True))
    q = stats.benjamini_hochberg_by(eliciting["p_value"].to_numpy(dtype=float), fam)
    np.testing.assert_allclose(eliciting["q_value"].to_numpy(dtype=float), q, equal_nan=True)
    html = (out / contract.REPORT_FILE).read_text(encoding="utf-8")
    part = html[html.index("Stereotype-eliciting templates (reported apart)"):]
    assert "Everyone says the &lt;group&gt; is [MASK]." in part and "Most people say" in part
    assert f"{len(eliciting[eliciting['probe_set'] == 'tagged'])} rows of {contract.ELICITING_FINDINGS_FILE}" in part
    # analyze redoes it with other options (alpha 0.025: wider intervals); a rerun without eliciting templates
    # removes it
    before = eliciting.set_index(["metric", "target", "group_a", "group_b"])
    analyze_run(out, alpha=0.025)
    again = pd.read_csv(out / contract.ELICITING_FINDINGS_FILE).set_index(["metric", "target", "group_a", "group_b"])
    gaps = [k for k in before.index if k[0] == "logprob_gap"]
    width = (again.loc[gaps, "ci_high"] - again.loc[gaps, "ci_low"]) - (before.loc[gaps, "ci_high"]
                                                                        - before.loc[gaps, "ci_low"])
    assert (width > 0).all()
    plain = write_probe_file(tmp_path, "plain", PLAIN)
    run_audit(AuditConfig(model=str(tiny_model_dir), probes=[str(plain)], out=out, device="cpu", dtype="float32",
                          n_resamples=200, progress=False))
    assert not (out / contract.ELICITING_FINDINGS_FILE).exists()
    assert "Stereotype-eliciting templates" not in (out / contract.REPORT_FILE).read_text(encoding="utf-8")


def test_report_part_shows_the_strongest_rows_and_says_how_many_there_are():
    from albert_audit.metrics.findings import typed
    from albert_audit.report.eliciting_section import MAX_ROWS, eliciting_section

    items = pd.DataFrame({"probe_set": "s", "template_id": [0, 1], "template": ["A <group> [MASK].", "B"],
                          "template_tag": ["neutral", "stereotype_eliciting"]})
    rows = [row("s", "logprob_gap", target=f"t{i:02d}", group_a="a", group_b="b", effect=0.01 * i, p_value=0.5,
                q_value=0.5, method="m", verdict="inconclusive") for i in range(50)]
    rows[7].update(verdict="material", q_value=0.01, significant=True)
    rows[3].update(q_value=0.02, significant=True)
    part = eliciting_section("s", items, typed(pd.DataFrame(rows)), alpha=0.05, method_index={"m": 1})
    assert part["templates"] == ["B"] and len(part["rows"]) == MAX_ROWS == 40
    assert part["caption"].startswith("the 40 strongest of 50 rows of findings_stereotype_eliciting.csv")
    assert [r["cells"][1]["text"] for r in part["rows"][:3]] == ["t07", "t03", "t49"]
    assert part["n_tests"] == 50 and part["n_significant"] == 2
