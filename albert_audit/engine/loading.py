"""Load a masked language model and its tokenizer from the hub or a local folder, safely.

Safety rules (docs/reliability.md lists the traps they guard against): safetensors unless the user opts in to
pickle weights; no remote code unless asked; a checkpoint without its MLM head is refused instead of being
given a random head; a checkpoint missing any encoder or embedding weight (which transformers would silently
initialise at random) or holding a NaN/inf weight is refused; a tokenizer whose size does not fit the model is
refused; a malformed hub id is refused before any file or network access. A failed load prints nothing but its
one AuditError line: transformers' and the hub client's loading reports are silenced, and Python warnings
raised while loading are held back and replayed only when the load succeeds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from albert_audit.errors import AuditError, quoted

#: Unused embedding rows a model may carry beyond its tokenizer (vocabularies padded to a multiple of 64/128).
MAX_PADDING_ROWS = 128
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
#: One part of a hub id ("name" or "org/name"): ASCII letters, digits, "-", "_", ".", at most 96 characters,
#: not starting or ending with "-" or ".", without "--" or "..".
_HUB_ID_PART = re.compile(r"(?!.*(--|\.\.))[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?")
#: How many characters of a model reference an error message shows.


@dataclass
class ModelInfo:
    """Where a model came from and how it runs; recorded in summary.json."""

    id: str
    revision: str | None
    commit: str | None
    path: str
    model_class: str
    model_type: str
    num_parameters: int
    vocab_size: int
    tokenizer_size: int
    mask_token: str
    weights_sha256: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    dtype: str = "float32"
    head: str = "own"
    max_length: int = 512
    hidden_size: int | None = None
    embedding_size: int | None = None
    num_hidden_layers: int | None = None
    num_attention_heads: int | None = None
    vocab_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON."""
        return asdict(self)


@dataclass
class LoadedModel:
    """A model ready for scoring: eval mode, on its device, with its tokenizer."""

    model: Any
    tokenizer: Any
    info: ModelInfo


def resolve_device(device: str = "auto") -> str:
    """Pick cuda > mps > cpu for "auto"; check that an explicit choice exists."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AuditError(f"--device {device}: no CUDA GPU is available on this machine")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise AuditError("--device mps: Apple MPS is not available on this machine")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise AuditError(f"--device {device!r}: expected auto, cpu, cuda, cuda:N or mps")
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    """bf16 on a GPU that supports it, fp32 otherwise ("auto"); or the dtype named."""
    import torch

    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in names:
        raise AuditError(f"--dtype {dtype!r}: expected auto, float32, bfloat16 or float16")
    return names[dtype]


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """True when the hub's host answers a TCP connection within the timeout (no HTTP request is made)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host, port = parsed.hostname or "huggingface.co", parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _commit_from_path(path: Path) -> str | None:
    """The 40-hex commit of a hub cache snapshot folder (models--org--name/snapshots/<commit>/)."""
    parts = path.resolve().parts
    if len(parts) >= 2 and parts[-2] == "snapshots" and len(parts[-1]) == 40:
        return parts[-1]
    return None


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (or its repr when the message is empty)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else repr(exc)


def _check_config(config: dict[str, Any], where: str, *, trust_remote_code: bool) -> None:
    """Refuse config.json content that could run code or hijack loading (CVE-2026-4372 and kin)."""
    if "auto_map" in config and not trust_remote_code:
        raise AuditError(f"{where}: config.json asks for custom code (auto_map); refusing. Pass "
                         "--trust-remote-code only if you trust this repository")
    hidden = sorted(key for key in config if key.startswith("_") and key not in ("_name_or_path",))
    if hidden:
        raise AuditError(f"{where}: config.json has private keys {hidden} that can change how code loads; "
                         "refusing")
    if "model_type" not in config:
        raise AuditError(f"{where}: config.json has no model_type; not a transformers model folder")


