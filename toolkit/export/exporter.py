"""`gtkit export` as a library call: output manifest -> preset records -> format files."""

from __future__ import annotations

import io
import mmap
import multiprocessing
import os
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from toolkit.contract import LabelSchema, load_label_schema
from toolkit.contract.schema import builtin_schema_names
from toolkit.export.builders import Builder, make_builder
from toolkit.export.checks import builtin_schema
from toolkit.export.formats import ALIASES, WRITERS, BatchQuotas, ExportError, Writer, WriterOptions
from toolkit.export.presets import BatchBody, Preset, PresetError, ResolvedPreset, load_preset
from toolkit.export.reader import (
    INVALID_FIELD,
    MAX_PROBLEMS,
    Consolidator,
    Item,
    ItemFieldError,
    ManifestReader,
    Problem,
    ReadStats,
    SidecarError,
)
from toolkit.export.redact import NullRedactor, Redactor, RegexRedactor
from toolkit.export.summary import RunSummary
from toolkit.export.trust import TrustOptions, check_item, trust_summary, weigh
from toolkit.storage import Storage, tempfiles

SCHEMA_MISMATCH = "schema-mismatch"
SIDECAR_UNREADABLE = "sidecar-unreadable"
OUTPUT_MANIFEST_HINT = "<output path>/<job name>/manifests/output/output.manifest"


class EmptyExportError(ExportError):
    """The export would write 0 records (and `allow_empty` is off): nothing was written. `summary`
    says what was read and why each line or item gave no record. The CLI exits 4 with the hint."""

    exit_code = 4
    hint = "Nothing was written; pass --allow-empty if an empty export is expected."

    def __init__(self, message: str, summary: RunSummary):
        super().__init__(message)
        self.summary = summary


def empty_message(summary: RunSummary, input_manifest: bool) -> str:
    """Why nothing was exported, in one line: the counts, every skip and drop reason, what to do."""
    parts = [f"wrote 0 {summary.unit} from {summary.read} lines ({summary.labeled} labelled items)"]
    if summary.skipped:
        parts.append("skipped lines: " + ", ".join(f"{k}: {v}" for k, v in sorted(summary.skipped.items())))
    if summary.dropped:
        parts.append("not exported: " + ", ".join(f"{k}: {v}" for k, v in sorted(summary.dropped.items())))
    message = "; ".join(parts) + "."
    if input_manifest:
        message += (" No line has a label attribute: this looks like a Ground Truth input manifest; export "
                    f"reads the labeling job's output manifest ({OUTPUT_MANIFEST_HINT}).")
    return message


@dataclass
class ExportOptions:
    preset: str | Preset
    format: str
    out: str
    schema: str | LabelSchema | None = None
    label_attribute: str | None = None
    redactor: Redactor | None = None          # None = the default regex redactor
    redact: bool = True
    bedrock_schema: str = "messages"
    lineage: str = "inline"
    quotas: BatchQuotas = field(default_factory=BatchQuotas)
    reserved_words: str = "rewrite"            # Bedrock formats: rewrite | fail | keep (toolkit.export.reserved)
    worker_responses: bool = False
    consolidator: Consolidator | None = None
    jobs: int = 1                              # worker processes (parallel parse + build)
    allow_empty: bool = False                  # 0 records written is a success (else EmptyExportError)
    clips: bool = False                        # hf-*/lhotse/nemo: cut each segment's media (else whole media + offsets)
    batch_body: str | None = None              # bedrock-batch: override the preset's batch.body (anthropic, ...)
    cannot_annotate: str = "skip"              # items most workers could not annotate: skip | keep
    trust: TrustOptions = field(default_factory=TrustOptions)  # --exclude-workers, --min-agreement, weights
    # Called with the run's summary once it is complete, before export returns or raises EmptyExportError
    # (the CLI writes --summary-json and the table either way).
    on_summary: Callable[[RunSummary], None] | None = None


def resolve_format(name: str, bedrock_schema: str) -> tuple[str, str]:
    if name in ALIASES:
        return ALIASES[name]
    if name not in WRITERS:
        raise ExportError(f"unknown format {name!r} (choose from {', '.join([*WRITERS, *ALIASES])})")
    return name, bedrock_schema


