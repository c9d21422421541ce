"""Codec of the worker-response file: `annotations/worker-response/iteration-N/<datasetObjectId>/<time>.json`.

`{"answers": [{"acceptanceTime", "submissionTime", "timeSpentInSeconds", "workerId", "answerContent",
"workerMetadata"?}]}` (models: `WorkerResponseFile`, `WorkerResponse` in toolkit.contract.events). Every
writer (the portal's sources, `gtkit serve`'s output) and every reader (the local job, the preview, the
exporter's `worker-response-ref`, `gtkit serve`'s Ground Truth import) goes through `encode` and
`decode` here, so one file is read the same way, with one error: `UnreadableResponse`. Where the file
goes is `toolkit.labeling.output_layout`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from toolkit.contract.base import dump, problems_from
from toolkit.contract.events import WorkerResponse, WorkerResponseFile
from toolkit.errors import GtkitError


class UnreadableResponse(GtkitError, ValueError):
    """A worker-response file that cannot be read; the message says why, never what it holds."""


def gt_time(moment: datetime) -> str:
    """Ground Truth's timestamp format: `2024-11-05T09:58:01.123Z` (UTC, milliseconds)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_gt_time(value: object) -> datetime | None:
    """A Ground Truth timestamp (or any ISO 8601 one) as an aware datetime, None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_answer(worker_id: str, answer_content: dict[str, Any], accepted_at: datetime, submitted_at: datetime,
               *, time_spent: float | None = None, worker_metadata: dict[str, Any] | None = None) -> WorkerResponse:
    """One element of the file's `answers`; `time_spent` defaults to submission - acceptance."""
    spent = round(max(0.0, (submitted_at - accepted_at).total_seconds()), 3) if time_spent is None else time_spent
    return WorkerResponse(acceptance_time=gt_time(accepted_at), submission_time=gt_time(submitted_at),
                          time_spent_in_seconds=spent, worker_id=worker_id, answer_content=answer_content,
                          worker_metadata=worker_metadata)


def encode(answers: list[WorkerResponse]) -> dict[str, Any]:
    """The file's JSON document."""
    return dump(WorkerResponseFile(answers=answers))


def decode(data: bytes | str, where: str = "worker-response file") -> list[WorkerResponse]:
    """The answers of one file, or UnreadableResponse naming `where` in its problems (a file an older
    portal let through, nested too deep for the parser, cut short, or edited by hand)."""
    try:
        return WorkerResponseFile.model_validate_json(data).answers
    except ValidationError as exc:
        problems = problems_from(exc, root="(answer)", where=where)
        raise UnreadableResponse("not a worker-response file: " + "; ".join(
            f"{p.path}: {p.message}" for p in problems[:3]), problems=problems) from None


__all__ = ["UnreadableResponse", "decode", "encode", "gt_time", "new_answer", "parse_gt_time"]
