"""Review rounds on the service (docs/review.md): a review job made from a labeling job, and what a
reviewer's reject does to the labeling job.

- `create_review_job`: the labeling job's consolidated objects (all, those below an agreement, or a
  seeded random sample), each as the labeling job's output line + `review`
  (toolkit.labeling.review.review_task_line), through the real pre-annotation handler like any line.
  Only users with the reviewer role take its tasks (toolkit.service.work), never on an object they
  labeled themselves.
- Its consolidation is the real post-annotation handler in review mode; the prior labels it reads
  (`<job>/gtkit-review/priors/...`) are served from the database (`priors_text`).
- `reopen_rejected`: a rejected object goes back to the annotators as the next iteration, its line
  carrying `review-note`; the earlier answers stay (iteration-1/ in the output layout) and the old
  label is superseded (the object has no label until it is labeled and consolidated again).
- `review_again`: once that object is consolidated again, the review job that rejected it gets a
  review task for the new iteration, so the round ends only when a reviewer accepts or edits.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from toolkit.contract.base import dump
from toolkit.contract.consolidated import ConsolidatedLabel
from toolkit.contract.output_manifest import output_line
from toolkit.contract.review import (
    REVIEW_NOTE_KEY,
    REVIEW_REF_KEY,
    REVIEW_SIDECAR_SUFFIX,
    ReviewNote,
    ReviewPrior,
    ReviewPriors,
)
from toolkit.labeling.review import PRIORS_DIR, fit_review_line, priors_name, review_task_line
from toolkit.service import queue
from toolkit.service.audit import record
from toolkit.service.db import Database
from toolkit.service.errors import Invalid, NotFound, Refused
from toolkit.service.jobs import (
    DEFAULT_AVAILABILITY_S,
    JobInfo,
    PreparedLine,
    _insert_batch,
    check_options,
    job_arn,
    new_job,
    prepare_line,
    refresh_status,
)
from toolkit.service.local_job import DEFAULT_TASK_TIME_LIMIT
from toolkit.service.tables import Consolidation, DataObject, Job
from toolkit.storage import Storage, join_uri

REVIEW_SUFFIX = "-review"
SIDECARS_DIR = ("gtkit-review", "sidecars")  # under <output>/<review job>/: `review` too big for its line


def select_objects(rows: list[tuple[int, float | None]], *, below_agreement: float | None = None,
                   sample_pct: float | None = None, seed: int = 0) -> list[int]:
    """Which objects (id, overall agreement) to review: all; those below `below_agreement` (or with no
    agreement); or `sample_pct` % of them, a seeded sample (same seed, same objects)."""
    if below_agreement is not None and sample_pct is not None:
        raise Invalid("give --below-agreement or --sample, not both")
    ids = [object_id for object_id, _ in rows]
    if below_agreement is not None:
        return [object_id for object_id, agreement in rows if agreement is None or agreement < below_agreement]
    if sample_pct is not None:
        if not 0 < sample_pct <= 100:
            raise Invalid("--sample is a percentage between 0 and 100")
        count = max(1, round(len(ids) * sample_pct / 100)) if ids else 0
        return sorted(random.Random(seed).sample(ids, count))
    return ids


def create_review_job(db: Database, of_job: int, *, name: str | None = None, below_agreement: float | None = None,
                      sample_pct: float | None = None, seed: int = 0, team_id: int | None = None,
                      workers_per_object: int = 1, task_time_limit_s: int = DEFAULT_TASK_TIME_LIMIT,
                      availability_s: int = DEFAULT_AVAILABILITY_S, priority: int = 0,
                      label_attribute: str | None = None, output_uri: str | None = None,
                      actor_id: int | None = None, storage: Storage | None = None) -> JobInfo:
    """A review job of labeling job `of_job` (see the module doc). Refused when nothing is selected."""
    with db.read() as session:
        prior = session.get(Job, of_job)
        if prior is None:
            raise NotFound(f"no job {of_job}")
        if prior.kind == "review":
            raise Refused(f"job {of_job} is a review job; review its labeling job")
        rows = session.execute(
            select(DataObject.id, Consolidation.agreement).join(Consolidation, Consolidation.object_id == DataObject.id)
            .where(DataObject.job_id == of_job, DataObject.state == "consolidated", Consolidation.status == "ok")
            .order_by(DataObject.position)).all()
        chosen = set(select_objects([(r[0], r[1]) for r in rows], below_agreement=below_agreement,
                                    sample_pct=sample_pct, seed=seed))
        objects = [session.get(DataObject, object_id) for object_id, _ in rows if object_id in chosen]
        labels = {c.object_id: c.label_json for c in session.scalars(
            select(Consolidation).where(Consolidation.object_id.in_([o.id for o in objects])))}
        prior_info = JobInfo.of(prior)
        schema_text = prior.schema_yaml
        lines = [(o.id, o.iteration, json.loads(o.line_json), json.loads(labels[o.id])) for o in objects]
    if not lines:
        raise Invalid(f"job {prior_info.name}: no consolidated object to review with these options")
    name = name or f"{prior_info.name[:63 - len(REVIEW_SUFFIX)]}{REVIEW_SUFFIX}"
    attribute = label_attribute or f"{prior_info.label_attribute[:127 - len(REVIEW_SUFFIX)]}{REVIEW_SUFFIX}"
    if attribute == prior_info.label_attribute:
        raise Invalid("a review job needs its own label attribute")
    check_options(name, attribute, workers_per_object, task_time_limit_s, availability_s)
    with db.read() as session:  # before any sidecar is written (new_job checks again, in its transaction)
        if session.scalar(select(Job.id).where(func.lower(Job.name) == name.lower())) is not None:
            raise Refused(f"a job named {name!r} exists (names are unique, ignoring case)")
    arn = job_arn(name)
    output_uri = output_uri or prior_info.output_uri
    sidecars = sidecar_prefix(output_uri, name)
    prepared, review_of = [], []
    for number, (object_id, iteration, line, label) in enumerate(lines, start=1):
        prepared.append(_review_line(prior_info, line, label, iteration, number, arn,
                                     storage=storage or Storage(), sidecars=sidecars))
        review_of.append(object_id)
    now = db.now()
    with db.write() as session:
        job = new_job(session, now, name=name, schema_text=schema_text, team_id=team_id or prior_info.team_id,
                      output_uri=output_uri, workers_per_object=workers_per_object,
                      task_time_limit_s=task_time_limit_s, availability_s=availability_s, priority=priority,
                      label_attribute=attribute, actor_id=actor_id, kind="review", review_of=of_job)
        _insert_batch(session, now, job, prepared, keep_repeats=True, review_of=review_of)
        record(session, now, actor_id, "job.create_review", f"job:{job.id}", of_job=of_job, objects=len(prepared))
        refresh_status(session, job.id)
        return JobInfo.of(job)


def sidecar_prefix(output_uri: str, job_name: str) -> str:
    """Where a review job's `review` sidecars go: `<output>/<review job>/gtkit-review/sidecars/`."""
    return join_uri(output_uri, job_name, *SIDECARS_DIR)