def export(storage: Storage, labels: str, options: ExportOptions,
           progress: Callable[[int], None] | None = None) -> RunSummary:
    """Stream `labels` (an output manifest) into `options.out`. Raises ExportError/PresetError for
    problems with the run as a whole; per-line problems are counted in the returned summary."""
    preset = options.preset if isinstance(options.preset, Preset) else load_preset(options.preset)
    if options.batch_body:
        try:
            preset = preset.model_copy(update={"batch": BatchBody.model_validate(
                {**preset.batch.model_dump(), "body": options.batch_body})})
        except ValueError as exc:
            raise ExportError(f"--batch-body {options.batch_body!r}: choose anthropic, converse, llama or titan"
                              ) from exc
    fmt, bedrock_schema = resolve_format(options.format, options.bedrock_schema)
    if fmt not in preset.formats:
        # Named as the user wrote it (`bedrock-conversation-2024`, not the writer behind the alias),
        # and the aliases of the formats it does support are offered too.
        supported = [*preset.formats, *(a for a, (f, _) in ALIASES.items() if f in preset.formats)]
        raise ExportError(f"preset {preset.name} ({preset.kind}) does not support format {options.format!r}; "
                          f"it supports {', '.join(supported)}")
    if options.lineage not in ("inline", "sidecar"):
        raise ExportError(f"--lineage must be inline or sidecar, got {options.lineage!r}")
    redactor = options.redactor or (RegexRedactor() if options.redact else NullRedactor())
    if options.cannot_annotate not in ("skip", "keep"):
        raise ExportError(f"--cannot-annotate must be skip or keep, got {options.cannot_annotate!r}")
    reader = ManifestReader(storage, labels, options.label_attribute, options.worker_responses,
                            options.consolidator, progress, texts=_needs_texts(preset),
                            cannot_annotate=options.cannot_annotate)
    if isinstance(options.schema, LabelSchema):
        reader.schema = options.schema
    elif options.schema:
        reader.schema = _schema(options.schema, None)
    with storage.open_read(labels, binary=True) as fh:
        return _export(storage, fh, reader, preset, fmt, bedrock_schema, redactor, options)


def _export(storage: Storage, fh: IO[bytes], reader: ManifestReader, preset: Preset, fmt: str,
            bedrock_schema: str, redactor: Redactor, options: ExportOptions) -> RunSummary:
    raw_lines = reader.iter_raw(fh)
    first = None
    for number, raw in raw_lines:  # up to the first labelled item, which names the label schema
        first = reader.parse(number, raw)
        if first is not None:
            break
    schema = _schema(options.schema, first)
    reader.schema = schema
    # No labelled item at all: nothing will be built, and without a schema to resolve the preset
    # against the run is simply empty (EmptyExportError says why), not a preset error.
    resolved = ResolvedPreset(preset, schema, need_schema=first is not None)
    writer = WRITERS[fmt](storage, options.out, resolved,
                          WriterOptions(bedrock_schema=bedrock_schema, lineage=options.lineage,
                                        quotas=options.quotas, reserved_words=options.reserved_words,
                                        extra={"clips": options.clips}))
    builder = make_builder(resolved, redactor, writer.record_fields)
    summary = RunSummary(command="export", extra={"preset": preset.name, "format": options.format})
    work = _Work(reader, builder, schema, options.trust)
    jobs = options.jobs if _parallel_ok(options, redactor, preset) else 1
    try:
        if first is not None:
            records = work.process(first)
            if records:
                writer.write(records)
        if jobs > 1:
            _run_parallel(fh, work, writer, jobs, storage, redactor)
        else:
            for number, raw in raw_lines:
                item = reader.parse(number, raw)
                records = work.process(item) if item is not None else None
                if records:
                    writer.write(records)
        for records in builder.finish():
            weigh(records, options.trust)
            writer.write(records)
        trust_line = trust_summary(options.trust, reader.stats.worker_trust)
    except BaseException as exc:
        writer.close(exc)
        raise
    summary = _summary(summary, reader, builder, writer, redactor, fmt, schema, jobs)
    if trust_line:
        summary.extra["worker trust"] = trust_line
    if writer.written == 0 and not options.allow_empty:
        input_manifest = not reader.stats.label_seen and bool(summary.skipped.get("no-label"))
        error = EmptyExportError(empty_message(summary, input_manifest), summary)
        writer.close(error)
        if options.on_summary is not None:
            options.on_summary(summary)
        raise error
    writer.close(None)
    summary.files = list(writer.files)
    if options.on_summary is not None:
        options.on_summary(summary)
    return summary


