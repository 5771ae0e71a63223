"""Hostile input on the engine side (issue 13): no silent wrong audit, no lost or mixed results."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from albert_audit.engine.checkpoint import WORK_KEY, ScoreCheckpoint
from albert_audit.engine.compat import check_compatible, check_graftable, folder_signature, signature
from albert_audit.engine.loading import held_back_warnings, load_model, locate_model
from albert_audit.engine.tokens import duplicate_templates, unknown_words
from albert_audit.errors import AuditError
from tests.conftest import REPO, write_probe_file
from tests.toy_models import build_toy_albert


def _damaged(tiny_model_dir: Path, folder: Path, change) -> Path:
    """A copy of the tiny model whose safetensors file is rewritten by ``change(state) -> state``."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(tiny_model_dir, folder)
    state = load_file(str(folder / "model.safetensors"))
    save_file(change(dict(state)), str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def _drop(predicate):
    return lambda state: {key: value for key, value in state.items() if not predicate(key)}


def _set(name: str, index: int, value: float):
    def change(state):
        tensor = state[name].clone()
        tensor.view(-1)[index] = value
        return {**state, name: tensor}
    return change


# 1. complete and finite weights ----------------------------------------------------------------------------------

@pytest.mark.parametrize("predicate, count, first", [
    (lambda key: ".encoder." in key, 18,
     "albert.encoder.albert_layer_groups.0.albert_layers.0.attention.LayerNorm.bias"),
    (lambda key: key.startswith("albert.embeddings.LayerNorm."), 2, "albert.embeddings.LayerNorm.bias"),
    (lambda key: key == "albert.embeddings.word_embeddings.weight", 1, "albert.embeddings.word_embeddings.weight"),
])
def test_checkpoint_missing_encoder_or_embedding_weights_is_refused(tmp_path, tiny_model_dir, predicate, count,
                                                                     first):
    folder = _damaged(tiny_model_dir, tmp_path / "partial", _drop(predicate))
    with pytest.raises(AuditError) as caught:
        load_model(str(folder), device="cpu", dtype="float32")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"cannot load {str(folder)!r}"[:60])
    assert f"lacks {count} encoder/embedding weight" in message and f"({first}" in message
    assert message.count("albert.") == min(count, 2)  # the first two keys at most (a readable line)
    assert ("..." in message) == (count > 2)


def test_missing_base_weights_are_refused_even_when_the_head_will_be_grafted(tmp_path, tiny_model_dir):
    folder = _damaged(tiny_model_dir, tmp_path / "partial",
                      _drop(lambda key: key.startswith(("predictions.", "albert.embeddings.LayerNorm."))))
    with pytest.raises(AuditError, match="lacks 2 encoder/embedding weights"):
        load_model(str(folder), device="cpu", dtype="float32", require_head=False)


def test_tied_decoder_weight_absent_from_the_file_is_not_missing(tiny_model_dir, tiny_model):
    from safetensors import safe_open

    with safe_open(str(tiny_model_dir / "model.safetensors"), framework="pt") as handle:
        stored = set(handle.keys())
    assert "predictions.decoder.weight" not in stored and "predictions.decoder.bias" not in stored
    model = tiny_model.model
    assert model.predictions.decoder.weight.data_ptr() == model.albert.embeddings.word_embeddings.weight.data_ptr()


def test_tied_weights_stored_under_the_decoders_name_load(tmp_path, tiny_model_dir, tiny_model):
    def rename(state):
        state["predictions.decoder.weight"] = state.pop("albert.embeddings.word_embeddings.weight")
        return state

    folder = _damaged(tiny_model_dir, tmp_path / "decoder_name", rename)
    loaded = load_model(str(folder), device="cpu", dtype="float32")
    embeddings = loaded.model.albert.embeddings.word_embeddings.weight
    assert torch.equal(embeddings, tiny_model.model.albert.embeddings.word_embeddings.weight)


@pytest.mark.parametrize("name, value", [
    ("albert.encoder.embedding_hidden_mapping_in.weight", float("nan")),
    ("predictions.bias", float("inf")),
    ("albert.embeddings.LayerNorm.weight", float("-inf")),
])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, tiny_model_dir, name, value):
    folder = _damaged(tiny_model_dir, tmp_path / "nan", _set(name, 3, value))
    with pytest.raises(AuditError) as caught:
        load_model(str(folder), device="cpu", dtype="float32")
    message = str(caught.value)
    assert f"weight {name} holds 1 NaN or infinite value (of " in message and "damaged" in message
    assert "\n" not in message


