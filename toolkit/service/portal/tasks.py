"""What the portal serves: a `TaskSource` (tasks, their inputs, where submissions go).

The portal (toolkit/service/portal/app.py) knows nothing about manifests or jobs. `PreviewSource`
(toolkit/service/portal/preview.py) previews a manifest; the local labeling job
(toolkit/service/local_job.py) plugs in an adapter over the service's transactions
(toolkit.service.work: hold, submit, release) that hands each task to N distinct workers. Both
write submissions in Ground Truth's worker-response layout (toolkit.labeling.output_layout,
through the file's codec toolkit.contract.worker_response), so the post-annotation code reads a
local run exactly like a real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from toolkit.contract import LabelSchema
from toolkit.errors import GtkitError
from toolkit.storage import Storage

# TaskSummary.status values the portal knows how to show; sources may use others (shown as is).
STATUS_OPEN = "open"  # wants (more) responses
STATUS_COMPLETE = "complete"  # has all the responses it wants
STATUS_FAILED = "failed"  # cannot be labeled (reason in TaskSummary.reason)


@dataclass(frozen=True)
class TaskSummary:
    """One row of the task picker."""

    task_id: str  # Ground Truth's datasetObjectId: the 0-based manifest line number, as a string
    interaction_id: str | None
    responses: int  # submissions received so far, all workers
    status: str = STATUS_OPEN
    wanted: int | None = None  # responses the task wants in total (None: no limit)
    responded_by: frozenset[str] = field(default_factory=frozenset)  # worker ids who submitted
    media_type: str | None = None
    reason: str | None = None  # why it failed, when status == "failed"
    in_progress_by: frozenset[str] = field(default_factory=frozenset)  # worker ids holding a place


class SubmissionRejected(GtkitError):
    """A source refuses a submission (task complete, worker already answered, unknown task).

    The portal shows the message to the worker and answers HTTP 409.
    """


@runtime_checkable
class TaskSource(Protocol):
    """Everything the portal needs from a job. Task ids are datasetObjectId strings."""

    schema: LabelSchema
    job_name: str
    storage: Storage  # resolves the media/peaks/sidecar URIs found in task inputs (mirrors)

    def list_tasks(self) -> list[TaskSummary]: ...

    def task_input(self, task_id: str) -> dict[str, Any]:
        """The Liquid `task.input` of a task. Raises KeyError for an unknown id and
        SubmissionRejected (with the reason) for a task that cannot be labeled."""
        ...

    def accept(self, task_id: str, worker_id: str) -> None:
        """The worker opens the task (Ground Truth: accepts it). A source may hold a place for them
        and raises SubmissionRejected (with the reason) when they cannot take it."""
        ...

    def release(self, task_id: str, worker_id: str) -> None:
        """The worker gives the task back without answering (Ground Truth's "Release task")."""
        ...

    def next_task_for(self, worker_id: str) -> str | None:
        """The task this worker should do next, or None when nothing is left for them."""
        ...

    def submit(self, task_id: str, worker_id: str, answer_content: dict[str, Any],
               accepted_at: datetime, submitted_at: datetime) -> None:
        """Store one submission (crowd-form `answerContent`). May raise SubmissionRejected."""
        ...
