"""Processed feedback records -> Ground Truth input manifest.

`build_manifest()` streams every input line through `convert_record()` (a pure function of one
record plus the storage it reads Transcribe output from) and accounts for every record:
records in = lines out + skipped + errors. Problems go to a JSONL report as they happen.

With `BuildOptions.jobs > 1` the slow part of each record (Transcribe read, ffmpeg peaks and
spectrogram, sidecar write: I/O and subprocesses, which threads overlap) runs in a thread pool
over a bounded window of records; parsing, the duplicate check, accounting and writing stay in
input order on the calling thread, so the output and the report are identical for any `jobs`.
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson
from pydantic import ValidationError

from toolkit.awsclient.errors import aws_error, is_global
from toolkit.contract.base import dump, problems_from
from toolkit.contract.feedback import FeedbackError, FeedbackRecord
from toolkit.contract.feedback import decode as decode_record
from toolkit.contract.manifest import (
    MAX_ATTRIBUTE_CHARS,
    MAX_LINE_BYTES,
    ManifestLine,
    ManifestLineError,
    PreContent,
    PreSegment,
    Sidecar,
    decode_line,
    encode_line,
    encode_sidecar,
    parse_line,
)
from toolkit.errors import Problem as FieldProblem
from toolkit.ingest.transcribe import TranscribeError, speaker_turns
from toolkit.storage import Storage, is_s3, join_uri, split_s3
from toolkit.storage.lines import (
    LineError,
    WrongEncoding,
    clean_text,
    has_surrogates,
    iter_raw_lines,
    iter_record_lines,
    surrogate_problem,
    undecodable_field,
)
from toolkit.storage.names import file_stem

VIDEO_FORMATS = frozenset({"mp4", "mov", "webm"})
# Feedback fields that become their own manifest attributes, or stay out of the manifest because
# they are machine-local paths or derived from the transcript (entities repeat its PII).
NOT_METADATA = frozenset({
    "interaction_id", "media_uri", "local_media", "local_transcribe_output", "duration_seconds",
    "language_code", "transcript", "messages", "entities",
})
# Only the first few problems are kept in memory for the summary; all of them go to the report.
SUMMARY_PROBLEMS = 25


@dataclass(frozen=True)
class Problem:
    kind: Literal["error", "skipped"]
    file: str
    line: int
    interaction_id: str | None
    field: str
    message: str

    def as_json(self) -> dict[str, Any]:
        # clean_text: a file name or key with undecodable bytes must not break the report itself.
        return {"kind": self.kind, "file": clean_text(self.file), "line": self.line,
                "interaction_id": clean_text(self.interaction_id) if self.interaction_id else None,
                "field": clean_text(self.field), "message": clean_text(self.message)}


class RecordError(FeedbackError):
    """A record that cannot become a manifest line (kind "error"), or has nothing to label ("skipped").
    Its problems name the fields; the report adds the file and line."""

    @classmethod
    def at(cls, field_name: str, message: str, kind: Literal["error", "skipped"] = "error") -> RecordError:
        return cls([FieldProblem(field_name, message)], kind)


@dataclass
class BuildOptions:
    transcribe: bool | None = None  # None: use Transcribe output when a record references it
    sidecar_prefix: str | None = None
    peaks_prefix: str | None = None
    peaks_per_second: float = 100.0
    spectrogram: bool = False  # with peaks_prefix: also `<file_stem>.spectrogram.bin.gz` -> spectrogram-ref
    strict: bool = False
    jobs: int = 1  # records converted concurrently (threads); the output does not depend on it
    model_outputs: str | None = None  # `gtkit bedrock import` output: pre-fill content fields with it
    model_output_field: str | None = None  # the field to pre-fill; default: from each output's record id
    words: bool = True  # keep Transcribe's word timings in the pre-segments
    peaks_channels: int = 0  # 0: the media's own channels up to 2 (stereo calls keep both); 1: downmix


@dataclass
class BuildReport:
    records_in: int = 0
    lines_out: int = 0
    skipped: int = 0
    errors: int = 0
    sidecars: int = 0
    peaks: int = 0
    spectrograms: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    error_fields: Counter = field(default_factory=Counter)
    first_problems: list[Problem] = field(default_factory=list)
    unreadable_files: int = 0  # inputs not in UTF-8 (reported once each, no records read from them)
    prefilled: int = 0  # lines with model answers to correct (--model-outputs)
    model_outputs_unused: Counter = field(default_factory=Counter)  # why a model output was not attached
    written: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.unreadable_files)

    @property
    def balanced(self) -> bool:
        return self.records_in == self.lines_out + self.skipped + self.errors


# -- one record ----------------------------------------------------------------------------------

def media_type_of(record: FeedbackRecord) -> Literal["audio", "video"]:
    if record.channel == "video" or (record.media_format or "") in VIDEO_FORMATS:
        return "video"
    return "audio"


def pre_segments_from_transcribe(record: FeedbackRecord, document: Any,
                                 words_wanted: bool = True) -> list[PreSegment]:
    """Transcribe speaker turns -> pre-segments on the `speaker` track, labelled by role, with their
    word timings (`words`; they make the line bigger, so long calls go to the sidecar sooner)."""
    roles = record.speaker_roles or {}
    segments = []
    for n, turn in enumerate(speaker_turns(document), start=1):
        end = turn.end
        if record.duration_seconds is not None:
            end = min(end, record.duration_seconds)
        if end <= turn.start:
            continue  # a turn entirely past the declared media end cannot be shown
        role = roles.get(turn.speaker)
        start, end = round(turn.start, 3), round(end, 3)
        # Word timings, clamped into the turn (Transcribe's last word may end a few ms after it).
        words = [(max(start, round(a, 3)), min(end, round(b, 3)), text) for a, b, text in turn.words
                 if a < end and b > start] if words_wanted else []
        channel = re.fullmatch(r"ch_(\d+)", turn.speaker)
        segments.append(PreSegment(
            id=f"pre-{n}", track="speaker", label=role.capitalize() if role else turn.speaker,
            start=start, end=end, text=turn.text, speaker=turn.speaker, words=words or None,
            channel=int(channel.group(1)) if channel else None,
        ))
    return segments


def convert_record(record: FeedbackRecord, storage: Storage, options: BuildOptions) -> ManifestLine:
    """One feedback record -> one manifest line (before size limits). Raises RecordError."""
    if not record.media_uri:
        if record.channel == "chat":
            raise RecordError.at("media_uri", "chat record with no media: nothing to label", kind="skipped")
        raise RecordError.at("media_uri", f"{record.channel} record has no media_uri")
    pre_segments = None
    use_transcribe = options.transcribe is not False and record.transcribe_output_uri
    if use_transcribe:
        try:
            document = storage.read_json(record.transcribe_output_uri)
        except Exception as exc:  # this record fails, the batch goes on (unless AWS itself is unusable)
            if is_global(exc):
                raise
            raise _record_error(exc, "transcribe_output_uri", "cannot read Transcribe output") from None
        try:
            pre_segments = pre_segments_from_transcribe(record, document, options.words)
        except TranscribeError as exc:
            raise RecordError.at("transcribe_output_uri", f"unreadable Transcribe output: {exc}") from None
    metadata = {k: v for k, v in record.model_dump(mode="json").items() if k not in NOT_METADATA}
    try:
        return ManifestLine(
            source_ref=record.media_uri,
            media_type=media_type_of(record),
            interaction_id=record.interaction_id,
            duration_seconds=record.duration_seconds,
            language_code=record.language_code,
            transcription=record.transcript or None,
            pre_segments=pre_segments or None,
            metadata=metadata,
        )
    except ValidationError as exc:
        raise RecordError(problems_from(exc, plain=True)) from None


def oversize_attributes(line: ManifestLine) -> list[tuple[str, int]]:
    """(attribute, characters) for every attribute over Ground Truth's per-attribute limit."""
    out = []
    for key, value in dump(line).items():
        size = len(value) if isinstance(value, str) else len(orjson.dumps(value).decode())
        if size > MAX_ATTRIBUTE_CHARS:
            out.append((key, size))
    return out