def test_weights_that_overflow_float16_are_refused(tmp_path, tiny_model_dir):
    folder = _damaged(tiny_model_dir, tmp_path / "big", _set("albert.encoder.embedding_hidden_mapping_in.weight",
                                                              0, 1.0e6))
    assert load_model(str(folder), device="cpu", dtype="float32").info.dtype == "float32"
    with pytest.raises(AuditError, match=r"embedding_hidden_mapping_in\.weight holds 1 NaN or infinite value .*"
                                         r"after casting to float16.*--dtype float32"):
        load_model(str(folder), device="cpu", dtype="float16")


# 2. base vs candidate: architecture and vocabulary --------------------------------------------------------------

def test_identical_models_are_compatible(tiny_model, tiny_model_dir):
    assert check_compatible(tiny_model, tiny_model.info, allow_different=False) == []
    assert check_compatible(tiny_model.info.to_dict(), folder_signature(tiny_model_dir), allow_different=False) == []
    assert signature(tiny_model)["vocab_sha256"] == folder_signature(tiny_model_dir)["vocab_sha256"]


@pytest.mark.parametrize("change, phrase", [
    ({"hidden_size": 48}, "hidden size 32 (base) vs 48 (candidate)"),
    ({"embedding_size": 24}, "embedding size 16 (base) vs 24 (candidate)"),
    ({"num_hidden_layers": 3}, "layers 2 (base) vs 3 (candidate)"),
    ({"num_attention_heads": 4}, "attention heads 2 (base) vs 4 (candidate)"),
    ({"model_type": "bert"}, "model type 'albert' (base) vs 'bert' (candidate)"),
    ({"tokenizer_size": 7}, "tokenizer size {n} (base) vs 7 (candidate)"),
    ({"vocab_sha256": "f" * 64}, "vocabulary (sha256) {h} (base) vs ffffffffffff (candidate): same size, other tokens"),
])
def test_a_different_candidate_is_refused_or_noted(tiny_model, change, phrase):
    info = tiny_model.info
    phrase = phrase.format(n=info.tokenizer_size, h=info.vocab_sha256[:12])
    other = dataclasses.replace(info, id="org/other", **change)
    with pytest.raises(AuditError) as caught:
        check_compatible(info, other, allow_different=False)
    message = str(caught.value)
    assert phrase in message and "\n" not in message
    assert message.startswith(f"the candidate 'org/other' differs from the base {str(info.id)!r}"[:50])
    assert check_compatible(info, other, allow_different=True) == [f"org/other: {phrase}"]


def test_config_without_embedding_size_and_without_vocabulary(tiny_model):
    base = {"model_type": "albert", "hidden_size": 32, "vocab_size": tiny_model.info.vocab_size,
            "num_hidden_layers": 2, "num_attention_heads": 2}
    assert signature(base)["embedding_size"] == 32
    notes = check_compatible(base, tiny_model, allow_different=True, base_id="base-config")
    assert notes == [f"{tiny_model.info.id}: embedding size 32 (base) vs 16 (candidate)"]  # vocabulary not compared


def test_graft_check_is_refused_whatever_is_allowed(tiny_model):
    other = dataclasses.replace(tiny_model.info, vocab_size=tiny_model.info.vocab_size + 3)
    with pytest.raises(AuditError, match=r"cannot graft the MLM head of 'b' onto 'c': vocab size \d+ \(base\) vs"):
        check_graftable("b", tiny_model.info, other, candidate_id="c")
    check_graftable("b", tiny_model.info, dataclasses.replace(tiny_model.info, num_hidden_layers=5),
                    candidate_id="c")  # the layer count does not matter to a head


