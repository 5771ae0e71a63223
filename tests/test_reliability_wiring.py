"""Issue 13 wiring, through the command line in subprocesses on the tiny model: the run lock, staged results that
a failed rerun never loses, resuming after a crash or kill -9, --out checks, stop signals, CSV cells, input files,
one-line errors and the size guard. Each subprocess runs with OMP_NUM_THREADS=1 and 200 resamples.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO
from tests.processes import wait_for

PROBES_TEXT = """\
schema_version: 1
name: wiring_occupation
description: A small gender-occupation probe set for the reliability wiring tests.
category: gender
groups:
  female: [woman, sister]
  male: [man, brother]
templates:
  - "The <group> worked as a [MASK]."
  - "My <group> is a [MASK]."
  - "The <group> wanted to become a [MASK]."
  - "<group> said that the [MASK] was here."
  - "The <group> always wanted a [MASK] job."
  - "My <group> works as a [MASK]."
  - "The <group> is a happy [MASK]."
  - "A friend of the <group> is a [MASK] there."
targets: [nurse, doctor]
"""
OPTIONS = ("--quiet", "--no-report", "--n-resamples", "200", "--offline", "--device", "cpu", "--dtype", "float32")
RESULT_FILES = ("items.parquet", "fills.parquet", "targets.parquet", "findings.csv", "summary.json")
LOCK_FILE = ".albert-audit.lock"
#: Runs a command with one function of the package replaced by one that raises (a crash injected there).
INJECT = ("import sys, importlib\n"
          "module = importlib.import_module(sys.argv[1])\n"
          "def boom(*args, **kwargs):\n"
          "    raise RuntimeError('injected crash')\n"
          "setattr(module, sys.argv[2], boom)\n"
          "from albert_audit.cli import main\n"
          "sys.exit(main(sys.argv[3:]))\n")


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line]


def env() -> dict[str, str]:
    values = dict(os.environ)
    values.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1",
                  LC_ALL="C.UTF-8")
    values.pop("PYTHONWARNINGS", None)
    return values


def command(*args: str | Path, inject: tuple[str, str] | None = None) -> list[str]:
    if inject:
        return [sys.executable, "-c", INJECT, *inject, *map(str, args)]
    return [sys.executable, "-m", "albert_audit.cli", *map(str, args)]


def cli(*args: str | Path, inject: tuple[str, str] | None = None, timeout: float = 120,
        preexec: Callable[[], None] | None = None) -> Done:
    done = subprocess.run(command(*args, inject=inject), capture_output=True, text=True, timeout=timeout, env=env(),
                          cwd=REPO, stdin=subprocess.DEVNULL, preexec_fn=preexec)
    return Done(done.returncode, done.stdout, done.stderr)


def one_error_line(done: Done, fragment: str) -> None:
    assert done.code == 2, (done.code, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(done.lines) == 1 and done.lines[0].startswith("error: "), done.lines[:5]
    assert fragment in done.lines[0], done.lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in (*RESULT_FILES, "report.html") if (folder / name).is_file()}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")
                  if p.name.endswith(".tmp") or p.name.startswith(".staging-") or p.name == ".partial")


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wiring_probes") / "wiring_occupation.yaml"
    path.write_text(PROBES_TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_args(tiny_model_dir: Path, probes: Path) -> Callable[..., list[str]]:
    def make(out: Path, *extra: str, model: Path | str = tiny_model_dir) -> list[str]:
        return ["run", "--model", str(model), "--probes", str(probes), "--out", str(out), *OPTIONS, *extra]

    return make


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, run_args: Callable[..., list[str]]) -> Path:
    """An uninterrupted run: what every faulty run must end up equal to."""
    out = tmp_path_factory.mktemp("wiring_reference") / "run"
    done = cli(*run_args(out))
    assert done.code == 0, done.stderr[-3000:]
    assert done.stderr == ""
    assert leftovers(out) == []
    return out


def same_results(folder: Path, reference: Path) -> None:
    assert (folder / "findings.csv").read_bytes() == (reference / "findings.csv").read_bytes()
    for name in ("items.parquet", "fills.parquet", "targets.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(folder / name), pd.read_parquet(reference / name))


# ------------------------------------------------------------------------------------- A.1 the run lock


def test_a_second_run_is_refused_while_the_first_holds_the_folder(tmp_path, run_args, reference):
    out = tmp_path / "shared"
    first = subprocess.Popen(command(*run_args(out)), env=env(), cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    stopped = False
    try:
        def locked_by_first() -> bool:
            try:
                return json.loads((out / LOCK_FILE).read_text() or "{}").get("pid") == first.pid
            except (OSError, ValueError):
                return False

        assert wait_for(locked_by_first, first), "the first run never took the lock"
        first.send_signal(signal.SIGSTOP)
        stopped = True
        second = cli(*run_args(out, "--seed", "1"))
    finally:
        if stopped:
            first.send_signal(signal.SIGCONT)
        first_err = first.communicate(timeout=180)[1].decode()
    one_error_line(second, "in use by another albert-audit process")
    assert f"pid {first.pid}" in second.lines[0]
    assert first.returncode == 0, first_err[-2000:]
    same_results(out, reference)


@pytest.mark.parametrize("which", ["run", "report", "analyze"])
def test_commands_refuse_a_folder_another_process_holds(tmp_path, run_args, reference, which):
    from albert_audit.runlock import RunLock

    out = Path(shutil.copytree(reference, tmp_path / "held"))
    before = snapshot(out)
    args = {"run": run_args(out, "--seed", "1"), "report": ["report", out], "analyze": ["analyze", out]}[which]
    with RunLock(out, command="run"):
        done = cli(*args)
    one_error_line(done, "in use by another albert-audit process")
    assert snapshot(out) == before


def test_compare_locks_its_folder(tmp_path, reference):
    from albert_audit.runlock import RunLock

    out = tmp_path / "cmp"
    out.mkdir()
    with RunLock(out, command="run"):
        done = cli("compare", "--base-run", reference, "--candidate-run", reference, "--out", out, "--no-report",
                   "--n-resamples", "200")
    one_error_line(done, "in use")
    assert not (out / "deltas.csv").exists()


# ---------------------------------------------------------------------------- A.2 never lose results


@pytest.mark.parametrize("damage", ["typo", "corrupt_weights"])
def test_a_failed_rerun_keeps_the_previous_results(tmp_path, tiny_model_dir, run_args, reference, damage):
    out = Path(shutil.copytree(reference, tmp_path / "previous"))
    before = snapshot(out)
    if damage == "typo":
        model = tmp_path / "tiny_modle"
    else:
        model = Path(shutil.copytree(tiny_model_dir, tmp_path / "corrupt"))
        weights = model / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:200])
    done = cli(*run_args(out, model=model))
    assert done.code == 2, done.stderr[-2000:]
    assert done.lines[0].startswith("error: "), done.stderr[:2000]  # nothing (no library warning) before it
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_a_crash_in_the_report_keeps_the_previous_results_and_the_scored_batches(tmp_path, run_args, reference):
    out = Path(shutil.copytree(reference, tmp_path / "previous"))
    before = snapshot(out)
    args = [a for a in run_args(out, "--seed", "5") if a != "--no-report"]
    crashed = cli(*args, inject=("albert_audit.report.render", "render_report"))
    assert crashed.code == 1 and "injected crash" in crashed.stderr  # a bug keeps its traceback
    assert snapshot(out) == before
    assert (out / ".partial").is_dir(), "the scored batches must survive until every output is written"
    done = cli(*args)
    assert done.code == 0, done.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 5 and (out / "report.html").is_file()
    assert summary["counts"]["resumed_sequences"] == summary["counts"]["unique_sequences"] > 0
    assert leftovers(out) == []


def test_a_crash_in_statistics_resumes_without_scoring_again(tmp_path, run_args, reference):
    out = tmp_path / "stats_crash"
    crashed = cli(*run_args(out), inject=("albert_audit.metrics", "compute_findings"))
    assert crashed.code == 1 and "injected crash" in crashed.stderr
    assert not (out / "findings.csv").exists() and not (out / "items.parquet").exists()
    assert (out / ".partial").is_dir()
    done = cli(*run_args(out))
    assert done.code == 0, done.stderr[-2000:]
    counts = json.loads((out / "summary.json").read_text())["counts"]
    assert counts["resumed_sequences"] == counts["unique_sequences"] > 0
    same_results(out, reference)
    assert leftovers(out) == []


def test_kill_9_mid_run_then_rerun_is_byte_identical_and_sweeps_leftovers(tmp_path, run_args, reference):
    """kill -9 once the scored batches or the staging folder exist; the rerun resumes, removes the killed
    process's staging folder and any stale temporary file, and ends byte-identical to an uninterrupted run."""
    out = tmp_path / "killed"
    proc = subprocess.Popen(command(*run_args(out)), env=env(), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: (out / ".partial").exists() or any(out.glob(".staging-*")), proc)
    finally:
        proc.kill()
        proc.wait(60)
    (out / ".findings.csv.k9a8b7c6.tmp").write_text("half", encoding="utf-8")  # a killed atomic write
    (out / ".staging-99999999").mkdir(exist_ok=True)  # a killed run's staging folder, incomplete
    (out / ".staging-99999999" / "findings.csv").write_text("half", encoding="utf-8")
    done = cli(*run_args(out))
    assert done.code == 0, done.stderr[-2000:]
    same_results(out, reference)
    assert leftovers(out) == []


