"""Running the work queue: consolidations, output writes and availability expiry.

`run_queue` works until nothing is due; `QueueWorker` does that every second, in a background
thread (`gtkit serve run --dev`, the local job) or in the main thread of a process of its own
(`gtkit serve run` with gunicorn: toolkit.service.web.server.QueueProcess); any number of them on
one database. A row
that raises is handed back with a backoff and the queue goes on with the others; a consolidation
that keeps failing (`max_attempts`) marks its object `failed` (its line is then copied to the
output unchanged) instead of blocking its job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from toolkit.service import queue
from toolkit.service.consolidation import consolidate_object
from toolkit.service.db import Database
from toolkit.service.jobs import refresh_status
from toolkit.service.output import write_output
from toolkit.service.people import prune_ended
from toolkit.service.queue import ClaimedItem
from toolkit.service.tables import DataObject, Hold
from toolkit.storage import Storage

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
OUTPUT_WRITE_SHARE = 10  # wait this many times a raced write's duration before the next
EXPIRED_REASON = "availability lifetime passed without an answer"
PRUNE_EVERY_S = 3600


@dataclass(frozen=True)
class RunStats:
    done: int  # rows completed
    retried: int  # rows that raised and were handed back
    failed: int  # objects marked failed after MAX_ATTEMPTS
    expired: int  # objects past their availability lifetime this run


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def expire_due(db: Database) -> int:
    """Objects past their availability lifetime: with answers they are consolidated with what they
    have (Ground Truth does the same); without, they fail. Returns how many expired."""
    now = db.now()
    with db.write() as session:
        due = session.execute(db.lock(select(DataObject.id, DataObject.job_id, DataObject.answers_count)
                                      .where(DataObject.state == "open", DataObject.available_until <= now)
                                      .limit(1000), skip_locked=True)).all()
        for object_id, job_id, answers in due:
            values = {"state": "answered"} if answers else {"state": "failed", "reason": EXPIRED_REASON}
            session.execute(update(DataObject).where(DataObject.id == object_id)
                            .values(revision=DataObject.revision + 1, **values))
            session.execute(delete(Hold).where(Hold.object_id == object_id))
            if answers:
                queue.enqueue(session, now, queue.CONSOLIDATE, job_id, object_id)
            queue.enqueue(session, now, queue.WRITE_OUTPUT, job_id)
        for job_id in {job_id for _o, job_id, _a in due}:
            refresh_status(session, job_id)
        return len(due)


def process(db: Database, item: ClaimedItem, storage: Storage, *, output_delay_s: float = 0.0) -> None:
    if item.kind == queue.CONSOLIDATE:
        assert item.object_id is not None
        consolidate_object(db, item.object_id, storage=storage, item=item)
        return
    started = time.monotonic()
    write_output(db, item.job_id, storage=storage)
    took = time.monotonic() - started
    with db.write() as session:  # raced by new changes: the next write after the debounce (toolkit.service.queue)
        queue.finish(session, item, now=db.now(), again_after_s=next_write_after(output_delay_s, took))


def next_write_after(output_delay_s: float, last_write_s: float) -> float:
    """Seconds until a job's output is written again after a write that new changes raced."""
    return max(output_delay_s, OUTPUT_WRITE_SHARE * last_write_s) if output_delay_s > 0 else 0.0


def _failed(db: Database, item: ClaimedItem, exc: Exception, max_attempts: int) -> bool:
    """Record a failure; True when it was the last attempt and the object is now failed."""
    error = f"{type(exc).__name__}: {str(exc)[:500]}"
    now = db.now()
    with db.write() as session:
        if item.kind == queue.CONSOLIDATE and item.attempts >= max_attempts:
            session.execute(update(DataObject).where(DataObject.id == item.object_id)
                            .values(state="failed", reason=f"consolidation failed {item.attempts} times ({error})",
                                    revision=DataObject.revision + 1))
            queue.drop(session, item)
            queue.enqueue(session, now, queue.WRITE_OUTPUT, item.job_id)
            refresh_status(session, item.job_id)
            return True
        queue.retry_later(session, now, item, error)
        return False


def run_queue(db: Database, *, storage: Storage | None = None, worker: str | None = None,
              lease_s: int = queue.DEFAULT_LEASE_S, max_items: int | None = None,
              max_attempts: int = MAX_ATTEMPTS, output_delay_s: float = 0.0) -> RunStats:
    """Work the queue until nothing is due (or `max_items` rows were taken). `output_delay_s`: the
    debounce of output writes (0: write what changed now)."""
    storage = storage or Storage()
    worker = worker or worker_name()
    expired = expire_due(db)
    done = retried = failed = taken = 0
    while max_items is None or taken < max_items:
        item = queue.claim_next(db, worker, lease_s=lease_s, output_delay_s=output_delay_s)
        if item is None:
            break
        taken += 1
        try:
            process(db, item, storage, output_delay_s=output_delay_s)
            done += 1
        except Exception as exc:  # one bad row must not stop the others
            log.warning("queue row %s (%s, job %s, object %s) failed, attempt %d: %s", item.id, item.kind,
                        item.job_id, item.object_id, item.attempts, type(exc).__name__)
            if _failed(db, item, exc, max_attempts):
                failed += 1
            else:
                retried += 1
    return RunStats(done, retried, failed, expired)


class QueueWorker:
    """`run_queue` every `poll_s` seconds: in a daemon thread (`start()` until `stop()`), or one round
    at a time from a process of its own (`run_round`, toolkit.service.web.server.QueueProcess)."""

    def __init__(self, db: Database, *, storage: Storage | None = None, poll_s: float = 1.0,
                 lease_s: int = queue.DEFAULT_LEASE_S, output_delay_s: float = 0.0) -> None:
        self.db, self.storage, self.poll_s, self.lease_s = db, storage or Storage(), poll_s, lease_s
        self.output_delay_s = output_delay_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gtkit-queue", daemon=True)
        self._pruned_at: float | None = None

    def run_round(self) -> None:
        """One `run_queue`; a failure of the round itself (the database unreachable) is logged and
        the next round tries again."""
        try:
            run_queue(self.db, storage=self.storage, lease_s=self.lease_s, output_delay_s=self.output_delay_s)
            self._prune_when_due()
        except Exception:
            log.exception("queue worker round failed")

    def _prune_when_due(self) -> None:
        """Ended sessions and throttle rows (people.prune_ended), once an hour: any number of queue
        workers may do it, so it needs no coordination, only not to scan those tables every second."""
        if self._pruned_at is not None and time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return
        sessions, throttles = prune_ended(self.db)
        self._pruned_at = time.monotonic()
        if sessions or throttles:
            log.info("pruned ended sessions and sign-in throttle rows",
                     extra={"fields": {"sessions": sessions, "throttle_rows": throttles}})

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_round()
            self._stop.wait(self.poll_s)

    def start(self) -> QueueWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
