"""What the worker UI submits: one SegmentationAnswer per worker per data object.

The UI posts it as JSON in the hidden crowd-form field `answer` (see ANSWER_FIELD). Validation has
two layers: structural rules here (times, references, ids) and schema rules in
`validate_answer()` (labels, field values, required fields), which needs the LabelSchema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, model_validator

from toolkit.contract.base import CamelModel

if TYPE_CHECKING:  # the manifest line (which schema.py imports) holds a gold SegmentationAnswer
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


class SegmentationAnswer(CamelModel):
    schema_version: Literal["1.0"] = ANSWER_SCHEMA_VERSION
    label_schema: str | None = Field(default=None, description="Name of the LabelSchema used")
    interaction_id: str | None = None
    media_duration: float = Field(gt=0)
    tracks: list[AnswerTrack] = Field(default_factory=list)
    segments: list[AnswerSegment] = Field(default_factory=list)
    content: dict[str, FieldValue] = Field(default_factory=dict)
    prefill: dict[str, AnswerPrefill] = Field(
        default_factory=dict, description="Model texts the content fields started from, by field name")
    started_at: str | None = None
    submitted_at: str | None = None

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


def validate_answer(answer: SegmentationAnswer, schema: LabelSchema) -> list[AnswerProblem]:
    """Every way the answer breaks the label schema (labels, attributes, required fields)."""
    problems: list[AnswerProblem] = []
    for i, track in enumerate(answer.tracks):
        category = schema.track(track.category)
        if category is None:
            problems.append(AnswerProblem(path=f"tracks[{i}].category",
                                          message=f"unknown track category {track.category!r}"))
        elif track.label not in category.labels:
            problems.append(AnswerProblem(path=f"tracks[{i}].label",
                                          message=f"{track.label!r} is not a {category.display} label"))
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
