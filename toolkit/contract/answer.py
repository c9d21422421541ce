"""What the worker UI submits: one SegmentationAnswer per worker per data object.

The UI posts it as JSON in the hidden crowd-form field `answer` (see ANSWER_FIELD). Validation has
two layers: structural rules here (times, references, ids) and schema rules in
`validate_answer()` (labels, field values, required fields), which needs the LabelSchema.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from toolkit.contract.base import CamelModel
from toolkit.contract.schema import FieldSpec, LabelSchema

ANSWER_SCHEMA_VERSION = "1.0"
ANSWER_FIELD = "answer"  # crowd-form input name that carries the JSON answer
# Full-content fields are also native crowd-form inputs named `content-<field>` (copies of the answer's).
CONTENT_FIELD_PREFIX = "content-"
# Times are seconds rounded to milliseconds: the worker UI rounds every time it stores.
TIME_DECIMALS = 3
# Browser-reported durations and millisecond rounding can disagree by a hair.
TIME_TOLERANCE = 0.001

FieldValue = str | bool | int | float | list[str] | None


class AnswerTrack(CamelModel):
    """A track: a (category, label) pair from the schema, e.g. speaker: Customer."""

    id: str = Field(min_length=1)
    category: str = Field(min_length=1)
    label: str = Field(min_length=1)


class AnswerSegment(CamelModel):
    id: str = Field(min_length=1)
    track: str = Field(min_length=1, description="Id of an AnswerTrack")
    start: float = Field(ge=0, description="Seconds from media start")
    end: float = Field(gt=0, description="Seconds from media start")
    text: str = ""
    attributes: dict[str, FieldValue] = Field(default_factory=dict)
    presegment_id: str | None = Field(
        default=None, description="Id of the pre-segment this segment started from, if any"
    )


class AnswerPrefill(CamelModel):
    """The model text a field was pre-filled with (task input `pre-content`), sent back with the answer:
    the post-annotation Lambda sees only the answers, and the label must keep both texts."""

    value: str
    model_id: str
    record_id: str | None = None


class CannotAnnotate(CamelModel):
    """The worker could not annotate the item: one of the schema's cannot_annotate reasons."""

    reason: str = Field(min_length=1)
    note: str = Field(default="", max_length=2000, description="Optional free text from the worker")


class SpanPreference(CamelModel):
    """A span of the shared timeline where one candidate is better, and why (compare mode)."""

    id: str = Field(min_length=1)
    start: float = Field(ge=0, description="Seconds from media start (all candidates share the timeline)")
    end: float = Field(gt=0)
    preferred: str = Field(min_length=1, description="Candidate id that is better in this span")
    reason: str = Field(min_length=1, description="One of the schema's compare.span_reasons")


class ComparisonAnswer(CamelModel):
    """A worker's judgement of a comparison task. Candidates are named by their manifest
    candidate-id; `order` is how they were shown (first = key A), for position-bias checks."""

    order: list[str] = Field(min_length=2, max_length=4, description="Candidate ids as shown: A, B, C, D")
    preferred: str | None = Field(default=None, description="Best candidate id; null = no preference")
    strength: int = Field(default=0, ge=0, le=3, description="CMOS magnitude: 0 none, 1 slightly, "
                                                             "2 clearly, 3 much better")
    mos: dict[str, float] = Field(default_factory=dict, description="Per-candidate MOS rating")
    spans: list[SpanPreference] = Field(default_factory=list)

    def cmos(self) -> int | None:
        """The signed CMOS of the second-shown candidate against the first (+3: B much better);
        None for three or more candidates."""
        if len(self.order) != 2:
            return None
        if self.preferred is None:
            return 0
        return self.strength if self.preferred == self.order[1] else -self.strength


REVIEW_DECISIONS = ("accept", "edit", "reject")
REVIEW_NOTE_MAX_CHARS = 2000


class ReviewDecision(CamelModel):
    """A reviewer's verdict on the label under review (review tasks only; toolkit/contract/review.py).

    The UI's accept vs edit is a hint: the Python side recomputes the change list and calls an
    answer without changes an accept (toolkit/labeling/review.py)."""

    decision: Literal["accept", "edit", "reject"]
    note: str = Field(default="", max_length=REVIEW_NOTE_MAX_CHARS,
                      description="Why; required for reject (goes back to the annotators with the object)")

    @model_validator(mode="after")
    def _reject_says_why(self) -> ReviewDecision:
        if self.decision == "reject" and not self.note.strip():
            raise ValueError("note: a reject needs a note for the annotators")
        return self


