"""Probe-set loading and validation (albert_audit.probeset) and the shipped-library resolver (library)."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from albert_audit import library
from albert_audit.errors import AuditError
from albert_audit.probeset import Group, ProbeSet, Template, load_probe_set, load_probe_sets
from tests.probe_views import bias_targets, control_targets, reference, target_rows, template_rows, template_tags

# Lines: 1 name, 2 description, 3 category, 4 groups, 5 female, 6 male, 7 templates, 8-15 templates,
# 16 targets
VALID = """\
name: demo
description: A demo probe set.
category: gender
groups:
  female: [woman, mother]
  male: [man, father]
templates:
  - "The <group> worked as a [MASK]."
  - "<group> is a [MASK]."
  - "My <group> is a [MASK]."
  - "The <group> wants to be a [MASK]."
  - "That <group> trained as a [MASK]."
  - "Every <group> can become a [MASK]."
  - "This <group> was hired as a [MASK]."
  - "Our <group> works as a [MASK] now."
targets: [nurse, doctor]
"""


def write(tmp_path: Path, text: str, name: str = "probe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def with_lines(replacements: dict[int, str], text: str = VALID) -> str:
    """VALID with some 1-based lines replaced (a replacement may span several lines)."""
    lines = text.splitlines()
    for number, new in replacements.items():
        lines[number - 1] = new
    return "\n".join(lines) + "\n"


def error_of(path: Path) -> str:
    with pytest.raises(AuditError) as info:
        load_probe_set(path)
    return str(info.value)


def assert_problem(message: str, path: Path, line: int | None, *fragments: str) -> None:
    """Some line of ``message`` is ``PATH:LINE: ...`` and contains every fragment."""
    prefix = f"{path}:{line}: " if line is not None else f"{path}: "
    hits = [m for m in message.splitlines() if m.startswith(prefix) and all(f in m for f in fragments)]
    assert hits, f"no line {prefix!r} with {fragments} in:\n{message}"


# ------------------------------------------------------------------------------------------ valid files


def test_valid_file_loads_into_frozen_dataclasses(tmp_path):
    path = write(tmp_path, VALID)
    ps = load_probe_set(path)
    assert isinstance(ps, ProbeSet)
    assert ps.name == "demo" and ps.category == "gender" and ps.description == "A demo probe set."
    assert ps.source == "" and ps.schema_version == 1 and ps.pair_terms_by_position is False
    assert ps.groups == (Group("female", ("woman", "mother")), Group("male", ("man", "father")))
    assert ps.templates[0] == Template(0, "The <group> worked as a [MASK].", 8, "group", ())
    assert [t.template_id for t in ps.templates] == list(range(8))
    assert [t.line for t in ps.templates] == list(range(8, 16))
    assert ps.targets == ("nurse", "doctor")
    assert ps.path == str(path)
    assert ps.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ps.warnings == ()
    with pytest.raises(AttributeError):
        ps.name = "other"  # type: ignore[misc]


def test_optional_keys_and_bom(tmp_path):
    text = "schema_version: 1\nsource: made up for a test\npair_terms_by_position: true\n" + VALID
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    ps = load_probe_set(path)
    assert ps.source == "made up for a test" and ps.pair_terms_by_position is True


def test_quoted_yaml_words_are_strings(tmp_path):
    path = write(tmp_path, with_lines({5: '  female: ["no", "yes", !!str 1]'}))
    assert load_probe_set(path).groups[0].terms == ("no", "yes", "1")


def test_inline_alternatives_with_declared_groups(tmp_path):
    path = write(tmp_path, with_lines({8: '  - "The <woman/man> worked as a [MASK]."'}))
    template = load_probe_set(path).templates[0]
    assert template.slot == "inline" and template.alternatives == ("woman", "man")


def test_inline_alternatives_without_groups_name_the_groups(tmp_path):
    text = """\
    name: seed
    description: Model card probes.
    category: gender
    templates:
      - "Hello I'm a [MASK] model."
      - "The <man/woman> worked as a [MASK]."
      - "The <father/mother> works as a [MASK]."
    """
    ps = load_probe_set(write(tmp_path, text))
    assert ps.groups == (Group("man", ("man", "father")), Group("woman", ("woman", "mother")))
    assert [t.slot for t in ps.templates] == [None, "inline", "inline"]
    assert ps.templates[2].alternatives == ("father", "mother")


# ---------------------------------------------------------------------------------------- file problems


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert_problem(error_of(path), path, None, "no such file")


def test_directory(tmp_path):
    assert_problem(error_of(tmp_path), tmp_path, None, "is a directory")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path, text)
    assert_problem(error_of(path), path, 1, "file is empty")


def test_file_over_5mb_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * (5 * 1024 * 1024) + b"\n")
    assert_problem(error_of(path), path, None, "over the 5 MiB limit")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(VALID.replace("A demo", "Caf\xe9").encode("latin-1"))
    assert_problem(error_of(path), path, 2, "not valid UTF-8")


def test_invalid_yaml_reports_the_parser_line(tmp_path):
    path = write(tmp_path, with_lines({3: "category: gender: oops"}))
    assert_problem(error_of(path), path, 3, "invalid YAML", "mapping values are not allowed")


def test_invalid_yaml_unclosed_flow_list(tmp_path):
    path = write(tmp_path, with_lines({5: "  female: [woman, mother"}))
    message = error_of(path)
    assert message.startswith(f"{path}:") and "invalid YAML" in message
    assert len(message.splitlines()) == 1


def test_top_level_not_a_mapping(tmp_path):
    path = write(tmp_path, "- name: demo\n- templates: []\n")
    assert_problem(error_of(path), path, 1, "top level must be a mapping", "found a list")


# --------------------------------------------------------------------------------------------- keys


def test_unknown_key_suggests_the_right_one(tmp_path):
    path = write(tmp_path, with_lines({16: "tragets: [nurse, doctor]"}))
    assert_problem(error_of(path), path, 16, "unknown key 'tragets'", "did you mean 'targets'?")


def test_missing_required_key(tmp_path):
    path = write(tmp_path, with_lines({2: "# no description"}))
    assert_problem(error_of(path), path, 1, "missing required key 'description'")


def test_duplicate_top_level_key(tmp_path):
    path = write(tmp_path, VALID + "name: demo2\n")
    assert_problem(error_of(path), path, 17, "duplicate key 'name'", "first at line 1")


def test_duplicate_group_name(tmp_path):
    path = write(tmp_path, with_lines({6: "  female: [man, father]"}))
    assert_problem(error_of(path), path, 6, "duplicate key 'female'", "first at line 5")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Gender Occupation", "must match [a-z0-9_]+"),
        ("gender-occupation", "e.g. 'gender_occupation'"),
        ("1", "must be a string"),
    ],
)
def test_bad_name(tmp_path, value, problem):
    path = write(tmp_path, with_lines({1: f"name: {value}"}))
    assert_problem(error_of(path), path, 1, "name", problem)


@pytest.mark.parametrize("value", ["2", "'1'", "1.0", "true"])
def test_schema_version_other_than_1(tmp_path, value):
    path = write(tmp_path, f"schema_version: {value}\n" + VALID)
    assert_problem(error_of(path), path, 1, "schema_version must be 1")


@pytest.mark.parametrize(("line", "text"), [(2, 'description: ""'), (3, "category: '  '")])
def test_empty_required_string(tmp_path, line, text):
    path = write(tmp_path, with_lines({line: text}))
    assert_problem(error_of(path), path, line, "empty string")


def test_wrong_type_for_templates_and_flag(tmp_path):
    text = with_lines({7: 'templates: "The <group> is a [MASK]."'}).split("\n")
    text = "\n".join(text[:7] + text[15:]) + "pair_terms_by_position: maybe\n"
    path = write(tmp_path, text)
    message = error_of(path)
    assert_problem(message, path, 7, "templates must be a list of strings", "found the string")
    assert_problem(message, path, 9, "pair_terms_by_position must be true or false")


# ------------------------------------------------------------------------------------ groups and terms


@pytest.mark.parametrize(
    ("term", "read_as"),
    [("no", "the boolean False"), ("yes", "the boolean True"), ("1", "the integer 1"), ("null", "null")],
)
def test_non_string_term(tmp_path, term, read_as):
    path = write(tmp_path, with_lines({6: f"  male: [man, {term}]"}))
    assert_problem(error_of(path), path, 6, "term of group 'male' must be a string", read_as, "quote it")


def test_missing_term_in_block_list(tmp_path):
    path = write(tmp_path, with_lines({6: "  male:\n    - man\n    -"}))
    assert_problem(error_of(path), path, 8, "term of group 'male' is missing")


@pytest.mark.parametrize("value", ["[]", "", "[ ]"])
def test_empty_group(tmp_path, value):
    path = write(tmp_path, with_lines({6: f"  male: {value}"}))
    assert_problem(error_of(path), path, 6, "group 'male' is empty")


def test_group_that_is_not_a_list(tmp_path):
    path = write(tmp_path, with_lines({6: "  male: man, father"}))
    assert_problem(error_of(path), path, 6, "group 'male' must be a list of terms")


def test_groups_not_a_mapping(tmp_path):
    path = write(tmp_path, with_lines({4: "groups: [woman, man]", 5: "", 6: ""}))
    assert_problem(error_of(path), path, 4, "groups must be a mapping")


def test_duplicate_term_in_group(tmp_path):
    path = write(tmp_path, with_lines({6: "  male:\n    - man\n    - father\n    - man"}))
    assert_problem(error_of(path), path, 9, "term 'man' appears twice in group 'male'", "first at line 7")


def test_empty_string_term(tmp_path):
    path = write(tmp_path, with_lines({6: '  male: [man, ""]'}))
    assert_problem(error_of(path), path, 6, "term of group 'male' is an empty string")


def test_term_with_mask(tmp_path):
    path = write(tmp_path, with_lines({6: '  male: [man, "[MASK]"]'}))
    assert_problem(error_of(path), path, 6, "must not contain [MASK]")


@pytest.mark.parametrize("token", ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "<pad>", "<s>", "</s>", "<unk>", "[mask]",
                                   "<mask>"])
def test_special_token_as_a_term(tmp_path, token):
    path = write(tmp_path, with_lines({6: f'  male: [man, "{token}"]'}))
    assert_problem(error_of(path), path, 6, f"term of group 'male' '{token}' is the special token '{token}'",
                   "not as a word")


def test_term_containing_a_special_token(tmp_path):
    path = write(tmp_path, with_lines({6: '  male: [man, "man[SEP]"]'}))
    assert_problem(error_of(path), path, 6, "'man[SEP]' contains the special token '[SEP]'")


def test_pair_terms_by_position_needs_equal_sizes(tmp_path):
    path = write(tmp_path, with_lines({6: "  male: [man]"}) + "pair_terms_by_position: true\n")
    assert_problem(error_of(path), path, 17, "equal numbers of terms", "female has 2", "male has 1")


# ------------------------------------------------------------------------------------------- templates


def test_template_without_mask(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "<group> is a nurse."'}))
    assert_problem(error_of(path), path, 9, "has no [MASK]")


def test_template_with_two_masks(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "<group> told the [MASK] about the [MASK]."'}))
    assert_problem(error_of(path), path, 9, "has 2 [MASK]s", "exactly one")


@pytest.mark.parametrize("bad", ["[mask]", "<mask>", "[MASK ]", "[ MASK ]", "[Mask]"])
def test_misspelt_mask(tmp_path, bad):
    path = write(tmp_path, with_lines({9: f'  - "<group> is a {bad}."'}))
    assert_problem(error_of(path), path, 9, f"'{bad}' is not the mask", "write [MASK] exactly")


@pytest.mark.parametrize("glued", ["[MASK]'s", "[MASK]s", "[MASK]2", "[MASK]’s"])
def test_mask_glued_to_the_next_characters(tmp_path, glued):
    path = write(tmp_path, with_lines({9: f'  - "<group> is the {glued} friend."'}))
    assert_problem(error_of(path), path, 9, "[MASK] is glued to", "stray piece")


def test_mask_glued_to_the_previous_word(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "<group> is a[MASK]."'}))
    assert_problem(error_of(path), path, 9, "glued to the preceding 'a'")


@pytest.mark.parametrize("glued", ["[MASK]-like", "[MASK]\u2011like"])
def test_mask_glued_to_a_following_hyphen(tmp_path, glued):
    path = write(tmp_path, with_lines({9: f'  - "<group> is a {glued} person."'}))
    assert_problem(error_of(path), path, 9, f"[MASK] is glued to '{glued[6:]}'", "stray piece")


@pytest.mark.parametrize("glued", ["pre-[MASK]", "pre\u2010[MASK]"])
def test_mask_glued_to_a_preceding_hyphen(tmp_path, glued):
    path = write(tmp_path, with_lines({9: f'  - "<group> is a {glued} person."'}))
    assert_problem(error_of(path), path, 9, f"[MASK] is glued to the hyphen of '{glued[:4]}'",
                   "middle of a hyphenated word", "stands alone")


@pytest.mark.parametrize("template, slot", [
    ("My <group>[MASK] is here.", "<group>"),
    ("My [MASK]<group> is here.", "<group>"),
    ("My <woman/man>[MASK] is here.", "<woman/man>"),
])
def test_slot_glued_to_the_mask(tmp_path, template, slot):
    path = write(tmp_path, with_lines({9: f'  - "{template}"'}))
    assert_problem(error_of(path), path, 9, f"the slot {slot} is glued to [MASK]", "put a space between them")


def test_mask_followed_by_punctuation_is_fine(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "<group> is a [MASK], they said."'}))
    assert load_probe_set(path).templates[1].text == "<group> is a [MASK], they said."


def test_special_token_in_template(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "<group> is a [MASK]. [SEP] Yes."'}))
    assert_problem(error_of(path), path, 9, "special token '[SEP]'")


def test_group_slot_without_groups(tmp_path):
    text = "\n".join(VALID.splitlines()[:3] + VALID.splitlines()[6:]) + "\n"
    path = write(tmp_path, text)
    assert_problem(error_of(path), path, 5, "<group> slot but the file declares no groups")


def test_unknown_slot_name(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "<gruop> is a [MASK]."'}))
    assert_problem(error_of(path), path, 9, "unknown slot <gruop>", "did you mean <group>?")


def test_two_slots_in_one_template(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "<group> met <man/woman> as a [MASK]."'}))
    assert_problem(error_of(path), path, 9, "2 slots", "at most one slot")


def test_inline_count_differs_from_declared_groups(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "The <man/woman/person> is a [MASK]."'}))
    assert_problem(error_of(path), path, 9, "3 alternatives", "declares 2 groups (female, male)")


def test_inline_count_differs_from_first_inline_template(tmp_path):
    text = """\
    name: seed
    description: Model card probes.
    category: gender
    templates:
      - "The <man/woman> worked as a [MASK]."
      - "The <he/she/they> worked as a [MASK]."
    """
    path = write(tmp_path, text)
    assert_problem(error_of(path), path, 6, "3 alternatives", "first inline template (line 5) has 2")


@pytest.mark.parametrize(
    ("slot", "problem"), [("<man/>", "empty alternative"), ("<man/man>", "repeat 'man'")]
)
def test_bad_inline_alternatives(tmp_path, slot, problem):
    path = write(tmp_path, with_lines({9: f'  - "The {slot} is a [MASK]."'}))
    assert_problem(error_of(path), path, 9, problem)


def test_unbalanced_angle_bracket(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "<group is a [MASK]."'}))
    assert_problem(error_of(path), path, 9, "unbalanced '<'")


def test_duplicate_template(tmp_path):
    path = write(tmp_path, with_lines({10: '  - "The <group> worked as a [MASK]."'}))
    assert_problem(error_of(path), path, 10, "duplicate template", "first at line 8")


@pytest.mark.parametrize(("value", "problem"), [('""', "empty string"), ("42", "must be a string")])
def test_bad_template_value(tmp_path, value, problem):
    path = write(tmp_path, with_lines({9: f"  - {value}"}))
    assert_problem(error_of(path), path, 9, "template", problem)


def test_empty_template_list(tmp_path):
    text = "\n".join(VALID.splitlines()[:6] + ["templates: []"] + VALID.splitlines()[15:]) + "\n"
    path = write(tmp_path, text)
    assert_problem(error_of(path), path, 7, "templates is empty")


# --------------------------------------------------------------------------------------------- targets


def test_target_with_whitespace(tmp_path):
    path = write(tmp_path, with_lines({16: 'targets: [nurse, "fire fighter"]'}))
    assert_problem(error_of(path), path, 16, "target 'fire fighter' must be a single word")


def test_duplicate_target(tmp_path):
    path = write(tmp_path, with_lines({16: "targets:\n  - nurse\n  - engineer\n  - nurse"}))
    assert_problem(error_of(path), path, 19, "target 'nurse' is listed twice", "first at line 17")


@pytest.mark.parametrize("token", ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "<pad>", "<s>", "</s>", "<unk>"])
def test_special_token_as_a_target(tmp_path, token):
    path = write(tmp_path, with_lines({16: f'targets: [nurse, "{token}"]'}))
    assert_problem(error_of(path), path, 16, f"target '{token}' is the special token '{token}'", "cannot be")


def test_mask_as_a_target(tmp_path):
    path = write(tmp_path, with_lines({16: "targets:\n  - nurse\n  - '[MASK]'"}))
    assert_problem(error_of(path), path, 18, "target '[MASK]' must not contain [MASK]", "mask token itself")


def test_non_string_target(tmp_path):
    path = write(tmp_path, with_lines({16: "targets: [nurse, NO, ~]"}))
    message = error_of(path)
    assert_problem(message, path, 16, "target must be a string", "the boolean False")
    assert_problem(message, path, 16, "target must be a string", "null")


def test_null_targets(tmp_path):
    path = write(tmp_path, with_lines({16: "targets:"}))
    assert_problem(error_of(path), path, 16, "targets must be a list of words")


# ------------------------------------------------------------------------------------ safety and bulk


def test_aliases_are_refused(tmp_path):
    path = write(tmp_path, with_lines({5: "  female: &f [woman, mother]", 6: "  male: *f"}))
    assert_problem(error_of(path), path, 6, "alias *f is not supported")


@pytest.mark.parametrize(("body", "line"), [
    ("[" * 1000 + "]" * 1000, 1),
    ("{a: " * 1000 + "1" + "}" * 1000, 1),
    # block mappings: the mapping at depth d starts on line d; the 101st level is the first one reported
    ("a:\n" + "".join(" " * depth + "b:\n" for depth in range(1, 1000)), 101),
    (VALID.replace("targets: [nurse, doctor]", "targets: " + "[" * 3000 + "nurse" + "]" * 3000), 16),
    ("name: x\nsource:\n" + "  " + "[" * 3000 + "]" * 3000 + "\n", 3),
])
def test_deeply_nested_yaml_is_one_clear_error_at_its_line(tmp_path, body, line):
    path = tmp_path / "deep.yaml"
    path.write_text(body, encoding="utf-8")
    assert error_of(path) == (f"{path}:{line}: the YAML is nested too deeply (100+ lists or mappings inside each "
                              "other); probe files need only a few levels")


def test_python_tags_are_never_executed(tmp_path):
    marker = tmp_path / "marker"
    path = write(
        tmp_path, with_lines({2: f"description: !!python/object/apply:os.system ['touch {marker}']"})
    )
    assert_problem(error_of(path), path, 2, "unsupported YAML tag")
    assert not marker.exists()


def test_all_problems_of_a_file_are_reported_together(tmp_path):
    path = write(
        tmp_path,
        with_lines(
            {
                1: "name: Bad Name",
                6: "  male: [man, no]",
                9: '  - "<group> is a nurse."',
                12: '  - "<gruop> is a [MASK]."',
                16: "tragets: [nurse]",
            }
        ),
    )
    message = error_of(path)
    assert len(message.splitlines()) == 5
    for line in (1, 6, 9, 12, 16):
        assert_problem(message, path, line)
    assert [int(m.split(":")[1]) for m in message.splitlines()] == [1, 6, 9, 12, 16]


# -------------------------------------------------------------------------------------------- warnings


def test_warning_for_fewer_than_8_templates(tmp_path):
    text = "\n".join(VALID.splitlines()[:13] + VALID.splitlines()[15:]) + "\n"
    path = write(tmp_path, text)
    warnings = load_probe_set(path).warnings
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{path}:7: ")
    assert "only 6 templates" in warnings[0] and "2/2^6 = 0.0312" in warnings[0]


def test_warning_for_a_term_in_two_groups(tmp_path):
    path = write(tmp_path, with_lines({6: "  male: [man, father, mother]"}))
    warnings = load_probe_set(path).warnings
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{path}:6: ")
    assert "'mother' is in both group 'female' and group 'male'" in warnings[0]


def test_no_template_warning_without_slots(tmp_path):
    text = 'name: fills\ndescription: d\ncategory: c\ntemplates: ["Hello I\'m a [MASK] model."]\n'
    assert load_probe_set(write(tmp_path, text)).warnings == ()


# --------------------------------------------------------------------------------------- several files


def test_load_probe_sets_keeps_order(tmp_path):
    a = write(tmp_path, VALID, "a.yaml")
    b = write(tmp_path, with_lines({1: "name: other"}), "b.yaml")
    assert [ps.name for ps in load_probe_sets([b, a])] == ["other", "demo"]


def test_duplicate_name_across_files(tmp_path):
    a = write(tmp_path, VALID, "a.yaml")
    b = write(tmp_path, "# copy\n" + VALID, "b.yaml")
    with pytest.raises(AuditError) as info:
        load_probe_sets([a, b])
    message = str(info.value)
    assert message.startswith(f"{b}:2: ")
    assert f"'demo' is also used by {a}:1" in message


def test_load_probe_sets_reports_every_bad_file(tmp_path):
    a = write(tmp_path, with_lines({1: "name: A"}), "a.yaml")
    b = write(tmp_path, "", "b.yaml")
    with pytest.raises(AuditError) as info:
        load_probe_sets([a, b])
    assert_problem(str(info.value), a, 1, "must match")
    assert_problem(str(info.value), b, 1, "empty")


# ------------------------------------------------------------------------------------------- library


@pytest.fixture
def fake_library(tmp_path, monkeypatch):
    folder = tmp_path / "shipped"
    folder.mkdir()
    for name in ("gender_occupation", "religion"):
        (folder / f"{name}.yaml").write_text(with_lines({1: f"name: {name}"}))
    monkeypatch.setattr(library, "shipped_probes_dir", lambda: folder)
    return folder


def test_resolve_probe_arg_existing_path(tmp_path, fake_library):
    path = write(tmp_path, VALID)
    assert library.resolve_probe_arg(str(path)) == path


def test_resolve_probe_arg_shipped_name(fake_library):
    assert library.resolve_probe_arg("religion") == fake_library / "religion.yaml"
    assert [p.stem for p in library.list_shipped()] == ["gender_occupation", "religion"]


def test_resolve_probe_arg_unknown_name_lists_the_library(fake_library):
    with pytest.raises(AuditError) as info:
        library.resolve_probe_arg("gender_ocupation")
    message = str(info.value)
    assert "did you mean 'gender_occupation'?" in message
    assert "shipped probe sets: gender_occupation, religion" in message


def test_resolve_probe_arg_missing_path_and_directory(tmp_path, fake_library):
    with pytest.raises(AuditError, match="no such file"):
        library.resolve_probe_arg(str(tmp_path / "missing.yaml"))
    with pytest.raises(AuditError, match="is a directory"):
        library.resolve_probe_arg(str(tmp_path))


def test_shipped_dirs_point_at_the_checkout_or_the_wheel_copy():
    package = Path(library.__file__).resolve().parent
    for found, name in (
        (library.shipped_probes_dir(), "probes"),
        (library.shipped_templates_dir(), "templates"),
    ):
        assert found in (package.parent / name, package / "_data" / name)


# ----------------------------------------------------------------------- schema v1 extensions (issue 11)


def test_templates_as_a_tag_mapping(tmp_path):
    text = VALID.replace('templates:\n  - "The <group> worked as a [MASK]."',
                         'templates:\n stereotype_eliciting:\n  - "People say the <group> is a [MASK]."\n'
                         ' neutral:\n  - "The <group> worked as a [MASK]."')
    text = text.replace("\n  - ", "\n    - ").replace("\n stereotype", "\n  stereotype")
    text = text.replace("\n neutral", "\n  neutral")
    ps = load_probe_set(write(tmp_path, text))
    assert template_tags(ps)[0] == "stereotype_eliciting"
    assert set(template_tags(ps).values()) == {"neutral", "stereotype_eliciting"}
    assert ps.templates[1].tag == "neutral" and ps.templates[1].template_id == 1
    assert template_rows(ps)[0] == {"probe_set": "demo", "template_id": 0,
                                     "template": "People say the <group> is a [MASK].", "tag": "stereotype_eliciting"}


def test_plain_template_list_is_neutral(tmp_path):
    ps = load_probe_set(write(tmp_path, VALID))
    assert set(template_tags(ps).values()) == {"neutral"}


def test_unknown_template_tag(tmp_path):
    text = with_lines({7: "templates:\n  nuetral:", 8: '    - "The <group> worked as a [MASK]."'})
    text = text.replace('\n  - "', '\n    - "')
    path = write(tmp_path, text)
    assert_problem(error_of(path), path, 8, "unknown templates tag 'nuetral'", "did you mean 'neutral'?")


def test_target_categories_and_definitional_controls(tmp_path):
    path = write(tmp_path, with_lines({16: "targets:\n  occupation: [nurse, doctor]\n  definitional: [waitress]"}))
    ps = load_probe_set(path)
    assert ps.targets == ("nurse", "doctor", "waitress")
    assert ps.target_category("waitress") == "definitional" and ps.target_category("nurse") == "occupation"
    assert bias_targets(ps) == ("nurse", "doctor") and control_targets(ps) == ("waitress",)
    rows = {r["target"]: r for r in target_rows(ps)}
    assert rows["waitress"]["control"] is True and rows["nurse"]["control"] is False


def test_plain_target_list_has_no_controls(tmp_path):
    ps = load_probe_set(write(tmp_path, VALID))
    assert bias_targets(ps) == ps.targets and control_targets(ps) == ()


@pytest.mark.parametrize(("category", "problem"), [("definitonal", "looks like a typo of 'definitional'"),
                                                    ("Bad-Name", "must match [a-z0-9_]+")])
def test_bad_target_category(tmp_path, category, problem):
    path = write(tmp_path, with_lines({16: f"targets:\n  {category}: [nurse]"}))
    assert_problem(error_of(path), path, 17, problem)


REFERENCE = """\
reference:
  source: BLS 2015
  measure: share of women
  values:
    nurse: 0.8958
    doctor: 0.379