def _review_line(prior: JobInfo, line: dict[str, Any], label: dict[str, Any], iteration: int, number: int,
                 arn: str, *, storage: Storage, sidecars: str) -> PreparedLine:
    """The review task of one labeled object, through the real pre-annotation handler. Ground
    Truth's limits hold as for `gtkit job create --review-of` (toolkit.labeling.review.fit_review_line):
    a `review` too big for the line is written to a sidecar under `sidecars` and the line carries
    `review-ref`, which the review page downloads through its signed media link."""
    prior_line = output_line(line, prior.label_attribute, label, prior.name)
    review_line = review_task_line(prior_line, prior.label_attribute, of_job=prior.name, iteration=iteration)
    try:
        review_line, moved, _notes = fit_review_line(review_line, prior.label_attribute)
    except ValueError as exc:
        raise Invalid(f"job {prior.name}, object {line.get('interaction-id') or number}: {exc}") from None
    if moved is not None:
        key = hashlib.sha256(f"{number}:{iteration}:{line.get('source-ref')}".encode()).hexdigest()[:16]
        ref = join_uri(sidecars, f"{number:06d}-{key}{REVIEW_SIDECAR_SUFFIX}")
        storage.write_json(ref, moved)
        review_line[REVIEW_REF_KEY] = ref
    return prepare_line(review_line, number, arn)


def review_again(session: Session, now: datetime, labeled: DataObject, label: dict[str, Any] | None,
                 storage: Storage | None = None) -> bool:
    """After a reopened object is labeled and consolidated again (iteration N+1), the review job that
    rejected it gets a review task for the new label, so the round goes on until a reviewer accepts
    or edits it (inside the consolidation's transaction). Returns whether one was added."""
    if labeled.iteration < 2 or not isinstance(label, dict) or label.get("status") != "ok":
        return False
    reviews = session.scalars(select(DataObject).where(DataObject.review_of == labeled.id)
                              .order_by(DataObject.id)).all()
    if not reviews or any(_reviewed_iteration(r) == labeled.iteration for r in reviews):
        return False
    last = reviews[-1]
    done = session.get(Consolidation, last.id)
    decision = json.loads(done.label_json).get("decision") if done is not None and done.label_json else None
    if decision != "reject":
        return False
    review_job = session.get(Job, last.job_id)
    prior_job = session.get(Job, labeled.job_id)
    assert review_job is not None and prior_job is not None
    if review_job.status == "cancelled":  # the admin ended the review: the new label stands unreviewed
        return False
    position = session.scalar(select(func.max(DataObject.position)).where(DataObject.job_id == review_job.id)) or 0
    prepared = _review_line(JobInfo.of(prior_job), json.loads(labeled.line_json), label, labeled.iteration,
                            position + 2, job_arn(review_job.name), storage=storage or Storage(),
                            sidecars=sidecar_prefix(review_job.output_uri, review_job.name))
    _insert_batch(session, now, review_job, [prepared], keep_repeats=True, review_of=[labeled.id])
    record(session, now, None, "object.review_again", f"object:{labeled.id}", job=review_job.id,
           iteration=labeled.iteration)
    refresh_status(session, review_job.id)
    return True