class SegmentationAnswer(CamelModel):
    schema_version: Literal["1.0"] = ANSWER_SCHEMA_VERSION
    label_schema: str | None = Field(default=None, description="Name of the LabelSchema used")
    interaction_id: str | None = None
    media_duration: float = Field(ge=0, description="Seconds; 0 (unknown) only in a cannot-annotate answer")
    cannot_annotate: CannotAnnotate | None = Field(
        default=None, description="Set when the worker could not annotate the item (then no segments)")
    tracks: list[AnswerTrack] = Field(default_factory=list)
    segments: list[AnswerSegment] = Field(default_factory=list)
    content: dict[str, FieldValue] = Field(default_factory=dict)
    comparison: ComparisonAnswer | None = Field(default=None, description="mode: compare schemas only")
    prefill: dict[str, AnswerPrefill] = Field(
        default_factory=dict, description="Model texts the content fields started from, by field name")
    started_at: str | None = None
    submitted_at: str | None = None
    review: ReviewDecision | None = Field(
        default=None, description="Review tasks only: the reviewer's decision on the label shown")

    @model_validator(mode="after")
    def _structure(self) -> SegmentationAnswer:
        problems = structural_problems(self)
        if problems:
            raise ValueError("; ".join(f"{p.path}: {p.message}" for p in problems))
        return self

    def track_by_id(self) -> dict[str, AnswerTrack]:
        return {t.id: t for t in self.tracks}


class AnswerProblem(BaseModel):
    path: str = Field(description="Where, e.g. segments[2].attributes.emotion")
    message: str
    segment_id: str | None = None


def structural_problems(answer: SegmentationAnswer) -> list[AnswerProblem]:
    problems: list[AnswerProblem] = []
    if answer.cannot_annotate is None and not answer.media_duration > 0:
        problems.append(AnswerProblem(path="mediaDuration",
                                      message="the media duration is unknown (the media has not loaded)"))
    if answer.cannot_annotate is not None and answer.segments:
        problems.append(AnswerProblem(path="segments", message="a cannot-annotate answer has no segments"))
    track_ids = [t.id for t in answer.tracks]
    if len(set(track_ids)) != len(track_ids):
        problems.append(AnswerProblem(path="tracks", message="track ids must be unique"))
    seen: set[str] = set()
    for i, seg in enumerate(answer.segments):
        where = f"segments[{i}]"
        if seg.id in seen:
            problems.append(AnswerProblem(path=f"{where}.id", message=f"duplicate segment id {seg.id!r}",
                                          segment_id=seg.id))
        seen.add(seg.id)
        if seg.track not in track_ids:
            problems.append(AnswerProblem(path=f"{where}.track", message=f"unknown track {seg.track!r}",
                                          segment_id=seg.id))
        if not seg.end > seg.start:
            problems.append(AnswerProblem(path=f"{where}.end", segment_id=seg.id,
                                          message=f"end ({seg.end:.3f}) must be after start ({seg.start:.3f})"))
        if seg.end > answer.media_duration + TIME_TOLERANCE:
            problems.append(AnswerProblem(
                path=f"{where}.end", segment_id=seg.id,
                message=f"end ({seg.end:.3f}) is past the end of the media ({answer.media_duration:.3f})"))
    if answer.comparison is not None:
        problems.extend(_comparison_structure(answer.comparison, answer.media_duration))
    return problems


