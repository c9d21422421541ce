"""The consolidated label of one data object: what the post-annotation Lambda returns under
`consolidatedAnnotation.content.<labelAttributeName>` and what the exporter reads back from the
output manifest. Produced by `toolkit.labeling.consolidate`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from toolkit.contract.answer import FieldValue, SegmentationAnswer
from toolkit.contract.base import CamelModel

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
