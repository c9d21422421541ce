"""The annotator's transactions: claim the next task (or hold a given one), submit an answer, release a task.

**Claim** (one transaction): the user's own live hold if they have one (they come back to it);
otherwise the first object, highest job priority first, then oldest object, of the active jobs of
the user's teams that is open, within its availability lifetime, not answered by this user and
with `answers_count + live holds < workers_per_object`; a hold is inserted for it. A hold is live
while `expires_at > now`: expiry is a condition in the queries, not a timer, and holds are rows, so
they survive restarts. One hold per user (a unique key). PostgreSQL takes the candidate with
`FOR NO KEY UPDATE OF objects SKIP LOCKED LIMIT 1`, then re-counts its places in a new statement (READ
COMMITTED sees every commit made before the lock was granted; everyone who changes an object's
holds or answers holds that object's row lock), so two claims never take the last place twice.
When every candidate is locked by someone else for a moment, the claim ends its transaction and
tries again rather than answer "nothing left".
SQLite serialises write transactions with BEGIN IMMEDIATE.

**Hold** (`hold`): claim's rules for one given object (a person opening task N in the local
portal); `peek` is what a claim would give now, read only. A mixed-in gold object (below) can be
held this way whether or not gold is due for the user (no place count); the local portal's jobs
have no gold rate, and the service's pages hand out tasks only through claim.

**Submit**: `validate_submission` first, outside any transaction; then one transaction that locks
the object, inserts the answer (UNIQUE(object, user): a second submit of the same user returns the
stored answer and changes nothing), deletes the hold, bumps `answers_count`, and at N answers marks
the object `answered` and enqueues its consolidation; it also enqueues a rewrite of the output.

Review jobs (kind `review`, toolkit.service.review): only users with the reviewer role claim or
submit their tasks, never on an object whose labeling they answered; a review answer must carry a
decision (`review`), and a reject is taken whatever it shows. Answers are per labeling iteration:
an object a reviewer rejected is open again as the next iteration, and "has not answered" means in
that iteration.

Gold objects (revision 0006): an object whose manifest line carries a `gold-answer` (`objects.gold`;
the task input never carries it) in a job with a gold rate R > 0 is *mixed in*: a worker's k-th task
on the job (k = their answers on it + 1) is due to be gold when floor(k*R) > floor((k-1)*R), so
exactly floor(n*R) of their first n tasks are (R = 0.25: tasks 4, 8, 12, ...). A due claim takes a
gold object of that job the worker has not answered, and only that (it waits for one another claim
holds locked, like any candidate); when none is left for them it takes an ordinary object instead.
A claim that is not due never takes a gold object. Mixed-in gold objects take an answer from every
worker (no `workers_per_object` places), never become `answered` or consolidated, and do not count
toward the job's completion (when the rest is done the job is, which closes them:
toolkit.service.jobs.refresh_status). With R = 0
gold objects are queued like any other object.

Submit rule: an answer is taken from a member of the job's team who has not answered the object
yet, on an open object of a job that is not cancelled, when EITHER the user holds a live place on
it (accepted even if the job was paused meanwhile) OR, without one (never claimed, or the hold
expired), the job is active, the object is within its availability lifetime and a place is still
free: `answers_count + live holds of others < workers_per_object` (a mixed-in gold object always
has one). Otherwise it is refused. The service's pages submit with `require_hold`: "never claimed"
is refused there (a hold row stays after it expires, until the user takes another task), so a
scripted client cannot pick its objects or step around mixed-in gold; the local portal, whose
open pages outlive a restarted dry run, keeps the rule above.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from toolkit.contract import ANSWER_FIELD, LabelSchema
from toolkit.contract.base import NESTING_LIMITS, deeper_than
from toolkit.errors import Problem
from toolkit.labeling.answers import AWS_SAMPLE_FIELD, UnsafeAnswerError, check_answer
from toolkit.service import queue
from toolkit.service.db import Database, locked
from toolkit.service.errors import NotFound, NotInTeam, Refused, SubmissionInvalid
from toolkit.service.jobs import load_schema
from toolkit.service.tables import Answer, DataObject, Hold, Job, Membership, User, UTCDateTime

MAX_ANSWER_BYTES = 2_000_000  # far above a 3-hour call's answer; keeps a runaway client out
MAX_ANSWER_DEPTH = NESTING_LIMITS["served-submission"]  # why: toolkit.contract.base.NESTING_LIMITS
CLAIM_ATTEMPTS = 8
CLAIM_PATIENCE_S = 10.0  # how long a claim waits for candidates others hold locked


@dataclass(frozen=True)
class Task:
    """A task held by a user: what the template page needs."""

    object_id: int
    job_id: int
    job_name: str
    dataset_object_id: str
    task_input: dict[str, Any]
    accepted_at: datetime
    expires_at: datetime
    resumed: bool = False  # the user's existing hold, not a new one


@dataclass(frozen=True)
class SubmitResult:
    answer_id: int
    duplicate: bool  # the user had answered already: the stored answer was kept, nothing changed
    answers_count: int
    complete: bool  # the object has all its answers


# -- validation at the door ---------------------------------------------------------------------------
def validate_submission(answer_content: Any, schema: LabelSchema, *, interaction_id: str | None = None,
                        media_duration: float | None = None, max_bytes: int = MAX_ANSWER_BYTES,
                        max_depth: int = MAX_ANSWER_DEPTH, review: bool = False) -> dict[str, Any]:
    """Check a crowd-form `answerContent` before anything is stored: a JSON object within
    `max_bytes` and `max_depth` (the JSON text in its `answer` field included), that parses as a
    SegmentationAnswer valid for `schema` (toolkit.labeling.answers / toolkit.contract rules). Returns the
    content; raises SubmissionInvalid whose problems name fields, never values."""
    if not isinstance(answer_content, dict):
        raise SubmissionInvalid("answerContent must be a JSON object", [Problem("(answer)", "not an object")])
    if deeper_than(answer_content, max_depth):
        raise SubmissionInvalid("answer nested too deeply", [Problem("(answer)", f"deeper than {max_depth} levels")])
    try:
        size = len(json.dumps(answer_content, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        raise SubmissionInvalid("answer is not JSON", [Problem("(answer)", type(exc).__name__)]) from None
    if size > max_bytes:
        raise SubmissionInvalid("answer too large", [Problem("(answer)", f"{size} bytes, at most {max_bytes}")])
    for name in (ANSWER_FIELD, AWS_SAMPLE_FIELD):  # the fields that hold JSON text (either template)
        inner = answer_content.get(name)
        if not isinstance(inner, str):
            continue
        try:
            parsed = json.loads(inner)
        except ValueError:
            continue  # parse_answer reports it below, with its position
        except RecursionError:
            raise SubmissionInvalid("answer nested too deeply", [Problem(name, "nested too deeply")]) from None
        if deeper_than(parsed, max_depth - 1):  # the JSON text sits one level down
            raise SubmissionInvalid("answer nested too deeply", [Problem(name, f"deeper than {max_depth} levels")])
    try:
        answer, problems = check_answer(answer_content, schema=schema, media_duration=media_duration,
                                        interaction_id=interaction_id)
    except UnsafeAnswerError as exc:
        answer, problems = None, [Problem("", str(exc))]
    decision = answer.review if answer is not None else None
    if review and answer is not None and decision is None:
        raise SubmissionInvalid("a review answer needs a decision", [Problem("review", "accept, edit or reject")])
    if not review and decision is not None:
        raise SubmissionInvalid("a review decision on a labeling task",
                                [Problem("review", "only review tasks take one")])
    if problems and not (review and decision is not None and decision.decision == "reject"):
        raise SubmissionInvalid("answer does not fit the label schema", problems)
    return answer_content


# -- claim --------------------------------------------------------------------------------------------
def _task(obj: DataObject, job_name: str, hold: Hold, resumed: bool) -> Task:
    assert obj.task_input_json is not None
    return Task(obj.id, obj.job_id, job_name, obj.dataset_object_id, json.loads(obj.task_input_json),
                hold.accepted_at, hold.expires_at, resumed)


def _live_holds(object_id: Any, now: datetime, *, except_user: int | None = None) -> Any:
    stmt = select(func.count()).select_from(Hold).where(Hold.object_id == object_id, Hold.expires_at > now)
    if except_user is not None:
        stmt = stmt.where(Hold.user_id != except_user)
    return stmt.scalar_subquery()


def _team_ids(user_id: int) -> Any:
    return select(Membership.team_id).where(Membership.user_id == user_id)


@functools.cache
def _held_object_template() -> Any:
    return (select(DataObject, Job.status, Job.name).join(Job, Job.id == DataObject.job_id)
            .where(DataObject.id == bindparam("object_id"), Job.team_id.in_(_team_ids(bindparam("user_id")))))


@functools.cache
def _users_hold_template() -> Any:
    return select(Hold).where(Hold.user_id == bindparam("user_id"))


def _gives_task(hold: Hold, obj: DataObject, job_status: str, now: datetime) -> bool:
    """Whether a hold still gives its user the task: unexpired, the job active, the object open."""
    return hold.expires_at > now and job_status == "active" and obj.state == "open"


def _can_resume(session: Session, hold: Hold, now: datetime) -> tuple[DataObject, str] | None:
    """The held object and its job's name, if the hold still gives its user that task."""
    if hold.expires_at <= now:
        return None
    row = session.execute(_held_object_template(), {"object_id": hold.object_id, "user_id": hold.user_id}).first()
    if row is None or not _gives_task(hold, row[0], row[1], now):
        return None
    return row[0], row[2]


