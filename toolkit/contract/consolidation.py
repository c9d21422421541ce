"""Codec of the annotation-consolidation exchange: the post-annotation event, the consolidation
request (payload file) and the consolidation response, built and read with the same models
(toolkit.contract.events), Powertools style.

- event: `PostAnnotationEvent` (`post_annotation_event`), parsed by the post-annotation handler;
- request: a JSON array of `PayloadItem` (`payload_item`), written by the local job and `gtkit
  serve`, parsed item by item by `toolkit.labeling.consolidate.consolidate_batch`;
- response: a JSON array of `ConsolidationResponseItem` (`response_item`), returned by the handler
  and stored as the consolidation-response file; `label_of` reads the label back out of one.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from toolkit.contract import consolidated
from toolkit.contract.base import dump, problems_from
from toolkit.contract.consolidated import ConsolidatedLabel
from toolkit.contract.events import (
    EVENT_VERSION,
    AnnotationData,
    ConsolidatedAnnotation,
    ConsolidationResponseItem,
    PayloadAnnotation,
    PayloadDataObject,
    PayloadItem,
    PostAnnotationEvent,
    S3Ref,
)
from toolkit.errors import GtkitError


class UnreadableConsolidation(GtkitError, ValueError):
    """A consolidation response that is not one; the message names the field, never the label."""


def post_annotation_event(*, job_arn: str, label_categories: list[str], label_attribute: str, role_arn: str,
                          request_uri: str) -> dict[str, Any]:
    """The Ground Truth event that points the post-annotation handler at a consolidation request."""
    return dump(PostAnnotationEvent(version=EVENT_VERSION, labeling_job_arn=job_arn, label_categories=label_categories,
                                    label_attribute_name=label_attribute, role_arn=role_arn,
                                    payload=S3Ref(s3_uri=request_uri)))


def payload_item(dataset_object_id: str, line: dict[str, Any], answers: list[tuple[str, Any]]) -> dict[str, Any]:
    """One data object of a consolidation request: `source-ref` objects by URI, `source` ones inline,
    each worker's answerContent inlined as a JSON string as Ground Truth sends it."""
    data_object = (PayloadDataObject(s3_uri=line["source-ref"]) if "source-ref" in line
                   else PayloadDataObject(content=line.get("source")))
    return dump(PayloadItem(dataset_object_id=dataset_object_id, data_object=data_object, annotations=[
        PayloadAnnotation(worker_id=worker_id, annotation_data=AnnotationData(content=json.dumps(content)))
        for worker_id, content in answers]))


def response_item(dataset_object_id: str, label_attribute: str, label: ConsolidatedLabel | dict[str, Any]
                  ) -> dict[str, Any]:
    """One element of the post-annotation response: the label under `content.<label attribute>`."""
    content = consolidated.encode(label) if isinstance(label, ConsolidatedLabel) else label
    return dump(ConsolidationResponseItem(dataset_object_id=dataset_object_id,
                                          consolidated_annotation=ConsolidatedAnnotation(
                                              content={label_attribute: content})))


def decode_response(data: bytes | str | list[Any], where: str = "consolidation response"
                    ) -> list[ConsolidationResponseItem]:
    """A consolidation response (JSON text, or the handler's list) as models."""
    try:
        items = json.loads(data) if isinstance(data, bytes | str) else data
        if not isinstance(items, list):
            raise UnreadableConsolidation(f"{where}: not a JSON array")
        return [ConsolidationResponseItem.model_validate(item) for item in items]
    except ValidationError as exc:
        problems = problems_from(exc, where=where)
        raise UnreadableConsolidation(f"{where}: " + "; ".join(f"{p.path}: {p.message}" for p in problems[:3]),
                                      problems=problems) from None
    except json.JSONDecodeError as exc:
        raise UnreadableConsolidation(f"{where}: not JSON ({exc.msg})") from None


def content_of(items: list[ConsolidationResponseItem], dataset_object_id: str) -> dict[str, Any] | None:
    """`consolidatedAnnotation.content` of one data object, or None when the response has none for it."""
    for item in items:
        if item.dataset_object_id == dataset_object_id:
            return item.consolidated_annotation.content
    return None


def label_of(data: bytes | str | list[Any], dataset_object_id: str, label_attribute: str) -> Any:
    """The label under `label_attribute` of one data object in a consolidation response, or None."""
    content = content_of(decode_response(data), dataset_object_id)
    return None if content is None else content.get(label_attribute)


__all__ = ["UnreadableConsolidation", "content_of", "decode_response", "label_of", "payload_item",
           "post_annotation_event", "response_item"]
