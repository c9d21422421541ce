"""`PreviewSource`: preview a manifest in the portal; every submission becomes a worker-response file.

Tasks are the manifest's non-blank lines, numbered from 0 like Ground Truth's datasetObjectId.
Any worker may submit any task any number of times (it is a preview); `next_task_for` offers the
first task that worker has not answered yet. Existing responses under `out` are counted at start,
so a restarted preview shows the same statuses.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from toolkit.contract import LabelSchema, worker_response
from toolkit.contract.worker_response import UnreadableResponse
from toolkit.labeling.output_layout import JobLayout, read_worker_response
from toolkit.service.portal.tasks import (
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_OPEN,
    SubmissionRejected,
    TaskSummary,
)
from toolkit.storage import Storage, is_s3
from toolkit.task.task_input import ManifestError, build_task_input, iter_data_objects

log = logging.getLogger(__name__)


class PreviewSource:
    """A TaskSource over a manifest (local path or s3:// URI), for `gtkit preview`."""

    def __init__(self, manifest: str | Path, schema: LabelSchema, *, out: str | Path = "gtkit-preview",
                 storage: Storage | None = None, job_name: str | None = None) -> None:
        self.schema = schema
        self.storage = storage or Storage()
        self.job_name = job_name or f"preview-{schema.name}"
        self.out = str(out)
        self.layout = JobLayout(self.out, self.job_name)
        self.manifest = str(manifest)
        self._lock = threading.Lock()
        # (task input or None, reason) per task id, in manifest order.
        self._tasks: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
        self._responded: dict[str, list[str]] = {}
        self.last_response_uri: str | None = None
        self._load_manifest()
        self._load_existing_responses()

    def _load_manifest(self) -> None:
        for task_id, number, data in iter_data_objects(self.manifest, self.storage):
            task_input, reason = build_task_input(data)
            if task_input is None:
                reason = f"line {number}: {reason}"
                log.warning("manifest line %d cannot be labeled", number)
            self._tasks[task_id] = (task_input, reason)
        if not self._tasks:
            raise ManifestError(f"{self.manifest}: no data objects (the manifest is empty)")

    def _load_existing_responses(self) -> None:
        if is_s3(self.out):
            return  # a preview writing to S3 starts its counts from zero
        for task_id in self._tasks:
            folder = Path(self.layout.worker_response_dir(task_id))
            for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
                try:
                    answers = read_worker_response(path)
                except UnreadableResponse as exc:
                    log.warning("worker response %s/%s not counted: %s", task_id, path.name, exc)
                    continue
                for answer in answers:
                    self._responded.setdefault(task_id, []).append(answer.worker_id)

    # -- TaskSource ----------------------------------------------------------------------------
    def list_tasks(self) -> list[TaskSummary]:
        out = []
        with self._lock:
            for task_id, (task_input, reason) in self._tasks.items():
                workers = self._responded.get(task_id, [])
                status = STATUS_FAILED if task_input is None else STATUS_COMPLETE if workers else STATUS_OPEN
                out.append(TaskSummary(
                    task_id=task_id,
                    interaction_id=(task_input or {}).get("interaction-id"),
                    responses=len(workers),
                    status=status,
                    responded_by=frozenset(workers),
                    media_type=(task_input or {}).get("media-type"),
                    reason=reason,
                ))
        return out

    def task_input(self, task_id: str) -> dict[str, Any]:
        task_input, reason = self._tasks[task_id]
        if task_input is None:
            raise SubmissionRejected(f"task {task_id} cannot be labeled: {reason}")
        return task_input

    def accept(self, task_id: str, worker_id: str) -> None:
        """A preview takes every submission: nothing to hold."""
        self.task_input(task_id)

    def release(self, task_id: str, worker_id: str) -> None:
        pass

    def next_task_for(self, worker_id: str) -> str | None:
        with self._lock:
            for task_id, (task_input, _) in self._tasks.items():
                if task_input is not None and worker_id not in self._responded.get(task_id, []):
                    return task_id
        return None

    def submit(self, task_id: str, worker_id: str, answer_content: dict[str, Any],
               accepted_at: datetime, submitted_at: datetime) -> None:
        if task_id not in self._tasks:
            raise SubmissionRejected(f"unknown task {task_id!r}")
        self.task_input(task_id)  # refuses unlabelable tasks
        record = worker_response.new_answer(worker_id, answer_content, accepted_at, submitted_at)
        with self._lock:
            uri = self.layout.write_worker_response(self.storage, task_id, [record], submitted_at)
            self._responded.setdefault(task_id, []).append(worker_id)
        self.last_response_uri = uri
        log.info("task %s: worker response saved (%d so far)", task_id, len(self._responded[task_id]))
