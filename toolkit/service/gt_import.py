"""Import a Ground Truth job's output layout into a new job, to continue or review it here.

Reads `<root>/manifests/output/output.manifest` (every input line, in order; labeled ones carry
`<attr>` and `<attr>-metadata`) and the worker-response files under
`<root>/annotations/worker-response/iteration-*/<datasetObjectId>/*.json`, where `root` is
`<S3OutputPath>/<LabelingJobName>` (local directory or s3://). Ground Truth numbers data objects by
their 0-based manifest line, so line i's answers are in folder `i` (the observed convention).

- Each line minus `<attr>` and `<attr>-metadata` is the input line; it goes through the real
  pre-annotation handler again, which rebuilds its task input (or declines it).
- Each answer keeps its `workerId` (an account that cannot sign in stands for that worker), its
  times, `timeSpentInSeconds` and `workerMetadata`. A worker's second answer to an object is left out.
- A line with a label is `consolidated` with that label. Without one, an object with all its
  answers is queued for consolidation here; one with fewer stays open for the remaining answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from toolkit.contract import LabelSchema, consolidation, worker_response
from toolkit.labeling.output_layout import JobLayout, responses_by_object
from toolkit.service import queue
from toolkit.service.db import Database
from toolkit.service.errors import Invalid
from toolkit.service.jobs import (
    BATCH,
    DEFAULT_AVAILABILITY_S,
    JobInfo,
    check_options,
    job_arn,
    new_job,
    prepare_line,
    refresh_status,
    schema_yaml,
)
from toolkit.service.local_job import DEFAULT_LABEL_ATTRIBUTE, DEFAULT_TASK_TIME_LIMIT
from toolkit.service.output import json_text
from toolkit.service.people import external_user
from toolkit.service.tables import Answer, Consolidation, DataObject, Job
from toolkit.storage import Storage
from toolkit.storage.lines import UndecodableLine, WrongEncoding


@dataclass(frozen=True)
class ImportResult:
    job: JobInfo
    objects: int
    labeled: int
    answers: int


def _time(value: str | None, default: datetime) -> datetime:
    return worker_response.parse_gt_time(value) or default


Unreadable = Callable[[str, ValueError], None]


def _read_answers(storage: Storage, uris: list[str], object_id: str, unreadable: Unreadable | None = None) -> list[Any]:
    answers = []
    for uri in uris:
        try:
            answers.extend(worker_response.decode(storage.read_bytes(uri), uri))
        except ValueError as exc:  # UnreadableResponse, or bytes that are not UTF-8
            if unreadable is not None:
                unreadable(uri, exc)
                continue
            raise Invalid(f"{uri}: unreadable worker response of object {object_id} ({type(exc).__name__})") from None
    return answers


def import_gt_output(db: Database, root: str, *, name: str, schema: LabelSchema, team_id: int, output_uri: str,
                     workers_per_object: int = 1, label_attribute: str = DEFAULT_LABEL_ATTRIBUTE,
                     task_time_limit_s: int = DEFAULT_TASK_TIME_LIMIT,
                     availability_s: int = DEFAULT_AVAILABILITY_S, priority: int = 0,
                     storage: Storage | None = None, actor_id: int | None = None,
                     unreadable: Unreadable | None = None, in_place: bool = False) -> ImportResult:
    """A new job holding a Ground Truth job's objects, answers and labels (see the module doc).

    `unreadable(uri, error)`: an unreadable worker-response file is reported to it and left out
    (default: the import fails naming it). `in_place`: `root` is this job's own output folder
    (`gtkit local-job run` resuming), so the imported objects' files count as written and are
    not rewritten."""
    check_options(name, label_attribute, workers_per_object, task_time_limit_s, availability_s)
    storage = storage or Storage()
    manifest = JobLayout.of_root(root).output_manifest
    if not storage.exists(manifest):
        raise Invalid(f"{manifest}: no output manifest (is {root} a job's output folder?)")
    responses = responses_by_object(storage, root)
    now = db.now()
    with db.write() as session:
        job = new_job(session, now, name=name, schema_text=schema_yaml(schema), team_id=team_id,
                      output_uri=output_uri, workers_per_object=workers_per_object,
                      task_time_limit_s=task_time_limit_s, availability_s=availability_s, priority=priority,
                      label_attribute=label_attribute, actor_id=actor_id)
        job_id, info_name = job.id, job.name
    counts = {"objects": 0, "labeled": 0, "answers": 0}
    try:
        _import_lines(db, job_id, info_name, manifest, responses, storage, counts, unreadable, in_place)
    except (Invalid, WrongEncoding, UndecodableLine) as exc:  # no half-imported job is left behind
        with db.write() as session:
            session.execute(delete(Job).where(Job.id == job_id))
        raise exc if isinstance(exc, Invalid) else Invalid(str(exc)) from None
    with db.write() as session:
        queue.enqueue(session, db.now(), queue.WRITE_OUTPUT, job_id)
        refresh_status(session, job_id)
        info = JobInfo.of(session.get(Job, job_id))
    return ImportResult(info, counts["objects"], counts["labeled"], counts["answers"])


def _import_lines(db: Database, job_id: int, job_name: str, manifest: str, responses: dict[str, list[str]],
                  storage: Storage, counts: dict[str, int], unreadable: Unreadable | None = None,
                  in_place: bool = False) -> None:
    batch: list[tuple[int, Any]] = []
    for number, text in storage.iter_lines(manifest):
        if not text.strip():
            continue
        try:
            batch.append((number, json.loads(text)))
        except json.JSONDecodeError as exc:
            raise Invalid(f"{manifest} line {number}: not JSON ({exc.msg})") from None
        if len(batch) >= BATCH:
            _import_batch(db, job_id, job_name, batch, responses, storage, counts, unreadable, in_place)
            batch = []
    if batch:
        _import_batch(db, job_id, job_name, batch, responses, storage, counts, unreadable, in_place)


def _files_present(storage: Storage, job: Job, object_id: str, label: Any) -> bool:
    """In place: a labeled object's files count as written only while its consolidation response
    is on disk (a run killed between writing the label and that file, or a file removed, gets
    it written again from the label)."""
    if label is None:
        return True
    return storage.exists(JobLayout(job.output_uri, job.name).consolidation_response(object_id))


def _import_batch(db: Database, job_id: int, job_name: str, batch: list[tuple[int, Any]],
                  responses: dict[str, list[str]], storage: Storage, counts: dict[str, int],
                  unreadable: Unreadable | None = None, in_place: bool = False) -> None:
    now = db.now()
    with db.write() as session:
        job = session.get(Job, job_id)
        assert job is not None
        attr = job.label_attribute
        seen = set(session.scalars(select(DataObject.dedup_key).where(DataObject.job_id == job_id)))
        for number, line in batch:
            position = counts["objects"]
            object_id = str(position)
            label = line.pop(attr, None) if isinstance(line, dict) else None
            if isinstance(line, dict):
                line.pop(f"{attr}-metadata", None)
            prepared = prepare_line(line, number, job_arn(job_name))
            key = prepared.dedup_key if prepared.dedup_key not in seen else None
            seen.add(prepared.dedup_key)
            answers = _read_answers(storage, responses.get(object_id, []), object_id, unreadable)
            obj = DataObject(job_id=job_id, position=position, dataset_object_id=object_id, dedup_key=key,
                             line_json=prepared.line_text, task_input_json=prepared.task_input_text,
                             reason=prepared.reason, state="declined", answers_count=0,
                             available_until=now + timedelta(seconds=job.availability_s), revision=1,
                             written_revision=1 if in_place and _files_present(storage, job, object_id, label)
                             else 0, created_at=now)
            session.add(obj)
            session.flush()
            workers: set[str] = set()
            for answer in answers:
                if answer.worker_id in workers:
                    continue
                workers.add(answer.worker_id)
                submitted = _time(answer.submission_time, now)
                accepted = _time(answer.acceptance_time, submitted)
                spent = answer.time_spent_in_seconds
                session.add(Answer(
                    object_id=obj.id, user_id=external_user(session, now, answer.worker_id).id,
                    answer_json=json_text(answer.answer_content), acceptance_time=accepted, submission_time=submitted,
                    time_spent_s=round(spent if spent is not None else max(0.0, (submitted - accepted).total_seconds()),
                                       3),
                    worker_metadata_json=(json_text(answer.worker_metadata)
                                          if answer.worker_metadata is not None else None)))
                obj.last_submission_at = max(filter(None, [obj.last_submission_at, submitted]))
            obj.answers_count = len(workers)
            if label is not None:
                obj.state = "consolidated"
                session.add(Consolidation(
                    object_id=obj.id, label_json=json_text(label),
                    response_json=json_text([consolidation.response_item(object_id, attr, label)]),
                    status=label.get("status") if isinstance(label, dict) else None,
                    agreement=((label.get("agreement") or {}).get("overall") if isinstance(label, dict) else None),
                    created_at=now))
                counts["labeled"] += 1
            elif prepared.task_input_text is not None:
                if obj.answers_count >= job.workers_per_object:
                    obj.state = "answered"
                    session.flush()
                    queue.enqueue(session, now, queue.CONSOLIDATE, job_id, obj.id)
                else:
                    obj.state = "open"
            counts["objects"] += 1
            counts["answers"] += len(workers)