def _local_snapshot(model_ref: str, revision: str | None) -> Path | None:
    """The cached snapshot folder of a hub model, without touching the network (None if not cached)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(model_ref, "config.json", revision=revision,
                                       cache_dir=os.environ.get("HF_HUB_CACHE") or None)
    except ValueError as exc:  # HFValidationError: a revision the hub client refuses
        raise AuditError(f"cannot load {quoted(model_ref)} at revision {quoted(revision)}: {_first_line(exc)}") from exc
    if isinstance(found, str):
        return Path(found).parent
    return None


def _fetch_snapshot(model_ref: str, revision: str | None, *, allow_pickle: bool) -> Path:
    """Download the files a masked LM needs from the hub into the cache; return the snapshot folder."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.model", "*.txt", "*.safetensors"]
    if allow_pickle:
        patterns.append("*.bin")
    try:
        return Path(snapshot_download(model_ref, revision=revision, allow_patterns=patterns))
    except Exception as exc:  # the hub client raises many kinds; all mean "not loadable"
        raise AuditError(f"cannot load {model_ref!r}: {type(exc).__name__}: {_first_line(exc)}") from exc


def check_hub_id(model_ref: str) -> None:
    """Refuse a reference that is neither a local folder nor a well-formed hub id (``name`` or ``org/name``)."""
    parts = model_ref.split("/")
    if len(parts) > 2 or not all(_HUB_ID_PART.fullmatch(part) for part in parts):
        raise AuditError(f"cannot load {quoted(model_ref)}: no such folder, and not a valid hub id (name or "
                         "org/name: letters, digits, '-', '_' and '.', at most 96 characters each)")


def _is_folder(path: Path) -> tuple[bool, bool]:
    """(exists, is a folder), False for a name the file system cannot even look up (too long, NUL bytes)."""
    try:
        return path.exists(), path.is_dir()
    except (OSError, ValueError):
        return False, False


def locate_model(model_ref: str, *, revision: str | None = None, offline: bool = False,
                 allow_pickle: bool = False) -> Path:
    """Resolve a model reference (local folder or hub id) to a local folder of files.

    A malformed reference (empty, control characters, a bad hub id, a path that does not exist) is one
    AuditError line that shows the reference escaped and cut (``errors.quoted``), before any network access.
    """
    if not isinstance(model_ref, str) or not model_ref.strip():
        raise AuditError(f"cannot load {quoted(model_ref)}: the model reference is empty; pass a hub id "
                         "(org/name) or a model folder")
    if any(ord(char) < 32 or ord(char) == 127 for char in model_ref):
        raise AuditError(f"cannot load {quoted(model_ref)}: the model reference contains control characters")
    path = Path(model_ref).expanduser()
    exists, is_dir = _is_folder(path)
    if is_dir:
        if not (path / "config.json").is_file():
            raise AuditError(f"cannot load {model_ref!r}: the folder has no config.json")
        return path
    if exists:
        raise AuditError(f"cannot load {model_ref!r}: expected a model folder (config.json + weights), "
                         "not a file")
    if model_ref.startswith((".", "/", "~")) or model_ref.count("/") > 1:
        raise AuditError(f"cannot load {quoted(model_ref)}: no such folder")
    check_hub_id(model_ref)
    cached = _local_snapshot(model_ref, revision)
    if offline or not hub_reachable():
        if cached is not None:
            return cached
        raise AuditError(f"cannot load {model_ref!r}: no network access and not in the local cache; "
                         "pass a local folder with --model")
    return _fetch_snapshot(model_ref, revision, allow_pickle=allow_pickle)


def weight_files(folder: Path, *, allow_pickle: bool) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    safe = [p for p in files if p.suffix == ".safetensors"]
    if safe:
        return safe
    if files and not allow_pickle:
        names = ", ".join(p.name for p in files)
        raise AuditError(f"{folder}: only pickle weights ({names}); pickle files can run code when loaded. "
                         "Convert them to safetensors, or pass --allow-pickle if you trust the source")
    if not files:
        raise AuditError(f"{folder}: no weight files (*.safetensors) found")
    return files


def is_head_key(model: Any, key: str) -> bool:
    """True when a state-dict key of ``model`` lies outside its base encoder, i.e. in the MLM head.

    The one owner of this decision: loading (missing head weights), graft (what to copy) and scoring (the
    head digest of a checkpoint) all ask here.
    """
    prefix = getattr(model, "base_model_prefix", "")
    return not (prefix and key.startswith(prefix + "."))


def missing_head_keys(model: Any, missing: Iterable[str]) -> list[str]:
    """The missing weights that lie in the MLM head (see ``is_head_key``), sorted.

    ``missing``: transformers' ``missing_keys``, which already leaves out a tied weight whose partner was in the
    file (ALBERT's decoder weight, stored as the word embeddings); a tie is never assumed here.
    """
    return sorted(key for key in set(missing) if is_head_key(model, key))


