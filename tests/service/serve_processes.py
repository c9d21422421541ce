"""Real `gtkit serve run` servers (gunicorn) in subprocesses, and scripted annotators against them
(imported as `serve_processes`). Loopback only; every wait is bounded."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from service_helpers import PASSWORD, free_port_number, make_people
from sqlalchemy import select

from toolkit.service import migrate
from toolkit.service.db import Database
from toolkit.service.simulate import simulated_answer_content
from toolkit.service.tables import DataObject
from toolkit.service.web.client import Annotator
from toolkit.service.web.context import shared_secret

GTKIT = Path(sys.executable).with_name("gtkit")


class Server:
    """One instance: a gunicorn master and its workers in their own process group."""

    def __init__(self, data: Path, db_url: str, *, workers: int = 2, threads: int = 8, lease_s: int = 5,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.extra_args = extra_args
        self.data, self.db_url, self.lease_s = data, db_url, lease_s
        self.workers, self.threads = workers, threads
        self.port = free_port_number()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = data / f"server-{self.port}.log"

    def start(self, timeout: float = 90) -> Server:
        self.proc = subprocess.Popen(
            [str(GTKIT), "serve", "run", "--data", str(self.data), "--db", self.db_url, "--port", str(self.port),
             "--workers", str(self.workers), "--threads", str(self.threads), "--plain-http",
             "--queue-lease", str(self.lease_s), *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=self.log.open("a"), start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"server not ready in {timeout} s: {self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        """kill -9 the master and every worker at once (the group is the one started here)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill9()


def prepare(url: str, users: int):
    """A migrated database with its shared key, a team and `users` annotators."""
    db = Database(url)
    migrate.upgrade(db)
    shared_secret(db)
    team, people = make_people(db, users)
    return db, team, people


def task_inputs(db: Database, job_id: int) -> dict[int, dict]:
    with db.read() as session:
        return {oid: json.loads(text) for oid, text in session.execute(
            select(DataObject.id, DataObject.task_input_json)
            .where(DataObject.job_id == job_id, DataObject.task_input_json.is_not(None)))}


@dataclass
class Crowd:
    """Annotator threads doing next -> submit until nothing is left (or `deadline`), retrying across
    server restarts. `acked` holds every (object, user) whose submit returned 200."""

    urls: list[str]
    users: list
    inputs: dict[int, dict]
    schema: object
    deadline: float
    acked: set[tuple[int, int]] = field(default_factory=set)
    given: dict[int, list[int]] = field(default_factory=dict)  # user -> objects handed to them
    errors: list[str] = field(default_factory=list)
    retries: int = 0  # requests cut off or refused by a server that was down
    switch_instances: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def _retry(self, fn, *args):
        while time.monotonic() < self.deadline:
            try:
                return fn(*args)
            except (OSError, http.client.HTTPException):  # the server is down, restarting, or was
                # killed mid-response (IncompleteRead): try again shortly
                with self.lock:
                    self.retries += 1
                time.sleep(0.2)
        raise TimeoutError("deadline passed")

    def _work(self, index: int, user) -> None:
        client = Annotator(self.urls[index % len(self.urls)], timeout=30)
        try:
            self._retry(client.sign_in, user.email, PASSWORD)
            step = 0
            while time.monotonic() < self.deadline:
                object_id = self._retry(client.next_task)
                if object_id is None:
                    return
                with self.lock:
                    self.given.setdefault(user.id, []).append(object_id)
                content = simulated_answer_content(self.inputs[object_id], self.schema, index + 1)
                self._retry(client.submit, object_id, content)
                with self.lock:
                    self.acked.add((object_id, user.id))
                step += 1
                if self.switch_instances and len(self.urls) > 1:
                    client.use(self.urls[(index + step) % len(self.urls)])  # the session works everywhere
        except Exception as exc:  # recorded, the test fails on it
            with self.lock:
                self.errors.append(f"{user.id}: {type(exc).__name__}: {exc}")
        finally:
            client.close()

    def start(self) -> Crowd:
        for index, user in enumerate(self.users):
            thread = threading.Thread(target=self._work, args=(index, user), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def join(self) -> None:
        for thread in self.threads:
            thread.join(max(1.0, self.deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "annotators still running at the deadline"
