"""A Ground Truth custom labeling job emulated on this machine (`gtkit local-job run`), on the
service's own code (toolkit.service: one implementation of a labeling job) in a throwaway SQLite
database:

1. the job's output folder is imported in place (toolkit.service.gt_import; a new job's folder
   starts as the input manifest copied to `manifests/output/output.manifest`): every manifest line
   goes through the pre-annotation handler (toolkit.labeling.pre_annotation), whose `taskInput`
   becomes the task's Liquid `task.input`; objects it declines are not labeled; answers and labels
   already on disk count;
2. the local worker portal (toolkit/service/portal) serves each task to N distinct workers (the
   name a worker enters in the portal is their `workerId`, an account of the job's team). Opening
   a task holds one of its N places (toolkit.service.work.hold) until the worker submits, releases
   it, opens another task, or the task time limit passes (Ground Truth's `TaskTimeLimitInSeconds`),
   so two people never label the same place; every submit is one transaction (work.submit);
3. when an object has N answers the queue (toolkit.service.runner) consolidates it with the
   post-annotation handler (toolkit.labeling.post_annotation) and write_output
   (toolkit.service.output) writes its worker-response files, consolidation request/response and
   `manifests/output/output.manifest`: every input line in order, labeled ones with `<attr>` and
   `<attr>-metadata` added.

The output folder is the job's state, so a stopped job resumes where it stopped. Held places are
not state: the database is thrown away, and a restart frees them.
"""


from __future__ import annotations

import json
import logging
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select

from toolkit.contract import LabelSchema
from toolkit.contract.output_manifest import manifest_text
from toolkit.labeling import post_annotation, pre_annotation
from toolkit.labeling.output_layout import JobLayout, write_manifest
from toolkit.service.errors import LocalJobError
from toolkit.service.portal.tasks import (
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_OPEN,
    SubmissionRejected,
    TaskSummary,
)
from toolkit.service.tables import Answer, DataObject, Hold, User
from toolkit.storage import Storage, is_s3
from toolkit.task.task_input import ManifestError, iter_data_objects

if TYPE_CHECKING:
    from toolkit.service.simulate import Correction

log = logging.getLogger(__name__)

DEFAULT_LABEL_ATTRIBUTE = "segments"
LOCAL_ACCOUNT = "000000000000"
DEFAULT_TASK_TIME_LIMIT = 3600  # seconds, the default of `gtkit job create` (TaskTimeLimitInSeconds)
TASK_TIME_LIMIT_RANGE = (30, 28_800)  # Ground Truth's bounds for custom tasks


# -- the real Lambda handlers, run in process ---------------------------------------------------------
_QUIET = threading.Lock()
_quieted = False


def quiet_lambda_logs() -> None:
    """Keep stdout clean for the CLI: the Lambdas' JSON logs go to stderr, warnings and up (once)."""
    global _quieted
    with _QUIET:
        if not _quieted:
            for module in (pre_annotation, post_annotation):
                module.logger.registered_handler.setStream(sys.stderr)
                module.logger.setLevel("WARNING")
            _quieted = True


# -- the job ------------------------------------------------------------------------------------------
LOCAL_TEAM = "local-job"
SIMULATED_WORKER = "sim-worker-{}"


def _close(db: Any, folder: tempfile.TemporaryDirectory) -> None:
    db.dispose()
    folder.cleanup()