@functools.cache
def _locked_user_template(postgres: bool) -> Any:
    return locked(select(User).where(User.id == bindparam("user_id")), postgres=postgres)


def _active_user(session: Session, db: Database, user_id: int) -> User:
    user = session.scalar(_locked_user_template(db.is_postgres), {"user_id": user_id})  # one claim per user at a time
    if user is None:
        raise NotFound(f"no user {user_id}")
    if user.disabled:
        raise Refused(f"user {user_id} is disabled")
    return user


def _labeled_by(user_id: int) -> Any:
    """The labeling objects a user answered (in any iteration): they never review those."""
    return select(Answer.object_id).where(Answer.user_id == user_id)


def gold_due(rate: float, done: int) -> bool:
    """Whether a worker's next task on a job with gold rate `rate`, after `done` tasks there, is a
    gold object: the (done+1)-th is when floor(k*rate) goes up, computed exactly with the rate as
    the nearest fraction of denominator at most 10**6 (0.25 is 1/4, 1/3 is 1/3: no float drift)."""
    if rate <= 0:
        return False
    exact = Fraction(rate).limit_denominator(10**6)
    return math.floor((done + 1) * exact) > math.floor(done * exact)


def _mixed_gold() -> Any:
    """An object mixed in as gold (see the module doc); the statement joins its job."""
    return and_(DataObject.gold.is_(True), Job.gold_rate > 0)


