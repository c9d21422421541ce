"""The service's tables (SQLAlchemy 2 ORM). Alembic migrations in ./migrations create them.

JSON that ends up in output files (manifest lines, task inputs, answers, Lambda responses) is kept
as text, exactly as it will be written, so re-deriving the output layout is byte-stable. Times are
UTC (`UTCDateTime`). Constraint names follow `metadata.naming_convention`, so migrations can name
what they drop, on SQLite too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("admin", "annotator", "reviewer")
JOB_STATUSES = ("active", "paused", "cancelled", "done")
# declined: the pre-annotation Lambda said no human is needed (copied to the output unchanged)
# open: takes answers; answered: has its answers, waits for consolidation; consolidated: labeled;
# failed: its availability lifetime passed without an answer, or consolidation kept failing.
OBJECT_STATES = ("declined", "open", "answered", "consolidated", "failed")
QUEUE_KINDS = ("consolidate", "write_output")
# review: a review job (revision 0004) made from a labeling job; only reviewers take its tasks.
JOB_KINDS = ("label", "review")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out; SQLite stores them naive (always UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The stable account id written as `workerId` in the output: random, never a name or an email.
    worker_id: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)  # lower-cased; None: imported
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # A worker known only from an imported Ground Truth job: keeps its workerId, cannot sign in.
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Membership(Base):
    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True,
                                         index=True)


class Invitation(Base):
    __tablename__ = "invitations"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the link's token
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Set: a password-reset link for this existing account (revision 0004), not a new account.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class Identity(Base):
    """An OpenID Connect identity (issuer + subject) linked to an account at its first SSO sign-in
    (revision 0004). The account's `worker_id` stays what the output says."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"), UniqueConstraint("user_id", "issuer"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserSession(Base):
    """Server-side sessions: the cookie holds a random id, the table its hash, so logout and
    disabling a user revoke at once, on every instance."""

    __tablename__ = "sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_in("status", JOB_STATUSES), name="status"),
        CheckConstraint("workers_per_object BETWEEN 1 AND 9", name="workers_per_object"),
        CheckConstraint(_in("kind", JOB_KINDS), name="kind"),
        CheckConstraint("gold_rate >= 0 AND gold_rate <= 1", name="gold_rate"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)  # Ground Truth's LabelingJobName
    schema_yaml: Mapped[str] = mapped_column(Text)
    schema_hash: Mapped[str] = mapped_column(String(64))
    label_attribute: Mapped[str] = mapped_column(String(127))
    workers_per_object: Mapped[int] = mapped_column(Integer)
    task_time_limit_s: Mapped[int] = mapped_column(Integer)
    availability_s: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    output_uri: Mapped[str] = mapped_column(Text)  # S3OutputPath stand-in; files go to <uri>/<name>/
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default="label", server_default="label")  # revision 0004
    review_of: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))  # the labeling job
    # Revision 0006. About this share of each worker's tasks on the job are gold objects
    # (toolkit.service.work); 0: gold objects are queued like any other object.
    gold_rate: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class DataObject(Base):
    __tablename__ = "objects"
    __table_args__ = (
        UniqueConstraint("job_id", "dataset_object_id"),
        UniqueConstraint("job_id", "position"),
        UniqueConstraint("job_id", "dedup_key"),
        CheckConstraint(_in("state", OBJECT_STATES), name="state"),
        Index(None, "job_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # line number in output.manifest (0-based)
    dataset_object_id: Mapped[str] = mapped_column(String(64))
    # What makes a line "the same object" for add_objects (NULL: a repeat within the first manifest).
    dedup_key: Mapped[str | None] = mapped_column(String(255))
    line_json: Mapped[str] = mapped_column(Text)  # the manifest line, compact (its output line until labeled)
    task_input_json: Mapped[str | None] = mapped_column(Text)  # None: declined
    reason: Mapped[str | None] = mapped_column(Text)  # why it was declined or failed
    state: Mapped[str] = mapped_column(String(16))
    answers_count: Mapped[int] = mapped_column(Integer, default=0)
    last_submission_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    available_until: Mapped[datetime] = mapped_column(UTCDateTime)
    # Output bookkeeping: bumped on every change; write_output records what it wrote.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    written_revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Revision 0004. The labeling iteration the object is in: a reviewer's reject reopens it as the
    # next one (Ground Truth's iteration-N folders); answers of earlier iterations stay, superseded.
    iteration: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # A review job's object: the labeling job's object it reviews.
    review_of: Mapped[int | None] = mapped_column(ForeignKey("objects.id", ondelete="SET NULL"), index=True)
    # Revision 0006. The manifest line carries a `gold-answer` (a known answer; never in the task input).
    gold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Hold(Base):
    """A worker's place on an object (Ground Truth: an accepted task) until `expires_at`."""

    __tablename__ = "holds"

    object_id: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True,
                                         unique=True)  # one hold per user
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("object_id", "user_id", "iteration"),)  # revision 0004: per iteration

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_id: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    answer_json: Mapped[str] = mapped_column(Text)  # crowd-form answerContent
    acceptance_time: Mapped[datetime] = mapped_column(UTCDateTime)
    submission_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # revision 0002
    time_spent_s: Mapped[float] = mapped_column(Float)
    worker_metadata_json: Mapped[str | None] = mapped_column(Text)  # from imported Ground Truth answers
    iteration: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # revision 0004


class Consolidation(Base):
    __tablename__ = "consolidations"

    object_id: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"), primary_key=True)
    response_json: Mapped[str] = mapped_column(Text)  # the post-annotation handler's response list
    label_json: Mapped[str | None] = mapped_column(Text)  # content[<label attribute>]: the output label
    status: Mapped[str | None] = mapped_column(String(16))  # ConsolidatedLabel.status
    agreement: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WorkItem(Base):
    """Deferred work. `dedup_key` keeps one row per piece of work; enqueueing it again while it runs
    bumps `generation`, so the runner knows to go round once more instead of deleting it."""

    __tablename__ = "work_queue"
    __table_args__ = (CheckConstraint(_in("kind", QUEUE_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    object_id: Mapped[int | None] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"))
    dedup_key: Mapped[str] = mapped_column(String(100), unique=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Admin actions: who did what to which id. Ids only, never names, emails or answer text."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    detail_json: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # revision 0002


class Setting(Base):
    """Service-wide values every instance must share (revision 0003): the signing key of cookies
    and media links, so several instances behind a load balancer accept each other's."""

    __tablename__ = "settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class LoginThrottle(Base):
    """Failed sign-ins per key (client address, or the sha256 of a typed email) in the current
    window (revision 0003). In the database, so the limit holds across processes and instances."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)