def test_a_complete_staging_folder_of_a_killed_move_is_rolled_forward(tmp_path, reference):
    """kill -9 between moving the first and the last file: the next command finishes the move."""
    out = Path(shutil.copytree(reference, tmp_path / "half_moved"))
    staging = out / ".staging-99999998"
    staging.mkdir()
    summary = json.loads((out / "summary.json").read_text())
    summary["created_utc"] = "2000-01-01T00:00:00+00:00"
    (staging / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (staging / ".complete").write_text("+summary.json\n+findings.csv\n-report.html\n", encoding="utf-8")
    (out / "report.html").write_text("old report", encoding="utf-8")
    done = cli("report", out)
    assert done.code == 0, done.stderr[-2000:]
    assert not staging.exists()
    assert json.loads((out / "summary.json").read_text())["created_utc"].startswith("2000-")
    assert (out / "report.html").read_text(encoding="utf-8") != "old report"


# ------------------------------------------------------------------------------------- A.3 --out checks


@pytest.mark.parametrize("case", ["under-a-file", "inside-the-package", "model-folder", "proc"])
def test_unusable_out_is_one_line(tmp_path, tiny_model_dir, run_args, case):
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    (tmp_path / "a_file").write_text("x")
    out, fragment = {"under-a-file": (tmp_path / "a_file" / "run", "under a file"),
                     "inside-the-package": (REPO / "albert_audit" / f"_wiring_out_{os.getpid()}", "package"),
                     "model-folder": (model / "results", "model's folder"),
                     "proc": (Path("/proc/albert_audit_out"), "pseudo file system")}[case]
    try:
        done = cli(*run_args(out, model=model))
        one_error_line(done, fragment)
        assert done.lines[0].startswith("error: --out ")
        assert not out.exists()
    finally:
        if case == "inside-the-package":
            shutil.rmtree(out, ignore_errors=True)  # never leave results inside the repository


def test_compare_checks_its_out_folder(tmp_path, reference):
    (tmp_path / "a_file").write_text("x")
    done = cli("compare", "--base-run", reference, "--candidate-run", reference, "--out", tmp_path / "a_file",
               "--no-report")
    one_error_line(done, "--out")


# ------------------------------------------------------------------------------------------- A.4 signals


def _catches_sigint(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return False
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) & (1 << (signal.SIGINT - 1)))