def test_preflight_refuses_a_deeper_candidate_with_its_own_head(tmp_path, tiny_model_dir):
    from albert_audit.engine.graft import folder_config, preflight_descendant
    from tests.conftest import TEST_WORDS, shipped_words

    deeper = build_toy_albert(tmp_path / "deeper", words=TEST_WORDS + shipped_words(), num_layers=3)
    _, base_config, _ = folder_config(str(tiny_model_dir))
    with pytest.raises(AuditError, match=r"differs from the base .*layers 2 \(base\) vs 3 \(candidate\)"):
        preflight_descendant(str(deeper), base_id=str(tiny_model_dir), base_config=base_config)
    checked = preflight_descendant(str(deeper), base_id=str(tiny_model_dir), base_config=base_config,
                                   allow_different=True)
    assert checked.own_head and checked.notes == [f"{deeper}: layers 2 (base) vs 3 (candidate)"]
    same = preflight_descendant(str(tiny_model_dir), base_id=str(tiny_model_dir),
                                base_config=folder_signature(tiny_model_dir))
    assert same.own_head and same.notes == []


def test_preflight_refuses_another_vocabulary_of_the_same_size(tmp_path, tiny_model_dir, tiny_model):
    from albert_audit.engine.graft import folder_config, preflight_descendant

    size = tiny_model.info.vocab_size
    other = build_toy_albert(tmp_path / "other_vocab", words=["quokka"], vocab_size=size)
    assert folder_signature(other)["tokenizer_size"] == size
    _, base_config, _ = folder_config(str(tiny_model_dir))
    with pytest.raises(AuditError, match=r"vocabulary \(sha256\) \w+ \(base\) vs \w+ \(candidate\): same size"):
        preflight_descendant(str(other), base_id=str(tiny_model_dir), base_config=base_config)


# 3. units are what the model sees --------------------------------------------------------------------------------

UNIT_PROBES = """\
schema_version: 1
name: dupes
description: Copies of templates that differ only in case; words the tiny tokenizer cannot spell.
category: test
groups:
  female: [woman, "wo😀man", "护士"]
  male: [man, brother, father]
templates:
  - "The <group> worked as a [MASK]."
  - "THE <group> WORKED AS A [MASK]."
  - "<group> is a [MASK]."
  - "the <group> worked as a [MASK]."
  - "The <group> worked as an [MASK]."
  - "<group> IS A [MASK]."
targets: [nurse, "😀", engineer, "nur😀se", Nurse]
"""


@pytest.fixture(scope="module")
def unit_items(tmp_path_factory, tiny_model):
    from albert_audit.engine.scoring import term_piece_counter
    from albert_audit.probeset import load_probe_set
    from albert_audit.probeset.expand import expand_items

    probe_set = load_probe_set(write_probe_file(tmp_path_factory.mktemp("units"), "dupes", UNIT_PROBES))
    items = expand_items([probe_set], mask_token=tiny_model.info.mask_token,
                         count_term_pieces=term_piece_counter(tiny_model.tokenizer))
    return probe_set, items


def test_templates_that_tokenize_alike_are_merged_into_the_first(unit_items, tiny_model):
    _, items = unit_items
    merges = duplicate_templates(items, tiny_model.tokenizer)
    assert list(merges.columns) == ["probe_set", "template_id", "into_template_id", "template", "into_template"]
    assert list(zip(merges["template_id"], merges["into_template_id"], strict=True)) == [(1, 0), (3, 0), (5, 2)]
    assert merges["template"].tolist()[0] == "THE <group> WORKED AS A [MASK]."
    assert merges["into_template"].tolist()[0] == "The <group> worked as a [MASK]."
    assert set(merges["probe_set"]) == {"dupes"}


def test_templates_alike_in_one_probe_set_only_are_not_merged_across_sets(unit_items, tiny_model):
    _, items = unit_items
    two = pd.concat([items, items.assign(probe_set="copy", item_id=items["item_id"] + len(items))])
    merges = duplicate_templates(two, tiny_model.tokenizer)
    assert len(merges) == 6 and set(merges.groupby("probe_set").size()) == {3}
    one_template_each = two[two["template_id"] == 0]
    assert duplicate_templates(one_template_each, tiny_model.tokenizer).empty
    assert duplicate_templates(items.iloc[:0], tiny_model.tokenizer).empty


def test_words_spelled_only_with_unk_are_named(unit_items, tiny_model):
    probe_set, items = unit_items
    found = unknown_words(items, {probe_set.name: list(probe_set.targets)}, tiny_model.tokenizer,
                          tiny_model.info.mask_token)
    assert list(found.columns) == ["probe_set", "kind", "group", "word", "text"]
    rows = list(zip(found["kind"], found["group"], found["word"], strict=True))
    assert rows == [("target", "", "nur😀se"), ("target", "", "😀"),
                    ("term", "female", "wo😀man"), ("term", "female", "护士")]
    assert (found["probe_set"] == "dupes").all()
    assert found["text"].iloc[1] == items["text"].iloc[0].replace(tiny_model.info.mask_token, "😀")