def _comparison_structure(comp: ComparisonAnswer, duration: float) -> list[AnswerProblem]:
    problems: list[AnswerProblem] = []
    shown = set(comp.order)
    if len(shown) != len(comp.order):
        problems.append(AnswerProblem(path="comparison.order", message="candidate ids must be unique"))
    if comp.preferred is not None and comp.preferred not in shown:
        problems.append(AnswerProblem(path="comparison.preferred",
                                      message=f"{comp.preferred!r} is not a shown candidate"))
    if (comp.preferred is None) != (comp.strength == 0):
        problems.append(AnswerProblem(path="comparison.strength",
                                      message="strength is 0 exactly when there is no preference"))
    for key in comp.mos:
        if key not in shown:
            problems.append(AnswerProblem(path=f"comparison.mos.{key}", message=f"{key!r} is not a shown candidate"))
    seen: set[str] = set()
    for i, span in enumerate(comp.spans):
        where = f"comparison.spans[{i}]"
        if span.id in seen:
            problems.append(AnswerProblem(path=f"{where}.id", message=f"duplicate span id {span.id!r}"))
        seen.add(span.id)
        if not span.end > span.start:
            problems.append(AnswerProblem(path=f"{where}.end",
                                          message=f"end ({span.end:.3f}) must be after start ({span.start:.3f})"))
        if span.end > duration + TIME_TOLERANCE:
            problems.append(AnswerProblem(
                path=f"{where}.end", message=f"end ({span.end:.3f}) is past the end of the media ({duration:.3f})"))
        if span.preferred not in shown:
            problems.append(AnswerProblem(path=f"{where}.preferred",
                                          message=f"{span.preferred!r} is not a shown candidate"))
    return problems


def _value_problem(spec: FieldSpec, value: FieldValue) -> str | None:
    """Why `value` is not acceptable for `spec`, or None when it is. Empty means 'not answered'."""
    if _is_empty(value):
        return f"{spec.display} is required" if spec.required else None
    if spec.type == "text":
        return None if isinstance(value, str) else "expected text"
    if spec.type == "boolean":
        return None if isinstance(value, bool) else "expected true or false"
    if spec.type == "single_choice":
        if not isinstance(value, str):
            return "expected one option"
        return None if value in (spec.options or []) else f"{value!r} is not an option of {spec.display}"
    if spec.type == "multiple_choice":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "expected a list of options"
        unknown = [v for v in value if v not in (spec.options or [])]
        return f"not options of {spec.display}: {unknown}" if unknown else None
    if spec.type == "rating":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "expected a number"
        if not spec.min <= value <= spec.max:
            return f"rating must be between {spec.min} and {spec.max}"
        return None
    return f"unsupported field type {spec.type}"


def _is_empty(value: FieldValue) -> bool:
    return value is None or value == "" or value == []


def _overlap_problems(answer: SegmentationAnswer, schema: LabelSchema) -> list[AnswerProblem]:
    """Segments that overlap or touch on a track whose category says no_overlap."""
    problems: list[AnswerProblem] = []
    tracks = answer.track_by_id()
    per_track: dict[str, list[tuple[int, AnswerSegment]]] = {}
    for i, seg in enumerate(answer.segments):
        track = tracks.get(seg.track)
        category = schema.track(track.category) if track else None
        if category is not None and category.no_overlap:
            per_track.setdefault(seg.track, []).append((i, seg))
    for segs in per_track.values():
        segs.sort(key=lambda item: (item[1].start, item[1].end))
        for (_, prev), (i, seg) in pairwise(segs):
            if seg.start <= prev.end:
                problems.append(AnswerProblem(
                    path=f"segments[{i}].start", segment_id=seg.id,
                    message=f"overlaps or touches the segment before it ({prev.start:.3f}-{prev.end:.3f}) "
                            "on a track that allows no overlap"))
    return problems


