"""Engine setup and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from service_helpers import fresh_postgres_database
from sqlalchemy import event, select, text

from toolkit.service import migrate
from toolkit.service.db import Database, normalize_url, sqlite_url
from toolkit.service.errors import DatabaseUrlError
from toolkit.service.tables import Base, Job, Team, WorkItem

TABLES = {"users", "invitations", "teams", "memberships", "jobs", "objects", "holds", "answers",
          "consolidations", "work_queue", "sessions", "audit", "settings", "login_throttle", "identities"}


def table_names(db: Database) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}


def index_names(db: Database, table: str) -> set[str]:
    return {i["name"] for i in sa.inspect(db.engine).get_indexes(table)}


def test_upgrade_from_empty_matches_the_models(db_url):
    db = Database(db_url)
    assert table_names(db) == set()
    migrate.upgrade(db)
    assert table_names(db) == TABLES
    assert migrate.current_revision(db) == migrate.head_revision() == migrate.revisions()[-1]
    with db.engine.connect() as conn:  # the migrations create exactly what tables.py declares
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    db.dispose()


def test_upgrade_from_the_first_revision_keeps_data(db_url):
    db = Database(db_url)
    first, *later = migrate.revisions()
    assert later, "a second revision exists, so upgrading from the first one is a real step"
    migrate.upgrade(db, first)
    assert migrate.current_revision(db) == first
    assert "ix_answers_submission_time" not in index_names(db, "answers")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO teams (name, created_at) VALUES ('kept', CURRENT_TIMESTAMP)"))
    migrate.upgrade(db)
    assert migrate.current_revision(db) == migrate.head_revision()
    assert "ix_answers_submission_time" in index_names(db, "answers")
    assert "ix_audit_at" in index_names(db, "audit")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM teams")).scalars().all() == ["kept"]
    db.dispose()


def test_downgrade_step_by_step_to_empty_and_back(db_url):
    db = Database(db_url)
    migrate.upgrade(db)
    for expected in reversed(migrate.revisions()[:-1]):
        migrate.downgrade(db, "-1")
        assert migrate.current_revision(db) == expected
    assert "ix_answers_submission_time" not in index_names(db, "answers")
    migrate.downgrade(db, "base")
    assert migrate.current_revision(db) is None
    assert table_names(db) == set()
    migrate.upgrade(db)
    assert table_names(db) == TABLES
    db.dispose()


def test_migration_scripts_ship_with_the_package():
    names = {p.name for p in (migrate.MIGRATIONS / "versions").glob("*.py")}
    assert {"0001_initial.py", "0002_time_indexes.py", "0003_web.py", "0004_review.py", "0005_webauth.py",
            "0006_gold.py"} <= names
    assert (migrate.MIGRATIONS / "env.py").is_file() and (migrate.MIGRATIONS / "script.py.mako").is_file()


def test_urls():
    assert normalize_url("postgresql://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"
    assert normalize_url("postgres://h/d") == "postgresql+psycopg://h/d"
    assert sqlite_url("data").startswith("sqlite:///") and sqlite_url("data").endswith("/data/gtkit.db")
    with pytest.raises(ValueError, match="unsupported database") as caught:
        normalize_url("mysql://h/d")
    assert isinstance(caught.value, DatabaseUrlError)
    with pytest.raises(DatabaseUrlError, match="not a database URL") as caught:
        normalize_url("user:secret@nowhere")
    assert "secret" not in str(caught.value)


def test_sqlite_pragmas_and_begin_immediate(tmp_path):
    db = Database.for_data_dir(tmp_path / "data")
    migrate.upgrade(db)
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: statements.append(statement))
    with db.read() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    with db.write() as session:
        session.execute(select(Job.id))
    assert statements[0] == "BEGIN" and "BEGIN IMMEDIATE" in statements
    assert statements.index("BEGIN IMMEDIATE") > statements.index("BEGIN")
    # foreign keys are enforced: a queue row for a job that does not exist is refused
    with pytest.raises(sa.exc.IntegrityError), db.write() as session:
        session.add(WorkItem(kind="write_output", job_id=999, dedup_key="x", not_before=db.now(),
                             attempts=0, generation=0, created_at=db.now()))
    db.dispose()


def test_a_write_transaction_holds_the_sqlite_write_lock_from_its_start(tmp_path):
    """BEGIN IMMEDIATE: a second writer waits (here: times out) even before the first one wrote."""
    import sqlite3

    db = Database.for_data_dir(tmp_path)
    migrate.upgrade(db)
    with db.write() as session:
        session.execute(select(Job.id))  # a read only, yet the lock is taken
        other = sqlite3.connect(tmp_path / "gtkit.db", timeout=0.2, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        assert other.execute("SELECT count(*) FROM jobs").fetchone() == (0,)  # readers are not blocked
        other.close()
    db.dispose()


def test_postgres_claims_render_skip_locked(postgres_server):
    db = Database(postgres_server)
    stmt = db.lock(select(Job.id).limit(1), skip_locked=True, of=Job)
    assert "FOR NO KEY UPDATE OF jobs SKIP LOCKED" in str(stmt.compile(db.engine))
    db.dispose()


def test_postgres_reads_run_without_begin_and_commit_and_writes_in_one_transaction(db):
    """PostgreSQL reads are autocommit statements (READ COMMITTED gives each its own snapshot in a
    transaction too); writes stay one transaction. SQLite reads keep their BEGIN (one snapshot)."""
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2].split()[0].upper()))
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda conn: commits.append(1))
    with db.read() as session:
        session.execute(select(Job.id)).all()
        session.execute(select(WorkItem.id)).all()
    if not db.is_postgres:
        assert statements[0] == "BEGIN"
        return
    with db.read() as session:
        session.execute(select(Job.id)).all()
        own_snapshot = session.execute(text("SELECT now() = statement_timestamp()")).scalar()
    assert own_snapshot and commits == []  # autocommit: the second statement is its own transaction
    with db.write() as session:
        session.execute(select(Job.id)).all()
        one_transaction = session.execute(text("SELECT now() < statement_timestamp()")).scalar()
    assert one_transaction and commits == [1]  # now() is the write transaction's start


def test_postgres_write_transactions_begin_with_their_durability_in_one_round_trip(postgres_server):
    """psycopg's own BEGIN was one round trip and a light write's SET LOCAL another: the service
    begins write transactions itself, both in one simple query. COMMIT and ROLLBACK still end them,
    and the setting ends with its transaction."""
    with fresh_postgres_database(postgres_server) as url:
        # The test cluster runs with synchronous_commit=off; these connections ask for the default.
        db = Database(f"{url}?options=-csynchronous_commit%3Don")
        migrate.upgrade(db)
        try:
            _check_write_transactions(db)
        finally:
            db.dispose()


def _check_write_transactions(db: Database) -> None:
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with db.write(durable=False) as session:
        assert session.connection().connection.dbapi_connection.autocommit  # psycopg sends no BEGIN
        assert session.execute(text("SHOW synchronous_commit")).scalar() == "off"
        assert session.execute(text("SELECT now() < statement_timestamp()")).scalar()  # one transaction
        session.add(Team(name="light", created_at=db.now()))
    assert statements[0] == "BEGIN; SET LOCAL synchronous_commit TO OFF"
    statements.clear()
    with db.write() as session:
        assert session.execute(text("SHOW synchronous_commit")).scalar() == "on"
        session.add(Team(name="durable", created_at=db.now()))
    assert statements[0] == "BEGIN"
    with pytest.raises(RuntimeError, match="undo"), db.write(durable=False) as session:
        session.add(Team(name="rolled back", created_at=db.now()))
        session.flush()
        raise RuntimeError("undo")
    with pytest.raises(sa.exc.IntegrityError), db.write() as session:  # the server refuses: rolled back too
        session.add(Team(name="light", created_at=db.now()))
    with db.read() as session:
        assert sorted(session.scalars(select(Team.name))) == ["durable", "light"]
        assert session.execute(text("SHOW synchronous_commit")).scalar() == "on"
    with db.engine.connect() as conn:  # a plain connection of the pool is back to psycopg's own transactions
        assert not conn.connection.dbapi_connection.autocommit


def test_postgres_pool_replaces_connections_the_server_closed_without_a_ping(postgres_server):
    """A restarted or restarting server closes its connections: the pool notices from the socket,
    with no round trip per checkout (pool_pre_ping's SELECT 1 was one per transaction), and the
    next request gets a fresh connection instead of an error."""
    db = Database(postgres_server)
    pings: list[int] = []
    real_ping = db.engine.dialect.do_ping
    db.engine.dialect.do_ping = lambda connection: pings.append(1) or real_ping(connection)
    for _ in range(3):
        with db.read() as session:
            assert session.execute(text("SELECT 1")).scalar() == 1
    assert pings == []  # no round trip before each checkout
    with db.read() as session:
        mine = session.execute(text("SELECT pg_backend_pid()")).scalar()
    admin = Database(db.url)
    with admin.write() as session:
        assert session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": mine}).scalar()
    admin.dispose()
    time.sleep(0.2)  # the termination reaches the pooled connection's socket
    with db.read() as session:  # the pool's connection is dead: a new one is made, no error
        assert session.execute(text("SELECT pg_backend_pid()")).scalar() != mine
    db.dispose()


def test_light_writes_skip_the_log_flush_and_durable_ones_do_not(db):
    """write(durable=False) commits without waiting for the WAL flush; the next durable write on
    the same pooled connection flushes again (the setting is per transaction)."""
    from sqlalchemy import text

    query = "PRAGMA synchronous" if db.dialect == "sqlite" else "SHOW synchronous_commit"
    seen = []
    for durable in (False, True, False, True):
        with db.write(durable=durable) as session:
            seen.append(str(session.execute(text(query)).scalar()))
    if db.dialect == "sqlite":
        assert seen == ["1", "2", "1", "2"]  # NORMAL, FULL
    else:  # durable writes keep the server's setting (the test cluster's is off: no fsync at all)
        with db.read() as session:
            default = str(session.execute(text(query)).scalar())
        assert seen == ["off", default, "off", default]


def test_every_migration_step_keeps_jobs_objects_answers_and_holds(db_url, tmp_path):
    """Down to the first revision and back up with a job labeled halfway: no row of the tables the
    first revision has is lost on the way. (On SQLite a batch-mode table rebuild drops the old
    table, which with foreign keys on cascades into every object, answer and hold of it.)"""
    from service_helpers import answer_for, make_people, manifest_lines, write_manifest

    from toolkit.contract import load_label_schema
    from toolkit.service import jobs, work

    db = Database(db_url)
    migrate.upgrade(db)
    schema = load_label_schema("call-center")
    team, (ann, bob) = make_people(db, 2)
    manifest = write_manifest(tmp_path / "m.jsonl", manifest_lines(tmp_path, 3))
    jobs.create_job(db, name="calls-1", manifest=str(manifest), schema=schema, team_id=team.id,
                    output_uri=str(tmp_path / "out"), workers_per_object=2)
    task = work.claim(db, ann.id)
    work.submit(db, ann.id, task.object_id, answer_for(task, schema, 1))
    work.claim(db, bob.id)  # held, not submitted

    def counts() -> dict[str, int]:
        with db.engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                    for t in ("jobs", "objects", "answers", "holds", "users", "memberships")}

    before = counts()
    assert before["objects"] == 4 and before["answers"] == 1 and before["holds"] == 1
    for revision in reversed(migrate.revisions()[:-1]):
        migrate.downgrade(db, revision)
        assert counts() == before, f"downgrade to {revision}"
    for revision in migrate.revisions()[1:]:
        migrate.upgrade(db, revision)
        assert counts() == before, f"upgrade to {revision}"
    db.dispose()
