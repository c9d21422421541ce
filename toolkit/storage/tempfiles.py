"""A run's temporary files, cleaned up however the run ends.

Two kinds: the temp file of an atomic write, next to its destination
(`.<name>.gtkit-<host>-<pid>.<random>.tmp`, renamed over the destination on success), and the
run's one scratch directory in the temp dir (`gtkit-scratch-<host>-<pid>-<random>/`, the SQLite
files of `toolkit.storage.scratch`). Both names carry a hash of the host name and the pid.

- A normal exit or an exception removes them (the writers' own cleanup, then an atexit hook).
- SIGTERM and SIGHUP become SystemExit in the CLI (`install_signal_handlers`), so the same cleanup
  runs; SIGINT already raises KeyboardInterrupt.
- SIGKILL (or a power cut) leaves them. The next run removes those of dead processes on this host:
  scratch directories when it starts (and when it first needs scratch), temp files when it first
  writes to the same directory. Files of live processes, of other hosts (a shared disk) and in
  other naming schemes are never touched.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
TEMP_NAME = re.compile(r"\.gtkit-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
SCRATCH_NAME = re.compile(r"^gtkit-scratch-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-")
MAX_NAME_IN_TEMP = 100  # characters of the destination name kept in its temp name (255-byte limit)

_lock = threading.Lock()
_live: set[str] = set()  # temp files this process has in flight
_swept: set[str] = set()  # directories already swept for stale temp files by this process
_scratch: dict[str, list[Any]] = {}  # base dir -> [run dir, open files, pid]
_swept_scratch: set[tuple[str, int]] = set()  # (base dir, pid) already swept for dead runs' scratch


def pid_alive(pid: int) -> bool:
    """Whether process `pid` still runs here. Zombies (killed, not yet reaped) count as dead."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _stale(match: re.Match[str] | None) -> bool:
    return match is not None and match["host"] == HOST and not pid_alive(int(match["pid"]))


def _dead_runs(directory: str | Path, pattern: re.Pattern[str]) -> list[Path]:
    """Entries of `directory` whose name matches `pattern` and whose process is dead (this host)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [Path(directory, name) for name in names if _stale(pattern.search(name))]


# -- atomic-write temp files --------------------------------------------------------------------
def temp_prefix(destination: Path) -> str:
    """mkstemp prefix for an atomic write to `destination` (mkstemp adds `<random>` + suffix `.tmp`)."""
    return f".{destination.name[:MAX_NAME_IN_TEMP]}.gtkit-{HOST}-{os.getpid()}."


def sweep_stale_temp_files(directory: Path) -> list[Path]:
    """Remove temp files of dead runs in `directory`: once per directory and process (a run writing
    100,000 peaks files lists their directory once)."""
    key = os.path.abspath(directory)
    with _lock:
        if key in _swept:
            return []
        _swept.add(key)
    removed = _dead_runs(directory, TEMP_NAME)
    for path in removed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return removed


_HELD_SIGNALS = {getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)}


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT/SIGTERM/SIGHUP until the block ends: a file made in it is registered for cleanup
    before the signal's exception can be raised (between the two it would be left behind). Python
    runs signal handlers in the main thread only, so other threads need nothing."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a held signal is delivered here


def make_temp_file(destination: Path) -> tuple[int, str]:
    """mkstemp for an atomic write to `destination`, registered for cleanup before any signal can
    interrupt."""
    with signals_held():
        fd, path = tempfile.mkstemp(prefix=temp_prefix(destination), suffix=".tmp", dir=destination.parent)
        register(path)
    return fd, path


def register(path: str) -> None:
    with _lock:
        _live.add(path)


def unregister(path: str) -> None:
    with _lock:
        _live.discard(path)


def live_paths() -> list[str]:
    with _lock:
        return sorted(_live)


# -- the run's scratch directory ----------------------------------------------------------------
def sweep_stale_scratch(base: str | Path | None = None) -> list[Path]:
    """Remove scratch directories of dead runs under `base` (default: the temp dir)."""
    removed = _dead_runs(base or tempfile.gettempdir(), SCRATCH_NAME)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def new_scratch(base: str | Path | None = None, suffix: str = "", directory: bool = False) -> Path:
    """A new empty file (or directory) in this run's scratch directory under `base` (default: the
    temp dir), which is made on first use, after a sweep of dead runs' directories. Give it back
    with `release_scratch`."""
    root = str(base or tempfile.gettempdir())
    with _lock:
        entry = _scratch.get(root)
        if entry is None or entry[2] != os.getpid():  # a forked child gets its own directory
            if (root, os.getpid()) not in _swept_scratch:  # once per process: not per S3 media download
                _swept_scratch.add((root, os.getpid()))
                sweep_stale_scratch(root)
            with signals_held():  # the directory is known to cleanup() before a signal can land
                entry = [Path(tempfile.mkdtemp(prefix=f"gtkit-scratch-{HOST}-{os.getpid()}-", dir=root)), 0,
                         os.getpid()]
                _scratch[root] = entry
        entry[1] += 1
        if directory:
            return Path(tempfile.mkdtemp(suffix=suffix, dir=entry[0]))
        fd, name = tempfile.mkstemp(suffix=suffix, dir=entry[0])
    os.close(fd)
    return Path(name)


def release_scratch(path: Path) -> None:
    """Remove a scratch file or directory; the run's directory goes with the last of them."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    with _lock:
        for root, entry in list(_scratch.items()):
            if entry[0] == path.parent and entry[2] == os.getpid():
                entry[1] -= 1
                if entry[1] <= 0:
                    shutil.rmtree(entry[0], ignore_errors=True)
                    del _scratch[root]


# -- exit and signals ---------------------------------------------------------------------------
def cleanup() -> None:
    """Remove every temp file and scratch directory this process still has (atexit, signals)."""
    with _lock:
        live = list(_live)
        _live.clear()
        dirs = [entry[0] for entry in _scratch.values() if entry[2] == os.getpid()]
        _scratch.clear()
    for path in live:
        with contextlib.suppress(OSError):
            os.unlink(path)
    for directory in dirs:
        shutil.rmtree(directory, ignore_errors=True)


_HANDLER_PID: list[int] = []


def _exit_on_signal(signum: int, _frame: Any) -> None:
    if os.getpid() not in _HANDLER_PID:
        # A forked worker (export's process pool, which its parent ends with SIGTERM): die as before.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    # Unwinds like any exit: `finally` blocks remove temp files, then atexit runs cleanup().
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    """For the CLI (main thread only): SIGTERM/SIGHUP exit cleanly instead of dying in place, and
    scratch directories of dead runs are removed now."""
    _HANDLER_PID[:] = [os.getpid()]
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _exit_on_signal)
    sweep_stale_scratch()


atexit.register(cleanup)