def _summary(summary: RunSummary, reader: ManifestReader, builder: Builder, writer: Writer, redactor: Redactor,
             fmt: str, schema: LabelSchema | None, jobs: int) -> RunSummary:
    stats = reader.stats
    summary.read, summary.labeled, summary.written = stats.lines, stats.labeled, writer.written
    summary.unit = "files" if fmt == "webvtt" else ("lines" if fmt == "rttm" else "records")
    summary.skipped.update(stats.skipped)
    summary.dropped.update(builder.dropped)
    summary.dropped.update(writer.dropped)
    summary.redactions.update(redactor.counts)
    if writer.reserved is not None:
        summary.reserved.update(writer.reserved.counts)
        summary.reserved_mode = writer.reserved.mode
    writer_problems = [Problem(line, reason, detail, stats.file) for line, reason, detail in writer.problems]
    summary.problems = sorted([*stats.problems, *writer_problems], key=lambda p: p.line)
    summary.extra["label attribute"] = reader.attribute or ""
    if stats.reviewed or stats.skipped.get("rejected-in-review") or stats.skipped.get("not-reviewed"):
        summary.extra["reviewed"] = ", ".join(f"{k}: {v}" for k, v in sorted(stats.reviewed.items())) or "none"
    if schema is not None:
        summary.extra["label schema"] = schema.name
    if jobs > 1:
        summary.extra["worker processes"] = jobs
    return summary


def _needs_texts(preset: Preset) -> bool:
    """Whether the preset reads the machine transcript or pre-segments of every item."""
    if preset.kind in ("preference-correction", "dense-preference", "stepwise", "preference-model"):
        return True
    templates = [preset.system, preset.prompt, preset.response, preset.full_content_prompt]
    for override in preset.schemas.values():
        templates += [str(v) for k, v in override.items() if k in ("system", "prompt", "response")]
    return any("{transcript}" in t or "{prompt_text}" in t for t in templates)


class _Work:
    """Item -> records, the same in the main process and in parallel workers."""

    def __init__(self, reader: ManifestReader, builder: Builder, schema: LabelSchema | None,
                 trust: TrustOptions | None = None):
        self.reader = reader
        self.builder = builder
        self.schema = schema
        self.trust = trust or TrustOptions()

    def process(self, item: Item) -> list[dict[str, Any]] | None:
        schema = self.schema
        if schema is not None and item.label.label_schema and item.label.label_schema != schema.name:
            self.reader.stats.skip_item(item.line, SCHEMA_MISMATCH, f"labelSchema {item.label.label_schema!r}")
            return None
        if self.trust.active:
            skipped = check_item(item, self.trust, schema, self.reader.stats.reviewed, self.reader.stats.worker_trust)
            if skipped is not None:
                self.reader.stats.skip_item(item.line, *skipped)
                return None
        try:
            records = self.builder.run(item)
            weigh(records or [], self.trust)
            return records
        except SidecarError as exc:
            self.reader.stats.skip_item(item.line, SIDECAR_UNREADABLE, str(exc))
            return None
        except ItemFieldError as exc:
            self.reader.stats.skip_item(item.line, INVALID_FIELD, str(exc))
            return None


# -- parallel export -----------------------------------------------------------------------------
# Parsing, validating and building records is CPU-bound Python; the workers do it for batches of
# raw lines while the main process only reads and writes. Results come back in input order, so the
# output is byte-identical to a sequential run; at most 2 batches per worker are in flight.
BATCH_BYTES = 1 << 20
_STATE: dict[str, Any] = {}
_MAPPED: list[Any] = [None]  # the local input, mapped before the workers fork


def _mapped(fh: IO[bytes]) -> mmap.mmap | None:
    """A read-only map of a local input: workers then read their blocks themselves instead of
    receiving them through a pipe (which costs the main process as much as parsing would)."""
    try:
        fileno = fh.fileno()
        if os.fstat(fileno).st_size == 0:
            return None
        return mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None


# Page faults map neighbouring pages too ("fault-around", 64 KB on Linux): release a margin.
RELEASE_MARGIN = 256 * 1024


def _release(mm: mmap.mmap, start: int, end: int) -> None:
    """Unmap pages already copied out, so the mapping never adds to the resident set."""
    if hasattr(mmap, "MADV_DONTNEED"):
        lo = max(0, start - RELEASE_MARGIN)
        lo -= lo % mmap.PAGESIZE
        hi = min(len(mm), end + RELEASE_MARGIN)
        if hi > lo:
            mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