def fit_line(line: ManifestLine, sidecar_uri: str | None) -> tuple[ManifestLine, Sidecar | None]:
    """Apply the size limits: move transcription and pre-segments to a sidecar when needed."""
    if len(encode_line(line)) <= MAX_LINE_BYTES and not oversize_attributes(line):
        return line, None
    if sidecar_uri is None:
        raise RecordError.at(_biggest(line), _over_message(line) + "; pass --sidecar-prefix to move "
                            "pre-segments and transcription to a sidecar file")
    sidecar = Sidecar(interaction_id=line.interaction_id, transcription=line.transcription,
                      pre_segments=line.pre_segments)
    slim = line.model_copy(update={"transcription": None, "pre_segments": None, "sidecar_ref": sidecar_uri})
    if len(encode_line(slim)) > MAX_LINE_BYTES or oversize_attributes(slim):
        raise RecordError.at(_biggest(slim), _over_message(slim) + " even with a sidecar")
    return slim, sidecar


def _biggest(line: ManifestLine) -> str:
    sizes = {k: len(orjson.dumps(v)) for k, v in dump(line).items()}
    return max(sizes, key=sizes.__getitem__)


def _over_message(line: ManifestLine) -> str:
    over = oversize_attributes(line)
    if over:
        key, size = over[0]
        return f"attribute {key} is {size:,} characters (Ground Truth limit {MAX_ATTRIBUTE_CHARS:,})"
    return f"line is {len(encode_line(line)):,} bytes (Ground Truth limit {MAX_LINE_BYTES:,})"


