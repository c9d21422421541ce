"""Schema migrations, run in code: `upgrade(db)` brings an empty or older database to the newest
revision. The Alembic scripts ship inside the package (toolkit/service/migrations)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from toolkit.service.db import Database
from toolkit.service.errors import MigrationError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database"] = db
    return config


def _run(db: Database, action: str, revision: str) -> None:
    config = alembic_config(db)
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table (copy, DROP the old one, rename): with foreign keys on, the
            # DROP cascades into every row that refers to it (a job's objects, answers, holds). The
            # pragma only takes effect outside a transaction, so it goes straight to the driver.
            _sqlite_pragma(connection, "foreign_keys=OFF")
        try:
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)
            connection.commit()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                connection.commit()
                if broken:
                    raise MigrationError(f"{action} to {revision}: {len(broken)} rows refer to rows that do "
                                         f"not exist (first: table {broken[0][0]}, row {broken[0][1]})")
        finally:
            if sqlite:
                _sqlite_pragma(connection, "foreign_keys=ON")


def _sqlite_pragma(connection: Connection, pragma: str) -> None:
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def upgrade(db: Database, revision: str = "head") -> None:
    _run(db, "upgrade", revision)


def downgrade(db: Database, revision: str) -> None:
    _run(db, "downgrade", revision)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory(str(MIGRATIONS))
    return [r.revision for r in reversed(list(script.walk_revisions()))]
