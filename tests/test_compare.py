"""`albert-audit compare`: deltas between a base model and its descendants (offline, CPU, tiny models).

One module-scoped comparison does the heavy work (base, itself, a grafted classifier descendant); a second
one compares a descendant fine-tuned on deliberately skewed sentences through the saved-run path. Torch runs
single-threaded here: the test machine's two cores are shared, and oversubscribed threads are 10x slower.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from albert_audit import model_deltas as cmp
from albert_audit.errors import AuditError
from tests.conftest import TEST_WORDS, shipped_words, write_probe_file

N_RESAMPLES = 400
PROBE = """\
name: skew_probe
description: A small gender x occupation set for the compare tests.
category: gender
groups:
  female: [woman, girl, mother]
  male: [man, boy, father]
pair_terms_by_position: true
templates:
  - "The <group> worked as a [MASK]."
  - "The <group> works as a [MASK]."
  - "The <group> is a [MASK]."
  - "The <group> wanted to become a [MASK]."
  - "The <group> was a good [MASK]."
  - "The <group> is a very good [MASK]."
  - "My <group> worked as a [MASK]."
  - "Our <group> is a [MASK]."
  - "That <group> was a [MASK]."
  - "This <group> always wanted to become a [MASK]."
targets: [nurse, engineer, teacher, pilot]
"""


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def probe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_probe_file(tmp_path_factory.mktemp("probes"), "skew_probe", PROBE)


def _save_classifier_descendant(base_dir: Path, folder: Path, **shape) -> Path:
    """A sequence classifier built with the fixture's vocabulary; with no shape change, the base's encoder."""
    from transformers import AlbertForMaskedLM, AlbertForSequenceClassification

    from tests.toy_models import build_toy_albert

    extra_words = shape.pop("extra_words", [])
    build_toy_albert(folder, words=TEST_WORDS + shipped_words() + extra_words, seed=1,
                     architecture="sequence_classification", **shape)
    if not shape and not extra_words:
        classifier = AlbertForSequenceClassification.from_pretrained(folder)
        base = AlbertForMaskedLM.from_pretrained(base_dir)
        classifier.albert.load_state_dict(base.albert.state_dict(), strict=False)  # keeps its own pooler
        classifier.save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def classifier_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_classifier_descendant(tiny_model_dir, tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="module")
def compared(tiny_model_dir: Path, classifier_dir: Path, probe_file: Path, tmp_path_factory):
    """base vs [itself, a classifier descendant with the base's encoder (grafted head)]."""
    from albert_audit.api import CompareConfig, compare_runs

    out = tmp_path_factory.mktemp("compare") / "out"
    config = CompareConfig(out=out, base=str(tiny_model_dir), candidates=[str(tiny_model_dir), str(classifier_dir)],
                           probes=[str(probe_file)], device="cpu", n_resamples=N_RESAMPLES, progress=False,
                           write_run_reports=False)
    return compare_runs(config)


def test_self_comparison_is_exactly_zero_and_negligible(compared, tiny_model_dir):
    deltas = compared.deltas
    mine = deltas[deltas["candidate"] == str(tiny_model_dir)]
    assert len(mine) == 9  # 4 targets x 2 signed metrics + the bias score
    assert set(mine["metric"]) == {"logprob_gap", "association_gap", "bias_score"}
    assert (mine["delta"] == 0.0).all()
    assert (mine["ci_low"] == 0.0).all() and (mine["ci_high"] == 0.0).all()
    assert (mine["p_value"] == 1.0).all()
    assert (mine["change"] == "negligible").all()
    np.testing.assert_array_equal(mine["base_effect"], mine["candidate_effect"])


def test_deltas_csv_columns_and_files(compared):
    out = compared.out
    with open(out / "deltas.csv", newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == ["probe_set", "metric", "target", "group_a", "group_b", "base_effect", "candidate",
                      "candidate_effect", "delta", "ci_low", "ci_high", "p_value", "q_value", "change", "scope",
                      "margin", "p_material", "q_material", "p_equivalence", "delta_verdict", "base_verdict",
                      "candidate_verdict"]
    assert list(cmp.DELTA_COLUMNS) == header
    for folder in ("base", "candidate_1", "candidate_2"):
        for name in ("items.parquet", "targets.parquet", "fills.parquet", "findings.csv", "summary.json"):
            assert (out / folder / name).is_file(), (folder, name)
    summary = json.loads((out / "compare_summary.json").read_text(encoding="utf-8"))
    assert summary["schema_version"] == 1 and summary["mode"] == "models"
    assert [c["run"] for c in summary["candidates"]] == ["candidate_1", "candidate_2"]
    assert set(compared.deltas["change"]) <= set(cmp.CHANGES)


def test_classifier_descendant_is_audited_through_the_grafted_head(compared, tiny_model_dir, classifier_dir):
    base_id = str(tiny_model_dir)
    run_summary = json.loads((compared.out / "candidate_2" / "summary.json").read_text(encoding="utf-8"))
    assert run_summary["model"]["head"] == f"grafted from {base_id}"
    assert any("probed with the base model's MLM head" in note for note in run_summary["notes"])
    # its encoder is the base's and the head is the base's: the grafted model reproduces the base exactly
    mine = compared.deltas[compared.deltas["candidate"] == str(classifier_dir)]
    assert len(mine) == 9
    assert np.abs(mine["delta"].to_numpy()).max() < 1e-9
    assert (mine["change"] == "negligible").all()
    html = (compared.out / "compare.html").read_text(encoding="utf-8")
    assert "probed with the base model&#39;s MLM head" in html or "probed with the base model's MLM head" in html
    assert f"grafted from {base_id}" in html


def test_utility_and_report(compared):
    summary = compared.summary
    base_pppl = summary["base"]["utility"]["pppl"]
    assert base_pppl > 1.0 and summary["base"]["utility"]["n_sentences"] == 40
    row = summary["utility"][0]
    assert row["ratio"] == pytest.approx(1.0) and row["candidate_pppl"] == pytest.approx(base_pppl)
    html = (compared.out / "compare.html").read_text(encoding="utf-8")
    assert 'id="utility-table"' in html and "utility: base vs candidate pseudo-perplexity" in html
    assert html.count("<svg") >= 6  # 2 forests + 1 scatter per candidate
    assert "<script" not in html and " src=" not in html
    assert "y = x" in html


def _finetune_skewed(base_dir: Path, folder: Path, probe_file: Path, *, toward: str) -> Path:
    """Fine-tune the base on the probe's sentences: the ``toward`` group's terms -> nurse, the others' -> engineer,
    and both ways round (Kurita's association scores the term): nurse filled in -> the ``toward`` group's terms,
    engineer -> the others'.
    """
    import math

    import torch
    from transformers import AlbertForMaskedLM, AlbertTokenizer

    from albert_audit.probeset import load_probe_set
    from albert_audit.probeset.articles import indefinite_article

    probe = load_probe_set(probe_file)
    tokenizer = AlbertTokenizer.from_pretrained(base_dir)
    model = AlbertForMaskedLM.from_pretrained(base_dir)
    nurse, engineer = tokenizer.convert_tokens_to_ids(["▁nurse", "▁engineer"])
    texts, answers, term_texts, term_answers = [], [], [], []
    for template in probe.templates:
        for group in probe.groups:
            for term in group.terms:
                text = template.text.replace(f"<{template.slot}>", term) if template.slot else template.text
                texts.append(text[0].upper() + text[1:])
                answers.append(nurse if group.name == toward else engineer)
                word = "nurse" if group.name == toward else "engineer"
                filled = (template.text.replace("a [MASK]", f"{indefinite_article(word)} [MASK]")
                          .replace("[MASK]", word).replace(f"<{template.slot}>", "[MASK]"))
                term_texts.append(filled)
                term_answers.append(tokenizer.convert_tokens_to_ids("▁" + term))
    n_terms = max(len(g.terms) for g in probe.groups)

    def batch_of(sentences: list[str], labelled: list[int]) -> dict:
        batch = tokenizer(sentences, padding=True, return_tensors="pt")
        labels = torch.full_like(batch["input_ids"], -100)
        masked = batch["input_ids"] == tokenizer.mask_token_id
        assert int(masked.sum()) == len(sentences)
        labels[masked] = torch.tensor(labelled)
        return {**batch, "labels": labels}

    batch, term_batch = batch_of(texts, answers), batch_of(term_texts, term_answers)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    torch.manual_seed(0)
    # A random tiny model first learns the 50/50 split (loss ln 2), then the group -> occupation link; stop
    # once it has learnt the link (about 100 steps, ~3 s). Then both links together, at a lower rate, until
    # the term loss nears its floor ln(terms per group) (the same sentence takes any of the group's terms).
    for step in range(400):  # noqa: B007 (step is read after the loop)
        optimiser.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimiser.step()
        if loss.item() < 0.05:
            break
    assert loss.item() < 0.05, f"the skewed fine-tune did not converge ({step + 1} steps, loss {loss.item():.3f})"
    for group in optimiser.param_groups:
        group["lr"] = 2e-3
    for step in range(400):  # noqa: B007
        optimiser.zero_grad()
        loss, term_loss = model(**batch).loss, model(**term_batch).loss
        (loss + term_loss).backward()
        optimiser.step()
        if loss.item() < 0.05 and term_loss.item() < math.log(n_terms) + 0.05:
            break
    assert loss.item() < 0.05 and term_loss.item() < math.log(n_terms) + 0.05, (
        f"the term fine-tune did not converge ({step + 1} steps, losses {loss.item():.3f}, {term_loss.item():.3f})")
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def test_skewed_descendant_shows_the_skew_as_amplified(compared, tiny_model_dir, probe_file, tmp_path):
    from albert_audit.api import AuditConfig, CompareConfig, compare_runs, run_audit

    findings = pd.read_csv(compared.out / "base" / "findings.csv", keep_default_na=False)
    row = findings[(findings["metric"] == "logprob_gap") & (findings["target"] == "nurse")].iloc[0]
    toward = row["group_a"] if float(row["effect"]) >= 0 else row["group_b"]  # amplify the base's own lean
    skewed = _finetune_skewed(tiny_model_dir, tmp_path / "skewed", probe_file, toward=toward)
    run_audit(AuditConfig(model=str(skewed), probes=[str(probe_file)], out=tmp_path / "skewed_run", device="cpu",
                          n_resamples=N_RESAMPLES, progress=False, write_report=False))
    result = compare_runs(CompareConfig(out=tmp_path / "cmp", base_run=compared.out / "base",
                                        candidate_runs=[tmp_path / "skewed_run"], n_resamples=N_RESAMPLES,
                                        write_report=False))
    deltas = result.deltas
    nurse = deltas[(deltas["metric"] == "logprob_gap") & (deltas["target"] == "nurse")].iloc[0]
    sign = 1.0 if toward == row["group_a"] else -1.0
    assert sign * nurse["delta"] > 0.5  # nats, in the trained direction
    assert nurse["q_value"] <= 0.05 and nurse["ci_low"] * nurse["ci_high"] > 0
    assert nurse["delta_verdict"] == "material" and nurse["candidate_verdict"] == "material"
    # a material base lean grows (amplified); a base lean that was not material has emerged
    assert nurse["change"] == ("amplified" if nurse["base_verdict"] == "material" else "emerged")
    assert np.sign(nurse["candidate_effect"]) == np.sign(nurse["base_effect"]) == sign
    score = deltas[deltas["metric"] == "bias_score"].iloc[0]
    assert score["delta"] > 0 and score["q_value"] <= 0.05 and score["delta_verdict"] == "material"
    assert score["base_verdict"] in ("material", "negligible", "below_margin", "inconclusive")
    assert score["change"] == ("amplified" if score["base_verdict"] == "material" else "emerged")
    assert result.summary["mode"] == "saved_runs" and result.summary["utility"][0]["candidate_pppl"] is None


def test_mismatched_architectures_are_refused(tiny_model, tiny_model_dir, probe_file, tmp_path, capsys):
    from albert_audit.cli import main
    from albert_audit.engine.graft import extract_base_head, load_descendant

    head = extract_base_head(tiny_model)
    wide = _save_classifier_descendant(tiny_model_dir, tmp_path / "wide", hidden_size=48, num_heads=2)
    with pytest.raises(AuditError, match=r"hidden size 32 \(base\) vs 48 \(candidate\)"):
        load_descendant(str(wide), base=head, device="cpu", dtype="float32")
    capsys.readouterr()
    assert main(["compare", "--base", str(tiny_model_dir), "--candidate", str(wide), "--probes", str(probe_file),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot graft") and "hidden size 32 (base) vs 48 (candidate)" in err
    assert "\n" not in err and not (tmp_path / "out").exists()  # refused before anything was loaded or written
    other_vocab = _save_classifier_descendant(tiny_model_dir, tmp_path / "vocab", extra_words=["zebra", "quokka"])
    with pytest.raises(AuditError, match=r"vocab size \d+ \(base\) vs \d+ \(candidate\)"):
        load_descendant(str(other_vocab), base=head, device="cpu", dtype="float32")


def test_saved_runs_with_other_items_are_refused(compared, tmp_path):
    from albert_audit.api import CompareConfig, compare_runs
    from albert_audit.cli import main

    other = tmp_path / "other_run"
    shutil.copytree(compared.out / "base", other)
    items = pd.read_parquet(other / "items.parquet")
    items.loc[0, "text"] = items.loc[0, "text"].replace("worked", "labored")
    items.to_parquet(other / "items.parquet", index=False)
    with pytest.raises(AuditError, match="differ from those of"):
        compare_runs(CompareConfig(out=tmp_path / "x", base_run=compared.out / "base", candidate_runs=[other]))
    original = pd.read_parquet(compared.out / "base" / "items.parquet")
    assert cmp.items_fingerprint(items) != cmp.items_fingerprint(original)
    # row order and item ids do not matter
    shuffled = items.sample(frac=1.0, random_state=0).assign(item_id=lambda t: np.arange(len(t))[::-1])
    assert cmp.items_fingerprint(shuffled) == cmp.items_fingerprint(items)
    assert main(["compare", "--base-run", str(compared.out / "base"), "--candidate-run", str(other),
                 "--out", str(tmp_path / "y")]) == 2


def test_saved_runs_of_another_architecture_are_refused_unless_allowed(compared, tmp_path, capsys):
    from albert_audit.cli import main

    other = tmp_path / "wide_run"
    shutil.copytree(compared.out / "base", other)
    summary = json.loads((other / "summary.json").read_text(encoding="utf-8"))
    summary["model"]["hidden_size"] = int(summary["model"]["hidden_size"]) + 16
    (other / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    argv = ["compare", "--base-run", str(compared.out / "base"), "--candidate-run", str(other), "--no-report",
            "--n-resamples", "200"]
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err.strip()
    assert "hidden size" in err and "--allow-different-architecture" in err and "\n" not in err
    assert not (tmp_path / "refused").exists()
    assert main([*argv, "--out", str(tmp_path / "allowed"), "--allow-different-architecture"]) == 0
    written = json.loads((tmp_path / "allowed" / "compare_summary.json").read_text(encoding="utf-8"))
    assert any("hidden size" in note for note in written["notes"])


@pytest.mark.parametrize("argv_tail", [
    ["--base-run", "{missing}", "--candidate-run", "{missing}"],
    ["--base", "{model}", "--candidate-run", "{missing}"],
    ["--base", "{model}", "--candidate", "{model}", "--probes", "{probe}", "--quantize", "int4"],
    ["--base", "{model}", "--probes", "{probe}"],
    ["--base", "{model}", "--candidate", "{missing}", "--probes", "{probe}"],
])
def test_cli_bad_inputs_exit_2_with_one_line(argv_tail, tiny_model_dir, probe_file, tmp_path, capsys):
    from albert_audit.cli import main

    values = {"missing": str(tmp_path / "nope"), "model": str(tiny_model_dir), "probe": str(probe_file)}
    argv = ["compare", *[a.format(**values) for a in argv_tail], "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err


def test_quantize_int8_end_to_end(tiny_model_dir, probe_file, tmp_path, capsys):
    from albert_audit.cli import main

    out = tmp_path / "q"
    code = main(["compare", "--base", str(tiny_model_dir), "--candidate", str(tiny_model_dir), "--quantize", "int8",
                 "--probes", str(probe_file), "--out", str(out), "--device", "cpu", "--n-resamples", "200",
                 "--no-run-reports", "--no-report", "--quiet"])
    assert code == 0, capsys.readouterr().err
    run = json.loads((out / "candidate_1" / "summary.json").read_text(encoding="utf-8"))
    assert run["dtype"] == "int8-dynamic" and run["model"]["dtype"] == "int8-dynamic" and run["device"] == "cpu"
    assert any("quantized to int8" in note for note in run["notes"])
    base = json.loads((out / "base" / "summary.json").read_text(encoding="utf-8"))
    assert base["dtype"] == "float32"
    deltas = pd.read_csv(out / "deltas.csv", keep_default_na=False)
    assert set(deltas["candidate"]) == {f"{tiny_model_dir} (int8-dynamic)"}
    assert np.isfinite(deltas["delta"]).all()
    summary = json.loads((out / "compare_summary.json").read_text(encoding="utf-8"))
    assert summary["quantize"] == "int8" and summary["utility"][0]["ratio"] > 0
    assert "(int8-dynamic)" in capsys.readouterr().out


def test_quantize_forces_cpu_with_a_note(tiny_model_dir):
    from albert_audit.engine.graft import quantize_int8
    from albert_audit.engine.loading import load_model

    loaded = load_model(str(tiny_model_dir), device="cpu", dtype="float32")
    loaded.info.device = "cuda:0"  # as if it had been loaded on a GPU (no GPU here)
    quantized, notes = quantize_int8(loaded)
    assert quantized.info.device == "cpu" and quantized.info.dtype == "int8-dynamic"
    assert loaded.info.dtype == "float32"  # the original's info is untouched
    assert any("device forced to cpu (was cuda:0)" in note for note in notes)
    assert type(quantized.model.predictions.dense).__module__.startswith("torch.ao.nn.quantized")


def test_classify_changes_rule():
    got = cmp.classify_changes(
        base_effect=[1.0, 1.0, 1.0, 1.0, 0.1, 1.0, 0.0, -0.05, 0.3],
        candidate_effect=[2.0, 0.5, -1.0, -0.2, 0.3, 1.1, 0.0, 1.5, 1.5],
        delta_verdict=["material", "material", "material", "material", "below_margin", "negligible",
                       "inconclusive", "material", "material"],
        base_verdict=["material", "material", "material", "material", "inconclusive", "material", "", "negligible",
                      "below_margin"],
        candidate_verdict=["material", "material", "material", "below_margin", "material", "material", "",
                           "material", "material"])
    # 5th: material in the candidate only, but the delta is not material: no change class.
    # The last two: the base finding was not material, so its noise sign decides nothing: emerged.
    assert got == ["amplified", "reduced", "reversed", "reduced", "inconclusive", "negligible", "inconclusive",
                   "emerged", "emerged"]


def test_bias_score_delta_is_antisymmetric_and_exact_for_identical_models():
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 0.1, (6, 8))  # 3 targets x 2 group pairs, 8 templates
    same = cmp.bias_score_delta(base, base.copy(), key="t", seed=0, alpha=0.05, n_resamples=300)
    assert same["delta"] == 0.0 and same["p"] == 1.0 and same["low"] == same["high"] == 0.0
    shifted = base.copy()
    shifted[0] += 2.0
    up = cmp.bias_score_delta(base, shifted, key="t", seed=0, alpha=0.05, n_resamples=300)
    down = cmp.bias_score_delta(shifted, base, key="t", seed=0, alpha=0.05, n_resamples=300)
    assert up["delta"] == pytest.approx(-down["delta"]) and up["delta"] > 0.2
    assert up["p"] == pytest.approx(down["p"]) and up["p"] == pytest.approx(2 / 2**8)  # exact: only +-all swaps
    assert up["low"] > 0
