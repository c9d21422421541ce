"""Alembic environment for gtkit serve. Run through toolkit.service.migrate, which hands over an
open connection in `config.attributes["connection"]` (no alembic.ini, no URL in a file)."""

from __future__ import annotations

from alembic import context

from toolkit.service.tables import Base

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