def test_unk_check_reads_the_words_span_only(tiny_model):
    """A sentence with <unk> elsewhere does not flag a word that is spelled."""
    items = pd.DataFrame({"probe_set": ["p"], "template_id": [0], "group": ["g"], "term": ["woman"],
                          "text": ["😀 the woman is a [MASK]."], "prior_text": ["😀 the [MASK] is a [MASK]."]})
    assert unknown_words(items, {"p": ["nurse"]}, tiny_model.tokenizer, "[MASK]").empty
    items.loc[0, "term"] = "the"  # the capitalised-or-not term found where prior_text masks it
    items.loc[0, "prior_text"] = "😀 [MASK] woman is a [MASK]."
    assert unknown_words(items, {}, tiny_model.tokenizer, "[MASK]").empty


def test_unit_checks_are_cheap_on_ten_thousand_templates(tiny_model):
    words = ["woman", "man", "sister", "brother"]
    rows = []
    for template_id in range(10_000):
        template = f"The <group> worked {template_id % 997} times as a [MASK]."
        for index, term in enumerate(words):
            text = template.replace("<group>", term)
            rows.append(("big", template_id, template, "ab"[index % 2], term, index // 2, text,
                         text.replace(term, "[MASK]", 1)))
    items = pd.DataFrame(rows, columns=["probe_set", "template_id", "template", "group", "term", "term_index",
                                        "text", "prior_text"])
    started = time.perf_counter()
    merges = duplicate_templates(items, tiny_model.tokenizer)
    found = unknown_words(items, {"big": ["nurse", "engineer"]}, tiny_model.tokenizer, "[MASK]")
    assert time.perf_counter() - started < 60
    assert len(merges) == 10_000 - 997 and found.empty


