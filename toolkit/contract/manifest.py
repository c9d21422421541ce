"""Ground Truth input manifest lines (one JSON object per line, dashed keys) and their sidecars, and
the codec of both: `encode_line` / `parse_line`, `decode_line` (what `gtkit manifest build` writes,
what `manifest validate`, the task input and the services read) and `encode_sidecar` /
`decode_sidecar` (written by the build, read by the exporter and the simulated workers).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from toolkit.contract import jsonio
from toolkit.contract.answer import SegmentationAnswer
from toolkit.contract.base import (
    MAX_NESTING,
    DashedModel,
    MediaType,
    dump,
    problems_from,
    refuse_deep_nesting,
    to_dashed,
)
from toolkit.contract.review import ReviewInput, ReviewNote
from toolkit.contract.uri import S3Uri, StorageUri
from toolkit.errors import GtkitError, Problem

# Ground Truth limits ("Use an Input Manifest File"): a line is at most 100,000 characters and a
# single attribute at most 20,000. We count the line in UTF-8 bytes, the stricter reading.
MAX_LINE_BYTES = 100_000
MAX_ATTRIBUTE_CHARS = 20_000
GOLD_ANSWER_KEY = "gold-answer"  # ManifestLine.gold_answer on the wire


# Millisecond rounding slack (answer.TIME_TOLERANCE; that module imports this one).
_WORD_SLACK = 0.001


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
    channel: int | None = Field(
        default=None, ge=0, description="Audio channel it was heard on (Transcribe channel identification: ch_N)")
    words: list[tuple[float, float, str]] | None = Field(
        default=None, description="Word timings as [start, end, text] (seconds), in time order, within the segment; "
        "the UI shows them zoomed in and snaps boundaries to their edges")

    @model_validator(mode="after")
    def _ordered(self) -> PreSegment:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be greater than start ({self.start})")
        for i, (start, end, _) in enumerate(self.words or []):
            if not (self.start - _WORD_SLACK <= start <= end <= self.end + _WORD_SLACK):
                raise ValueError(f"words[{i}]: [{start}, {end}] is not within the segment [{self.start}, {self.end}]")
        return self


class PreContent(BaseModel):
    """A model's answer to a full-content field (e.g. a call summary), offered to the worker to correct.

    Written by `gtkit manifest build --model-outputs` from `gtkit bedrock import` records; the
    consolidated label keeps it beside the workers' text (ContentResult.prefill), and the
    `preference-model` export preset pairs the two.
    """

    model_config = ConfigDict(extra="forbid")

    value: str = Field(description="The model's text (masked on import)")
    model_id: str
    record_id: str | None = Field(default=None, description="Bedrock batch recordId")
    key: str | None = Field(default=None, description="model_id/recordId of the imported record")
    system: str = ""
    prompt: str = Field(default="", description="The prompt the model answered")
    params: dict[str, Any] = Field(default_factory=dict, description="Inference parameters of its modelInput")
    source: str = Field(default="bedrock-batch", description="What produced it")


class Sidecar(DashedModel):
    """What moves out of a manifest line when it would exceed Ground Truth's size limits."""

    interaction_id: str
    transcription: str | None = None
    pre_segments: list[PreSegment] | None = None


class Candidate(DashedModel):
    """One candidate of a comparison task: a system's (or sample's) output for the line's prompt."""

    model_config = ConfigDict(alias_generator=to_dashed, populate_by_name=True, extra="forbid")

    candidate_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
        description="Stable id within the line (default: 1, 2, ... in manifest order); answers name it")
    source_ref: S3Uri = Field(description="S3 URI of this candidate's audio or video")
    system_id: str | None = Field(
        default=None, min_length=1, max_length=256,
        description="The system (model, checkpoint, sample) that produced it; hidden from workers")
    duration_seconds: float | None = Field(default=None, gt=0)


class ComparePrompt(DashedModel):
    """What the candidates of a comparison answer: the prompt text and optional reference media."""

    model_config = ConfigDict(alias_generator=to_dashed, populate_by_name=True, extra="forbid")

    text: str = Field(default="", max_length=MAX_ATTRIBUTE_CHARS)
    reference_ref: S3Uri | None = Field(default=None, description="Reference audio/video (key X)")


