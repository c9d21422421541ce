"""The service's database: one SQLAlchemy engine for SQLite (embedded) or PostgreSQL (psycopg 3).

- `sqlite:///DIR/gtkit.db`: WAL (readers never wait for the writer), foreign keys on, a busy
  timeout, `synchronous=FULL` (an acknowledged submit survives a power cut, not just a kill -9).
  pysqlite normally issues its own deferred `BEGIN` before the first write, and a deferred
  transaction that later needs the write lock fails with SQLITE_BUSY instead of waiting. So the
  driver's transaction handling is switched off (SQLAlchemy's documented recipe for pysqlite) and
  SQLAlchemy emits `BEGIN IMMEDIATE` for write transactions (`Database.write()`) and a plain
  `BEGIN` for reads (`Database.read()`): writers queue on the busy timeout, readers never block.
- `postgresql+psycopg://...` (a bare `postgresql://` is taken to mean psycopg 3): READ COMMITTED;
  the claim and queue queries use `SELECT ... FOR NO KEY UPDATE SKIP LOCKED` (`Database.lock`).

Every time the service reads the clock it asks `Database.now()`, so tests inject a clock.
"""

from __future__ import annotations

import contextlib
import select
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from psycopg import errors as psycopg_errors
from sqlalchemy import Engine, Select, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from toolkit.service.errors import DatabaseUrlError

DB_FILE = "gtkit.db"
BUSY_TIMEOUT_MS = 30_000
_WRITE = "gtkit_write"  # execution option that marks the write engine's connections
_LIGHT = "gtkit_light"  # ... and those of writes that need not survive a power cut (see write())
_SYNCHRONOUS = "gtkit_synchronous"  # connection info key: the PRAGMA synchronous value it has now
S = TypeVar("S", bound=Select)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def sqlite_url(data_dir: str | Path) -> str:
    """`sqlite:///DIR/gtkit.db` for a data directory."""
    return f"sqlite:///{Path(data_dir).resolve() / DB_FILE}"


def normalize_url(url: str) -> str:
    """Pin the drivers: `postgresql://` and `postgres://` mean psycopg 3, `sqlite://` pysqlite."""
    try:
        parsed = make_url(url)
    except ArgumentError:  # its message quotes the URL, password and all
        raise DatabaseUrlError("not a database URL: use sqlite:///PATH or postgresql://...") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise DatabaseUrlError(f"unsupported database {backend!r}: use sqlite:///PATH or postgresql://...")
    return parsed.render_as_string(hide_password=False)


