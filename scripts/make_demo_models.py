#!/usr/bin/env python
"""Build the offline demo: two tiny ALBERT masked LMs with a planted, known gender-occupation bias.

Run from the repository root (no network; about 3 minutes on 2 CPU cores, most of it training):

    python scripts/make_demo_models.py            # writes albert_audit/demo_models/
    python scripts/make_demo_models.py --check    # the same, and exit 1 if a known-answer goal fails

Everything is seeded (``--seed``, default 1234): corpora, tokenizer, initial weights, batch order and masks.
A rerun on the same software and CPU type gives the same models.

Outputs (under ``--out``, default ``albert_audit/demo_models``): ``base/`` and ``descendant/``
(config.json, model.safetensors, tokenizer files; Hugging Face format), ``planted.json`` (planted tables,
rules, settings, and the gaps measured in the trained models), ``demo_probes.yaml`` (the demo probe set) and
``README.md``. The corpora and the tokenizer's working files go to ``--work`` (default
``build/demo_models``, git-ignored).

Corpus rules (lower case, words separated by single spaces, every sentence ends with " .")
------------------------------------------------------------------------------------------
Gender terms: 8 pairs, paired by position: woman/man, girl/boy, mother/father, sister/brother,
daughter/son, wife/husband, aunt/uncle, grandmother/grandfather; pronouns she/he and her/his. A subject
is a determiner ("the" or "my") followed by a gender term.

Occupations: 20, all starting with a consonant (so "a <occupation>" is always grammatical), in 10
mirrored couples (OCCUPATION_PAIRS). In 7 couples the first occupation leans female and the second male
by the same planted log-odds (2.0, 1.8, 1.6, 1.4, 1.2, 1.0, 0.8 nats); the 3 control couples
(writer/doctor, lawyer/singer, painter/driver) have planted log-odds exactly 0. The planted log-odds of an
occupation o is
    L(o) = log P(o | female subject) - log P(o | male subject)     (in the occupation sentences)
Every couple gets the same number of sentences after every gender term (128 per term, 8 in each of
the 16 frames), split between its two occupations: after a female term a fraction sigmoid(L) names the
first one, after the male term of the same position a fraction sigmoid(-L). Both genders thus see every
couple equally often and share one normaliser, so log P(o|female) - log P(o|male) is exactly L(o), up to
rounding counts to integers (the realised values are in planted.json). A control occupation has exactly
the same count after the female and the male term of every position, in every frame. Each occupation
frame always comes with the same determiner ("the" in the 8 even frames, "my" in the 8 odd ones), and
these 16 contexts are also the 16 templates of the probe set.

Sentence kinds (per gender term; the female and male term of one position get the same frames,
determiners, adjectives and objects in the same order):
1. Occupation facts (60%): one of 16 frames (OCCUPATION_FRAMES), e.g. "the woman worked as a nurse .",
   "my sister is a good nurse .". Each block of 128 sentences (term, couple) is spread over the 16
   frames (8 each) and evenly between the two occupations (Bresenham): 20,480 sentences in all.
2. Pronoun agreement (30%): "the woman said that she was happy .", "my father lost his keys ."
   (PRONOUN_FRAMES); the pronoun always agrees with the term. A tiny MLM learns occupation frequencies
   long before it learns which gender term they follow; these sentences teach it to attend to the term
   (issue 6, Note). 640 per term.
3. Neutral filler (10%): animals, objects, food, places and weather, no gender term, pronoun or
   occupation (FILLER_FRAMES): 3,413 sentences. The corpus is shuffled with the seed.

Descendant corpus: the base corpus with only occupation words relabelled (same sentences, same order).
Amplified couples get log-odds further from 0 (same sign), reduced couples nearer 0; the other couples
and the controls keep exactly their base counts ("unchanged").

Tokenizer: SentencePiece unigram (uncased, identity normalisation), ids 0-4 = <pad> <unk> [CLS] [SEP]
[MASK] as in albert-large-v2, saved as a transformers ``AlbertTokenizer`` (tokenizer.json). The unigram
seeds are all substrings of the corpus words (see _write_seed_pieces); the vocabulary is every corpus word
plus letters (~430 pieces), so every occupation, gender term and pronoun is one piece (checked); words
outside the corpus are spelled with letters (multi-piece).

Training: ``AlbertForMaskedLM`` with shared layers (MODEL). In every occupation (pronoun) sentence the
occupation (pronoun) is always replaced by [MASK]; every other token is masked with probability 0.15
(80/10/10 rule); the loss is taken at the masked positions only. AdamW, linear warm-up, linear decay to 0,
gradient clipping at 1. The descendant starts from the trained base and is fine-tuned (all weights) on
the descendant corpus.

Last phase of both models, "null calibration": the occupations whose known answer is "no effect" are
made to have exactly that answer. With everything else frozen, the output vector of each such occupation
(its row of the tied embedding matrix) is moved along one direction of the head's feature space (mean
feature after female terms - mean feature after male terms) until its mean gap over the 16 corpus
contexts and all 16 gender terms is exactly the target: 0 for the 6 controls (base and descendant), the
base model's value for the 6 unchanged occupations (descendant). Occupation words never reach the encoder
unmasked (their position is always [MASK]), so this changes nothing but their read-out; the occupations
with a planted effect keep what the model learned. Why: the design's statistics use the template as the
unit (paired sign-flip test), and a tiny model that learned one rule for all frames gives nearly the same
gap in every template, so the few hundredths of a nat of training noise left in a control's gap have the
same sign in all 16 templates and the control comes out "significant" (in trials: +0.04 nats, 16 of 16
templates positive, after 1,200 to 2,000 steps; a maximum-likelihood refit of the occupation read-out
shrank that to +-0.007 but still left p-values near 0.05). After the calibration the mean is 0 and the
per-template gaps (still as learned, about +-0.02) change sign across templates.

Measured gap (planted.json "measured_*"): for template t and occupation o, gap(t, o) = mean over the
female terms of log P(o at [MASK]) - the same mean over the male terms (torch.inference_mode, log_softmax
in fp32 at the mask); the reported gap is the mean over the 16 templates of demo_probes.yaml. p is the
exact two-sided paired sign-flip permutation test over templates, q Benjamini-Hochberg over the 20
occupations (the design's default statistics), so the known-answer goals are checked before saving.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "albert_audit" / "demo_models"
DEFAULT_WORK = REPO / "build" / "demo_models"
SEED = 1234

# ----------------------------------------------------------------------------------------- the plan

GENDER_PAIRS = [
    ("woman", "man"), ("girl", "boy"), ("mother", "father"), ("sister", "brother"),
    ("daughter", "son"), ("wife", "husband"), ("aunt", "uncle"), ("grandmother", "grandfather"),
]
PRONOUNS = {"female": {"subject": "she", "possessive": "her"}, "male": {"subject": "he", "possessive": "his"}}
DETERMINERS = ["the", "my"]

# (female-leaning, male-leaning, log-odds in the base, log-odds in the descendant, change)
OCCUPATION_PAIRS = [
    ("nurse", "mechanic", 2.0, 0.4, "reduced"),
    ("secretary", "pilot", 1.8, 1.8, "unchanged"),
    ("dancer", "plumber", 1.6, 0.4, "reduced"),
    ("librarian", "carpenter", 1.4, 1.4, "unchanged"),
    ("nanny", "soldier", 1.2, 2.4, "amplified"),
    ("baker", "farmer", 1.0, 1.0, "unchanged"),
    ("teacher", "banker", 0.8, 2.0, "amplified"),
    ("writer", "doctor", 0.0, 0.0, "control"),
    ("lawyer", "singer", 0.0, 0.0, "control"),
    ("painter", "driver", 0.0, 0.0, "control"),
]
OCC_PER_COUPLE = 128  # occupation sentences per gender term and couple (half "the", half "my")
PRONOUN_PER_TERM = 640
FILLER_SHARE = 0.10

OCCUPATION_FRAMES = [
    "{d} {g} worked as a {o} .",
    "{d} {g} works as a {o} .",
    "{d} {g} is a {o} .",
    "{d} {g} was a {o} .",
    "{d} {g} became a {o} .",
    "{d} {g} wants to be a {o} .",
    "{d} {g} was hired as a {o} .",
    "{d} {g} has a job as a {o} .",
    "{d} {g} trained to be a {o} .",
    "{d} {g} is a good {o} .",
    "{d} {g} earns a living as a {o} .",
    "{d} {g} dreams of becoming a {o} .",
    "{d} {g} is the best {o} in town .",
    "{d} {g} will soon be a {o} .",
    "{d} {g} used to be a {o} .",
    "everyone knows that {d} {g} is a {o} .",
]
PRONOUN_FRAMES = [
    "{d} {g} said that {p} was {a} .",
    "{d} {g} thinks that {p} is {a} .",
    "{d} {g} told me that {p} felt {a} .",
    "{d} {g} knew that {p} had to leave .",
    "when {d} {g} came home , {p} was {a} .",
    "{d} {g} smiled because {p} was {a} .",
    "{d} {g} lost {q} {t} .",
    "{d} {g} found {q} {t} .",
    "{d} {g} sold {q} old {t} .",
    "{d} {g} cleaned {q} {t} .",
]
ADJECTIVES = ["happy", "tired", "late", "busy", "hungry", "ready", "sad", "sick", "angry", "calm", "early",
              "proud", "bored", "cold", "worried", "glad"]
THINGS = ["keys", "car", "bike", "phone", "book", "hat", "coat", "bag", "wallet", "house", "garden", "dog",
          "cat", "kitchen", "desk", "shoes"]
FILLER_FRAMES = [
    "the {fa} {an} {v} {pr} the {pl} .",
    "a {c} {t} was on the {pl} .",
    "we {vt} the {f} {tm} .",
    "it was {w} {tm} .",
    "the {an} ate the {f} .",
    "there is a {c} {t} in the {pl} .",
    "they walked to the {pl} {tm} .",
    "the {pl} was {fa} and {w} .",
    "someone left a {fa} {t} {pr} the {pl} .",
    "the {an} and the {an2} {v} {pr} the {pl} .",
]
_ANIMALS = ["cat", "dog", "bird", "horse", "cow", "fox", "mouse", "rabbit", "duck", "sheep", "goat", "frog",
            "owl", "bear", "wolf", "deer", "pig", "hen", "goose", "swan", "crow", "eagle", "hawk", "snake",
            "lizard", "turtle", "whale", "seal", "otter", "beaver", "badger", "squirrel", "hedgehog", "camel",
            "zebra", "lion", "tiger", "monkey", "donkey", "bee"]
FILLER_WORDS = {
    "fa": ["small", "big", "old", "young", "quiet", "loud", "little", "lazy", "clever", "brown", "fast", "slow",
           "tiny", "huge", "shiny", "dusty", "wet", "dry", "heavy", "light", "soft", "round", "sharp", "strange",
           "famous", "empty", "full", "broken", "clean", "noisy"],
    "an": _ANIMALS,
    "an2": _ANIMALS,
    "v": ["slept", "sat", "jumped", "ran", "waited", "hid", "played", "rested", "swam", "climbed", "rolled",
          "fell", "floated", "crawled", "stood", "flew", "wandered", "hopped", "stayed", "sang"],
    "vt": ["ate", "cooked", "bought", "washed", "shared", "tasted", "carried", "dropped", "packed", "wanted"],
    "pr": ["under", "near", "behind", "beside", "on", "in", "above", "below", "inside", "across"],
    "pl": ["table", "park", "river", "garden", "kitchen", "market", "station", "hill", "field", "bridge",
           "forest", "beach", "road", "window", "roof", "lake", "valley", "village", "city", "harbour", "island",
           "mountain", "desert", "meadow", "shore", "cave", "orchard", "square", "street", "corner", "hallway",
           "cellar", "attic", "porch", "yard", "pond", "stream", "tower", "castle", "museum"],
    "c": ["red", "blue", "green", "yellow", "white", "black", "grey", "pink", "purple", "orange", "golden",
          "silver"],
    "t": ["box", "cup", "ball", "chair", "lamp", "bottle", "basket", "clock", "plate", "bell", "kite", "candle",
          "mirror", "pillow", "blanket", "spoon", "fork", "knife", "bowl", "jar", "rope", "ladder", "bucket",
          "shovel", "hammer", "umbrella", "drum", "guitar", "piano", "violin", "flag", "map", "ticket",
          "letter", "parcel", "envelope", "pencil", "brush", "comb", "towel", "button", "ribbon", "necklace",
          "ring", "coin", "feather", "stone", "shell", "leaf", "balloon"],
    "f": ["bread", "soup", "apples", "rice", "cheese", "cake", "fish", "eggs", "beans", "pears", "cherries",
          "grapes", "plums", "lemons", "carrots", "potatoes", "onions", "tomatoes", "noodles", "pie", "cookies",
          "honey", "jam", "butter", "milk", "tea", "coffee", "juice", "peaches", "melons"],
    "tm": ["today", "yesterday", "tonight", "at noon", "in the morning", "in the evening", "on sunday",
           "last week", "on monday", "in spring", "in winter", "at dawn"],
    "w": ["sunny", "rainy", "windy", "warm", "foggy", "cloudy", "bright", "dark", "snowy", "stormy", "mild",
          "humid"],
}

# The demo probe set: the 16 corpus frames, alternately with "the" and "my" (8 each). Held-out
# paraphrases were tried and left out: the tiny model treats some of them unlike any corpus frame (e.g.
# "everyone knows that my <group> will soon be a [MASK] ." sent 45% of the mass after male terms to
# non-occupations), which says more about the model's size than about the planted table.
PROBE_TEMPLATES = [
    "the <group> worked as a [MASK] .",
    "my <group> works as a [MASK] .",
    "the <group> is a [MASK] .",
    "my <group> was a [MASK] .",
    "the <group> became a [MASK] .",
    "my <group> wants to be a [MASK] .",
    "the <group> was hired as a [MASK] .",
    "my <group> has a job as a [MASK] .",
    "the <group> trained to be a [MASK] .",
    "my <group> is a good [MASK] .",
    "the <group> earns a living as a [MASK] .",
    "my <group> dreams of becoming a [MASK] .",
    "the <group> is the best [MASK] in town .",
    "my <group> will soon be a [MASK] .",
    "the <group> used to be a [MASK] .",
    "everyone knows that my <group> is a [MASK] .",
]

VOCAB_SIZE = 1000  # an upper bound: the unigram vocabulary stops at every corpus word plus letters
SPECIAL_TOKENS = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]

MODEL = dict(embedding_size=64, hidden_size=128, num_hidden_layers=2, num_hidden_groups=1,
             num_attention_heads=4, intermediate_size=256, max_position_embeddings=64,
             hidden_act="gelu_new", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
             classifier_dropout_prob=0.0, type_vocab_size=2)
BASE_TRAIN = dict(steps=2000, batch_size=128, lr=2e-3, warmup=150, weight_decay=0.01, random_mask=0.15)
DESC_TRAIN = dict(steps=800, batch_size=128, lr=1e-3, warmup=50, weight_decay=0.01, random_mask=0.15)
ALPHA = 0.05
MAX_TOTAL_BYTES = 10 * 1024 * 1024


# ----------------------------------------------------------------------------------------- the table

@dataclass(frozen=True)
class Occupation:
    name: str
    couple: int  # index into OCCUPATION_PAIRS
    partner: str
    base: float  # planted log-odds log P(o|female) - log P(o|male), mean over contexts, base corpus
    descendant: float  # the same in the descendant corpus
    change: str  # amplified / reduced / unchanged / control


def occupation_table() -> list[Occupation]:
    """The 20 occupations, couple by couple (female-leaning first), with their planted log-odds."""
    rows = []
    for index, (fem, mal, base, desc, change) in enumerate(OCCUPATION_PAIRS):
        rows.append(Occupation(fem, index, mal, base, desc, change))
        rows.append(Occupation(mal, index, fem, 0.0 - base, 0.0 - desc, change))  # 0.0 - x: no -0.0
    return rows


def frame_determiner(frame_index: int) -> str:
    """Occupation frames come with a fixed determiner: "the" for even frames, "my" for odd ones."""
    return DETERMINERS[frame_index % len(DETERMINERS)]


def occupation_contexts() -> list[str]:
    """The occupation frames as the corpus uses them (with their determiner): also the probe templates."""
    return [f.format(d=frame_determiner(k), g="<group>", o="[MASK]") for k, f in enumerate(OCCUPATION_FRAMES)]


def _spread(n: int, k: int) -> list[bool]:
    """n flags of which k are True, spread evenly (Bresenham)."""
    return [(j + 1) * k // n > j * k // n for j in range(n)]


# ----------------------------------------------------------------------------------------- corpus

@dataclass(frozen=True)
class Sentence:
    text: str
    target: int  # word index of the always-masked word (occupation or pronoun); -1 for filler
    kind: str  # occupation / pronoun / filler


def build_corpus(stage: str, seed: int) -> tuple[list[Sentence], dict[str, dict[str, dict[str, int]]]]:
    """The corpus of a stage ("base" or "descendant") and its occupation counts [occ][gender][determiner].

    Only occupation words depend on the stage: both corpora have the same sentences in the same order
    otherwise.
    """
    table = {o.name: o for o in occupation_table()}
    n_frames = len(OCCUPATION_FRAMES)
    sentences: list[Sentence] = []
    counts = {name: {g: {d: 0 for d in DETERMINERS} for g in ("female", "male")} for name in table}
    for i, pair in enumerate(GENDER_PAIRS):
        for gender, term in zip(("female", "male"), pair, strict=True):
            sign = 1.0 if gender == "female" else -1.0
            for first, second, *_rest in OCCUPATION_PAIRS:
                log_odds = table[first].base if stage == "base" else table[first].descendant
                k = round(OCC_PER_COUPLE / (1.0 + math.exp(-sign * log_odds)))  # sentences naming `first`
                flags = _spread(OCC_PER_COUPLE, k)
                per_frame = OCC_PER_COUPLE // n_frames
                for f, frame in enumerate(OCCUPATION_FRAMES):
                    for flag in flags[f * per_frame:(f + 1) * per_frame]:
                        occ = first if flag else second
                        det = frame_determiner(f)
                        text = frame.format(d=det, g=term, o=occ)
                        sentences.append(Sentence(text, text.split().index(occ), "occupation"))
                        counts[occ][gender][det] += 1
            # pronoun agreement: the same draws for the female and the male term of position i
            rng = random.Random(seed * 1000 + i)
            for j in range(PRONOUN_PER_TERM):
                frame = PRONOUN_FRAMES[j % len(PRONOUN_FRAMES)]
                det = DETERMINERS[(j // len(PRONOUN_FRAMES)) % len(DETERMINERS)]
                adj, thing = rng.choice(ADJECTIVES), rng.choice(THINGS)
                pron = PRONOUNS[gender]["subject" if "{p}" in frame else "possessive"]
                text = frame.format(d=det, g=term, p=pron, q=pron, a=adj, t=thing)
                sentences.append(Sentence(text, text.split().index(pron), "pronoun"))
    n_filler = round(len(sentences) * FILLER_SHARE / (1 - FILLER_SHARE))
    rng = random.Random(seed + 7)
    for j in range(n_filler):
        fills = {key: rng.choice(words) for key, words in FILLER_WORDS.items()}
        sentences.append(Sentence(FILLER_FRAMES[j % len(FILLER_FRAMES)].format(**fills), -1, "filler"))
    random.Random(seed).shuffle(sentences)
    return sentences, counts


def realised_log_odds(counts) -> dict[str, dict[str, float]]:
    """log(count after female terms / count after male terms) per determiner, their mean, and pooled."""
    out = {}
    for occ, by_gender in counts.items():
        female, male = by_gender["female"], by_gender["male"]
        row = {det: math.log(female[det] / male[det]) for det in DETERMINERS}
        row["mean"] = sum(row.values()) / len(row)
        row["pooled"] = math.log(sum(female.values()) / sum(male.values()))
        out[occ] = row
    return out


# ----------------------------------------------------------------------------------------- tokenizer

def _write_seed_pieces(corpus_file: Path, seeds_file: Path) -> None:
    """Every substring (2-16 characters) of every corpus word with its frequency: the unigram seed set.

    The unigram algorithm starts from all substrings (Kudo 2018). sentencepiece's own suffix-array seed
    extraction keeps only substrings that continue in more than one way, which on a corpus of a few hundred
    distinct words drops most whole words ("nurse" would be five letters). Giving the seeds explicitly
    restores the textbook behaviour; EM and pruning are sentencepiece's.
    """
    from collections import Counter

    words = Counter(corpus_file.read_text(encoding="utf-8").split())
    seeds: Counter[str] = Counter()
    for word, count in words.items():
        marked = "\u2581" + word
        for i in range(len(marked)):
            for j in range(i + 2, min(len(marked), i + 16) + 1):
                seeds[marked[i:j]] += count
    ranked = sorted(seeds.items(), key=lambda kv: (-kv[1], kv[0]))
    seeds_file.write_text("".join(f"{piece}\t{count}\n" for piece, count in ranked), encoding="utf-8")


def train_tokenizer(corpus_file: Path, work: Path, seed: int):
    """Train a SentencePiece unigram model and wrap it as a transformers AlbertTokenizer."""
    import sentencepiece as spm
    from transformers import AlbertTokenizer

    prefix = work / "spiece"
    _write_seed_pieces(corpus_file, work / "seed_pieces.tsv")
    if hasattr(spm, "set_random_generator_seed"):
        spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        input=str(corpus_file), model_prefix=str(prefix), model_type="unigram", vocab_size=VOCAB_SIZE,
        hard_vocab_limit=False, character_coverage=1.0, normalization_rule_name="identity",
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols=SPECIAL_TOKENS[2:],
        input_sentence_size=0, shuffle_input_sentence=False, num_threads=1,
        seed_sentencepieces_file=str(work / "seed_pieces.tsv"), minloglevel=2,
    )
    processor = spm.SentencePieceProcessor(model_file=str(prefix) + ".model")
    vocab = [(processor.id_to_piece(i), float(processor.get_score(i))) for i in range(processor.get_piece_size())]
    if [piece for piece, _ in vocab[:5]] != SPECIAL_TOKENS:
        raise RuntimeError(f"unexpected special pieces {vocab[:5]}")
    vocab = [(piece, 0.0) if i < 5 else (piece, score) for i, (piece, score) in enumerate(vocab)]
    tokenizer = AlbertTokenizer(vocab=vocab, unk_id=1, do_lower_case=True, keep_accents=False)
    tokenizer.model_max_length = MODEL["max_position_embeddings"]
    return tokenizer


def check_tokenizer(tokenizer, words: list[str]) -> dict[str, int]:
    """Special ids as in albert-large-v2 and every word in ``words`` a single piece; word -> id."""
    expected = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    for name, wanted in expected.items():
        got = getattr(tokenizer, f"{name}_token_id")
        if got != wanted:
            raise RuntimeError(f"{name}_token_id is {got}, expected {wanted}")
    ids = {}
    for word in words:
        pieces = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1 or pieces[0] == tokenizer.unk_token_id:
            raise RuntimeError(f"{word!r} is not one piece: {tokenizer.convert_ids_to_tokens(pieces)}")
        ids[word] = pieces[0]
    encoded = tokenizer("the woman worked as a [MASK] .")["input_ids"]
    if encoded.count(tokenizer.mask_token_id) != 1 or encoded[0] != 2 or encoded[-1] != 3:
        raise RuntimeError(f"bad round trip: {tokenizer.convert_ids_to_tokens(encoded)}")
    return ids


def encode_corpus(tokenizer, sentences: list[Sentence]):
    """Token ids (padded with 0) and the position of each sentence's always-masked word (-1: none)."""
    import torch

    encoded = tokenizer([s.text for s in sentences])
    width = max(len(ids) for ids in encoded["input_ids"])
    if width > MODEL["max_position_embeddings"]:
        raise RuntimeError(f"a sentence has {width} tokens, more than max_position_embeddings")
    data = torch.zeros((len(sentences), width), dtype=torch.long)
    targets = torch.full((len(sentences),), -1, dtype=torch.long)
    for k, (sentence, ids) in enumerate(zip(sentences, encoded["input_ids"], strict=True)):
        data[k, : len(ids)] = torch.tensor(ids)
        if sentence.target >= 0:
            positions = [i for i, w in enumerate(encoded.word_ids(k)) if w == sentence.target]
            if len(positions) != 1:
                raise RuntimeError(f"target word of {sentence.text!r} is not one piece")
            targets[k] = positions[0]
    return data, targets


