"""The consolidated label of one data object: what the post-annotation Lambda returns under
`consolidatedAnnotation.content.<labelAttributeName>` and what the exporter reads back from the
output manifest. Produced by `toolkit.labeling.consolidate`.

Its codec: `encode` (the post-annotation response, through contract/consolidation.py) and `decode`
(the exporter, merge, report, trust checks), which reads a label as `LabelOnRead`: `ConsolidatedLabel`
with the invariants the post-annotation Lambda guarantees made strict, because a manifest line can
come from anywhere: times are finite seconds >= 0 with end >= start, every agreement is a number in
[0, 1] (never `true`, never `1e30`), counts are integers, and `labelSchema` is a schema name (the
Lambda records the `name` of its LabelSchema), not a path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from toolkit.contract.answer import FieldValue, SegmentationAnswer
from toolkit.contract.base import CamelModel, dump
from toolkit.contract.schema import SCHEMA_NAME_PATTERN

CONSOLIDATED_SCHEMA_VERSION = "1.0"


class WorkerAnswer(CamelModel):
    """One worker's submission, kept for audit. Invalid answers keep their raw content and why."""

    worker_id: str
    valid: bool
    problems: list[str] = Field(default_factory=list)
    answer: SegmentationAnswer | None = None
    raw: Any = Field(default=None, description="The submission as received, when it failed to parse")
    answer_omitted: bool | None = Field(
        default=None,
        description="answer/raw were dropped from the Lambda response to stay under Lambda's 6 MB response "
        "limit; Ground Truth keeps every worker's submission under annotations/worker-response/",
    )


class ConsolidatedSegment(CamelModel):
    id: str
    category: str = Field(description="Track category, e.g. speaker")
    label: str = Field(description="Track label, e.g. Customer")
    start: float
    end: float
    text: str = Field(default="", description="The chosen text (majority, else the longest)")
    texts: dict[str, str] = Field(default_factory=dict, description="Text per worker id")
    attributes: dict[str, FieldValue] = Field(default_factory=dict)
    attribute_agreement: dict[str, float] = Field(default_factory=dict)
    support: int = Field(ge=1, description="How many workers marked this segment")
    agreement: float = Field(ge=0, le=1, description="Share of valid workers who marked it, x mean IoU")
    presegment_id: str | None = None


class Prefill(CamelModel):
    """The model answer a text field was pre-filled with (manifest `pre-content`), kept beside the workers'."""

    value: str
    model_id: str
    record_id: str | None = None
    system: str = ""
    prompt: str = ""
    params: dict[str, Any] = Field(default_factory=dict)


class ContentResult(CamelModel):
    """A full-content field across workers: majority (choices, booleans, text) or mean (ratings)."""

    value: FieldValue
    agreement: float = Field(ge=0, le=1)
    tie: bool = False
    votes: dict[str, int] = Field(default_factory=dict)
    mean: float | None = None
    values: dict[str, FieldValue] = Field(default_factory=dict, description="Value per worker id")
    prefill: Prefill | None = Field(default=None, description="The model text the workers started from, if any")


class ConsolidatedSpan(CamelModel):
    """Span preference marks of several workers that overlap (IoU) and favour the same candidate."""

    id: str
    start: float
    end: float
    preferred: str = Field(description="Candidate id")
    preferred_system: str | None = None
    reason: str = Field(description="Majority reason")
    reasons: dict[str, int] = Field(default_factory=dict)
    support: int = Field(ge=1, description="How many workers marked it")


class ConsolidatedComparison(CamelModel):
    """A comparison task across workers: majority preference, mean strength, agreement."""

    systems: dict[str, str | None] = Field(default_factory=dict, description="Candidate id -> system id")
    preferred: str | None = Field(default=None, description="Majority candidate id; null: no preference "
                                                            "won or the vote is tied")
    preferred_system: str | None = None
    votes: dict[str, int] = Field(default_factory=dict, description="Candidate id (or 'none') -> workers")
    tie: bool = False
    agreement: float = Field(ge=0, le=1, description="Share of workers who gave the majority preference")
    strength: float = Field(description="Mean CMOS strength towards `preferred` (others count negative, "
                                        "no preference 0); 0 without a winner")
    mos: dict[str, float] = Field(default_factory=dict, description="Mean MOS per candidate id")
    preferred_positions: dict[str, int] = Field(
        default_factory=dict, description="Shown position (A, B, ...) of each worker's preferred candidate -> "
                                          "count: position-bias check")
    orders: dict[str, list[str]] = Field(default_factory=dict, description="Display order per worker id")
    spans: list[ConsolidatedSpan] = Field(default_factory=list)


