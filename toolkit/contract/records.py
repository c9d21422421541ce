"""Training records written by `gtkit export` and the labels `gtkit merge` adds to feedback records.

The export builders (toolkit/export/builders.py) construct these models and hand the writers
`encode(record)`, so what is written is what the contract (and its JSON Schema) says; the tests
validate each exported line against them (`decode`; extra="forbid": a stray key is a defect).
snake_case keys throughout, except where the target format fixes camelCase (Bedrock).
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import SchemaValidator

from toolkit.contract.uri import S3Uri

FieldValue = str | bool | int | float | list[str] | None
M = TypeVar("M", bound=BaseModel)


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
    # Only preference-model has one: left out of the other presets' lineage rather than written as null.
    model: ModelLineage | None = Field(default=None, exclude_if=lambda v: v is None,
                                       description="preference-model: the model the rejected text came from")
    # Export filters (toolkit/export/trust.py): left out unless the option that sets them is used.
    excluded_answers: dict[str, int] | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="--exclude-workers / --min-worker-f1: how many workers' answers were left out of this "
                    "item's label, per reason (excluded-worker, below-min-worker-f1); never who")
    worker_trust: float | None = Field(
        default=None, ge=0, le=1, exclude_if=lambda v: v is None,
        description="--worker-report: mean gold F1 of the workers whose answers made the label (a worker "
                    "without gold: the default trust; an edited review: 1)")
    quality_weight: float | None = Field(
        default=None, ge=0, le=1, exclude_if=lambda v: v is None,
        description="--quality-weights / --worker-report: agreement (1 when none) x worker_trust (1 when none)")
    # Only `--reviewed-only` exports have one (docs/review.md).
    review: ReviewLineage | None = Field(default=None, exclude_if=lambda v: v is None,
                                         description="--reviewed-only: the review the label passed")


class ReviewLineage(RecordModel):
    """The review a `--reviewed-only` record's label passed (the review job's ReviewedLabel and metadata)."""

    review_job: str | None = Field(default=None, description="The review job's name")
    decision: Literal["accept", "edit"]
    reviewer: str | None = Field(default=None, description="workerId of the reviewer whose decision it is")
    adjustment_status: Literal["adjusted", "unadjusted"] | None = Field(
        default=None, description="Ground Truth's adjustment-status of the decision: adjusted exactly for an edit")
    changes: dict[str, Any] = Field(default_factory=dict, description="The reviewer's changes (ReviewChanges; "
                                                                      "empty for an accept)")


class ModelLineage(RecordModel):
    """The model behind a text people corrected: id, the prompt it answered, its inference parameters."""

    model_id: str
    record_id: str | None = Field(description="Bedrock batch recordId")
    system: str
    prompt: str
    params: dict[str, Any] = Field(description="Inference parameters of its modelInput (max_tokens...)")


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


class ModelPairRecord(RecordModel):
    """preference-model: human-corrected text (chosen) vs the model's text it started from (rejected)."""

    id: str
    system: str
    prompt: str = Field(description="The prompt the model answered")
    chosen: str
    rejected: str
    field: str
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


class ComparePositions(RecordModel):
    """Position-bias information of a comparison pair: where each worker was shown the two."""

    chosen_candidate: str = Field(description="Manifest candidate-id of the chosen candidate")
    rejected_candidate: str
    chosen_positions: list[str] = Field(description="Per judging worker, the letter (A-D) the chosen one had")
    rejected_positions: list[str]
    preferred_positions: dict[str, int] = Field(description="Letter of each worker's preferred candidate -> count")
    votes: dict[str, int] = Field(description="Candidate id (or 'none') -> workers who preferred it")


class CompareLineage(Lineage):
    comparison: ComparePositions


class ComparePairRecord(RecordModel):
    """preference-compare: the consolidated winner of a comparison task (chosen) against each other
    candidate (rejected), by system."""

    id: str
    system: str
    prompt: str
    chosen: str
    rejected: str
    chosen_system: str | None
    rejected_system: str | None
    chosen_media: S3Uri
    rejected_media: S3Uri
    strength: float = Field(description="Mean CMOS strength towards the chosen one (-3..3)")
    agreement: float = Field(description="Share of workers who gave the majority preference")
    chosen_mos: float | None = None
    rejected_mos: float | None = None
    lineage: CompareLineage


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