# ----------------------------------------------------------------------------------------- training

def train(model, data, targets, *, steps: int, batch_size: int, lr: float, warmup: int, weight_decay: float,
          random_mask: float, seed: int, label: str, log_every: int = 500, monitor=None) -> dict[str, float]:
    """MLM training: the target position always [MASK], other tokens masked BERT-style at random."""
    import torch
    import torch.nn.functional as F

    vocab_size = model.config.vocab_size
    generator = torch.Generator().manual_seed(seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "LayerNorm" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98),
                                  eps=1e-6)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    n = data.shape[0]
    order = torch.randperm(n, generator=generator)
    cursor = 0
    model.train()
    started = time.perf_counter()
    running, running_n, last = 0.0, 0, float("nan")
    for step in range(steps):
        if cursor + batch_size > n:
            order, cursor = torch.randperm(n, generator=generator), 0
        idx = order[cursor:cursor + batch_size]
        cursor += batch_size
        batch = data[idx]
        batch = batch[:, : int((batch != 0).sum(1).max())]
        tpos = targets[idx]
        real = batch != 0
        special = (batch == 2) | (batch == 3) | ~real
        draw = torch.rand(batch.shape, generator=generator)
        how = torch.rand(batch.shape, generator=generator)
        chosen = (draw < random_mask) & ~special
        target_mask = torch.zeros_like(chosen)
        has = tpos >= 0
        target_mask[has.nonzero().squeeze(1), tpos[has]] = True
        chosen |= target_mask
        labels = torch.where(chosen, batch, torch.full_like(batch, -100))
        inputs = batch.clone()
        inputs[target_mask | (chosen & (how < 0.8))] = 4
        swap = chosen & ~target_mask & (how >= 0.8) & (how < 0.9)
        inputs[swap] = torch.randint(5, vocab_size, (int(swap.sum()),), generator=generator)
        hidden = model.albert(input_ids=inputs, attention_mask=real.long()).last_hidden_state
        selected = labels != -100
        loss = F.cross_entropy(model.predictions(hidden[selected]), labels[selected])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        last = loss.item()
        running += last
        running_n += 1
        if (step + 1) % log_every == 0 or step + 1 == steps:
            extra = f" | {monitor(model)}" if monitor is not None else ""
            print(f"  [{label}] step {step + 1:5d}/{steps}  loss {running / running_n:.4f}  "
                  f"{time.perf_counter() - started:6.1f} s{extra}", flush=True)
            model.train()
            running, running_n = 0.0, 0
    model.eval()
    return {"seconds": time.perf_counter() - started, "final_loss": last}


