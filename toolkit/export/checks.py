"""What the exporter accepts from an output manifest line: the label values and item fields, checked
on read, and the label schema a line may name.

`LabelOnRead` is `ConsolidatedLabel` with the invariants the post-annotation Lambda guarantees made
strict, because a manifest line can come from anywhere: times are finite seconds >= 0 with
end >= start, every agreement is a number in [0, 1] (never `true`, never `1e30`), counts are
integers, and `labelSchema` is a schema name (the Lambda records the `name` of its LabelSchema), not
a path. A line that breaks one is reported with the field, and the rest of the file goes on.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import ConfigDict, Field, create_model, model_validator

from toolkit.contract import ConsolidatedLabel, ConsolidatedSegment, ContentResult, LabelSchema, load_label_schema
from toolkit.contract.consolidated import Agreement
from toolkit.contract.schema import BUILTIN_DIR, builtin_schema_names

STRICT = ConfigDict(allow_inf_nan=False)
Score = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Seconds = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Count = Annotated[int, Field(strict=True, ge=0)]
Text = Annotated[str, Field(strict=True)]
# The one pattern of a LabelSchema name, read from the model (not copied).
SCHEMA_NAME = LabelSchema.model_json_schema()["properties"]["name"]["pattern"]
SchemaId = Annotated[str, Field(pattern=SCHEMA_NAME)]


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


class AgreementOnRead(Agreement):
    model_config = STRICT

    overall: Score | None = None
    segments: Score | None = None
    content: Score | None = None
    comparison: Score | None = None


class LabelOnRead(ConsolidatedLabel):
    model_config = STRICT

    label_schema: SchemaId | None = None
    media_duration: Seconds | None = None
    worker_count: Count = 0
    valid_worker_count: Count = 0
    segments: list[SegmentOnRead] = Field(default_factory=list)
    content: dict[str, ContentOnRead] = Field(default_factory=dict)
    agreement: AgreementOnRead = Field(default_factory=AgreementOnRead)

    @model_validator(mode="after")
    def _ends_not_before_starts(self) -> LabelOnRead:
        # One check per label rather than a validator call per segment (the hot path of export).
        for i, seg in enumerate(self.segments):
            if seg.end < seg.start:
                raise ValueError(f"segments.{i}.end: end ({seg.end:.3f}) is before start ({seg.start:.3f})")
        return self


# The item fields of a line that the exporter reads (types only; source-ref and interaction-id are
# also checked for presence by the reader).
ITEM_TYPES: dict[str, Any] = {
    "source-ref": Text | None, "interaction-id": Text | None, "media-type": Text | None,
    "duration-seconds": Seconds | None, "language-code": Text | None, "sidecar-ref": Text | None,
    "metadata": dict[str, Any] | None, "transcription": Text | None, "pre-segments": list[Any] | None,
    "prompt": dict[str, Any] | None, "candidates": list[Any] | None,  # comparison lines
    "pre-content": dict[str, Any] | None,
}
ItemFields = create_model(  # type: ignore[call-overload]
    "ItemFields", __config__=ConfigDict(extra="ignore", allow_inf_nan=False),
    **{key.replace("-", "_"): (kind, Field(None, alias=key)) for key, kind in ITEM_TYPES.items()})
META_TEXT_KEYS = ("job-name", "creation-date")  # <attr>-metadata values that go into the lineage


def non_finite(value: Any, path: str) -> str | None:
    """Path of the first NaN/Infinity in a JSON value (both parsers accept those literals), else None."""
    stack = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return where
        if isinstance(node, dict):
            stack += [(v, f"{where}.{k}") for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(v, f"{where}.{i}") for i, v in enumerate(node)]
    return None


def metadata_problem(attribute: str, meta: dict[str, Any]) -> str | None:
    """`<attr>-metadata` values the lineage takes must be strings (meta: normalised keys)."""
    for key in META_TEXT_KEYS:
        if meta.get(key) is not None and not isinstance(meta[key], str):
            return f"{attribute}-metadata.{key}: expected a string"
    return None


def builtin_schema(name: str) -> LabelSchema | None:
    """The built-in label schema called `name`, None for any other name. A name read from the data
    is only ever looked up among the built-in schemas: never opened as a path."""
    if name not in builtin_schema_names():
        return None
    return load_label_schema(BUILTIN_DIR / f"{name}.yaml")