def _open_for(user_id: int, now: datetime) -> Any:
    return and_(Job.status == "active", Job.team_id.in_(_team_ids(user_id)),
                DataObject.state == "open", DataObject.available_until > now,
                ~exists().where(Answer.object_id == DataObject.id, Answer.user_id == user_id,
                                Answer.iteration == DataObject.iteration))


@functools.cache
def _team_jobs_template() -> Any:
    """The active jobs of the user's teams, highest priority first, each with its gold rate and, for
    a labeling job with gold, the user's answers there (else NULL: CASE skips the count). One
    statement for what the claim needs before its candidate search: gold_jobs and _first_candidate."""
    user_id = bindparam("user_id")
    done = (select(func.count()).select_from(Answer).join(DataObject, DataObject.id == Answer.object_id)
            .where(DataObject.job_id == Job.id, Answer.user_id == user_id).scalar_subquery())
    with_gold = and_(Job.gold_rate > 0, Job.kind != "review")
    return (select(Job.id, Job.priority, Job.gold_rate, case((with_gold, done), else_=None).label("done"))
            .where(Job.status == "active", Job.team_id.in_(_team_ids(user_id)))
            .order_by(Job.priority.desc(), Job.id))


def team_jobs(session: Session, user_id: int) -> list[Any]:
    """_team_jobs_template's rows (id, priority, gold_rate, done)."""
    return list(session.execute(_team_jobs_template(), {"user_id": user_id}).all())


