"""Reliability under hostile input, faults and concurrency (issue 13), through the command line in subprocesses.

Every bad input must give one clean line on stderr (``error: <file>:<line>: <problem>``, values cut to a readable
length, control characters escaped), exit code 2, never a traceback; faults (kill -9, a full disk, a second run on
the same folder, a failed rerun) must never leave a silently wrong or lost result.

The probe-file corpus is data: ``tests/data/hostile/probes/*.yaml`` and ``EXPECTED.tsv`` (file, exit code, the
first stderr line as a regex, what it tests). Cases that the test creates (devices, FIFOs, huge files, odd file
names) are built here. Tests marked ``xfail(strict=True)`` document what the current code still gets wrong
(docs/reliability.md has the survey); each turns into a failure (XPASS) once fixed, so the mark must go with the fix.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO
from tests.processes import wait_for

HOSTILE = REPO / "tests" / "data" / "hostile" / "probes"
MANIFEST = HOSTILE / "EXPECTED.tsv"
#: A valid probe set of the corpus (8 templates, 2 groups of 2 terms, 2 targets: no warnings) used for the runs.
GOOD_PROBES = HOSTILE / "control_valid.yaml"
RUN_OPTIONS = ("--quiet", "--no-report", "--n-resamples", "200", "--offline", "--device", "cpu", "--dtype", "float32")
RUN_FILES = ("items.parquet", "fills.parquet", "targets.parquet", "findings.csv", "summary.json")
LOCK_FILE = ".albert-audit.lock"


def xfail(reason: str) -> pytest.MarkDecorator:
    """A known failure of the current code (issue 13); strict, so a fix turns it into an XPASS failure."""
    return pytest.mark.xfail(strict=True, reason=f"issue 13: {reason}")


# ------------------------------------------------------------------------------------------------ helpers


@dataclass
class Result:
    """What a CLI subprocess did."""

    code: int
    stdout: str
    stderr: str
    raw_stderr: bytes
    seconds: float

    @property
    def first_line(self) -> str:
        return self.stderr.split("\n", 1)[0]

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.split("\n") if line]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["LC_ALL"] = "C.UTF-8"
    env["HF_HUB_OFFLINE"] = "1"
    env.pop("PYTHONWARNINGS", None)
    return env


def cli_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "albert_audit.cli", *map(str, args)]


def _decoded(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def cli(*args: str | Path, timeout: float = 120, cwd: Path | None = None,
        preexec: Callable[[], None] | None = None) -> Result:
    """Run ``albert-audit ARGS`` in a subprocess; a timeout is a test failure that says so."""
    started = time.perf_counter()
    try:
        done = subprocess.run(cli_command(*args), capture_output=True, timeout=timeout, env=cli_env(),
                              cwd=cwd or REPO, preexec_fn=preexec, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"albert-audit {' '.join(map(str, args))[:200]} did not return within {timeout} s")
    return Result(done.returncode, _decoded(done.stdout), _decoded(done.stderr), done.stderr,
                  time.perf_counter() - started)


def raw_controls(data: bytes) -> list[str]:
    """Control, format and surrogate characters (and invalid UTF-8) that a terminal would act on or garble."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"invalid UTF-8 at byte {exc.start}"]
    return [f"U+{ord(c):04X}" for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Cs")]


def assert_clean(result: Result) -> None:
    """No traceback, no raw control characters on stderr."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert not raw_controls(result.raw_stderr), (raw_controls(result.raw_stderr)[:5], result.stderr[:500])


def assert_one_error_line(result: Result, pattern: str, *, max_length: int = 400) -> None:
    """Exit 2 and exactly one stderr line, ``error: ...`` matching ``pattern``, of a readable length."""
    assert_clean(result)
    assert result.code == 2, (result.code, result.stderr[-2000:])
    assert len(result.lines) == 1, result.lines[:5]
    assert result.first_line.startswith("error: "), result.first_line[:500]
    assert re.search(pattern, result.first_line), (pattern, result.first_line[:500])
    assert len(result.first_line) <= max_length, len(result.first_line)


def run_args(model: Path | str, out: Path, *extra: str, probes: Path = GOOD_PROBES) -> list[str]:
    return ["run", "--model", str(model), "--probes", str(probes), "--out", str(out), *RUN_OPTIONS, *extra]


def folder_bytes(folder: Path, names: Sequence[str] = RUN_FILES) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in names if (folder / name).is_file()}


def leftovers(folder: Path) -> list[str]:
    """Temporary files and checkpoint folders a finished command must not leave behind."""
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name == ".partial")


def assert_same_results(folder: Path, reference: Path) -> None:
    """findings.csv byte-identical and the score tables equal to those of an uninterrupted run."""
    assert (folder / "findings.csv").read_bytes() == (reference / "findings.csv").read_bytes()
    for name in ("items.parquet", "fills.parquet", "targets.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(folder / name), pd.read_parquet(reference / name))


def can_mount_tmpfs(folder: Path, options: str) -> str | None:
    """Mount a tmpfs at folder; None on success, else why not (the test is then skipped with that reason)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                              text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run mount: {exc}"
    return None if done.returncode == 0 else f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}"


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=20)


