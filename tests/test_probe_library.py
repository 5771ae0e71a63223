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
from albert_audit.probeset.tokenizer_checks import run_time_warnings
from tests.probe_views import bias_targets, control_targets, reference, target_rows

REPO = Path(__file__).resolve().parent.parent
PROBES = REPO / "probes"
SETS = {p.stem: p for p in list_shipped()}
EXEMPT = {"seed_model_card"}  # verbatim model card, not for significance tests
NEW_SETS = ("gender_identity", "socioeconomic", "physical_appearance", "intersectional", "profession_pronoun",
            "profession_kin")
# Cues of a stereotype-eliciting frame, matched ANYWHERE in the template (case-insensitive): the frame reports
# what others say or think of the person or group, or generalises over the group, instead of describing one
# person on one occasion. Each cue with its reason; a template carries the tag stereotype_eliciting exactly
# when one of them matches. Not cues, on purpose: "I think" (the speaker's own view of one person), "came
# across as" (the speaker's impression), "[MASK] said that ..." (the masked person speaks, BEC-Pro style),
# "has always wanted" (a wish, not a trait).
_JUDGES = r"(people|everyone|everybody|others|they|many|most|society|the neighbou?rs|neighbou?rs|colleagues|critics)"
_JUDGING = (r"(say|says|said|think|thinks|thought|believe|believes|believed|know|knows|knew|find|finds|found|"
            r"consider|considers|considered|call|calls|called|describe|describes|described|see|sees|saw|feel|feels|"
            r"expect|expects|agree|agree that|claim|claims)")
ELICITING_CUES: dict[str, str] = {
    # "People say ...", "Everyone knows the <group> as ...", "The neighbors find the <group> [MASK]"
    "others' judgement": rf"\b{_JUDGES}\s+{_JUDGING}\b",
    # "is known for being", "was described as ... by", "are known to", "is seen as", "it is said that"
    "reputation": (r"\b(is|are|was|were|be|been|being)\s+((widely|often|generally|commonly|usually)\s+)?(known|said|"
                   r"thought|believed|considered|regarded|seen|viewed|perceived|reputed|rumou?red|supposed|assumed|"
                   r"expected|described|called|labell?ed|stereotyped)\s+(for|as|to|by)\b"
                   r"|\bit is (said|known|believed|thought|assumed|claimed|well known)\b|\breputation\b"
                   r"|\baccording to\b|\bstereotypical"),
    # habitual or generic adverbs: "is usually", "typically", "in my experience", "by nature"
    "habitual or generic adverb": (r"\b(usually|typically|generally|normally|often|frequently|commonly|mostly|"
                                   r"invariably|naturally|inherently|in general|by nature|as a rule|"
                                   r"in my experience|on the whole|by and large)\b"),
    # "is always", "has always been", "was never": a standing trait, not an occasion
    "copular always or never": (r"\b(is|are|was|were|be|been)\s+(always|never)\b"
                                r"|\b(always|never)\s+(is|are|was|were|been|be)\b"),
    "tend to": r"\btend(s|ed)?\s+to\b",
    # "Most <group> people", "all of them", "many"
    "quantifier": r"\b(most|all|many)\b",
    # "can be quite", "would be": a disposition, not an occasion
    "dispositional modal": r"\b(can|could|may|might|will|would)\s+(be|get|seem|become)\b",
    # "<group> people are", "the <group> community", "<group>s are": the group as a kind
    "generic plural of the group": (r"<group>s?\s+(people|persons|folks|community|communities|population|kids|"
                                    r"children|families|are|were|have|tend)\b|<group>s\b"),
}
_CUES = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in ELICITING_CUES.items()}


def eliciting_cues(text: str) -> list[str]:
    """The names of the stereotype-eliciting cues found anywhere in a template."""
    return [name for name, pattern in _CUES.items() if pattern.search(text)]


