"""Ground Truth's Lambda events and responses, and the worker-response file, as pydantic models.

Shapes follow the SageMaker Developer Guide (custom labeling workflows, "Processing data in a custom
labeling workflow with AWS Lambda") and the output layout observed in real jobs. Unknown keys are
kept (`extra="allow"`): Ground Truth may add fields (`outputConfig`, `kmsKeyId`) and manifest lines
carry arbitrary passthrough keys.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from toolkit.contract.uri import StorageUri

EVENT_VERSION = "2018-10-16"


class EventModel(BaseModel):
    """camelCase on the wire, tolerant of fields Ground Truth adds later."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


# -- pre-annotation ---------------------------------------------------------------------------
class PreAnnotationEvent(EventModel):
    """`{"version", "labelingJobArn", "dataObject": <one manifest line>}`."""

    version: str = EVENT_VERSION
    labeling_job_arn: str | None = None
    data_object: Any = None  # a manifest line; what is not one is declined with a reason, not refused


class PreAnnotationResponse(EventModel):
    """`taskInput` becomes Liquid `task.input`; the flag is a JSON boolean, never a string."""

    task_input: dict[str, Any] | None = None
    is_human_annotation_required: bool = True


# -- post-annotation (annotation consolidation) -----------------------------------------------
class S3Ref(EventModel):
    s3_uri: StorageUri


class PostAnnotationEvent(EventModel):
    version: str = EVENT_VERSION
    labeling_job_arn: str | None = None
    label_categories: list[str] | None = None
    label_attribute_name: str = Field(min_length=1)
    role_arn: str | None = None
    payload: S3Ref


class AnnotationData(EventModel):
    """A worker answer, inline (`content`, a JSON string) or stored in S3 (`s3Uri`)."""

    content: str | None = None
    s3_uri: StorageUri | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AnnotationData:
        if self.content is None and not self.s3_uri:
            raise ValueError("annotationData needs `content` or `s3Uri`")
        return self


class PayloadAnnotation(EventModel):
    worker_id: str = Field(min_length=1)
    annotation_data: AnnotationData


class PayloadDataObject(EventModel):
    """`s3Uri` for `source-ref` objects, `content` for inline `source` objects."""

    s3_uri: StorageUri | None = None
    content: str | None = None


class PayloadItem(EventModel):
    """One data object in the consolidation payload file (a JSON array of these)."""

    dataset_object_id: str
    data_object: PayloadDataObject = Field(default_factory=PayloadDataObject)
    annotations: list[PayloadAnnotation] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _id_as_text(cls, data: Any) -> Any:
        # Ids are strings in the documented payload; tolerate a bare integer.
        if isinstance(data, dict) and isinstance(data.get("datasetObjectId"), int):
            data = {**data, "datasetObjectId": str(data["datasetObjectId"])}
        return data


class ConsolidatedAnnotation(EventModel):
    content: dict[str, Any]


class ConsolidationResponseItem(EventModel):
    """One element of the post-annotation Lambda's response list."""

    dataset_object_id: str
    consolidated_annotation: ConsolidatedAnnotation

    _id_as_text = PayloadItem._id_as_text


# -- worker-response file (output layout) -----------------------------------------------------
class WorkerResponse(EventModel):
    """One worker's submission as Ground Truth stores it. `answerContent` is an object here."""

    acceptance_time: str | None = None
    submission_time: str | None = None
    time_spent_in_seconds: float | None = None
    worker_id: str = Field(min_length=1)
    answer_content: dict[str, Any]
    worker_metadata: dict[str, Any] | None = None  # `identityData` of private workforces, passed through


class WorkerResponseFile(EventModel):
    """`annotations/worker-response/iteration-N/<datasetObjectId>/<timestamp>.json`."""

    answers: list[WorkerResponse]

