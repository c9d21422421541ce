"""A Ground Truth custom labeling job emulated on this machine (`gtkit local-job run`).

The same steps as a real job, with the real Lambda code:

1. every manifest line goes through the pre-annotation handler (toolkit.labeling.pre_annotation), whose
   `taskInput` becomes the task's Liquid `task.input`; objects it declines are not labeled;
2. the local worker portal (toolkit/service/portal) serves each task to N distinct workers (the name a
   worker enters in the portal is their `workerId`) and stores each submission as a Ground Truth
   worker-response file. A worker who opens a task holds one of its N places until they submit,
   release it, or the task time limit passes (Ground Truth's `TaskTimeLimitInSeconds`), so two
   people never label the same place and one of them loses the work;
3. when an object has N responses, a consolidation request (payload file) is written and the
   post-annotation handler (toolkit.labeling.post_annotation) is invoked with a Ground Truth event whose
   `payload.s3Uri` points at it; its response is stored next to it;
4. `manifests/output/output.manifest` is rewritten: every input line in order, labeled ones with
   `<attr>` and `<attr>-metadata` added.

State lives only in the output directory, so a stopped job resumes where it stopped: responses on
disk count, consolidation responses on disk are not redone. Held places are not state: a restart
frees them.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.contract import LabelSchema, consolidation, worker_response
from toolkit.contract import pre_annotation as pre_codec
from toolkit.contract.events import WorkerResponse
from toolkit.contract.output_manifest import creation_date, manifest_text, output_line
from toolkit.contract.worker_response import UnreadableResponse
from toolkit.labeling import post_annotation, pre_annotation
from toolkit.labeling.output_layout import JobLayout, read_worker_response, write_manifest
from toolkit.service.errors import LocalJobError
from toolkit.service.portal.tasks import (
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_OPEN,
    SubmissionRejected,
    TaskSummary,
)
from toolkit.storage import Storage, is_s3
from toolkit.task.task_input import ManifestError, build_task_input, iter_data_objects

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
@dataclass
class _Object:
    """One data object. Its manifest line and task input are kept as compact JSON text and parsed
    when a task is served or consolidated: as dicts they took ~9x their JSON size (5,000 tasks of
    2.5 kB: 112 MB), and the line text is also its output-manifest line until it is labeled."""

    line_text: str
    task_input_text: str | None  # None: not labelable (the pre-annotation Lambda declined it)
    reason: str | None
    interaction_id: str | None = None
    media_type: str | None = None
    responses: list[str] = field(default_factory=list)  # worker ids, in submission order
    last_submission: str | None = None  # submissionTime of the newest response
    done: bool = False

    @classmethod
    def make(cls, line: dict[str, Any], task_input: dict[str, Any] | None, reason: str | None) -> _Object:
        return cls(manifest_text(line), None if task_input is None else manifest_text(task_input), reason,
                   interaction_id=(task_input or line).get("interaction-id"),
                   media_type=(task_input or {}).get("media-type"))

    @property
    def labelable(self) -> bool:
        return self.task_input_text is not None

    @property
    def line(self) -> dict[str, Any]:
        return json.loads(self.line_text)


class JobSource:
    """A local labeling job; also the portal's `TaskSource` (see toolkit/service/portal/tasks.py)."""

    def __init__(self, manifest: str | Path, schema: LabelSchema, *, workers: int, out: str | Path,
                 job_name: str | None = None, label_attribute: str = DEFAULT_LABEL_ATTRIBUTE,
                 storage: Storage | None = None, task_time_limit: int = DEFAULT_TASK_TIME_LIMIT,
                 clock: Callable[[], float] = time.monotonic) -> None:
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
        self.job_arn = f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:labeling-job/{self.job_name}"
        self.completed = threading.Event()
        self.task_time_limit = task_time_limit
        self._clock = clock
        self._lock = threading.RLock()
        self._objects: dict[str, _Object] = {}
        # task id -> {worker id: deadline on self._clock}: the places held by workers who opened it
        self._held: dict[str, dict[str, float]] = {}
        self._lapsed: dict[str, set[str]] = {}  # task id -> workers whose hold ran out (for the refusal)
        self._excluded: dict[str, str] = {}  # unreadable worker-response file -> why (reported, not counted)
        self._texts: dict[str, str] = {}  # labeled object id -> output-manifest line (see _output_text)
        quiet_lambda_logs()
        self._load_manifest()
        self._load_state()
        self._finish_pending()

    # -- setup -----------------------------------------------------------------------------------
    def _load_manifest(self) -> None:
        try:
            for object_id, number, line in iter_data_objects(self.manifest, self.storage):
                response = pre_codec.decode_response(pre_annotation.handle(pre_codec.event(self.job_arn, line)))
                if response.is_human_annotation_required:
                    self._objects[object_id] = _Object.make(line, response.task_input, None)
                else:  # the handler logged it; keep the why for the task list
                    self._objects[object_id] = _Object.make(line, None,
                                                            f"line {number}: {build_task_input(line)[1]}")
        except ManifestError as exc:
            raise LocalJobError(str(exc)) from None
        if not self._objects:
            raise LocalJobError(f"{self.manifest}: no data objects (the manifest is empty)")

    def _load_state(self) -> None:
        for object_id, obj in self._objects.items():
            folder = Path(self.layout.worker_response_dir(object_id))
            for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
                for answer in self._read_responses(path):
                    if answer.worker_id not in obj.responses:
                        obj.responses.append(answer.worker_id)
                    obj.last_submission = max(filter(None, [obj.last_submission, answer.submission_time]),
                                              default=None)
            obj.done = Path(self.layout.consolidation_response(object_id)).is_file()

    def _finish_pending(self) -> None:
        """Resume: consolidate objects that got all responses before the last run stopped."""
        changed = False
        for object_id, obj in self._objects.items():
            if not obj.done and obj.labelable and len(obj.responses) >= self.workers:
                self._consolidate(object_id)
                changed = True
        # Also when a run was killed between its last consolidation and the manifest rewrite: the
        # consolidation responses on disk are the truth, the manifest is derived from them.
        if changed or not self._output_manifest_current():
            self.write_output_manifest()
        self._check_complete()

    def _output_manifest_current(self) -> bool:
        try:
            on_disk = Path(self.layout.output_manifest).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        with self._lock:
            expected = "".join(self._output_text(object_id, obj) + "\n" for object_id, obj in self._objects.items())
        return on_disk == expected

    def _read_responses(self, path: Path) -> list[WorkerResponse]:
        """A worker-response file's answers; an unreadable one is reported once and left out (on
        disk, untouched), so one bad file never stops the job or the task's consolidation."""
        try:
            return read_worker_response(path)
        except UnreadableResponse as exc:
            if str(path) not in self._excluded:
                self._excluded[str(path)] = str(exc)
                log.warning("worker response %s/%s excluded: %s", path.parent.name, path.name, exc)
            return []

    # -- TaskSource --------------------------------------------------------------------------------
    def _holders(self, task_id: str, now: float) -> dict[str, float]:
        """Live holds on a task (expired ones are dropped here, lazily)."""
        held = self._held.get(task_id)
        if not held:
            return {}
        for worker_id in [w for w, deadline in held.items() if deadline <= now]:
            del held[worker_id]
            self._lapsed.setdefault(task_id, set()).add(worker_id)
        return held

    def _free_places(self, obj: _Object, task_id: str, worker_id: str | None, now: float) -> int:
        others = sum(1 for w in self._holders(task_id, now) if w != worker_id)
        return self.workers - len(obj.responses) - others

    def list_tasks(self) -> list[TaskSummary]:
        with self._lock:
            now = self._clock()
            out = []
            for object_id, obj in self._objects.items():
                if not obj.labelable:
                    status = STATUS_FAILED
                elif obj.done or len(obj.responses) >= self.workers:
                    status = STATUS_COMPLETE
                else:
                    status = STATUS_OPEN
                out.append(TaskSummary(
                    task_id=object_id, interaction_id=obj.interaction_id,
                    responses=len(obj.responses), status=status, wanted=self.workers,
                    responded_by=frozenset(obj.responses), media_type=obj.media_type,
                    reason=obj.reason, in_progress_by=frozenset(self._holders(object_id, now))))
            return out

    def _labelable(self, task_id: str) -> _Object:
        obj = self._objects[task_id]
        if obj.task_input_text is None:
            raise SubmissionRejected(f"task {task_id} cannot be labeled: {obj.reason}")
        return obj

    def task_input(self, task_id: str) -> dict[str, Any]:
        return json.loads(self._labelable(task_id).task_input_text or "")

    def data_object(self, task_id: str) -> dict[str, Any]:
        """The manifest line itself (with what the task input hides, e.g. comparison system ids):
        for simulated workers, who stand in for listeners that hear which system is better."""
        return self._labelable(task_id).line

    def accept(self, task_id: str, worker_id: str) -> None:
        """The worker opens the task: hold one of its places for them until they submit, release
        it, or the task time limit passes. Reopening keeps the original deadline."""
        with self._lock:
            obj = self._labelable(task_id)
            if worker_id in obj.responses:
                raise SubmissionRejected(f"you already answered task {task_id}; each task goes to distinct workers")
            if len(obj.responses) >= self.workers:
                raise SubmissionRejected(f"task {task_id} already has its {self.workers} responses")
            now = self._clock()
            held = self._holders(task_id, now)
            if worker_id in held:
                return
            if self._free_places(obj, task_id, worker_id, now) <= 0:
                raise SubmissionRejected(
                    f"task {task_id} is being labeled by {len(held)} other worker(s), which takes all its "
                    f"places still open; it reopens when one of them releases it or their time limit "
                    f"({self.task_time_limit} s) passes")
            self._held.setdefault(task_id, {})[worker_id] = now + self.task_time_limit
            self._lapsed.get(task_id, set()).discard(worker_id)

    def release(self, task_id: str, worker_id: str) -> None:
        """The worker gives the task back (Ground Truth's "Release task") without answering."""
        with self._lock:
            self._held.get(task_id, {}).pop(worker_id, None)

    def next_task_for(self, worker_id: str) -> str | None:
        with self._lock:
            now = self._clock()
            # Their task in progress first: a worker who left /task/N comes back to it.
            for object_id in self._held:
                obj = self._objects[object_id]
                if (worker_id in self._holders(object_id, now) and worker_id not in obj.responses
                        and len(obj.responses) < self.workers):
                    return object_id
            for object_id, obj in self._objects.items():
                if (obj.labelable and worker_id not in obj.responses
                        and self._free_places(obj, object_id, worker_id, now) > 0):
                    return object_id
        return None

    def submit(self, task_id: str, worker_id: str, answer_content: dict[str, Any],
               accepted_at: datetime, submitted_at: datetime) -> None:
        with self._lock:
            if task_id not in self._objects:
                raise SubmissionRejected(f"unknown task {task_id!r}")
            obj = self._labelable(task_id)
            if worker_id in obj.responses:
                raise SubmissionRejected(f"worker {worker_id} already answered task {task_id}; "
                                         "each task goes to distinct workers")
            if len(obj.responses) >= self.workers:
                raise SubmissionRejected(f"task {task_id} already has its {self.workers} responses")
            if self._free_places(obj, task_id, worker_id, self._clock()) <= 0:
                if worker_id in self._lapsed.get(task_id, ()):
                    raise SubmissionRejected(
                        f"your time limit for task {task_id} ({self.task_time_limit} s) passed and other "
                        "workers hold its remaining places; your answer is kept in this browser, but the "
                        "task cannot take it")
                # They never held a place (submitted without opening the task here, e.g. another tab).
                raise SubmissionRejected(
                    f"task {task_id} is being labeled by other workers, who hold all its remaining places; "
                    "your answer is kept in this browser, but the task cannot take it")
            record = worker_response.new_answer(worker_id, answer_content, accepted_at, submitted_at)
            self.layout.write_worker_response(self.storage, task_id, [record], submitted_at)
            obj.responses.append(worker_id)
            obj.last_submission = record.submission_time
            self._held.get(task_id, {}).pop(worker_id, None)
            log.info("task %s: response %d of %d saved", task_id, len(obj.responses), self.workers)
            if len(obj.responses) >= self.workers:
                self._consolidate(task_id)
                self.write_output_manifest()
                self._check_complete()

    # -- consolidation ----------------------------------------------------------------------------------
    def _consolidate(self, object_id: str) -> None:
        """Write the consolidation request, invoke the post-annotation handler, store its response."""
        obj = self._objects[object_id]
        folder = Path(self.layout.worker_response_dir(object_id))
        answers = [(answer.worker_id, answer.answer_content)
                   for path in sorted(folder.glob("*.json")) for answer in self._read_responses(path)]
        request_uri = self.layout.consolidation_request(object_id)
        self.storage.write_json(request_uri, [consolidation.payload_item(object_id, obj.line, answers)])
        event = consolidation.post_annotation_event(
            job_arn=self.job_arn, label_categories=[label for track in self.schema.tracks for label in track.labels],
            label_attribute=self.label_attribute, role_arn=f"arn:aws:iam::{LOCAL_ACCOUNT}:role/gtkit-local-job",
            request_uri=request_uri)
        response = post_annotation.handle(event, read_text=self._read_text, schema=self.schema)
        self.storage.write_json(self.layout.consolidation_response(object_id), response)
        obj.done = True

    def _read_text(self, uri: str) -> str:
        return self.storage.read_bytes(uri).decode("utf-8")

    def _content(self, object_id: str) -> Any:
        """The consolidated content of a done object, from its stored post-annotation response."""
        stored = Path(self.layout.consolidation_response(object_id)).read_bytes()
        return consolidation.content_of(consolidation.decode_response(stored), object_id)

    def _output_text(self, object_id: str, obj: _Object) -> str:
        """The object's output-manifest line as JSON text: its input line until it is labeled, then
        built once and cached, so rewriting the manifest after each consolidation costs one new
        line, not a re-read of every response (400 tasks x 2 workers went from 52 s to 7.7 s)."""
        if not obj.done:
            return obj.line_text
        text = self._texts.get(object_id)
        if text is None:
            content = self._content(object_id)
            if content is None or self.label_attribute not in content:
                text = obj.line_text
            else:
                text = manifest_text(output_line(obj.line, self.label_attribute, content[self.label_attribute],
                                                 self.job_name, _creation_date(obj.last_submission)))
            self._texts[object_id] = text
        return text

    def write_output_manifest(self) -> int:
        """All input lines in order; labeled ones gain `<attr>` and `<attr>-metadata`."""
        with self._lock:
            texts = (self._output_text(object_id, obj) for object_id, obj in self._objects.items())
            return write_manifest(self.storage, self.layout.output_manifest, texts)

    def _check_complete(self) -> None:
        if all(obj.done or not obj.labelable for obj in self._objects.values()):
            self.completed.set()

    # -- reporting ----------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self._lock:
            objs = list(self._objects.values())
            return {
                "job_name": self.job_name,
                "objects": len(objs),
                "labeled": sum(o.done for o in objs),
                "skipped": sum(not o.labelable for o in objs),
                "waiting": sum(o.labelable and not o.done for o in objs),
                "responses": sum(len(o.responses) for o in objs),
                "output_manifest": self.layout.output_manifest,
                "skipped_reasons": [o.reason for o in objs if not o.labelable],
                "excluded_responses": [{"file": f, "reason": r} for f, r in self._excluded.items()],
            }


