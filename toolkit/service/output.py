"""The Ground Truth output layout of a job, derived from committed rows (`write_output`).

```
<output_uri>/<job>/annotations/worker-response/iteration-1/<datasetObjectId>/<YYYY-MM-DD_HH:MM:SS>.json
<output_uri>/<job>/annotations/consolidated-annotation/consolidation-request/iteration-1/<id>.json
<output_uri>/<job>/annotations/consolidated-annotation/consolidation-response/iteration-1/<id>.json
<output_uri>/<job>/manifests/output/output.manifest
```

The same files, byte for byte apart from timestamps, that `gtkit local-job run` writes (its
helpers in toolkit.labeling.output_layout and toolkit.service.portal.tasks are reused), so `gtkit export`, `merge`
and `report` read them unchanged. Every file is written atomically through toolkit.storage (local
directory or s3://). Names are a function of the rows (answers in submission order; a second
answer in the same second gets `_1`, as the local job names it), so writing again rewrites the
same files: the layout can be re-derived at any time. Per-object files are written for objects
changed since the last write (`revision` > `written_revision`), or all of them with `full=True`;
the manifest is rewritten whole each time, streamed from the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from toolkit.contract import consolidation, worker_response
from toolkit.contract.events import WorkerResponse
from toolkit.contract.output_manifest import creation_date, manifest_text, output_line
from toolkit.labeling.output_layout import JobLayout, worker_response_name, write_manifest
from toolkit.service.db import Database
from toolkit.service.errors import NotFound
from toolkit.service.tables import Answer, Consolidation, DataObject, Job, User
from toolkit.storage import Storage, join_uri

CHUNK = 200


@dataclass(frozen=True)
class AnswerRow:
    id: int
    worker_id: str
    content: dict[str, Any]
    acceptance_time: datetime
    submission_time: datetime
    time_spent_s: float
    worker_metadata: dict[str, Any] | None
    iteration: int = 1


@dataclass(frozen=True)
class OutputStats:
    objects: int  # lines in output.manifest
    labeled: int  # lines with a label
    object_files_written: int  # objects whose worker-response / consolidation files were (re)written
    manifest_uri: str


def json_text(value: Any) -> str:
    """JSON as toolkit.storage.Storage.write_json writes it (compact, UTF-8 as is)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def load_answers(session: Session, object_ids: list[int], *, current: bool = False) -> dict[int, list[AnswerRow]]:
    """Each object's answers in submission order (ties by id); `current`: only those of the object's
    current labeling iteration (what consolidation uses)."""
    out: dict[int, list[AnswerRow]] = {i: [] for i in object_ids}
    stmt = (select(Answer, User.worker_id).join(User, User.id == Answer.user_id)
            .where(Answer.object_id.in_(object_ids)).order_by(Answer.object_id, Answer.submission_time, Answer.id))
    if current:
        stmt = stmt.join(DataObject, DataObject.id == Answer.object_id).where(Answer.iteration == DataObject.iteration)
    for answer, worker_id in session.execute(stmt):
        out[answer.object_id].append(AnswerRow(
            answer.id, worker_id, json.loads(answer.answer_json), answer.acceptance_time, answer.submission_time,
            answer.time_spent_s, json.loads(answer.worker_metadata_json) if answer.worker_metadata_json else None,
            answer.iteration or 1))
    return out


def response_file_names(answers: list[AnswerRow]) -> list[tuple[str, AnswerRow]]:
    """(file name, answer), sorted by name as the local job's reader sorts them."""
    used: set[str] = set()
    named = []
    for answer in answers:
        base = worker_response_name(answer.submission_time).removesuffix(".json")
        name, n = f"{base}.json", 1
        while name in used:
            name, n = f"{base}_{n}.json", n + 1
        used.add(name)
        named.append((name, answer))
    return sorted(named, key=lambda pair: pair[0])


def worker_response_record(answer: AnswerRow) -> WorkerResponse:
    """One element of a worker-response file's `answers`, its time spent as stored (an imported job's own)."""
    return worker_response.new_answer(answer.worker_id, answer.content, answer.acceptance_time, answer.submission_time,
                                      time_spent=answer.time_spent_s, worker_metadata=answer.worker_metadata)


def consolidation_payload(dataset_object_id: str, line: dict[str, Any], answers: list[AnswerRow]) -> list[dict]:
    """The consolidation request (payload file) for one object, answers inlined as JSON strings as
    Ground Truth sends them, in the order of their worker-response files."""
    return [consolidation.payload_item(dataset_object_id, line,
                                       [(a.worker_id, a.content) for _name, a in response_file_names(answers)])]


