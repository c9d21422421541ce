"""`gtkit merge`: processed feedback records + human labels -> one enriched dataset.

Each feedback record whose `interaction_id` has a label gains it under
`human_labels[<job name>]` (see toolkit.models.records.MergedLabels): consolidated segments and
content, agreement, job, timestamp. Raw worker answers and per-worker texts stay out (worker
identities). Re-merging a job replaces its entry in place; other jobs' entries are kept. Lines
without labels, and lines that do not parse, are copied byte for byte. Serialisation is
deterministic, so merging twice gives byte-identical output. The labels index is spilled to a
temporary SQLite file keyed by interaction id (toolkit.export.scratch), so memory stays flat
however many labels; the feedback file is streamed; the output is written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from toolkit.export.reader import Item, ManifestReader
from toolkit.export.scratch import LabelIndex
from toolkit.export.summary import RunSummary
from toolkit.storage import Storage

MERGE_KEY = "human_labels"


def merged_labels(item: Item) -> dict[str, Any]:
    label = item.label
    return {
        "job_name": item.job_name,
        "label_attribute": item.attribute,
        "creation_date": item.creation_date,
        "status": label.status,
        "error": label.error,
        "label_schema": label.label_schema,
        "worker_count": label.worker_count,
        "valid_worker_count": label.valid_worker_count,
        "agreement": {"overall": label.agreement.overall, "segments": label.agreement.segments,
                      "content": label.agreement.content},
        "segments": [{
            "id": s.id, "category": s.category, "label": s.label, "start": s.start, "end": s.end,
            "text": s.text, "attributes": s.attributes, "agreement": s.agreement, "support": s.support,
            "presegment_id": s.presegment_id,
        } for s in label.segments],
        "content": {name: {"value": c.value, "agreement": c.agreement, "tie": c.tie, "mean": c.mean}
                    for name, c in label.content.items()},
    }


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


def _merge_into(storage: Storage, feedback: str, out: str, index: LabelIndex, summary: RunSummary,
                progress: Callable[[int], None] | None) -> None:
    summary.extra.update({"records with labels": 0, "passed through without labels": 0,
                          "re-merged (replaced)": 0})
    with storage.open_read(feedback, binary=True) as src, storage.open_write(
            out, binary=True, content_type="application/jsonl") as dst:
        pending = 0
        for number, raw in enumerate(src, start=1):
            pending += len(raw)
            if progress is not None and pending >= 1 << 20:
                progress(pending)
                pending = 0
            if not raw.strip():
                dst.write(raw)
                continue
            summary.read += 1
            ending = b"\r\n" if raw.endswith(b"\r\n") else (b"\n" if raw.endswith(b"\n") else b"")
            try:
                record = json.loads(raw)
            except ValueError:
                summary.skipped["feedback: malformed-json (copied unchanged)"] += 1
                summary.problems.append(_problem(number, "feedback malformed-json", "not valid JSON"))
                summary.written += 1
                dst.write(raw)
                continue
            iid = record.get("interaction_id") if isinstance(record, dict) else None
            entry = index.take(iid) if isinstance(iid, str) else None
            if entry is None:
                summary.extra["passed through without labels"] += 1
                summary.written += 1
                dst.write(raw)
                continue
            existing = record.get(MERGE_KEY)
            jobs = dict(existing) if isinstance(existing, dict) else {}
            if isinstance(existing, dict) and job_key(entry) in existing:
                summary.extra["re-merged (replaced)"] += 1
            jobs[job_key(entry)] = entry  # same job: replaced in place, keeps its position
            record[MERGE_KEY] = jobs
            dst.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + (ending or b"\n"))
            summary.written += 1
            summary.extra["records with labels"] += 1
        if progress is not None and pending:
            progress(pending)


def _problem(line: int, reason: str, detail: str) -> Any:
    from toolkit.export.reader import Problem

    return Problem(line, reason, detail)