# --------------------------------------------------------------------------- the probe-file corpus (data)


@dataclass(frozen=True)
class Case:
    """One row of EXPECTED.tsv."""

    file: str
    code: int
    pattern: str
    what: str


def load_manifest() -> list[Case]:
    cases = []
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        file, code, pattern, what = line.split("\t")
        cases.append(Case(file, int(code), pattern, what))
    return cases


#: Corpus files the current code gets wrong, and how (the survey; docs/reliability.md has the full table).
CORPUS_FAILURES: dict[str, str] = {}


def test_manifest_lists_every_corpus_file() -> None:
    cases = load_manifest()
    files = [case.file for case in cases]
    assert len(files) == len(set(files))
    assert sorted(files) == sorted(p.name for p in HOSTILE.glob("*.yaml"))
    assert len(cases) >= 40
    assert all(case.code in (0, 2) for case in cases)
    assert not set(CORPUS_FAILURES) - set(files)
    assert all(p.stat().st_size < 64 * 1024 for p in HOSTILE.iterdir())  # big inputs are made by the tests


@pytest.mark.parametrize("case", [
    pytest.param(case, id=case.file.removesuffix(".yaml"),
                 marks=[xfail(CORPUS_FAILURES[case.file])] if case.file in CORPUS_FAILURES else [])
    for case in load_manifest()])
def test_hostile_probe_file(case: Case) -> None:
    path = HOSTILE / case.file
    result = cli("probes", "validate", path, timeout=30)
    assert_clean(result)
    assert result.code == case.code, (result.code, result.stderr[:500])
    pattern = case.pattern.replace("{file}", re.escape(str(path)))
    assert re.search(pattern, result.first_line), (pattern, result.first_line[:500])
    if case.code == 0:
        assert result.stdout.startswith(f"ok: {path} ")


# ----------------------------------------------------------------- probe inputs the test has to create


