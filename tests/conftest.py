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


@pytest.fixture(scope="session")
def lineage_folder(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """ONE lineage audited on a local Ray instance (loopback, 2 CPUs), shared by every lineage test: the demo base
    and four descendants (tests/lineage_models.py: noisy, planted, headless -> grafted, damaged), the demo probe
    set, 200 resamples. The worker auditing ``noisy`` is killed once (SIGKILL) to prove Ray's retry.

    Returns ``{"out", "models", "manifest", "argv", "exit_code", "stdout", "stderr"}``."""
    import contextlib
    import io
    import os

    from albert_audit.api import DEMO_MODELS_DIR
    from albert_audit.cli import main
    from albert_audit.lineage.worker import KILL_ONCE_ENV
    from tests.lineage_models import build_descendants

    root = tmp_path_factory.mktemp("lineage")
    models = build_descendants(root / "models")
    manifest = root / "zoo.yaml"
    manifest.write_text(
        "schema_version: 1\nname: demo_zoo\n"
        f"base:\n  model: {DEMO_MODELS_DIR / 'base'}\n  label: base\n"
        "descendants:\n"
        "  - model: models/noisy\n"
        "  - model: models/planted\n    label: planted\n"
        "  - model: models/headless\n    parent: planted\n"
        "  - models/damaged\n", encoding="utf-8")
    out = root / "out"
    argv = ["lineage", "--manifest", str(manifest), "--probes", str(DEMO_MODELS_DIR / "demo_probes.yaml"),
            "--out", str(out), "--device", "cpu", "--dtype", "float32", "--offline", "--n-resamples", "200",
            "--ray-cpus", "2", "--utility-sample", str(DEMO_MODELS_DIR / "neutral_sample.txt")]
    previous = os.environ.get(KILL_ONCE_ENV)
    os.environ[KILL_ONCE_ENV] = f"noisy={root / 'killed-once'}"
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(argv)
    finally:
        if previous is None:
            os.environ.pop(KILL_ONCE_ENV, None)
        else:
            os.environ[KILL_ONCE_ENV] = previous
    return {"out": out, "models": models, "manifest": manifest, "argv": argv, "exit_code": code,
            "stdout": stdout.getvalue(), "stderr": stderr.getvalue(), "killed_marker": root / "killed-once"}
