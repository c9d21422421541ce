"""`bedrock-batch`: Bedrock batch inference input (CreateModelInvocationJob), sharded by quota.

Layout under `--out` (a directory or s3:// prefix):
    job-000/part-000.jsonl ...   one CreateModelInvocationJob input prefix per `job-NNN/`
    records/job-000.jsonl ...    per job: recordId -> interaction, segment (what `gtkit bedrock import`
                                 joins the job's .jsonl.out lines on), outside the job prefixes
    jobs.json                    the plan: files, records and bytes per job, the quotas, preset and body used
    provenance.jsonl             recordId -> lineage (kept outside the job prefixes, which Bedrock reads)
Each line is `{"recordId": "R0000000001", "modelInput": {...}}` with an 11-character alphanumeric
recordId (Bedrock's output order is not guaranteed: join results on it).

Jobs are balanced: the records (in input order) go into the fewest jobs the per-job record and byte
quotas allow, of equal size to one record (1,240 records at 300 per job: 5 jobs of 248, not 4 of
300 and one of 40 below the minimum); each job's files likewise within the per-file quotas. That
needs the total first, so lines and their provenance wait in two anonymous temporary files (gone
with the process, even on kill -9) until the end. A job below the minimum record count aborts the
whole export: nothing is written.
"""

from __future__ import annotations

import math
import tempfile
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

import orjson

from toolkit.export.formats.base import ExportError, Provenance, Writer, dumps, join_uri
from toolkit.export.reserved import ReservedWords

GB = 1_000_000_000


@dataclass
class BatchQuotas:
    """Service Quotas defaults (adjustable per account, model and Region: read yours)."""

    min_records: int = 100
    records_per_file: int = 50_000
    records_per_job: int = 50_000
    file_bytes: int = 1 * GB
    job_bytes: int = 5 * GB


def model_input(record: dict[str, Any], body: Any) -> dict[str, Any]:
    system, prompt = record.get("system") or "", record["prompt"]
    if body.body == "anthropic":
        out: dict[str, Any] = {"anthropic_version": body.anthropic_version, "max_tokens": body.max_tokens}
        if system:
            out["system"] = system
        out["messages"] = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
        return out
    if body.body == "llama":  # the Llama 3 instruct chat format (Meta's model card; Bedrock's Llama examples)
        head = f"<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>" if system else ""
        return {"prompt": f"<|begin_of_text|>{head}<|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>"
                          "<|start_header_id|>assistant<|end_header_id|>\n\n",
                "max_gen_len": body.max_tokens}
    if body.body == "titan":  # Titan Text takes one text: the instructions lead it
        return {"inputText": f"{system}\n\n{prompt}" if system else prompt,
                "textGenerationConfig": {"maxTokenCount": body.max_tokens}}
    out = {"messages": [{"role": "user", "content": [{"text": prompt}]}],
           "inferenceConfig": {"maxTokens": body.max_tokens}}
    if system:
        out["system"] = [{"text": system}]
    return out


def map_entry(rid: str, file: str, row: int, entry: dict[str, Any]) -> dict[str, Any]:
    """One line of a job's records map (toolkit.contract.records.BatchRecordMapEntry). A pair's record
    is about its chosen item (the prompt both share)."""
    lineage = entry["lineage"]
    item = lineage.get("chosen", lineage)
    return {"recordId": rid, "id": entry["id"], "interaction_id": item["interaction_id"],
            "segment_id": item.get("segment_id"), "source_ref": item["source_ref"], "line": item["line"],
            "file": file, "row": row}


def records_map_path(prefix: str) -> str:
    """`job-000/` -> `records/job-000.jsonl`: outside the input prefix, so Bedrock never reads it (not even
    when the prefix is given without its slash: `job-000.records.jsonl` would match `s3://.../job-000`)."""
    return "records/" + prefix.rstrip("/") + ".jsonl"


def record_id(n: int) -> str:
    return f"R{n:010d}"


def _cut(sizes: Sequence[int], parts: int, max_count: int, max_bytes: int) -> list[tuple[int, int]] | None:
    """`parts` consecutive (start, end) ranges, each aiming at an even share of what is left."""
    out, start, n = [], 0, len(sizes)
    for left in range(parts, 0, -1):
        target = min(max_count, math.ceil((n - start) / left))
        end, used = start, 0
        while end < n and end - start < target and used + sizes[end] <= max_bytes:
            used += sizes[end]
            end += 1
        if end == start:
            return None
        out.append((start, end))
        start = end
        if start == n:
            return out
    return None if start < n else out