class DenseCandidate(RecordModel):
    key: Literal["a", "b"]
    source: str = Field(description="human | machine today; a compare task's candidates: system")
    system: str | None = Field(default=None, description="The system id (hidden from workers), when known")
    uri: S3Uri = Field(description="The candidate's media (both candidates share it when derived from a correction)")


class DenseSpanTexts(RecordModel):
    a: str
    b: str


class DenseSpan(RecordModel):
    start: float = Field(description="Seconds, aligned on both candidates")
    end: float
    segment_id: str | None = None
    track: str
    label: str
    preferred: Literal["a", "b", "tie"]
    strength: float | None = Field(default=None, description="A compare task's preference strength (CMOS)")
    reason: str | None = None
    texts: DenseSpanTexts | None = None
    agreement: float


class DensePreferenceRecord(RecordModel):
    """dense-preference: two candidates of one prompt compared per aligned span (DenseDPO-style)."""

    id: str
    system: str
    prompt: str
    candidates: list[DenseCandidate] = Field(min_length=2, max_length=2)
    preferred: Literal["a", "b", "tie"]
    spans: list[DenseSpan] = Field(min_length=1)
    lineage: Lineage


class Step(RecordModel):
    presegment_id: str
    segment_id: str | None = Field(description="The human segment made from this step; None if deleted")
    start: float
    end: float


class StepwiseRecord(RecordModel):
    """stepwise: the machine transcript's segments as steps, each labelled by whether workers kept it."""

    id: str
    system: str
    prompt: str
    completions: list[str] = Field(min_length=1)
    labels: list[bool] = Field(min_length=1)
    steps: list[Step]
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


class TrlStepwiseRecord(RecordModel):
    prompt: str
    completions: list[str]
    labels: list[bool]
    lineage: Lineage | None = None


# -- hf-audio / hf-video (one Parquet row; the media column holds the file's bytes) ----------------
class HfMedia(RecordModel):
    bytes: bytes
    path: str


class HfBlock(RecordModel):
    type: Literal["text", "audio", "video"]
    text: str | None = None


class HfMessage(RecordModel):
    role: Literal["system", "user", "assistant"]
    content: list[HfBlock]


class HfSegment(RecordModel):
    id: str | None = None
    start: float
    end: float
    track: str
    label: str
    text: str
    attributes: dict[str, FieldValue] | None = None
    agreement: float
    support: int | None = None


class HfItemRow(RecordModel):
    """sft-transcription / reward-segments without --clips: one item, its whole media, its segments."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str
    audio: HfMedia | None = None
    video: HfMedia | None = None
    duration: float | None
    language: str | None = None
    field: str | None = None
    score: float | None = None
    raw_score: float | None = None
    fields: dict[str, FieldValue] | None = None
    segments: list[HfSegment] | None = None
    spans: list[HfSegment] | None = None
    lineage: Lineage


class HfClipRow(HfSegment):
    """--clips: one segment (span), its media cut at the segment boundaries (start/end: in the source)."""

    id: str  # type: ignore[assignment]
    audio: HfMedia | None = None
    video: HfMedia | None = None
    language: str | None = None
    agreement: float | None = None  # type: ignore[assignment]
    field: str | None = None
    score: float | None = None
    raw_score: float | None = None
    fields: dict[str, FieldValue] | None = None
    lineage: Lineage


class HfTrlRow(RecordModel):
    """The TRL-typed rows (preference-correction, sft-summary, kto, preference-ratings, dense-preference):
    conversational columns with media placeholders, the media in `audios`/`videos` in placeholder order."""

    id: str
    prompt: list[HfMessage]
    chosen: list[HfMessage] | None = None
    rejected: list[HfMessage] | None = None
    completion: list[HfMessage] | None = None
    label: bool | None = None
    score: float | None = None
    chosen_score: float | None = None
    rejected_score: float | None = None
    margin: float | None = None
    audios: list[HfMedia] | None = None
    videos: list[HfMedia] | None = None
    start: float | None = None
    end: float | None = None
    fields: dict[str, FieldValue] | None = None
    candidates: list[DenseCandidate] | None = None
    preferred: Literal["a", "b", "tie"] | None = None
    spans: list[DenseSpan] | None = None
    lineage: Lineage | PairLineage


# -- nemo ------------------------------------------------------------------------------------------
class NemoManifestLine(RecordModel):
    """One NeMo ASR/TTS manifest line; `audio_filepath` relative to the manifest's directory."""

    audio_filepath: str
    offset: float | None = Field(default=None, ge=0)
    duration: float = Field(gt=0)
    text: str
    speaker: str | None = None
    lang: str | None = None


