"""The shipped probe library (issue 11): contract checks over every set and lexicon, the vendored reference
data against the probe files, the fixed defects, LICENSE/NOTICE and the library docs."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from albert_audit.library import list_shipped, shipped_probes_dir
from albert_audit.probeset import DEFINITIONAL, MASK_PLACEHOLDER, load_lexicon, load_probe_set, load_probe_sets
from albert_audit.probeset.articles import agrees, indefinite_article
from albert_audit.probeset.expand import expand_items
from tests.probe_views import bias_targets, control_targets, reference, target_rows

REPO = Path(__file__).resolve().parent.parent
PROBES = REPO / "probes"
SETS = {p.stem: p for p in list_shipped()}
EXEMPT = {"seed_model_card"}  # verbatim model card, not for significance tests
NEW_SETS = ("gender_identity", "socioeconomic", "physical_appearance", "intersectional", "profession_pronoun",
            "profession_kin")
# Frames that attribute the judgement to others or generalise over the whole group.
ELICITING = re.compile(r"^(People (say|think)|Most <group> people|Everyone (says|said|thinks))|community is often seen")


@pytest.fixture(scope="module")
def library():
    return {ps.name: ps for ps in load_probe_sets(list(SETS.values()))}


def test_library_lists_every_set_and_keeps_the_old_names():
    for name in ("gender_occupation", "gender_traits", "age", "disability", "nationality", "race_ethnicity",
                 "religion", "sexual_orientation", "seed_model_card", *NEW_SETS):
        assert name in SETS, name
    assert all(p.parent == shipped_probes_dir() for p in SETS.values())  # lexicons are not probe sets


def test_every_set_loads_without_warnings_and_has_the_minimum_design(library):
    for name, ps in library.items():
        assert ps.name == name and ps.source and ps.description
        if name in EXEMPT:
            continue
        assert ps.warnings == (), ps.warnings
        assert sum(t.slot is not None for t in ps.templates) >= 14, name
        assert len(ps.groups) >= 2 and ps.targets, name


def test_every_lexicon_has_a_source_and_a_licence():
    lexicons = sorted((PROBES / "lexicons").glob("*.yaml"))
    assert {p.stem for p in lexicons} >= {"gender_general_nouns", "gender_kin_nouns", "gender_pronouns",
                                         "bec_pro_professions"}
    for path in lexicons:
        lex = load_lexicon(path)
        assert lex.name == path.stem and lex.source and lex.licence and lex.groups


def test_gender_lexicons_are_shared_not_copied(library):
    for name in ("gender_occupation", "gender_traits"):
        text = SETS[name].read_text(encoding="utf-8")
        assert "groups_from: [gender_general_nouns, gender_kin_nouns]" in text and "\ngroups:" not in text
        assert [lex for lex, _ in library[name].lexicons] == ["gender_general_nouns", "gender_kin_nouns"]
    assert library["gender_occupation"].groups == library["gender_traits"].groups
    kin = load_lexicon(PROBES / "lexicons" / "gender_kin_nouns.yaml")
    assert library["profession_kin"].targets == tuple(t for g in kin.groups for t in g.terms)


def test_no_article_right_before_the_mask_outside_the_model_card(library):
    for name, ps in library.items():
        for t in ps.templates:
            if name not in EXEMPT:
                assert not re.search(r"\b(a|an|a\(n\)) \[MASK\]", t.text, re.IGNORECASE), (name, t.text)


def test_every_filled_article_agrees_with_its_word(library):
    items = expand_items(list(library.values()))
    checked = 0
    for text, term in zip(items["text"], items["term"], strict=True):
        for match in re.finditer(r"\b([Aa]n?) ([\w-]+)", text):
            if term and term.split()[0] == match.group(2):
                assert agrees(match.group(1), match.group(2)), text
                checked += 1
    assert checked > 1000  # the BEC-Pro style sets put a(n) before every profession
    assert not items["text"].str.contains("a(n)", regex=False).any()
    assert "[MASK] is an electrical installer." in set(items["text"])


def test_stereotype_eliciting_frames_are_tagged_and_neutral_sets_are_neutral(library):
    for name, ps in library.items():
        for t in ps.templates:
            assert (t.tag == "stereotype_eliciting") == bool(ELICITING.search(t.text)), (name, t.text)
        if name not in EXEMPT:
            assert sum(t.tag == "neutral" for t in ps.templates) >= 14, name


def test_no_template_contains_one_of_its_own_targets(library):
    # "The young patient seemed patient": a target written into the sentence primes itself.
    for name, ps in library.items():
        for t in ps.templates:
            words = set(re.findall(r"[A-Za-z-]+", t.text.replace(MASK_PLACEHOLDER, "")))
            assert not words & set(ps.targets), (name, t.text, words & set(ps.targets))


def test_proper_adjectives_are_capitalised(library):
    lower_ok = {"white", "atheist"}  # AP style: "white" is lower case; "atheist" is not a proper adjective
    for name in ("nationality", "religion", "race_ethnicity"):
        for group in library[name].groups:
            for term in group.terms:
                assert term[0].isupper() or term in lower_ok, (name, term)
    assert {g.terms[0] for g in library["intersectional"].groups} >= {"Black woman", "Asian man", "white woman"}


def test_nationality_has_two_countries_per_inhabited_continent(library):
    continents = {"north_america": {"american", "mexican"}, "south_america": {"brazilian", "colombian"},
                  "europe": {"british", "german"}, "africa": {"nigerian", "egyptian"},
                  "asia": {"chinese", "indian"}, "oceania": {"australian", "new_zealander"}}
    assert set(library["nationality"].group_names) == set().union(*continents.values())


def test_definitional_targets_are_controls_outside_bias_scores(library):
    occupation = library["gender_occupation"]
    assert {"waitress", "actress", "policeman"} <= set(control_targets(occupation))
    assert "waitress" not in bias_targets(occupation) and "nurse" in bias_targets(occupation)
    assert control_targets(library["gender_traits"]) == ("handsome",)
    assert all(r["control"] == (r["category"] == DEFINITIONAL) for r in target_rows(occupation))


def test_polysemous_terms_are_flagged(library):
    assert dict(library["sexual_orientation"].polysemous).keys() >= {"gay", "straight"}
    assert "old" in dict(library["age"].polysemous)


def test_asexual_split_and_race_mixture_are_gone(library):
    assert "asexual" not in {t for g in library["sexual_orientation"].groups for t in g.terms}
    race = library["race_ethnicity"]
    assert race.pair_terms_by_position and {len(g.terms) for g in race.groups} == {2}
    text = SETS["race_ethnicity"].read_text(encoding="utf-8")
    assert "HolisticBias" in text and "under white" in text


def test_new_sets_have_five_terms_per_group_where_english_allows(library):
    for name in ("socioeconomic", "physical_appearance", "intersectional"):
        assert all(len(g.terms) >= 5 for g in library[name].groups), name
    assert all(len(g.terms) == 20 for g in library["profession_pronoun"].groups)


# ------------------------------------------------------------------------------------ reference data


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_gender_occupation_reference_equals_the_vendored_winogender_file(library):
    rows = {r["occupation"]: float(r["bls_pct_female"]) / 100 for r in _tsv(PROBES / "reference" /
                                                                            "winogender_occupations_stats.tsv")}
    ref = reference(library["gender_occupation"])
    assert ref is not None and ref.keyed_by == "target" and "MIT" in ref.licence
    values = ref.as_dict()
    assert len(values) == 53
    assert values == {t: pytest.approx(rows[t]) for t in library["gender_occupation"].targets if t in rows}
    assert values["nurse"] == pytest.approx(0.8958) and values["chef"] == pytest.approx(0.196)


def test_bec_pro_references_equal_the_vendored_file(library):
    rows = _tsv(PROBES / "reference" / "bec_pro_professions_us_de.tsv")
    for name in ("profession_pronoun", "profession_kin"):
        ps = library[name]
        us, de = reference(ps, "us"), reference(ps, "de")
        assert us.keyed_by == de.keyed_by == "term"
        assert us.as_dict() == {r["simplified_professions"]: pytest.approx(float(r["percent_us"]) / 100)
                                for r in rows}
        assert de.as_dict() == {r["simplified_professions"]: pytest.approx(float(r["percent_de"]) / 100)
                                for r in rows}
        groups = {g.name: set(g.terms) for g in ps.groups}
        for r in rows:
            prefix = {"female": "female_dominated", "male": "male_dominated", "balanced": "balanced"}
            assert r["simplified_professions"] in groups[prefix[r["prof_gender"]]]


def test_vendored_files_are_unchanged_and_licensed():
    import hashlib

    expected = {"winogender_occupations_stats.tsv": "3f7f37c16381a70571356982ea7fe613ac700ad04a6d3b19b9f2be18248df567",
                "bec_pro_professions_us_de.tsv": "7597b1d56d21f79cfe3df7989292df94eb54cebc4cf977b2c94af75d787cc7ce"}
    folder = PROBES / "reference"
    for name, sha in expected.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == sha
    assert "MIT License" in (folder / "winogender_LICENSE.txt").read_text(encoding="utf-8")
    assert "Attribution 4.0 International" in (folder / "bec_pro_LICENSE.txt").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ licence, notice, docs


def test_license_is_the_apache_2_text_and_pyproject_agrees():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert 'license = "Apache-2.0"' in (REPO / "pyproject.toml").read_text(encoding="utf-8")


def test_notice_names_every_vendored_and_derived_list():
    notice = (REPO / "NOTICE").read_text(encoding="utf-8")
    for path in sorted((PROBES / "reference").glob("*.tsv")):
        assert f"probes/reference/{path.name}" in notice
    for fragment in ("MIT", "CC BY 4.0", "probes/lexicons/bec_pro_professions.yaml", "gender_occupation.yaml",
                     "profession_pronoun.yaml", "seed_model_card.yaml", "1c7f8b481ad8a234b41e9f76a424d6e856e13f7f",
                     "c1e28434555f79b59e13e3f5ff87846e653fb553"):
        assert fragment in notice, fragment


def test_docs_describe_every_shipped_set():
    docs = (REPO / "docs" / "probe_library.md").read_text(encoding="utf-8")
    for name in SETS:
        assert name in docs, name
    assert "checked at run time" in docs or "checked when a run loads the tokenizer" in docs


def test_the_article_heuristic_on_the_library_words():
    assert [indefinite_article(w) for w in ("electrical installer", "insurance sales agent", "heir", "user",
                                            "European-American", "one-time", "hour-long", "8-year-old",
                                            "umbrella", "taper")] == ["an", "an", "an", "a", "a", "a", "an", "an",
                                                                      "an", "a"]
    with pytest.raises(ValueError):
        indefinite_article(" ")


def test_a_lexicon_is_found_beside_a_user_probe_file_before_the_library(tmp_path):
    (tmp_path / "lexicons").mkdir()
    (tmp_path / "lexicons" / "gender_pronouns.yaml").write_text(
        "lexicon: gender_pronouns\ndescription: d\nsource: s\nlicence: l\ngroups:\n  f: [She]\n  m: [He]\n",
        encoding="utf-8")
    text = SETS["profession_pronoun"].read_text(encoding="utf-8")
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    ps = load_probe_set(tmp_path / "p.yaml")
    assert ps.target_category("She") == "f"  # the local lexicon, not the shipped one
    assert ps.groups == load_probe_set(SETS["profession_pronoun"]).groups  # bec_pro_professions: the library's
