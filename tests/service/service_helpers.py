"""Helpers shared by the service tests (imported as `service_helpers`)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EXAMPLE_MIRROR = f"s3://example-feedback-bucket/={EXAMPLES}"
MEDIA = "s3://example-feedback-bucket/media"
PRE = [
    {"id": "pre-1", "track": "speaker", "label": "Agent", "start": 0.4, "end": 3.56, "text": "Northwind support."},
    {"id": "pre-2", "track": "speaker", "label": "Customer", "start": 3.9, "end": 8.2, "text": "My order is late."},
    {"id": "pre-3", "track": "speaker", "label": "Agent", "start": 9.0, "end": 11.5, "text": "Sorry about that."},
]
PASSWORD = "correct horse battery"
_db_numbers = itertools.count(1)


class FakeClock:
    """An injectable clock: starts at a fixed moment, moves only when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def manifest_lines(tmp_path: Path, count: int = 2) -> list[dict]:
    """`count` labelable calls (with pre-segments) and one inline-text line the pre-annotation
    handler declines, as the third line."""
    lines = []
    for i in range(count):
        lines.append({"source-ref": f"{MEDIA}/call_{i + 1:03d}.wav", "media-type": "audio",
                      "interaction-id": f"int-{i + 1:04d}", "duration-seconds": 21.0, "pre-segments": PRE,
                      "metadata": {"customer_id": f"cust-{i}"}})
    lines.insert(min(2, len(lines)), {"source": "inline text cannot be segmented"})
    return lines


def write_manifest(path: Path, lines: list) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def make_people(db, count: int, team: str = "team-a"):
    """A team and `count` annotators in it: (team, [UserInfo])."""
    from toolkit.service import people

    info = people.create_team(db, team)
    users = [people.create_user(db, email=f"{team}-{i}@example.org", display_name=f"Annotator {i}",
                                password=PASSWORD, team_ids=(info.id,)) for i in range(count)]
    return info, users


def answer_for(task, schema, worker: int, storage=None) -> dict:
    """A schema-valid answerContent for a task (the local job's simulated worker)."""
    from toolkit.service.simulate import simulated_answer_content

    return simulated_answer_content(task.task_input, schema, worker, storage)


def _admin_conninfo(server_url: str) -> str:
    url = make_url(server_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    name = f"gtkit_test_{os.getpid()}_{next(_db_numbers)}"
    with psycopg.connect(_admin_conninfo(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_conninfo(server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port_number() -> int:
    """A loopback port nothing listens on (for this moment)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PG_BIN = Path(os.environ.get("GTKIT_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


@contextlib.contextmanager
def throwaway_cluster(*, durable: bool = False) -> Iterator[str]:
    """A PostgreSQL server in a temp dir for this test session; yields its URL. Tests run it with
    fsync off (nothing it holds must outlive the session); `durable` keeps PostgreSQL's defaults, so
    a commit waits for its WAL on disk as in production (the benchmark's `--durable`)."""
    if not (PG_BIN / "initdb").is_file():
        pytest.fail(f"PostgreSQL 15 server binaries not found in {PG_BIN} (Debian: apt-get install postgresql-15)")
    base = Path(tempfile.mkdtemp(prefix="gtkit-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to `postgres`
        account = pwd.getpwnam("postgres")
        os.chown(base, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, log = base / "data", base / "server.log"
    port = free_port_number()

    def run(*args: str) -> None:
        done = subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}\n{server_log[-2000:]}")

    try:
        run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            *([] if durable else ["--no-sync"]))
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=300"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=120)
    finally:
        shutil.rmtree(base, ignore_errors=True)