def missing_base_keys(model: Any, missing: Iterable[str]) -> list[str]:
    """The missing weights of the base encoder and embeddings (outside the MLM head), sorted (see above)."""
    return sorted(key for key in set(missing) if not is_head_key(model, key))


def check_complete_weights(model: Any, missing: Iterable[str], model_ref: str) -> None:
    """Refuse a model whose encoder or embedding weights did not all come from its checkpoint.

    transformers initialises absent weights at random and only reports them (``missing_keys``); scores from
    such a model would look plausible and mean nothing. The MLM head is checked apart (``missing_head_keys``).
    """
    absent = missing_base_keys(model, missing)
    if absent:
        more = ", ..." if len(absent) > 2 else ""
        raise AuditError(f"cannot load {quoted(model_ref)}: the checkpoint lacks {len(absent)} encoder/embedding "
                         f"weight{'s' if len(absent) > 1 else ''} ({', '.join(absent[:2])}{more}): incomplete "
                         "weight files or another architecture")


def check_finite_weights(model: Any, model_ref: str, *, dtype: str = "") -> None:
    """Refuse a model with a NaN or infinite value in any weight or buffer, naming the first such tensor.

    ``dtype``: the dtype the weights were just cast to ("" for the weights as loaded), for the message.
    """
    import torch

    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            what = f"{bad} NaN or infinite value{'s' if bad > 1 else ''} (of {tensor.numel()})"
            if dtype:
                raise AuditError(f"cannot load {quoted(model_ref)}: weight {name} holds {what} after casting to "
                                 f"{dtype}; its values do not fit {dtype}, use --dtype float32 or bfloat16")
            raise AuditError(f"cannot load {quoted(model_ref)}: weight {name} holds {what}; the checkpoint is "
                             "damaged")


def vocab_sha256(vocab: dict[str, int]) -> str:
    """sha256 of a tokenizer's vocabulary (token -> id pairs in id order): equal hashes, same vocabulary."""
    pairs = sorted(vocab.items(), key=lambda pair: (pair[1], pair[0]))
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode("utf-8")).hexdigest()


def read_tokenizer(folder: Path) -> Any:
    """The tokenizer of a model folder, unchecked (any failure is one AuditError line)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise AuditError(f"{folder}: cannot load the tokenizer: {_first_line(exc)}") from exc


def load_tokenizer(folder: Path, config: Any) -> Any:
    """Load and check the tokenizer of a model folder."""
    tokenizer = read_tokenizer(folder)
    size = len(tokenizer)
    if size > config.vocab_size or config.vocab_size - size > MAX_PADDING_ROWS:
        raise AuditError(f"{folder}: the tokenizer has {size} tokens but the model has {config.vocab_size} "
                         "embedding rows; the tokenizer files are missing or belong to another model")
    if tokenizer.mask_token is None or tokenizer.mask_token_id is None:
        raise AuditError(f"{folder}: the tokenizer has no mask token; not a masked language model")
    return tokenizer


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' and the hub client's loading bars and reports: this module checks what matters."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hub_logger = logging.getLogger("huggingface_hub")
    hub_level = hub_logger.level
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    hub_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        hub_logger.setLevel(hub_level)
        if bars:
            hf_logging.enable_progress_bar()


@contextmanager
def held_back_warnings() -> Iterator[None]:
    """Hold back Python warnings raised inside; replay them if the block succeeds, drop them if it raises.

    So a model that is refused shows only its AuditError line, not library warnings about it first.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:  # reached only when the block did not raise
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _load_weights(folder: Path, model_ref: str, weights: list[Path], *, trust_remote_code: bool,
                  allow_pickle: bool) -> tuple[Any, Any, dict[str, Any]]:
    """config, model (fp32, CPU) and loading info; any failure is one AuditError line."""
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM

    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(str(folder), local_files_only=True,
                                                trust_remote_code=trust_remote_code)
            model, loading_info = AutoModelForMaskedLM.from_pretrained(
                str(folder), config=config, local_files_only=True, trust_remote_code=trust_remote_code,
                use_safetensors=not allow_pickle or any(p.suffix == ".safetensors" for p in weights),
                output_loading_info=True, dtype=torch.float32)
    except Exception as exc:  # corrupt weights, sizes that do not match config.json, bad pickles, ...
        hint = ""
        if "ignore_mismatched_sizes" in str(exc):
            hint = " (the sizes in config.json do not match the weight files)"
        raise AuditError(f"cannot load {model_ref!r} as a masked language model: "
                         f"{type(exc).__name__}: {_first_line(exc)}{hint}") from exc
    return config, model, loading_info


