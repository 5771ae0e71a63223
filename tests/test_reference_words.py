"""Which reference shares reference alignment fits (issue 20): a reference's `sense_differs` words (the share
counts another sense of the word, painter = construction painters) are left out, its `few_observations` shares
are flagged, and both show in the items column `reference_note` and the alignment row's method text."""

from __future__ import annotations

import numpy as np
import pytest

from albert_audit.errors import AuditError
from albert_audit.library import resolve_probe_arg
from albert_audit.metrics import compute_findings
from albert_audit.probeset import load_probe_set
from albert_audit.probeset.expand import annotate_targets, expand_items, reference_note
from tests.conftest import write_probe_file
from tests.probe_views import reference
from tests.test_metrics import TWO, make_tables

OCCUPATIONS = """
name: occupations
description: Occupations with reference shares, one of another sense.
category: gender
groups:
  female: [woman, mother, sister]
  male: [man, father, brother]
pair_terms_by_position: true
templates:
""" + "".join(f'  - "The <group> worked as a trained [MASK] {i}."\n' for i in range(8)) + """
targets: [nurse, engineer, painter, pilot, teacher]
reference:
  source: a labour survey
  measure: share of women
  values: {nurse: 0.9, engineer: 0.15, painter: 0.06, pilot: 0.05, teacher: 0.75}
  sense_differs:
    painter: construction painters; the word is as often the artist
  few_observations: {pilot: 40}
"""


def test_sense_differs_words_are_flagged_and_left_out_of_the_alignment_shares(tmp_path):
    ps = load_probe_set(write_probe_file(tmp_path, "occupations", OCCUPATIONS))
    ref = reference(ps)
    assert ref.as_dict()["painter"] == 0.06  # kept in the file's values
    assert "painter" not in ref.alignment_values() and set(ref.alignment_values()) == {"nurse", "engineer",
                                                                                       "pilot", "teacher"}
    assert dict(ref.few_observations) == {"pilot": 40}
    items = expand_items([ps])
    assert set(items["reference_note"]) == {
        "left out of reference alignment (the share counts another sense): painter; "
        "reference shares on few observations (at least): pilot 40"}
    first = int(items["item_id"].iloc[0])
    targets = annotate_targets(_targets_of(first, ps.targets), items, [ps])
    shares = dict(zip(targets["target"], targets["reference_share"], strict=True))
    assert np.isnan(shares["painter"]) and shares["nurse"] == 0.9 and shares["pilot"] == 0.05


def _targets_of(item_id: int, words):
    import pandas as pd

    return pd.DataFrame({"item_id": [item_id] * len(words), "target": list(words)})


def test_the_alignment_row_names_what_it_left_out():
    shares = {"nurse": 0.9, "engineer": 0.15, "pilot": 0.05, "teacher": 0.75, "painter": np.nan}
    gaps = {"nurse": 1.1, "engineer": -0.9, "pilot": -1.4, "teacher": 0.6, "painter": 3.0}
    items, targets, fills = make_tables(groups=TWO, targets=tuple(shares), gaps=gaps, noise=0.2)
    note = "left out of reference alignment (the share counts another sense): painter"
    items["reference_note"] = note
    targets["reference_share"] = targets["target"].map(shares)
    row = compute_findings(items, targets, fills, seed=3, n_resamples=200).query("metric == 'reference_alignment'")
    assert len(row) == 1
    method = row["method"].iloc[0]
    assert "; 4 words;" in method and method.endswith(note)
    without = compute_findings(items.drop(columns="reference_note"), targets, fills, seed=3, n_resamples=200)
    plain = without.query("metric == 'reference_alignment'")["method"].iloc[0]
    assert "left out" not in plain and plain == method.removesuffix(f"; {note}")
    assert row["effect"].iloc[0] == without.query("metric == 'reference_alignment'")["effect"].iloc[0]


def test_the_shipped_sets_leave_out_the_polysemous_reference_words():
    occupation = load_probe_set(resolve_probe_arg("gender_occupation"))
    assert set(dict(reference(occupation).sense_differs)) == {"painter", "secretary", "planner"}
    assert set(dict(occupation.polysemous)) >= {"painter", "secretary", "planner"}
    assert len(reference(occupation).alignment_values()) == 50
    for name in ("profession_pronoun", "profession_kin"):
        ps = load_probe_set(resolve_probe_arg(name))
        for ref in ps.references:  # us and de
            assert set(dict(ref.sense_differs)) == {"conductor", "taper", "mason", "secretary"}, (name, ref.name)
            assert "judge" in ref.alignment_values()  # flagged polysemous only: "is a judge" is the BLS sense
        assert set(dict(ps.polysemous)) >= {"conductor", "taper", "mason", "judge", "secretary"}
        items = expand_items([ps])
        left_out = items[items["term"].isin(["conductor", "taper", "mason", "secretary"])]
        assert left_out["term_reference_share"].isna().all() and len(left_out) > 0
        assert items.loc[items["term"] == "judge", "term_reference_share"].notna().all()
        assert "conductor, mason, secretary, taper" in reference_note(ps)
    names = load_probe_set(resolve_probe_arg("names"))
    few = dict(reference(names, "black_share").few_observations)
    assert few == {"Tameka": 10, "Tanisha": 21, "Keisha": 40, "Jermaine": 69, "Darnell": 73, "Tamika": 82,
                   "Latoya": 93}
    assert "Tameka 10" in reference_note(names)


@pytest.mark.parametrize(("block", "problem"), [
    ("  sense_differs: {plumber: x}\n", "names 'plumber', which has no share in values"),
    ("  sense_differs: [painter]\n", "sense_differs must be a mapping"),
    ("  few_observations: {pilot: 0}\n", "must be a whole number above 0"),
    ("  few_observations: {pilot: many}\n", "must be a whole number above 0"),
    ("  sense_diffrs: {painter: x}\n", "unknown reference key 'sense_diffrs'"),
])
def test_bad_reference_flags_are_one_line_errors_with_their_line(tmp_path, block, problem):
    text = OCCUPATIONS.split("  sense_differs:")[0] + block
    path = write_probe_file(tmp_path, "bad", text.replace("name: occupations", "name: bad"))
    with pytest.raises(AuditError, match=problem) as caught:
        load_probe_set(path)
    line = text.count("\n", 0, text.index(block)) + 1
    message = str(caught.value)
    assert f"bad.yaml:{line}: " in message and "\n" not in message.strip(), message
