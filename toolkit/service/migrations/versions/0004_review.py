"""Review rounds: review jobs made from labeling jobs, and labeling iterations.

jobs.kind ('label' | 'review') and jobs.review_of (the labeling job a review job reviews);
objects.iteration (a reviewer's reject reopens an object as the next iteration) and
objects.review_of (a review object's labeling object); answers.iteration, with the one-answer-per-
worker rule now per iteration (an annotator may label a reopened object again).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="label"))
        batch.add_column(sa.Column("review_of", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_jobs_review_of_jobs"), "jobs", ["review_of"], ["id"], ondelete="SET NULL")
        batch.create_check_constraint(op.f("ck_jobs_kind"), "kind IN ('label', 'review')")
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("iteration", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("review_of", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_objects_review_of_objects"), "objects", ["review_of"], ["id"],
                                 ondelete="SET NULL")
        batch.create_index(op.f("ix_objects_review_of"), ["review_of"])
    with op.batch_alter_table("answers") as batch:
        batch.add_column(sa.Column("iteration", sa.Integer(), nullable=False, server_default="1"))
        batch.drop_constraint(op.f("uq_answers_object_id_user_id"), type_="unique")
        batch.create_unique_constraint(op.f("uq_answers_object_id_user_id_iteration"),
                                       ["object_id", "user_id", "iteration"])


def downgrade() -> None:
    # Answers of later iterations cannot keep one-answer-per-worker: only the first iteration's stay.
    op.execute("DELETE FROM answers WHERE iteration > 1")
    with op.batch_alter_table("answers") as batch:
        batch.drop_constraint(op.f("uq_answers_object_id_user_id_iteration"), type_="unique")
        batch.create_unique_constraint(op.f("uq_answers_object_id_user_id"), ["object_id", "user_id"])
        batch.drop_column("iteration")
    with op.batch_alter_table("objects") as batch:
        batch.drop_index(op.f("ix_objects_review_of"))
        batch.drop_constraint(op.f("fk_objects_review_of_objects"), type_="foreignkey")
        batch.drop_column("review_of")
        batch.drop_column("iteration")
    op.execute("DELETE FROM jobs WHERE kind = 'review'")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("ck_jobs_kind"), type_="check")
        batch.drop_constraint(op.f("fk_jobs_review_of_jobs"), type_="foreignkey")
        batch.drop_column("review_of")
        batch.drop_column("kind")