class NemoDpoRecord(RecordModel):
    """NeMo-Aligner DPO line (prompt and responses in NeMo's default chat template)."""

    prompt: str
    chosen_response: str
    rejected_response: str
    chosen_reward: float | None = None
    rejected_reward: float | None = None


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


class S3Location(RecordModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    uri: S3Uri
    bucket_owner: str | None = Field(default=None, alias="bucketOwner")


class MediaSource(RecordModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    s3_location: S3Location = Field(alias="s3Location")


class VideoSpec(RecordModel):
    format: Literal["mp4", "mov", "mkv"]
    source: MediaSource


class ImageSpec(RecordModel):
    format: Literal["png", "jpeg", "gif"]
    source: MediaSource


class VideoBlock(RecordModel):
    video: VideoSpec


class ImageBlock(RecordModel):
    image: ImageSpec


class ConversationMessage(RecordModel):
    role: Literal["user", "assistant"]
    content: list[TextBlock | VideoBlock | ImageBlock]


class BedrockConversationRecord(RecordModel):
    """`bedrock-conversation-2024` (Nova fine-tuning, distillation)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_version: Literal["bedrock-conversation-2024"] = Field(alias="schemaVersion")
    system: list[TextBlock] = Field(default_factory=list)
    messages: list[ConversationMessage] = Field(min_length=2)


class NovaCandidate(RecordModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    content: list[TextBlock] = Field(min_length=1)
    preference_label: Literal["preferred", "non-preferred"] = Field(alias="preferenceLabel")


class NovaCandidatesTurn(RecordModel):
    role: Literal["assistant"]
    candidates: list[NovaCandidate] = Field(min_length=2, max_length=2)


class NovaDpoRecord(RecordModel):
    """Amazon Nova DPO: a bedrock-conversation-2024 conversation whose last turn holds the candidates."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_version: Literal["bedrock-conversation-2024"] = Field(alias="schemaVersion")
    system: list[TextBlock] = Field(default_factory=list)
    messages: list[ConversationMessage | NovaCandidatesTurn] = Field(min_length=2)


class BedrockPromptCompletionRecord(RecordModel):
    prompt: str
    completion: str


# -- bedrock batch inference -------------------------------------------------------------------
class BedrockBatchRecord(RecordModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    record_id: str = Field(alias="recordId", pattern=r"^[A-Za-z0-9]{11}$")
    model_input: dict[str, Any] = Field(alias="modelInput", description="InvokeModel or Converse body")


class ReservedRewrite(RecordModel):
    """One Amazon Nova reserved word rewritten in a Bedrock line (toolkit.export.reserved)."""

    field: str = Field(description="Dotted path of the text in the output line, e.g. messages.0.content.0.text")
    at: int = Field(ge=0, description="0-based character offset of the word in that text")
    word: str = Field(description="The word as it was, e.g. User:")


class ProvenanceRecord(RecordModel):
    """One line of the provenance sidecar: which output record (by row or recordId) came from where."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    row: int = Field(description="0-based row in `file`")
    file: str
    record_id: str | None = Field(default=None, alias="recordId")
    id: str
    lineage: Lineage | CompareLineage | PairLineage
    reserved: list[ReservedRewrite] | None = Field(
        default=None, description="Bedrock formats: the reserved words rewritten in this row, to restore it exactly")


class BatchJobFile(RecordModel):
    path: str
    records: int
    bytes: int


class BatchJob(RecordModel):
    prefix: str
    records: int
    bytes: int
    files: list[BatchJobFile]
    records_map: str | None = Field(default=None, description="The job's recordId map, e.g. records/job-000.jsonl")


class BatchBodySettings(RecordModel):
    body: Literal["anthropic", "converse", "llama", "titan"]
    anthropic_version: str
    max_tokens: int


class BatchPlan(RecordModel):
    """`jobs.json` next to the batch files: one entry per CreateModelInvocationJob input prefix."""

    quotas: dict[str, int]
    preset: str | None = Field(default=None, description="The export preset the prompts come from")
    body: BatchBodySettings | None = Field(default=None, description="The model input body the preset asked for")
    jobs: list[BatchJob]


class BatchRecordMapEntry(RecordModel):
    """One line of `records/job-NNN.jsonl`: a batch record back to its interaction and segment."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    record_id: str = Field(alias="recordId", pattern=r"^[A-Za-z0-9]{11}$")
    id: str = Field(description="The export record id (as in provenance.jsonl)")
    interaction_id: str
    segment_id: str | None = Field(description="None for a record about the whole item")
    source_ref: S3Uri
    line: int = Field(description="1-based line of the output manifest")
    file: str = Field(description="The input file of the job, e.g. job-000/part-000.jsonl")
    row: int = Field(description="0-based row in `file`")


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


def encode(record: BaseModel, exclude: set[str] | None = None) -> dict[str, Any]:
    """The one way an export record becomes the dict the writers serialise (orjson, Arrow): keys in
    model order, nulls kept (unlike `base.dump`: a record's null says "not known" and keeps every
    row's columns alike), `exclude` for the keys a writer does not read. From fields not yet a model:
    `build`."""
    return record.model_dump(exclude=exclude)


def build(model: type[BaseModel], fields: dict[str, Any], exclude: set[str] | None = None) -> dict[str, Any]:
    """`encode(model(**fields), exclude)` in one pass, several times cheaper (the export's hot path:
    a record per segment): `fields` validated by `model`'s own rules and defaults, built straight into
    the dict the writers take, with no model objects to build and serialise again. Raises pydantic's
    ValidationError, naming the field (never the value)."""
    out = _dict_validator(model).validate_python(fields)
    for key in exclude or ():
        out.pop(key, None)
    return out


@cache
def _dict_validator(model: type[BaseModel]) -> SchemaValidator:
    """`model`'s validator, made to build dicts: every model in its core schema (nested ones too)
    becomes a typed dict with the same fields, validators, defaults and `extra`. Its output is
    `model_dump()`'s: keys in field order, defaults filled in, nulls kept, `exclude_if` fields left out."""
    return SchemaValidator(_as_dicts(model.__pydantic_core_schema__))


def _as_dicts(node: Any) -> Any:
    if isinstance(node, list):
        return [_as_dicts(x) for x in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") != "model":
        return {key: _as_dicts(value) for key, value in node.items()}
    inner, config = node["schema"], node.get("config") or {}
    if inner["type"] != "model-fields" or node.get("root_model") or node.get("post_init"):
        raise TypeError(f"{node.get('cls')}: only plain models can be built as dicts")
    fields = {}
    for name, spec in inner["fields"].items():
        schema = _as_dicts(spec["schema"])
        fields[name] = {"type": "typed-dict-field", "schema": schema, "required": schema["type"] != "default",
                        **{k: spec[k] for k in ("validation_alias", "metadata") if k in spec}}
    out: dict[str, Any] = {"type": "typed-dict", "fields": fields, "config": config,
                           "extra_behavior": config.get("extra_fields_behavior", "ignore")}
    if node.get("ref"):
        out["ref"] = node["ref"]
    cls = node["cls"]
    dropped = {name: info.exclude_if for name, info in cls.model_fields.items() if info.exclude_if is not None}
    if dropped:  # what model_dump leaves out: applied after validation, like the serialiser does
        def drop(value: dict[str, Any]) -> dict[str, Any]:
            for name, rule in dropped.items():
                if rule(value[name]):
                    del value[name]
            return value

        ref = out.pop("ref", None)
        out = {"type": "function-after", "function": {"type": "no-info", "function": drop}, "schema": out}
        if ref:
            out["ref"] = ref
    return out


def decode(model: type[M], line: bytes | str) -> M:
    """One exported line read back as its model (pydantic's ValidationError names the field)."""
    return model.model_validate_json(line)


EXPORT_RECORD_MODELS: dict[str, type[BaseModel]] = {
    "export-lineage": Lineage,
    "export-transcription": TranscriptionRecord,
    "export-summary": SummaryRecord,
    "export-correction-pair": CorrectionPairRecord,
    "export-model-pair": ModelPairRecord,
    "export-rating-pair": RatingPairRecord,
    "export-compare-pair": ComparePairRecord,
    "export-kto": KtoRecord,
    "export-reward": RewardRecord,
    "export-dense-preference": DensePreferenceRecord,
    "export-stepwise": StepwiseRecord,
    "export-nova-dpo": NovaDpoRecord,
    "export-nemo-dpo": NemoDpoRecord,
    "export-nemo-manifest": NemoManifestLine,
    "export-provenance": ProvenanceRecord,
    "export-batch-plan": BatchPlan,
    "export-batch-record-map": BatchRecordMapEntry,
    "merged-labels": MergedLabels,
}
