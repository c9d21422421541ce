"""`gtkit merge`: processed feedback records + human labels -> one enriched dataset.

Each feedback record whose `interaction_id` has a label gains it under
`human_labels[<job name>]` (see toolkit.contract.records.MergedLabels): consolidated segments and
content, agreement, job, timestamp. Raw worker answers and per-worker texts stay out (worker
identities). Re-merging a job replaces its entry in place; other jobs' entries are kept. Lines
without labels, and lines that do not parse (invalid JSON or UTF-8, nested too deep), are copied
byte for byte and reported with file:line; a UTF-8 BOM on line 1 is dropped; a feedback or labels
file in UTF-16/UTF-32 is one InputEncodingError before anything is written. Serialisation is
deterministic, so merging twice gives byte-identical output. The labels index is spilled to a
temporary SQLite file keyed by interaction id (toolkit.storage.scratch), so memory stays flat
however many labels; the feedback file is streamed; the output is written atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO, Any

from toolkit.contract import feedback as feedback_line
from toolkit.contract.records import MergedContent, MergedLabels, MergedSegment, encode
from toolkit.export.reader import Item, ManifestReader, Problem
from toolkit.export.summary import RunSummary
from toolkit.storage import Storage
from toolkit.storage.lines import first_line, line_utf8_problem
from toolkit.storage.scratch import LabelIndex

MERGE_KEY = "human_labels"


def merged_labels(item: Item) -> dict[str, Any]:
    """The `human_labels[<job>]` entry of one item, built as its contract model and encoded."""
    label = item.label
    return encode(MergedLabels(
        job_name=item.job_name,
        label_attribute=item.attribute,
        creation_date=item.creation_date,
        status=label.status,
        error=label.error,
        label_schema=label.label_schema,
        worker_count=label.worker_count,
        valid_worker_count=label.valid_worker_count,
        agreement={"overall": label.agreement.overall, "segments": label.agreement.segments,
                   "content": label.agreement.content},
        segments=[MergedSegment(
            id=s.id, category=s.category, label=s.label, start=s.start, end=s.end, text=s.text,
            attributes=s.attributes, agreement=s.agreement, support=s.support, presegment_id=s.presegment_id,
        ) for s in label.segments],
        content={name: MergedContent(value=c.value, agreement=c.agreement, tie=c.tie, mean=c.mean)
                 for name, c in label.content.items()},
    ))


def build_index(storage: Storage, labels: str, label_attribute: str | None = None,
                progress: Callable[[int], None] | None = None) -> tuple[LabelIndex, RunSummary]:
    summary = RunSummary(command="merge")
    reader = ManifestReader(storage, labels, label_attribute, progress=progress)
    index = LabelIndex()
    try:
        for item in reader:
            index.add(item.interaction_id, merged_labels(item))
    except BaseException:
        index.close()
        raise
    if index.duplicates:
        summary.dropped["label-duplicate-interaction-id (last wins)"] += index.duplicates
    summary.skipped.update({f"labels: {k}": v for k, v in reader.stats.skipped.items()})
    summary.problems = reader.stats.problems
    summary.labeled = len(index)
    return index, summary


def job_key(entry: dict[str, Any]) -> str:
    return entry.get("job_name") or entry["label_attribute"]


def merge(storage: Storage, feedback: str, labels: str, out: str, label_attribute: str | None = None,
          progress: Callable[[int], None] | None = None) -> RunSummary:
    index, summary = build_index(storage, labels, label_attribute)
    with index:
        _merge_into(storage, feedback, out, index, summary, progress)
        summary.extra["labels not matched to feedback"] = index.unused()
    summary.files = [out]
    return summary


def _lines(src: IO[bytes], uri: str) -> Iterator[tuple[int, bytes]]:
    """(number, raw line) of the feedback file; line 1 checked for its encoding (before any output)."""
    for number, raw in enumerate(src, start=1):
        yield number, first_line(raw, uri) if number == 1 else raw


def _parse(raw: bytes) -> tuple[Any, str | None, str | None]:
    """(record, None, None), or (None, reason, detail) for a line that is copied unchanged."""
    try:
        return feedback_line.loads(raw), None, None
    except RecursionError:
        return None, "malformed-json", "not valid JSON: nested deeper than the parser's limit"
    except ValueError:
        bad_byte = line_utf8_problem(raw)
        return (None, "invalid-utf8", bad_byte) if bad_byte else (None, "malformed-json", "not valid JSON")


def _merge_into(storage: Storage, feedback: str, out: str, index: LabelIndex, summary: RunSummary,
                progress: Callable[[int], None] | None) -> None:
    summary.extra.update({"records with labels": 0, "passed through without labels": 0,
                          "re-merged (replaced)": 0})
    with storage.open_read(feedback, binary=True) as src:
        lines = _lines(src, feedback)
        first = next(lines, None)  # an input in the wrong encoding fails here, before the output exists
        with storage.open_write(out, binary=True, content_type="application/jsonl") as dst:
            pending = 0 if first is None else _merge_line(*first, dst, index, summary, feedback)
            for number, raw in lines:
                pending += _merge_line(number, raw, dst, index, summary, feedback)
                if progress is not None and pending >= 1 << 20:
                    progress(pending)
                    pending = 0
            if progress is not None and pending:
                progress(pending)


def _copy(raw: bytes, dst: IO[bytes], summary: RunSummary, feedback: str, number: int, reason: str,
          detail: str) -> None:
    summary.skipped[f"feedback: {reason} (copied unchanged)"] += 1
    summary.problems.append(Problem(number, reason, detail, feedback))
    summary.written += 1
    dst.write(raw)


def _merge_line(number: int, raw: bytes, dst: IO[bytes], index: LabelIndex, summary: RunSummary,
                feedback: str) -> int:
    """Write one feedback line (merged, or copied); returns its size for the progress bar."""
    if not raw.strip():
        dst.write(raw)
        return len(raw)
    summary.read += 1
    ending = b"\r\n" if raw.endswith(b"\r\n") else (b"\n" if raw.endswith(b"\n") else b"")
    record, reason, detail = _parse(raw)
    if reason is not None:
        _copy(raw, dst, summary, feedback, number, reason, detail or "")
        return len(raw)
    iid = record.get("interaction_id") if isinstance(record, dict) else None
    entry = index.take(iid) if isinstance(iid, str) else None
    if entry is None:
        summary.extra["passed through without labels"] += 1
        summary.written += 1
        dst.write(raw)
        return len(raw)
    existing = record.get(MERGE_KEY)
    jobs = dict(existing) if isinstance(existing, dict) else {}
    replaced = isinstance(existing, dict) and job_key(entry) in existing
    jobs[job_key(entry)] = entry  # same job: replaced in place, keeps its position
    record[MERGE_KEY] = jobs
    try:
        merged = feedback_line.encode(record) + (ending or b"\n")
    except RecursionError:
        _copy(raw, dst, summary, feedback, number, "too-deep-to-merge", "nested too deep to write back with its "
              "labels")
        return len(raw)
    dst.write(merged)
    summary.written += 1
    summary.extra["records with labels"] += 1
    summary.extra["re-merged (replaced)"] += replaced
    return len(raw)