def _creation_date(submission_time: str | None) -> str:
    """`creation-date` from the newest submission (stable across reruns), else now."""
    if submission_time:
        try:
            return creation_date(datetime.fromisoformat(submission_time.replace("Z", "+00:00")))
        except ValueError:
            pass
    return creation_date()


def _simulate_on_service(source: JobSource, *, corrections: list[Correction] | None,
                         max_submission_bytes: int | None) -> None:
    """Simulated workers finish the job on the service core, in a throwaway SQLite database:
    the job's output folder is imported in place (answers on disk, labels in its output
    manifest), one account per simulated worker (`sim-worker-N`) claims and submits
    (work.claim / work.submit), the queue consolidates with the post-annotation Lambda and
    write_output writes the new files, after each answer as a served job does."""
    import tempfile

    from toolkit.service import migrate, people, runner
    from toolkit.service.db import Database
    from toolkit.service.gt_import import import_gt_output
    from toolkit.service.simulate import SimulatedClock, simulate_service

    def unreadable(uri: str, exc: ValueError) -> None:  # JobSource reported it already
        log.debug("worker response %s left out: %s", uri, type(exc).__name__)

    clock = SimulatedClock()
    with tempfile.TemporaryDirectory(prefix="gtkit-local-job-") as folder:
        db = Database.for_data_dir(folder, clock=clock)
        try:
            migrate.upgrade(db)
            team = people.create_team(db, "local-job")
            job = import_gt_output(db, source.layout.root, name=source.job_name, schema=source.schema,
                                   team_id=team.id, output_uri=source.out, workers_per_object=source.workers,
                                   label_attribute=source.label_attribute, task_time_limit_s=source.task_time_limit,
                                   storage=source.storage, unreadable=unreadable, in_place=True).job
            users = people.named_workers(db, team.id, [f"sim-worker-{i + 1}" for i in range(source.workers)])
            simulate_service(db, clock, users, source.schema, storage=source.storage, corrections=corrections,
                             max_bytes=max_submission_bytes,
                             after_submit=lambda: runner.run_queue(db, storage=source.storage))
            stats = runner.run_queue(db, storage=source.storage)
            if stats.failed or stats.retried:
                raise LocalJobError(f"job {job.name}: {stats.failed + stats.retried} consolidation(s) failed "
                                    "(see the log above)")
        finally:
            db.dispose()


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
    source = JobSource(manifest, schema, workers=workers, out=out, job_name=job_name,
                       label_attribute=label_attribute, storage=storage, task_time_limit=task_time_limit)
    if source.completed.is_set():
        return source
    if simulate_workers:
        _simulate_on_service(source, corrections=corrections, max_submission_bytes=max_submission_bytes)
        # The files are the job's state: read back what the service wrote (nothing left to do).
        return JobSource(manifest, schema, workers=workers, out=out, job_name=job_name,
                         label_attribute=label_attribute, storage=storage, task_time_limit=task_time_limit)
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