# -- the stream ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RawRecord:
    """One input record before parsing: JSON text, a CSV row, or why its line could not be read."""

    file: str
    line: int
    data: str | dict[str, Any] | RecordError
    size: int = 0  # input bytes, for progress
    interaction_id: str | None = None  # best effort, for the report of an unreadable line


@dataclass(frozen=True)
class UnreadableFile:
    """A whole input that is not UTF-8 (UTF-16, UTF-32): one problem, no records."""

    file: str
    message: str


def iter_records(inputs: Iterable[str], storage: Storage) -> Iterator[RawRecord | UnreadableFile]:
    """Every record of every input, in order. Lines that are blank (ASCII whitespace) are not records;
    every other line is one, readable or not."""
    for uri in map(str, inputs):
        try:
            yield from (_csv_records if uri.lower().endswith(".csv") else _jsonl_records)(uri, storage)
        except WrongEncoding as exc:
            yield UnreadableFile(uri, str(exc))


def _jsonl_records(uri: str, storage: Storage) -> Iterator[RawRecord]:
    with storage.open_read(uri, binary=True) as fh:
        for number, raw, text in iter_record_lines(fh, uri):
            if isinstance(text, LineError):
                problem = RecordError.at(undecodable_field(raw) or "(line)", text.message)
                peeked = _peek_id(raw.decode("utf-8", "surrogateescape"))
                yield RawRecord(uri, number, problem, len(raw) + 1, peeked)
            else:
                yield RawRecord(uri, number, text, len(raw) + 1)


# CSV cells are text: these columns hold JSON (objects/lists) or numbers in a CSV export.
_CSV_JSON_COLUMNS = frozenset({"speaker_roles", "messages", "sentiment", "entities", "topics"})
_CSV_NUMBER_COLUMNS = frozenset({"duration_seconds"})


def _csv_records(uri: str, storage: Storage) -> Iterator[RawRecord]:
    with storage.open_read(uri, binary=True) as fh:
        # surrogateescape: a bad byte becomes a lone surrogate in its cell, so the row (and the
        # column) can be named instead of the whole file failing to decode.
        last = [0]  # physical line last read: csv's own line_num lags behind on a csv.Error

        def lines() -> Iterator[str]:
            for number, raw in iter_raw_lines(fh, uri, keepends=True):
                last[0] = number
                yield raw.decode("utf-8", "surrogateescape")

        reader = csv.DictReader(lines())
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RawRecord(uri, last[0], RecordError.at("(row)", f"not readable as CSV: {exc}"))
                continue
            yield RawRecord(uri, last[0], _csv_row(row, len(reader.fieldnames or ())), interaction_id=_peek_id(row))


def _csv_row(row: dict[str | None, Any], columns: int) -> dict[str, Any] | RecordError:
    extra = row.get(None)
    if extra:
        return RecordError.at("(row)", f"{len(extra)} more cells than the header's {columns} columns")
    for key, value in row.items():
        for text in (key, value):
            if isinstance(text, str) and has_surrogates(text):
                return RecordError.at(str(key), surrogate_problem(text))
    return {k: _csv_cell(k, v) for k, v in row.items() if k is not None}


def _csv_cell(column: str, value: str | None) -> Any:
    if value is None or value == "":
        return None
    if column in _CSV_JSON_COLUMNS and value.lstrip()[:1] in "[{":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value  # left as text: validation names the column
    if column in _CSV_NUMBER_COLUMNS:
        try:
            return float(value)
        except ValueError:
            return value
    return value


