"""Checks of the committed demo models (albert_audit/demo_models), offline and with plain torch.

The models, probe set and planted table are built by scripts/make_demo_models.py. These tests do not
rebuild them; they check that what is committed is loadable offline, small, self-consistent, and that
the base model still shows the planted gaps (recomputed here, independently of the albert_audit engine).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

DEMO = Path(__file__).resolve().parents[1] / "albert_audit" / "demo_models"
FOLDERS = ("base", "descendant")
MAX_TOTAL_BYTES = 10 * 1024 * 1024
SPECIAL_IDS = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}


@pytest.fixture(scope="module")
def planted() -> dict:
    return json.loads((DEMO / "planted.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def probes():
    from albert_audit.probeset import load_probe_set

    return load_probe_set(DEMO / "demo_probes.yaml")


@pytest.fixture(scope="module")
def models():
    """(model, tokenizer) per folder, loaded the way a user would, with the hub switched off."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        loaded = {}
        for name in FOLDERS:
            tokenizer = AutoTokenizer.from_pretrained(str(DEMO / name), local_files_only=True)
            model = AutoModelForMaskedLM.from_pretrained(str(DEMO / name), local_files_only=True).eval()
            loaded[name] = (model, tokenizer)
    return loaded


def _gaps(model, tokenizer, probes) -> np.ndarray:
    """gap[template, target] = mean log P(target at [MASK]) over female terms - the same over male terms."""
    import torch

    groups = {g.name: list(g.terms) for g in probes.groups}
    terms = groups["female"] + groups["male"]
    texts = [t.text.replace("<group>", term).replace("[MASK]", tokenizer.mask_token)
             for t in probes.templates for term in terms]
    target_ids = [tokenizer(" " + t, add_special_tokens=False)["input_ids"][0] for t in probes.targets]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        rows, cols = (enc["input_ids"] == tokenizer.mask_token_id).nonzero(as_tuple=True)
        assert len(rows) == len(texts), "every probe sentence must hold exactly one mask token"
        logp = torch.log_softmax(logits[rows, cols].float(), dim=-1)[:, target_ids].double().numpy()
    logp = logp.reshape(len(probes.templates), len(terms), len(target_ids))
    n_female = len(groups["female"])
    return logp[:, :n_female].mean(axis=1) - logp[:, n_female:].mean(axis=1)


def test_files_are_safetensors_and_small():
    total = 0
    for name in FOLDERS:
        folder = DEMO / name
        for required in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
            assert (folder / required).is_file(), f"{name}/{required} is missing"
        pickles = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
        assert not pickles, f"{name} holds pickle files {pickles}"
        total += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total <= MAX_TOTAL_BYTES, f"the demo models take {total} bytes, more than 10 MB"


def test_config_and_tokenizer_agree(models):
    vocabularies = []
    for name, (model, tokenizer) in models.items():
        config = json.loads((DEMO / name / "config.json").read_text(encoding="utf-8"))
        assert config["model_type"] == "albert"
        assert config["architectures"] == ["AlbertForMaskedLM"]
        assert not [k for k in config if k.startswith("_")], "private keys are refused by the loader"
        assert len(tokenizer) == model.config.vocab_size == config["vocab_size"]
        for special, wanted in SPECIAL_IDS.items():
            assert getattr(tokenizer, f"{special}_token_id") == wanted, special
        assert tokenizer.mask_token == "[MASK]"
        ids = tokenizer("The Woman worked as a [MASK] .")["input_ids"]
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert ids.count(tokenizer.mask_token_id) == 1
        assert tokenizer.convert_ids_to_tokens(ids[1:3]) == ["\u2581the", "\u2581woman"]  # uncased
        vocabularies.append(tokenizer.get_vocab())
    assert vocabularies[0] == vocabularies[1], "base and descendant must share one tokenizer"


def test_probe_set_is_valid_and_targets_are_single_pieces(probes, models):
    assert probes.name == "demo_gender_occupation"
    assert not probes.warnings
    assert probes.pair_terms_by_position
    assert len(probes.templates) >= 12
    model, tokenizer = models["base"]
    longest = max(len(tokenizer(t.text.replace("<group>", term))["input_ids"])
                  for t in probes.templates for g in probes.groups for term in g.terms)
    assert longest <= model.config.max_position_embeddings
    words = list(probes.targets) + [term for group in probes.groups for term in group.terms]
    for word in words:
        pieces = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        assert len(pieces) == 1 and pieces[0] != tokenizer.unk_token_id, f"{word!r} is {pieces}"


