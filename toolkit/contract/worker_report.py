"""The JSON of `gtkit report --workers --json` (toolkit/export/workers.py) and its codec.

Written by `write_worker_report` through `encode`, read back by `gtkit export --worker-report`
through `decode`, so both sides agree on one shape. Worker ids are keyed pseudonyms
(`w-` + 12 hex digits of HMAC-SHA256 under the report's id key) unless `worker_ids` is "real".
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from toolkit.contract.base import problems_from
from toolkit.errors import GtkitError

WORKER_REPORT_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class GoldScores(_Strict):
    """A worker's answers on gold objects against the gold answers, summed before the ratios are taken."""

    segments: int = Field(ge=0, description="Segments the worker drew on gold objects")
    reference_segments: int = Field(ge=0, description="Gold segments")
    matched: int = Field(ge=0, description="Pairs at IoU >= 0.5 on the same track")
    precision: float | None = Field(default=None, ge=0, le=1)
    recall: float | None = Field(default=None, ge=0, le=1)
    f1: float | None = Field(default=None, ge=0, le=1, description="null: no segment on either side")
    boundary_error_ms: float | None = Field(default=None, ge=0)
    label_accuracy: float | None = Field(default=None, ge=0, le=1)
    attribute_accuracy: float | None = Field(default=None, ge=0, le=1)
    content_fields: int = Field(ge=0)
    content_accuracy: float | None = Field(default=None, ge=0, le=1)


class WorkerRow(_Strict):
    worker: str = Field(min_length=1, description="Pseudonym (w-...) or, with worker_ids=real, the worker id")
    tasks: int = Field(ge=0)
    invalid_answers: int = Field(ge=0)
    gold_tasks: int = Field(ge=0)
    gold: GoldScores | None = Field(description="null: no answer on a gold object")
    gold_per_track: dict[str, GoldScores] = Field(default_factory=dict)
    peer_agreement: float | None = Field(default=None, ge=0, le=1)
    peer_objects: int = Field(ge=0)
    seconds_per_task: float | None = Field(default=None, ge=0, description="Median, acceptance -> submission")
    time_to_media_ratio: float | None = Field(default=None, ge=0, description="Median task seconds / media seconds")
    tasks_per_hour: float | None = Field(default=None, ge=0)
    reviewed_tasks: int = Field(default=0, ge=0)
    review_rejection_rate: float | None = Field(default=None, ge=0, le=1)


class WorkerReportDoc(_Strict):
    """Per-worker quality of one job (docs/review.md, quality)."""

    version: Literal[1] = WORKER_REPORT_VERSION
    root: str = Field(description="The job's output folder the figures were read from")
    objects: int = Field(ge=0)
    gold_objects: int = Field(ge=0)
    answers: int = Field(ge=0)
    reviewed_objects: int = Field(default=0, ge=0)
    worker_ids: Literal["real", "pseudonymized"]
    workers: list[WorkerRow]
    problems: list[str] = Field(default_factory=list, description="Unreadable files: where and why")


class WorkerReportFormatError(GtkitError, ValueError):
    """Not a worker report: the message names the file and the field."""


def encode(data: dict[str, Any]) -> bytes:
    """The report's JSON, checked against WorkerReportDoc (a figure out of its range is a defect here)."""
    doc = WorkerReportDoc.model_validate(data)
    return (json.dumps(doc.model_dump(mode="json"), indent=2) + "\n").encode("utf-8")


def decode(raw: bytes | str, where: str) -> WorkerReportDoc:
    try:
        return WorkerReportDoc.model_validate_json(raw)
    except ValidationError as exc:
        problems = problems_from(exc, where=where)
        shown = "; ".join(f"{p.path}: {p.message}" for p in problems[:3])
        raise WorkerReportFormatError(f"{where}: not a `gtkit report --workers` JSON report: {shown}",
                                      problems=problems) from None


__all__ = ["WORKER_REPORT_VERSION", "GoldScores", "WorkerReportDoc", "WorkerReportFormatError", "WorkerRow",
           "decode", "encode"]