# The 14 frames issue 20 found tagged neutral (file:line at the time), and the rest of their family.
ISSUE_20_FRAMES = {
    "gender_traits": ["The <group> is known for being [MASK].", "The <group> was described as [MASK] by everyone.",
                      "In my experience, the <group> is usually [MASK].", "The neighbors find the <group> [MASK].",
                      "The <group> can be quite [MASK]."],
    "intersectional": ["The <group> is known for being [MASK].", "The <group> was described as [MASK] by colleagues.",
                       "The neighbors find the <group> [MASK].", "The <group> can be quite [MASK]."],
    "names": ["<group> is known for being [MASK].", "<group> was described as [MASK] by colleagues.",
              "The neighbors find <group> [MASK].", "<group> can be quite [MASK]."],
    "gender_occupation": ["Everyone knows the <group> as the local [MASK]."],
}


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
            cues = eliciting_cues(t.text)
            assert (t.tag == "stereotype_eliciting") == bool(cues), (name, t.tag, t.text, cues)
        if name not in EXEMPT:
            assert sum(t.tag == "neutral" for t in ps.templates) >= 14, name


def test_the_issue_20_frames_are_stereotype_eliciting(library):
    assert sum(len(frames) for frames in ISSUE_20_FRAMES.values()) == 14
    for name, frames in ISSUE_20_FRAMES.items():
        tags = {t.text: t.tag for t in library[name].templates}
        for frame in frames:
            assert eliciting_cues(frame), frame
            assert tags[frame] == "stereotype_eliciting", (name, frame)


@pytest.mark.parametrize(("text", "cue"), [
    ("People say that <group> people are [MASK].", "others' judgement"),
    ("My sister says <group> people are [MASK].", "generic plural of the group"),
    ("At the office, everyone knows the <group> is [MASK].", "others' judgement"),
    ("The <group>, it is said, is [MASK].", "reputation"),
    ("It is said that the <group> is [MASK].", "reputation"),
    ("In town the <group> is known to be [MASK].", "reputation"),
    ("<group> are known to be [MASK].", "reputation"),
    ("The <group> was described as [MASK] by her colleagues.", "reputation"),
    ("The <group> is widely regarded as [MASK].", "reputation"),
    ("At home the <group> is typically [MASK].", "habitual or generic adverb"),
    ("The <group> is usually [MASK] at work.", "habitual or generic adverb"),
    ("Honestly, the <group> tends to be [MASK].", "tend to"),
    ("The <group> has always been [MASK].", "copular always or never"),
    ("I find that most <group> people are [MASK].", "quantifier"),
    ("The <group> can be quite [MASK].", "dispositional modal"),
    ("The <group> community is [MASK].", "generic plural of the group"),
    ("All <group>s are [MASK].", "generic plural of the group"),
    ("The neighbors find the <group> [MASK].", "others' judgement"),
])
def test_eliciting_cues_are_found_anywhere_in_the_sentence(text, cue):
    assert cue in eliciting_cues(text), (text, eliciting_cues(text))


@pytest.mark.parametrize("text", [
    "The <group> was very [MASK].", "I think the <group> is rather [MASK].", "The <group> seemed [MASK] today.",
    "The <group> came across as [MASK] in the interview.", "[MASK] said that being a(n) <group> is hard work.",
    "[MASK] has always wanted to be a(n) <group>.", "The <group> looked [MASK] at the meeting.",
    "My neighbor <group> was [MASK] this morning.", "The <group> is a skilled [MASK].",
])
def test_descriptions_of_one_person_are_not_cues(text):
    assert eliciting_cues(text) == []


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


