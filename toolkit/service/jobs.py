"""Labeling jobs: create from a manifest and a label schema, add objects, pause/resume/cancel, progress.

Every manifest line goes through the real pre-annotation handler (toolkit.labeling.pre_annotation,
in process) exactly as in a local job; lines it declines are kept (state
`declined`) and copied to the output unchanged. Lines are read streaming and stored in batches of
BATCH lines, each batch one transaction, so a large manifest never holds SQLite's write lock for
long. `add_objects` is idempotent: a line whose dedup key (`object_key`) is already in the job is
skipped, like a duplicate message to a Ground Truth streaming job.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import yaml
from sqlalchemy import case, delete, exists, func, select
from sqlalchemy.orm import Session

from toolkit.contract import LabelSchema
from toolkit.contract import pre_annotation as pre_codec
from toolkit.contract.manifest import GOLD_ANSWER_KEY
from toolkit.contract.output_manifest import manifest_text
from toolkit.labeling import pre_annotation
from toolkit.service import queue
from toolkit.service.audit import record
from toolkit.service.db import Database
from toolkit.service.errors import Invalid, NotFound, Refused
from toolkit.service.local_job import (
    DEFAULT_LABEL_ATTRIBUTE,
    DEFAULT_TASK_TIME_LIMIT,
    LOCAL_ACCOUNT,
    TASK_TIME_LIMIT_RANGE,
    quiet_lambda_logs,
)
from toolkit.service.people import require_admin
from toolkit.service.tables import Answer, DataObject, Hold, Job, Team
from toolkit.storage import Storage
from toolkit.task.task_input import ManifestError, build_task_input, iter_data_objects

BATCH = 500
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # Ground Truth's LabelingJobName
LABEL_ATTRIBUTE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,126}$")
AVAILABILITY_RANGE = (60, 365 * 24 * 3600)
DEFAULT_AVAILABILITY_S = 30 * 24 * 3600  # Ground Truth's usual maximum for private workforces
DEDUP_ATTRIBUTE = "dataset-objectid-attribute-name"  # Ground Truth streaming jobs' own dedup key
MAX_READABLE_KEY = 255
WORKING_STATES = ("open", "answered")


@dataclass(frozen=True)
class JobInfo:
    id: int
    name: str
    team_id: int
    status: str
    label_attribute: str
    workers_per_object: int
    task_time_limit_s: int
    availability_s: int
    priority: int
    output_uri: str
    schema_hash: str
    created_at: datetime
    kind: str = "label"
    review_of: int | None = None
    gold_rate: float = 0.0

    @classmethod
    def of(cls, job: Job) -> JobInfo:
        return cls(job.id, job.name, job.team_id, job.status, job.label_attribute, job.workers_per_object,
                   job.task_time_limit_s, job.availability_s, job.priority, job.output_uri, job.schema_hash,
                   job.created_at, job.kind or "label", job.review_of, float(job.gold_rate or 0.0))


@dataclass(frozen=True)
class AddResult:
    added: int
    declined: int  # of the added, how many the pre-annotation handler declined
    duplicates: int  # lines skipped: their dedup key was already in the job


@dataclass(frozen=True)
class JobProgress:
    objects: int
    declined: int
    open: int  # still taking answers
    in_progress: int  # open objects somebody holds right now
    answered: int  # waiting for consolidation
    consolidated: int
    failed: int
    answers: int
    answers_last_hour: int
    median_time_spent_s: float | None
    gold: int = 0  # objects whose line carries a gold answer (mixed in at the job's gold rate if it has one)
    # Of `open`: gold objects mixed in at the job's gold rate. They take answers while the job is
    # active and never become answered; `open - gold_open` is what the job still waits for.
    gold_open: int = 0


@dataclass(frozen=True)
class PreparedLine:
    line_text: str
    task_input_text: str | None
    reason: str | None
    dedup_key: str
    gold: bool = False  # the line carries a gold answer (ManifestLine.gold_answer)


# -- schema, names -----------------------------------------------------------------------------------
def schema_yaml(schema: LabelSchema) -> str:
    return yaml.safe_dump(schema.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def schema_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=64)
def load_schema(text: str) -> LabelSchema:
    """A job's LabelSchema from its stored YAML (cached: every submit validates against it)."""
    return LabelSchema.model_validate(yaml.safe_load(text))