def load_model(model_ref: str, *, revision: str | None = None, device: str = "auto", dtype: str = "auto",
               offline: bool = False, trust_remote_code: bool = False, allow_pickle: bool = False,
               require_head: bool = True) -> LoadedModel:
    """Load a masked LM for scoring; every failure is an AuditError with one clear line and nothing before it.

    Refused: a malformed reference, unsafe config or weights, missing encoder/embedding weights, a missing
    MLM head (unless ``require_head`` is False: the caller grafts one), NaN/inf weights, a tokenizer that
    does not fit. Library warnings are shown only when the load succeeds (``held_back_warnings``).
    """
    with held_back_warnings(), quiet_transformers():
        return _load_model(model_ref, revision=revision, device=device, dtype=dtype, offline=offline,
                           trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, require_head=require_head)


def _load_model(model_ref: str, *, revision: str | None, device: str, dtype: str, offline: bool,
                trust_remote_code: bool, allow_pickle: bool, require_head: bool) -> LoadedModel:
    folder = locate_model(model_ref, revision=revision, offline=offline, allow_pickle=allow_pickle)
    try:
        raw_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AuditError(f"{folder / 'config.json'}: unreadable config: {exc}") from exc
    if not isinstance(raw_config, dict):
        kind = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean",
                type(None): "null"}.get(type(raw_config), type(raw_config).__name__)
        raise AuditError(f"cannot load {model_ref!r}: {folder / 'config.json'} must hold a JSON object "
                         f"(model_type, sizes, ...), found {kind}")
    _check_config(raw_config, str(folder), trust_remote_code=trust_remote_code)
    weights = weight_files(folder, allow_pickle=allow_pickle)
    device_name = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device_name)
    config, model, loading_info = _load_weights(folder, model_ref, weights, trust_remote_code=trust_remote_code,
                                                allow_pickle=allow_pickle)
    missing = list(loading_info.get("missing_keys", []))
    check_complete_weights(model, missing, model_ref)
    missing_head = missing_head_keys(model, missing)
    if missing_head and require_head:
        arch = ", ".join(raw_config.get("architectures") or ["unknown"])
        raise AuditError(f"{model_ref!r} ({arch}) has no masked-language-model head (missing "
                         f"{', '.join(missing_head[:4])}{' ...' if len(missing_head) > 4 else ''}); its scores "
                         "would come from random weights. Audit it with `albert-audit compare`, which grafts "
                         "the base model's head")
    check_finite_weights(model, model_ref)
    tokenizer = load_tokenizer(folder, config)
    model.to(device=device_name, dtype=torch_dtype)
    model.eval()
    dtype_name = str(torch_dtype).removeprefix("torch.")
    if dtype_name != "float32":
        check_finite_weights(model, model_ref, dtype=dtype_name)
    hidden_size = getattr(config, "hidden_size", None)
    info = ModelInfo(
        id=model_ref, revision=revision, commit=_commit_from_path(folder), path=str(folder),
        model_class=type(model).__name__, model_type=str(config.model_type),
        num_parameters=sum(p.numel() for p in model.parameters()), vocab_size=int(config.vocab_size),
        tokenizer_size=len(tokenizer), mask_token=str(tokenizer.mask_token),
        weights_sha256={p.name: sha256_file(p) for p in weights}, device=device_name, dtype=dtype_name,
        max_length=int(getattr(config, "max_position_embeddings", 512)),
        hidden_size=hidden_size, embedding_size=getattr(config, "embedding_size", hidden_size),
        num_hidden_layers=getattr(config, "num_hidden_layers", None),
        num_attention_heads=getattr(config, "num_attention_heads", None),
        vocab_sha256=vocab_sha256(tokenizer.get_vocab()),
    )
    return LoadedModel(model=model, tokenizer=tokenizer, info=info)