def test_planted_table_matches_the_probe_set(planted, probes):
    groups = {g.name: list(g.terms) for g in probes.groups}
    assert planted["gender_terms"] == groups
    assert planted["probe_templates"] == [t.text for t in probes.templates]
    rows = planted["occupations"]
    assert [r["occupation"] for r in rows] == list(probes.targets)
    assert planted["measured"]["problems"] == []
    by_name = {r["occupation"]: r for r in rows}
    assert sorted(planted["controls"]) == sorted(r["occupation"] for r in rows if r["change"] == "control")
    assert len(planted["controls"]) >= 4
    for row in rows:
        partner = by_name[row["partner"]]
        assert partner["planted_base"] == -row["planted_base"], "couples mirror each other"
        assert partner["change"] == row["change"]
        base, desc = row["planted_base"], row["planted_descendant"]
        if row["change"] == "control":
            assert base == desc == 0.0
            assert row["counts_base"]["female"] == row["counts_base"]["male"]
            assert row["counts_descendant"] == row["counts_base"]
        elif row["change"] == "unchanged":
            assert base == desc != 0.0
            assert row["counts_descendant"] == row["counts_base"]
        elif row["change"] == "amplified":
            assert abs(desc) > abs(base) > 0 and math.copysign(1, desc) == math.copysign(1, base)
        else:
            assert row["change"] == "reduced"
            assert abs(base) > abs(desc) > 0 and math.copysign(1, desc) == math.copysign(1, base)
        assert abs(row["realised_base"]["mean"] - base) < 0.1


GAP_MARGIN = math.log(1.25)  # the design's default margin of a log-ratio gap
DELTA_MARGIN = math.log(1.1)  # and of a delta between two models


def _association(model, tokenizer, probes) -> np.ndarray:
    """Kurita's association gap per [template, target]: log P(term at its mask | target filled in) - log P(term
    at its mask | target masked), mean over female terms - mean over male terms (every target is one piece and
    starts with a consonant, so the template's "a" stays)."""
    import torch

    groups = {g.name: list(g.terms) for g in probes.groups}
    terms = groups["female"] + groups["male"]
    term_ids = [tokenizer(" " + t, add_special_tokens=False)["input_ids"][0] for t in terms]
    mask = tokenizer.mask_token
    texts = [t.text.replace("[MASK]", target).replace("<group>", mask)
             for t in probes.templates for target in probes.targets]
    texts += [t.text.replace("<group>", mask) for t in probes.templates]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    first = (enc["input_ids"] == tokenizer.mask_token_id).int().argmax(dim=1)
    logp = torch.log_softmax(logits[torch.arange(len(texts)), first].float(), dim=-1)[:, term_ids].double().numpy()
    n_t, n_o = len(probes.templates), len(probes.targets)
    association = logp[: n_t * n_o].reshape(n_t, n_o, len(terms)) - logp[n_t * n_o:].reshape(n_t, 1, len(terms))
    n_female = len(groups["female"])
    return association[:, :, :n_female].mean(axis=2) - association[:, :, n_female:].mean(axis=2)


@pytest.mark.parametrize(("measure", "prefix"), [(_gaps, ""), (_association, "association_")])
def test_base_model_shows_the_planted_gaps(models, probes, planted, measure, prefix):
    """Recomputed with plain torch: the values planted.json reports, every skew with its planted sign in every
    template, and the controls (no calibration: their gaps are what training gave) well inside the margin."""
    gaps = measure(*models["base"], probes)
    mean = gaps.mean(axis=0)
    rows = planted["occupations"]
    planted_base = np.array([r["planted_base"] for r in rows])
    np.testing.assert_allclose(mean, [r[f"{prefix}measured_base"] for r in rows], atol=1e-3)
    for k, row in enumerate(rows):
        if row["change"] == "control":
            assert abs(mean[k]) < GAP_MARGIN / 2, row["occupation"]
        else:
            signs = np.sign(gaps[:, k])
            assert (signs == np.sign(planted_base[k])).all(), f"{row['occupation']}: {gaps[:, k]}"
    assert np.corrcoef(planted_base, mean)[0, 1] >= 0.9


@pytest.mark.parametrize("measure", [_gaps, _association])
def test_descendant_moves_as_planted(models, probes, planted, measure):
    base = measure(*models["base"], probes)
    delta = measure(*models["descendant"], probes) - base
    for k, row in enumerate(planted["occupations"]):
        away = np.sign(row["planted_base"]) * delta[:, k]  # > 0: further from 0 than in the base
        if row["change"] == "amplified":
            assert (away > 0).all(), row["occupation"]
        elif row["change"] == "reduced":
            assert (away < 0).all(), row["occupation"]
        else:  # unchanged and controls: the mean delta inside the delta margin (compare tests the interval)
            assert abs(delta[:, k].mean()) < DELTA_MARGIN, row["occupation"]
