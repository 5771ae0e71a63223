"""Unit tests of the reliability building blocks: shown values, CSV cells, signals, the run lock, input files,
output folders."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from albert_audit import csvcell
from albert_audit.errors import AuditError, shown
from albert_audit.inputs import check_regular_file, read_text_limited
from albert_audit.outdir import forbidden_places, prepare_out_folder
from albert_audit.runlock import LOCK_FILE, RunLock

NASTY_CELLS = ["=1+1", "+x", "-3", "@SUM(A1)", "\tlead tab", "\rlead cr", "'=quoted", "'", "''", "'plain",
               "plain", "", "a'b", "-", "mid=dle", "\u200bzero width", "é"]


def test_shown_escapes_controls_and_cuts_long_values() -> None:
    assert shown("a\x1b[31mred") == "a\\x1b[31mred"
    assert shown("zero\u200bwidth") == "zero\\u200bwidth"
    assert shown("lone\udc80") == "lone\\udc80"
    long = shown("x" * 5000)
    assert len(long) == 80 and "…" in long
    assert shown("normal text, ünïcode") == "normal text, ünïcode"


@pytest.mark.parametrize("value", NASTY_CELLS)
def test_csv_cells_round_trip_exactly(value: str) -> None:
    assert csvcell.restore(csvcell.defuse(value)) == value
    written = csvcell.defuse(value)
    assert written[:1] not in csvcell.FORMULA_STARTS  # a spreadsheet never sees a formula start


def test_csv_cells_round_trip_through_a_file() -> None:
    table = pd.DataFrame({"text": [csvcell.defuse(v) for v in NASTY_CELLS]})
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    back = pd.read_csv(io.StringIO(buffer.getvalue()), dtype=str, keep_default_na=False, lineterminator="\n")
    assert [csvcell.restore(v) for v in back["text"]] == NASTY_CELLS


SIGNAL_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from albert_audit.signals import install_stop_handlers, exit_code
    install_stop_handlers()
    try:
        print("ready", flush=True)
        time.sleep(20)
    except KeyboardInterrupt as exc:
        print("stopped", flush=True)
        sys.exit(exit_code(exc))
""")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_stop_cleanly_even_when_inherited_as_ignored(signum: int, code: int) -> None:
    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, "-c", SIGNAL_SCRIPT], stdout=subprocess.PIPE, text=True,
                            preexec_fn=ignore)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == code
    assert "stopped" in out


LOCK_SCRIPT = textwrap.dedent("""
    import sys, time
    from albert_audit.runlock import RunLock
    with RunLock(sys.argv[1], command="run"):
        print("locked", flush=True)
        time.sleep(30)
""")


def test_run_lock_refuses_a_live_owner_and_takes_over_a_dead_one(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", LOCK_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(AuditError, match=rf"in use by another albert-audit process \(pid {proc.pid}, run"):
        RunLock(tmp_path, command="report").acquire()
    proc.kill()  # kill -9: no cleanup runs, the lock file stays
    proc.wait(timeout=10)
    assert (tmp_path / LOCK_FILE).exists()
    with RunLock(tmp_path, command="report") as lock:
        assert str(os.getpid()) in lock.path.read_text()
    with RunLock(tmp_path, command="run"):  # released on exit: taken again
        pass


def test_input_files_refuse_devices_fifos_folders_and_big_files(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    started = time.perf_counter()
    with pytest.raises(AuditError, match="is a FIFO, not a regular file"):
        read_text_limited(fifo, what="a probe-set file", max_bytes=1000)
    assert time.perf_counter() - started < 5
    with pytest.raises(AuditError, match="is a device or socket"):
        check_regular_file("/dev/zero", what="a probe-set file", max_bytes=1000)
    with pytest.raises(AuditError, match="is a directory"):
        check_regular_file(tmp_path, what="a probe-set file", max_bytes=1000)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(AuditError, match="over the"):
        check_regular_file(big, what="a probe-set file", max_bytes=1000)
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"ok\nok\n\xff\n")
    with pytest.raises(AuditError, match=r"bad.yaml:3: not valid UTF-8"):
        read_text_limited(bad, what="a probe-set file", max_bytes=1000)


def test_out_folder_refuses_unusable_places(tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(AuditError, match="is a file"):
        prepare_out_folder(a_file)
    with pytest.raises(AuditError, match="is under a file"):
        prepare_out_folder(a_file / "run")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(AuditError, match="a symbolic link to nothing"):
        prepare_out_folder(dangling)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(AuditError, match="symbolic-link loop|symbolic link to nothing"):
        prepare_out_folder(loop / "run")
    with pytest.raises(AuditError, match="pseudo file system"):
        prepare_out_folder("/proc/self/run")
    with pytest.raises(AuditError, match="too long"):
        prepare_out_folder(tmp_path / ("x" * 300))
    with pytest.raises(AuditError, match=r"^--out .{0,80}: (cannot write there \()?a name in the path is too long"):
        prepare_out_folder(tmp_path / ("y" * 5000))


def test_out_folder_refuses_the_package_the_model_and_the_probe_library(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    probe = tmp_path / "probes" / "mine.yaml"
    probe.parent.mkdir()
    probe.write_text("name: x\n")
    places = forbidden_places(model_dir=model, probe_files=[probe])
    import albert_audit

    with pytest.raises(AuditError, match="inside the installed albert_audit package"):
        prepare_out_folder(Path(albert_audit.__file__).parent / "out", forbidden=places)
    with pytest.raises(AuditError, match="inside the model's folder"):
        prepare_out_folder(model / "run", forbidden=places)
    with pytest.raises(AuditError, match="probe files"):
        prepare_out_folder(probe.parent, forbidden=places)
    from albert_audit.library import shipped_probes_dir

    with pytest.raises(AuditError, match="shipped probe library"):
        prepare_out_folder(shipped_probes_dir() / "run", forbidden=places)
    assert prepare_out_folder(tmp_path / "ok" / "run", forbidden=places).is_dir()