class _StrictAbort(Exception):
    """Raised inside the output writer so nothing is committed in --strict mode."""


@dataclass
class _Built:
    """One converted record, made on any thread; counted and written on the calling thread."""

    encoded: bytes
    peaks: bool
    spectrogram: bool
    sidecar_uri: str | None


# (input name, line number, interaction id for the report, the conversion or why it failed)
_Pending = tuple[str, int, str | None, "Future[_Built] | _Built | FeedbackError"]


@dataclass
class _Builder:
    storage: Storage
    options: BuildOptions
    report: BuildReport
    errors_fh: IO[str] | None
    seen: dict[str, str] = field(default_factory=dict)  # interaction id -> where first seen
    stems: dict[str, tuple[str, str]] = field(default_factory=dict)  # file stem -> (interaction id, where)
    sidecars: list[str] = field(default_factory=list)
    pre_content: Any = None  # a PreContentIndex with --model-outputs

    def run(self, records: Iterable[RawRecord | UnreadableFile],
            on_record: Callable[[int], None] | None = None) -> Iterator[bytes]:
        """The encoded manifest lines of `records`, in input order, accounting for every record."""
        jobs = max(1, self.options.jobs)
        pool = ThreadPoolExecutor(jobs, thread_name_prefix="gtkit-manifest") if jobs > 1 else None
        pending: deque[_Pending] = deque()
        try:
            for record in records:
                if isinstance(record, UnreadableFile):
                    self._unreadable(record)
                    continue
                if on_record:
                    on_record(record.size)
                pending.append(self._start(record, pool))
                # A bounded window: enough to keep every thread busy, never the whole input.
                while len(pending) > 2 * jobs or (pending and pool is None):
                    encoded = self._finish(*pending.popleft())
                    if encoded is not None:
                        yield encoded
            while pending:
                encoded = self._finish(*pending.popleft())
                if encoded is not None:
                    yield encoded
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _start(self, raw: RawRecord, pool: ThreadPoolExecutor | None) -> _Pending:
        """Parse and check for duplicates in input order; convert now, or on `pool`."""
        self.report.records_in += 1
        name, number = raw.file, raw.line
        if isinstance(raw.data, RecordError):
            return name, number, raw.interaction_id, raw.data
        interaction_id = _peek_id(raw.data)
        try:
            record = decode_record(raw.data)
            interaction_id = record.interaction_id
            first = self.seen.get(interaction_id)
            if first is not None:
                raise RecordError.at("interaction_id", f"duplicate interaction_id, first seen at {first}")
            self.seen[interaction_id] = f"{name}:{number}"
            self._claim_file_stem(interaction_id, f"{name}:{number}")
            pre = self.pre_content.take(interaction_id) if self.pre_content is not None else None
            if pool is not None:
                return name, number, interaction_id, pool.submit(self._build, record, pre)
            return name, number, interaction_id, self._build(record, pre)
        except FeedbackError as exc:
            return name, number, interaction_id, exc

    def _claim_file_stem(self, interaction_id: str, where: str) -> None:
        """Peaks, spectrogram and sidecar files are named after the id: two ids, one name is an error."""
        if not (self.options.peaks_prefix or self.options.sidecar_prefix):
            return
        stem = file_stem(interaction_id)
        owner = self.stems.get(stem)
        if owner is not None:
            raise RecordError.at("interaction_id", f"its file name {stem} is already used by interaction id "
                                                  f"{owner[0]} ({owner[1]}); refusing to overwrite")
        self.stems[stem] = (interaction_id, where)

    def _finish(self, name: str, number: int, interaction_id: str | None,
                outcome: Future[_Built] | _Built | FeedbackError) -> bytes | None:
        if isinstance(outcome, Future):
            try:
                outcome = outcome.result()
            except FeedbackError as exc:
                outcome = exc
        if isinstance(outcome, FeedbackError):
            self._account(outcome, name, number, interaction_id)
            return None
        report = self.report
        report.lines_out += 1
        report.peaks += outcome.peaks
        report.spectrograms += outcome.spectrogram
        if outcome.sidecar_uri is not None:
            self.sidecars.append(outcome.sidecar_uri)
            report.sidecars += 1
        return outcome.encoded

    def _build(self, record: FeedbackRecord, pre_content: dict[str, Any] | None = None) -> _Built:
        """The slow, order-free part of one record (any thread). Raises RecordError."""
        line = convert_record(record, self.storage, self.options)
        if pre_content:
            line = line.model_copy(update={"pre_content": {k: PreContent.model_validate(v)
                                                           for k, v in pre_content.items()}})
            if any(key == "pre-content" for key, _ in oversize_attributes(line)):
                # The prompt holds the transcript again: past Ground Truth's attribute limit it goes, and the
                # preference-model export renders the same prompt from its template (lineage keeps the key).
                line = line.model_copy(update={"pre_content": {
                    k: v.model_copy(update={"prompt": ""}) for k, v in (line.pre_content or {}).items()}})
        if self.options.peaks_prefix:
            line = _attach_peaks(line, record, self.storage, self.options)
        sidecar_uri = None
        if self.options.sidecar_prefix:
            sidecar_uri = join_uri(self.options.sidecar_prefix, f"{file_stem(record.interaction_id)}.json")
        line, sidecar = fit_line(line, sidecar_uri)
        if sidecar is not None and sidecar_uri is not None:
            self.storage.write_bytes(sidecar_uri, encode_sidecar(sidecar), "application/json")
        else:
            sidecar_uri = None
        return _Built(encode_line(line) + b"\n", peaks=bool(line.peaks_ref),
                      spectrogram=bool(line.spectrogram_ref), sidecar_uri=sidecar_uri)

    def _unreadable(self, unreadable: UnreadableFile) -> None:
        self.report.unreadable_files += 1
        self._write_problem(Problem("error", unreadable.file, 0, None, "(file)", unreadable.message))

    def _write_problem(self, problem: Problem) -> None:
        if self.errors_fh is not None:
            self.errors_fh.write(orjson.dumps(problem.as_json()).decode() + "\n")
        if len(self.report.first_problems) < SUMMARY_PROBLEMS:
            self.report.first_problems.append(problem)

    def _account(self, exc: FeedbackError, name: str, number: int, interaction_id: str | None) -> None:
        if exc.kind == "skipped":
            self.report.skipped += 1
            self.report.skip_reasons[exc.problems[0].message] += 1
        else:
            self.report.errors += 1
            self.report.error_fields.update(p.path for p in exc.problems)
        for p in exc.problems:
            self._write_problem(Problem(exc.kind, name, number, interaction_id, p.path, p.message))


