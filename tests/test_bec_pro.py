"""BEC-Pro loader (albert_audit.probeset.bec_pro): the published TSV as a table and as probe sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from albert_audit.errors import AuditError
from albert_audit.probeset.bec_pro import bec_pro_probe_sets, read_bec_pro, read_professions
from albert_audit.probeset.expand import expand_items
from tests.probe_views import reference

REPO = Path(__file__).resolve().parent.parent
SHARED = Path("/work/shared/data/bec_pro/BEC-Pro_EN.tsv")
PROFESSIONS = REPO / "probes" / "reference" / "bec_pro_professions_us_de.tsv"
HEADER = "\tSentence\tSent_TM\tSent_AM\tSent_TAM\tTemplate\tPerson\tGender\tProfession\tProf_Gender\n"


def small(tmp_path: Path) -> Path:
    rows = []
    for i, (person, gender, prof, pg) in enumerate([("He", "male", "electrician", "male"),
                                                    ("She", "female", "nurse", "female"),
                                                    ("mother", "female", "electrician", "male"),
                                                    ("man", "male", "nurse", "female")]):
        lead = {"He": "He", "She": "She", "mother": "My mother", "man": "This man"}[person]
        masked = lead.replace(person, "[MASK]")
        rows.append(f"{i}\t{lead} is a {prof}.\t{masked} is a {prof}.\t{lead} is a [MASK].\t{masked} is a [MASK]."
                    f"\t<person subject> is a <profession>.\t{person}\t{gender}\t{prof}\t{pg}\n")
    path = tmp_path / "bec.tsv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


def test_read_bec_pro_flags_the_wrong_articles(tmp_path):
    table = read_bec_pro(small(tmp_path))
    assert list(table.columns[:9]) == ["sentence", "sent_tm", "sent_am", "sent_tam", "template", "person",
                                       "gender", "profession", "prof_gender"]
    assert table["article_agrees"].tolist() == [False, True, False, True]


def test_probe_sets_mask_the_person_and_fix_the_article(tmp_path):
    sets = {ps.name: ps for ps in bec_pro_probe_sets(small(tmp_path), PROFESSIONS)}
    assert set(sets) == {"bec_pro_pronoun", "bec_pro_this", "bec_pro_my"}
    assert sets["bec_pro_pronoun"].targets == ("He", "She") and sets["bec_pro_my"].targets == ("mother",)
    assert sets["bec_pro_pronoun"].target_category("She") == "female"
    assert [t.text for t in sets["bec_pro_this"].templates] == ["This [MASK] is a(n) <group>."]
    assert "put 'a' before a vowel-initial profession in 2 rows" in sets["bec_pro_my"].warnings[0]
    texts = expand_items([sets["bec_pro_pronoun"]])["text"].tolist()
    assert texts == ["[MASK] is a nurse.", "[MASK] is an electrician."]
    us = reference(sets["bec_pro_my"], "us")
    assert us.keyed_by == "term" and us.as_dict() == {"electrician": pytest.approx(0.022)}


def test_reference_needs_the_professions_file_to_match(tmp_path):
    sets = bec_pro_probe_sets(small(tmp_path))
    assert all(ps.references == () for ps in sets)
    sets = bec_pro_probe_sets(small(tmp_path), PROFESSIONS)
    assert reference(sets[0], "us").as_dict() == {"electrician": pytest.approx(0.022)}  # "nurse" is not in BEC-Pro


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda t: t.replace("\tProf_Gender", "\tProfGender"), "missing column Prof_Gender"),
    (lambda t: t.replace("\tmale\n", "\tmen\n", 1), "Prof_Gender 'men'"),
    (lambda t: t.replace("[MASK] is a electrician.\t", "He is a electrician.\t", 1), "Sent_TM has no [MASK]"),
])
def test_bad_files_give_one_clear_line(tmp_path, edit, problem):
    path = small(tmp_path)
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(AuditError) as info:
        bec_pro_probe_sets(path)
    assert problem in str(info.value) and str(info.value).startswith(str(path))
    with pytest.raises(AuditError, match="no such file"):
        read_bec_pro(tmp_path / "missing.tsv")


def test_bad_professions_share(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("simplified_professions\tpercent_us\tpercent_de\tprof_gender\nnurse\t100\t50\tfemale\n",
                    encoding="utf-8")
    with pytest.raises(AuditError, match=r":2: percent_us must be a percentage strictly between 0 and 100"):
        read_professions(path)


@pytest.mark.skipif(not SHARED.is_file(), reason="BEC-Pro_EN.tsv is read from the shared data folder")
def test_the_published_file():
    table = read_bec_pro(SHARED)
    assert len(table) == 5400 and int((~table["article_agrees"]).sum()) == 378
    sets = bec_pro_probe_sets(SHARED, PROFESSIONS)
    assert [len(ps.targets) for ps in sets] == [2, 2, 14]
    assert all(len(g.terms) == 20 for g in sets[0].groups) and len(sets[0].templates) == 5
    assert len(reference(sets[0], "us").values) == 60 and len(reference(sets[0], "de").values) == 60
    items = expand_items(sets)
    assert len(items) == 3 * 5 * 60 and not items["text"].str.contains(r"\ba [aeiou]", regex=True).any()
