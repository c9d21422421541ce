"""The processed feedback record emitted by the upstream pipeline (one JSON object per line), and its
codec: `decode` (a line or CSV row -> `FeedbackRecord`, what `gtkit manifest build` reads) and
`loads` / `encode` (a line as JSON and back, what `gtkit merge` reads and writes with `human_labels`).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from toolkit.contract import jsonio
from toolkit.contract.base import json_type, problems_from, refuse_deep_nesting
from toolkit.contract.uri import S3Uri, StorageUri
from toolkit.errors import GtkitError, Problem

ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")

Channel = Literal["voice", "chat", "video"]
MediaFormat = Literal["wav", "mp3", "mp4", "flac", "ogg", "m4a", "webm", "mov"]


class Sentiment(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    label: Literal["POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED"]
    score: float = Field(ge=0, le=1)


class Entity(BaseModel):
    """Amazon Comprehend DetectEntities style entity; offsets index into `transcript`."""

    model_config = ConfigDict(extra="allow", strict=True)

    text: str
    type: str
    score: float | None = None
    begin_offset: int | None = None
    end_offset: int | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    role: str
    sent_at: str | None = None
    text: str


class FeedbackRecord(BaseModel):
    """One processed feedback record. Unknown fields are kept (extra="allow") and passed on.

    Strict: a number where a string belongs (or the reverse) is an error, never coerced, so the
    upstream pipeline hears about its bugs instead of having them papered over.
    Timestamps stay strings (validated ISO 8601) so records round-trip byte for byte.
    """

    model_config = ConfigDict(extra="allow", strict=True)

    interaction_id: str = Field(min_length=1)
    customer_id: str | None = None
    session_id: str | None = None
    channel: Channel
    created_at: str | None = None
    language_code: str | None = None
    media_uri: S3Uri | None = None
    local_media: str | None = None
    media_format: MediaFormat | None = None
    duration_seconds: float | None = Field(default=None, gt=0)
    transcribe_output_uri: StorageUri | None = None
    local_transcribe_output: str | None = None
    speaker_roles: dict[str, str] | None = None
    transcript: str | None = None
    messages: list[ChatMessage] | None = None
    sentiment: Sentiment | None = None
    entities: list[Entity] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)
    agent_id: str | None = None
    pipeline_version: str | None = None
    processed_at: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_too_deep(cls, data: Any) -> Any:
        return refuse_deep_nesting(data)

    @field_validator("created_at", "processed_at")
    @classmethod
    def _iso_timestamp(cls, value: str | None) -> str | None:
        if value is not None and not ISO_8601.match(value):
            raise ValueError("expected an ISO 8601 timestamp such as 2024-05-13T16:20:44Z")
        return value

    @property
    def has_media(self) -> bool:
        return bool(self.media_uri)


class FeedbackError(GtkitError, ValueError):
    """A feedback record that cannot be read; `problems` name the fields (never their values).
    `kind`: "error", or "skipped" for a record that is valid but has nothing to label (ingest)."""

    kind: Literal["error", "skipped"] = "error"

    def __init__(self, problems: list[Problem], kind: Literal["error", "skipped"] = "error"):
        super().__init__("; ".join(map(str, problems)), problems=problems)
        self.kind = kind


def decode(text: str | bytes | dict[str, Any]) -> FeedbackRecord:
    """A JSON line (or an already-decoded CSV row) -> FeedbackRecord, or FeedbackError naming fields
    (plain-word messages: the people fixing the file read them)."""
    if isinstance(text, dict):
        data: Any = text
    else:
        try:
            data = jsonio.loads(text)
        except jsonio.JSONDecodeError as exc:
            raise FeedbackError([Problem("(line)", f"invalid JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise FeedbackError([Problem("(line)", f"expected a JSON object, got {json_type(data)}")])
    try:
        return FeedbackRecord.model_validate(data)
    except ValidationError as exc:
        raise FeedbackError(problems_from(exc, plain=True)) from None


def loads(raw: bytes) -> Any:
    """A feedback line as the JSON it holds, unvalidated: `gtkit merge` passes on records whatever
    they hold (json, not orjson: NaN and huge integers read and write back as they were). Raises
    json's ValueError, or RecursionError for a line nested past the parser's limit."""
    return json.loads(raw)


def encode(record: dict[str, Any]) -> bytes:
    """One feedback line (without its line ending), text kept as UTF-8. Raises RecursionError for a
    record nested past the serialiser's limit."""
    return json.dumps(record, ensure_ascii=False).encode("utf-8")
