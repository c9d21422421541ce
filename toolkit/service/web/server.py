"""Serving the web app: gunicorn with several worker processes (production) or Flask's server (--dev),
and structured JSON logs.

Each gunicorn worker builds its own app after the fork (no preloading): its own database engine and
its own queue thread. Several processes and several instances on one database are safe: claims,
submits and queue rows are transactions, and queue rows are leased.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask

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


def run_gunicorn(factory: Callable[[], Flask], *, host: str, port: int, workers: int, threads: int,
                 timeout: int = 120) -> None:
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

    _App().run()


def run_dev(app: Flask, *, host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False)
