"""Serving the web app: gunicorn with several worker processes (production) or Flask's server (--dev),
and structured JSON logs.

Each gunicorn worker builds its own app after the fork (no preloading): its own database engine. The
work queue runs in one process of its own beside them (QueueProcess). Several processes and several
instances on one database are safe: claims, submits and queue rows are transactions, and queue rows
are leased.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)
# Attributes every LogRecord has; anything else was passed in `extra`.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's `fields`. Callers
    put ids, endpoints, statuses and timings there, never names, emails, answers or paths."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                                 "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # /readyz reads the revision on every call
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # --dev: its request lines carry paths (tokens)


def settle_garbage_collector() -> None:
    """Move what the app built at start (about 180,000 objects: modules, models, schemas) out of the
    collector's reach. Otherwise every full collection walks them all, about 100 ms during which no
    request thread runs: a tail latency of every request it lands on. After this a full collection
    walks what requests made since, a few milliseconds."""
    gc.collect()
    gc.freeze()


class QueueProcess:
    """The work queue (consolidations, output writes) in a process of its own beside gunicorn's.

    In a worker process the queue thread's consolidations and output writes are pure Python: each
    request thread, giving up the GIL around every SQLite call, then waited up to a switch interval
    (5 ms) to get it back, so a request that overlapped a queue round took 100-300 ms instead of 10
    (measured: 37 of the 40 slowest requests of a 1,200-task run overlapped an output write). In
    its own process the queue has its own GIL, and one process per instance polls the database
    instead of one thread per worker.

    Two processes, forked before gunicorn starts (no threads exist yet in this process): a small
    supervisor, and the queue worker it forks and starts again (after 1, 2, 4 ... 30 s) should it
    ever die (the worker catches every error of a round; this is for a hard crash or an OOM kill).
    Both stop on SIGTERM or SIGINT, the worker after the row it is working, and both by themselves
    within a second when the process that started them is gone (a kill -9 of the server: a leased
    row is taken again after --queue-lease)."""

    RESTART_MAX_S = 30.0
    STOP_TIMEOUT_S = 30.0
    # The queue is background work: when the CPUs are busy, a consolidation or an output write
    # (a burst of pure Python) should wait for the request workers, not they for it. Niceness 10
    # weighs it about a tenth of a request worker under Linux's scheduler, never zero.
    NICENESS = 10

    def __init__(self, make_worker: Callable[[], Any]) -> None:
        self._make_worker = make_worker
        self.pid: int | None = None  # the supervisor's

    def start(self) -> QueueProcess:
        # os.fork, not multiprocessing: gunicorn's workers are forked from this process later, and
        # multiprocessing's bookkeeping of its children would be copied into them.
        self.pid = _fork(self._supervise, os.getpid(), "queue supervisor failed")
        return self

    def _supervise(self, server: int) -> None:
        stop = _stop_on_signals()
        configure_logging()
        worker: int | None = None
        started, pause = 0.0, 1.0
        try:
            while not stop.is_set() and os.getppid() == server:
                if worker is None:
                    worker, started = _fork(self._work, os.getpid(), "queue process failed"), time.monotonic()
                elif _ended(worker):
                    if time.monotonic() - started > 60:  # it had been running: no backoff
                        pause = 1.0
                    log.warning("queue process ended; starting another", extra={"fields": {"pid": worker}})
                    worker = None
                    stop.wait(pause)
                    pause = min(self.RESTART_MAX_S, pause * 2)
                    continue
                stop.wait(0.5)
        finally:
            if worker is not None:
                _terminate(worker, self.STOP_TIMEOUT_S)

    def _work(self, supervisor: int) -> None:
        os.nice(self.NICENESS)
        stop = _stop_on_signals()
        configure_logging()
        log.info("queue process started", extra={"fields": {"pid": os.getpid(), "parent": supervisor}})
        worker = self._make_worker()
        settle_garbage_collector()
        try:
            while not stop.is_set() and os.getppid() == supervisor:
                worker.run_round()
                stop.wait(worker.poll_s)
        finally:
            worker.db.dispose()

    def stop(self) -> None:
        """SIGTERM to the supervisor (it stops the worker, which finishes the row it is working),
        then SIGKILL if it has not ended after the worker's own stop timeout and a margin."""
        if self.pid is not None:
            _terminate(self.pid, self.STOP_TIMEOUT_S + 5)


def _fork(target: Callable[[int], None], parent: int, failure: str) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            target(parent)
        except BaseException:
            log.exception(failure)
            code = 1
        finally:
            os._exit(code)
    return pid


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _ended(pid: int) -> bool:
    """A child of this process has exited (and is reaped now), or was reaped already (gunicorn's
    arbiter reaps every child it sees exit)."""
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done != 0


def _terminate(pid: int, timeout: float) -> None:
    if _ended(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not _ended(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _ended(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def run_gunicorn(factory: Callable[[], Flask], *, host: str, port: int, workers: int, threads: int,
                 timeout: int = 120, queue: Callable[[], Any] | None = None) -> None:
    """`queue`: makes the QueueWorker that a QueueProcess runs beside the gunicorn workers (whose apps
    then run no queue thread); None: no queue here (`--no-queue`)."""
    from gunicorn.app.base import BaseApplication

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                               "worker_class": "gthread", "timeout": timeout, "graceful_timeout": 30,
                               "keepalive": 30,  # browsers and proxies reuse connections between pages
                               "preload_app": False, "accesslog": None, "errorlog": "-",
                               "worker_tmp_dir": "/dev/shm", "proc_name": "gtkit-serve",
                               # gunicorn 24+ opens a control socket at one fixed path per user:
                               # a second instance on the machine would take it over.
                               "control_socket_disable": True}.items():
                if key in self.cfg.settings:  # control_socket_disable is new in gunicorn 24
                    self.cfg.set(key, value)

        def load(self) -> Flask:
            configure_logging()
            app = factory()
            settle_garbage_collector()
            return app

    process = QueueProcess(queue).start() if queue is not None else None
    try:
        _App().run()
    finally:
        if process is not None:
            process.stop()


def run_dev(app: Flask, *, host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False)
