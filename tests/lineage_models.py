"""Test support: four tiny descendants of the shipped demo base, for the lineage tests.

``noisy`` (the base's weights plus small Gaussian noise), ``planted`` (the shipped fine-tuned descendant, whose
planted changes compare must find), ``headless`` (the planted descendant with its MLM head stripped: probed
through the base's head, grafted) and ``damaged`` (a truncated weight file: it must fail alone).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from albert_audit.api import DEMO_MODELS_DIR

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def _copy_model(source: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", *TOKENIZER_FILES, "model.safetensors"):
        shutil.copy2(source / name, target / name)
    return target


def build_descendants(folder: Path, *, noise: float = 0.01, seed: int = 0) -> dict[str, Path]:
    """The four descendants under ``folder``: label -> model folder."""
    import json

    import torch
    from safetensors.torch import load_file, save_file

    base, planted = DEMO_MODELS_DIR / "base", DEMO_MODELS_DIR / "descendant"
    out = {"planted": _copy_model(planted, folder / "planted")}
    noisy = _copy_model(base, folder / "noisy")
    weights = load_file(str(base / "model.safetensors"))
    generator = torch.Generator().manual_seed(seed)
    noised = {k: (v + noise * v.std() * torch.randn(v.shape, generator=generator)).contiguous()
              if v.is_floating_point() and v.numel() > 1 else v for k, v in weights.items()}
    save_file(noised, str(noisy / "model.safetensors"), metadata={"format": "pt"})
    out["noisy"] = noisy
    headless = _copy_model(planted, folder / "headless")
    kept = {k: v.contiguous() for k, v in load_file(str(planted / "model.safetensors")).items()
            if not k.startswith("predictions.")}
    save_file(kept, str(headless / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((headless / "config.json").read_text(encoding="utf-8"))
    config["architectures"] = ["AlbertModel"]
    (headless / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    out["headless"] = headless
    damaged = _copy_model(base, folder / "damaged")
    data = (damaged / "model.safetensors").read_bytes()
    (damaged / "model.safetensors").write_bytes(data[: len(data) // 2])
    out["damaged"] = damaged
    return out