class JobSource:
    """A local labeling job; also the portal's `TaskSource` (see toolkit/service/portal/tasks.py):
    a thin adapter that maps task ids (datasetObjectId) and worker names onto the service's objects
    and accounts and words the service's refusals for the portal.

    `clock` (seconds, monotonic) drives the database's clock from the moment the job starts, so
    tests move time; `db_clock` replaces it (the simulated workers' clock)."""

    def __init__(self, manifest: str | Path, schema: LabelSchema, *, workers: int, out: str | Path,
                 job_name: str | None = None, label_attribute: str = DEFAULT_LABEL_ATTRIBUTE,
                 storage: Storage | None = None, task_time_limit: int = DEFAULT_TASK_TIME_LIMIT,
                 clock: Callable[[], float] = time.monotonic, db_clock: Callable[[], datetime] | None = None,
                 max_answer_bytes: int | None = None) -> None:
        from toolkit.service import migrate
        from toolkit.service.db import Database, utcnow

        if not 1 <= workers <= 9:
            raise LocalJobError("--workers must be between 1 and 9 (Ground Truth's range)")
        low, high = TASK_TIME_LIMIT_RANGE
        if not low <= task_time_limit <= high:
            raise LocalJobError(f"--task-time-limit must be between {low} and {high} seconds (Ground Truth's range)")
        if label_attribute.endswith(("-metadata", "-ref")):
            raise LocalJobError("--label-attribute must not end with -metadata or -ref")
        if is_s3(str(out)):
            raise LocalJobError("a local job writes to a local directory; --out must not be s3://")
        self.schema = schema
        self.storage = storage or Storage()
        self.workers = workers
        self.out = str(out)
        self.manifest = str(manifest)
        self.job_name = job_name or f"local-{schema.name}"
        self.label_attribute = label_attribute
        self.layout = JobLayout(self.out, self.job_name)
        self.completed = threading.Event()
        self.task_time_limit = task_time_limit
        self.max_answer_bytes = max_answer_bytes
        self._excluded: dict[str, str] = {}  # unreadable worker-response file -> why (reported, not counted)
        self._users: dict[str, int] = {}  # worker name -> account id
        self._queue_lock = threading.Lock()
        quiet_lambda_logs()
        lines = self._read_manifest()
        if db_clock is None:
            started, wall = clock(), utcnow()

            def db_clock() -> datetime:  # no reference to self: the finalizer below must not keep it alive
                return wall + timedelta(seconds=clock() - started)

        folder = tempfile.TemporaryDirectory(prefix="gtkit-local-job-")
        self.db = Database.for_data_dir(folder.name, clock=db_clock)
        self._finalizer = weakref.finalize(self, _close, self.db, folder)
        try:
            migrate.upgrade(self.db)
            self._open(lines)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Drop the throwaway database (also done when the object is collected)."""
        self._finalizer()

    # -- setup -----------------------------------------------------------------------------------
    def _read_manifest(self) -> list[dict[str, Any]]:
        try:
            lines = [line for _object_id, _number, line in iter_data_objects(self.manifest, self.storage)]
        except ManifestError as exc:
            raise LocalJobError(str(exc)) from None
        if not lines:
            raise LocalJobError(f"{self.manifest}: no data objects (the manifest is empty)")
        return lines

    def _check_output_manifest(self, lines: list[dict[str, Any]]) -> None:
        """A new job's folder starts as its input manifest; a resumed one must hold the same lines
        (its labels aside), or the answers on disk would land on other objects."""
        uri = self.layout.output_manifest
        if not Path(uri).is_file():
            write_manifest(self.storage, uri, (manifest_text(line) for line in lines))
            return
        extra = (self.label_attribute, f"{self.label_attribute}-metadata")
        count = 0
        try:
            for number, text in self.storage.iter_lines(uri):
                if not text.strip():
                    continue
                line = json.loads(text)
                if isinstance(line, dict):
                    line = {k: v for k, v in line.items() if k not in extra}
                if count < len(lines) and line != lines[count]:
                    raise LocalJobError(f"{uri} line {number}: not the line {count + 1} of {self.manifest}; this "
                                        "folder holds a job of another manifest (use another --out or --job-name)")
                count += 1
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, LocalJobError):
                raise
            raise LocalJobError(f"{uri}: unreadable output manifest ({type(exc).__name__})") from None
        if count != len(lines):
            raise LocalJobError(f"{uri}: {count} lines, {self.manifest} has {len(lines)}; this folder holds "
                                "a job of another manifest (use another --out or --job-name)")

    def _open(self, lines: list[dict[str, Any]]) -> None:
        from toolkit.service import people
        from toolkit.service.errors import Invalid
        from toolkit.service.gt_import import import_gt_output
        from toolkit.service.jobs import AVAILABILITY_RANGE

        self._check_output_manifest(lines)
        self.team_id = people.create_team(self.db, LOCAL_TEAM).id
        try:
            self.job_id = import_gt_output(
                self.db, self.layout.root, name=self.job_name, schema=self.schema, team_id=self.team_id,
                output_uri=self.out, workers_per_object=self.workers, label_attribute=self.label_attribute,
                task_time_limit_s=self.task_time_limit, availability_s=AVAILABILITY_RANGE[1],
                storage=self.storage, unreadable=self._unreadable, in_place=True).job.id
        except Invalid as exc:
            raise LocalJobError(str(exc)) from None
        with self.db.read() as session:
            rows = session.execute(select(DataObject.dataset_object_id, DataObject.id, DataObject.line_json,
                                          DataObject.task_input_json)
                                   .where(DataObject.job_id == self.job_id).order_by(DataObject.position)).all()
        self._ids = {task_id: object_id for task_id, object_id, _line, _input in rows}
        self._task_ids = {object_id: task_id for task_id, object_id in self._ids.items()}
        self._meta: dict[int, tuple[str | None, str | None]] = {}  # object id -> interaction id, media type
        for _task_id, object_id, line_json, input_json in rows:
            given = json.loads(input_json or line_json)
            self._meta[object_id] = (given.get("interaction-id") if isinstance(given, dict) else None,
                                     given.get("media-type") if input_json and isinstance(given, dict) else None)
        self._skip_current_output()
        self.work_queue()

    def _skip_current_output(self) -> None:
        """The import queues a rewrite of the output; when nothing is to consolidate or write and
        the manifest on disk is what it would write, leave the files alone."""
        from toolkit.service.output import manifest_current
        from toolkit.service.tables import WorkItem

        with self.db.read() as session:
            stale = session.scalar(select(func.count()).select_from(DataObject).where(
                DataObject.job_id == self.job_id, DataObject.written_revision < DataObject.revision))
            kinds = set(session.scalars(select(WorkItem.kind).where(WorkItem.job_id == self.job_id)))
        if stale or kinds - {"write_output"} or not manifest_current(self.db, self.job_id, storage=self.storage):
            return
        with self.db.write() as session:
            session.execute(delete(WorkItem).where(WorkItem.job_id == self.job_id, WorkItem.kind == "write_output"))

    def _unreadable(self, uri: str, exc: ValueError) -> None:
        """An unreadable worker-response file is reported once and left out (on disk, untouched),
        so one bad file never stops the job or the task's consolidation."""
        if uri not in self._excluded:
            self._excluded[uri] = str(exc)
            path = PurePath(uri)
            log.warning("worker response %s/%s excluded: %s", path.parent.name, path.name, exc)

    def work_queue(self) -> None:
        """Consolidate what is due and write the output (in the caller's thread, one at a time)."""
        from toolkit.service import runner

        with self._queue_lock:
            stats = runner.run_queue(self.db, storage=self.storage)
        if stats.failed or stats.retried:
            raise LocalJobError(f"job {self.job_name}: {stats.failed + stats.retried} consolidation(s) failed "
                                "(see the log above)")
        with self.db.read() as session:
            working = session.scalar(select(func.count()).select_from(DataObject).where(
                DataObject.job_id == self.job_id, DataObject.state.in_(("open", "answered"))))
        if not working:
            self.completed.set()

    # -- TaskSource --------------------------------------------------------------------------------
    def _user(self, worker_id: str) -> int:
        from toolkit.service import people

        user_id = self._users.get(worker_id)
        if user_id is None:
            user_id = self._users[worker_id] = people.named_workers(self.db, self.team_id, [worker_id])[0]
        return user_id

    def _object(self, task_id: str) -> DataObject:
        object_id = self._ids[task_id]  # KeyError: no such task
        with self.db.read() as session:
            obj = session.get(DataObject, object_id)
        assert obj is not None
        if obj.task_input_json is None:
            raise SubmissionRejected(f"task {task_id} cannot be labeled: {obj.reason}")
        return obj

    def list_tasks(self) -> list[TaskSummary]:
        now = self.db.now()
        with self.db.read() as session:
            objects = session.execute(select(DataObject.id, DataObject.dataset_object_id, DataObject.state,
                                             DataObject.reason, DataObject.answers_count)
                                      .where(DataObject.job_id == self.job_id).order_by(DataObject.position)).all()
            answered: dict[int, set[str]] = {}
            for object_id, worker_id in session.execute(
                    select(Answer.object_id, User.worker_id).join(User, User.id == Answer.user_id)
                    .join(DataObject, DataObject.id == Answer.object_id).where(DataObject.job_id == self.job_id)):
                answered.setdefault(object_id, set()).add(worker_id)
            holding: dict[int, set[str]] = {}
            for object_id, worker_id in session.execute(
                    select(Hold.object_id, User.worker_id).join(User, User.id == Hold.user_id)
                    .join(DataObject, DataObject.id == Hold.object_id)
                    .where(DataObject.job_id == self.job_id, Hold.expires_at > now)):
                holding.setdefault(object_id, set()).add(worker_id)
        out = []
        for object_id, task_id, state, reason, answers in objects:
            if state in ("declined", "failed"):
                status = STATUS_FAILED
            elif state != "open" or answers >= self.workers:
                status = STATUS_COMPLETE
            else:
                status = STATUS_OPEN
            interaction_id, media_type = self._meta[object_id]
            out.append(TaskSummary(
                task_id=task_id, interaction_id=interaction_id, responses=answers, status=status,
                wanted=self.workers, responded_by=frozenset(answered.get(object_id, ())), media_type=media_type,
                reason=reason, in_progress_by=frozenset(holding.get(object_id, ()) if status == STATUS_OPEN else ())))
        return out

    def task_input(self, task_id: str) -> dict[str, Any]:
        return json.loads(self._object(task_id).task_input_json or "")

    def data_object(self, task_id: str) -> dict[str, Any]:
        """The manifest line itself (with what the task input hides, e.g. comparison system ids):
        for simulated workers, who stand in for listeners that hear which system is better."""
        return json.loads(self._object(task_id).line_json)

    def _refusal(self, task_id: str, worker_id: str, *, opening: bool) -> str:
        """Why the service refused this worker the task, in the portal's words."""
        object_id, user_id, now = self._ids[task_id], self._user(worker_id), self.db.now()
        with self.db.read() as session:
            obj = session.get(DataObject, object_id)
            assert obj is not None
            mine = session.get(Hold, (object_id, user_id))
            answered = session.scalar(select(Answer.id).where(Answer.object_id == object_id,
                                                              Answer.user_id == user_id)) is not None
            others = session.scalar(select(func.count()).select_from(Hold).where(
                Hold.object_id == object_id, Hold.user_id != user_id, Hold.expires_at > now)) or 0
        if answered:
            return (f"you already answered task {task_id}; each task goes to distinct workers" if opening else
                    f"worker {worker_id} already answered task {task_id}; each task goes to distinct workers")
        if obj.state != "open" or obj.answers_count >= self.workers:
            return f"task {task_id} already has its {self.workers} responses"
        if opening:
            return (f"task {task_id} is being labeled by {others} other worker(s), which takes all its places "
                    f"still open; it reopens when one of them releases it or their time limit "
                    f"({self.task_time_limit} s) passes")
        if mine is not None:  # their hold lapsed (holds are rows; an expired one stays until replaced)
            return (f"your time limit for task {task_id} ({self.task_time_limit} s) passed and other workers "
                    "hold its remaining places; your answer is kept in this browser, but the task cannot take it")
        # They never held a place (submitted without opening the task here, e.g. another tab).
        return (f"task {task_id} is being labeled by other workers, who hold all its remaining places; "
                "your answer is kept in this browser, but the task cannot take it")

    def accept(self, task_id: str, worker_id: str) -> None:
        """The worker opens the task: hold one of its places for them (work.hold). Reopening keeps
        the original deadline; opening another task gives this one back (one hold per worker)."""
        from toolkit.service import work
        from toolkit.service.errors import Refused

        self._object(task_id)
        try:
            work.hold(self.db, self._user(worker_id), self._ids[task_id])
        except Refused:
            raise SubmissionRejected(self._refusal(task_id, worker_id, opening=True)) from None

    def release(self, task_id: str, worker_id: str) -> None:
        """The worker gives the task back (Ground Truth's "Release task") without answering."""
        from toolkit.service import work

        if task_id in self._ids:
            work.release(self.db, self._user(worker_id), self._ids[task_id])

    def next_task_for(self, worker_id: str) -> str | None:
        """Their task in progress first (a worker who left /task/N comes back to it), else the
        first task with a free place they have not answered (work.peek: nothing is held)."""
        from toolkit.service import work

        object_id = work.peek(self.db, self._user(worker_id))
        return None if object_id is None else self._task_ids[object_id]

    def submit(self, task_id: str, worker_id: str, answer_content: dict[str, Any],
               accepted_at: datetime, submitted_at: datetime) -> None:
        """One transaction (work.submit); the queue then consolidates a complete task and writes
        the output before the portal answers. The submission time is the database clock's."""
        from toolkit.service import work
        from toolkit.service.errors import Refused, SubmissionInvalid

        if task_id not in self._ids:
            raise SubmissionRejected(f"unknown task {task_id!r}")
        self._object(task_id)
        limit = {} if self.max_answer_bytes is None else {"max_bytes": self.max_answer_bytes}
        try:
            result = work.submit(self.db, self._user(worker_id), self._ids[task_id], answer_content,
                                 accepted_at=accepted_at, **limit)
        except Refused:
            raise SubmissionRejected(self._refusal(task_id, worker_id, opening=False)) from None
        except SubmissionInvalid as exc:
            raise SubmissionRejected(f"answer refused: {exc} ({'; '.join(exc.problems[:5])})") from None
        if result.duplicate:
            raise SubmissionRejected(self._refusal(task_id, worker_id, opening=False))
        log.info("task %s: response %d of %d saved", task_id, result.answers_count, self.workers)
        self.work_queue()

    # -- reporting ----------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self.db.read() as session:
            states = session.execute(select(DataObject.state, DataObject.reason)
                                     .where(DataObject.job_id == self.job_id).order_by(DataObject.position)).all()
            responses = session.scalar(select(func.count()).select_from(Answer).join(
                DataObject, DataObject.id == Answer.object_id).where(DataObject.job_id == self.job_id)) or 0
        return {
            "job_name": self.job_name,
            "objects": len(states),
            "labeled": sum(state == "consolidated" for state, _ in states),
            "skipped": sum(state == "declined" for state, _ in states),
            "waiting": sum(state not in ("consolidated", "declined") for state, _ in states),
            "responses": responses,
            "output_manifest": self.layout.output_manifest,
            "skipped_reasons": [reason for state, reason in states if state == "declined"],
            "excluded_responses": [{"file": f, "reason": r} for f, r in self._excluded.items()],
        }


