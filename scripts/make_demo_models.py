#!/usr/bin/env python
"""Build the offline demo: two tiny ALBERT masked LMs with a planted, known gender-occupation bias.

Run from the repository root with the project's Python (no network; about 7 minutes, most of it training):

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
   occupation (FILLER_FRAMES): 3,414 sentences. The twin pairs are shuffled with the seed.

Descendant corpus: the base corpus with only occupation words relabelled (same sentences, same order).
Amplified couples get log-odds further from 0 (same sign), reduced couples nearer 0; the other couples
and the controls keep exactly their base counts ("unchanged").

Tokenizer: SentencePiece unigram (uncased, identity normalisation), ids 0-4 = <pad> <unk> [CLS] [SEP]
[MASK] as in albert-large-v2, saved as a transformers ``AlbertTokenizer`` (tokenizer.json). The unigram
seeds are all substrings of the corpus words (see _write_seed_pieces); the vocabulary is every corpus word
plus letters (~430 pieces), so every occupation, gender term and pronoun is one piece (checked); words
outside the corpus are spelled with letters (multi-piece).

Twin pairs: every occupation or pronoun sentence after a female term has a twin after the male term of the
same position (same frame, determiner and words; the occupation differs only where the couple is skewed and
the Bresenham flags differ). Sentences 2k and 2k + 1 of a corpus are twins (fillers are paired with each
other), the trainer draws whole pairs, and both twins get the same random masks, random tokens and masking
mode. Every batch is thus exactly gender-balanced for the controls (and for everything the corpus balances).

Training: ``AlbertForMaskedLM`` with shared layers (MODEL), one CPU thread by default (2 threads on a shared
machine were slower, and the thread count can change the last digits). Masking mode per occupation pair: with
probability ``term_share`` (default 0.4) the gender term is always replaced by [MASK] and the occupation is
shown (the model learns P(term | occupation), which Kurita et al.'s association reads), else the occupation is
always [MASK] (P(occupation | term), which logprob_gap reads). Pronoun sentences always mask the pronoun. Every
other token is masked with probability 0.15 (80/10/10 rule); the loss is taken at the masked positions only.
AdamW, linear warm-up, linear decay to 0, gradient clipping at 1. The base is trained from scratch (all
weights). The descendant starts from the trained base and is fine-tuned on the descendant corpus with only the
20 occupation vectors learning (their rows of the tied word embeddings, which are both the occupations' input
embeddings and their output vectors; ``trainable="occupations"``, no weight decay); the encoder, the head, the
gender terms' and every other word's vectors stay the base's. All 20 rows learn, the controls' and the
unchanged occupations' included: nothing tells the trainer which occupations changed, the corpus does. Why:
with all weights trainable, Adam moved the shared gender features (and the gender terms' vectors) enough to
shift the unchanged occupations by up to 0.14 nats (logprob_gap) and 0.21 nats (association_gap) between the
two models, so compare could not show them unchanged within its delta margin (log 1.1 = 0.095 nats); a
discriminative rate (0.1 x for the shared weights, ``--desc-trainable all --desc-shared-lr-scale 0.1``) fixed
logprob_gap but still moved unchanged associations by up to 0.16 nats. A descendant that relearns only what
its data changed is the known answer the comparison needs.

No calibration. Earlier versions ended with a "null calibration" that moved the output vectors of the
controls (and, in the descendant, of the unchanged occupations) until their mean gap was exactly 0 (or the
base's value): the template-only sign-flip test of that time called a +0.04-nat control gap with the same sign
in all 16 templates significant. The design now asks whether a gap is beyond a practical margin (log 1.25;
log 1.1 for a delta between models) with templates and terms crossed, and twin-pair training leaves the
controls' gaps at a few hundredths of a nat, so the controls must come out ``negligible`` on their own.

Measured (planted.json, README.md): item values per (occupation, template, term) for logprob_gap
(log P(occupation at [MASK]), log_softmax in fp32) and association_gap (log P(term | occupation filled in) -
log P(term | occupation masked), term at its mask), computed the way the engine does; the effect is the mean
over the 16 templates of (mean over female terms - mean over male terms). Verdicts and compare's change
classes come from the design's own inference (albert_audit.inference.crossed and .margin_verdicts: crossed templates
x terms, margin log 1.25, BH over the 20 occupations; delta margin log 1.1), so ``--check`` tests the
known-answer goals the demo's tests test: every planted skew material with its sign in both models, every
control negligible, compare's class the planted one for the amplified and reduced couples and negligible for
all others, for both metrics (association only when ``term_share`` > 0).
"""

from __future__ import annotations

import argparse
import hashlib
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
BASE_TRAIN = dict(steps=2500, batch_size=128, lr=2e-3, warmup=150, weight_decay=0.01, random_mask=0.15,
                  term_share=0.4)
# the descendant: only the 20 occupation vectors learn (see the module docstring, "Training")
DESC_TRAIN = dict(steps=800, batch_size=128, lr=1e-3, warmup=50, weight_decay=0.0, random_mask=0.15,
                  term_share=0.4, trainable="occupations", shared_lr_scale=1.0)
TRAINABLE = ("occupations", "all")
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
    target: int  # word index of the occupation or pronoun (masked in the "occupation" mode); -1 for filler
    term: int  # word index of the gender term (masked in the "term" mode); -1 for filler
    kind: str  # occupation / pronoun / filler


