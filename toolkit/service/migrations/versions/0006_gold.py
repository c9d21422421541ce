"""Gold objects mixed into jobs.

jobs.gold_rate (0..1; 0: gold objects are queued like any other object) and objects.gold (the
manifest line carries a `gold-answer`). Existing objects are marked from their stored lines;
existing jobs get rate 0, so nothing they do changes.

Plain ALTER TABLE ADD/DROP COLUMN on both dialects, never batch mode: on SQLite a batch rebuild
drops and re-creates the table, and with foreign keys on, dropping `jobs` or `objects` deletes
(ON DELETE CASCADE) every object, answer and hold that refers to it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

GOLD_RATE_CHECK = "gold_rate >= 0 AND gold_rate <= 1"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # SQLite takes a CHECK only as part of the new column
        op.execute("ALTER TABLE jobs ADD COLUMN gold_rate FLOAT DEFAULT '0' NOT NULL "
                   f"CONSTRAINT ck_jobs_gold_rate CHECK ({GOLD_RATE_CHECK})")
    else:
        op.add_column("jobs", sa.Column("gold_rate", sa.Float(), nullable=False, server_default="0"))
        op.create_check_constraint(op.f("ck_jobs_gold_rate"), "jobs", GOLD_RATE_CHECK)
    op.add_column("objects", sa.Column("gold", sa.Boolean(), nullable=False, server_default=sa.false()))
    conn = op.get_bind()
    objects = sa.table("objects", sa.column("id", sa.Integer()), sa.column("line_json", sa.Text()),
                       sa.column("gold", sa.Boolean()))
    gold = []
    for object_id, line_json in conn.execute(sa.select(objects.c.id, objects.c.line_json)
                                             .where(objects.c.line_json.like('%"gold-answer"%'))):
        line = json.loads(line_json)
        if isinstance(line, dict) and line.get("gold-answer") is not None:
            gold.append(object_id)
    for start in range(0, len(gold), 500):
        conn.execute(objects.update().where(objects.c.id.in_(gold[start:start + 500])).values(gold=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # SQLite 3.35+: native DROP COLUMN, no table rebuild
        op.execute("ALTER TABLE objects DROP COLUMN gold")
        op.execute("ALTER TABLE jobs DROP COLUMN gold_rate")
    else:
        op.drop_column("objects", "gold")
        op.drop_constraint(op.f("ck_jobs_gold_rate"), "jobs", type_="check")
        op.drop_column("jobs", "gold_rate")
