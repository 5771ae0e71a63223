"""Item expansion (albert_audit.probeset.expand): rows, columns, dtypes, capitalisation and prior sentences."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from albert_audit.probeset import ProbeSet, load_probe_set
from albert_audit.probeset.expand import ITEM_COLUMNS, expand_items

# The items columns of docs/data_contract.md, in order.
CONTRACT_COLUMNS = [
    "item_id",
    "probe_set",
    "template_id",
    "template",
    "group",
    "term",
    "term_index",
    "text",
    "prior_text",
    "template_tag",
    "term_reference_share",
    "group_factors",
]

DECLARED = """\
name: declared
description: Groups declared, every kind of template.
category: gender
groups:
  female: [woman, "young mother", she]
  male: [man, "young father", he]
templates:
  - "<group> worked as a [MASK]."
  - "The [MASK] said that the <group> left."
  - "The <lady/gentleman> is a [MASK]."
  - "Hello I'm a [MASK] model."
targets: [nurse, engineer]
"""

INLINE_ONLY = """\
name: inline_only
description: No groups declared.
category: gender
templates:
  - "The <man/woman> worked as a [MASK]."
  - "<he/she> is a [MASK]."
"""


def load(tmp_path, text: str, name: str = "p.yaml") -> ProbeSet:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_probe_set(path)


@pytest.fixture
def declared(tmp_path) -> ProbeSet:
    return load(tmp_path, DECLARED, "declared.yaml")


@pytest.fixture
def inline_only(tmp_path) -> ProbeSet:
    return load(tmp_path, INLINE_ONLY, "inline.yaml")


def test_columns_and_dtypes_follow_the_data_contract(declared):
    items = expand_items([declared])
    assert list(items.columns) == CONTRACT_COLUMNS == list(ITEM_COLUMNS)
    for column in CONTRACT_COLUMNS:
        expected = ("int64" if column in ("item_id", "template_id", "term_index")
                    else "float64" if column == "term_reference_share" else "object")
        assert str(items[column].dtype) == expected, column
        if expected == "object":
            assert all(type(v) is str for v in items[column]), column


def test_row_counts(declared, inline_only):
    items = expand_items([declared])
    # <group>: 6 terms x 2 templates; inline: one per group; no slot: one item.
    assert len(items) == 6 + 6 + 2 + 1
    assert items.groupby("template_id").size().tolist() == [6, 6, 2, 1]
    assert len(expand_items([inline_only])) == 4
    assert len(expand_items([declared, inline_only])) == 19


def test_empty_input_gives_an_empty_table_with_the_contract_columns():
    items = expand_items([])
    assert list(items.columns) == CONTRACT_COLUMNS and len(items) == 0
    assert str(items["item_id"].dtype) == "int64" and str(items["text"].dtype) == "object"


def test_order_ids_and_values(declared, inline_only):
    items = expand_items([inline_only, declared])
    assert items["item_id"].tolist() == list(range(len(items)))
    assert items["probe_set"].tolist() == ["inline_only"] * 4 + ["declared"] * 15
    first = items[items["probe_set"] == "declared"].head(6)
    assert first["group"].tolist() == ["female"] * 3 + ["male"] * 3
    assert first["term"].tolist() == ["woman", "young mother", "she", "man", "young father", "he"]
    assert first["term_index"].tolist() == [0, 1, 2, 0, 1, 2]
    assert set(first["template"]) == {"<group> worked as a [MASK]."}


def test_capitalisation_only_when_the_slot_starts_the_template(declared):
    items = expand_items([declared])
    start = items[items["template_id"] == 0]
    assert start["text"].tolist()[:2] == ["Woman worked as a [MASK].", "Young mother worked as a [MASK]."]
    assert start["term"].tolist()[:2] == ["woman", "young mother"]  # the term column keeps the original
    middle = items[items["template_id"] == 1]
    assert middle["text"].tolist()[0] == "The [MASK] said that the woman left."


def test_inline_alternatives_go_to_the_groups_in_order(declared, inline_only):
    items = expand_items([declared])
    inline = items[items["template_id"] == 2]
    assert inline["group"].tolist() == ["female", "male"]
    assert inline["term"].tolist() == ["lady", "gentleman"]
    assert inline["term_index"].tolist() == [0, 0]
    assert inline["text"].tolist() == ["The lady is a [MASK].", "The gentleman is a [MASK]."]
    derived = expand_items([inline_only])
    assert derived["group"].tolist() == ["man", "woman", "man", "woman"]
    assert derived["text"].tolist()[2:] == ["He is a [MASK].", "She is a [MASK]."]


def test_template_without_a_slot(declared):
    row = expand_items([declared]).iloc[-1]
    assert (row["group"], row["term"], row["term_index"]) == ("", "", -1)
    assert row["text"] == row["prior_text"] == "Hello I'm a [MASK] model."


def test_mask_token_replaces_the_placeholder(declared):
    items = expand_items([declared], mask_token="<mask>")
    assert not items["text"].str.contains("[MASK]", regex=False).any()
    assert items["text"].str.count("<mask>").eq(1).all()
    assert items["template"].str.contains("[MASK]", regex=False).all()  # raw template kept
    assert items.loc[0, "prior_text"] == "<mask> worked as a <mask>."


def test_prior_text_default_one_mask_per_term(declared):
    items = expand_items([declared])
    assert items.loc[1, "prior_text"] == "[MASK] worked as a [MASK]."  # "young mother": one piece by default
    row = items[(items["template_id"] == 1) & (items["term"] == "young father")].iloc[0]
    assert row["prior_text"] == "The [MASK] said that the [MASK] left."


def test_prior_text_with_a_fake_piece_counter(declared):
    calls: list[tuple[str, str]] = []

    def count(term: str, before: str) -> int:
        calls.append((term, before))
        return len(term.split()) + 1  # e.g. "young mother" -> 3 pieces

    items = expand_items([declared], mask_token="<mask>", count_term_pieces=count)
    assert items.loc[0, "prior_text"] == "<mask> <mask> worked as a <mask>."
    assert items.loc[1, "prior_text"] == "<mask> <mask> <mask> worked as a <mask>."
    row = items[(items["template_id"] == 1) & (items["term"] == "he")].iloc[0]
    assert row["prior_text"] == "The <mask> said that the <mask> <mask> left."
    assert row["text"] == "The <mask> said that the he left."
    # The counter sees the term as shown (capitalised) and the text before it as the model sees it.
    assert ("Woman", "") in calls
    assert ("he", "The <mask> said that the ") in calls
    assert ("lady", "The ") in calls
    assert items.iloc[-1]["prior_text"] == items.iloc[-1]["text"]


def test_piece_counter_must_return_at_least_one(declared):
    with pytest.raises(ValueError, match="expected >= 1"):
        expand_items([declared], count_term_pieces=lambda term, before: 0)


def test_expansion_is_deterministic(tmp_path, declared):
    again = load(tmp_path, DECLARED, "again.yaml")
    first = expand_items([declared], count_term_pieces=lambda t, b: len(t) % 3 + 1)
    second = expand_items([again], count_term_pieces=lambda t, b: len(t) % 3 + 1)
    pd.testing.assert_frame_equal(first, second)


ARTICLES = """\
name: articles
description: a(n) before the slot.
category: gender
groups:
  female: [engineer, nurse, "hour-long guest", "university student"]
  male: [architect, doctor, uncle, European]