FIND_LINES = 256


def _count_newlines(mm: mmap.mmap, start: int, end: int) -> int:
    """Newlines in mm[start:end], for the line numbers. A memchr per line (mmap.find, no copy) is
    several times cheaper than copying the block and bytes.count for the usual long lines (kB
    each); past FIND_LINES lines the rest of the block is counted in one pass."""
    count, pos = 0, start
    while count < FIND_LINES:
        pos = mm.find(b"\n", pos, end) + 1
        if pos == 0:
            return count
        count += 1
    return count + mm[pos:end].count(b"\n")


def _mapped_chunks(mm: mmap.mmap, start: int, reader: ManifestReader) -> Iterator[tuple[int, tuple[int, int]]]:
    size, pos, progress = len(mm), start, reader.progress
    while pos < size:
        end = min(size, pos + BATCH_BYTES)
        if end < size:
            cut = mm.find(b"\n", end - 1)
            end = size if cut == -1 else cut + 1
        newlines = _count_newlines(mm, pos, end)
        _release(mm, pos, end)
        ends_line = mm[end - 1] == 10  # b"\n"
        reader.stats.bytes_read += end - pos
        if progress is not None:
            progress(end - pos)
        yield reader.line_number + 1, (pos, end - 1 if ends_line else end)
        reader.line_number += newlines if ends_line else newlines + 1
        pos = end


def _parallel_ok(options: ExportOptions, redactor: Redactor, preset: Preset) -> bool:
    return (options.jobs > 1 and preset.kind != "preference-ratings"  # pairs across the whole file
            and not options.worker_responses and type(redactor) in (RegexRedactor, NullRedactor))


def _init_worker(work: _Work, encoder: Callable[[list[dict[str, Any]]], bytes] | None,
                 mirrors: list[Any], spool: str | None) -> None:
    """`spool`: the temp dir for encoded batches (set whenever `encoder` is)."""
    work.reader.storage = Storage(mirrors)  # fresh boto3 clients per process
    _STATE.update(work=work, encoder=encoder, spool=spool)


# Encoded batches come back through a file in a private temp dir, not the result pipe: pickling
# them through the pipe (64 KB at a time, woken per piece) cost the main process more CPU than
# reading and writing the output. At most 2 batches per worker are ever on disk.
def _spool(data: bytes, spool: str) -> str:
    fd, path = tempfile.mkstemp(suffix=".part", dir=spool)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def _unspool(path: str) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read()
    os.unlink(path)
    return data


def _mapped_lines(mm: mmap.mmap, start: int, end: int) -> Iterator[bytes]:
    """The lines of mm[start:end] (which holds no final newline), as `bytes.split(b"\\n")` would."""
    pos = start
    while True:
        cut = mm.find(b"\n", pos, end)
        if cut == -1:
            yield mm[pos:end]
            return
        yield mm[pos:cut]
        pos = cut + 1


def _run_batch(first_line: int, chunk: bytes | tuple[int, int], attribute: str | None
               ) -> tuple[Any, int, ReadStats, Counter, Counter, str | None]:
    mapped = _MAPPED[0] if isinstance(chunk, tuple) else None
    # (start, end) in the memory-mapped input inherited at fork: lines are copied out one by one
    # (copying the block and splitting it costs twice the memory traffic).
    lines = _mapped_lines(mapped, *chunk) if isinstance(chunk, tuple) else chunk.split(b"\n")
    work: _Work = _STATE["work"]
    encoder = _STATE["encoder"]
    reader, builder = work.reader, work.builder
    reader.stats = stats = ReadStats(file=reader.uri)
    if reader.attribute is None:
        reader.attribute = attribute
    builder.dropped = Counter()
    builder.red.counts = Counter()
    out: list[list[dict[str, Any]]] = []
    for number, raw in enumerate(lines, start=first_line):
        if not raw.strip():
            continue
        stats.lines += 1
        item = reader.parse(number, raw)
        records = work.process(item) if item is not None else None
        if records:
            out.append(records)
    if mapped is not None:
        _release(mapped, *chunk)
    count = sum(len(r) for r in out)
    payload: Any = _spool(b"".join(encoder(r) for r in out), _STATE["spool"]) if encoder is not None else out
    return payload, count, stats, builder.dropped, builder.red.counts, reader.attribute


