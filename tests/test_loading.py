"""Model loading: safe defaults and one clear line for every unusable model."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import time
from pathlib import Path

import pytest

from albert_audit.engine.loading import load_model
from albert_audit.errors import AuditError
from tests.toy_models import build_toy_albert


def test_weights_are_hashed_and_recorded(tiny_model_dir, tiny_model):
    expected = hashlib.sha256((tiny_model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert tiny_model.info.weights_sha256 == {"model.safetensors": expected}
    assert tiny_model.info.model_class == "AlbertForMaskedLM" and tiny_model.info.mask_token == "[MASK]"
    assert tiny_model.info.tokenizer_size == tiny_model.info.vocab_size


def test_checkpoint_without_mlm_head_is_refused(tmp_path):
    folder = build_toy_albert(tmp_path / "classifier", words=["nurse"], architecture="sequence_classification")
    with pytest.raises(AuditError, match=r"AlbertForSequenceClassification.*no masked-language-model head.*"
                                         r"predictions\."):
        load_model(str(folder), device="cpu")


def test_model_folder_without_tokenizer_is_refused(tmp_path, tiny_model_dir):
    folder = tmp_path / "no_tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, folder / name)
    with pytest.raises(AuditError, match="tokenizer"):
        load_model(str(folder), device="cpu")


def test_pickle_weights_need_an_explicit_opt_in(tmp_path, tiny_model):
    folder = tmp_path / "pickled"
    import torch

    folder.mkdir()
    tiny_model.model.config.save_pretrained(folder)
    torch.save(tiny_model.model.state_dict(), folder / "pytorch_model.bin")
    tiny_model.tokenizer.save_pretrained(folder)
    assert (folder / "pytorch_model.bin").is_file()
    with pytest.raises(AuditError, match="pickle.*--allow-pickle"):
        load_model(str(folder), device="cpu")
    assert load_model(str(folder), device="cpu", allow_pickle=True).info.weights_sha256.keys() == {
        "pytorch_model.bin"}


@pytest.mark.parametrize("extra, message", [
    ({"auto_map": {"AutoModelForMaskedLM": "evil.Model"}}, "custom code"),
    ({"_attn_implementation_internal": "evil"}, "private keys"),
])
def test_config_that_could_run_code_is_refused(tmp_path, tiny_model_dir, extra, message):
    folder = tmp_path / "hostile"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(extra)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(AuditError, match=message):
        load_model(str(folder), device="cpu")


def test_hub_model_offline_and_not_cached_is_one_clear_line_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    started = time.perf_counter()
    with pytest.raises(AuditError) as caught:
        load_model("albert-large-v2", device="cpu")
    assert str(caught.value) == ("cannot load 'albert-large-v2': no network access and not in the local cache; "
                                 "pass a local folder with --model")
    assert time.perf_counter() - started < 10


def test_hub_model_in_the_local_cache_loads_offline_with_its_commit(tmp_path, monkeypatch, tiny_model_dir):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--someorg--tiny-albert"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    loaded = load_model("someorg/tiny-albert", device="cpu")
    assert loaded.info.commit == commit and loaded.info.id == "someorg/tiny-albert"


@pytest.mark.parametrize("ref, message", [
    ("./no/such/folder", "no such folder"),
    ("a/b/c/d", "no such folder"),
])
def test_missing_local_folder_is_a_clear_error(ref, message):
    with pytest.raises(AuditError, match=message):
        load_model(ref, device="cpu")


def test_a_folder_without_config_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AuditError, match="no config.json"):
        load_model(str(tmp_path / "empty"), device="cpu")


def test_unknown_device_and_dtype_are_refused(tiny_model_dir):
    with pytest.raises(AuditError, match="--dtype"):
        load_model(str(tiny_model_dir), device="cpu", dtype="float8")
    with pytest.raises(AuditError, match="--device"):
        load_model(str(tiny_model_dir), device="tpu")


def test_weights_files_listed_are_the_loaded_ones(tiny_model):
    assert all(Path(tiny_model.info.path, name).is_file() for name in tiny_model.info.weights_sha256)


def _copy_model(tiny_model_dir: Path, folder: Path) -> Path:
    shutil.copytree(tiny_model_dir, folder)
    return folder


def test_corrupt_safetensors_is_one_clear_line(tmp_path, tiny_model_dir):
    folder = _copy_model(tiny_model_dir, tmp_path / "corrupt")
    weights = folder / "model.safetensors"
    weights.write_bytes(b"\x00garbage, not a safetensors file" * 64)
    with pytest.raises(AuditError) as caught:
        load_model(str(folder), device="cpu")
    message = str(caught.value)
    assert message.startswith(f"cannot load {str(folder)!r} as a masked language model: SafetensorError: ")
    assert len(message.splitlines()) == 1


def test_config_sizes_that_do_not_match_the_weights_are_refused(tmp_path, tiny_model_dir):
    folder = _copy_model(tiny_model_dir, tmp_path / "mismatched")
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = int(config["intermediate_size"]) + 8
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(AuditError) as caught:
        load_model(str(folder), device="cpu")
    message = str(caught.value)
    assert message.startswith(f"cannot load {str(folder)!r} as a masked language model: RuntimeError: ")
    assert message.endswith("(the sizes in config.json do not match the weight files)")
    assert len(message.splitlines()) == 1


def test_pickle_weights_that_do_not_unpickle_are_refused(tmp_path, tiny_model_dir):
    folder = _copy_model(tiny_model_dir, tmp_path / "bad_pickle")
    (folder / "model.safetensors").unlink()
    # a pickled global (builtins.print) that the weights-only unpickler refuses
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(print, protocol=2))
    with pytest.raises(AuditError) as caught:
        load_model(str(folder), device="cpu", allow_pickle=True)
    message = str(caught.value)
    assert message.startswith(f"cannot load {str(folder)!r} as a masked language model: UnpicklingError: ")
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize("content, found", [([{"model_type": "albert"}], "a list"), ("albert", "a string"),
                                            (None, "null")])
def test_config_that_is_not_a_json_object_is_refused(tmp_path, tiny_model_dir, content, found):
    folder = _copy_model(tiny_model_dir, tmp_path / "listed")
    (folder / "config.json").write_text(json.dumps(content))
    with pytest.raises(AuditError, match=rf"cannot load .*listed.*config\.json must hold a JSON object.*{found}"):
        load_model(str(folder), device="cpu")
