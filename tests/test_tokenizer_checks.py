"""Tokenizer-dependent checks (albert_audit.probeset.tokenizer_checks) on a SentencePiece tokenizer built here."""

from __future__ import annotations

import textwrap

import pytest

from albert_audit.probeset import load_probe_set
from albert_audit.probeset.tokenizer_checks import (
    first_piece_function_word,
    function_word_warnings,
    piece_count_warnings,
    tokenizer_warnings,
)


@pytest.fixture(scope="module")
def tokenize():
    """The toy ALBERT tokenizer (Unigram, "▁" word starts) knowing a few whole words."""
    from transformers import AlbertTokenizer

    from tests.toy_models import toy_vocabulary

    tokenizer = AlbertTokenizer(vocab=toy_vocabulary(["gay", "straight", "lesbian", "happy", "kind", "woman",
                                                      "man", "girl", "boy"]), unk_id=1)
    return lambda word: tokenizer.tokenize(" " + word)


def probe(tmp_path, groups: str, pair: bool = False):
    templates = "".join(f'  - "The <group> person is [MASK] {i}."\n' for i in range(8))
    body = textwrap.indent(groups, "  ")
    text = (f"name: t\ndescription: d\ncategory: c\ngroups:\n{body}\ntemplates:\n{templates}"
            f"targets: [happy, kind]\npair_terms_by_position: {str(pair).lower()}\n")
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    return load_probe_set(path)


def test_asexual_splits_after_the_article(tokenize):
    # The toy vocabulary has "▁as" and "▁a" (ALBERT's splits it "▁a|sexual"); either is a function word.
    pieces = tokenize("asexual")
    assert pieces[0] in ("▁a", "▁as") and len(pieces) > 1
    assert first_piece_function_word("asexual", tokenize) == pieces[0][1:]
    assert first_piece_function_word("gay", tokenize) is None  # one piece
    assert first_piece_function_word("bisexual", tokenize) is None  # "▁b" is not a function word


def test_function_word_warning_names_the_word_and_its_pieces(tmp_path, tokenize):
    ps = probe(tmp_path, "a: [gay, asexual]\nb: [straight, lesbian]")
    warnings = function_word_warnings(ps, tokenize)
    assert len(warnings) == 1 and "'asexual' splits into ▁a" in warnings[0] and "function word 'a" in warnings[0]
    assert warnings[0].startswith(f"{ps.path}: ")


def test_paired_counterparts_with_different_piece_counts(tmp_path, tokenize):
    ps = probe(tmp_path, "f: [woman, girl]\nm: [man, boyish]", pair=True)
    warnings = piece_count_warnings(ps, lambda w: len(tokenize(w)))
    assert len(warnings) == 1 and "'girl' 1" in warnings[0] and "'boyish'" in warnings[0]


def test_unpaired_groups_compared_by_mean_pieces(tmp_path, tokenize):
    ps = probe(tmp_path, "short: [gay, straight]\nlong: [homophile, heteroflexible]")
    assert "groups differ in mean piece count" in piece_count_warnings(ps, lambda w: len(tokenize(w)))[0]
    matched = probe(tmp_path, "x: [gay, straight]\ny: [lesbian, happy]")
    assert piece_count_warnings(matched, lambda w: len(tokenize(w))) == []


def test_tokenizer_warnings_combines_both(tmp_path, tokenize):
    ps = probe(tmp_path, "f: [woman, asexual]\nm: [man, boy]", pair=True)
    warnings = tokenizer_warnings(ps, tokenize=tokenize)
    assert any("counterpart terms" in w for w in warnings) and any("function word" in w for w in warnings)


@pytest.mark.parametrize(("pieces", "expected"), [
    (["▁a", "sexual"], "a"),        # albert-large-v2's split
    (["Ġthe", "ater"], "the"),      # byte-level BPE word start
    (["an", "##archist"], "an"),    # WordPiece
    (["▁as", "exual"], "as"),
    (["▁bi", "sexual"], None),
    (["▁", "a"], None),             # a lone word-start marker is not a piece of the word
])
def test_first_piece_function_word_on_fixed_splits(pieces, expected):
    assert first_piece_function_word("w", lambda word: pieces) == expected