def gold_jobs(session: Session, user_id: int, now: datetime, jobs: list[Any] | None = None) -> list[int]:
    """The jobs where the user's next claim must be a gold object: gold is due for them and one
    they have not answered is open (read only; claim locks the object it takes). `jobs`: team_jobs'
    rows, when the caller has them."""
    rows = team_jobs(session, user_id) if jobs is None else jobs
    due = [row.id for row in rows if row.done is not None and gold_due(row.gold_rate, row.done)]
    if not due:
        return []
    return list(session.scalars(select(DataObject.job_id).join(Job, Job.id == DataObject.job_id)
                                .where(DataObject.job_id.in_(due), _mixed_gold(), _open_for(user_id, now))
                                .distinct()))


def _candidates(user_id: int, now: datetime, tried: list[int], role: str = "annotator",
                gold: Collection[int] = ()) -> Any:
    """`gold`: the jobs where this claim takes a mixed-in gold object and nothing else (gold_jobs);
    elsewhere it takes ordinary objects with a free place. (Values bound: see _candidates_template.)"""
    gold = list(gold)
    return _candidates_template(role, bool(gold)).params(_candidate_params(user_id, now, tried, gold))


def _candidate_params(user_id: int, now: datetime, tried: list[int], gold: list[int]) -> dict[str, Any]:
    return {"user_id": user_id, "now": now, "tried": tried, "gold": gold}


@functools.cache
def _candidates_template(role: str, with_gold: bool) -> Any:
    """_candidates' statement with its values as bind parameters (user_id, now, tried, gold), built
    once per variant: building the expression tree and its cache key on every claim cost more than
    running it (about 4 of a claim's 10 ms), and SQLite claims run inside the write lock."""
    user_id, now = bindparam("user_id"), bindparam("now", type_=UTCDateTime)
    ordinary = and_(~_mixed_gold(),
                    DataObject.answers_count + _live_holds(DataObject.id, now) < Job.workers_per_object)
    if with_gold:
        gold = bindparam("gold", expanding=True)
        ordinary = or_(and_(_mixed_gold(), Job.id.in_(gold)), and_(ordinary, Job.id.not_in(gold)))
    stmt = (select(DataObject.id).join(Job, Job.id == DataObject.job_id)
            .where(Job.status == "active", Job.team_id.in_(_team_ids(user_id)),
                   DataObject.state == "open", DataObject.available_until > now,
                   ordinary,
                   ~exists().where(Answer.object_id == DataObject.id, Answer.user_id == user_id,
                                   Answer.iteration == DataObject.iteration),
                   DataObject.id.not_in(bindparam("tried", expanding=True))))
    if role == "reviewer":
        stmt = stmt.where(or_(DataObject.review_of.is_(None), DataObject.review_of.not_in(_labeled_by(user_id))))
    else:
        stmt = stmt.where(Job.kind != "review")
    return stmt.order_by(Job.priority.desc(), DataObject.id).limit(1)


@functools.cache
def _job_candidate_template(role: str, with_gold: bool, postgres: bool) -> Any:
    """_candidates_template for one job (`job_id`), in object id order, locked (see _first_candidate)."""
    stmt = (_candidates_template(role, with_gold).where(DataObject.job_id == bindparam("job_id"))
            .order_by(None).order_by(DataObject.id))
    return locked(stmt, postgres=postgres, skip_locked=True, of=DataObject)


def _first_candidate(session: Session, db: Database, user_id: int, now: datetime, tried: list[int],
                     role: str, gold: Collection[int], jobs: list[Any]) -> int | None:
    """`_candidates`' first row, locked (PostgreSQL: SKIP LOCKED), found job by job: one
    statement ordered by (job priority, object id) evaluated its conditions on every open object
    of every job and sorted them (SQLite: a temp B-tree; 31 ms per claim at 4,000 open objects,
    inside the write lock), while per job the (job_id, state, id) index walks the open objects in
    id order and stops at the first that qualifies. Same answer: the jobs are taken by priority,
    highest first, and within one priority the lowest object id of their first candidates wins.
    `jobs`: team_jobs' rows, a superset of the jobs that can have candidates (the statement per
    job applies every rule)."""
    gold = list(gold)
    params = _candidate_params(user_id, now, tried, gold)
    per_job = _job_candidate_template(role, bool(gold), db.is_postgres)
    index = 0
    while index < len(jobs):
        priority = jobs[index].priority
        best: int | None = None
        while index < len(jobs) and jobs[index].priority == priority:
            found = session.scalar(per_job, {**params, "job_id": jobs[index].id})
            if found is not None and (best is None or found < best):
                best = found
            index += 1
        if best is not None:
            return best
    return None