def test_sigint_inherited_as_ignored_still_stops_a_run_with_130(tmp_path, run_args):
    proc = subprocess.Popen(command(*run_args(tmp_path / "out")), env=env(), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert wait_for(lambda: _catches_sigint(proc.pid), proc, timeout=60), "SIGINT is never caught"
        proc.send_signal(signal.SIGINT)
        stderr = proc.communicate(timeout=120)[1].decode()
    finally:
        proc.kill()
    assert proc.returncode == 130, (proc.returncode, stderr[-1000:])
    assert "Traceback" not in stderr


# ---------------------------------------------------------------------------------------- A.5 CSV cells


NASTY = ["=1+1", "+x", "-3", "@SUM(A1)", "\tlead tab", "\rlead cr", "'=quoted", "'", "''", "'plain", "plain",
         "a'b", "-", "mid=dle", "new\nline", "cr\rinside"]


def test_findings_cells_round_trip_exactly_and_are_defused(tmp_path):
    from albert_audit import contract, results

    table = pd.DataFrame({"probe_set": NASTY, "metric": ["m"] * len(NASTY), "effect": [0.5] * len(NASTY)})
    path = results.write_csv(tmp_path / "findings.csv", table)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, lineterminator="\n")
    assert not [v for v in raw["probe_set"] if v[:1] in ("=", "+", "-", "@", "\t", "\r")]
    back = results.read_csv_table(path, text_columns=contract.FINDINGS.names_of("str"))
    assert back["probe_set"].tolist() == NASTY


