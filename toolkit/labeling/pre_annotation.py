"""Ground Truth pre-annotation Lambda: one data object (manifest line) -> the worker task input.

Deployed as `lambdas/pre_annotation/handler.py` (a shim over this module; handler
`handler.lambda_handler`). The task input is the normalised manifest line
(`toolkit.task.task_input.build_task_input`), so the template reads `task.input.source-ref`,
`task.input.pre-segments`, ... whether or not this Lambda runs. Objects that cannot be labeled
(inline `source` text, invalid line) get `isHumanAnnotationRequired: false` and a logged reason.
Logs carry ids and counts only, never transcripts or segment text.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from toolkit.contract import pre_annotation
from toolkit.task.task_input import build_task_input

logger = Logger(service="gtkit-pre-annotation")


def handle(event: dict[str, Any]) -> dict[str, Any]:
    parsed = pre_annotation.decode_event(event)
    data_object = parsed.data_object
    interaction_id = data_object.get("interaction-id") if isinstance(data_object, dict) else None
    task_input, reason = build_task_input(data_object)
    if task_input is None:
        logger.warning("data object skipped: no human annotation",
                       extra={"interaction_id": interaction_id, "reason": reason,
                              "labeling_job_arn": parsed.labeling_job_arn})
        return pre_annotation.response(None)
    logger.info("task input built", extra={
        "interaction_id": interaction_id,
        "pre_segments": len(task_input.get("pre-segments") or []),
        "has_sidecar": "sidecar-ref" in task_input,
        "has_peaks": "peaks-ref" in task_input,
        "has_spectrogram": "spectrogram-ref" in task_input,
    })
    return pre_annotation.response(task_input)


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger.append_keys(request_id=request_id)
    return handle(event)
