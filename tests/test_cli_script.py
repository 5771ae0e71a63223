"""The installed `albert-audit` script end to end in a subprocess: SIGTERM mid-scoring, then a rerun resumes
from the kept batches to the same findings.csv, byte for byte, as an uninterrupted run."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from albert_audit.cli import main
from tests.conftest import REPO
from tests.test_cli import SMALL_PROBES

ALPHA = "0.025"
PROGRESS = re.compile(rb"scoring:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+)")
#: A second probe set of many sentences and one target: scoring lasts long enough to be stopped midway (the
#: progress bar first reports after 0.5 s, and the run is stopped only at a report strictly between 0 and all),
#: while the statistics stay quick.
PLACES = ["here", "there", "at work", "at home", "in town", "upstairs", "outside", "inside", "today", "again",
          "always", "later", "now", "early", "late", "alone", "together", "there again", "here again", "at noon"]
VERBS = ("worked", "said", "lived", "stayed", "waited", "slept", "rested", "sat", "stood", "spoke")
MANY_TEMPLATES = "\n".join(
    ["schema_version: 1", "name: many_templates", "description: Many templates for the resume test.",
     "category: gender", "groups:", "  female: [aunt, daughter]", "  male: [uncle, son]", "templates:"]
    + [f'  - "The <group> {verb} {place} as a [MASK]."' for verb in VERBS for place in PLACES]
    + ["targets: [nurse]", ""])


def _argv(model: Path, probes: list[Path], out: Path) -> list[str]:
    # two probe sets, a non-default alpha; one sequence per batch (many batches to stop between), fp32 on the CPU
    return ["run", "--model", str(model), "--probes", str(probes[0]), "--probes", str(probes[1]), "--out", str(out),
            "--alpha", ALPHA, "--n-resamples", "200", "--batch-size", "1", "--device", "cpu", "--dtype", "float32",
            "--no-report"]


def _terminate_mid_scoring(argv: list[str], timeout: float = 120.0) -> tuple[int, str]:
    """Run the installed script; SIGTERM it once its progress bar shows scored sequences; (exit code, stderr)."""
    script = Path(sys.executable).with_name("albert-audit")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([str(script), *argv], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    err, sent, deadline = b"", False, time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.05)
            if ready:
                err += os.read(proc.stderr.fileno(), 65536)
            bars = [(int(m.group(1)), int(m.group(2))) for m in PROGRESS.finditer(err)]
            # strictly mid-scoring: a first report that is already complete (a fast machine, or the final
            # bar printed on close) would stop the run after its checkpoint was cleared
            if not sent and bars and 0 < bars[-1][0] < bars[-1][1]:
                proc.send_signal(signal.SIGTERM)
                sent = True
        err += proc.stderr.read()
        return proc.wait(timeout=30), err.decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_sigterm_then_rerun_resumes_to_the_same_findings(tmp_path, tiny_model_dir):
    import torch

    probe = [tmp_path / "small_occupation.yaml", tmp_path / "many_templates.yaml"]
    probe[0].write_text(SMALL_PROBES, encoding="utf-8")
    probe[1].write_text(MANY_TEMPLATES, encoding="utf-8")
    resumed = tmp_path / "resumed"
    code, err = _terminate_mid_scoring(_argv(tiny_model_dir, probe, resumed))
    assert code == 143, err[-2000:]
    assert "rerun the same command to resume" in err
    assert list((resumed / ".partial").glob("part-*.npz")), "the scored batches are kept"
    assert not (resumed / "findings.csv").exists()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same kernels as the script ran with (OMP_NUM_THREADS=1)
    try:
        assert main([*_argv(tiny_model_dir, probe, resumed), "--quiet"]) == 0
        whole = tmp_path / "whole"
        assert main([*_argv(tiny_model_dir, probe, whole), "--quiet"]) == 0
    finally:
        torch.set_num_threads(threads)
    summary = json.loads((resumed / "summary.json").read_text(encoding="utf-8"))
    assert 0 < summary["counts"]["resumed_sequences"] < summary["counts"]["unique_sequences"]
    assert summary["alpha"] == float(ALPHA)
    assert [p["name"] for p in summary["probe_files"]] == ["small_occupation", "many_templates"]
    assert not (resumed / ".partial").exists()
    assert (resumed / "findings.csv").read_bytes() == (whole / "findings.csv").read_bytes()
