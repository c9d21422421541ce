"""The label schema: a YAML file users edit to define a labeling task.

The template renderer, the worker UI (which receives it as JSON), the answer validator, the
consolidator and the exporter all read this one model, so changing labels never means editing JS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from toolkit.contract.base import MediaType, problems_from
from toolkit.errors import GtkitError, Problem

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"

FieldType = Literal["text", "single_choice", "multiple_choice", "boolean", "rating"]
SEGMENT_FIELD_TYPES: frozenset[str] = frozenset({"text", "single_choice", "multiple_choice", "boolean"})
CONTENT_FIELD_TYPES: frozenset[str] = frozenset(
    {"text", "single_choice", "multiple_choice", "boolean", "rating"}
)


class SchemaModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldSpec(SchemaModel):
    """A question asked per segment or once for the whole media."""

    name: str = Field(pattern=NAME_PATTERN, description="Key in the answer (snake_case)")
    type: FieldType
    label: str | None = Field(default=None, description="Shown to the worker; defaults to the name")
    help: str | None = None
    required: bool = False
    options: list[str] | None = Field(default=None, description="Choices for single/multiple_choice")
    min: int = Field(default=1, description="Rating scale minimum")
    max: int = Field(default=5, description="Rating scale maximum")
    tracks: list[str] | None = Field(
        default=None, min_length=1,
        description="Segment fields only: the track categories whose segments ask this field "
                    "(default: every track)")

    @property
    def display(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @model_validator(mode="after")
    def _options_match_type(self) -> FieldSpec:
        if self.type in ("single_choice", "multiple_choice"):
            if not self.options:
                raise ValueError(f"field {self.name!r}: {self.type} needs a non-empty 'options' list")
            if len(set(self.options)) != len(self.options):
                raise ValueError(f"field {self.name!r}: options must be unique")
        elif self.options:
            raise ValueError(f"field {self.name!r}: 'options' only applies to choice fields")
        if self.type == "rating" and not self.min < self.max:
            raise ValueError(f"field {self.name!r}: rating needs min < max")
        return self


class TrackCategory(SchemaModel):
    """A kind of track (e.g. speaker) and the labels a track of that kind can carry."""

    name: str = Field(pattern=NAME_PATTERN)
    label: str | None = None
    labels: list[str] = Field(min_length=1)
    color: str | None = Field(default=None, description="CSS colour for this category's segments")
    no_overlap: bool = Field(
        default=False,
        description="Segments on one track of this category may not overlap or touch: the UI merges them",
    )

    @property
    def display(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @model_validator(mode="after")
    def _unique(self) -> TrackCategory:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"track category {self.name!r}: labels must be unique")
        return self


class SegmentText(SchemaModel):
    """The free text every segment can carry (e.g. its transcription)."""

    enabled: bool = True
    label: str = "Text"
    required: bool = False
    tracks: list[str] | None = Field(
        default=None, min_length=1,
        description="The track categories whose segments carry text (default: every track)")


class CannotAnnotateSpec(SchemaModel):
    """Reasons a worker may give to submit an item without segments (silence, wrong language...)."""

    label: str = Field(default="I cannot annotate this item", description="Shown next to the reasons")
    reasons: list[str] = Field(min_length=1, description="The worker picks one; it reaches the consolidated label")

    @model_validator(mode="after")
    def _unique(self) -> CannotAnnotateSpec:
        if len(set(self.reasons)) != len(self.reasons) or any(not r.strip() for r in self.reasons):
            raise ValueError("cannot_annotate: reasons must be unique and not empty")
        return self


# A CMOS (comparison mean opinion score) strength: 0 = no preference, 3 = much better (ITU-T P.800).
CMOS_MAX = 3
MIN_CANDIDATES = 2
MAX_CANDIDATES = 4  # keys A/B/C/D in the worker UI


class MosSpec(SchemaModel):
    """An absolute rating (MOS) asked per candidate of a comparison, besides the preference."""

    enabled: bool = False
    label: str = "Quality (MOS)"
    min: int = 1
    max: int = 5
    required: bool = False

    @model_validator(mode="after")
    def _scale(self) -> MosSpec:
        if not self.min < self.max:
            raise ValueError("compare.mos needs min < max")
        return self


class CompareSpec(SchemaModel):
    """`mode: compare`: 2-4 candidates (same prompt, different systems or samples) judged side by side."""

    min_candidates: int = Field(default=MIN_CANDIDATES, ge=MIN_CANDIDATES, le=MAX_CANDIDATES)
    max_candidates: int = Field(default=MAX_CANDIDATES, ge=MIN_CANDIDATES, le=MAX_CANDIDATES)
    question: str = Field(default="Which candidate is better overall?", min_length=1, max_length=255)
    allow_no_preference: bool = Field(
        default=True, description="Whether strength 0 (no preference) may be submitted")
    span_reasons: list[str] = Field(
        default_factory=lambda: ["Pronunciation", "Prosody", "Artifact", "Timing", "Other"], min_length=1,
        description="Reasons a worker picks for a span where one candidate is better")
    mos: MosSpec = Field(default_factory=MosSpec)

    @model_validator(mode="after")
    def _consistent(self) -> CompareSpec:
        if self.min_candidates > self.max_candidates:
            raise ValueError("compare: min_candidates must not exceed max_candidates")
        if len(set(self.span_reasons)) != len(self.span_reasons):
            raise ValueError("compare: span_reasons must be unique")
        return self


# A label schema's name: also what a consolidated label's `labelSchema` must be (contract/consolidated.py).
SCHEMA_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"


class LabelSchema(SchemaModel):
    """A labeling task definition. See docs/label-schema.md."""

    name: str = Field(pattern=SCHEMA_NAME_PATTERN)
    title: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=255)
    instructions: str = ""
    media: MediaType = "audio"
    mode: Literal["segment", "compare"] = Field(
        default="segment", description="segment: mark spans on one media; compare: judge 2-4 candidates")
    compare: CompareSpec | None = Field(default=None, description="mode: compare only")
    tracks: list[TrackCategory] = Field(default_factory=list, description="Required in segment mode")
    segment_text: SegmentText = Field(default_factory=SegmentText)
    segment_fields: list[FieldSpec] = Field(default_factory=list)
    content_fields: list[FieldSpec] = Field(default_factory=list)
    cannot_annotate: CannotAnnotateSpec | None = Field(
        default=None, description="Lets a worker submit without segments, giving one of these reasons")

    @model_validator(mode="after")
    def _consistent(self) -> LabelSchema:
        if self.mode == "compare":
            self.compare = self.compare or CompareSpec()
            if self.tracks or self.segment_fields:
                raise ValueError("mode compare: tracks and segment_fields do not apply (spans are marked "
                                 "per candidate; their reasons are compare.span_reasons)")
        elif self.compare is not None:
            raise ValueError("'compare' only applies to mode: compare")
        elif not self.tracks:
            raise ValueError("tracks: a segment schema needs at least one track category")
        _unique([t.name for t in self.tracks], "track category")
        _unique([f.name for f in self.segment_fields], "segment field")
        _unique([f.name for f in self.content_fields], "content field")
        for spec in self.segment_fields:
            if spec.type not in SEGMENT_FIELD_TYPES:
                raise ValueError(f"segment field {spec.name!r}: type {spec.type} is not allowed per segment")
            self._known_tracks(spec.tracks, f"segment field {spec.name!r}")
        for spec in self.content_fields:
            if spec.tracks is not None:
                raise ValueError(f"content field {spec.name!r}: 'tracks' only applies to segment fields")
        self._known_tracks(self.segment_text.tracks, "segment_text")
        return self

    def _known_tracks(self, names: list[str] | None, what: str) -> None:
        known = [t.name for t in self.tracks]
        for name in names or []:
            if name not in known:
                raise ValueError(f"{what}: tracks names {name!r}, not a track category of this schema "
                                 f"({', '.join(known)})")
        if names is not None and len(set(names)) != len(names):
            raise ValueError(f"{what}: tracks must be unique")

    def track(self, name: str) -> TrackCategory | None:
        return next((t for t in self.tracks if t.name == name), None)

    def segment_field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.segment_fields if f.name == name), None)

    def content_field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.content_fields if f.name == name), None)

    def fields_for(self, category: str) -> list[FieldSpec]:
        """The segment fields asked on segments of track category `category` (`tracks:` in the YAML)."""
        return [f for f in self.segment_fields if f.tracks is None or category in f.tracks]

    def text_applies(self, category: str) -> bool:
        """Whether segments of track category `category` carry segment text."""
        text = self.segment_text
        return text.enabled and (text.tracks is None or category in text.tracks)


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} name {name!r}")
        seen.add(name)


BUILTIN_DIR = Path(__file__).resolve().parent.parent / "schemas"


class SchemaError(GtkitError, ValueError):
    """A label schema file that is not a valid LabelSchema; `problems` name the fields."""


def builtin_schema_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def load_label_schema(source: str | Path) -> LabelSchema:
    """Load a schema from a YAML path, or a built-in one by name (`call-center`)."""
    path = Path(source)
    if not path.exists() and (BUILTIN_DIR / f"{source}.yaml").exists():
        path = BUILTIN_DIR / f"{source}.yaml"
    if not path.exists():
        raise FileNotFoundError(
            f"label schema {str(source)!r} is neither a file nor a built-in schema "
            f"({', '.join(builtin_schema_names())})"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        problem = Problem("(schema)", f"not valid YAML{at}: {getattr(exc, 'problem', None) or exc}")
        raise SchemaError(f"{path}: {problem.message}", problems=[problem]) from None
    if not isinstance(data, dict):
        raise SchemaError(f"{path}: a label schema must be a YAML mapping",
                          problems=[Problem("(schema)", "a label schema must be a YAML mapping")])
    try:
        return LabelSchema.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc, root="(schema)")
        raise SchemaError(f"label schema {path}: " + "; ".join(map(str, problems)), problems=problems) from None


def check_label_schema(source: str | Path) -> tuple[LabelSchema | None, list[Problem]]:
    """`gtkit schema check`: the schema and no problem, or None and every problem of the file (a
    missing file still raises FileNotFoundError)."""
    try:
        return load_label_schema(source), []
    except SchemaError as exc:
        return None, exc.problems