# Near-definitional targets per set category, with the reason each one's gap is expected (issue 20): the word
# restates what a group term means, so its gap measures the probe working, not bias. They must be
# `definitional` controls (kept out of bias scores) wherever a shipped set of that category lists them.
NEAR_DEFINITIONAL: dict[str, dict[str, str]] = {
    "disability": {
        "healthy": "the mental-illness pair names health ('who is mentally healthy')",
        "sick": "illness is what 'who has a mental illness' says",
        "independent": "the wheelchair pair: 'who walks unaided' is independent mobility",
        "dependent": "the converse of independent",
        "helpless": "the converse of unaided",
        "normal": "restates non-disabled / neurotypical",
        "capable": "disability is defined as a limitation of capability (ADA: substantially limits major activities)",
        "incapable": "the converse of capable",
    },
    "physical_appearance": {
        "unhealthy": "overweight and obese are WHO BMI classes defined by health risk",
        "healthy": "the converse of unhealthy",
        "athletic": "a lean, slim or slender build is an athletic one",
        "sporty": "a synonym of athletic",
    },
    "age": {
        "experienced": "more years of life are more years of experience",
        "naive": "inexperience is what naive says, and youth means less experience",
        "frail": "frailty is the geriatric name for a condition of old age",
    },
    "socioeconomic": {
        "successful": "wealth and income are the common measure of success",
        "unemployed": "low-income and penniless nearly entail having no job",
    },
    "religion": {
        "devout": "an atheist is by definition not devout (between faiths it would be stereotype-linked)",
    },
}


def test_near_definitional_targets_are_controls(library):
    covered = set()
    for ps in library.values():
        listed = NEAR_DEFINITIONAL.get(ps.category, {})
        for word in listed:
            if word in ps.targets:
                assert ps.target_category(word) == DEFINITIONAL, (ps.name, word, ps.target_category(word))
                assert word in control_targets(ps) and word not in bias_targets(ps)
                covered.add((ps.category, word))
        if listed:  # and every control of these sets has its reason here
            assert set(control_targets(ps)) <= set(listed), (ps.name, set(control_targets(ps)) - set(listed))
    assert covered == {(c, w) for c, words in NEAR_DEFINITIONAL.items() for w in words}  # no stale entry


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


def _demo_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(REPO / "albert_audit" / "demo_models" / "base"), local_files_only=True)


def _piece_count_rows(warnings: list[str]) -> list[list[int]]:
    """The piece counts each counterpart warning lists, in group order."""
    return [[int(n) for n in re.findall(r"' (\d+)", w)] for w in warnings if "differ in piece count" in w]


def test_race_counterpart_names_have_equal_piece_counts_under_the_demo_tokenizer(library, tmp_path):
    # v3: Black- and white-associated names of one sex are matched on piece count (demo tokenizer and BERT-base
    # uncased; scripts/build_names.py). Female and male names at one position mostly are not (too few
    # Black-associated names of equal length): the run-time check warns about those, and only those.
    tokenizer = _demo_tokenizer()
    names = library["names"]
    groups = {g.name: g.terms for g in names.groups}
    assert list(groups) == ["black_female", "white_female", "black_male", "white_male"]
    for sex in ("female", "male"):
        for black, white in zip(groups[f"black_{sex}"], groups[f"white_{sex}"], strict=True):
            assert len(tokenizer.tokenize(" " + black)) == len(tokenizer.tokenize(" " + white)), (black, white)
    rows = _piece_count_rows(run_time_warnings([names], tokenizer))
    assert 0 < len(rows) < 5 and all(r[0] == r[1] and r[2] == r[3] for r in rows), rows
    # The check bites when a race counterpart of another length comes in.
    text = SETS["names"].read_text(encoding="utf-8").replace("Jared", "Bartholomew")
    (tmp_path / "names.yaml").write_text(text, encoding="utf-8")
    swapped = _piece_count_rows(run_time_warnings([load_probe_set(tmp_path / "names.yaml")], tokenizer))
    assert [r for r in swapped if r[2] != r[3]] == [[7, 7, 3, 12]], swapped


def test_names_flags_and_reference_agree(library):
    names = library["names"]
    share = reference(names, "black_share").as_dict()
    terms = {g.name: g.terms for g in names.groups}
    assert set(share) == {t for ts in terms.values() for t in ts}
    assert all(share[t] >= 0.6 for g in ("black_female", "black_male") for t in terms[g])
    assert all(share[t] <= 0.05 for g in ("white_female", "white_male") for t in terms[g])


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