def build_manifest(
    inputs: list[str],
    out: str,
    storage: Storage,
    options: BuildOptions | None = None,
    errors_out: str | None = None,
    on_record: Callable[[int], None] | None = None,
) -> BuildReport:
    """Write the manifest for `inputs` to `out` and return the accounting report.

    With `options.strict`, nothing is written (and sidecars are removed) unless every record is good.
    `on_record(nbytes)` is called per input line, for progress display.
    """
    options = options or BuildOptions()
    report = BuildReport()
    with contextlib.ExitStack() as stack:
        errors_fh = stack.enter_context(storage.open_write(errors_out)) if errors_out else None
        builder = _Builder(storage, options, report, errors_fh)
        if options.model_outputs:
            from toolkit.ingest.model_outputs import load_pre_content
            from toolkit.storage.scratch import LabelIndex

            index = stack.enter_context(LabelIndex())
            builder.pre_content = load_pre_content(storage, options.model_outputs, index,
                                                   options.model_output_field)
        try:
            with storage.open_write(out, binary=True) as out_fh:
                for encoded in builder.run(iter_records(inputs, storage), on_record):
                    out_fh.write(encoded)
                if options.strict and report.failed:
                    raise _StrictAbort
            report.written = True
            if builder.pre_content is not None:
                report.prefilled = builder.pre_content.attached
                report.model_outputs_unused = Counter(builder.pre_content.not_used)
                unused = builder.pre_content.index.unused()
                if unused:
                    report.model_outputs_unused["its interaction is not in the inputs"] += unused
        except _StrictAbort:
            for uri in builder.sidecars:
                _remove(storage, uri)
    return report


def _peek_id(text: str | dict[str | None, Any]) -> str | None:
    """Best-effort interaction id of a line that may not even be valid JSON, for the report."""
    if isinstance(text, dict):
        value = text.get("interaction_id")
        return clean_text(value) if isinstance(value, str) else None
    try:
        value = orjson.loads(text).get("interaction_id")
        return value if isinstance(value, str) else None
    except Exception:
        marker = '"interaction_id"'
        at = text.find(marker)
        if at < 0:
            return None
        rest = text[at + len(marker):].lstrip(" :")
        if rest.startswith('"'):
            end = rest.find('"', 1)
            return clean_text(rest[1:end]) if end > 0 else None
        return None


