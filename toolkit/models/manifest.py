"""Ground Truth input manifest lines (one JSON object per line, dashed keys)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from toolkit.models.base import DashedModel

MediaType = Literal["audio", "video"]

# Ground Truth limits ("Use an Input Manifest File"): a line is at most 100,000 characters and a
# single attribute at most 20,000. We count the line in UTF-8 bytes, the stricter reading.
MAX_LINE_BYTES = 100_000
MAX_ATTRIBUTE_CHARS = 20_000


def check_s3_uri(value: str) -> str:
    if not value.startswith("s3://") or len(value) <= len("s3://") or "/" not in value[5:]:
        raise ValueError(f"expected an s3://BUCKET/KEY URI, got {value[:80]!r}")
    return value


class PreSegment(BaseModel):
    """A machine-made segment offered to the worker as an editable starting point."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    track: str = Field(min_length=1, description="Track category, e.g. 'speaker'")
    label: str = Field(min_length=1, description="Label within the category, e.g. 'Agent'")
    start: float = Field(ge=0)
    end: float = Field(gt=0)
    text: str = ""
    speaker: str | None = Field(default=None, description="Raw diarization label, e.g. 'spk_0'")
    source: str = Field(default="transcribe", description="What produced it")

    @model_validator(mode="after")
    def _ordered(self) -> PreSegment:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be greater than start ({self.start})")
        return self


class Sidecar(DashedModel):
    """What moves out of a manifest line when it would exceed Ground Truth's size limits."""

    interaction_id: str
    transcription: str | None = None
    pre_segments: list[PreSegment] | None = None


class ManifestLine(DashedModel):
    """One data object of a Ground Truth custom audio/video job.

    Extra keys are allowed because Ground Truth copies them through to the pre-annotation Lambda and
    into the output manifest (where label attributes and `<attr>-metadata` join them).
    """

    source_ref: str = Field(description="S3 URI of the audio or video object")
    media_type: MediaType
    interaction_id: str = Field(min_length=1)
    duration_seconds: float | None = Field(default=None, gt=0)
    language_code: str | None = None
    transcription: str | None = None
    pre_segments: list[PreSegment] | None = None
    sidecar_ref: str | None = Field(
        default=None, description="URI of a Sidecar JSON holding transcription and/or pre-segments"
    )
    peaks_ref: str | None = Field(
        default=None,
        description="URI of a peaks JSON, plain or gzip-compressed with Content-Encoding: gzip (see `gtkit peaks`)",
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Passthrough feedback fields")

    @field_validator("source_ref")
    @classmethod
    def _s3(cls, value: str) -> str:
        return check_s3_uri(value)

    @model_validator(mode="after")
    def _no_dollar_keys(self) -> ManifestLine:
        for key in self.model_extra or {}:
            if key.startswith("$"):
                raise ValueError(f"Ground Truth rejects keys starting with '$': {key!r}")
        return self


class PeaksFile(BaseModel):
    """Precomputed min/max waveform peaks, readable by the worker UI (wavesurfer `peaks`)."""

    version: Literal[1] = 1
    sample_rate: int = Field(gt=0, description="Sample rate of the decoded audio")
    peaks_per_second: float = Field(gt=0)
    duration: float = Field(gt=0, description="Media duration in seconds")
    channels: int = Field(default=1, ge=1)
    data: list[list[float]] = Field(
        description="One list per channel of interleaved [min, max] pairs in [-1, 1]"
    )