def claim(db: Database, user_id: int, *, patience_s: float = CLAIM_PATIENCE_S) -> Task | None:
    """The user's next task (see the module doc), or None when nothing is left for them.

    PostgreSQL: when every candidate was locked by someone else for a moment (a submit or claim
    in progress), the attempt ends, which releases what it locked, and is tried again, for
    up to `patience_s`: None means nothing is left, never "everything was busy"."""
    deadline = time.monotonic() + patience_s
    pause = 0.002
    while True:
        outcome = _claim_once(db, user_id)
        if outcome is not _BUSY or time.monotonic() >= deadline:
            return None if outcome is _BUSY else outcome  # type: ignore[return-value]
        time.sleep(pause)
        pause = min(0.05, pause * 2)


_BUSY = object()


@functools.cache
def _places_template() -> Any:
    """An object with its places taken (answers + live holds) and what its job allows."""
    object_id, now = bindparam("object_id"), bindparam("now", type_=UTCDateTime)
    return (select(DataObject, DataObject.answers_count + _live_holds(object_id, now), Job.workers_per_object,
                   Job.task_time_limit_s, _mixed_gold(), Job.name)
            .join(Job, Job.id == DataObject.job_id).where(DataObject.id == object_id))


def _claim_once(db: Database, user_id: int) -> Task | object | None:
    now = db.now()
    with db.write(durable=False) as session:  # a hold lost to a power cut just goes back
        role = _active_user(session, db, user_id).role
        hold = session.scalar(_users_hold_template(), {"user_id": user_id})
        if hold is not None:
            resumable = _can_resume(session, hold, now)
            if resumable is not None:
                return _task(*resumable, hold, resumed=True)
            session.delete(hold)  # expired, or its job paused/cancelled: the place goes back
            session.flush()
        tried: list[int] = []
        jobs = team_jobs(session, user_id)
        gold = gold_jobs(session, user_id, now, jobs)  # the user row lock above: their answers cannot change meanwhile
        for _ in range(CLAIM_ATTEMPTS):
            object_id = _first_candidate(session, db, user_id, now, tried, role, gold, jobs)
            if object_id is None:
                break
            # Re-count in a new statement: it sees every hold committed before our lock was granted.
            obj, count, wanted, limit_s, mixed, job_name = session.execute(
                _places_template(), {"object_id": object_id, "now": now}).one()
            if mixed or count < wanted:
                hold = Hold(object_id=object_id, user_id=user_id, accepted_at=now,
                            expires_at=now + timedelta(seconds=limit_s))
                session.add(hold)
                session.flush()
                return _task(obj, job_name, hold, resumed=False)
            tried.append(object_id)
        # Nothing we could lock. Without locking: is there a candidate someone else holds locked?
        # (Ending the transaction releases the rows this attempt locked, so waiting cannot deadlock.)
        if db.is_postgres and session.scalar(_candidates(user_id, now, [], role, gold)) is not None:
            return _BUSY
        return None


def _is_mixed_gold(obj: DataObject, job: Job) -> bool:
    return bool(obj.gold) and job.gold_rate > 0


@functools.cache
def _locked_object_template(postgres: bool) -> Any:
    stmt = select(DataObject, Job).join(Job, Job.id == DataObject.job_id).where(DataObject.id == bindparam("object_id"))
    return locked(stmt, postgres=postgres, of=DataObject).execution_options(populate_existing=True)