def _sqlite_engine(url: str, echo: bool) -> Engine:
    engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False,
                                                         "timeout": BUSY_TIMEOUT_MS / 1000},
                           pool_size=20, max_overflow=40, pool_timeout=60)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        # Stop pysqlite from issuing BEGIN itself; SQLAlchemy's "begin" event below does it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}",
                       "synchronous=FULL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()
        record.info[_SYNCHRONOUS] = "FULL"

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get(_WRITE):
            # Per transaction: pooled connections carry the last value otherwise. The value this
            # connection has is remembered on it, so the PRAGMA is sent only when it changes.
            wanted = "NORMAL" if options.get(_LIGHT) else "FULL"
            info = conn.connection.info
            if info.get(_SYNCHRONOUS) != wanted:
                conn.exec_driver_sql(f"PRAGMA synchronous={wanted}")
                info[_SYNCHRONOUS] = wanted
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _postgres_engine(url: str, echo: bool, pool_size: int) -> Engine:
    engine = create_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_timeout=60)

    @event.listens_for(engine, "checkout")
    def _alive(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        # Instead of pool_pre_ping (a SELECT 1, one round trip per transaction): an idle pooled
        # connection has nothing to read unless the server closed it (a restart, an admin's
        # pg_terminate_backend, an idle timeout). Then the pool discards it and makes a new one.
        # A server that vanished without closing still fails the request that finds it, which
        # invalidates the pool; pre_ping would have waited for the same TCP timeout.
        try:
            fd = dbapi_connection.fileno()
            readable, _w, _x = select.select([fd], [], [], 0)
        except (OSError, ValueError, psycopg_errors.OperationalError):
            raise DisconnectionError("pooled connection is closed") from None
        if readable or dbapi_connection.closed:
            raise DisconnectionError("the server closed this pooled connection")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Write transactions run on autocommit connections (see Database.__init__) and are begun
        # here: BEGIN and a light write's SET LOCAL go as one simple query, one round trip where
        # psycopg's own BEGIN and then the SET took two. commit()/rollback() still end them: psycopg
        # sends COMMIT or ROLLBACK whenever the server says a transaction is open, autocommit or not.
        options = conn.get_execution_options()
        if options.get(_WRITE):
            conn.exec_driver_sql("BEGIN; SET LOCAL synchronous_commit TO OFF" if options.get(_LIGHT) else "BEGIN")

    return engine


def locked(stmt: S, *, postgres: bool, skip_locked: bool = False, of: Any = None) -> S:
    """Database.lock for a dialect, for statements built once and kept (toolkit.service.work)."""
    if not postgres:
        return stmt
    return stmt.with_for_update(skip_locked=skip_locked, of=of, key_share=True)


class Database:
    """Engine, sessions and clock of one service database."""

    def __init__(self, url: str, *, clock: Clock = utcnow, echo: bool = False, pool_size: int = 10) -> None:
        self.url = normalize_url(url)
        if self.url.startswith("sqlite"):
            self.engine = _sqlite_engine(self.url, echo)
        else:
            self.engine = _postgres_engine(self.url, echo, pool_size)
        self.dialect: str = self.engine.dialect.name
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self.clock = clock
        # PostgreSQL reads run without BEGIN/COMMIT: under READ COMMITTED every statement takes its
        # own snapshot either way, so a read-only transaction adds two round trips and no consistency.
        reads = self.engine.execution_options(isolation_level="AUTOCOMMIT") if self.is_postgres else self.engine
        self._read = sessionmaker(reads, expire_on_commit=False)
        self._read_in_transaction = sessionmaker(self.engine, expire_on_commit=False)
        writes = reads if self.is_postgres else self.engine  # PostgreSQL: begun by the "begin" event
        self._write = sessionmaker(writes.execution_options(**{_WRITE: True}), expire_on_commit=False)
        self._write_light = sessionmaker(writes.execution_options(**{_WRITE: True, _LIGHT: True}),
                                         expire_on_commit=False)

    @classmethod
    def for_data_dir(cls, data_dir: str | Path, **kwargs: Any) -> Database:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        return cls(sqlite_url(data_dir), **kwargs)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def now(self) -> datetime:
        moment = self.clock()
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)

    @contextlib.contextmanager
    def read(self, *, stream: bool = False) -> Iterator[Session]:
        """A read-only session: SQLite, a deferred BEGIN (one snapshot, never waits for a writer);
        PostgreSQL, autocommit statements (READ COMMITTED's own snapshot per statement, without
        the two round trips of BEGIN and COMMIT). Never write or lock rows in it. Closing the
        session ends it; loaded objects stay readable (detached, not expired).

        `stream=True`: a transaction on PostgreSQL too, for `yield_per` queries (psycopg's
        server-side cursors live in a transaction)."""
        with (self._read_in_transaction if stream else self._read)() as session:
            yield session

    @contextlib.contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on an exception.
        SQLite: `BEGIN IMMEDIATE`, so it holds the write lock from its first statement. Threads of
        one process queue on a lock first: SQLite's busy handler polls with sleeps of up to 100 ms,
        so 50 threads waiting on it took 3x longer than waiting their turn on a lock (other
        processes still wait on the busy timeout). Do not nest write() calls.

        `durable=False`: a commit that may be lost on a power cut (never on a crash of the
        process): SQLite `synchronous=NORMAL`, PostgreSQL `synchronous_commit = off`, saving the
        WAL flush (about 10 ms per commit on this machine's disk). For writes whose loss is harmless
        and whose effect is remade: a claim's hold, a sign-in session, throttle counts, queue
        leases and derived rows. Both logs are sequential, so a power cut loses a suffix of
        transactions, never one in the middle: every durable commit keeps everything before it."""
        maker = self._write if durable else self._write_light
        if self._write_lock is None:
            with maker() as session, session.begin():
                yield session
            return
        if not self._write_lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise TimeoutError(f"no write turn on {self.url} within {BUSY_TIMEOUT_MS} ms")
        try:
            with maker() as session, session.begin():
                yield session
        finally:
            self._write_lock.release()

    def lock(self, stmt: S, *, skip_locked: bool = False, of: Any = None) -> S:
        """`FOR NO KEY UPDATE [SKIP LOCKED]` on PostgreSQL: the service never changes a key, and
        plain FOR UPDATE would also block the foreign-key checks of other transactions (a submit
        enqueueing work for a job whose row an add-objects batch holds). SQLite needs no row
        locks: its write transactions are serialised by BEGIN IMMEDIATE."""
        return locked(stmt, postgres=self.is_postgres, skip_locked=skip_locked, of=of)

    def dispose(self) -> None:
        self.engine.dispose()
