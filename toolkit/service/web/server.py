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

    Forked before gunicorn starts (no threads exist yet in this process); it stops on SIGTERM or SIGINT after the
    row it is working, and by itself within a poll interval when the process that started it is
    gone (a kill -9 of the server: its leased row is taken again after --queue-lease)."""

    def __init__(self, make_worker: Callable[[], Any]) -> None:
        self._make_worker = make_worker
        self.pid: int | None = None

    def start(self) -> QueueProcess:
        # os.fork, not multiprocessing: gunicorn's workers are forked from this process later, and
        # multiprocessing's bookkeeping of its children would be copied into them.
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                self._main(parent)
            except BaseException:
                log.exception("queue process failed")
                code = 1
            finally:
                os._exit(code)
        self.pid = pid
        return self

    def _main(self, parent: int) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        configure_logging()
        log.info("queue process started", extra={"fields": {"pid": os.getpid(), "parent": parent}})
        worker = self._make_worker()
        settle_garbage_collector()
        try:
            while not stop.is_set() and os.getppid() == parent:
                worker.run_round()
                stop.wait(worker.poll_s)
        finally:
            worker.db.dispose()

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            done, _status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped already (gunicorn's arbiter reaps every child it sees exit)
            return False
        return done == 0

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (it finishes the row it is working), then SIGKILL after `timeout` seconds."""
        if not self.alive():
            return
        assert self.pid is not None
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)


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
