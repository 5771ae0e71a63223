"""Descendants of a base model: graft the base's MLM head onto a head-less checkpoint; int8 dynamic quantization.

Most fine-tuned descendants of albert-large-v2 on a hub are classifiers (sequence classification, token
classification, question answering) saved without the masked-language-model head. Their encoder can still
be probed through the *base* model's head: the ``predictions.*`` weights (dense, LayerNorm, output bias) are
copied from the base, and the decoder stays tied to the descendant's own word embeddings (as the
architecture ties them). What the descendant's encoder learnt is then read out by the base's head, so every
output says so: ``ModelInfo.head = "grafted from <base id>"``.

The graft is refused (an AuditError naming both values) when the architectures don't fit: another
model_type, vocabulary size, embedding or hidden size, or another vocabulary (``compat.check_graftable``). A
candidate with its own head whose architecture or vocabulary differs from the base is refused too, unless the
caller allows it (``compat.check_compatible``, called by ``preflight_descendant``).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from albert_audit.engine.compat import check_compatible, check_graftable, read_config, vocabulary_fields
from albert_audit.engine.loading import LoadedModel, is_head_key, load_model, locate_model, weight_files
from albert_audit.errors import AuditError

INT8_DTYPE = "int8-dynamic"
"""The dtype label of a dynamically quantized model (nn.Linear weights int8, activations quantized per batch)."""
GRAFT_NOTE = "probed with the base model's MLM head"


@dataclass
class BaseHead:
    """What a graft needs from the base model (kept after the base model itself is freed)."""

    model_id: str
    config: dict[str, Any]
    vocab: dict[str, int]
    head: dict[str, torch.Tensor] = field(default_factory=dict)


def extract_base_head(loaded: LoadedModel) -> BaseHead:
    """Copy (to CPU, fp32) the MLM head weights of a loaded base model, except the decoder weight.

    The decoder weight is tied to the word embeddings, so a descendant keeps its own; the output bias and
    every other head weight come from here.
    """
    model = loaded.model
    embeddings = model.get_input_embeddings().weight
    head: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        if not is_head_key(model, name):
            continue
        if tensor.data_ptr() == embeddings.data_ptr():
            continue  # the tied decoder weight
        head[name] = tensor.detach().to("cpu", torch.float32).clone()
    if not head:
        raise AuditError(f"{loaded.info.id!r}: found no MLM head weights to graft")
    return BaseHead(model_id=loaded.info.id, config=loaded.model.config.to_dict(),
                    vocab=dict(loaded.tokenizer.get_vocab()), head=head)


def checkpoint_keys(folder: Path, *, allow_pickle: bool = False) -> set[str]:
    """The tensor names stored in a model folder's weight files (safetensors headers; pickle only if allowed)."""
    keys: set[str] = set()
    for path in weight_files(folder, allow_pickle=allow_pickle):
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                keys.update(handle.keys())
        else:
            try:  # weights_only: tensors and plain containers only, no code runs (pickle needs --allow-pickle)
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # a legacy (non-zip) pickle cannot be memory-mapped
                state = torch.load(path, map_location="cpu", weights_only=True)
            keys.update(state.keys())
    return keys


def has_mlm_head(folder: Path, *, allow_pickle: bool = False) -> bool:
    """True when the checkpoint stores MLM head weights (``predictions.*``, ``cls.predictions.*``, ``lm_head.*``)."""
    markers = ("predictions.", "cls.predictions.", "lm_head.", "generator_lm_head.", "vocab_projector.")
    for key in checkpoint_keys(folder, allow_pickle=allow_pickle):
        bare = key.split(".", 1)[1] if key.startswith(("albert.", "bert.", "roberta.")) else key
        if key.startswith(markers) or bare.startswith(markers):
            return True
    return False


def _check_same_vocab(base: BaseHead, loaded: LoadedModel) -> None:
    vocab = loaded.tokenizer.get_vocab()
    if vocab != base.vocab:
        differ = sorted(set(vocab.items()) ^ set(base.vocab.items()), key=lambda kv: kv[1])
        example = f" (e.g. {differ[0][0]!r})" if differ else ""
        raise AuditError(f"cannot graft the MLM head of {base.model_id!r} onto {loaded.info.id!r}: the tokenizers' "
                         f"vocabularies differ ({len(base.vocab)} vs {len(vocab)} tokens{example}); the head's "
                         "output bias is indexed by token id")