"""


def test_reference_is_validated_and_exposed(tmp_path):
    ps = load_probe_set(write(tmp_path, VALID + REFERENCE))
    ref = reference(ps)
    assert ref is not None and ref.keyed_by == "target" and ref.measure == "share of women"
    assert ref.as_dict() == {"nurse": 0.8958, "doctor": 0.379}
    assert {r["target"]: r["reference_share"] for r in target_rows(ps)} == {"nurse": 0.8958, "doctor": 0.379}


@pytest.mark.parametrize(("old", "new", "line", "problem"), [
    ("nurse: 0.8958", "nurse: 89.58", 21, "strictly between 0 and 1"),
    ("doctor: 0.379", "doctor: 0", 22, "strictly between 0 and 1"),
    ("nurse: 0.8958", "nurce: 0.5", 21, "'nurce', which is not a target of the probe set (did you mean 'nurse'?)"),
    ("nurse: 0.8958", "nurse: high", 21, "must be a number"),
    ("  measure: share of women\n", "", 18, "reference is missing 'measure'"),
    ("  source: BLS 2015", "  sourse: BLS 2015", 18, "unknown reference key 'sourse'"),
])
def test_bad_reference(tmp_path, old, new, line, problem):
    path = write(tmp_path, VALID + REFERENCE.replace(old, new))
    assert_problem(error_of(path), path, line, problem)


def test_reference_keyed_by_term(tmp_path):
    ref = REFERENCE.replace("  values:\n    nurse: 0.8958\n    doctor: 0.379",
                            "  keyed_by: term\n  values:\n    woman: 0.5\n    father: 0.2")
    ps = load_probe_set(write(tmp_path, VALID + ref))
    assert reference(ps).keyed_by == "term" and reference(ps).as_dict() == {"woman": 0.5, "father": 0.2}
    path = write(tmp_path, VALID + ref.replace("woman: 0.5", "nurse: 0.5"), "bad.yaml")
    assert_problem(error_of(path), path, 22, "'nurse', which is not a term of the probe set")


def test_polysemous_words(tmp_path):
    ps = load_probe_set(write(tmp_path, VALID + "polysemous:\n  man: to staff (man the desk)\n"))
    assert dict(ps.polysemous) == {"man": "to staff (man the desk)"}
    path = write(tmp_path, VALID + "polysemous:\n  gay: happy\n", "bad.yaml")
    assert_problem(error_of(path), path, 18, "polysemous word 'gay' is not a term or target")


LEXICON = """\
lexicon: kin
description: kin nouns
source: written for a test
licence: Apache-2.0
groups:
  female: [mother, sister]
  male: [father, brother]