def _locked_object(session: Session, db: Database, object_id: int) -> tuple[DataObject, Job]:
    """The object, locked for this transaction and read afresh, with its job (one statement; only
    the object's row is locked); NotFound if none."""
    row = session.execute(_locked_object_template(db.is_postgres), {"object_id": object_id}).first()
    if row is None:
        raise NotFound(f"no object {object_id}")
    return row[0], row[1]


def hold(db: Database, user_id: int, object_id: int) -> Task:
    """The user opens a given task (the local portal's `/task/N`): one transaction with claim's
    rules for that one object. Their live hold on it is kept with its deadline (`resumed`); a hold
    on another object goes back (one hold per user); a new hold needs the job active, the object
    open and available, the user in its team without an answer to it, and a free place
    (`answers_count + live holds of others < workers_per_object`). Otherwise Refused."""
    now = db.now()
    with db.write(durable=False) as session:  # as claim's: a hold lost to a power cut just goes back
        _active_user(session, db, user_id)
        obj, job = _locked_object(session, db, object_id)
        mine = session.scalar(_users_hold_template(), {"user_id": user_id})
        if mine is not None and mine.object_id == object_id and _can_resume(session, mine, now) is not None:
            return _task(obj, job.name, mine, resumed=True)
        if session.get(Membership, (user_id, job.team_id)) is None:
            raise NotInTeam(f"user {user_id} is not in the team of job {job.id}")
        if job.status != "active":
            raise Refused(f"job {job.id} is {job.status}")
        if obj.state != "open" or obj.task_input_json is None:
            raise Refused(f"object {obj.dataset_object_id} of job {job.id} takes no answers ({obj.state})")
        if obj.available_until <= now:
            raise Refused(f"object {obj.dataset_object_id} of job {job.id} is past its availability lifetime")
        if session.scalar(select(Answer.id).where(Answer.object_id == object_id, Answer.user_id == user_id)):
            raise Refused(f"user {user_id} answered object {obj.dataset_object_id} of job {job.id} already")
        others = session.scalar(select(_live_holds(object_id, now, except_user=user_id)))
        if not _is_mixed_gold(obj, job) and obj.answers_count + others >= job.workers_per_object:
            raise Refused(f"other workers hold the remaining places of object {obj.dataset_object_id} of job {job.id}")
        if mine is not None:  # expired, or on another object: that place goes back
            session.delete(mine)
            session.flush()
        mine = Hold(object_id=object_id, user_id=user_id, accepted_at=now,
                    expires_at=now + timedelta(seconds=job.task_time_limit_s))
        session.add(mine)
        session.flush()
        return _task(obj, job.name, mine, resumed=False)


def peek(db: Database, user_id: int) -> int | None:
    """The object `claim` would give the user now (their live hold first), without holding it:
    read only, for pages that link to a task (the local portal's `/next` and "submitted")."""
    held = current_task(db, user_id)
    if held is not None:
        return held.object_id
    now = db.now()
    with db.read() as session:
        return session.scalar(_candidates(user_id, now, [], gold=gold_jobs(session, user_id, now)))


def current_task(db: Database, user_id: int) -> Task | None:
    """The task the user holds right now, if any (read only)."""
    now = db.now()
    with db.read() as session:
        row = session.execute(_current_task_template(), {"user_id": user_id}).first()
    if row is None:
        return None
    hold, obj, status, job_name = row
    if not _gives_task(hold, obj, status, now):
        return None
    return _task(obj, job_name, hold, resumed=True)


@functools.cache
def _current_task_template() -> Any:
    """The user's hold with its object and the job's status and name (if in one of their teams'
    jobs): _users_hold_template and _held_object_template in one statement."""
    user_id = bindparam("user_id")
    return (select(Hold, DataObject, Job.status, Job.name)
            .join(DataObject, DataObject.id == Hold.object_id).join(Job, Job.id == DataObject.job_id)
            .where(Hold.user_id == user_id, Job.team_id.in_(_team_ids(user_id))))


def release(db: Database, user_id: int, object_id: int) -> bool:
    """The user gives the task back without answering (Ground Truth's "Release task")."""
    with db.write() as session:
        obj = session.scalar(db.lock(select(DataObject.id).where(DataObject.id == object_id)))
        if obj is None:
            return False
        gone = session.execute(delete(Hold).where(Hold.object_id == object_id, Hold.user_id == user_id))
        return gone.rowcount > 0