def graft_head(loaded: LoadedModel, base: BaseHead) -> LoadedModel:
    """Copy the base's head weights into a descendant loaded with a random head; tie the decoder to its embeddings.

    Changes ``loaded`` in place and returns it, with ``info.head = "grafted from <base id>"``.
    """
    model = loaded.model
    _check_same_vocab(base, loaded)
    decoder = model.get_output_embeddings()
    embeddings = model.get_input_embeddings()
    if decoder is None or embeddings is None:
        raise AuditError(f"{loaded.info.id!r}: the model has no output embeddings to tie the grafted head to")
    if decoder.weight.data_ptr() != embeddings.weight.data_ptr():
        decoder.weight = embeddings.weight  # the architecture ties them; make sure the graft does too
    state = model.state_dict()
    missing = [name for name in base.head if name not in state]
    if missing:
        raise AuditError(f"cannot graft the MLM head of {base.model_id!r} onto {loaded.info.id!r}: it has no "
                         f"{', '.join(missing[:3])}")
    with torch.no_grad():
        for name, tensor in base.head.items():
            target = state[name]
            if tuple(target.shape) != tuple(tensor.shape):
                raise AuditError(f"cannot graft the MLM head of {base.model_id!r} onto {loaded.info.id!r}: "
                                 f"{name} has shape {tuple(tensor.shape)} (base) vs {tuple(target.shape)} "
                                 "(candidate)")
            target.copy_(tensor.to(target.device, target.dtype))
    loaded.info.head = f"grafted from {base.model_id}"
    return loaded


def folder_config(model_ref: str, *, revision: str | None = None, offline: bool = False,
                  allow_pickle: bool = False) -> tuple[Path, dict[str, Any], bool]:
    """Locate a model without loading it: ``(folder, config.json content, has its own MLM head)``."""
    folder = locate_model(model_ref, revision=revision, offline=offline, allow_pickle=allow_pickle)
    return folder, read_config(folder), has_mlm_head(folder, allow_pickle=allow_pickle)


@dataclass
class CandidateCheck:
    """What ``preflight_descendant`` found: whether the candidate has its own MLM head, and notes on allowed
    differences from the base (empty when it matches)."""

    own_head: bool
    notes: list[str] = field(default_factory=list)


def preflight_descendant(model_ref: str, *, base_id: str, base_config: dict[str, Any], revision: str | None = None,
                         offline: bool = False, allow_pickle: bool = False,
                         allow_different: bool = False) -> CandidateCheck:
    """Check a candidate before anything is loaded or scored.

    A head-less candidate must be graftable (``check_graftable``: always refused otherwise). Then its
    architecture and vocabulary must match the base's (``check_compatible``): refused, or noted when
    ``allow_different``. ``base_config``: the base's ``compat.folder_signature`` (or its bare config.json
    content, in which case the base's tokenizer is read from ``base_id`` here).
    """
    folder, config, own_head = folder_config(model_ref, revision=revision, offline=offline, allow_pickle=allow_pickle)
    base = dict(base_config)
    if base.get("vocab_sha256") is None:
        base.update(vocabulary_fields(locate_model(base_id, offline=offline, allow_pickle=allow_pickle)))
    candidate = {**config, **vocabulary_fields(folder)}
    if not own_head:
        check_graftable(base_id, base, candidate, candidate_id=model_ref)
    notes = check_compatible(base, candidate, allow_different=allow_different, base_id=base_id,
                             candidate_id=model_ref)
    return CandidateCheck(own_head=own_head, notes=notes)


def load_descendant(model_ref: str, *, base: BaseHead, revision: str | None = None, device: str = "auto",
                    dtype: str = "auto", offline: bool = False, trust_remote_code: bool = False,
                    allow_pickle: bool = False) -> LoadedModel:
    """Load a candidate model: with its own MLM head if it has one, else with the base's head grafted on."""
    folder = locate_model(model_ref, revision=revision, offline=offline, allow_pickle=allow_pickle)
    if has_mlm_head(folder, allow_pickle=allow_pickle):
        return load_model(model_ref, revision=revision, device=device, dtype=dtype, offline=offline,
                          trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    check_graftable(base.model_id, base.config, read_config(folder), candidate_id=model_ref)
    loaded = load_model(model_ref, revision=revision, device=device, dtype=dtype, offline=offline,
                        trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, require_head=False)
    return graft_head(loaded, base)


def quantize_int8(loaded: LoadedModel) -> tuple[LoadedModel, list[str]]:
    """Dynamically quantize every nn.Linear to int8 (torch.ao dynamic quantization, CPU only).

    Returns the quantized model (a copy with a copy of the info: ``dtype = "int8-dynamic"``, ``device = "cpu"``)
    and notes (e.g. that the device was forced to CPU; a model on a GPU is moved to the CPU first). Log-softmax
    stays fp32 in the engine.
    """
    from torch.ao.quantization import quantize_dynamic

    notes: list[str] = []
    model = loaded.model
    if loaded.info.device != "cpu":
        notes.append(f"{loaded.info.id}: int8 dynamic quantization runs on CPU only; device forced to cpu "
                     f"(was {loaded.info.device})")
        model = model.to("cpu")
    if loaded.info.dtype != "float32":
        notes.append(f"{loaded.info.id}: weights cast from {loaded.info.dtype} to float32 before quantization")
        model = model.to(torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice (moving to torchao)
        quantized = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    quantized.eval()
    n_linear = sum(1 for m in model.modules() if isinstance(m, torch.nn.Linear))
    notes.append(f"{loaded.info.id}: {n_linear} nn.Linear layers dynamically quantized to int8 (torch.ao); "
                 "embeddings and LayerNorm stay float32")
    info = dataclasses.replace(loaded.info, device="cpu", dtype=INT8_DTYPE)
    return LoadedModel(model=quantized, tokenizer=loaded.tokenizer, info=info), notes
