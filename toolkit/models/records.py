"""Training records written by `gtkit export` and the labels `gtkit merge` adds to feedback records.

The exporter builds plain dicts for speed; these models document every shape it emits and the
tests validate each exported line against them (extra="forbid": a stray key is a defect).
snake_case keys throughout, except where the target format fixes camelCase (Bedrock).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from toolkit.models.uri import S3Uri

FieldValue = str | bool | int | float | list[str] | None


class RecordModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- lineage -----------------------------------------------------------------------------------
class Lineage(RecordModel):
    """Where a record came from. Inline in `jsonl`/`trl`, in a provenance sidecar elsewhere."""

    interaction_id: str
    source_ref: S3Uri
    job_name: str | None = None
    label_attribute: str
    agreement: float | None = Field(default=None, description="Segment agreement, else the object's overall")
    creation_date: str | None = None
    line: int = Field(description="1-based line of the output manifest")
    segment_id: str | None = None


class PairLineage(RecordModel):
    chosen: Lineage
    rejected: Lineage


class MediaSpan(RecordModel):
    uri: S3Uri
    start: float
    end: float
    track: str = Field(description="Track category, e.g. speaker")
    label: str = Field(description="Track label, e.g. Customer")


class Span(RecordModel):
    start: float
    end: float
    track: str
    label: str
    attributes: dict[str, FieldValue] = Field(default_factory=dict)
    agreement: float
    support: int
    text: str = ""


# -- jsonl: each preset's own record -----------------------------------------------------------
class TranscriptionRecord(RecordModel):
    """sft-transcription: one segment; the assistant answer is the human text."""

    id: str
    system: str
    prompt: str
    completion: str
    media: MediaSpan
    attributes: dict[str, FieldValue] = Field(default_factory=dict)
    lineage: Lineage


class SummaryRecord(RecordModel):
    """sft-summary: a full-content text field as the completion of a transcript prompt."""

    id: str
    system: str
    prompt: str
    completion: str
    field: str
    lineage: Lineage


class CorrectionPairRecord(RecordModel):
    """preference-correction: human-corrected text (chosen) vs the machine text (rejected)."""

    id: str
    system: str
    prompt: str
    chosen: str
    rejected: str
    media: MediaSpan
    lineage: Lineage


class RatingPairRecord(RecordModel):
    """preference-ratings: two items sharing a prompt key, ordered by their consolidated rating."""

    id: str
    prompt_key: str
    system: str
    prompt: str
    chosen: str
    rejected: str
    chosen_score: float
    rejected_score: float
    margin: float
    field: str
    lineage: PairLineage


class KtoRecord(RecordModel):
    """kto: one item with a boolean label from a rating threshold."""

    id: str
    system: str
    prompt: str
    completion: str
    label: bool
    score: float
    threshold: float
    field: str
    lineage: Lineage


class RewardRecord(RecordModel):
    """reward-segments: the normalised overall score plus the labelled spans."""

    id: str
    source_ref: S3Uri
    media_type: str | None = None
    duration: float | None = None
    field: str
    score: float = Field(ge=0, le=1, description="(mean - min) / (max - min) of the rating field")
    raw_score: float
    spans: list[Span]
    lineage: Lineage


# -- trl -----------------------------------------------------------------------------------------
class Message(RecordModel):
    role: Literal["system", "user", "assistant"]
    content: str


class TrlMessagesRecord(RecordModel):
    messages: list[Message]
    lineage: Lineage | None = None


class TrlPromptCompletionRecord(RecordModel):
    prompt: list[Message]
    completion: list[Message]
    lineage: Lineage | None = None


class TrlPreferenceRecord(RecordModel):
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    lineage: Lineage | PairLineage | None = None


class TrlUnpairedRecord(RecordModel):
    prompt: list[Message]
    completion: list[Message]
    label: bool
    lineage: Lineage | None = None


# -- bedrock fine-tuning ------------------------------------------------------------------------
class BedrockMessage(RecordModel):
    role: Literal["user", "assistant"]
    content: str


class BedrockMessagesRecord(RecordModel):
    """Claude-style fine-tuning line: no extra keys allowed, so lineage goes to a sidecar."""

    system: str | None = None
    messages: list[BedrockMessage] = Field(min_length=2)


class TextBlock(RecordModel):
    text: str


class ConversationMessage(RecordModel):
    role: Literal["user", "assistant"]
    content: list[TextBlock]


class BedrockConversationRecord(RecordModel):
    """`bedrock-conversation-2024` (Nova fine-tuning, distillation)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_version: Literal["bedrock-conversation-2024"] = Field(alias="schemaVersion")
    system: list[TextBlock] = Field(default_factory=list)
    messages: list[ConversationMessage] = Field(min_length=2)


class BedrockPromptCompletionRecord(RecordModel):
    prompt: str
    completion: str


# -- bedrock batch inference -------------------------------------------------------------------
class BedrockBatchRecord(RecordModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    record_id: str = Field(alias="recordId", pattern=r"^[A-Za-z0-9]{11}$")
    model_input: dict[str, Any] = Field(alias="modelInput", description="InvokeModel or Converse body")


class ProvenanceRecord(RecordModel):
    """One line of the provenance sidecar: which output record (by row or recordId) came from where."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    row: int = Field(description="0-based row in `file`")
    file: str
    record_id: str | None = Field(default=None, alias="recordId")
    id: str
    lineage: Lineage | PairLineage


class BatchJobFile(RecordModel):
    path: str
    records: int
    bytes: int


class BatchJob(RecordModel):
    prefix: str
    records: int
    bytes: int
    files: list[BatchJobFile]


class BatchPlan(RecordModel):
    """`jobs.json` next to the batch files: one entry per CreateModelInvocationJob input prefix."""

    quotas: dict[str, int]
    jobs: list[BatchJob]


# -- merge ---------------------------------------------------------------------------------------
class MergedSegment(RecordModel):
    id: str
    category: str
    label: str
    start: float
    end: float
    text: str = ""
    attributes: dict[str, FieldValue] = Field(default_factory=dict)
    agreement: float
    support: int
    presegment_id: str | None = None


class MergedContent(RecordModel):
    value: FieldValue
    agreement: float
    tie: bool = False
    mean: float | None = None


class MergedLabels(RecordModel):
    """What `gtkit merge` puts under `human_labels[<job>]` of a feedback record."""

    job_name: str | None
    label_attribute: str
    creation_date: str | None
    status: Literal["ok", "error"]
    error: str | None = None
    label_schema: str | None = None
    worker_count: int
    valid_worker_count: int
    agreement: dict[str, float | None]
    segments: list[MergedSegment]
    content: dict[str, MergedContent]


EXPORT_RECORD_MODELS: dict[str, type[BaseModel]] = {
    "export-lineage": Lineage,
    "export-transcription": TranscriptionRecord,
    "export-summary": SummaryRecord,
    "export-correction-pair": CorrectionPairRecord,
    "export-rating-pair": RatingPairRecord,
    "export-kto": KtoRecord,
    "export-reward": RewardRecord,
    "export-provenance": ProvenanceRecord,
    "export-batch-plan": BatchPlan,
    "merged-labels": MergedLabels,
}
