"""Temp files of killed runs: the atomic-write temp file next to the destination and the scratch
directory in the temp dir. Real `gtkit` subprocesses, stopped in the middle of a run (their
feedback input is a FIFO the test holds open), then killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit.storage import Storage, tempfiles
from toolkit.storage.scratch import LabelIndex

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "export"
LABELS = FIXTURES / "call_center.output.manifest"
FEEDBACK = REPO / "examples" / "feedback" / "processed_feedback.jsonl"
GTKIT = [sys.executable, "-c", "from toolkit.cli import main; main()"]


def wait_for(predicate, what: str, proc: subprocess.Popen | None = None, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"gtkit exited ({proc.returncode}) before {what}: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def leftovers(tmp: Path, out_dir: Path) -> tuple[list[Path], list[Path]]:
    return sorted(tmp.glob("gtkit-scratch-*")), sorted(out_dir.glob(".*.tmp"))


def start_stuck_merge(tmp_path: Path) -> tuple[subprocess.Popen, object, dict, Path, Path]:
    """`gtkit merge` that has built its label index (scratch) and opened its output (temp file), and
    waits for the rest of its feedback input."""
    tmp, out_dir = tmp_path / "tmp", tmp_path / "out"
    tmp.mkdir()
    out_dir.mkdir()
    fifo = tmp_path / "feedback.fifo"
    os.mkfifo(fifo)
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen([*GTKIT, "merge", "--feedback", str(fifo), "--labels", str(LABELS), "--out",
                             str(out_dir / "enriched.jsonl"), "-q"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = open(fifo, "wb")  # blocks until gtkit opens the FIFO for reading  # noqa: SIM115
    writer.write(FEEDBACK.read_bytes().splitlines(keepends=True)[0])
    writer.flush()
    wait_for(lambda: all(leftovers(tmp, out_dir)), "the scratch dir and the temp file", proc)
    return proc, writer, env, tmp, out_dir


def test_sigkill_leftovers_are_removed_by_the_next_run(tmp_path):
    proc, writer, env, tmp, out_dir = start_stuck_merge(tmp_path)
    proc.kill()  # SIGKILL: nothing of gtkit runs
    proc.wait(timeout=30)
    writer.close()
    scratch, temps = leftovers(tmp, out_dir)
    assert len(scratch) == 1 and len(temps) == 1  # what a kill -9 leaves
    assert str(proc.pid) in scratch[0].name and str(proc.pid) in temps[0].name
    (out_dir / "keep.tmp").write_text("not ours")  # other people's temp files are left alone
    # A live process's temp files are never touched, whatever their age.
    live = out_dir / f".other.jsonl.gtkit-{tempfiles.HOST}-{os.getpid()}.abc123.tmp"
    live.write_text("in flight")

    # The next run (another command, writing another file into the same directory) cleans up.
    result = subprocess.run([*GTKIT, "manifest", "build", str(FEEDBACK), "--out", str(out_dir / "m.jsonl"),
                             "--no-transcribe", "-q"], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert leftovers(tmp, out_dir) == ([], [live])
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(["keep.tmp", "m.jsonl", live.name])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_leave_nothing_behind(tmp_path, signum):
    proc, writer, _, tmp, out_dir = start_stuck_merge(tmp_path)
    proc.send_signal(signum)
    proc.wait(timeout=30)
    writer.close()
    assert proc.returncode != 0
    assert leftovers(tmp, out_dir) == ([], [])
    assert list(out_dir.iterdir()) == []  # and no half-written output either


def test_scratch_lives_in_one_per_run_directory(tmp_path):
    with LabelIndex(str(tmp_path)) as a, LabelIndex(str(tmp_path)) as b:
        a.add("x", {"n": 1})
        b.add("y", {"n": 2})
        [run_dir] = tmp_path.iterdir()
        assert run_dir.name.startswith(f"gtkit-scratch-{tempfiles.HOST}-{os.getpid()}-")
        assert len(list(run_dir.iterdir())) == 2
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_temp_names_carry_host_and_pid(tmp_path):
    seen = []
    with Storage().open_write(tmp_path / "out.jsonl") as fh:
        fh.write("x\n")
        seen = [p.name for p in tmp_path.iterdir()]
    [name] = seen
    assert name.startswith(".out.jsonl.") and tempfiles.TEMP_NAME.search(name)
    assert f"-{os.getpid()}." in name
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    assert json.dumps(tempfiles.live_paths()) == "[]"


INTERRUPT_RIGHT_AFTER = """
import os, signal, sys, tempfile
from toolkit.storage import Storage
from toolkit.storage.scratch import LabelIndex

def interrupted(make):
    def wrapper(*args, **kwargs):
        made = make(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C lands right after the file exists
        return made
    return wrapper

if sys.argv[1] == "temp-file":
    tempfile.mkstemp = interrupted(tempfile.mkstemp)
    Storage().write_bytes(sys.argv[2], b"x")
else:
    tempfile.mkdtemp = interrupted(tempfile.mkdtemp)
    with LabelIndex(sys.argv[2]) as index:
        index.add("x", {"n": 1})
"""


@pytest.mark.parametrize("kind", ["temp-file", "scratch"])
def test_a_signal_right_after_a_temp_file_is_made_leaves_nothing_behind(tmp_path, kind):
    """The window between making a temp file (or the scratch directory) and registering it for
    cleanup: a signal there used to leave the file behind."""
    target = tmp_path / "out.jsonl" if kind == "temp-file" else tmp_path
    result = subprocess.run([sys.executable, "-c", INTERRUPT_RIGHT_AFTER, kind, str(target)],
                            capture_output=True, text=True, timeout=60)
    assert "KeyboardInterrupt" in result.stderr and result.returncode != 0
    assert list(tmp_path.iterdir()) == []
