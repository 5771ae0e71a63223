"""Shared fixtures: tiny random-weight ALBERTs with a real SentencePiece-style tokenizer, built per session."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROBES = REPO / "probes"

#: Words the tiny tokenizer knows as whole pieces; anything else splits into several pieces.
TEST_WORDS = ["nurse", "engineer", "receptionist", "chauffeur", "janitor", "doctor", "teacher", "pilot",
              "lawyer", "waitress", "sister", "brother", "daughter", "son", "aunt", "uncle", "job", "works",
              "said", "that", "happy", "sad", "here", "there", "friend", "always", "wanted", "become"]


def shipped_words() -> list[str]:
    """Every word of the shipped probe sets (so the tiny tokenizer covers them)."""
    words: set[str] = set()
    for path in sorted(PROBES.glob("*.yaml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.lstrip().startswith("#"):
                words.update(re.findall(r"[a-z]+", line.lower()))
    return sorted(words)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight AlbertForMaskedLM + AlbertTokenizer folder (safetensors)."""
    from tests.toy_models import build_toy_albert

    return build_toy_albert(tmp_path_factory.mktemp("tiny_albert"), words=TEST_WORDS + shipped_words(), seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path):
    """The tiny model loaded for scoring (cpu, fp32)."""
    from albert_audit.engine.loading import load_model

    return load_model(str(tiny_model_dir), device="cpu", dtype="float32")


def hub_is_reachable() -> bool:
    """True when huggingface.co answers on port 443 (tests marked hub skip otherwise)."""
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=3):
            return True
    except OSError:
        return False


def write_probe_file(folder: Path, name: str, body: str) -> Path:
    """Write a probe-set YAML file for a test and return its path."""
    path = folder / f"{name}.yaml"
    path.write_text(body, encoding="utf-8")
    return path