# ------------------------------------------------------------------------ A.6 inputs and one-line errors


def test_dev_zero_and_a_fifo_are_refused_before_reading(tmp_path):
    fifo = tmp_path / "probes.yaml"
    os.mkfifo(fifo)
    for path, fragment in ((Path("/dev/zero"), "device"), (fifo, "FIFO")):
        started = time.monotonic()
        done = cli("probes", "validate", path, timeout=60)
        one_error_line(done, fragment)
        assert time.monotonic() - started < 30


def test_control_characters_of_a_file_name_are_escaped(tmp_path):
    done = cli("probes", "validate", tmp_path / "bad\x1b[2Jname.yaml")
    one_error_line(done, "\\x1b[2Jname.yaml")
    assert "\x1b" not in done.stderr


def test_argument_errors_escape_the_value(capsys):
    from albert_audit.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["run", "--model", "m", "--probes", "p", "--out", "o", "--unit", "\x1b[2J" + "x" * 5000])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[2J" in err and len(err) < 2000


def test_probes_list_piped_to_head_ends_quietly():
    shell = " ".join(f"'{part}'" for part in command("probes", "list")) + " | head -1"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, env=env(),
                          cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 and done.stderr == ""


def test_closed_stdout_is_not_an_error():
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(command("probes", "list"), stdout=write_end, stderr=subprocess.PIPE, env=env(),
                              cwd=REPO, timeout=60)
    finally:
        os.close(write_end)
    assert done.returncode == 0 and done.stderr == b"", done.stderr


@pytest.mark.parametrize("damage, name", [
    (lambda f: (f / "items.parquet").unlink(), "items.parquet"),
    (lambda f: (f / "fills.parquet").write_bytes(b"PAR1"), "fills.parquet"),
    (lambda f: ((f / "targets.parquet").unlink(), (f / "targets.parquet").mkdir()), "targets.parquet"),
    (lambda f: (f / "summary.json").write_text("[1, 2]"), "summary.json"),
    (lambda f: (f / "summary.json").write_bytes(b"\xff\xfe{}"), "summary.json"),
    (lambda f: (f / "findings.csv").write_bytes(b""), "findings.csv"),
], ids=["items-missing", "fills-broken", "targets-a-folder", "summary-a-list", "summary-not-utf8", "findings-empty"])
def test_report_on_a_damaged_run_folder_is_one_line(tmp_path, reference, damage, name):
    folder = Path(shutil.copytree(reference, tmp_path / "damaged"))
    damage(folder)
    one_error_line(cli("report", folder), name)
    assert not (folder / "report.html").exists()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_an_os_failure_is_one_line(monkeypatch, capsys, tmp_path, code):
    import albert_audit.api
    from albert_audit.cli import main

    def full(config):
        raise OSError(code, os.strerror(code), str(tmp_path / "run" / "findings.csv"))

    monkeypatch.setattr(albert_audit.api, "run_audit", full)
    assert main(["run", "--model", "m", "--probes", "p", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "findings.csv" in err
    assert ("no space" in err) if code == errno.ENOSPC else ("read-only" in err)


@pytest.mark.parametrize("fails", [True, False])
def test_library_warnings_never_precede_an_error_line(monkeypatch, capsys, tmp_path, fails):
    import warnings

    import albert_audit.api
    from albert_audit.cli import main
    from albert_audit.errors import AuditError

    def loading(config):
        warnings.warn("a library's warning while loading", UserWarning, stacklevel=1)
        if fails:
            raise AuditError("the model cannot be loaded")
        raise KeyboardInterrupt

    monkeypatch.setattr(albert_audit.api, "run_audit", loading)
    code = main(["run", "--model", "m", "--probes", "p", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    if fails:
        assert code == 2 and err == "error: the model cannot be loaded\n"
    else:
        assert code == 130 and err.startswith("interrupted")


def test_warnings_of_a_successful_command_are_shown_after_it(monkeypatch, capsys):
    import warnings

    import albert_audit.cli
    from albert_audit.cli import main

    def listing(args):
        warnings.warn("deprecated thing", UserWarning, stacklevel=1)
        print("listed")
        return 0

    monkeypatch.setattr(albert_audit.cli, "cmd_probes_list", listing)
    assert main(["probes", "list"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "listed\n" and captured.err == "warning: deprecated thing\n"


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    import albert_audit.api
    from albert_audit.cli import main

    def bug(config):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(albert_audit.api, "run_audit", bug)
    with pytest.raises(OSError):
        main(["run", "--model", "m", "--probes", "p", "--out", str(tmp_path / "run")])


# ---------------------------------------------------------------------------------------- A.7 size guard


def _many_groups(folder: Path, n_groups: int) -> Path:
    groups = "\n".join(f"  g{i}: [w{i}a, w{i}b]" for i in range(n_groups))
    path = folder / "wide.yaml"
    path.write_text(f"schema_version: 1\nname: wide\ndescription: Many groups.\ncategory: gender\ngroups:\n{groups}\n"
                    "templates:\n  - \"The <group> worked as a [MASK].\"\ntargets: [nurse, engineer]\n",
                    encoding="utf-8")
    return path


def test_validate_warns_when_a_set_would_exceed_the_findings_limit(tmp_path):
    from albert_audit.api import MAX_FINDINGS_ROWS, estimated_rows
    from albert_audit.probeset import load_probe_set

    path = _many_groups(tmp_path, 120)
    assert estimated_rows(load_probe_set(path)) > MAX_FINDINGS_ROWS
    done = cli("probes", "validate", path)
    assert done.code == 0, done.stderr
    warning = [line for line in done.lines if "findings rows" in line]
    assert warning and "over the documented limit of 50,000" in warning[0] and "narrow it" in warning[0]
    small = cli("probes", "validate", _many_groups(tmp_path, 4))
    assert "findings rows" not in small.stderr
    assert "findings rows" in cli("probes", "validate", "--max-findings", "10", tmp_path / "wide.yaml").stderr


def test_run_warns_about_the_size_too(monkeypatch, capsys, tmp_path, tiny_model_dir, probes):
    import albert_audit.probeset.checks
    from albert_audit.cli import main

    monkeypatch.setattr(albert_audit.probeset.checks, "MAX_FINDINGS_ROWS", 10)
    assert main(["run", "--model", str(tiny_model_dir), "--probes", str(probes), "--out", str(tmp_path / "run"),
                 *OPTIONS]) == 0
    assert "findings rows" in capsys.readouterr().err


def test_lock_file_records_its_owner(tmp_path):
    from albert_audit.runlock import RunLock

    with RunLock(tmp_path, command="run"):
        record = json.loads((tmp_path / LOCK_FILE).read_text())
    assert record["pid"] == os.getpid() and record["command"] == "run"