def _simulate(source: JobSource, clock: Any, *, corrections: list[Correction] | None,
              max_submission_bytes: int | None) -> None:
    """Simulated workers finish the job: one account per simulated worker (`sim-worker-N`)
    claims and submits (work.claim / work.submit) on the simulated clock, and the queue
    consolidates and writes the output after each answer, as a served job does."""
    from toolkit.service import people
    from toolkit.service.simulate import simulate_service

    users = people.named_workers(source.db, source.team_id,
                                 [SIMULATED_WORKER.format(i + 1) for i in range(source.workers)])
    simulate_service(source.db, clock, users, source.schema, storage=source.storage, corrections=corrections,
                     max_bytes=max_submission_bytes, after_submit=source.work_queue)
    source.work_queue()


def run_local_job(
    manifest: str | Path,
    schema: LabelSchema,
    *,
    workers: int,
    out: str | Path,
    job_name: str | None = None,
    label_attribute: str = DEFAULT_LABEL_ATTRIBUTE,
    storage: Storage | None = None,
    port: int = 8080,
    simulate_workers: bool = False,
    on_ready: Callable[[str], None] | None = None,
    poll_seconds: float = 0.5,
    linger_seconds: float = 3.0,
    task_time_limit: int = DEFAULT_TASK_TIME_LIMIT,
    host: str = "127.0.0.1",
    access_token: str | None = None,
    max_submission_bytes: int | None = None,
    corrections: list[Correction] | None = None,
) -> JobSource:
    """Run the job to completion: simulated, or serving the portal until every task is labeled.

    On a non-loopback `host` (a team on a LAN) every request needs `access_token`, generated when
    not given; `on_ready` then receives the link that carries it. `max_submission_bytes` caps a
    submission's size (default: the portal's, DEFAULT_MAX_SUBMISSION_BYTES). `corrections` are the
    known transcription errors simulated workers fix (toolkit.service.simulate.load_corrections)."""
    options: dict[str, Any] = {"workers": workers, "out": out, "job_name": job_name,
                               "label_attribute": label_attribute, "storage": storage,
                               "task_time_limit": task_time_limit}
    if simulate_workers:
        from toolkit.service.simulate import SimulatedClock

        clock = SimulatedClock()
        source = JobSource(manifest, schema, db_clock=clock, **options)
        if not source.completed.is_set():
            _simulate(source, clock, corrections=corrections, max_submission_bytes=max_submission_bytes)
        return source
    from toolkit.service.portal.app import DEFAULT_MAX_SUBMISSION_BYTES

    source = JobSource(manifest, schema, max_answer_bytes=max_submission_bytes or DEFAULT_MAX_SUBMISSION_BYTES,
                       **options)
    if source.completed.is_set():
        return source
    from toolkit.service.portal.access import is_loopback, new_token, portal_link, require_token
    from toolkit.service.portal.app import PortalServer, create_app

    if access_token is None and not is_loopback(host):
        access_token = new_token()
    app = create_app(source, max_submission_bytes=max_submission_bytes)
    if access_token is not None:
        require_token(app, access_token)
    with PortalServer(app, port=port, host=host) as server:
        if on_ready:
            on_ready(portal_link(host, server.port, access_token))
        while not source.completed.wait(poll_seconds):
            pass
        # Let the last worker's browser load its "submitted" page before the portal goes away.
        time.sleep(linger_seconds)
    return source