def _chunks(fh: IO[bytes], reader: ManifestReader) -> Iterator[tuple[int, bytes]]:
    """(first line number, whole lines) blocks of about BATCH_BYTES: the main process never
    touches single lines, so its share of the work stays a fraction of a plain read."""
    rest = b""
    progress = reader.progress
    while True:
        block = fh.read(BATCH_BYTES)
        if not block:
            break
        reader.stats.bytes_read += len(block)
        if progress is not None:
            progress(len(block))
        data = rest + block
        cut = data.rfind(b"\n")
        if cut == -1:
            rest = data
            continue
        chunk, rest = data[: cut + 1], data[cut + 1:]
        yield reader.line_number + 1, chunk[:-1]
        reader.line_number += chunk.count(b"\n")
    if rest:
        yield reader.line_number + 1, rest
        reader.line_number += 1


def _run_parallel(fh: IO[bytes], work: _Work, writer: Writer, jobs: int, storage: Storage,
                  redactor: Redactor) -> None:
    fork = "fork" in multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if fork else "spawn")
    mm = _mapped(fh) if fork else None
    _MAPPED[0] = mm
    try:
        _pool_run(ctx, fh, mm, work, writer, jobs, storage, redactor)
    finally:
        _MAPPED[0] = None
        if mm is not None:
            mm.close()


def _pool_run(ctx: Any, fh: IO[bytes], mm: mmap.mmap | None, work: _Work, writer: Writer, jobs: int,
              storage: Storage, redactor: Redactor) -> None:
    encoder = writer.encoder()
    # In the run's scratch directory, so a killed export's spool is cleaned up too (toolkit.storage.tempfiles).
    spool = tempfiles.new_scratch(suffix="-export-spool", directory=True) if encoder is not None else None
    try:
        _pool_collect(ctx, fh, mm, work, writer, jobs, storage, redactor, encoder,
                      str(spool) if spool else None)
    finally:
        if spool is not None:
            tempfiles.release_scratch(spool)


def _pool_collect(ctx: Any, fh: IO[bytes], mm: mmap.mmap | None, work: _Work, writer: Writer, jobs: int,
                  storage: Storage, redactor: Redactor, encoder: Callable[[list[dict[str, Any]]], bytes] | None,
                  spool: str | None) -> None:
    reader, builder = work.reader, work.builder
    main_stats = reader.stats
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(work, encoder, storage.mirrors, spool)) as pool:
        pending: deque[Any] = deque()

        def collect() -> None:
            payload, count, stats, dropped, counts, attribute = pending.popleft().get()
            if encoder is not None:
                data = _unspool(payload)
                if count:
                    writer.write_encoded(data, count)
            else:
                for records in payload:
                    writer.write(records)
            main_stats.lines += stats.lines
            main_stats.labeled += stats.labeled
            main_stats.label_seen |= stats.label_seen
            main_stats.skipped.update(stats.skipped)
            main_stats.reviewed.update(stats.reviewed)
            main_stats.worker_trust.update(stats.worker_trust)
            room = MAX_PROBLEMS - len(main_stats.problems)
            main_stats.problems.extend(stats.problems[:max(0, room)])
            builder.dropped.update(dropped)
            redactor.counts.update(counts)
            if reader.attribute is None:
                reader.attribute = attribute

        chunks = _mapped_chunks(mm, fh.tell(), reader) if mm is not None else _chunks(fh, reader)
        for first_line, chunk in chunks:
            pending.append(pool.apply_async(_run_batch, (first_line, chunk, reader.attribute)))
            if len(pending) >= 2 * jobs:
                collect()
        while pending:
            collect()


def _schema(option: str | LabelSchema | None, first: Item | None) -> LabelSchema | None:
    """--schema (a name or a file the user gave), else the built-in schema the first item names."""
    if isinstance(option, LabelSchema):
        return option
    if option:
        try:
            return load_label_schema(option)
        except (OSError, ValueError) as exc:
            raise PresetError(f"--schema: {exc}") from exc
    name = first.label.label_schema if first is not None else None
    if not name:
        return None
    schema = builtin_schema(name)  # a name from the data is never opened as a path
    if schema is None:
        raise PresetError(
            f"labelSchema {name!r} of line {first.line if first else '?'} is not a built-in schema "
            f"({', '.join(builtin_schema_names())}); pass --schema with that schema's YAML file")
    return schema
