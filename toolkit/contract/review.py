"""The review round's wire shapes (docs/review.md).

- `ReviewInput`: the manifest line's `review` key (or the JSON file its `review-ref` names), what a
  review task shows: the prior consolidated label, each worker's answer under a pseudonym, and the
  disagreements computed in Python (toolkit/labeling/review.py), most severe first.
- The reviewer's answer is a SegmentationAnswer with `review` (`ReviewDecision`, contract/answer.py).
- `ReviewedLabel` + `ReviewedLabelMetadata`: what a review job writes under its own label attribute
  and `<attr>-metadata` (Ground Truth chained-job form, `adjustment-status` as in adjustment jobs).
- `ReviewNote`: `review-note` on the manifest line of an object a reviewer rejected, sent back to
  the annotators.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from toolkit.contract.answer import (
    REVIEW_DECISIONS,
    REVIEW_NOTE_MAX_CHARS,
    FieldValue,
    ReviewDecision,
    SegmentationAnswer,
)
from toolkit.contract.base import DashedModel, to_dashed
from toolkit.contract.consolidated import ConsolidatedLabel

REVIEW_KEY = "review"            # ManifestLine.review on the wire
REVIEW_REF_KEY = "review-ref"    # ManifestLine.review_ref: the ReviewInput moved to a sidecar file
REVIEW_NOTE_KEY = "review-note"  # ManifestLine.review_note
REVIEW_SIDECAR_SUFFIX = ".review.json"
DISAGREEMENT_KINDS = ("low-agreement", "low-support", "content-tie", "content-disagreement")
ADJUSTMENT_STATUSES = ("adjusted", "unadjusted")

__all__ = ["ADJUSTMENT_STATUSES", "DISAGREEMENT_KINDS", "REVIEW_DECISIONS", "REVIEW_KEY", "REVIEW_NOTE_KEY",
           "REVIEW_NOTE_MAX_CHARS", "REVIEW_REF_KEY", "REVIEW_SIDECAR_SUFFIX", "Disagreement", "FieldChange",
           "MovedSegment", "RelabeledSegment", "ReviewChanges", "ReviewDecision", "ReviewInput", "ReviewNote",
           "ReviewWorker", "ReviewedLabel", "ReviewedLabelMetadata"]


class _StrictDashed(BaseModel):
    model_config = ConfigDict(alias_generator=to_dashed, populate_by_name=True, extra="forbid")


class Disagreement(_StrictDashed):
    """Something the workers disagree on, for the reviewer to look at first."""

    kind: Literal["low-agreement", "low-support", "content-tie", "content-disagreement"]
    segment_id: str | None = Field(default=None, description="Consolidated segment id, when about one segment")
    field: str | None = Field(default=None, description="Content field name, when about one field")
    start: float | None = None
    end: float | None = None
    score: float = Field(ge=0, le=1, description="The agreement (0-1) that triggered it")
    message: str = Field(description="Plain words for the reviewer (no worker ids, no annotation text)")


class ReviewWorker(_StrictDashed):
    """One worker's (valid) answer, under a pseudonym (w1, w2, ...) stable within the object."""

    worker: str = Field(min_length=1, description="Pseudonym shown to the reviewer, e.g. w1")
    answer: SegmentationAnswer


class ReviewInput(_StrictDashed):
    """The manifest line's `review` key: what a review task shows besides the editable label
    (which is the line's `pre-segments`/`pre-content`, made by `consolidated_to_answer`)."""

    of_job: str = Field(min_length=1, description="The labeling job reviewed")
    label_attribute: str = Field(min_length=1, description="The prior label attribute in the output manifest")
    iteration: int = Field(default=1, ge=1, description="Review iteration (1 = first review)")
    consolidated: ConsolidatedLabel = Field(description="The prior label, worker ids replaced by the pseudonyms")
    answer: SegmentationAnswer | None = Field(
        default=None, description="The editable starting point: the prior label as an answer (segments with "
                                  "attributes, every content field, pre-fills), to load like a saved answer")
    workers: list[ReviewWorker] = Field(default_factory=list)
    disagreements: list[Disagreement] = Field(default_factory=list, description="Most severe first")


class ReviewNote(_StrictDashed):
    """On the manifest line of an object sent back to annotators after a reject."""

    note: str = Field(min_length=1, max_length=REVIEW_NOTE_MAX_CHARS)
    iteration: int = Field(ge=2, description="The labeling iteration this line starts (the first was 1)")


class MovedSegment(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    id: str
    from_: tuple[float, float] = Field(alias="from", description="[start, end] before")
    to: tuple[float, float] = Field(description="[start, end] after")


class RelabeledSegment(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    id: str
    from_: str = Field(alias="from", description="Track label before")
    to: str


class FieldChange(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: FieldValue = Field(alias="from")
    to: FieldValue


class ReviewChanges(BaseModel):
    """What the reviewer changed against the prior consolidated label. Ids are the prior label's
    segment ids, except `added` (the reviewer's new segment ids)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    moved: list[MovedSegment] = Field(default_factory=list)
    relabeled: list[RelabeledSegment] = Field(default_factory=list)
    text: list[str] = Field(default_factory=list, description="Segments whose text changed")
    attributes: list[str] = Field(default_factory=list, description="Segments whose attributes changed")
    fields: dict[str, FieldChange] = Field(default_factory=dict, description="Changed content fields")

    def empty(self) -> bool:
        return not (self.added or self.removed or self.moved or self.relabeled or self.text
                    or self.attributes or self.fields)


class ReviewedLabel(BaseModel):
    """The review job's label attribute value."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    decision: Literal["accept", "edit", "reject"] = Field(description="Recomputed: an edit without changes is accept")
    reviewer: str = Field(description="workerId of the reviewer (of the first, when several reviewed)")
    note: str = ""
    label: ConsolidatedLabel | None = Field(
        default=None, description="The reviewed label (accept: the prior one; edit: the reviewer's); none on reject")
    changes: ReviewChanges = Field(default_factory=ReviewChanges)
    reviewers: list[str] = Field(default_factory=list, description="Every reviewer's workerId, when several")


class ReviewedLabelMetadata(DashedModel):
    """`<review-attr>-metadata`: Ground Truth's custom metadata plus the adjustment status."""

    job_name: str
    type: str = "groundtruth/custom"
    human_annotated: Literal["yes", "no"] = "yes"
    creation_date: str
    adjustment_status: Literal["adjusted", "unadjusted"] = Field(
        description="adjusted when the decision is edit, as in Ground Truth adjustment jobs")
    review_decision: Literal["accept", "edit", "reject"]