# -- submit -------------------------------------------------------------------------------------------
@functools.cache
def _stored_template() -> Any:
    object_id, user_id = bindparam("object_id"), bindparam("user_id")
    return (select(Answer.id, DataObject.answers_count, DataObject.state)
            .join(DataObject, DataObject.id == Answer.object_id)
            .where(Answer.object_id == object_id, Answer.user_id == user_id, Answer.iteration == DataObject.iteration))


def _stored(session: Session, object_id: int, user_id: int) -> SubmitResult | None:
    row = session.execute(_stored_template(), {"object_id": object_id, "user_id": user_id}).first()
    return None if row is None else _kept(row[0], row[1], row[2])


def _kept(answer_id: int, answers_count: int, state: str) -> SubmitResult:
    """The result of a submit that found the user's answer stored already."""
    return SubmitResult(answer_id, True, answers_count, state != "open")


@functools.cache
def _submission_context_template() -> Any:
    """What validating a submission needs: the task input, the job's schema and kind, the job id
    and whether the user is in its team; and the user's stored answer to the object's current
    iteration if any (a retried submit returns it without validating again), with the object's
    answer count and state."""
    user_id = bindparam("user_id")
    member = select(Membership.team_id).where(Membership.team_id == Job.team_id, Membership.user_id == user_id)
    stored = (select(Answer.id).where(Answer.object_id == DataObject.id, Answer.user_id == user_id,
                                      Answer.iteration == DataObject.iteration).scalar_subquery())
    return (select(DataObject.task_input_json, Job.schema_yaml, Job.kind, Job.id, member.exists().label("member"),
                   stored.label("stored"), DataObject.answers_count, DataObject.state)
            .join(Job, Job.id == DataObject.job_id).where(DataObject.id == bindparam("object_id")))


def submit(db: Database, user_id: int, object_id: int, answer_content: Any, *,
           accepted_at: datetime | None = None, max_bytes: int = MAX_ANSWER_BYTES,
           require_hold: bool = False) -> SubmitResult:
    """Store one answer (see the module doc for the rule). `accepted_at` (the browser's) is used
    only without a hold; the hold's own acceptance time wins. `max_bytes`: see validate_submission.
    `require_hold` (the service's pages): refuse a user who never took a place on the object."""
    with db.read() as session:
        row = session.execute(_submission_context_template(), {"object_id": object_id, "user_id": user_id}).first()
        if row is None:
            raise NotFound(f"no object {object_id}")
    if not row.member:  # checked again in the write: this spares outsiders the validation
        raise NotInTeam(f"user {user_id} is not in the team of job {row.id}")
    if row.stored is not None:
        return _kept(row.stored, row.answers_count, row.state)
    task_input = json.loads(row[0]) if row[0] else {}
    duration = task_input.get("duration-seconds")
    content = validate_submission(answer_content, load_schema(row[1]), interaction_id=task_input.get("interaction-id"),
                                  media_duration=float(duration) if isinstance(duration, int | float) else None,
                                  max_bytes=max_bytes, review=row[2] == "review")
    try:
        return _store(db, user_id, object_id, content, accepted_at, require_hold)
    except IntegrityError:  # a concurrent double submit won the unique key: return what it stored
        with db.read() as session:
            stored = _stored(session, object_id, user_id)
        if stored is None:
            raise
        return stored


@functools.cache
def _locked_submission_template(postgres: bool) -> Any:
    """_locked_object's statement with the user (`user_id`) and their membership of the job's team
    joined on: NULL user columns for an unknown user, a NULL team for an outsider. Only the
    object's row is locked; a user's flags may be a moment old, as if read before the lock."""
    stmt = (select(DataObject, Job, User.disabled, User.role, Membership.team_id)
            .join(Job, Job.id == DataObject.job_id)
            .outerjoin(User, User.id == bindparam("user_id"))
            .outerjoin(Membership, and_(Membership.user_id == User.id, Membership.team_id == Job.team_id))
            .where(DataObject.id == bindparam("object_id")))
    return locked(stmt, postgres=postgres, of=DataObject).execution_options(populate_existing=True)


