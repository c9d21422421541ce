"""The work queue's rows: enqueue, claim, finish, fail. What the rows do is in toolkit.service.runner.

- One row per piece of work (`dedup_key`: `consolidate:<object id>`, `write_output:<job id>`), so
  a burst of submits becomes one output rewrite. Enqueueing work that is already queued or running
  bumps its `generation`; the runner that holds it then puts it back instead of deleting it, so a
  change made while the output was being written is never left out.
- Output writes are debounced by the worker that claims them (`output_delay_s`): a `write_output`
  row is due `output_delay_s` after it was first enqueued, and enqueueing it again does not move
  that, so under a steady stream of answers the output trails the database by at most about the
  delay and a job's manifest is rewritten once per delay, not once per answer (a rewrite is O(job
  size)). After a write that raced new changes the row waits max(delay, 10 x that write's
  duration), so writing a huge job's output takes at most about a tenth of a worker's time. With a
  delay of 0 (the local job, `gtkit serve job write-output`) everything due is written at once.
- Claiming is a short transaction (PostgreSQL: `FOR NO KEY UPDATE SKIP LOCKED`; SQLite: BEGIN IMMEDIATE)
  that stamps the row with the worker and the time; the work itself runs outside any transaction.
  A claim older than the lease is free again: that is how work of a killed process is picked up.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from toolkit.service.db import Database
from toolkit.service.tables import UTCDateTime, WorkItem

CONSOLIDATE = "consolidate"
WRITE_OUTPUT = "write_output"
DEFAULT_LEASE_S = 600
MAX_BACKOFF_S = 300


@dataclass(frozen=True)
class ClaimedItem:
    id: int
    kind: str
    job_id: int
    object_id: int | None
    generation: int
    attempts: int
    worker: str


def dedup_key(kind: str, job_id: int, object_id: int | None) -> str:
    return f"{kind}:{object_id}" if kind == CONSOLIDATE else f"{kind}:{job_id}"


def enqueue(session: Session, now: datetime, kind: str, job_id: int, object_id: int | None = None) -> None:
    """Queue work inside the caller's transaction (an upsert: never a duplicate row, never an
    IntegrityError that would abort the caller's transaction)."""
    values = {"kind": kind, "job_id": job_id, "object_id": object_id, "dedup_key": dedup_key(kind, job_id, object_id),
              "not_before": now, "attempts": 0, "generation": 0, "created_at": now}
    session.execute(_upsert(session.get_bind().dialect.name, kind), values)


@functools.cache
def _upsert(dialect_name: str, kind: str) -> Any:
    """enqueue's statement, built once per dialect and kind (every submit runs it twice)."""
    stmt = (postgresql if dialect_name == "postgresql" else sqlite).insert(WorkItem)
    again: dict[str, Any] = {"generation": WorkItem.generation + 1}
    if kind != WRITE_OUTPUT:  # an output write keeps its due time (the debounce above)
        again["not_before"] = stmt.excluded.not_before
    return stmt.on_conflict_do_update(index_elements=[WorkItem.dedup_key], set_=again)


def claim_next(db: Database, worker: str, *, lease_s: int = DEFAULT_LEASE_S,
               kinds: tuple[str, ...] = (CONSOLIDATE, WRITE_OUTPUT), output_delay_s: float = 0.0) -> ClaimedItem | None:
    """The next due row, claimed for `worker` (consolidations first, then output writes enqueued at
    least `output_delay_s` ago)."""
    now = db.now()
    stale = now - timedelta(seconds=lease_s)
    settled = now - timedelta(seconds=output_delay_s)
    with db.write(durable=False) as session:  # a lease lost to a power cut is taken again
        stmt = (select(WorkItem)
                .where(WorkItem.kind.in_(kinds), WorkItem.not_before <= now,
                       or_(WorkItem.kind != WRITE_OUTPUT, WorkItem.created_at <= settled),
                       or_(WorkItem.claimed_at.is_(None), WorkItem.claimed_at < stale))
                .order_by(WorkItem.kind, WorkItem.id).limit(1))
        row = session.scalar(db.lock(stmt, skip_locked=True))
        if row is None:
            return None
        row.claimed_by, row.claimed_at, row.attempts = worker, now, row.attempts + 1
        return ClaimedItem(row.id, row.kind, row.job_id, row.object_id, row.generation, row.attempts, worker)