# -- consolidation: the priors the post-annotation handler reads ----------------------------------
def priors_uri(job_root: str, source_ref: str) -> str:
    return join_uri(job_root, *PRIORS_DIR, priors_name(source_ref))


def priors_text(session: Session, review_object: DataObject) -> str | None:
    """The ReviewPriors JSON of a review object's labeling object (None: it has no usable label)."""
    if review_object.review_of is None:
        return None
    labeled = session.get(DataObject, review_object.review_of)
    done = session.get(Consolidation, review_object.review_of) if labeled is not None else None
    prior_job = session.get(Job, labeled.job_id) if labeled is not None else None
    if labeled is None or done is None or done.label_json is None or prior_job is None:
        return None
    line = json.loads(labeled.line_json)
    label = ConsolidatedLabel.model_validate(json.loads(done.label_json)).model_copy(update={"workers": []})
    priors = ReviewPriors(source_ref=str(line.get("source-ref")), priors=[ReviewPrior(
        interaction_id=line.get("interaction-id"), of_job=prior_job.name,
        label_attribute=prior_job.label_attribute, label=label)])
    return json.dumps(dump(priors), ensure_ascii=False, separators=(",", ":"))


# -- a reject sends the object back ---------------------------------------------------------------------
def reopen_rejected(session: Session, db: Database, now: datetime, review_object: DataObject,
                    reviewed: dict[str, Any], actor_id: int | None = None) -> bool:
    """Reopen the labeling object of a rejected review (inside the review's consolidation transaction).
    Only the iteration that was reviewed is reopened, so consolidating the review again changes
    nothing. Returns whether it reopened."""
    if reviewed.get("decision") != "reject" or review_object.review_of is None:
        return False
    target = session.scalar(db.lock(select(DataObject).where(DataObject.id == review_object.review_of))
                            .execution_options(populate_existing=True))
    if target is None or target.state != "consolidated":
        return False
    reviewed_iteration = _reviewed_iteration(review_object)
    if reviewed_iteration is not None and reviewed_iteration != target.iteration:
        return False
    job = session.get(Job, target.job_id)
    assert job is not None
    line = json.loads(target.line_json)
    target.iteration += 1
    note = (reviewed.get("note") or "").strip() or "rejected in review"
    line[REVIEW_NOTE_KEY] = dump(ReviewNote(note=note[:2000], iteration=target.iteration))
    prepared = prepare_line(line, target.position + 1, job_arn(job.name))
    target.line_json = prepared.line_text
    target.task_input_json = prepared.task_input_text
    target.state = "open" if prepared.task_input_text is not None else "declined"
    target.answers_count = 0
    target.available_until = now + timedelta(seconds=job.availability_s)
    target.revision += 1
    done = session.get(Consolidation, target.id)
    if done is not None:
        session.delete(done)  # superseded: the next iteration's answers make the label
    if job.status == "done":
        job.status = "active"
    queue.enqueue(session, now, queue.WRITE_OUTPUT, job.id)
    record(session, now, actor_id, "object.reopen", f"object:{target.id}", job=job.id, iteration=target.iteration,
           review_object=review_object.id)
    return True


def _reviewed_iteration(review_object: DataObject) -> int | None:
    review = json.loads(review_object.line_json).get("review")
    value = review.get("iteration") if isinstance(review, dict) else None
    return value if isinstance(value, int) else None


def review_counts(db: Database, job_id: int) -> dict[str, int]:
    """Decisions of a review job's consolidated objects."""
    with db.read() as session:
        labels = session.scalars(select(Consolidation.label_json)
                                 .join(DataObject, DataObject.id == Consolidation.object_id)
                                 .where(DataObject.job_id == job_id))
        out: dict[str, int] = {}
        for text in labels:
            decision = json.loads(text).get("decision") if text else None
            out[str(decision)] = out.get(str(decision), 0) + 1
        return out


__all__ = ["SIDECARS_DIR", "create_review_job", "priors_text", "priors_uri", "reopen_rejected", "review_again",
           "review_counts", "select_objects", "sidecar_prefix"]