def job_arn(name: str) -> str:
    return f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:labeling-job/{name}"


def object_key(line: Any) -> str:
    """What makes two lines the same object: the attribute named by `dataset-objectid-attribute-name`
    (Ground Truth streaming), else `interaction-id`, else the line's content."""
    key = None
    if isinstance(line, dict):
        attribute = line.get(DEDUP_ATTRIBUTE)
        if isinstance(attribute, str) and attribute in line:
            key = f"{attribute}={json.dumps(line[attribute], sort_keys=True, ensure_ascii=False)}"
        elif isinstance(line.get("interaction-id"), str) and line["interaction-id"]:
            key = f"interaction-id={line['interaction-id']}"
    if key is None:
        key = json.dumps(line, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if len(key) > MAX_READABLE_KEY:
        key = "sha256=" + hashlib.sha256(key.encode("utf-8")).hexdigest()
    return key


# -- reading a manifest ------------------------------------------------------------------------------
def is_gold(line: Any) -> bool:
    """The line carries a known answer (`gold-answer`, ManifestLine.gold_answer)."""
    return isinstance(line, dict) and line.get(GOLD_ANSWER_KEY) is not None


def prepare_line(line: Any, number: int, arn: str) -> PreparedLine:
    """One manifest line through the real pre-annotation handler (whose task input never carries
    the gold answer)."""
    quiet_lambda_logs()
    response = pre_codec.decode_response(pre_annotation.handle(pre_codec.event(arn, line)))
    if response.is_human_annotation_required:
        return PreparedLine(manifest_text(line), manifest_text(response.task_input), None, object_key(line),
                            is_gold(line))
    return PreparedLine(manifest_text(line), None, f"line {number}: {build_task_input(line)[1]}", object_key(line),
                        is_gold(line))


def prepared_batches(manifest: str, storage: Storage, arn: str, size: int = BATCH) -> Iterator[list[PreparedLine]]:
    batch: list[PreparedLine] = []
    try:
        for _object_id, number, line in iter_data_objects(manifest, storage):
            batch.append(prepare_line(line, number, arn))
            if len(batch) >= size:
                yield batch
                batch = []
    except ManifestError as exc:  # not JSON or not UTF-8: Ground Truth refuses such a manifest
        raise Invalid(str(exc)) from None
    if batch:
        yield batch


def _insert_batch(session: Session, now: datetime, job: Job, batch: list[PreparedLine], *,
                  keep_repeats: bool, review_of: list[int] | None = None) -> AddResult:
    """Append lines after the job's last object. `keep_repeats`: the job's first manifest, where a
    repeated line is an object of its own (as in a Ground Truth batch job) without a dedup key.
    `review_of`: a review job's lines, the labeling object each reviews (aligned with `batch`)."""
    keys = {p.dedup_key for p in batch}
    seen = set(session.scalars(select(DataObject.dedup_key).where(DataObject.job_id == job.id,
                                                                  DataObject.dedup_key.in_(keys))))
    last = session.scalar(select(func.max(DataObject.position)).where(DataObject.job_id == job.id))
    position = 0 if last is None else last + 1  # not `last or -1`: a job whose only object is at 0
    available_until = now + timedelta(seconds=job.availability_s)
    rows, declined, duplicates = [], 0, 0
    for index, p in enumerate(batch):
        key: str | None = p.dedup_key
        if key in seen:
            if not keep_repeats:
                duplicates += 1
                continue
            key = None
        seen.add(p.dedup_key)
        declined += p.task_input_text is None
        rows.append({"job_id": job.id, "position": position, "dataset_object_id": str(position), "dedup_key": key,
                     "line_json": p.line_text, "task_input_json": p.task_input_text, "reason": p.reason,
                     "state": "open" if p.task_input_text is not None else "declined", "answers_count": 0,
                     "available_until": available_until, "revision": 1, "written_revision": 0, "created_at": now,
                     "iteration": 1, "review_of": review_of[index] if review_of is not None else None,
                     "gold": p.gold})
        position += 1
    if rows:
        session.execute(DataObject.__table__.insert(), rows)
        queue.enqueue(session, now, queue.WRITE_OUTPUT, job.id)
        if job.status == "done" and len(rows) > declined:
            job.status = "active"  # new work for a finished streaming job (its gold is mixed in again)
    return AddResult(len(rows), declined, duplicates)


# -- jobs --------------------------------------------------------------------------------------------
def check_options(name: str, label_attribute: str, workers_per_object: int, task_time_limit_s: int,
                   availability_s: int, gold_rate: float = 0.0) -> None:
    if not JOB_NAME.match(name):
        raise Invalid("a job name has 1-63 letters, digits and hyphens, starting and ending with a letter or "
                      "digit (Ground Truth's LabelingJobName)")
    if not LABEL_ATTRIBUTE.match(label_attribute) or label_attribute.endswith(("-metadata", "-ref")):
        raise Invalid("the label attribute has 1-127 letters, digits and hyphens and must not end with "
                      "-metadata or -ref")
    if not 1 <= workers_per_object <= 9:
        raise Invalid("workers per object must be between 1 and 9 (Ground Truth's range)")
    low, high = TASK_TIME_LIMIT_RANGE
    if not low <= task_time_limit_s <= high:
        raise Invalid(f"the task time limit must be between {low} and {high} seconds (Ground Truth's range)")
    low, high = AVAILABILITY_RANGE
    if not low <= availability_s <= high:
        raise Invalid(f"the availability lifetime must be between {low} and {high} seconds")
    if not (isinstance(gold_rate, int | float) and math.isfinite(gold_rate) and 0 <= gold_rate <= 1):
        raise Invalid("the gold rate must be between 0 and 1 (the share of each worker's tasks that are gold objects)")


def new_job(session: Session, now: datetime, *, name: str, schema_text: str, team_id: int, output_uri: str,
            workers_per_object: int, task_time_limit_s: int, availability_s: int, priority: int,
            label_attribute: str, actor_id: int | None, kind: str = "label", review_of: int | None = None,
            gold_rate: float = 0.0) -> Job:
    """Insert the job row (options checked by the caller with check_options), with its audit row."""
    require_admin(session, actor_id)
    if session.get(Team, team_id) is None:
        raise NotFound(f"no team {team_id}")
    if session.scalar(select(Job.id).where(func.lower(Job.name) == name.lower())) is not None:
        raise Refused(f"a job named {name!r} exists (names are unique, ignoring case)")
    job = Job(name=name, schema_yaml=schema_text, schema_hash=schema_digest(schema_text),
              label_attribute=label_attribute, workers_per_object=workers_per_object,
              task_time_limit_s=task_time_limit_s, availability_s=availability_s, priority=priority,
              team_id=team_id, status="active", output_uri=str(output_uri), created_at=now, created_by=actor_id,
              kind=kind, review_of=review_of, gold_rate=float(gold_rate))
    session.add(job)
    session.flush()
    record(session, now, actor_id, "job.create", f"job:{job.id}", team=team_id, workers=workers_per_object)
    return job


def create_job(db: Database, *, name: str, manifest: str, schema: LabelSchema, team_id: int, output_uri: str,
               workers_per_object: int = 1, task_time_limit_s: int = DEFAULT_TASK_TIME_LIMIT,
               availability_s: int = DEFAULT_AVAILABILITY_S, priority: int = 0,
               label_attribute: str = DEFAULT_LABEL_ATTRIBUTE, storage: Storage | None = None,
               actor_id: int | None = None, gold_rate: float = 0.0) -> JobInfo:
    """A job from a manifest (local path or s3://, read streaming) for a team. Its output goes to
    `<output_uri>/<name>/` in Ground Truth's layout. An empty manifest is refused. `gold_rate`:
    see toolkit.service.work (0: lines with a gold answer are queued like any other)."""
    check_options(name, label_attribute, workers_per_object, task_time_limit_s, availability_s, gold_rate)
    storage = storage or Storage()
    text = schema_yaml(schema)
    batches = prepared_batches(str(manifest), storage, job_arn(name))
    first = next(batches, None)
    if first is None:
        raise Invalid(f"{manifest}: no data objects (the manifest is empty)")
    now = db.now()
    with db.write() as session:
        job = new_job(session, now, name=name, schema_text=text, team_id=team_id, output_uri=output_uri,
                      workers_per_object=workers_per_object, task_time_limit_s=task_time_limit_s,
                      availability_s=availability_s, priority=priority, label_attribute=label_attribute,
                      actor_id=actor_id, gold_rate=gold_rate)
        _insert_batch(session, now, job, first, keep_repeats=True)
        job_id = job.id
    try:
        for batch in batches:
            with db.write() as session:
                job = session.scalar(db.lock(select(Job).where(Job.id == job_id)))
                _insert_batch(session, db.now(), job, batch, keep_repeats=True)
    except Invalid:  # a bad line further down: no half-created job is left behind
        with db.write() as session:
            session.execute(delete(Job).where(Job.id == job_id))
        raise
    with db.write() as session:
        refresh_status(session, job_id)
        return JobInfo.of(session.get(Job, job_id))


def add_objects(db: Database, job_id: int, manifest: str, *, storage: Storage | None = None,
                actor_id: int | None = None) -> AddResult:
    """Append a manifest's lines to a job; lines already in it (same `object_key`) are skipped, so
    sending the same manifest twice adds nothing the second time."""
    storage = storage or Storage()
    info = get_job(db, job_id)
    if info.status == "cancelled":
        raise Refused(f"job {job_id} is cancelled")
    added = declined = duplicates = 0
    for batch in prepared_batches(str(manifest), storage, job_arn(info.name)):
        now = db.now()
        with db.write() as session:
            require_admin(session, actor_id)
            job = session.scalar(db.lock(select(Job).where(Job.id == job_id)))  # one adder at a time
            result = _insert_batch(session, now, job, batch, keep_repeats=False)
            added, declined, duplicates = (added + result.added, declined + result.declined,
                                           duplicates + result.duplicates)
    with db.write() as session:
        record(session, db.now(), actor_id, "job.add_objects", f"job:{job_id}", added=added, duplicates=duplicates)
    return AddResult(added, declined, duplicates)


def refresh_status(session: Session, job_id: int) -> None:
    """An active job with nothing left to label or consolidate is done. Gold objects mixed in at
    the job's gold rate do not count (toolkit.service.work): the job being done closes them (no
    claim or submit without a hold is taken on a job that is not active) and their holds go back."""
    job = session.get(Job, job_id)
    if job is None or job.status != "active":
        return
    gold = job.gold_rate > 0
    stmt = exists().where(DataObject.job_id == job_id, DataObject.state.in_(WORKING_STATES))
    if gold:
        stmt = stmt.where(DataObject.gold.is_(False))
    if not session.scalar(select(stmt)):
        job.status = "done"
        if gold:
            session.execute(delete(Hold).where(Hold.object_id.in_(
                select(DataObject.id).where(DataObject.job_id == job_id, DataObject.gold.is_(True)))))


def get_job(db: Database, job: int | str) -> JobInfo:
    """By id, or by name (ignoring case)."""
    with db.read() as session:
        row = (session.get(Job, job) if isinstance(job, int)
               else session.scalar(select(Job).where(func.lower(Job.name) == job.lower())))
        if row is None:
            raise NotFound(f"no job {job!r}")
        return JobInfo.of(row)


def job_schema(db: Database, job_id: int) -> LabelSchema:
    """The job's label schema (to render its task template)."""
    with db.read() as session:
        text = session.scalar(select(Job.schema_yaml).where(Job.id == job_id))
    if text is None:
        raise NotFound(f"no job {job_id}")
    return load_schema(text)


def list_jobs(db: Database, *, team_ids: list[int] | None = None) -> list[JobInfo]:
    with db.read() as session:
        stmt = select(Job).order_by(Job.priority.desc(), Job.id)
        if team_ids is not None:
            stmt = stmt.where(Job.team_id.in_(team_ids))
        return [JobInfo.of(j) for j in session.scalars(stmt)]


_TRANSITIONS = {"pause": ({"active"}, "paused"), "resume": ({"paused"}, "active"),
                "cancel": ({"active", "paused", "done"}, "cancelled")}


def _transition(db: Database, job_id: int, action: str, actor_id: int | None) -> JobInfo:
    allowed, target = _TRANSITIONS[action]
    now = db.now()
    with db.write() as session:
        require_admin(session, actor_id)
        job = session.scalar(db.lock(select(Job).where(Job.id == job_id)))
        if job is None:
            raise NotFound(f"no job {job_id}")
        if job.status not in allowed:
            raise Refused(f"job {job_id} is {job.status}; cannot {action} it")
        job.status = target
        if target == "cancelled":  # held places are gone; answers stay and are written out
            session.execute(delete(Hold).where(Hold.object_id.in_(select(DataObject.id)
                                                                  .where(DataObject.job_id == job_id))))
        record(session, now, actor_id, f"job.{action}", f"job:{job_id}")
        if target == "active":
            refresh_status(session, job_id)
        return JobInfo.of(job)


def pause_job(db: Database, job_id: int, *, actor_id: int | None = None) -> JobInfo:
    """No new tasks are handed out; holders may still submit what they hold."""
    return _transition(db, job_id, "pause", actor_id)


def resume_job(db: Database, job_id: int, *, actor_id: int | None = None) -> JobInfo:
    return _transition(db, job_id, "resume", actor_id)


def cancel_job(db: Database, job_id: int, *, actor_id: int | None = None) -> JobInfo:
    """No more tasks or submits; what was answered stays in the output."""
    return _transition(db, job_id, "cancel", actor_id)


def _answer_figures(session: Session, job_id: int, since: datetime) -> tuple[int, int, float | None]:
    """A job's answers, those submitted after `since`, and their median time per task, worked out by
    the database: the job page of a job with a million answers reads three numbers instead of a
    million rows into a Python list (44 MB at 300,000 answers, in the worker that served the page)."""

    def of_job(stmt: Any) -> Any:
        return (stmt.select_from(Answer).join(DataObject, DataObject.id == Answer.object_id)
                .where(DataObject.job_id == job_id))

    recent = func.count(case((Answer.submission_time > since, 1)))
    total, recent_total = session.execute(of_job(select(func.count(), recent))).one()
    if not total:
        return 0, 0, None
    if session.get_bind().dialect.name == "postgresql":
        median = session.scalar(of_job(select(func.percentile_cont(0.5).within_group(Answer.time_spent_s))))
    else:  # SQLite has no median: the middle one or two of the sorted times (statistics.median's rule)
        middle = (of_job(select(Answer.time_spent_s)).order_by(Answer.time_spent_s)
                  .limit(2 - total % 2).offset((total - 1) // 2).subquery())
        median = session.scalar(select(func.avg(middle.c.time_spent_s)))
    return total, recent_total, None if median is None else float(median)


def job_progress(db: Database, job_id: int) -> JobProgress:
    now = db.now()
    with db.read() as session:
        counts = dict(session.execute(select(DataObject.state, func.count()).where(DataObject.job_id == job_id)
                                      .group_by(DataObject.state)).all())
        in_progress = session.scalar(
            select(func.count(func.distinct(Hold.object_id))).join(DataObject, DataObject.id == Hold.object_id)
            .where(DataObject.job_id == job_id, DataObject.state == "open", Hold.expires_at > now)) or 0
        total, recent, median = _answer_figures(session, job_id, now - timedelta(hours=1))
        gold = session.scalar(select(func.count()).select_from(DataObject)
                              .where(DataObject.job_id == job_id, DataObject.gold.is_(True))) or 0
        gold_open = session.scalar(select(func.count()).select_from(DataObject).join(Job, Job.id == DataObject.job_id)
                                   .where(DataObject.job_id == job_id, DataObject.gold.is_(True), Job.gold_rate > 0,
                                          DataObject.state == "open")) or 0
    return JobProgress(objects=sum(counts.values()), declined=counts.get("declined", 0), open=counts.get("open", 0),
                       in_progress=in_progress, answered=counts.get("answered", 0),
                       consolidated=counts.get("consolidated", 0), failed=counts.get("failed", 0), answers=total,
                       answers_last_hour=recent, median_time_spent_s=median, gold=gold,
                       gold_open=gold_open)