def _attach_peaks(line: ManifestLine, record: FeedbackRecord, storage: Storage,
                  options: BuildOptions) -> ManifestLine:
    from toolkit.ingest.peaks import peaks_for_uri, write_peaks  # numpy + ffmpeg only when asked for

    assert options.peaks_prefix is not None
    # Binary (no JSON.parse of millions of numbers in the browser) and gzip (Content-Encoding on S3,
    # decompressed transparently by browsers): docs/manifest.md.
    stem = file_stem(record.interaction_id)
    target = join_uri(options.peaks_prefix, f"{stem}.peaks.bin.gz")
    spec = None
    try:
        if options.spectrogram:
            from toolkit.ingest.spectrogram import peaks_and_spectrogram_for_uri

            peaks, spec = peaks_and_spectrogram_for_uri(line.source_ref, storage, options.peaks_per_second,
                                                        options.peaks_channels)
        else:
            peaks = peaks_for_uri(line.source_ref, storage, options.peaks_per_second, options.peaks_channels)
    except Exception as exc:  # ffmpeg, S3 or decode errors: this record fails, the batch goes on
        if is_global(exc):
            raise
        raise _record_error(exc, "media_uri", "cannot compute peaks") from None
    write_peaks(peaks, target, storage, compress=True)
    update = {"peaks_ref": target}
    if spec is not None:
        from toolkit.ingest.spectrogram import write_spectrogram

        # Same treatment as the peaks: gzip, Content-Encoding on S3, decoded by the browser's fetch().
        spec_target = join_uri(options.peaks_prefix, f"{stem}.spectrogram.bin.gz")
        write_spectrogram(spec, spec_target, storage, compress=True)
        update["spectrogram_ref"] = spec_target
    return line.model_copy(update=update)


def _record_error(exc: Exception, field_name: str, what: str) -> RecordError:
    """One record's failed read. (When AWS fails for every record - no or expired credentials, no
    endpoint, throttling - the callers re-raise instead, and the run stops with one clear line.)"""
    return RecordError.at(field_name, f"{what}: {aws_error(exc) or exc}")


def _remove(storage: Storage, uri: str) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        storage.client.delete_object(Bucket=bucket, Key=key)
    else:
        Path(uri).unlink(missing_ok=True)


# -- validating an existing manifest -------------------------------------------------------------

def validate_manifest(uri: str, storage: Storage) -> Iterator[Problem]:
    """Every problem in an existing manifest: JSON, contract, duplicates, Ground Truth size limits."""
    seen: dict[str, int] = {}
    for number, text in _manifest_lines(uri, storage):
        if isinstance(text, Problem):
            yield text
            continue
        interaction_id = None
        try:
            data = parse_line(text)
            interaction_id = data.get("interaction-id") if isinstance(data.get("interaction-id"), str) else None
            line = decode_line(data, plain=True)
        except ManifestLineError as exc:
            for p in exc.problems:
                yield Problem("error", uri, number, interaction_id, p.path, p.message)
            continue
        if line.interaction_id in seen:
            yield Problem("error", uri, number, line.interaction_id, "interaction-id",
                          f"duplicate of line {seen[line.interaction_id]}")
        seen.setdefault(line.interaction_id, number)
        size = len(text.encode("utf-8"))
        if size > MAX_LINE_BYTES:
            yield Problem("error", uri, number, line.interaction_id, "(line)",
                          f"line is {size:,} bytes (Ground Truth limit {MAX_LINE_BYTES:,})")
        for key, chars in oversize_attributes(line):
            yield Problem("error", uri, number, line.interaction_id, key,
                          f"{chars:,} characters (Ground Truth limit {MAX_ATTRIBUTE_CHARS:,})")


def _manifest_lines(uri: str, storage: Storage) -> Iterator[tuple[int, str | Problem]]:
    """Non-blank lines of a manifest; lines (or a whole file) that are not UTF-8 become Problems."""
    try:
        with storage.open_read(uri, binary=True) as fh:
            for number, raw, text in iter_record_lines(fh, uri):
                if isinstance(text, LineError):
                    text = Problem("error", uri, number, None, undecodable_field(raw) or "(line)", text.message)
                yield number, text
    except WrongEncoding as exc:
        yield 0, Problem("error", uri, 0, None, "(file)", str(exc))