def validate_answer(answer: SegmentationAnswer, schema: LabelSchema) -> list[AnswerProblem]:
    """Every way the answer breaks the label schema (labels, attributes, required fields)."""
    problems: list[AnswerProblem] = _comparison_problems(answer, schema)
    for i, track in enumerate(answer.tracks):
        category = schema.track(track.category)
        if category is None:
            problems.append(AnswerProblem(path=f"tracks[{i}].category",
                                          message=f"unknown track category {track.category!r}"))
        elif track.label not in category.labels:
            problems.append(AnswerProblem(path=f"tracks[{i}].label",
                                          message=f"{track.label!r} is not a {category.display} label"))
    if answer.cannot_annotate is not None:
        # Nothing else is required of an item the worker could not annotate.
        spec = schema.cannot_annotate
        if spec is None:
            problems.append(AnswerProblem(path="cannotAnnotate",
                                          message="this label schema has no cannot-annotate reasons"))
        elif answer.cannot_annotate.reason not in spec.reasons:
            problems.append(AnswerProblem(path="cannotAnnotate.reason",
                                          message=f"{answer.cannot_annotate.reason!r} is not a cannot-annotate reason"))
        for name in answer.content:
            if schema.content_field(name) is None:
                problems.append(AnswerProblem(path=f"content.{name}", message=f"unknown content field {name!r}"))
        return problems
    problems.extend(_overlap_problems(answer, schema))
    categories = {t.id: t.category for t in answer.tracks}
    for i, seg in enumerate(answer.segments):
        where = f"segments[{i}]"
        category = categories.get(seg.track)
        # A segment on an unknown track is a structural problem; judge its fields as any track's.
        track_spec = schema.track(category) if category is not None else None
        applies = schema.fields_for(category) if track_spec is not None else schema.segment_fields
        asked = {f.name for f in applies}
        takes_text = schema.text_applies(category) if track_spec is not None else schema.segment_text.enabled
        if takes_text and schema.segment_text.required and not seg.text.strip():
            problems.append(AnswerProblem(path=f"{where}.text", segment_id=seg.id,
                                          message=f"{schema.segment_text.label} is required"))
        if not takes_text and schema.segment_text.enabled and seg.text.strip() and track_spec is not None:
            problems.append(AnswerProblem(path=f"{where}.text", segment_id=seg.id,
                                          message=f"{schema.segment_text.label} does not apply to "
                                                  f"{track_spec.display} segments; clear it"))
        for name in seg.attributes:
            spec = schema.segment_field(name)
            if spec is None:
                problems.append(AnswerProblem(path=f"{where}.attributes.{name}", segment_id=seg.id,
                                              message=f"unknown segment field {name!r}"))
            elif spec.name not in asked and not _is_empty(seg.attributes[name]) and track_spec is not None:
                problems.append(AnswerProblem(path=f"{where}.attributes.{name}", segment_id=seg.id,
                                              message=f"{spec.display} does not apply to "
                                                      f"{track_spec.display} segments; clear it"))
        for spec in applies:
            message = _value_problem(spec, seg.attributes.get(spec.name))
            if message:
                problems.append(AnswerProblem(path=f"{where}.attributes.{spec.name}", segment_id=seg.id,
                                              message=message))
    for name in answer.content:
        if schema.content_field(name) is None:
            problems.append(AnswerProblem(path=f"content.{name}", message=f"unknown content field {name!r}"))
    for spec in schema.content_fields:
        message = _value_problem(spec, answer.content.get(spec.name))
        if message:
            problems.append(AnswerProblem(path=f"content.{spec.name}", message=message))
    return problems


def _comparison_problems(answer: SegmentationAnswer, schema: LabelSchema) -> list[AnswerProblem]:
    """compare mode: a comparison is required and follows the schema's compare settings."""
    comp = answer.comparison
    if schema.mode != "compare":
        return [AnswerProblem(path="comparison", message="this schema is not a comparison (mode: compare)")] \
            if comp is not None else []
    spec = schema.compare
    assert spec is not None  # LabelSchema fills it in for mode: compare
    if comp is None:
        return [AnswerProblem(path="comparison", message="a comparison answer is required")]
    problems: list[AnswerProblem] = []
    if not spec.min_candidates <= len(comp.order) <= spec.max_candidates:
        problems.append(AnswerProblem(path="comparison.order", message=(
            f"{len(comp.order)} candidates; this schema compares {spec.min_candidates} to {spec.max_candidates}")))
    if comp.preferred is None and not spec.allow_no_preference:
        problems.append(AnswerProblem(path="comparison.preferred", message="choose the better candidate"))
    for key, value in comp.mos.items():
        if not spec.mos.enabled:
            problems.append(AnswerProblem(path=f"comparison.mos.{key}", message="this schema asks no MOS rating"))
        elif not spec.mos.min <= value <= spec.mos.max:
            problems.append(AnswerProblem(path=f"comparison.mos.{key}",
                                          message=f"rating must be between {spec.mos.min} and {spec.mos.max}"))
    if spec.mos.enabled and spec.mos.required:
        for key in comp.order:
            if key not in comp.mos:
                problems.append(AnswerProblem(path=f"comparison.mos.{key}", message=f"{spec.mos.label} is required"))
    for i, span in enumerate(comp.spans):
        if span.reason not in spec.span_reasons:
            problems.append(AnswerProblem(path=f"comparison.spans[{i}].reason",
                                          message=f"{span.reason!r} is not one of the span reasons"))
    return problems