def split_balanced(sizes: Sequence[int], max_count: int, max_bytes: int) -> list[tuple[int, int]]:
    """Cut the items (by their byte sizes, in order) into the fewest consecutive parts within both
    limits, as even as possible in count. Every single size must be <= max_bytes."""
    if not sizes:
        return []
    parts = max(math.ceil(len(sizes) / max_count), math.ceil(sum(sizes) / max_bytes))
    while True:  # a part cut short by the byte limit pushes records on: one more part, then
        cuts = _cut(sizes, parts, max_count, max_bytes)
        if cuts is not None:
            return cuts
        parts += 1


class BedrockBatchWriter(Writer):
    # The model answers the prompt: no completion, chosen or media is read (sft-summary then gives the
    # prompts of items without a summary too).
    record_fields = frozenset({"id", "system", "prompt", "lineage"})

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.quotas: BatchQuotas = self.options.quotas or BatchQuotas()
        for name in ("records_per_file", "records_per_job", "file_bytes", "job_bytes"):
            if getattr(self.quotas, name) < 1:
                option = "--batch-" + name.replace("_", "-")
                raise ExportError(f"batch quotas must be positive: {option} is {getattr(self.quotas, name)}")
        self.reserved = ReservedWords(self.options.reserved_words)
        self.sizes = array("Q")  # bytes of each line, in order
        # The batch lines, and their provenance without file and row yet; closed with the outputs.
        self.lines: IO[bytes] = self.stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
        self.pending: IO[bytes] = self.stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115

    def write(self, records: list[dict[str, Any]]) -> None:
        q = self.quotas
        body = self.preset.preset.batch
        for record in records:
            rid = record_id(self.written + 1)
            row = {"recordId": rid, "modelInput": model_input(record, body)}
            rewrites = self.reserved.apply(row, record)
            line = dumps(row)
            size = len(line)
            if size > q.file_bytes or size > q.job_bytes:
                raise ExportError(f"record {record['id']}: {size} bytes exceeds the batch file size quota")
            self.lines.write(line)
            self.pending.write(dumps({"id": record["id"], "lineage": record["lineage"], "reserved": rewrites}))
            self.sizes.append(size)
            self.written += 1

    def plan(self) -> list[dict[str, Any]]:
        """Balanced jobs, then balanced files within each job; ExportError if a job is too small."""
        q, sizes = self.quotas, self.sizes
        jobs = split_balanced(sizes, q.records_per_job, q.job_bytes)
        small = [b - a for a, b in jobs if b - a < q.min_records]
        if small:
            total = len(sizes)
            if total < q.min_records:
                raise ExportError(
                    f"bedrock-batch: {total} records in total, below the minimum of {q.min_records} records per "
                    f"batch inference job (Service Quotas); nothing written. Pass --batch-min-records only if your "
                    f"account's quota for the model is lower")
            counts = " and ".join(str(b - a) for a, b in jobs)
            raise ExportError(
                f"bedrock-batch: the per-job quotas split {total} records into {len(jobs)} jobs of {counts}; "
                f"{len(small)} below the minimum of {q.min_records} records per job; nothing written. Raise "
                f"--batch-records-per-job / --batch-job-bytes if your account's quotas allow larger jobs")
        plan = []
        for number, (a, b) in enumerate(jobs):
            prefix = f"job-{number:03d}/"
            cuts = [(a + c, a + d) for c, d in split_balanced(sizes[a:b], q.records_per_file, q.file_bytes)]
            files = [{"path": f"{prefix}part-{i:03d}.jsonl", "records": d - c, "bytes": sum(sizes[c:d]),
                      "range": (c, d)} for i, (c, d) in enumerate(cuts)]
            plan.append({"prefix": prefix, "records": b - a, "bytes": sum(sizes[a:b]), "files": files,
                         "records_map": records_map_path(prefix)})
        return plan

    def finish(self) -> None:
        jobs = self.plan()  # before any output is opened
        self.lines.seek(0)
        self.pending.seek(0)
        provenance = Provenance(self.open(join_uri(self.out, "provenance.jsonl")))
        for job in jobs:
            records = self.open(join_uri(self.out, job["records_map"]))
            for part in job["files"]:
                fh = self.open(join_uri(self.out, part["path"]))
                start, end = part.pop("range")
                for row in range(end - start):
                    rid = record_id(start + row + 1)
                    fh.write(self.lines.readline())
                    entry = orjson.loads(self.pending.readline())
                    provenance.add(part["path"], row, entry, rid, reserved=entry["reserved"])
                    records.write(dumps(map_entry(rid, part["path"], row, entry)))
        plan = {"quotas": asdict(self.quotas), "preset": self.preset.name,
                "body": self.preset.preset.batch.model_dump(), "jobs": jobs}
        fh = self.open(join_uri(self.out, "jobs.json"), content_type="application/json")
        fh.write(orjson.dumps(plan, option=orjson.OPT_INDENT_2) + b"\n")