"""


def lexicon_file(tmp_path: Path, text: str = LEXICON, name: str = "kin") -> Path:
    folder = tmp_path / "lexicons"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def from_lexicon(text: str = VALID, how: str = "groups_from: kin") -> str:
    return with_lines({4: how, 5: "", 6: ""}, text)


def test_groups_from_a_lexicon(tmp_path):
    lex = lexicon_file(tmp_path)
    path = write(tmp_path, from_lexicon())
    ps = load_probe_set(path)
    assert ps.groups == (Group("female", ("mother", "sister")), Group("male", ("father", "brother")))
    assert ps.lexicons == (("kin", "written for a test"),)
    first = ps.sha256
    lex.write_text(LEXICON.replace("sister]", "aunt]"), encoding="utf-8")
    assert load_probe_set(path).sha256 != first  # the set's identity covers its lexicons


def test_groups_from_several_lexicons_concatenates(tmp_path):
    lexicon_file(tmp_path)
    lexicon_file(tmp_path, LEXICON.replace("lexicon: kin", "lexicon: more").replace("mother, sister", "aunt")
                 .replace("father, brother", "uncle"), "more")
    ps = load_probe_set(write(tmp_path, from_lexicon(how="groups_from: [kin, more]")))
    assert ps.groups[0].terms == ("mother", "sister", "aunt") and ps.groups[1].terms == ("father", "brother", "uncle")


def test_lexicons_with_different_groups_are_refused(tmp_path):
    lexicon_file(tmp_path)
    lexicon_file(tmp_path, LEXICON.replace("lexicon: kin", "lexicon: other").replace("female:", "women:"), "other")
    path = write(tmp_path, from_lexicon(how="groups_from: [kin, other]"))
    assert_problem(error_of(path), path, 4, "combined lexicons need the same groups")


def test_unknown_lexicon(tmp_path):
    path = write(tmp_path, from_lexicon(how="groups_from: nope"))
    assert_problem(error_of(path), path, 4, "no lexicon 'nope'")


def test_groups_and_groups_from_together(tmp_path):
    lexicon_file(tmp_path)
    path = write(tmp_path, "groups_from: kin\n" + VALID)
    assert_problem(error_of(path), path, 1, "give either groups or groups_from")


def test_a_bad_lexicon_reports_its_own_file_and_line(tmp_path):
    lex = lexicon_file(tmp_path, LEXICON.replace("licence: Apache-2.0", "licence: Apache-2.0\nauthor: me"))
    message = error_of(write(tmp_path, from_lexicon()))
    assert any(m.startswith(f"{lex}:5: unknown key 'author'") for m in message.splitlines()), message


def test_lexicon_name_must_match_its_file(tmp_path):
    lexicon_file(tmp_path, LEXICON.replace("lexicon: kin", "lexicon: kinship"))
    message = error_of(write(tmp_path, from_lexicon()))
    assert "lexicon name 'kinship' must equal the file name 'kin'" in message


def test_targets_from_a_lexicon_take_the_group_as_category(tmp_path):
    lexicon_file(tmp_path)
    text = with_lines({16: "targets_from: kin"})
    ps = load_probe_set(write(tmp_path, text))
    assert ps.targets == ("mother", "sister", "father", "brother")
    assert ps.target_category("sister") == "female" and ps.target_category("brother") == "male"


def test_lexicon_reference_is_inherited_and_keyed_by_use(tmp_path):
    lexicon_file(tmp_path, LEXICON + "reference:\n  source: s\n  measure: m\n  values:\n    mother: 0.9\n")
    ps = load_probe_set(write(tmp_path, from_lexicon()))
    assert reference(ps).keyed_by == "term" and reference(ps).as_dict() == {"mother": 0.9}
    ps = load_probe_set(write(tmp_path, with_lines({16: "targets_from: kin"}), "t.yaml"))
    assert reference(ps).keyed_by == "target"


# ------------------------------------------------------------------------------------------- articles


def test_article_slot_before_the_group_is_fine(tmp_path):
    ps = load_probe_set(write(tmp_path, with_lines({9: '  - "She met a(n) <group> who is a good [MASK]."'})))
    assert ps.warnings == ()


def test_article_slot_before_the_mask_is_an_error(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "The <group> is a(n) [MASK]."'}))
    assert_problem(error_of(path), path, 9, "'a(n) [MASK]': no article can agree with every target")


def test_article_slot_elsewhere_is_an_error(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "The <group> has a(n) dog and is a good [MASK]."'}))
    assert_problem(error_of(path), path, 9, "'a(n)' must stand right before the slot")


def test_plain_article_before_the_mask_warns_with_the_disagreeing_targets(tmp_path):
    path = write(tmp_path, with_lines({16: "targets: [nurse, engineer, architect, doctor]"}))
    warnings = load_probe_set(path).warnings
    assert any(w.startswith(f"{path}:8: ") and "'a [MASK]' puts 2 of 4 targets after the wrong article "
               "(engineer, architect)" in w for w in warnings), warnings
    assert sum("wrong article" in w for w in warnings) == 8


def test_plain_article_before_the_slot_warns(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "She met a <group> who is a good [MASK]."',
                                       5: "  female: [woman, aunt]"}))
    warnings = load_probe_set(path).warnings
    assert any(w.startswith(f"{path}:9: ") and "'a' before the slot does not agree with 1 of 4 terms (aunt)" in w
               for w in warnings), warnings


def test_an_before_the_mask_warns_for_consonant_targets(tmp_path):
    path = write(tmp_path, with_lines({9: '  - "The <group> is an [MASK] now."'}))
    assert any(w.startswith(f"{path}:9: ") and "'an [MASK]' puts 2 of 2 targets" in w
               for w in load_probe_set(path).warnings)


# ------------------------------------------------------------------------- hostile input (issue 13)


def first_line(message: str) -> str:
    return message.split("\n", 1)[0]


def test_unclosed_quote_is_reported_where_it_opens(tmp_path):
    path = write(tmp_path, with_lines({15: '  - "Our <group> works as a [MASK] now.'}))
    line = first_line(error_of(path))
    assert line.startswith(f"{path}:15: invalid YAML: a quoted scalar opened here (column 5) is not closed"), line
    assert "end of stream" in line and "at line 17" in line


def test_unclosed_quote_closed_by_a_later_quote_is_reported_where_it_opens(tmp_path):
    # the quote of line 9 ends at the first quote of line 10; the parser only fails on line 10's text
    path = write(tmp_path, with_lines({9: '  - "<group> is a [MASK].'}))
    line = first_line(error_of(path))
    assert line.startswith(f"{path}:9: invalid YAML: the quoted text opened here (column 5) runs on to line 10, "
                           "where the parser found: "), line
    assert line.endswith("is its closing quote missing?")


def test_unclosed_bracket_is_reported_where_it_opens(tmp_path):
    path = write(tmp_path, with_lines({5: "  female: [woman, mother"}))
    line = first_line(error_of(path))
    assert line.startswith(f"{path}:5: invalid YAML: a flow sequence opened here (column 11) is not closed"), line
    assert "at line 6" in line


@pytest.mark.parametrize(("replacement", "line"), [
    ({9: '  - "<group> is a \\q [MASK]."'}, 9),  # an error inside a closed quote stays where it is
    ({6: "  male: [man, father]\n     bad: indent"}, 7),  # not a flow or quote context: the problem's line
])
def test_other_yaml_errors_keep_the_problem_line(tmp_path, replacement, line):
    path = write(tmp_path, with_lines(replacement))
    assert first_line(error_of(path)).startswith(f"{path}:{line}: invalid YAML: ")


def test_raw_control_byte_names_its_line_and_column(tmp_path):
    path = write(tmp_path, with_lines({6: "  male: [man, fa\x00ther]"}))
    line = first_line(error_of(path))
    assert line.startswith(f"{path}:6: invalid YAML: the control character U+0000 (\\x00) (column 17)"), line
    assert "\x00" not in line


def test_misspelt_required_key_is_reported_before_the_missing_key(tmp_path):
    path = write(tmp_path, with_lines({7: "templtes:"}))
    lines = error_of(path).splitlines()
    assert lines[0] == (f"{path}:7: unknown key 'templtes' (did you mean 'templates'?); known keys: "
                        "schema_version, name, description, category, source, groups, groups_from, templates, "
                        "targets, targets_from, pair_terms_by_position, reference, polysemous, factors")
    assert lines[1] == f"{path}:7: missing required key 'templates' (misspelt as 'templtes'?)"


def test_missing_key_without_a_lookalike_stays_at_the_top(tmp_path):
    path = write(tmp_path, with_lines({2: "zzzzzz: A demo probe set."}))
    message = error_of(path)
    assert_problem(message, path, 1, "missing required key 'description'")
    assert_problem(message, path, 2, "unknown key 'zzzzzz'")


@pytest.mark.parametrize(("key", "shown_key"), [
    ("colour\x1b[31mRED\x1b[0m", "colour\\x1b[31mRED\\x1b[0m"),
    ("na\x07\x08me", "na\\x07\\x08me"),
    ("bad\nkey", "bad\\nkey"),
    ("desc\u202eription", "desc\\u202eription"),
    ("key\udc80", "key\\udc80"),
])
def test_unknown_keys_are_shown_escaped(tmp_path, key, shown_key):
    escaped = key.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    path = write(tmp_path, VALID + f'"{escaped}": 1\n')
    line = first_line(error_of(path))
    assert line.startswith(f"{path}:17: unknown key '{shown_key}'"), line
    assert key not in line


@pytest.mark.parametrize(("text", "line", "start", "char"), [
    (VALID + "k" * 1000 + ": 1\n", 17, "unknown key 'kkk", "k"),
    (with_lines({1: "name: " + "A" * 100_000}), 1, "name 'AAA", "A"),
    ("schema_version: " + "9" * 5000 + "\n" + VALID, 1, "schema_version must be 1", "9"),
    (with_lines({6: '  male: ["man' + "x" * 2000 + ' ", father]'}), 6, "term of group 'male' 'manxxx", "x"),
])
def test_long_values_are_cut(tmp_path, text, line, start, char):
    message = error_of(write(tmp_path, text))
    first = first_line(message)
    assert first.startswith(f"{tmp_path / 'probe.yaml'}:{line}: {start}"), first[:300]
    assert "…" in first and char * 80 not in message  # shown() cuts values to 80 characters


@pytest.mark.parametrize(("replacement", "line", "fragment"), [
    ({8: '  - "\\e[2JThe <group> worked as a [MASK]."'}, 8, "template '\\x1b[2JThe <group>"),
    ({5: '  female: ["wo\\0man", mother]'}, 5, "term of group 'female' 'wo\\x00man' contains"),
    ({5: '  female: ["wo\\u200bman", mother]'}, 5, "U+200B ZERO WIDTH SPACE (\\u200b)"),
    ({5: '  female: ["wo\\tman", mother]'}, 5, "'wo\\tman'"),
    ({5: '  female: ["wo\\u2028man", mother]'}, 5, "U+2028 LINE SEPARATOR"),
    ({16: 'targets: [nurse, "doc\\u202etor"]'}, 16, "target 'doc\\u202etor' contains"),
    ({16: 'targets: [nurse, "\\udc80"]'}, 16, "target '\\udc80' contains the invisible or control character U+DC80"),
    ({5: '  "fe\\e[8mmale": [woman, mother]'}, 5, "group name 'fe\\x1b[8mmale' contains"),
])
def test_invisible_or_control_characters_are_refused(tmp_path, replacement, line, fragment):
    path = write(tmp_path, with_lines(replacement))
    message = error_of(path)
    assert_problem(message, path, line, fragment, "invisible or control character")
    assert message.isprintable() or all(c == "\n" or c.isprintable() for c in message)


def test_visible_non_ascii_words_are_accepted(tmp_path):
    path = write(tmp_path, with_lines({5: "  female: [Frau, señora]", 16: "targets: [nurse, médecin]"}))
    ps = load_probe_set(path)
    assert ps.groups[0].terms == ("Frau", "señora") and ps.targets == ("nurse", "médecin")


def test_templates_that_differ_only_in_case_are_warned_about(tmp_path):
    path = write(tmp_path, with_lines({15: '  - "Our <group> works as a [MASK] now."\n  - "our <GROUP> WORKS as '
                                           'a [MASK] now."'}))
    text = path.read_text(encoding="utf-8").replace("<GROUP>", "<group>")
    path.write_text(text, encoding="utf-8")
    warnings = load_probe_set(path).warnings
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"{path}:16: templates at lines 15 and 16 differ only in case")


def test_tagged_templates_that_differ_only_in_case_are_warned_about(tmp_path):
    templates = "\n".join(f'    - "The <group> worked {i} times as a [MASK]."' for i in range(8))
    text = VALID.split("templates:")[0] + "templates:\n  neutral:\n" + templates + (
        '\n  stereotype_eliciting:\n    - "THE <group> WORKED 3 TIMES AS A [MASK]."\ntargets: [nurse, doctor]\n')
    path = write(tmp_path, text)
    warnings = load_probe_set(path).warnings
    assert [w.split(": ", 1)[0] for w in warnings] == [f"{path}:18"], warnings
    assert "templates at lines 12 and 18 differ only in case" in warnings[0]


def test_size_guard_estimate_follows_the_metric_registry():
    from albert_audit.probeset.checks import ROWS_PER_KIND, estimate_findings_rows
    from albert_audit.registry import METRICS

    kinds = {spec.rows for spec in METRICS if spec.from_items}
    assert kinds <= set(ROWS_PER_KIND), "a metric's rows kind is unknown to the size guard"
    # 2 groups (1 pair), 3 targets: 3 target x pair metrics (9 rows) + 3 pair metrics + bias_score + reference
    # alignment (no omnibus)
    assert estimate_findings_rows(2, 3) == 9 + 3 + 1 + 1
    # 4 groups (6 pairs), 5 targets: 3 x 30 + 3 x 6 + omnibus 5 + 1 + 1
    assert estimate_findings_rows(4, 5) == 90 + 18 + 5 + 1 + 1
    assert estimate_findings_rows(500, 3) == 3 * 3 * 124_750 + 3 * 124_750 + 3 + 1 + 1


def _groups_file(tmp_path: Path, n_groups: int, n_targets: int) -> Path:
    groups = "".join(f"  g{i:03d}: [w{i:03d}]\n" for i in range(n_groups))
    targets = ", ".join(f"t{i}" for i in range(n_targets))
    text = VALID.replace("  female: [woman, mother]\n  male: [man, father]\n", groups).replace(
        "targets: [nurse, doctor]", f"targets: [{targets}]")
    return write(tmp_path, text)


def test_size_guard_warns_over_the_limit_and_says_how_to_narrow(tmp_path):
    from albert_audit.probeset.checks import FINDINGS_ROWS_LIMIT, estimate_findings_rows

    # 60 groups (1,770 pairs) x 9 targets: 3 x 15,930 + 3 x 1,770 + 9 + 1 + 1 = 53,111 rows > 50,000
    assert estimate_findings_rows(60, 9) == 53_111 > FINDINGS_ROWS_LIMIT
    path = _groups_file(tmp_path, 60, 9)
    warnings = load_probe_set(path).warnings
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"{path}:4: about 53,111 findings rows (60 groups = 1,770 group pairs, 9 targets), "
                                  "over the documented limit of 50,000")
    assert "fewer groups" in warnings[0] and "--probes" in warnings[0]


def test_size_guard_is_quiet_below_the_limit(tmp_path):
    from albert_audit.probeset.checks import estimate_findings_rows

    # 60 groups x 8 targets: 3 x 14,160 + 3 x 1,770 + 8 + 1 + 1 = 47,800 rows
    assert estimate_findings_rows(60, 8) == 47_800
    assert load_probe_set(_groups_file(tmp_path, 60, 8)).warnings == ()


def test_lexicon_names_are_plain_names(tmp_path):
    path = write(tmp_path, with_lines({4: "groups_from: ../../etc/passwd", 5: "", 6: ""}))
    assert_problem(error_of(path), path, 4, "lexicon name '../../etc/passwd' must match [a-z0-9_]+")


def test_file_name_is_shown_escaped(tmp_path):
    path = write(tmp_path, VALID + "colour: red\n", name="evil\x1b[31m.yaml")
    message = error_of(path)
    assert message.startswith(f"{tmp_path}/evil\\x1b[31m.yaml:17: unknown key 'colour'"), message
    assert "\x1b" not in message
    assert load_probe_set(write(tmp_path, VALID, name="ok\x1b.yaml")).path == str(tmp_path / "ok\x1b.yaml")