def finish(session: Session, item: ClaimedItem, *, now: datetime | None = None, again_after_s: float = 0.0) -> None:
    """Done (inside the transaction that stores the result): delete the row, unless it was
    enqueued again meanwhile; then hand it back so it runs once more, `again_after_s` after `now`."""
    gone = session.execute(delete(WorkItem).where(WorkItem.id == item.id, WorkItem.generation == item.generation,
                                                  WorkItem.claimed_by == item.worker))
    if gone.rowcount == 0:
        values: dict[str, Any] = {"claimed_by": None, "claimed_at": None, "attempts": 0, "last_error": None}
        if now is not None and again_after_s > 0:
            values["not_before"] = now + timedelta(seconds=again_after_s)
        session.execute(update(WorkItem).where(WorkItem.id == item.id, WorkItem.claimed_by == item.worker)
                        .values(**values))


def retry_later(session: Session, now: datetime, item: ClaimedItem, error: str) -> None:
    """Hand the row back with a backoff (2, 4, 8 ... s, at most MAX_BACKOFF_S)."""
    delay = min(MAX_BACKOFF_S, 2 ** item.attempts)
    session.execute(update(WorkItem).where(WorkItem.id == item.id, WorkItem.claimed_by == item.worker)
                    .values(claimed_by=None, claimed_at=None, last_error=error[:2000],
                            not_before=now + timedelta(seconds=delay)))


def drop(session: Session, item: ClaimedItem) -> None:
    session.execute(delete(WorkItem).where(WorkItem.id == item.id))


def pending(db: Database, job_id: int | None = None) -> int:
    """Rows not yet done (due or not, claimed or not)."""
    with db.read() as session:
        stmt = select(func.count()).select_from(WorkItem)
        if job_id is not None:
            stmt = stmt.where(WorkItem.job_id == job_id)
        return session.scalar(stmt) or 0


@dataclass(frozen=True)
class QueueState:
    """What the queue holds, for the people who run the service (`/readyz`, the admin's job page,
    `gtkit serve job show`): a queue that nobody works, or work that keeps failing, leaves answers
    unconsolidated and output files behind the database, and shows nowhere else but in the logs."""

    rows: int  # not yet done (due or not, being worked or not)
    waiting: int  # due and not being worked: nothing holds a live lease on them
    oldest_waiting_s: float | None  # how long the longest-waiting of those has been due
    failing: int  # raised at their last attempt and wait for the next (backoff 2, 4 ... 300 s)
    last_error: str | None = None  # the error of the failing row tried most often (job_state only)

    def counts(self) -> dict[str, Any]:
        """Everything but the error text: what may be shown without a session (/readyz)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "last_error"}


def queue_state(db: Database, *, lease_s: int = DEFAULT_LEASE_S) -> QueueState:
    """The whole queue, counts only (no job, no error text: /readyz answers without a session)."""
    with db.read() as session:
        return _state(session, db.now(), lease_s, None)


def job_state(db: Database, job_id: int, *, lease_s: int = DEFAULT_LEASE_S) -> QueueState:
    """One job's rows, with the error of its most-tried failing row."""
    with db.read() as session:
        state = _state(session, db.now(), lease_s, job_id)
        if not state.failing:
            return state
        error = session.scalar(select(WorkItem.last_error)
                               .where(WorkItem.job_id == job_id, WorkItem.last_error.is_not(None))
                               .order_by(WorkItem.attempts.desc(), WorkItem.id).limit(1))
    return dataclasses.replace(state, last_error=error)


def _state(session: Session, now: datetime, lease_s: int, job_id: int | None) -> QueueState:
    waiting = and_(WorkItem.not_before <= now,
                   or_(WorkItem.claimed_at.is_(None), WorkItem.claimed_at < now - timedelta(seconds=lease_s)))
    stmt = select(func.count(), func.count(case((waiting, 1))),
                  type_coerce(func.min(case((waiting, WorkItem.not_before))), UTCDateTime),
                  func.count(WorkItem.last_error))
    if job_id is not None:
        stmt = stmt.where(WorkItem.job_id == job_id)
    rows, waiting_rows, oldest, failing = session.execute(stmt).one()
    waited = None if oldest is None else round(max(0.0, (now - oldest).total_seconds()), 1)
    return QueueState(rows, waiting_rows, waited, failing)