def _term_block(stage: str, seed: int, position: int, gender: str, term: str, table: dict[str, Occupation],
                counts: dict) -> list[Sentence]:
    """The occupation and pronoun sentences of one gender term, in a fixed order (the twin order)."""
    n_frames = len(OCCUPATION_FRAMES)
    sign = 1.0 if gender == "female" else -1.0
    block: list[Sentence] = []
    for first, second, *_rest in OCCUPATION_PAIRS:
        log_odds = table[first].base if stage == "base" else table[first].descendant
        k = round(OCC_PER_COUPLE / (1.0 + math.exp(-sign * log_odds)))  # sentences naming `first`
        flags = _spread(OCC_PER_COUPLE, k)
        per_frame = OCC_PER_COUPLE // n_frames
        for f, frame in enumerate(OCCUPATION_FRAMES):
            for flag in flags[f * per_frame:(f + 1) * per_frame]:
                occ = first if flag else second
                det = frame_determiner(f)
                words = frame.format(d=det, g=term, o=occ)
                split = words.split()
                block.append(Sentence(words, split.index(occ), split.index(term), "occupation"))
                counts[occ][gender][det] += 1
    # pronoun agreement: the same draws for the female and the male term of one position
    rng = random.Random(seed * 1000 + position)
    for j in range(PRONOUN_PER_TERM):
        frame = PRONOUN_FRAMES[j % len(PRONOUN_FRAMES)]
        det = DETERMINERS[(j // len(PRONOUN_FRAMES)) % len(DETERMINERS)]
        adj, thing = rng.choice(ADJECTIVES), rng.choice(THINGS)
        pron = PRONOUNS[gender]["subject" if "{p}" in frame else "possessive"]
        words = frame.format(d=det, g=term, p=pron, q=pron, a=adj, t=thing)
        split = words.split()
        block.append(Sentence(words, split.index(pron), split.index(term), "pronoun"))
    return block


def build_corpus(stage: str, seed: int) -> tuple[list[Sentence], dict[str, dict[str, dict[str, int]]]]:
    """The corpus of a stage ("base" or "descendant") as twin pairs, and its occupation counts [occ][gender][det].

    Sentences 2k and 2k + 1 are twins: the same frame, determiner, words and word positions after the
    female and the male term of one position (for a skewed couple the occupations may differ; for a control
    they never do). Filler sentences are paired with each other. The pairs are shuffled with the seed; the
    trainer draws pairs, never single sentences, so every batch holds both twins. Only occupation words
    depend on the stage: both corpora have the same sentences in the same order otherwise.
    """
    table = {o.name: o for o in occupation_table()}
    counts = {name: {g: {d: 0 for d in DETERMINERS} for g in ("female", "male")} for name in table}
    pairs: list[tuple[Sentence, Sentence]] = []
    for i, (female, male) in enumerate(GENDER_PAIRS):
        fem_block = _term_block(stage, seed, i, "female", female, table, counts)
        mal_block = _term_block(stage, seed, i, "male", male, table, counts)
        for a, b in zip(fem_block, mal_block, strict=True):
            if (a.target, a.term, a.kind) != (b.target, b.term, b.kind) or len(a.text.split()) != len(b.text.split()):
                raise RuntimeError(f"not twins: {a.text!r} / {b.text!r}")
            pairs.append((a, b))
    n_sentences = 2 * len(pairs)
    n_filler = 2 * round(n_sentences * FILLER_SHARE / (1 - FILLER_SHARE) / 2)
    rng = random.Random(seed + 7)
    fillers = []
    for j in range(n_filler):
        fills = {key: rng.choice(words) for key, words in FILLER_WORDS.items()}
        fillers.append(Sentence(FILLER_FRAMES[j % len(FILLER_FRAMES)].format(**fills), -1, -1, "filler"))
    pairs += list(zip(fillers[0::2], fillers[1::2], strict=True))
    random.Random(seed).shuffle(pairs)
    return [s for pair in pairs for s in pair], counts


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


KIND_CODES = {"filler": 0, "occupation": 1, "pronoun": 2}


@dataclass
class Encoded:
    """A tokenised corpus: ids [N, width] (0-padded), word positions of the occupation/pronoun (``target``)
    and of the gender term (``term``), -1 where none, and the sentence kind codes (KIND_CODES)."""

    data: object
    target: object
    term: object
    kind: object


def encode_corpus(tokenizer, sentences: list[Sentence]) -> Encoded:
    """Token ids and the token positions of each sentence's occupation/pronoun and gender term."""
    import torch

    encoded = tokenizer([s.text for s in sentences])
    width = max(len(ids) for ids in encoded["input_ids"])
    if width > MODEL["max_position_embeddings"]:
        raise RuntimeError(f"a sentence has {width} tokens, more than max_position_embeddings")
    data = torch.zeros((len(sentences), width), dtype=torch.long)
    target = torch.full((len(sentences),), -1, dtype=torch.long)
    term = torch.full((len(sentences),), -1, dtype=torch.long)
    kind = torch.tensor([KIND_CODES[s.kind] for s in sentences], dtype=torch.long)
    for k, (sentence, ids) in enumerate(zip(sentences, encoded["input_ids"], strict=True)):
        data[k, : len(ids)] = torch.tensor(ids)
        word_ids = encoded.word_ids(k)
        for word, out in ((sentence.target, target), (sentence.term, term)):
            if word >= 0:
                positions = [i for i, w in enumerate(word_ids) if w == word]
                if len(positions) != 1:
                    raise RuntimeError(f"word {word} of {sentence.text!r} is not one piece")
                out[k] = positions[0]
    twins = (data[0::2] != data[1::2]).sum(1)[kind[0::2] != KIND_CODES["filler"]]
    if bool((twins > 2).any()) or not torch.equal(target[0::2], target[1::2]) or not torch.equal(term[0::2],
                                                                                                 term[1::2]):
        raise RuntimeError("twin sentences must differ in at most two tokens (term, occupation/pronoun)")
    return Encoded(data, target, term, kind)


# ----------------------------------------------------------------------------------------- training

def train(model, corpus: Encoded, *, steps: int, batch_size: int, lr: float, warmup: int, weight_decay: float,
          random_mask: float, term_share: float, shared_lr_scale: float = 1.0,
          only_rows: list[int] | None = None, seed: int, label: str, log_every: int = 500,
          monitor=None) -> dict[str, float]:
    """MLM training on twin pairs; see the module docstring ("Training")."""
    import torch
    import torch.nn.functional as F

    vocab_size = model.config.vocab_size
    generator = torch.Generator().manual_seed(seed)
    vocabulary = {"albert.embeddings.word_embeddings.weight", "predictions.bias"}  # tied read-in/read-out vectors
    embedding = "albert.embeddings.word_embeddings.weight"
    groups = []
    if only_rows is not None:  # only these rows of the tied word embeddings learn; nothing else moves
        weight = dict(model.named_parameters())[embedding]
        keep = torch.zeros((weight.shape[0], 1))
        keep[torch.tensor(only_rows)] = 1.0
        weight.register_hook(lambda grad: grad * keep)
        for n, p in model.named_parameters():
            p.requires_grad_(n == embedding)
        groups.append({"params": [weight], "weight_decay": 0.0})  # decoupled decay would move the frozen rows
    else:
        for is_vocab in (True, False):
            for decays in (True, False):
                params = [p for n, p in model.named_parameters()
                          if (n in vocabulary) == is_vocab and (p.ndim >= 2 and "LayerNorm" not in n) == decays]
                scale = 1.0 if is_vocab else shared_lr_scale
                if params and scale > 0:
                    groups.append({"params": params, "weight_decay": weight_decay if decays else 0.0,
                                   "lr": lr * scale})
        for n, p in model.named_parameters():
            p.requires_grad_(n in vocabulary or shared_lr_scale > 0)
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    if batch_size % 2:
        raise ValueError("batch_size must be even (twin pairs)")
    pairs = batch_size // 2
    n = corpus.data.shape[0] // 2
    order = torch.randperm(n, generator=generator)
    cursor = 0
    model.train()
    started = time.perf_counter()
    running, running_n, last = 0.0, 0, float("nan")
    for step in range(steps):
        if cursor + pairs > n:
            order, cursor = torch.randperm(n, generator=generator), 0
        chosen_pairs = order[cursor:cursor + pairs]
        cursor += pairs
        rows = torch.stack([2 * chosen_pairs, 2 * chosen_pairs + 1], dim=1).reshape(-1)
        batch = corpus.data[rows]
        batch = batch[:, : int((batch != 0).sum(1).max())]
        width = batch.shape[1]
        # one draw per pair, shared by both twins: same masks, same random tokens, same mode
        draw = torch.rand((pairs, width), generator=generator).repeat_interleave(2, dim=0)
        how = torch.rand((pairs, width), generator=generator).repeat_interleave(2, dim=0)
        swap_ids = torch.randint(5, vocab_size, (pairs, width), generator=generator).repeat_interleave(2, dim=0)
        term_mode = (torch.rand(pairs, generator=generator) < term_share).repeat_interleave(2)
        term_mode &= corpus.kind[rows] == KIND_CODES["occupation"]
        forced = torch.where(term_mode, corpus.term[rows], corpus.target[rows])
        real = batch != 0
        special = (batch == 2) | (batch == 3) | ~real
        chosen = (draw < random_mask) & ~special
        forced_mask = torch.zeros_like(chosen)
        has = forced >= 0
        forced_mask[has.nonzero().squeeze(1), forced[has]] = True
        chosen |= forced_mask
        labels = torch.where(chosen, batch, torch.full_like(batch, -100))
        inputs = batch.clone()
        inputs[forced_mask | (chosen & (how < 0.8))] = 4
        swap = chosen & ~forced_mask & (how >= 0.8) & (how < 0.9)
        inputs[swap] = swap_ids[swap]
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


def term_logprobs(model, tokenizer, texts: list[str], term_ids: list[int]):
    """log P(term at the first mask) for every text and gender term: array [texts, terms]."""
    import torch

    enc = tokenizer(texts, padding=True, return_tensors="pt")
    ids = enc["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=enc["attention_mask"]).logits
    is_mask = ids == tokenizer.mask_token_id
    first = is_mask.int().argmax(dim=1)
    if not bool(is_mask.any(dim=1).all()):
        raise RuntimeError("every association sentence must hold a mask")
    rows = torch.arange(len(texts))
    logprobs = torch.log_softmax(logits[rows, first].float(), dim=-1)[:, term_ids]
    return logprobs.numpy().astype(np.float64)


def measure(model, tokenizer, target_ids: list[int], names: list[str], term_ids: list[int]) -> dict[str, np.ndarray]:
    """Item values per (target, template, gender, term): arrays [20, 16, 2, 8], female terms first.

    ``logprob``: log P(target at the template's mask) after each term. ``association`` (Kurita et al.):
    log P(term at its mask | target filled in) - log P(term at its mask | target masked), as the engine
    computes it (albert_audit/engine/association.py; every occupation starts with a consonant, so "a" stays).
    """
    model.eval()
    female = [f for f, _ in GENDER_PAIRS]
    male = [m for _, m in GENDER_PAIRS]
    n_t, n_g, n_o = len(PROBE_TEMPLATES), len(female), len(target_ids)
    lp = measure_logprobs(model, tokenizer, PROBE_TEMPLATES, female + male, target_ids)  # [t, terms, o]
    logprob = lp.transpose(2, 0, 1).reshape(n_o, n_t, 2, n_g)
    mask = tokenizer.mask_token
    filled = [t.replace("[MASK]", name).replace("<group>", mask) for t in PROBE_TEMPLATES for name in names]
    prior = [t.replace("<group>", mask) for t in PROBE_TEMPLATES]
    lf = term_logprobs(model, tokenizer, filled, term_ids).reshape(n_t, n_o, 2 * n_g)
    lq = term_logprobs(model, tokenizer, prior, term_ids).reshape(n_t, 1, 2 * n_g)
    association = (lf - lq).transpose(1, 0, 2).reshape(n_o, n_t, 2, n_g)
    return {"logprob": logprob, "association": association}


def gaps_per_template(cube: np.ndarray) -> np.ndarray:
    """gap[t, o] = mean over female terms - mean over male terms of an item value cube [o, t, 2, terms]."""
    return (cube[:, :, 0].mean(axis=2) - cube[:, :, 1].mean(axis=2)).T


def infer(cube: np.ndarray) -> dict[str, np.ndarray]:
    """The design's default inference of the female - male gap of every occupation (one FDR family)."""
    from albert_audit.inference.crossed import crossed_gap
    from albert_audit.inference.margin_verdicts import GAP_MARGIN, classify

    res = crossed_gap(cube[:, :, 0], cube[:, :, 1], rng=np.random.default_rng(0), alpha=ALPHA, margin=GAP_MARGIN)
    verdict, q, _ = classify(p_value=res.p_value, p_material=res.p_material, p_equivalence=res.p_equivalence,
                             alpha=ALPHA)
    return {"effect": res.effect, "low": res.ci_low, "high": res.ci_high, "tost_low": res.tost_low,
            "tost_high": res.tost_high, "q": q, "verdict": verdict, "scope": res.scope}


def infer_delta(base_cube: np.ndarray, desc_cube: np.ndarray, base: dict, desc: dict) -> dict[str, np.ndarray]:
    """compare's inference of descendant - base per occupation and its change class."""
    from albert_audit.inference.crossed import crossed_delta
    from albert_audit.inference.margin_verdicts import DELTA_MARGIN, change, classify

    res = crossed_delta(base_cube[:, :, 0], base_cube[:, :, 1], desc_cube[:, :, 0], desc_cube[:, :, 1],
                        rng=np.random.default_rng(0), alpha=ALPHA, margin=DELTA_MARGIN)
    verdict, q, _ = classify(p_value=res.p_value, p_material=res.p_material, p_equivalence=res.p_equivalence,
                             alpha=ALPHA)
    classes = change(base_effect=base["effect"], base_verdict=base["verdict"], candidate_effect=desc["effect"],
                     candidate_verdict=desc["verdict"], delta_verdict=verdict)
    return {"effect": res.effect, "low": res.ci_low, "high": res.ci_high, "tost_low": res.tost_low,
            "tost_high": res.tost_high, "q": q, "verdict": verdict, "change": classes}


def pearson(x, y) -> float:
    return float(np.corrcoef(np.asarray(x, float), np.asarray(y, float))[0, 1])


def evaluate(table: list[Occupation], base_cubes: dict, desc_cubes: dict | None, metrics: tuple[str, ...]):
    """Check the known-answer goals of every metric in ``metrics``; return (problems, results per metric).

    Goals (the design's verdicts, margins log 1.25 and log 1.1): every planted skew is ``material`` with its
    sign in both models, every control ``negligible``; the delta's change class is the planted one for the
    amplified and reduced couples and ``negligible`` for all others; Pearson r (planted vs measured) >= 0.9.
    """
    problems: list[str] = []
    results = {}
    for metric in metrics:
        base = infer(base_cubes[metric])
        result = {"base": base, "r_base": pearson([o.base for o in table], base["effect"])}
        stages = [("base", base, [o.base for o in table])]
        if desc_cubes is not None:
            desc = infer(desc_cubes[metric])
            delta = infer_delta(base_cubes[metric], desc_cubes[metric], base, desc)
            result.update(desc=desc, delta=delta, r_desc=pearson([o.descendant for o in table], desc["effect"]))
            stages.append(("descendant", desc, [o.descendant for o in table]))
            for k, o in enumerate(table):
                want = o.change if o.change in ("amplified", "reduced") else "negligible"
                if delta["change"][k] != want:
                    problems.append(f"{metric} delta: {o.name} ({o.change}) is {delta['change'][k]} "
                                    f"({delta['effect'][k]:+.3f} [{delta['low'][k]:+.3f}, {delta['high'][k]:+.3f}])")
        for stage, res, planted in stages:
            r = pearson(planted, res["effect"])
            if r < 0.9:
                problems.append(f"{metric} {stage}: Pearson r {r:.3f} < 0.9")
            for k, o in enumerate(table):
                want = "negligible" if planted[k] == 0 else "material"
                right_sign = planted[k] == 0 or np.sign(res["effect"][k]) == np.sign(planted[k])
                if res["verdict"][k] != want or not right_sign:
                    problems.append(f"{metric} {stage}: {o.name} is {res['verdict'][k]} "
                                    f"({res['effect'][k]:+.3f} [{res['low'][k]:+.3f}, {res['high'][k]:+.3f}]), "
                                    f"planted {planted[k]:+.1f}")
        results[metric] = result
    return problems, results


def print_table(table: list[Occupation], realised: dict, result: dict, metric: str) -> None:
    base, desc, delta = result["base"], result.get("desc"), result.get("delta")
    print(f"\n{metric}\n{'occupation':<11} {'change':<9} {'plant':>5} {'real':>6} {'base':>7} {'verdict':<11} | "
          f"{'plant':>5} {'desc':>7} {'verdict':<11} {'delta':>7} {'90% interval':>17} {'class':<10}")
    for k, o in enumerate(table):
        line = (f"{o.name:<11} {o.change:<9} {o.base:+5.1f} {realised[o.name]['mean']:+6.2f} "
                f"{base['effect'][k]:+7.3f} {base['verdict'][k]:<11}")
        if desc is not None:
            line += (f" | {o.descendant:+5.1f} {desc['effect'][k]:+7.3f} {desc['verdict'][k]:<11} "
                     f"{delta['effect'][k]:+7.3f} [{delta['tost_low'][k]:+.3f}, {delta['tost_high'][k]:+.3f}] "
                     f"{delta['change'][k]:<10}")
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


def reload_check(folder: Path, reference: dict[str, np.ndarray], target_ids: list[int], term_ids: list[int]) -> None:
    """Load the saved folder as a user would (offline) and check it reproduces the measured item values."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(str(folder), local_files_only=True).eval()
    if len(tokenizer) != model.config.vocab_size:
        raise RuntimeError(f"{folder}: tokenizer has {len(tokenizer)} tokens, config {model.config.vocab_size}")
    names = [o.name for o in occupation_table()]
    ids = check_tokenizer(tokenizer, names)
    if [ids[name] for name in names] != target_ids:
        raise RuntimeError(f"{folder}: the reloaded tokenizer maps the occupations to other ids")
    cubes = measure(model, tokenizer, target_ids, names, term_ids)
    for metric, values in reference.items():
        if not np.allclose(cubes[metric], values, atol=1e-4):
            raise RuntimeError(f"{folder}: the reloaded model gives other {metric} values (max difference "
                               f"{np.abs(cubes[metric] - values).max():.2e})")


def _verdict_rows(planted: dict, prefix: str) -> str:
    def fmt(o: dict, key: str) -> str:
        return f"{o[prefix + key]:+.2f}"

    return "\n".join(
        f"| {o['occupation']} | {o['change']} | {o['planted_base']:+.1f} | {fmt(o, 'measured_base')} "
        f"({math.exp(o[prefix + 'measured_base']):.2f}x) {o[prefix + 'verdict_base']} | "
        f"{o['planted_descendant']:+.1f} | "
        f"{fmt(o, 'measured_descendant')} {o[prefix + 'verdict_descendant']} | {o[prefix + 'delta']:+.3f} "
        f"[{o[prefix + 'delta_interval_90'][0]:+.3f}, {o[prefix + 'delta_interval_90'][1]:+.3f}] | "
        f"{o[prefix + 'change_class']} |"
        for o in planted["occupations"])


def write_readme(path: Path, planted: dict) -> None:
    sizes = planted["sizes_bytes"]
    measured = planted["measured"]
    training = planted["training"]
    header = ("| occupation | planted change | planted base | measured base (ratio) verdict | planted descendant | "
              "measured descendant verdict | delta [90% interval] | compare's class |\n"
              "|---|---|---|---|---|---|---|---|")
    has_association = "association_gap" in planted["metrics_with_planted_effects"]
    max_null_delta = max(abs(o[key]) for o in planted["occupations"] if o["change"] in ("unchanged", "control")
                         for key in ("delta", "association_delta") if key in o)
    if has_association:
        association = f"""
### `association_gap` (Kurita et al.: log P(term | occupation filled in) - log P(term | occupation masked))

{header}
{_verdict_rows(planted, "association_")}

Pearson r (planted vs measured): base {measured['association_pearson_r_base']:.3f}, descendant \
{measured['association_pearson_r_descendant']:.3f}.
"""
        can_show = (f"""The builder trains both directions: in a share {training['base']['term_share']} of the
occupation twin pairs the gender term is masked and the occupation shown, so the models also predict a person
noun from an occupation. Kurita et al.'s association (`association_gap`: the person noun scored with the
occupation filled in vs masked) therefore carries the planted log-odds too (the training corpus gives
log P(female term | o) - log P(male term | o) = L(o), since every term has the same number of sentences), and
`tests/test_demo.py` checks it like `logprob_gap`: every planted skew `material` with its sign, every control
`negligible`, compare classing exactly the planted changes.

Limits: the descendant learns only its occupation vectors, so the amplified couples fall short of their
planted log-odds (the classes are right; the sizes are smaller than planted). The unchanged occupations and
the controls are not exactly unchanged either: their occupation vectors keep learning during the fine-tuning,
and the largest such delta is {max_null_delta:.3f} nats against compare's margin of 0.095. The controls' own
gaps are a few hundredths of a nat, and with 16 templates x 8 terms per group a control can differ from zero
"significantly" and still be `negligible`, which is the point of the verdicts.""")
    else:
        association = ""
        can_show = ("Built with `--term-share 0`, the models never see an occupation unmasked: Kurita et al.'s "
                    "association (`association_gap`) is a null by construction.")
    desc = training["descendant"]
    desc_trainable = ("only the 20 occupation vectors learning (their rows of the tied word embeddings;\n  "
                      "encoder, head and all other vectors stay the base's)" if desc["trainable"] == "occupations" else
                      f"all weights (x {desc['shared_lr_scale']} for all but the vocabulary vectors)")
    text = f"""# Demo models (generated by `scripts/make_demo_models.py`; do not edit)

Two tiny ALBERT masked language models with a **planted, known** gender-occupation bias, for the offline
demo (`albert-audit demo`) and the known-answer tests. Built with

    {planted['command']}

(seed {planted['seed']}, one CPU thread; {planted['timings_s']['total'] / 60:.0f} minutes on a shared 2-core \
machine, training {training['base']['seconds'] + training['descendant']['seconds']:.0f} s of it). No calibration \
step: every number below is what training gave. The script's docstring has the full corpus rules; \
`planted.json` has every number.

| file | what |
|---|---|
| `base/` | `AlbertForMaskedLM` trained from scratch on the base corpus ({sizes['base'] / 1e6:.2f} MB) |
| `descendant/` | `base/` fine-tuned on the descendant corpus ({sizes['descendant'] / 1e6:.2f} MB) |
| `planted.json` | planted tables, corpus rules, settings, effects and verdicts measured in both models |
| `demo_probes.yaml` | the demo probe set: {len(PROBE_TEMPLATES)} templates, 8 term pairs, 20 occupations |

sha256 of the weights: `base/model.safetensors` {planted['sha256']['base/model.safetensors']},
`descendant/model.safetensors` {planted['sha256']['descendant/model.safetensors']}
(torch {training['torch']}, transformers {training['transformers']}; another CPU type or library version may
give other last digits).

Model: {planted['model']['num_parameters']:,} parameters (embedding {MODEL['embedding_size']}, hidden \
{MODEL['hidden_size']}, {MODEL['num_hidden_layers']} layers sharing weights, {MODEL['num_attention_heads']} heads, \
intermediate {MODEL['intermediate_size']}, fp32); vocabulary {planted['tokenizer']['vocab_size']} SentencePiece \
pieces (uncased; `<pad>` `<unk>` `[CLS]` `[SEP]` `[MASK]` = ids 0-4 as in albert-large-v2): every corpus word \
is one piece, other words are spelled with letters.

## Corpus and training in short
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
- Twin pairs: every sentence after a female term has a twin after the male term of the same position (same
  frame and words; the occupation differs only where the couple is skewed). Training draws whole twin pairs,
  and both twins get the same masks, random tokens and masking mode, so every batch is gender-balanced for the
  controls.
- Masking: in an occupation pair either the occupation is always [MASK] (share {1 - training['base']['term_share']:.1f})
  or the gender term is (share {training['base']['term_share']:.1f}, occupation shown); pronoun sentences
  always mask the pronoun; other tokens 15% (80/10/10).
- Base: {training['base']['steps']} steps from scratch, lr {training['base']['lr']}, all weights.
- Descendant: the base fine-tuned {training['descendant']['steps']} steps, lr {training['descendant']['lr']}, \
{desc_trainable}.

## Planted vs measured
Measured = the design's effect (mean over the 16 templates of the mean item value over female terms - the same
over male terms, nats; ratio = exp(effect)), verdict with margin log 1.25 (crossed templates x terms
inference, BH over the 20 occupations), delta = descendant - base with its 90% (TOST) interval and compare's
class at the delta margin log 1.1 (0.095 nats): `negligible` needs that interval inside +-0.095.

### `logprob_gap` (log P(occupation at [MASK]) after female vs male terms)

{header}
{_verdict_rows(planted, "")}

Pearson r (planted vs measured): base {measured['pearson_r_base']:.3f}, descendant \
{measured['pearson_r_descendant']:.3f}.
{association}
Known-answer problems found by the script: {len(measured['problems'])}{': ' if measured['problems'] else ''}\
{'; '.join(measured['problems'])}.

## What the demo models can and cannot show

{can_show}
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
    parser.add_argument("--term-share", type=float, default=BASE_TRAIN["term_share"],
                        help="share of occupation twin pairs trained with the gender term masked (0: the "
                             "association is a null by construction)")
    parser.add_argument("--desc-lr", type=float, default=DESC_TRAIN["lr"])
    parser.add_argument("--desc-trainable", choices=TRAINABLE, default=DESC_TRAIN["trainable"],
                        help="descendant: only the occupation vectors learn, or all weights")
    parser.add_argument("--desc-shared-lr-scale", type=float, default=DESC_TRAIN["shared_lr_scale"],
                        help="descendant with --desc-trainable all: learning-rate factor of every weight but the "
                             "vocabulary vectors (tied word embeddings, output bias); 0: frozen")
    parser.add_argument("--desc-weight-decay", type=float, default=DESC_TRAIN["weight_decay"])
    parser.add_argument("--base-from", type=Path, default=None,
                        help="experiments: load the base from this folder instead of training it")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log-every", type=int, default=250)
    parser.add_argument("--check", action="store_true", help="exit 1 when a known-answer goal fails")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # the design's inference (albert_audit.inference) checks the goals
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
    metrics = ("logprob", "association") if args.term_share > 0 else ("logprob",)

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
    terms = [f for f, _ in GENDER_PAIRS] + [m for _, m in GENDER_PAIRS]
    word_ids = check_tokenizer(tokenizer, names + terms + ["she", "he", "her", "his"])
    target_ids = [word_ids[n] for n in names]
    term_ids = [word_ids[g] for g in terms]
    base_data = encode_corpus(tokenizer, base_sentences)
    desc_data = encode_corpus(tokenizer, desc_sentences)
    timings["tokenizer"] = time.perf_counter() - t
    print(f"tokenizer: {len(tokenizer)} pieces; corpus {tuple(base_data.data.shape)} tokens; "
          f"{timings['tokenizer']:.1f} s", flush=True)

    # 3. base model
    torch.manual_seed(args.seed)
    config = AlbertConfig(vocab_size=len(tokenizer), pad_token_id=0, bos_token_id=2, eos_token_id=3, **MODEL)
    model = AlbertForMaskedLM(config)
    controls = [k for k, o in enumerate(table) if o.change == "control"]

    def monitor(m) -> str:
        cubes = measure(m, tokenizer, target_ids, names, term_ids)
        parts = []
        for metric in metrics:
            res = infer(cubes[metric])
            n_material = sum(int(res["verdict"][k] == "material") for k, o in enumerate(table) if o.base != 0)
            parts.append(f"{metric}: r {pearson([o.base for o in table], res['effect']):.3f} material "
                         f"{n_material}/14 controls max|gap| {max(abs(res['effect'][k]) for k in controls):.3f} "
                         f"negligible {sum(int(res['verdict'][k] == 'negligible') for k in controls)}/6")
        return "; ".join(parts)

    base_settings = dict(BASE_TRAIN, steps=args.base_steps, term_share=args.term_share)
    n_params = sum(p.numel() for p in model.parameters())
    if args.base_from is not None:
        model = AlbertForMaskedLM.from_pretrained(str(args.base_from), local_files_only=True).eval()
        base_stats = {"seconds": 0.0, "final_loss": float("nan")}
    else:
        print(f"training base: {n_params} parameters, {base_settings}", flush=True)
        base_stats = train(model, base_data, seed=args.seed + 1, label="base", log_every=args.log_every,
                           monitor=monitor, **base_settings)
    timings["train_base"] = base_stats["seconds"]
    base_cubes = measure(model, tokenizer, target_ids, names, term_ids)
    base_model = AlbertForMaskedLM(config)
    base_model.load_state_dict(model.state_dict())
    base_model.eval()

    # 4. descendant: fine-tune the base on the descendant corpus
    desc_settings = dict(DESC_TRAIN, steps=args.desc_steps, term_share=args.term_share, lr=args.desc_lr,
                         trainable=args.desc_trainable, shared_lr_scale=args.desc_shared_lr_scale,
                         weight_decay=args.desc_weight_decay)
    print(f"fine-tuning descendant: {desc_settings}", flush=True)
    trainable = {k: v for k, v in desc_settings.items() if k != "trainable"}
    only_rows = target_ids if desc_settings["trainable"] == "occupations" else None
    desc_stats = train(model, desc_data, seed=args.seed + 2, label="descendant", log_every=args.log_every,
                       monitor=monitor, only_rows=only_rows, **trainable)
    timings["train_descendant"] = desc_stats["seconds"]
    desc_model = model
    desc_cubes = measure(desc_model, tokenizer, target_ids, names, term_ids)

    # 5. measure and check
    problems, results = evaluate(table, base_cubes, desc_cubes, metrics)
    for metric in metrics:
        print_table(table, realised, results[metric], metric)

    # 6. save
    t = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    save_model(base_model, tokenizer, args.out / "base")
    save_model(desc_model, tokenizer, args.out / "descendant")
    reload_check(args.out / "base", base_cubes, target_ids, term_ids)
    reload_check(args.out / "descendant", desc_cubes, target_ids, term_ids)
    sizes = {"base": folder_bytes(args.out / "base"), "descendant": folder_bytes(args.out / "descendant")}
    if sum(sizes.values()) > MAX_TOTAL_BYTES:
        problems.append(f"the models take {sum(sizes.values())} bytes, more than {MAX_TOTAL_BYTES}")
    sha256 = {stage: hashlib.sha256((args.out / stage / "model.safetensors").read_bytes()).hexdigest()
              for stage in ("base", "descendant")}
    write_probes(args.out / "demo_probes.yaml")
    timings["save"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    command = "python scripts/make_demo_models.py --check" + "".join(
        f" --{name.replace('_', '-')} {value}" for name, value, default in (
            ("seed", args.seed, SEED), ("base_steps", args.base_steps, BASE_TRAIN["steps"]),
            ("desc_steps", args.desc_steps, DESC_TRAIN["steps"]),
            ("term_share", args.term_share, BASE_TRAIN["term_share"]), ("desc_lr", args.desc_lr, DESC_TRAIN["lr"]),
            ("desc_trainable", args.desc_trainable, DESC_TRAIN["trainable"]),
            ("desc_shared_lr_scale", args.desc_shared_lr_scale, DESC_TRAIN["shared_lr_scale"]),
            ("desc_weight_decay", args.desc_weight_decay, DESC_TRAIN["weight_decay"]),
            ("threads", args.threads, 1)) if value != default)
    if args.base_from is not None:  # an experiment: the base was loaded, not trained by this command
        command += f" --base-from {args.base_from}"
    planted = {
        "schema_version": 2,
        "description": "Planted gender-occupation associations of the demo models and what the design's statistics "
                       "measure in them. log_odds = log P(occupation | female term) - log P(occupation | male "
                       "term) in the occupation sentences of the training corpus (realised: from the integer "
                       "counts, mean of the values after 'the' and after 'my'). measured = mean over the probe "
                       "templates of (mean item value over the female terms - the same over the male terms), in "
                       "nats: logprob_gap (log P(occupation at [MASK])) and association_gap (Kurita: log P(term "
                       "| occupation filled in) - log P(term | occupation masked)); verdict: the design's crossed "
                       "(templates x terms) inference, margin log 1.25, BH over the 20 occupations; change: "
                       "compare's class of descendant - base, delta margin log 1.1.",
        "generator": "scripts/make_demo_models.py",
        "command": command,
        "seed": args.seed,
        "probe_set": "demo_probes.yaml",
        "gender_terms": {"female": [f for f, _ in GENDER_PAIRS], "male": [m for _, m in GENDER_PAIRS]},
        "pronouns": PRONOUNS,
        "determiners": DETERMINERS,
        "couples": [{"female_leaning": a, "male_leaning": b, "log_odds_base": lb, "log_odds_descendant": ld,
                     "change": ch} for a, b, lb, ld, ch in OCCUPATION_PAIRS],
        "controls": [o.name for o in table if o.change == "control"],
        "metrics_with_planted_effects": [f"{m}_gap" for m in metrics],
        "occupation_frames": OCCUPATION_FRAMES,
        "pronoun_frames": PRONOUN_FRAMES,
        "filler_frames": FILLER_FRAMES,
        "probe_templates": PROBE_TEMPLATES,
        "corpus": {"sentences": len(base_sentences), "kinds": kinds,
                   "occupation_sentences_per_term_and_couple": OCC_PER_COUPLE,
                   "pronoun_sentences_per_term": PRONOUN_PER_TERM, "filler_share": FILLER_SHARE,
                   "twins": "sentences 2k and 2k+1 are the same sentence after the female and the male term of "
                            "one position (fillers: two fillers); training draws whole twin pairs",
                   "descendant": "the base corpus with occupation words relabelled; nothing else differs"},
        "tokenizer": {"type": "sentencepiece unigram, uncased, identity normalisation",
                      "vocab_size": len(tokenizer), "special_tokens": SPECIAL_TOKENS},
        "model": dict(MODEL, architecture="AlbertForMaskedLM", vocab_size=len(tokenizer), num_parameters=n_params),
        "training": {
            "base": dict(base_settings, seed=args.seed + 1, init="random (torch seed = seed)",
                         seconds=round(base_stats["seconds"], 1), final_loss=round(base_stats["final_loss"], 4)),
            "descendant": dict(desc_settings, seed=args.seed + 2, init="base (all weights fine-tuned)",
                               seconds=round(desc_stats["seconds"], 1),
                               final_loss=round(desc_stats["final_loss"], 4)),
            "calibration": "none: every number is what training gave",
            "masking": "twin pairs share masks, random tokens and mode; occupation sentences: with probability "
                       "term_share the gender term is always [MASK] (occupation shown), else the occupation; "
                       "pronoun sentences: the pronoun always [MASK]; other tokens 15% (80/10/10); loss at "
                       "masked positions only",
            "optimizer": "AdamW betas (0.9, 0.98), eps 1e-6, linear warm-up then linear decay to 0, clip 1.0",
            "threads": args.threads, "torch": torch.__version__, "transformers": transformers.__version__},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "sizes_bytes": sizes,
        "sha256": {f"{stage}/model.safetensors": digest for stage, digest in sha256.items()},
        "statistics": {"unit": "template x term (crossed)", "n_templates": len(PROBE_TEMPLATES),
                       "inference": "albert_audit.inference.crossed (crossed_gap, crossed_delta)",
                       "fdr": "Benjamini-Hochberg over the 20 occupations", "alpha": ALPHA,
                       "margin": "log 1.25", "delta_margin": "log 1.1"},
        "occupations": [],
        "measured": {"pearson_r_base": round(results["logprob"]["r_base"], 4),
                     "pearson_r_descendant": round(results["logprob"]["r_desc"], 4),
                     "problems": problems},
    }
    if "association" in results:
        planted["measured"].update(association_pearson_r_base=round(results["association"]["r_base"], 4),
                                   association_pearson_r_descendant=round(results["association"]["r_desc"], 4))
    for k, o in enumerate(table):
        row = {
            "occupation": o.name, "couple": o.couple, "partner": o.partner, "change": o.change,
            "planted_base": o.base,
            "realised_base": {k2: round(v, 4) for k2, v in realised[o.name].items()},
            "planted_descendant": o.descendant,
            "realised_descendant": {k2: round(v, 4) for k2, v in realised_desc[o.name].items()},
            "counts_base": base_counts[o.name], "counts_descendant": desc_counts[o.name],
        }
        for metric in metrics:
            prefix = "" if metric == "logprob" else "association_"
            res = results[metric]
            row.update({
                f"{prefix}measured_base": round(float(res["base"]["effect"][k]), 4),
                f"{prefix}measured_base_per_template":
                    [round(float(x), 4) for x in gaps_per_template(base_cubes[metric])[:, k]],
                f"{prefix}verdict_base": str(res["base"]["verdict"][k]),
                f"{prefix}measured_descendant": round(float(res["desc"]["effect"][k]), 4),
                f"{prefix}measured_descendant_per_template":
                    [round(float(x), 4) for x in gaps_per_template(desc_cubes[metric])[:, k]],
                f"{prefix}verdict_descendant": str(res["desc"]["verdict"][k]),
                f"{prefix}delta": round(float(res["delta"]["effect"][k]), 4),
                f"{prefix}delta_interval_90": [round(float(res["delta"]["tost_low"][k]), 4),
                                               round(float(res["delta"]["tost_high"][k]), 4)],
                f"{prefix}change_class": str(res["delta"]["change"][k]),
            })
        planted["occupations"].append(row)
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