class ManifestLine(DashedModel):
    """One data object of a Ground Truth custom audio/video job.

    Extra keys are allowed because Ground Truth copies them through to the pre-annotation Lambda and
    into the output manifest (where label attributes and `<attr>-metadata` join them).
    """

    source_ref: S3Uri = Field(description="S3 URI of the audio or video object")
    media_type: MediaType
    interaction_id: str = Field(min_length=1)
    duration_seconds: float | None = Field(default=None, gt=0)
    language_code: str | None = None
    transcription: str | None = None
    pre_segments: list[PreSegment] | None = None
    pre_content: dict[str, PreContent] | None = Field(
        default=None, description="Model answers to full-content fields, by field name, for the worker to correct")
    sidecar_ref: StorageUri | None = Field(
        default=None, description="URI of a Sidecar JSON holding transcription and/or pre-segments"
    )
    peaks_ref: StorageUri | None = Field(
        default=None,
        description="URI of a peaks file, binary (PeaksHeader, `.peaks.bin`) or PeaksFile JSON, plain or "
                    "gzip-compressed with Content-Encoding: gzip (see `gtkit peaks`)",
    )
    spectrogram_ref: StorageUri | None = Field(
        default=None,
        description="URI of a precomputed spectrogram (SpectrogramHeader + uint8 data), normally gzip-compressed "
                    "with Content-Encoding: gzip (see `gtkit peaks --spectrogram`); used with peaks-ref",
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Passthrough feedback fields")
    gold_answer: SegmentationAnswer | None = Field(
        default=None,
        description="The known answer of a gold object: workers' answers on it are scored against it "
                    "(`gtkit report --workers`). Never part of the task input a worker's page receives")
    prompt: ComparePrompt | None = Field(default=None, description="Comparison tasks: the prompt")
    candidates: list[Candidate] | None = Field(
        default=None, min_length=2, max_length=4,
        description="Comparison tasks: 2-4 candidates; `source-ref` is then the reference or the first "
                    "candidate (Ground Truth needs one per line)")

    review: ReviewInput | None = Field(
        default=None, description="Review tasks: the prior label, the workers' answers and the disagreements "
                                  "(docs/review.md); the editable label is `pre-segments`/`pre-content`")
    review_ref: StorageUri | None = Field(
        default=None, description="Review tasks: URI of a JSON file holding `review`, when it would push the "
                                  "line past the 100 KB limit")
    review_note: ReviewNote | None = Field(
        default=None, description="An object a reviewer rejected, sent back to annotators: the reviewer's note")

    @model_validator(mode="after")
    def _candidates(self) -> ManifestLine:
        if not self.candidates:
            return self
        for i, cand in enumerate(self.candidates):
            if cand.candidate_id is None:
                cand.candidate_id = str(i + 1)
        ids = [c.candidate_id for c in self.candidates]
        if len(set(ids)) != len(ids):
            raise ValueError("candidates: candidate-id values must be unique")
        if len({c.source_ref for c in self.candidates}) != len(self.candidates):
            raise ValueError("candidates: each candidate needs its own source-ref")
        return self

    @model_validator(mode="after")
    def _one_review(self) -> ManifestLine:
        if self.review is not None and self.review_ref is not None:
            raise ValueError("review and review-ref: give one (review-ref is review moved out of the line)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _not_too_deep(cls, data: Any) -> Any:
        return refuse_deep_nesting(data, MAX_NESTING + 1)  # `metadata` wraps the feedback fields once

    @model_validator(mode="after")
    def _no_dollar_keys(self) -> ManifestLine:
        for key in self.model_extra or {}:
            if key.startswith("$"):
                raise ValueError(f"Ground Truth rejects keys starting with '$': {key!r}")
        return self


class ManifestLineError(GtkitError, ValueError):
    """A manifest line (or sidecar) that does not fit its model; `problems` name the fields."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(map(str, problems)), problems=problems)


def encode_line(line: ManifestLine) -> bytes:
    """One input-manifest line, without its newline. Text kept byte for byte (RTL marks, emoji) as UTF-8."""
    return jsonio.dumps(dump(line))


def parse_line(text: str | bytes) -> dict[str, Any]:
    """A manifest line's JSON object, or ManifestLineError with a `(line)` problem."""
    try:
        data = jsonio.loads(text)
    except jsonio.JSONDecodeError as exc:
        raise ManifestLineError([Problem("(line)", f"invalid JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise ManifestLineError([Problem("(line)", "expected a JSON object")])
    return data


def decode_line(data: dict[str, Any], *, plain: bool = False) -> ManifestLine:
    """A data object (a parsed line, or Ground Truth's `dataObject`) as its model, or
    ManifestLineError naming the fields (`plain`: plain-word messages, for people fixing files)."""
    try:
        return ManifestLine.model_validate(data)
    except ValidationError as exc:
        raise ManifestLineError(problems_from(exc, plain=plain)) from None


def encode_sidecar(sidecar: Sidecar) -> bytes:
    return jsonio.dumps(dump(sidecar))


def decode_sidecar(data: bytes | str, where: str | None = None) -> Sidecar:
    """A sidecar file as its model, or ManifestLineError naming the fields (and `where`)."""
    try:
        return Sidecar.model_validate_json(data)
    except ValidationError as exc:
        raise ManifestLineError(problems_from(exc, root="(sidecar)", where=where)) from None


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


PEAKS_MAGIC = b"GTPK"
PEAKS_SCALE = 32767


class PeaksHeader(BaseModel):
    """JSON header of a binary peaks file (`*.peaks.bin[.gz]`, what `gtkit manifest build --peaks`
    writes): the same peaks as a `PeaksFile`, which the browser reads without a JSON parse of
    millions of numbers (a 3-hour call: 336 ms of JSON.parse).

    The file is: the 4 bytes `GTPK`, the header length as a little-endian uint32, this header as
    UTF-8 JSON, then per channel `2 * length` little-endian int16: interleaved min, max, each the
    value in [-1, 1] times `scale`, rounded.
    """

    model_config = ConfigDict(extra="forbid")

    version: Literal[2] = 2
    sample_rate: int = Field(gt=0, description="Sample rate of the decoded audio")
    peaks_per_second: float = Field(gt=0)
    duration: float = Field(gt=0, description="Media duration in seconds")
    channels: int = Field(default=1, ge=1, le=8)
    length: int = Field(ge=1, description="min/max pairs per channel")
    scale: Literal[32767] = PEAKS_SCALE


SPECTROGRAM_MAGIC = b"GTSG"


class SpectrogramHeader(BaseModel):
    """JSON header of a precomputed spectrogram file (`gtkit peaks --spectrogram`).

    The file is: the 4 bytes `GTSG`, the header length as a little-endian uint32, this header as
    UTF-8 JSON, then `frames * bins` uint8 magnitudes, frame-major (all bins of frame 0, lowest
    frequency first, then frame 1, ...). Frame `i` covers media time `[i, i + 1) / frames_per_second`;
    bin `k` covers `[k, k + 1) * frequency_max / bins` Hz (linear). A value `v` is the band power
    `db_min + v / 255 * (db_max - db_min)` dB relative to a full-scale sine (clamped to the range).
    """

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    sample_rate: int = Field(gt=0, description="Sample rate of the decoded audio")
    frames_per_second: float = Field(gt=0, description="Exact frame rate: sample_rate / hop")
    hop: int = Field(gt=0, description="Samples between frames")
    fft_size: int = Field(gt=0, description="Hann window / FFT length in samples (centred on each frame)")
    duration: float = Field(gt=0, description="Media duration in seconds")
    frames: int = Field(gt=0)
    bins: int = Field(gt=0, le=1024, description="Frequency bands, linear from 0 to frequency_max")
    frequency_max: float = Field(gt=0, description="Upper edge of the top band in Hz (<= Nyquist)")
    scale: Literal["linear"] = "linear"
    db_min: float = Field(description="dB mapped to 0")
    db_max: float = Field(description="dB mapped to 255")

    @model_validator(mode="after")
    def _consistent(self) -> SpectrogramHeader:
        if self.db_max <= self.db_min:
            raise ValueError("db_max must be greater than db_min")
        if self.frequency_max > self.sample_rate / 2 + 1e-6:
            raise ValueError("frequency_max must not exceed the Nyquist frequency")
        return self