class Agreement(CamelModel):
    overall: float | None = None
    segments: float | None = None
    content: float | None = None
    comparison: float | None = None


class CannotAnnotateResult(CamelModel):
    """Most valid workers could not annotate the item: the reason they gave most (ties: the first)."""

    reason: str
    votes: dict[str, int] = Field(default_factory=dict, description="Workers per reason")
    share: float = Field(ge=0, le=1, description="Share of the valid workers who could not annotate it")


class ConsolidatedLabel(CamelModel):
    schema_version: Literal["1.0"] = CONSOLIDATED_SCHEMA_VERSION
    status: Literal["ok", "error"] = "ok"
    error: str | None = Field(default=None, description="Why no label could be made (status=error)")
    label_schema: str | None = None
    interaction_id: str | None = None
    media_duration: float | None = None
    worker_count: int = 0
    valid_worker_count: int = 0
    segments: list[ConsolidatedSegment] = Field(default_factory=list)
    content: dict[str, ContentResult] = Field(default_factory=dict)
    agreement: Agreement = Field(default_factory=Agreement)
    cannot_annotate: CannotAnnotateResult | None = Field(
        default=None, description="Set when more than half the valid workers could not annotate the item")
    comparison: ConsolidatedComparison | None = Field(default=None, description="mode: compare only")
    workers: list[WorkerAnswer] = Field(default_factory=list)


# -- the codec ---------------------------------------------------------------------------------
STRICT = ConfigDict(allow_inf_nan=False)
Score = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Seconds = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Count = Annotated[int, Field(strict=True, ge=0)]
SchemaId = Annotated[str, Field(pattern=SCHEMA_NAME_PATTERN)]


class SegmentOnRead(ConsolidatedSegment):
    model_config = STRICT

    start: Seconds
    end: Seconds
    attribute_agreement: dict[str, Score] = Field(default_factory=dict)
    support: Annotated[int, Field(strict=True, ge=1)]
    agreement: Score


class ContentOnRead(ContentResult):
    model_config = STRICT

    agreement: Score
    votes: dict[str, Count] = Field(default_factory=dict)
    mean: Finite | None = None


# Agreement with every figure a strict score (made from its fields, so a new one is checked too).
AgreementOnRead = create_model(  # type: ignore[call-overload]
    "AgreementOnRead", __base__=Agreement, **{name: (Score | None, None) for name in Agreement.model_fields})


class LabelOnRead(ConsolidatedLabel):
    model_config = STRICT

    label_schema: SchemaId | None = None
    media_duration: Seconds | None = None
    worker_count: Count = 0
    valid_worker_count: Count = 0
    segments: list[SegmentOnRead] = Field(default_factory=list)
    content: dict[str, ContentOnRead] = Field(default_factory=dict)
    agreement: AgreementOnRead = Field(default_factory=AgreementOnRead)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _ends_not_before_starts(self) -> LabelOnRead:
        # One check per label rather than a validator call per segment (the hot path of export).
        for i, seg in enumerate(self.segments):
            if seg.end < seg.start:
                raise ValueError(f"segments.{i}.end: end ({seg.end:.3f}) is before start ({seg.start:.3f})")
        return self


class _Opaque(BaseModel):
    """Stands for a raw worker answer: parsed by pydantic-core in Rust, never built in Python."""

    model_config = ConfigDict(extra="ignore")


# The label as `decode(..., workers=False)` reads it, for a model that parses a whole line in one pass
# (the exporter's fast path): the workers' raw answers opaque (the exporter never reads them).
LabelView = create_model(  # type: ignore[call-overload]
    "ConsolidatedLabelView", __base__=LabelOnRead,
    workers=(list[_Opaque], Field(default_factory=list)))


def encode(label: ConsolidatedLabel) -> dict[str, Any]:
    """The label's JSON document (camelCase keys, unset optionals left out)."""
    return dump(label)


def decode(data: dict[str, Any], *, workers: bool = True) -> LabelOnRead:
    """A label read back (from an output manifest, a response), checked as `LabelOnRead`; raises
    pydantic's ValidationError, which names the field. `workers=False`: the workers' audit copies are
    left out unread (their count stays in workerCount), halving the cost of a label."""
    if not workers:
        data = {k: v for k, v in data.items() if k != "workers"}
    return LabelOnRead.model_validate(data)