def _limit_memory() -> None:
    """At most 2 GiB of address space: a reader that slurps /dev/zero fails instead of eating the machine."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_dev_zero_is_refused_before_reading() -> None:
    result = cli("probes", "validate", "/dev/zero", timeout=10, preexec=_limit_memory)
    assert_one_error_line(result, r"^error: /dev/zero: .*(device|not a regular file)")


def test_dev_null_is_refused_as_a_device() -> None:
    result = cli("probes", "validate", "/dev/null", timeout=10)
    assert_one_error_line(result, r"^error: /dev/null: .*(device|not a regular file)")


def test_fifo_is_refused_within_10_seconds(tmp_path: Path) -> None:
    fifo = tmp_path / "probes.yaml"
    os.mkfifo(fifo)
    result = cli("probes", "validate", fifo, timeout=10)
    assert_one_error_line(result, r"^error: .*probes\.yaml: .*FIFO")


def test_folder_and_missing_file_are_one_line(tmp_path: Path) -> None:
    assert_one_error_line(cli("probes", "validate", tmp_path), r"^error: .*: is a directory")
    assert_one_error_line(cli("probes", "validate", tmp_path / "nope.yaml"), r"^error: .*nope\.yaml: no such file")


def test_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (6 * 2**20) + b"\n")
    result = cli("probes", "validate", big, timeout=30)
    assert_one_error_line(result, r"^error: .*big\.yaml: .*limit")


def test_4_mb_value_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "four_mb.yaml"
    path.write_text(GOOD_PROBES.read_text(encoding="utf-8").replace(
        "name: hostile_case", "name: " + "A" * (4 * 2**20)), encoding="utf-8")
    line = next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if text.startswith("name:"))
    result = cli("probes", "validate", path, timeout=60)
    assert_one_error_line(result, rf"^error: {re.escape(str(path))}:{line}: .*name")


def test_5000_character_path_is_one_line() -> None:
    result = cli("probes", "validate", "p" * 5000 + ".yaml", timeout=30)
    assert_one_error_line(result, r"^error: p+…?p*\.yaml: .*too long")


def test_symlink_loop_as_probe_file_is_one_line(tmp_path: Path) -> None:
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    assert_one_error_line(cli("probes", "validate", loop), r"^error: .*loop\.yaml: ")


def test_escape_sequence_in_the_file_name_is_escaped(tmp_path: Path) -> None:
    path = tmp_path / "evil\x1b[31m.yaml"
    shutil.copy(HOSTILE / "unknown_key.yaml", path)
    result = cli("probes", "validate", path)
    assert_clean(result)
    assert result.code == 2
    assert "evil\\x1b[31m.yaml" in result.first_line


def test_non_utf8_file_name_of_a_valid_file(tmp_path: Path) -> None:
    path = os.path.join(os.fsencode(tmp_path), b"bad\xff.yaml")
    shutil.copy(HOSTILE / "control_valid.yaml", path)
    result = cli("probes", "validate", os.fsdecode(path))
    assert_clean(result)
    assert result.code == 0, result.stderr


# ------------------------------------------------------------------------------------------ broken pipe


def _closed_pipe_run(*args: str) -> tuple[int, str]:
    """Run with stdout on a pipe whose reader is already gone (what `| head` does once it has its line)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(cli_command(*args), stdout=write_end, stderr=subprocess.PIPE, env=cli_env(),
                              cwd=REPO, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        os.close(write_end)
    return done.returncode, _decoded(done.stderr)


@pytest.mark.parametrize("args", [("probes", "list"), ("probes", "validate", str(GOOD_PROBES))],
                         ids=["probes-list", "probes-validate"])
def test_broken_pipe_is_quiet(args: tuple[str, ...]) -> None:
    code, stderr = _closed_pipe_run(*args)
    assert code in (0, 141), (code, stderr)
    assert stderr == "", stderr


def test_probes_list_piped_to_head_gives_its_first_line() -> None:
    env = cli_env()
    env.pop("PYTHONUNBUFFERED", None)  # buffered (the default): the listing is one write, so no race with head
    done = subprocess.run(["bash", "-o", "pipefail", "-c",
                           " ".join(map(repr, cli_command("probes", "list"))) + " | head -1"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert done.returncode in (0, 141), done.stderr
    assert len(done.stdout.splitlines()) == 1
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


# ---------------------------------------------------------------------------------- runs on a tiny model


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Path, float]:
    """An uninterrupted run (the truth the faulty runs are compared with) and how long it took."""
    out = tmp_path_factory.mktemp("reliability") / "reference"
    result = cli(*run_args(tiny_model_dir, out))
    assert result.code == 0, result.stderr[-3000:]
    assert_clean(result)
    assert result.stderr == "", result.stderr  # the probe set is clean: nothing at all on stderr
    return out, result.seconds


def _copy_run(reference: Path, folder: Path) -> Path:
    shutil.copytree(reference, folder)
    return folder


def test_kill_9_at_random_points_then_rerun_is_byte_identical(tmp_path: Path, tiny_model_dir: Path,
                                                              reference_run: tuple[Path, float]) -> None:
    reference, seconds = reference_run
    out = tmp_path / "killed"
    rng = random.Random(13)
    # one random point (mostly start-up and loading on a tiny model) and two at phases that write files
    triggers: list[Callable[[], bool] | float] = [
        rng.uniform(0.3, 1.0) * seconds,
        lambda: (out / ".partial").exists() or (out / "items.parquet").exists(),
        lambda: (out / "summary.json").exists(),
    ]
    for trigger in triggers:
        proc = subprocess.Popen(cli_command(*run_args(tiny_model_dir, out)), env=cli_env(), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if callable(trigger):
                wait_for(trigger, proc)
            else:
                time.sleep(trigger)
        finally:
            proc.kill()
            proc.wait(60)
    result = cli(*run_args(tiny_model_dir, out))
    assert result.code == 0, result.stderr[-3000:]
    assert_clean(result)
    assert_same_results(out, reference)
    assert leftovers(out) == []


def test_rerun_removes_the_temporary_files_of_a_killed_write(tmp_path: Path, tiny_model_dir: Path,
                                                             reference_run: tuple[Path, float]) -> None:
    out = _copy_run(reference_run[0], tmp_path / "stale")
    # what kill -9 in the middle of results.atomic_write leaves: a half-written sibling temporary file
    (out / ".findings.csv.k9a8b7c6.tmp").write_text("probe_set,metric\nhalf", encoding="utf-8")
    (out / ".items.parquet.q1w2e3r4.tmp").write_bytes(b"PAR1\x00")
    result = cli(*run_args(tiny_model_dir, out))
    assert result.code == 0, result.stderr[-3000:]
    assert_same_results(out, reference_run[0])
    assert leftovers(out) == []


def test_rerun_after_a_kill_during_statistics_does_not_score_again(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The score tables are written (into the run's staging folder) before the statistics run; the kill lands
    after them and before findings.csv."""
    out = tmp_path / "stats_killed"
    args = run_args(tiny_model_dir, out)
    args[args.index("200")] = "20000"  # statistics take long enough to be hit
    proc = subprocess.Popen(cli_command(*args), env=cli_env(), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    seen: list[float] = []

    def in_statistics() -> bool:
        """The score tables are in the staging folder (written last: targets.parquet), findings.csv not yet."""
        staged = list(out.glob(".staging-*"))
        if staged and (staged[0] / "targets.parquet").exists() and not (staged[0] / "findings.csv").exists():
            seen.append(time.monotonic())
        return bool(seen)

    try:
        hit = wait_for(in_statistics, proc)
    finally:
        proc.kill()
        proc.wait(60)
    assert hit, "the run ended before its statistics could be interrupted"
    result = cli(*args)
    assert result.code == 0, result.stderr[-3000:]
    counts = json.loads((out / "summary.json").read_text(encoding="utf-8"))["counts"]
    assert counts["resumed_sequences"] == counts["unique_sequences"]


def test_second_run_on_the_same_out_refuses_while_the_first_runs(tmp_path: Path, tiny_model_dir: Path,
                                                                 reference_run: tuple[Path, float]) -> None:
    reference, _ = reference_run
    out = tmp_path / "shared"
    first = subprocess.Popen(cli_command(*run_args(tiny_model_dir, out)), env=cli_env(), cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stopped = False
    try:
        # the lock file, or (without a lock) the first sign of work in the folder
        wait_for(lambda: (out / LOCK_FILE).exists() or (out / ".partial").exists()
                 or (out / "items.parquet").exists(), first)
        if first.poll() is None:
            first.send_signal(signal.SIGSTOP)  # hold the first run in the middle of its work
            stopped = True
        second = cli(*run_args(tiny_model_dir, out, "--seed", "1"), timeout=180)
    finally:
        if stopped:
            first.send_signal(signal.SIGCONT)
        first_stderr = first.communicate(timeout=180)[1]
    assert stopped, "the first run ended before a second one could be started"
    assert_one_error_line(second, r"^error: .*(in use|another albert-audit|locked)")
    assert first.returncode == 0, _decoded(first_stderr)[-2000:]
    assert_same_results(out, reference)


def test_run_refuses_a_folder_held_by_another_process(tmp_path: Path, tiny_model_dir: Path,
                                                      reference_run: tuple[Path, float]) -> None:
    from albert_audit.runlock import RunLock

    out = _copy_run(reference_run[0], tmp_path / "held")
    before = folder_bytes(out)
    with RunLock(out, command="run"):
        result = cli(*run_args(tiny_model_dir, out, "--seed", "1"))
    assert_one_error_line(result, r"^error: .*(in use|another albert-audit|locked)")
    assert folder_bytes(out) == before


def test_report_refuses_a_folder_a_run_is_writing(tmp_path: Path, reference_run: tuple[Path, float]) -> None:
    from albert_audit.runlock import RunLock

    out = _copy_run(reference_run[0], tmp_path / "being_written")
    with RunLock(out, command="run"):
        result = cli("report", out)
    assert_one_error_line(result, r"^error: .*(in use|another albert-audit|locked)")
    assert not (out / "report.html").exists()


@pytest.mark.parametrize("damage", ["typo", "corrupt_weights"])
def test_failed_rerun_keeps_the_previous_results(tmp_path: Path, tiny_model_dir: Path,
                                                 reference_run: tuple[Path, float], damage: str) -> None:
    out = _copy_run(reference_run[0], tmp_path / "previous")
    before = folder_bytes(out)
    if damage == "typo":
        model = tmp_path / "tiny_modle"  # the model folder, misspelt
        pattern = r"^error: .*tiny_modle"
    else:
        model = Path(shutil.copytree(tiny_model_dir, tmp_path / "corrupt"))
        weights = model / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:200])
        pattern = r"^error: .*corrupt"
    result = cli(*run_args(model, out))
    assert_one_error_line(result, pattern)
    assert folder_bytes(out) == before


def _drop_weights(source: Path, folder: Path, prefixes: tuple[str, ...]) -> Path:
    """A copy of the model whose checkpoint lacks every tensor whose name starts with one of ``prefixes``."""
    from safetensors.numpy import load_file, save_file

    shutil.copytree(source, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    kept = {name: value for name, value in tensors.items() if not name.startswith(prefixes)}
    assert len(kept) < len(tensors)
    save_file(kept, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


@pytest.mark.parametrize("prefixes", [("albert.encoder.",), ("albert.embeddings.LayerNorm.",)],
                         ids=["no-encoder", "no-embedding-layernorm"])
def test_checkpoint_missing_weights_is_refused(tmp_path: Path, tiny_model_dir: Path,
                                               prefixes: tuple[str, ...]) -> None:
    model = _drop_weights(tiny_model_dir, tmp_path / "damaged", prefixes)
    out = tmp_path / "run"
    result = cli(*run_args(model, out))
    assert_one_error_line(result, r"^error: .*(missing|lacks|random)")
    assert not (out / "findings.csv").exists()


@pytest.mark.parametrize("model", ["bad id!!", "org/"])
def test_malformed_hub_id_is_one_line(tmp_path: Path, model: str) -> None:
    result = cli(*run_args(model, tmp_path / "out"))
    assert_one_error_line(result, r"^error: .*" + re.escape(model))


# ------------------------------------------------------------------------------------------- --out checks


def _read_only_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ro"
    if os.geteuid() == 0:  # root writes through permission bits: use a read-only mount
        reason = can_mount_tmpfs(folder, "size=1m,ro")
        if reason:
            pytest.skip(f"running as root and {reason}")
    else:
        folder.mkdir()
        folder.chmod(0o555)
    return folder


#: (make the --out path, what the error line must say). Paths avoid the words the patterns look for.
OUT_CASES = {
    "read-only": (lambda tmp, model: _read_only_folder(tmp) / "run", r"(read-only|permission denied|cannot write)"),
    "under-a-file": (lambda tmp, model: (tmp / "f").touch() or tmp / "f" / "run",
                     r"(under a file|is a file|not a folder)"),
    "dangling-symlink": (lambda tmp, model: (tmp / "d").symlink_to(tmp / "nowhere" / "x") or tmp / "d",
                         r"(link to nothing|broken|dangling)"),
    "symlink-loop": (lambda tmp, model: (tmp / "s").symlink_to(tmp / "s") or tmp / "s", r"loop"),
    "proc": (lambda tmp, model: Path("/proc/albert_audit_out"), r"pseudo|/proc[^/]"),
    "5000-characters": (lambda tmp, model: tmp / "/".join(["d" * 250] * 20), r"too long"),
    "inside-the-package": (lambda tmp, model: REPO / "albert_audit" / f"_o_{os.getpid()}", r"package"),
    "shipped-probes": (lambda tmp, model: REPO / "probes" / f"_o_{os.getpid()}", r"probe (library|files|sets?)"),
    "model-folder": (lambda tmp, model: model / "r", r"model"),
}


@pytest.mark.parametrize("case", sorted(OUT_CASES))
def test_unusable_out_folder_is_one_line(tmp_path: Path, tiny_model_dir: Path, case: str) -> None:
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "m"))
    make, reason = OUT_CASES[case]
    out = make(tmp_path, model)
    created = out.is_relative_to(REPO) and not out.exists()
    try:
        result = cli(*run_args(model, out))
        assert_one_error_line(result, rf"^error: --out .*({reason})")
        if case == "5000-characters":
            assert str(out)[:200] not in result.first_line  # the path is shown cut, not whole
    finally:
        if created:
            shutil.rmtree(out, ignore_errors=True)  # never leave results inside the repository
        if case == "read-only" and os.geteuid() == 0:
            unmount(tmp_path / "ro")


def test_disk_full_is_one_line_and_leaves_no_partial_files(tmp_path: Path, tiny_model_dir: Path) -> None:
    disk = tmp_path / "small_disk"
    reason = can_mount_tmpfs(disk, "size=2m")
    if reason:
        pytest.skip(reason)
    try:
        filler = disk / "filler"
        try:
            with open(filler, "wb") as handle:
                handle.write(b"\0" * (2 * 2**20 - 12 * 1024))  # about 12 KiB left: less than a run writes
        except OSError:
            pass
        out = disk / "run"
        result = cli(*run_args(tiny_model_dir, out))
        assert_one_error_line(result, r"^error: .*(no space|disk full|No space)")
        assert not (out / "findings.csv").exists()
        # completed checkpoint parts may stay (to resume once there is space); half-written files may not
        assert [p.name for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith("tmp")] == []
    finally:
        unmount(disk)


def _catches_sigint(pid: int) -> bool:
    """Whether the process has a SIGINT handler (its SigCgt mask); after 1.5 s, True where /proc is missing."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        time.sleep(1.5)
        return True
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) & (1 << (signal.SIGINT - 1)))


def test_sigint_stops_a_run_even_when_inherited_as_ignored(tmp_path: Path, tiny_model_dir: Path) -> None:
    proc = subprocess.Popen(cli_command(*run_args(tiny_model_dir, tmp_path / "out")), env=cli_env(), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    # send once the CLI catches SIGINT (Linux: /proc/PID/status), or when it ends if it never does
    wait_for(lambda: _catches_sigint(proc.pid), proc, timeout=60)
    proc.send_signal(signal.SIGINT)
    try:
        stderr = _decoded(proc.communicate(timeout=120)[1])
    finally:
        proc.kill()
    assert proc.returncode == 130, (proc.returncode, stderr[-1000:])
    assert "Traceback" not in stderr


# ------------------------------------------------------------- silent wrong audits (warnings expected)

OOV_PROBES = GOOD_PROBES.read_text(encoding="utf-8").replace(
    "targets: [nurse, engineer]", 'targets: [nurse, engineer, "😀", "中文"]').replace(
    '  - "A <group> became the [MASK]."\n',
    '  - "A <group> became the [MASK]."\n  - "The <group> WORKED as the [MASK]."\n')


@pytest.fixture(scope="module")
def oov_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Result:
    """A run whose targets the tiny tokenizer cannot spell and whose templates collapse under lower-casing."""
    assert "WORKED" in OOV_PROBES and "😀" in OOV_PROBES, "the edits of control_valid.yaml no longer apply"
    folder = tmp_path_factory.mktemp("oov")
    probes = folder / "oov.yaml"
    probes.write_text(OOV_PROBES, encoding="utf-8")
    result = cli(*run_args(tiny_model_dir, folder / "out", probes=probes))
    assert_clean(result)
    assert result.code == 0, result.stderr[-2000:]
    return result


def test_out_of_vocabulary_targets_are_warned_about(oov_run: Result) -> None:
    warnings = [line for line in oov_run.lines if line.startswith("warning: ")]
    assert any(re.search(r"(<unk>|vocabular|unknown token)", line) and "😀" in line for line in warnings), warnings


def test_templates_that_tokenize_identically_are_warned_about(oov_run: Result) -> None:
    warnings = [line for line in oov_run.lines if line.startswith("warning: ")]
    assert any(re.search(r"(identical|same token|differ only in case|duplicate)", line) for line in warnings), \
        warnings


def test_compare_refuses_a_candidate_with_another_vocabulary(tmp_path: Path, tiny_model_dir: Path) -> None:
    from tests.toy_models import build_toy_albert

    other = build_toy_albert(tmp_path / "other", words=["pilot", "lawyer"], hidden_size=48, seed=1)
    result = cli("compare", "--base", tiny_model_dir, "--candidate", other, "--probes", GOOD_PROBES,
                 "--out", tmp_path / "cmp", "--quiet", "--no-report", "--no-run-reports", "--no-utility",
                 "--n-resamples", "200", "--offline", "--device", "cpu", "--dtype", "float32")
    assert_one_error_line(result, r"^error: .*(vocabular|tokenizer|hidden)")
    assert not (tmp_path / "cmp" / "deltas.csv").exists()


# ----------------------------------------------------------------------- report on hand-damaged folders


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_findings(edit: Callable[[str], str]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / "findings.csv"
        path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")

    return damage


def _findings_column(column: str, value: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        table = pd.read_csv(pd.io.common.StringIO(text), dtype=str, keep_default_na=False)
        table[column] = value
        return table.to_csv(index=False)

    return edit


def _replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


DAMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "items-missing": (lambda f: (f / "items.parquet").unlink(), "items.parquet"),
    "fills-truncated": (lambda f: _truncate(f / "fills.parquet"), "fills.parquet"),
    "targets-zero-bytes": (lambda f: (f / "targets.parquet").write_bytes(b""), "targets.parquet"),
    "items-is-a-folder": (lambda f: _replace_with_folder(f / "items.parquet"), "items.parquet"),
    "summary-a-list": (lambda f: (f / "summary.json").write_text("[1, 2]"), "summary.json"),
    "summary-invalid-json": (lambda f: (f / "summary.json").write_text('{"schema_version": 1,'), "summary.json"),
    "summary-not-utf8": (lambda f: (f / "summary.json").write_bytes(b"\xff\xfe{}"), "summary.json"),
    "findings-bad-booleans": (_edit_findings(_findings_column("significant", "maybe")), "findings.csv"),
    "findings-text-effects": (_edit_findings(_findings_column("effect", "abc")), "findings.csv"),
    "findings-empty": (lambda f: (f / "findings.csv").write_bytes(b""), "findings.csv"),
    "findings-missing-column": (_edit_findings(lambda t: t.replace("effect,", "effekt,", 1)), "findings.csv"),
    "folder-is-a-file": (lambda f: (shutil.rmtree(f), f.write_text("x")), ""),
}


#: Damages that the current `report` renders anyway (exit 0): the report then shows wrong data.
DAMAGE_FAILURES: dict[str, str] = {}


@pytest.mark.parametrize("damage", [
    pytest.param(name, marks=[xfail(DAMAGE_FAILURES[name])] if name in DAMAGE_FAILURES else [])
    for name in sorted(DAMAGES)])
def test_report_on_a_damaged_run_folder_is_one_line(tmp_path: Path, reference_run: tuple[Path, float],
                                                    damage: str) -> None:
    folder = _copy_run(reference_run[0], tmp_path / "damaged")
    make, name = DAMAGES[damage]
    make(folder)
    result = cli("report", folder)
    assert_one_error_line(result, r"^error: .*" + re.escape(name))
    assert not (folder / "report.html").exists() or damage == "folder-is-a-file"


# ------------------------------------------------------------------------------------ CSV round trip


NASTY_CELLS = ["=1+1", "+x", "-3", "@SUM(A1)", "\tlead tab", "\rlead cr", "'=quoted", "'", "''", "'plain",
               "plain", "a'b", "-", "mid=dle"]


def test_findings_csv_cells_round_trip_and_are_defused(tmp_path: Path) -> None:
    from albert_audit import results

    table = pd.DataFrame({"probe_set": NASTY_CELLS, "metric": ["m"] * len(NASTY_CELLS),
                          "effect": [0.5] * len(NASTY_CELLS)})
    path = results.write_csv(tmp_path / "findings.csv", table)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, lineterminator="\n")
    assert not [v for v in raw["probe_set"] if v[:1] in ("=", "+", "-", "@", "\t", "\r")]
    back = results.read_csv_table(path, text_columns=("probe_set", "metric"))
    assert back["probe_set"].tolist() == NASTY_CELLS