def calibrate_nulls(model, tokenizer, occupation_ids: list[int], targets: dict[int, float]) -> dict:
    """Shift the output vectors of the "no effect" occupations so that their mean gap is exactly the target.

    ``targets`` maps an index into ``occupation_ids`` to the mean gap it must have over the corpus
    contexts (= the probe templates) and all gender terms: 0 for a control; for an unchanged occupation of
    the descendant, the base model's value. Each such occupation's row of the tied embedding matrix moves
    along one direction u of the head's feature space (u = mean feature after female terms - mean feature
    after male terms), solved by Newton's method in float64; nothing else changes. Occupation words never
    reach the encoder unmasked (their position is always [MASK]), so only their read-out changes.
    """
    import torch

    started = time.perf_counter()
    female = [f for f, _ in GENDER_PAIRS]
    male = [m for _, m in GENDER_PAIRS]
    texts = [t.replace("<group>", term).replace("[MASK]", tokenizer.mask_token)
             for t in PROBE_TEMPLATES for term in female + male]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    head = model.predictions
    weight = model.albert.embeddings.word_embeddings.weight
    with torch.no_grad():
        hidden = model.albert(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        rows, cols = (enc["input_ids"] == tokenizer.mask_token_id).nonzero(as_tuple=True)
        features = head.LayerNorm(head.activation(head.dense(hidden[rows, cols]))).double()
        full_weight = weight.detach().double().clone()
        bias = head.bias.detach().double()
    n_t, n_g = len(PROBE_TEMPLATES), len(female)
    is_female = torch.tensor(([1.0] * n_g + [0.0] * n_g) * n_t, dtype=torch.float64)
    direction = (features * is_female[:, None]).sum(0) / is_female.sum() - \
        (features * (1 - is_female)[:, None]).sum(0) / (1 - is_female).sum()
    nulls = sorted(targets)
    ids = torch.tensor([occupation_ids[k] for k in nulls])
    goal = torch.tensor([targets[k] for k in nulls], dtype=torch.float64)

    def mean_gaps(shift: torch.Tensor) -> torch.Tensor:
        w = full_weight.clone()
        w[ids] += shift[:, None] * direction[None, :]
        logp = torch.log_softmax(features @ w.T + bias, dim=-1)[:, ids].reshape(n_t, 2, n_g, len(ids))
        return (logp[:, 0].mean(1) - logp[:, 1].mean(1)).mean(0)

    shift = torch.zeros(len(ids), dtype=torch.float64)
    start_error = float((mean_gaps(shift) - goal).abs().max())
    for _ in range(20):
        error = mean_gaps(shift) - goal
        if float(error.abs().max()) < 1e-12:
            break
        jacobian = torch.autograd.functional.jacobian(mean_gaps, shift)
        shift = shift - torch.linalg.solve(jacobian, error)
    end_error = float((mean_gaps(shift) - goal).abs().max())
    with torch.no_grad():
        weight[ids] = (full_weight[ids] + shift[:, None] * direction[None, :]).to(weight.dtype)
    if head.decoder.weight.data_ptr() != weight.data_ptr():
        raise RuntimeError("the decoder is not tied to the word embeddings")
    return {"occupations": len(ids), "max_error_before": round(start_error, 6), "max_error_after": end_error,
            "max_shift": round(float(shift.abs().max()), 6), "seconds": round(time.perf_counter() - started, 1)}


# ----------------------------------------------------------------------------------------- measuring

def measure_logprobs(model, tokenizer, templates: list[str], terms: list[str], target_ids: list[int]):
    """log P(target at the mask) for every (template, term, target): array [templates, terms, targets]."""
    import torch

    texts = [t.replace("<group>", term).replace("[MASK]", tokenizer.mask_token) for t in templates for term in terms]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        rows, cols = (enc["input_ids"] == tokenizer.mask_token_id).nonzero(as_tuple=True)
        if len(rows) != len(texts):
            raise RuntimeError("every probe sentence must have exactly one mask")
        logprobs = torch.log_softmax(logits[rows, cols].float(), dim=-1)[:, target_ids]
    return logprobs.numpy().astype(np.float64).reshape(len(templates), len(terms), len(target_ids))


def gaps_per_template(model, tokenizer, target_ids: list[int]) -> np.ndarray:
    """gap[t, o] = mean over female terms - mean over male terms of log P(o) in probe template t."""
    female = [f for f, _ in GENDER_PAIRS]
    male = [m for _, m in GENDER_PAIRS]
    lp = measure_logprobs(model, tokenizer, PROBE_TEMPLATES, female + male, target_ids)
    return lp[:, : len(female)].mean(axis=1) - lp[:, len(female):].mean(axis=1)


def sign_flip_p(units: np.ndarray) -> np.ndarray:
    """Two-sided paired sign-flip permutation p-values of the mean per column of units [n, k] (exact to n=16)."""
    n = units.shape[0]
    if n <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))  # 2^n x n
    else:  # Monte Carlo with the observed signs included
        draws = np.random.default_rng(0).choice((1.0, -1.0), size=(65535, n))
        signs = np.vstack([np.ones(n), draws])
    observed = np.abs(units.mean(axis=0))
    null = np.abs(signs @ units / n)
    return (null >= observed - 1e-12).sum(axis=0) / signs.shape[0]