def label_creation_date(last_submission: datetime | None) -> str:
    """`creation-date`: the newest submission to the millisecond (as its submissionTime reads), so
    rewriting does not change it."""
    if last_submission is None:
        return creation_date()
    return creation_date(last_submission.replace(microsecond=last_submission.microsecond // 1000 * 1000))


def output_text(line_json: str, label_json: str | None, label_attribute: str, job_name: str,
                last_submission: datetime | None, *, review: bool = False) -> str:
    """`review`: a review job's line, whose `-metadata` carries `adjustment-status` and `review-decision`."""
    if label_json is None:
        return line_json
    created = label_creation_date(last_submission)
    if review:
        from toolkit.contract.review import ReviewedLabel
        from toolkit.labeling.review import reviewed_output_line

        return manifest_text(reviewed_output_line(json.loads(line_json), label_attribute,
                                                  ReviewedLabel.model_validate_json(label_json), job_name, created))
    return manifest_text(output_line(json.loads(line_json), label_attribute, json.loads(label_json), job_name,
                                     created))


# -- writing ------------------------------------------------------------------------------------------
def _job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def _write_object_files(session: Session, storage: Storage, layout: JobLayout, job: Job,
                        objects: list[DataObject]) -> None:
    answers = load_answers(session, [o.id for o in objects])
    consolidations = {c.object_id: c for c in session.scalars(
        select(Consolidation).where(Consolidation.object_id.in_([o.id for o in objects])))}
    for obj in objects:
        # Each labeling iteration in its own iteration-N/ folder, as Ground Truth writes them.
        for iteration in sorted({a.iteration for a in answers[obj.id]}):
            folder = JobLayout(job.output_uri, job.name, iteration).worker_response_dir(obj.dataset_object_id)
            for name, answer in response_file_names([a for a in answers[obj.id] if a.iteration == iteration]):
                storage.write_json(join_uri(folder, name), worker_response.encode([worker_response_record(answer)]))
        done = consolidations.get(obj.id)
        if done is not None:
            line = json.loads(obj.line_json)
            current = JobLayout(job.output_uri, job.name, obj.iteration)
            storage.write_json(current.consolidation_request(obj.dataset_object_id),
                               consolidation_payload(obj.dataset_object_id, line,
                                                     [a for a in answers[obj.id] if a.iteration == obj.iteration]))
            storage.write_bytes(current.consolidation_response(obj.dataset_object_id),
                                done.response_json.encode("utf-8"), content_type="application/json")


def _manifest_texts(session: Session, job: Job, counts: list[int]) -> Iterator[str]:
    stmt = (select(DataObject.line_json, DataObject.state, DataObject.last_submission_at, Consolidation.label_json)
            .outerjoin(Consolidation, Consolidation.object_id == DataObject.id)
            .where(DataObject.job_id == job.id).order_by(DataObject.position)
            .execution_options(yield_per=1000))
    for line_json, state, last_submission, label_json in session.execute(stmt):
        labeled = state == "consolidated" and label_json is not None
        counts[0] += labeled
        yield output_text(line_json, label_json if labeled else None, job.label_attribute, job.name,
                          last_submission, review=job.kind == "review")


def manifest_current(db: Database, job_id: int, *, storage: Storage | None = None) -> bool:
    """The output manifest on disk (or S3) is, byte for byte, what write_output would write now."""
    storage = storage or Storage()
    with db.read(stream=True) as session:
        job = _job(session, job_id)
        uri = JobLayout(job.output_uri, job.name).output_manifest
        try:
            on_disk = storage.read_bytes(uri)
        except (OSError, KeyError):
            return False
        expected = "".join(text + "\n" for text in _manifest_texts(session, job, [0]))
    return on_disk == expected.encode("utf-8")


def write_output(db: Database, job_id: int, *, storage: Storage | None = None, full: bool = False) -> OutputStats:
    """Bring the job's output layout in line with the database (see the module doc)."""
    storage = storage or Storage()
    written: list[dict[str, int]] = []
    with db.read() as session:
        job = _job(session, job_id)
        layout = JobLayout(job.output_uri, job.name)
        last_id = 0
        while True:  # keyset pages: memory stays at CHUNK objects whatever the job's size
            stmt = (select(DataObject).where(DataObject.job_id == job_id, DataObject.id > last_id)
                    .order_by(DataObject.id).limit(CHUNK))
            if not full:
                stmt = stmt.where(DataObject.written_revision < DataObject.revision)
            chunk = list(session.scalars(stmt))
            if not chunk:
                break
            _write_object_files(session, storage, layout, job, chunk)
            written.extend({"oid": o.id, "rev": o.revision} for o in chunk)
            last_id = chunk[-1].id
            session.expunge_all()
    with db.read(stream=True) as session:
        job = _job(session, job_id)
        labeled = [0]
        lines = write_manifest(storage, layout.output_manifest, _manifest_texts(session, job, labeled))
    if written:
        table = DataObject.__table__
        mark = (table.update().where(table.c.id == bindparam("oid"), table.c.written_revision < bindparam("rev"))
                .values(written_revision=bindparam("rev")))
        with db.write() as session:
            session.execute(mark, written)
    return OutputStats(lines, labeled[0], len(written), layout.output_manifest)
