"""Consolidation of one object: its answers from the database through the real post-annotation
handler (toolkit.labeling.post_annotation, in process), the result stored in one transaction.

The handler gets the Ground Truth event it gets on AWS. Its `payload.s3Uri` names the
consolidation-request file of the output layout, and the injected `read_text` serves that payload
from memory (built from the answer rows by toolkit.service.output.consolidation_payload, the same
text write_output later puts in the file), so consolidation never waits for files. Invalid answers
are the handler's business: it marks them `valid: false` and consolidates the rest, or sets the
label's status to `error` when none is valid.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from toolkit.contract import consolidation as codec
from toolkit.labeling import post_annotation
from toolkit.labeling.output_layout import JobLayout
from toolkit.service import queue, review
from toolkit.service.db import Database
from toolkit.service.errors import NotFound
from toolkit.service.jobs import job_arn, load_schema, refresh_status
from toolkit.service.local_job import LOCAL_ACCOUNT, quiet_lambda_logs
from toolkit.service.output import consolidation_payload, json_text, load_answers
from toolkit.service.queue import ClaimedItem
from toolkit.service.tables import Consolidation, DataObject, Job
from toolkit.storage import Storage

ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/gtkit-serve"


def post_annotation_event(job: Job, request_uri: str) -> dict[str, Any]:
    schema = load_schema(job.schema_yaml)
    return codec.post_annotation_event(
        job_arn=job_arn(job.name), label_categories=[label for track in schema.tracks for label in track.labels],
        label_attribute=job.label_attribute, role_arn=ROLE_ARN, request_uri=request_uri)


def consolidate_object(db: Database, object_id: int, *, storage: Storage | None = None,
                       item: ClaimedItem | None = None) -> str:
    """Consolidate an object that has its answers; returns its new state. Running it again gives
    the same consolidation (the handler is deterministic in its answers). `item`: the queue row
    being worked, finished in the same transaction that stores the result."""
    storage = storage or Storage()
    with db.read() as session:
        obj = session.get(DataObject, object_id)
        if obj is None:
            raise NotFound(f"no object {object_id}")
        job = session.get(Job, obj.job_id)
        assert job is not None
        answers = load_answers(session, [object_id], current=True)[object_id]
        state = obj.state
        iteration = obj.iteration
        # A review object: the prior label the handler compares the reviews with, from the database.
        priors = review.priors_text(session, obj) if job.kind == "review" else None
    if state not in ("answered", "consolidated") or not answers:
        with db.write() as session:  # nothing to consolidate (yet): just drop the queue row
            if item is not None:
                queue.finish(session, item)
        return state
    layout = JobLayout(job.output_uri, job.name, iteration)
    request_uri = layout.consolidation_request(obj.dataset_object_id)
    payload = json_text(consolidation_payload(obj.dataset_object_id, json.loads(obj.line_json), answers))
    line = json.loads(obj.line_json)
    priors_uri = review.priors_uri(layout.root, str(line.get("source-ref"))) if priors is not None else None

    def read_text(uri: str) -> str:
        if uri == request_uri:
            return payload
        if priors_uri is not None and uri == priors_uri:
            return priors  # type: ignore[return-value]
        return storage.read_bytes(uri).decode("utf-8")

    quiet_lambda_logs()
    response = post_annotation.handle(post_annotation_event(job, request_uri), read_text=read_text,
                                      schema=load_schema(job.schema_yaml))
    label = codec.label_of(response, obj.dataset_object_id, job.label_attribute)
    agreement = (label.get("agreement") or {}).get("overall") if isinstance(label, dict) else None
    now = db.now()
    with db.write() as session:
        row = session.get(Consolidation, object_id) or Consolidation(object_id=object_id)
        row.response_json = json_text(response)
        row.label_json = json_text(label) if label is not None else None
        row.status = label.get("status") if isinstance(label, dict) else None
        row.agreement = agreement
        row.created_at = now
        session.add(row)
        target = session.scalar(db.lock(select(DataObject).where(DataObject.id == object_id)))
        target.state = "consolidated"
        target.revision += 1
        queue.enqueue(session, now, queue.WRITE_OUTPUT, job.id)
        if job.kind == "review" and isinstance(label, dict):
            review.reopen_rejected(session, db, now, target, label)
        elif iteration > 1:  # a label a reviewer rejected, made again: review it again
            review.review_again(session, now, target, label, storage)
        refresh_status(session, job.id)
        if item is not None:
            queue.finish(session, item)
    return "consolidated"
