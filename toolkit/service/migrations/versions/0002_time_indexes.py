"""Indexes on answer submission time and audit time (progress per hour, audit listing).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_answers_submission_time"), "answers", ["submission_time"])
    op.create_index(op.f("ix_audit_at"), "audit", ["at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_at"), table_name="audit")
    op.drop_index(op.f("ix_answers_submission_time"), table_name="answers")
