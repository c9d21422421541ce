"""Fixtures for the service tests: every DB test runs on SQLite and on a real PostgreSQL 15.

PostgreSQL: `GTKIT_TEST_POSTGRES_URL` if set (a server whose user may CREATE DATABASE), otherwise a
throwaway cluster started here (initdb + pg_ctl on a free loopback port, as user `postgres` when
running as root, since initdb refuses root) and stopped at the end. A server that cannot start
fails the tests; it never skips them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from service_helpers import (
    FakeClock,
    _admin_conninfo,
    fresh_postgres_database,
    manifest_lines,
    write_manifest,
)

from toolkit.service import migrate
from toolkit.service.db import Database

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> Iterator[str]:
    """An empty database (no tables) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gtkit.db'}"
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_server")) as url:
        yield url


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "gtkit.db"
    database = Database(f"sqlite:///{path}")
    migrate.upgrade(database)
    database.dispose()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def _postgres_migrated(postgres_server) -> Iterator[str]:
    """One migrated PostgreSQL database for the session; each test starts from empty tables."""
    with fresh_postgres_database(postgres_server) as url:
        database = Database(url)
        migrate.upgrade(database)
        database.dispose()
        yield url


def _empty_tables(url: str) -> None:
    from toolkit.service.tables import Base

    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with psycopg.connect(_admin_conninfo(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path, clock) -> Iterator[Database]:
    """A migrated, empty database with the injectable clock, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "gtkit.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("_postgres_migrated")
        _empty_tables(url)
    database = Database(url, clock=clock)
    yield database
    database.dispose()


# -- service fixtures ---------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _cheap_password_hashes():
    """argon2's default cost (64 MiB, 3 passes) takes ~0.1-0.7 s a hash on a shared CI core; the
    tests create many accounts. The code path is the same, only the parameters differ."""
    from argon2 import PasswordHasher

    from toolkit.service import people

    before = people._hasher
    people.set_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    people.set_password_hasher(before)


@pytest.fixture
def schema():
    from toolkit.contract import load_label_schema

    return load_label_schema("call-center")


@pytest.fixture
def storage(example_mirror):
    from toolkit.storage import Storage

    return Storage([example_mirror])


@pytest.fixture
def manifest(tmp_path) -> Path:
    return write_manifest(tmp_path / "manifest.jsonl", manifest_lines(tmp_path))


@pytest.fixture
def postgres_lock_holder():
    """lock(db, object_id, seconds): on PostgreSQL, another connection holds the object's row lock
    (as a submit in progress does) for `seconds`; returns a function that waits for its release.
    On SQLite (no row locks) it does nothing."""
    import threading

    threads: list[threading.Thread] = []

    def hold(db: Database, object_id: int, seconds: float):
        if not db.is_postgres:
            return lambda: None
        locked = threading.Event()

        def run() -> None:
            with psycopg.connect(_admin_conninfo(db.url)) as conn:
                conn.execute("SELECT id FROM objects WHERE id = %s FOR UPDATE", (object_id,))
                locked.set()
                time.sleep(seconds)
                conn.rollback()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        assert locked.wait(10)
        return lambda: thread.join(10)

    yield hold
    for thread in threads:
        thread.join(10)
