"""Single sign-on identities and password-reset links.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_identities_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identities")),
        sa.UniqueConstraint("issuer", "subject", name=op.f("uq_identities_issuer_subject")),
        sa.UniqueConstraint("user_id", "issuer", name=op.f("uq_identities_user_id_issuer")),
    )
    with op.batch_alter_table("invitations") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_invitations_user_id_users"), "users", ["user_id"], ["id"],
                                 ondelete="CASCADE")
        batch.create_index(op.f("ix_invitations_user_id"), ["user_id"])


def downgrade() -> None:
    with op.batch_alter_table("invitations") as batch:
        batch.drop_index(op.f("ix_invitations_user_id"))
        batch.drop_constraint(op.f("fk_invitations_user_id_users"), type_="foreignkey")
        batch.drop_column("user_id")
    op.drop_table("identities")
