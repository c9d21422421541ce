"""What the portal serves: a `TaskSource` (tasks, their inputs, where submissions go).

The portal (toolkit/portal/app.py) knows nothing about manifests or jobs. `PreviewSource`
(toolkit/portal/preview.py) previews a manifest; the local labeling job (toolkit/localjob.py)
plugs in its own source that hands each task to N distinct workers. Both write submissions in
Ground Truth's worker-response layout with the helpers below, so the post-annotation code reads a
local run exactly like a real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from toolkit.answers import describe_errors
from toolkit.models import LabelSchema
from toolkit.models.events import WorkerResponse, WorkerResponseFile
from toolkit.storage import Storage, join_uri

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


class SubmissionRejected(Exception):
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


# -- Ground Truth output layout (ground-truth-contract.md section 7) -----------------------------

def gt_time(moment: datetime) -> str:
    """Ground Truth's timestamp format: `2024-11-05T09:58:01.123Z` (UTC, milliseconds)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def worker_response_dir(out: str, job_name: str, task_id: str, iteration: int = 1) -> str:
    """`<out>/<job>/annotations/worker-response/iteration-<n>/<datasetObjectId>`."""
    return join_uri(str(out), job_name, "annotations", "worker-response", f"iteration-{iteration}", task_id)


def worker_response_name(submitted_at: datetime) -> str:
    """File name as observed in real jobs: `2021-03-08_23:06:49.json` (UTC)."""
    return submitted_at.astimezone(UTC).strftime("%Y-%m-%d_%H:%M:%S") + ".json"


def worker_answer(worker_id: str, answer_content: dict[str, Any], accepted_at: datetime,
                  submitted_at: datetime) -> dict[str, Any]:
    """One element of the worker-response file's `answers` list."""
    spent = max(0.0, (submitted_at - accepted_at).total_seconds())
    return {
        "acceptanceTime": gt_time(accepted_at),
        "submissionTime": gt_time(submitted_at),
        "timeSpentInSeconds": round(spent, 3),
        "workerId": worker_id,
        "answerContent": answer_content,
    }


class UnreadableResponse(ValueError):
    """A worker-response file that cannot be read; the message says why, never what it holds."""


def read_worker_response(path: Path) -> list[WorkerResponse]:
    """The answers of one worker-response file, or UnreadableResponse (a file an older portal let
    through, nested too deep for the parser, cut short, or edited by hand)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableResponse(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        return WorkerResponseFile.model_validate_json(data).answers
    except ValidationError as exc:
        raise UnreadableResponse("not a worker-response file: " + "; ".join(describe_errors(exc)[:3])) from None


def write_worker_response(storage: Storage, out: str, job_name: str, task_id: str,
                          answers: list[dict[str, Any]], submitted_at: datetime,
                          iteration: int = 1) -> str:
    """Write `{"answers": [...]}` to a new file in the layout above; returns its URI.

    Two submissions for one task within the same second get distinct names (`..._1.json`).
    """
    folder = worker_response_dir(out, job_name, task_id, iteration)
    name = worker_response_name(submitted_at)
    uri = join_uri(folder, name)
    n = 1
    while storage.exists(uri):
        uri = join_uri(folder, name.removesuffix(".json") + f"_{n}.json")
        n += 1
    storage.write_json(uri, {"answers": answers})
    return uri
