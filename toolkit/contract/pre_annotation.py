"""Codec of the pre-annotation exchange: Ground Truth's event (one data object) and the handler's
response (the task input), built and read with the same models (toolkit.contract.events).

Written by the local job and `gtkit serve` (`event`), read by the handler (`decode_event`); written
by the handler (`response`), read by the local job and `gtkit serve` (`decode_response`).
"""

from __future__ import annotations

from typing import Any

from toolkit.contract.base import dump
from toolkit.contract.events import EVENT_VERSION, PreAnnotationEvent, PreAnnotationResponse


def event(job_arn: str, data_object: Any) -> dict[str, Any]:
    """The event Ground Truth sends for one manifest line."""
    return dump(PreAnnotationEvent(version=EVENT_VERSION, labeling_job_arn=job_arn, data_object=data_object))


def decode_event(data: Any) -> PreAnnotationEvent:
    """The event as a model; anything that is not an object holds no data object (declined downstream)."""
    return PreAnnotationEvent.model_validate(data if isinstance(data, dict) else {})


def response(task_input: dict[str, Any] | None) -> dict[str, Any]:
    """The handler's answer: the task input, or `isHumanAnnotationRequired: false` with an empty one."""
    if task_input is None:
        return dump(PreAnnotationResponse(task_input={}, is_human_annotation_required=False))
    return dump(PreAnnotationResponse(task_input=task_input, is_human_annotation_required=True))


def decode_response(data: dict[str, Any]) -> PreAnnotationResponse:
    return PreAnnotationResponse.model_validate(data)


__all__ = ["decode_event", "decode_response", "event", "response"]
