"""Random-weight ALBERT models with a real SentencePiece-style (Unigram) tokenizer, built locally.

Test support, not part of the installed package: used by the tests and by bench/throughput.py (which puts
the repository root on sys.path), since neither can download albert-large-v2. The tokenizer is the
transformers AlbertTokenizer (Unigram model, lower-casing, Metaspace "▁" pieces) over a vocabulary made
here: whole-word pieces for the given words, a few sub-word pieces, and single letters so that any
lower-case word tokenizes without <unk> (unknown words split into several pieces).
"""

from __future__ import annotations

import re
from pathlib import Path

SPECIAL_TOKENS = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
BASE_WORDS = (
    "the a an is was as of to and in he she his her man woman boy girl mother father worked works "
    "hello i'm model person people are were very my our their this that who with for at good bad"
).split()
SUBWORDS = ["maid", "ess", "ing", "er", "ist", "ian", "s", "ed", "ly"]
PUNCTUATION = [".", ",", "'", "!", "?", "-", ":", ";", '"', "(", ")"]


def toy_vocabulary(words: list[str] | tuple[str, ...] = (), *, size: int | None = None) -> list[tuple[str, float]]:
    """A Unigram (piece, score) list: specials, whole words, sub-words, letters, padded to `size`."""
    vocab: list[tuple[str, float]] = [(tok, 0.0) for tok in SPECIAL_TOKENS]
    seen = set(SPECIAL_TOKENS)

    def add(piece: str, score: float) -> None:
        if piece not in seen:
            seen.add(piece)
            vocab.append((piece, score))

    for word in list(BASE_WORDS) + [w.lower() for w in words]:
        for part in re.findall(r"[a-z']+", word.lower()):
            add("▁" + part, -5.0)
    for piece in SUBWORDS:
        add(piece, -7.0)
    for mark in PUNCTUATION:
        add(mark, -6.0)
        add("▁" + mark, -6.5)
    add("▁", -8.0)
    for letter in "abcdefghijklmnopqrstuvwxyz0123456789":
        add(letter, -10.0)
        add("▁" + letter, -10.0)
    if size is not None:
        n = 0
        while len(vocab) < size:
            add(f"▁zz{n:05d}", -12.0)
            n += 1
    return vocab


def build_toy_albert(folder: str | Path, *, words: list[str] | tuple[str, ...] = (), seed: int = 0,
                     embedding_size: int = 16, hidden_size: int = 32, num_layers: int = 2, num_heads: int = 2,
                     intermediate_size: int = 64, vocab_size: int | None = None, max_positions: int = 128,
                     dropout: float = 0.0, architecture: str = "masked_lm") -> Path:
    """Write a random-weight ALBERT (MLM head by default) and its tokenizer to `folder`; return it.

    architecture: "masked_lm" (AlbertForMaskedLM) or "sequence_classification" (a head-less descendant).
    """
    import torch
    from transformers import AlbertConfig, AlbertForMaskedLM, AlbertForSequenceClassification, AlbertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = toy_vocabulary(words, size=vocab_size)
    tokenizer = AlbertTokenizer(vocab=vocab, unk_id=1)
    config = AlbertConfig(
        vocab_size=len(vocab), embedding_size=embedding_size, hidden_size=hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, intermediate_size=intermediate_size,
        max_position_embeddings=max_positions, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout, classifier_dropout_prob=dropout, pad_token_id=0,
        bos_token_id=2, eos_token_id=3,
    )
    torch.manual_seed(seed)
    model_class = {"masked_lm": AlbertForMaskedLM,
                   "sequence_classification": AlbertForSequenceClassification}[architecture]
    model = model_class(config)
    if architecture == "masked_lm":
        with torch.no_grad():  # a non-zero output bias makes fills less uniform, as in a trained model
            model.predictions.bias.normal_(0.0, 1.0)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