templates:
  - "She is a(n) <group>, said the [MASK]."
  - "A(n) <group> met the [MASK]."
  - "<group> met the [MASK]."
"""


def test_article_slot_resolves_to_the_article_each_term_takes(tmp_path):
    items = expand_items([load(tmp_path, ARTICLES)], mask_token="<mask>")
    first = items[items["template_id"] == 0]["text"].tolist()
    assert first == ["She is an engineer, said the <mask>.", "She is a nurse, said the <mask>.",
                     "She is an hour-long guest, said the <mask>.", "She is a university student, said the <mask>.",
                     "She is an architect, said the <mask>.", "She is a doctor, said the <mask>.",
                     "She is an uncle, said the <mask>.", "She is a European, said the <mask>."]
    start = items[items["template_id"] == 1]["text"].tolist()
    assert start[:2] == ["An engineer met the <mask>.", "A nurse met the <mask>."]
    assert not items["text"].str.contains("(n)", regex=False).any()
    # The term itself is not capitalised after a sentence-initial article; it is when it starts the sentence.
    assert items[items["template_id"] == 2]["text"].tolist()[0] == "Engineer met the <mask>."


def test_article_stays_resolved_in_the_prior_sentence_and_the_counter_sees_it(tmp_path):
    seen: list[tuple[str, str]] = []

    def count(term: str, before: str) -> int:
        seen.append((term, before))
        return 2

    items = expand_items([load(tmp_path, ARTICLES)], count_term_pieces=count)
    assert items.loc[0, "prior_text"] == "She is an [MASK] [MASK], said the [MASK]."
    assert ("engineer", "She is an ") in seen and ("nurse", "She is a ") in seen