@functools.cache
def _mine_template() -> Any:
    """The user's answer to an object's iteration (its id) and their hold on the object (accepted,
    expires): each NULL when none. Run after the object's lock, so it sees every commit before it."""
    object_id, user_id = bindparam("object_id"), bindparam("user_id")
    answer = (select(Answer.id).where(Answer.object_id == object_id, Answer.user_id == user_id,
                                      Answer.iteration == bindparam("iteration")).scalar_subquery())
    mine = and_(Hold.object_id == object_id, Hold.user_id == user_id)
    return select(answer.label("answer_id"),
                  select(Hold.accepted_at).where(mine).scalar_subquery().label("accepted_at"),
                  select(Hold.expires_at).where(mine).scalar_subquery().label("expires_at"))


def _store(db: Database, user_id: int, object_id: int, content: dict[str, Any],
           accepted_at: datetime | None, require_hold: bool = False) -> SubmitResult:
    now = db.now()
    with db.write() as session:
        found = session.execute(_locked_submission_template(db.is_postgres),
                                {"object_id": object_id, "user_id": user_id}).first()
        if found is None:
            raise NotFound(f"no object {object_id}")
        obj, job, person = found[0], found[1], found
        if person.disabled is None or person.disabled:
            raise Refused(f"user {user_id} cannot submit (unknown or disabled)")
        if person.team_id is None:
            raise NotInTeam(f"user {user_id} is not in the team of job {job.id}")
        if job.kind == "review" and person.role != "reviewer":
            raise Refused(f"job {job.id} is a review job: only reviewers answer it")
        if obj.review_of is not None and session.scalar(select(exists().where(
                Answer.object_id == obj.review_of, Answer.user_id == user_id))):
            raise Refused(f"you labeled the object reviewed by {obj.dataset_object_id} of job {job.id}")
        mine = session.execute(_mine_template(), {"object_id": object_id, "user_id": user_id,
                                                  "iteration": obj.iteration}).one()
        if mine.answer_id is not None:
            return _kept(mine.answer_id, obj.answers_count, obj.state)
        if require_hold and mine.expires_at is None:
            raise Refused(f"you hold no place on object {obj.dataset_object_id} of job {job.id}: "
                          "take a task with \"Next task\"")
        if job.status == "cancelled":
            raise Refused(f"job {job.id} is cancelled")
        if obj.state != "open":
            raise Refused(f"object {obj.dataset_object_id} of job {job.id} takes no answers ({obj.state})")
        mixed = _is_mixed_gold(obj, job)
        held = mine.expires_at is not None
        if not held or mine.expires_at <= now:
            if job.status != "active":
                raise Refused(f"job {job.id} is {job.status} and you hold no place on this task")
            if obj.available_until <= now:
                raise Refused(f"object {obj.dataset_object_id} of job {job.id} is past its availability lifetime")
            others = session.scalar(select(_live_holds(object_id, now, except_user=user_id)))
            if not mixed and obj.answers_count + others >= job.workers_per_object:
                raise Refused(f"your time on object {obj.dataset_object_id} of job {job.id} ran out and other "
                              "workers hold its remaining places")
        accepted = mine.accepted_at if held else min(accepted_at or now, now)
        answer = Answer(object_id=object_id, user_id=user_id, iteration=obj.iteration,
                        answer_json=json.dumps(content, ensure_ascii=False, separators=(",", ":")),
                        acceptance_time=accepted, submission_time=now,
                        time_spent_s=round(max(0.0, (now - accepted).total_seconds()), 3))
        session.add(answer)
        session.flush()
        if held:
            session.execute(delete(Hold).where(Hold.object_id == object_id, Hold.user_id == user_id))
        obj.answers_count += 1
        obj.revision += 1
        obj.last_submission_at = now
        complete = not mixed and obj.answers_count >= job.workers_per_object  # gold: every worker answers
        if complete:
            obj.state = "answered"
            queue.enqueue(session, now, queue.CONSOLIDATE, job.id, obj.id)
        queue.enqueue(session, now, queue.WRITE_OUTPUT, job.id)
        return SubmitResult(answer.id, False, obj.answers_count, complete)