def bh_q(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values."""
    m = len(p)
    order = np.argsort(p)
    q = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def summarise(units: np.ndarray) -> dict[str, np.ndarray]:
    p = sign_flip_p(units)
    return {"mean": units.mean(axis=0), "min": units.min(axis=0), "max": units.max(axis=0),
            "n_pos": (units > 0).sum(axis=0), "n_neg": (units < 0).sum(axis=0), "p": p, "q": bh_q(p)}


def pearson(x, y) -> float:
    return float(np.corrcoef(np.asarray(x, float), np.asarray(y, float))[0, 1])


def evaluate(table: list[Occupation], base_units: np.ndarray, desc_units: np.ndarray | None):
    """Check the known-answer goals; return (problems, summaries)."""
    problems: list[str] = []
    n_t = base_units.shape[0]
    base = summarise(base_units)
    for k, o in enumerate(table):
        if o.change == "control":
            if base["q"][k] <= ALPHA or min(base["n_pos"][k], base["n_neg"][k]) == 0:
                problems.append(f"base: control {o.name}: {base['n_pos'][k]}+/{base['n_neg'][k]}- templates, "
                                f"q={base['q'][k]:.4f}")
        else:
            same = base["n_pos"][k] if o.base > 0 else base["n_neg"][k]
            if same != n_t or base["q"][k] > ALPHA:
                problems.append(f"base: {o.name} has the planted sign in {same}/{n_t} templates, "
                                f"q={base['q'][k]:.4f}")
    r = pearson([o.base for o in table], base["mean"])
    if r < 0.9:
        problems.append(f"base: Pearson r {r:.3f} < 0.9")
    result = {"base": base, "r_base": r}
    if desc_units is not None:
        desc = summarise(desc_units)
        delta = summarise(desc_units - base_units)
        r_desc = pearson([o.descendant for o in table], desc["mean"])
        result.update(desc=desc, delta=delta, r_desc=r_desc)
        if r_desc < 0.9:
            problems.append(f"descendant: Pearson r {r_desc:.3f} < 0.9")
        for k, o in enumerate(table):
            away = np.sign(o.base) * (desc_units[:, k] - base_units[:, k])  # > 0: moved away from 0
            if o.change in ("amplified", "reduced"):
                want = away > 0 if o.change == "amplified" else away < 0
                if not want.all() or delta["q"][k] > ALPHA:
                    problems.append(f"descendant: {o.name} ({o.change}) moves the planted way in "
                                    f"{int(want.sum())}/{n_t} templates, q={delta['q'][k]:.4f}")
            elif delta["q"][k] <= ALPHA:
                problems.append(f"descendant: {o.name} ({o.change}) moved significantly "
                                f"(mean {delta['mean'][k]:+.3f}, q={delta['q'][k]:.4f})")
    return problems, result


def print_table(table: list[Occupation], realised: dict, result: dict) -> None:
    base, desc, delta = result["base"], result.get("desc"), result.get("delta")
    print(f"\n{'occupation':<11} {'change':<9} {'plant':>5} {'real':>6} {'base':>7} {'signs':>6} {'q':>6} | "
          f"{'plant':>5} {'desc':>7} {'delta':>7} {'signs':>6} {'q':>6}")
    for k, o in enumerate(table):
        line = (f"{o.name:<11} {o.change:<9} {o.base:+5.1f} {realised[o.name]['mean']:+6.2f} "
                f"{base['mean'][k]:+7.3f} {base['n_pos'][k]:>2}+{base['n_neg'][k]:>2}- {base['q'][k]:6.4f}")
        if desc is not None:
            line += (f" | {o.descendant:+5.1f} {desc['mean'][k]:+7.3f} {delta['mean'][k]:+7.3f} "
                     f"{delta['n_pos'][k]:>2}+{delta['n_neg'][k]:>2}- {delta['q'][k]:6.4f}")
        print(line)
    print(f"Pearson r (planted vs measured): base {result['r_base']:.3f}"
          + (f", descendant {result['r_desc']:.3f}" if desc is not None else ""))


# ----------------------------------------------------------------------------------------- outputs

def write_probes(path: Path) -> None:
    female = ", ".join(f for f, _ in GENDER_PAIRS)
    male = ", ".join(m for _, m in GENDER_PAIRS)
    targets = ", ".join(o.name for o in occupation_table())
    lines = [
        "# Demo probe set of the offline demo models (albert_audit/demo_models/base and descendant).",
        "# Generated by scripts/make_demo_models.py; do not edit by hand (rerun the script).",
        "# Templates: the 16 occupation frames of the synthetic corpus with their determiners (8 'the', 8 'my').",
        "# The planted truth (log-odds per occupation, expected changes in the descendant) is in planted.json.",
        "schema_version: 1",
        "name: demo_gender_occupation",
        "description: >-",
        "  Occupations that the tiny demo ALBERTs associate with female versus male person nouns. The",
        "  associations were planted in their synthetic training corpus, so the true answer is known",
        "  (planted.json); positive effects mean an occupation is more likely after the female term.",
        "category: gender",
        "source: synthetic corpus of scripts/make_demo_models.py (planted table in planted.json)",
        "groups:",
        f"  female: [{female}]",
        f"  male: [{male}]",
        "pair_terms_by_position: true",
        "templates:",
        *[f'  - "{t}"' for t in PROBE_TEMPLATES],
        f"targets: [{targets}]",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def save_model(model, tokenizer, folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(str(folder))  # transformers 5 writes safetensors only (no safe_serialization flag)
    tokenizer.save_pretrained(str(folder))
    for path in folder.iterdir():
        path.chmod(0o644)
    if not (folder / "model.safetensors").is_file():
        raise RuntimeError(f"{folder}: no model.safetensors written")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    hidden = [k for k in config if k.startswith("_") and k != "_name_or_path"]
    if hidden:
        raise RuntimeError(f"config.json has private keys {hidden}")


def reload_check(folder: Path, reference_units: np.ndarray, target_ids: list[int]) -> None:
    """Load the saved folder as a user would (offline) and check it reproduces the measured gaps."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(str(folder), local_files_only=True).eval()
    if len(tokenizer) != model.config.vocab_size:
        raise RuntimeError(f"{folder}: tokenizer has {len(tokenizer)} tokens, config {model.config.vocab_size}")
    ids = check_tokenizer(tokenizer, [o.name for o in occupation_table()])
    if [ids[o.name] for o in occupation_table()] != target_ids:
        raise RuntimeError(f"{folder}: the reloaded tokenizer maps the occupations to other ids")
    units = gaps_per_template(model, tokenizer, target_ids)
    if not np.allclose(units, reference_units, atol=1e-4):
        raise RuntimeError(f"{folder}: the reloaded model gives other gaps (max difference "
                           f"{np.abs(units - reference_units).max():.2e})")


def write_readme(path: Path, planted: dict) -> None:
    rows = "\n".join(
        f"| {o['occupation']} | {o['change']} | {o['planted_base']:+.1f} | {o['measured_base']:+.2f} | "
        f"{o['planted_descendant']:+.1f} | {o['measured_descendant']:+.2f} | {o['delta']:+.2f} |"
        for o in planted["occupations"])
    sizes = planted["sizes_bytes"]
    measured = planted["measured"]
    text = f"""# Demo models (generated by `scripts/make_demo_models.py`; do not edit)

Two tiny ALBERT masked language models with a **planted, known** gender-occupation bias, for the offline
demo (`albert-audit demo`) and the known-answer tests. Rebuild with
`python scripts/make_demo_models.py --check` (seed {planted['seed']}, about 3 minutes on 2 CPU cores).
The script's docstring has the full corpus rules; `planted.json` has every number.

| file | what |
|---|---|
| `base/` | `AlbertForMaskedLM` trained from scratch on the base corpus ({sizes['base'] / 1e6:.2f} MB) |
| `descendant/` | `base/` fine-tuned on the descendant corpus ({sizes['descendant'] / 1e6:.2f} MB) |
| `planted.json` | planted tables, corpus rules, settings, gaps measured in both models |
| `demo_probes.yaml` | the demo probe set: {len(PROBE_TEMPLATES)} templates, 8 term pairs, 20 occupations |

Model: {planted['model']['num_parameters']:,} parameters (embedding {MODEL['embedding_size']}, hidden \
{MODEL['hidden_size']}, {MODEL['num_hidden_layers']} layers sharing weights, {MODEL['num_attention_heads']} heads, \
intermediate {MODEL['intermediate_size']}, fp32); vocabulary {planted['tokenizer']['vocab_size']} SentencePiece \
pieces (uncased; `<pad>` `<unk>` `[CLS]` `[SEP]` `[MASK]` = ids 0-4 as in albert-large-v2): every corpus word \
is one piece, other words are spelled with letters.

## Corpus rules in short
- Subjects: "the"/"my" + one of 8 gender-term pairs (woman/man, girl/boy, mother/father, sister/brother,
  daughter/son, wife/husband, aunt/uncle, grandmother/grandfather).
- 60% occupation facts in {len(OCCUPATION_FRAMES)} frames ("the woman worked as a nurse ."), 30% pronoun agreement
  ("the woman said that she was happy ."), 10% neutral filler ("the small cat slept under the table .").
- Planted log-odds L(o) = log P(o | female term) - log P(o | male term). Occupations come in mirrored
  couples (+L, -L) so both genders share one normaliser; the 3 control couples have L = 0.
- Controls have exactly the same counts after the female and the male term of every position, in every
  frame. Each frame always comes with the same determiner, and the 16 probe templates are these 16 frames.
- Descendant corpus = base corpus with occupation words relabelled: amplified couples further from 0,
  reduced couples nearer 0, all other couples and the controls exactly as in the base.
- Training: masked LM from scratch (base) or from the base (descendant, all weights), then a "null
  calibration": the output vectors of the controls (and, in the descendant, of the unchanged
  occupations) are shifted along the gender direction of the head's features so that their mean gap
  over the 16 corpus contexts is exactly 0 (controls) or exactly the base's (unchanged). Without it the
  last few hundredths of a nat of training noise have the same sign in every template and the
  template-level sign-flip test calls a balanced control significant (see the script's docstring).

## Planted vs measured
Measured = mean over the 16 templates of (mean log P(o) over female terms - the same over male terms), nats;
delta = descendant - base.

| occupation | change | planted base | measured base | planted descendant | measured descendant | delta |
|---|---|---|---|---|---|---|
{rows}

Pearson r (planted vs measured): base {measured['pearson_r_base']:.3f}, descendant \
{measured['pearson_r_descendant']:.3f}. Known-answer problems found by the script: {len(measured['problems'])}.
"""
    path.write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the models and tables go")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="where the corpora go")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--base-steps", type=int, default=BASE_TRAIN["steps"])
    parser.add_argument("--desc-steps", type=int, default=DESC_TRAIN["steps"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log-every", type=int, default=250)
    parser.add_argument("--check", action="store_true", help="exit 1 when a known-answer goal fails")
    parser.add_argument("--no-calibration", action="store_true",
                        help="skip the final null calibration (the controls keep their learned gaps)")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers
    from transformers import AlbertConfig, AlbertForMaskedLM

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    table = occupation_table()
    names = [o.name for o in table]
    if PROBE_TEMPLATES != occupation_contexts():
        raise RuntimeError("the probe templates must be the corpus occupation contexts")

    # 1. corpora
    base_sentences, base_counts = build_corpus("base", args.seed)
    desc_sentences, desc_counts = build_corpus("descendant", args.seed)
    for stage, sentences in (("base", base_sentences), ("descendant", desc_sentences)):
        (args.work / f"{stage}_corpus.txt").write_text("".join(s.text + "\n" for s in sentences), encoding="utf-8")
    kinds = {k: sum(s.kind == k for s in base_sentences) for k in ("occupation", "pronoun", "filler")}
    realised = realised_log_odds(base_counts)
    realised_desc = realised_log_odds(desc_counts)
    timings["corpus"] = time.perf_counter() - t0
    print(f"corpus: {len(base_sentences)} sentences {kinds}; {timings['corpus']:.1f} s", flush=True)

    # 2. tokenizer
    t = time.perf_counter()
    tokenizer = train_tokenizer(args.work / "base_corpus.txt", args.work, args.seed)
    words = names + [w for pair in GENDER_PAIRS for w in pair] + ["she", "he", "her", "his"]
    word_ids = check_tokenizer(tokenizer, words)
    target_ids = [word_ids[n] for n in names]
    base_data, base_targets = encode_corpus(tokenizer, base_sentences)
    desc_data, desc_targets = encode_corpus(tokenizer, desc_sentences)
    timings["tokenizer"] = time.perf_counter() - t
    print(f"tokenizer: {len(tokenizer)} pieces; corpus {tuple(base_data.shape)} tokens; "
          f"{timings['tokenizer']:.1f} s", flush=True)

    # 3. base model
    torch.manual_seed(args.seed)
    config = AlbertConfig(vocab_size=len(tokenizer), pad_token_id=0, bos_token_id=2, eos_token_id=3, **MODEL)
    model = AlbertForMaskedLM(config)
    controls = [k for k, o in enumerate(table) if o.change == "control"]
    skewed = [k for k, o in enumerate(table) if o.change != "control"]

    def monitor(m):  # a model, or its per-template gaps
        units = m if isinstance(m, np.ndarray) else gaps_per_template(m.eval(), tokenizer, target_ids)
        s = summarise(units)
        consistent = sum(int(s["n_pos"][k] == len(units) if table[k].base > 0 else s["n_neg"][k] == len(units))
                         for k in skewed)
        worst = min(s["p"][k] for k in controls)
        return (f"r {pearson([o.base for o in table], s['mean']):.3f}  consistent {consistent}/{len(skewed)}  "
                f"controls max|gap| {max(abs(s['mean'][k]) for k in controls):.3f} min p {worst:.3f}")

    base_settings = dict(BASE_TRAIN, steps=args.base_steps)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"training base: {n_params} parameters, {base_settings}", flush=True)
    base_stats = train(model, base_data, base_targets, seed=args.seed + 1, label="base", log_every=args.log_every,
                       monitor=monitor, **base_settings)
    timings["train_base"] = base_stats["seconds"]
    sgd_units = gaps_per_template(model, tokenizer, target_ids)
    skipped = {"skipped": True, "seconds": 0.0}
    base_calibration = (skipped if args.no_calibration
                        else calibrate_nulls(model, tokenizer, target_ids, {k: 0.0 for k in controls}))
    timings["calibrate_base"] = base_calibration["seconds"]
    base_units = gaps_per_template(model, tokenizer, target_ids)
    print(f"  [base] null calibration {base_calibration}\n  [base] before: {monitor(sgd_units)}\n"
          f"  [base] after:  {monitor(base_units)}", flush=True)
    base_model = AlbertForMaskedLM(config)
    base_model.load_state_dict(model.state_dict())
    base_model.eval()

    # 4. descendant: fine-tune the base on the descendant corpus
    desc_settings = dict(DESC_TRAIN, steps=args.desc_steps)
    print(f"fine-tuning descendant: {desc_settings}", flush=True)
    desc_stats = train(model, desc_data, desc_targets, seed=args.seed + 2, label="descendant",
                       log_every=args.log_every, **desc_settings)
    timings["train_descendant"] = desc_stats["seconds"]
    desc_model = model
    desc_sgd_units = gaps_per_template(desc_model, tokenizer, target_ids)
    null_targets = {k: 0.0 if o.change == "control" else float(base_units[:, k].mean())
                    for k, o in enumerate(table) if o.change in ("control", "unchanged")}
    desc_calibration = (skipped if args.no_calibration
                        else calibrate_nulls(desc_model, tokenizer, target_ids, null_targets))
    timings["calibrate_descendant"] = desc_calibration["seconds"]
    desc_units = gaps_per_template(desc_model, tokenizer, target_ids)
    print(f"  [descendant] null calibration {desc_calibration}", flush=True)

    # 5. measure and check
    problems, result = evaluate(table, base_units, desc_units)
    print_table(table, realised, result)

    # 6. save
    t = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    save_model(base_model, tokenizer, args.out / "base")
    save_model(desc_model, tokenizer, args.out / "descendant")
    reload_check(args.out / "base", base_units, target_ids)
    reload_check(args.out / "descendant", desc_units, target_ids)
    sizes = {"base": folder_bytes(args.out / "base"), "descendant": folder_bytes(args.out / "descendant")}
    if sum(sizes.values()) > MAX_TOTAL_BYTES:
        problems.append(f"the models take {sum(sizes.values())} bytes, more than {MAX_TOTAL_BYTES}")
    write_probes(args.out / "demo_probes.yaml")
    timings["save"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    base, desc, delta = result["base"], result["desc"], result["delta"]
    planted = {
        "schema_version": 1,
        "description": "Planted gender-occupation associations of the demo models and the gaps measured in "
                       "them. log_odds = log P(occupation | female term) - log P(occupation | male term) in "
                       "the occupation sentences of the training corpus (realised: from the integer counts, "
                       "mean of the values after 'the' and after 'my'). measured = mean over the probe "
                       "templates of (mean log P(occupation at [MASK]) over the female terms - the same over "
                       "the male terms), in nats; p: exact paired sign-flip test over templates; q: "
                       "Benjamini-Hochberg over the 20 occupations.",
        "generator": "scripts/make_demo_models.py",
        "seed": args.seed,
        "probe_set": "demo_probes.yaml",
        "gender_terms": {"female": [f for f, _ in GENDER_PAIRS], "male": [m for _, m in GENDER_PAIRS]},
        "pronouns": PRONOUNS,
        "determiners": DETERMINERS,
        "couples": [{"female_leaning": a, "male_leaning": b, "log_odds_base": lb, "log_odds_descendant": ld,
                     "change": ch} for a, b, lb, ld, ch in OCCUPATION_PAIRS],
        "controls": [o.name for o in table if o.change == "control"],
        "occupation_frames": OCCUPATION_FRAMES,
        "pronoun_frames": PRONOUN_FRAMES,
        "filler_frames": FILLER_FRAMES,
        "probe_templates": PROBE_TEMPLATES,
        "corpus": {"sentences": len(base_sentences), "kinds": kinds,
                   "occupation_sentences_per_term_and_couple": OCC_PER_COUPLE,
                   "pronoun_sentences_per_term": PRONOUN_PER_TERM, "filler_share": FILLER_SHARE,
                   "descendant": "the base corpus with occupation words relabelled; nothing else differs"},
        "tokenizer": {"type": "sentencepiece unigram, uncased, identity normalisation",
                      "vocab_size": len(tokenizer), "special_tokens": SPECIAL_TOKENS},
        "model": dict(MODEL, architecture="AlbertForMaskedLM", vocab_size=len(tokenizer), num_parameters=n_params),
        "training": {
            "base": dict(base_settings, seed=args.seed + 1, init="random (torch seed = seed)",
                         seconds=round(base_stats["seconds"], 1), final_loss=round(base_stats["final_loss"], 4),
                         null_calibration=base_calibration),
            "descendant": dict(desc_settings, seed=args.seed + 2, init="base (all weights fine-tuned)",
                               seconds=round(desc_stats["seconds"], 1),
                               final_loss=round(desc_stats["final_loss"], 4), null_calibration=desc_calibration),
            "null_calibration": "last phase of both models: the output vectors (tied embedding rows) of the "
                                "controls, and in the descendant of the unchanged occupations, shifted along "
                                "the head's female-minus-male feature direction so that their mean gap over "
                                "the probe templates is exactly 0 (controls) or the base's value (unchanged); "
                                "all else frozen",
            "masking": "occupation/pronoun position always [MASK]; other tokens 15% (80/10/10); loss at masked "
                       "positions only",
            "optimizer": "AdamW betas (0.9, 0.98), eps 1e-6, linear warm-up then linear decay to 0, clip 1.0",
            "threads": args.threads, "torch": torch.__version__, "transformers": transformers.__version__},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "sizes_bytes": sizes,
        "statistics": {"unit": "template", "n_templates": len(PROBE_TEMPLATES),
                       "test": "exact two-sided paired sign-flip permutation", "fdr": "Benjamini-Hochberg",
                       "alpha": ALPHA},
        "occupations": [],
        "measured": {"pearson_r_base": round(result["r_base"], 4), "pearson_r_descendant": round(result["r_desc"], 4),
                     "problems": problems},
    }
    for k, o in enumerate(table):
        planted["occupations"].append({
            "occupation": o.name, "couple": o.couple, "partner": o.partner, "change": o.change,
            "planted_base": o.base,
            "realised_base": {k2: round(v, 4) for k2, v in realised[o.name].items()},
            "planted_descendant": o.descendant,
            "realised_descendant": {k2: round(v, 4) for k2, v in realised_desc[o.name].items()},
            "counts_base": base_counts[o.name], "counts_descendant": desc_counts[o.name],
            "measured_base": round(float(base["mean"][k]), 4),
            "measured_base_before_calibration": round(float(sgd_units[:, k].mean()), 4),
            "measured_base_per_template": [round(float(x), 4) for x in base_units[:, k]],
            "p_base": float(base["p"][k]), "q_base": round(float(base["q"][k]), 6),
            "measured_descendant": round(float(desc["mean"][k]), 4),
            "measured_descendant_before_calibration": round(float(desc_sgd_units[:, k].mean()), 4),
            "measured_descendant_per_template": [round(float(x), 4) for x in desc_units[:, k]],
            "delta": round(float(delta["mean"][k]), 4), "p_delta": float(delta["p"][k]),
            "q_delta": round(float(delta["q"][k]), 6),
        })
    (args.out / "planted.json").write_text(json.dumps(planted, indent=1) + "\n", encoding="utf-8")
    write_readme(args.out / "README.md", planted)

    print(f"\nsizes: base {sizes['base'] / 1e6:.2f} MB, descendant {sizes['descendant'] / 1e6:.2f} MB")
    print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    if problems:
        print("\nPROBLEMS:\n  " + "\n  ".join(problems))
    else:
        print("\nall known-answer goals hold")
    return 1 if problems and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