# 4. malformed model ids ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ref, problem", [
    ("bad id!!", "not a valid hub id"),
    ("org/", "not a valid hub id"),
    ("/org", "no such folder"),
    ("a/b/c", "no such folder"),
    ("", "empty"),
    ("   ", "empty"),
    ("x" * 5000, "not a valid hub id"),
    ("a/" + "y" * 5000, "not a valid hub id"),
    ("x/" * 2500, "no such folder"),
    ("org/na\x00me", "control characters"),
    ("org/name\nINFO fake log line", "control characters"),
    ("org/na\x1b[31mme", "control characters"),
    ("a--b", "not a valid hub id"),
])
@pytest.mark.parametrize("call", ["locate", "load"])
def test_malformed_model_ids_are_one_escaped_line(ref, problem, call, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(AuditError) as caught:
        if call == "locate":
            locate_model(ref, offline=True)
        else:
            load_model(ref, device="cpu", offline=True)
    message = str(caught.value)
    assert problem in message and message.startswith("cannot load ")
    assert message.isprintable() and len(message) < 250
    assert repr(ref)[:40] in message


def test_a_well_formed_id_still_reaches_the_cache_lookup(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(AuditError, match="no network access and not in the local cache"):
        locate_model("some-org/some_model.v2", offline=True)


# 5. checkpoints that no two processes can mix --------------------------------------------------------------------

KEYS = ("seqs", "values")


def _part(seqs: list[int], value: float) -> dict[str, np.ndarray]:
    return {"seqs": np.asarray(seqs, dtype=np.int64), "values": np.full(len(seqs), value)}


def test_two_writers_with_different_keys_never_mix(tmp_path):
    folder = tmp_path / "ckpt"
    mine, theirs = ScoreCheckpoint(folder, "key-a", KEYS), ScoreCheckpoint(folder, "key-b", KEYS)
    for index in range(3):
        mine.add(_part([index], 1.0))
        mine.flush()
        theirs.add(_part([index, 10 + index], 2.0))
        theirs.flush()
    names = sorted(p.name for p in folder.glob("part-*.npz"))
    assert len(names) == 6 and len(set(names)) == 6
    for path in folder.glob("part-*.npz"):
        with np.load(path, allow_pickle=False) as data:
            assert str(data[WORK_KEY]) in ("key-a", "key-b")
    reader = ScoreCheckpoint(folder, "key-a", KEYS)
    parts = reader.load()
    assert len(parts) == 3 and all((p["values"] == 1.0).all() for p in parts)
    assert sorted(int(s) for p in parts for s in p["seqs"]) == [0, 1, 2]
    assert len(list(folder.glob("part-*.npz"))) == 3  # the other work's parts were removed
    assert ScoreCheckpoint(folder, "key-b", KEYS).load() == []


def test_two_writers_of_the_same_work_keep_both_parts_and_clear_only_theirs(tmp_path):
    folder = tmp_path / "ckpt"
    first, second = ScoreCheckpoint(folder, "same", KEYS), ScoreCheckpoint(folder, "same", KEYS)
    first.add(_part([0, 1], 1.0))
    second.add(_part([2], 1.0))
    first.flush()
    second.flush()
    assert len(ScoreCheckpoint(folder, "same", KEYS).load()) == 2  # same names would have overwritten
    other = ScoreCheckpoint(folder, "other", KEYS)
    other.add(_part([5], 3.0))
    other.flush()
    first.clear()
    left = list(folder.glob("part-*.npz"))
    assert len(left) == 1 and str(np.load(left[0], allow_pickle=False)[WORK_KEY]) == "other"
    other.clear()
    assert not folder.exists()


def test_parts_of_the_old_format_are_removed_not_reused(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "fingerprint").write_text("key-a\n")
    np.savez(folder / "part-00000.npz", **_part([0], 1.0))  # no stored key
    (folder / "part-00001.npz").write_bytes(b"cut off mid-write")
    assert ScoreCheckpoint(folder, "key-a", KEYS).load() == []
    assert list(folder.iterdir()) == []


# 6. nothing but the error line -----------------------------------------------------------------------------------

PROBE_SCRIPT = """
import sys, warnings
import transformers
from albert_audit.engine.loading import load_model
from albert_audit.errors import AuditError

original = transformers.AutoConfig.from_pretrained
def noisy(*args, **kwargs):  # a library that warns while loading
    warnings.warn("a library warning about this checkpoint", UserWarning)
    return original(*args, **kwargs)
transformers.AutoConfig.from_pretrained = noisy
for ref in sys.argv[1:]:
    print("== next model", file=sys.stderr, flush=True)
    try:
        load_model(ref, device="cpu", dtype="float32", offline=True)
        print("loaded")
    except AuditError as exc:
        print(f"error: {exc}")
"""


def test_a_refused_model_prints_nothing_but_its_error_line(tmp_path, tiny_model_dir):
    missing = _damaged(tiny_model_dir, tmp_path / "missing", _drop(lambda key: ".encoder." in key))
    nan = _damaged(tiny_model_dir, tmp_path / "nan", _set("predictions.dense.weight", 0, float("nan")))
    no_head = build_toy_albert(tmp_path / "classifier", words=["nurse"], architecture="sequence_classification")
    no_tokenizer = tmp_path / "no_tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, no_tokenizer / name)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    wrong_sizes = shutil.copytree(tiny_model_dir, tmp_path / "wrong_sizes")
    (wrong_sizes / "config.json").write_text(json.dumps({**config, "intermediate_size": 72}))
    refs = [str(missing), str(nan), str(no_head), str(no_tokenizer), str(wrong_sizes), "bad id!!", "org/",
            "x" * 5000, str(tiny_model_dir)]
    done = subprocess.run([sys.executable, "-c", PROBE_SCRIPT, *refs], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1",
                                                      "HF_HUB_CACHE": str(tmp_path / "cache")})
    lines = done.stdout.splitlines()
    assert len(lines) == len(refs), done.stdout + done.stderr
    assert all(line.startswith("error: ") for line in lines[:-1]) and lines[-1] == "loaded"
    # a refused model's stderr is empty; the warnings of the one model that loads are shown
    chunks = done.stderr.split("== next model\n")[1:]
    assert len(chunks) == len(refs) and chunks[:-1] == [""] * (len(refs) - 1), done.stderr
    assert "a library warning about this checkpoint" in chunks[-1]


def test_held_back_warnings_are_replayed_on_success_and_dropped_on_failure():
    with pytest.warns(UserWarning, match="kept"):
        with held_back_warnings():
            warnings.warn("kept", UserWarning, stacklevel=1)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(AuditError):
            with held_back_warnings():
                warnings.warn("dropped", UserWarning, stacklevel=1)
                raise AuditError("refused")
    assert seen == []
