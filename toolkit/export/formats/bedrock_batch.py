"""`bedrock-batch`: Bedrock batch inference input (CreateModelInvocationJob), sharded by quota.

Layout under `--out` (a directory or s3:// prefix):
    job-000/part-000.jsonl ...   one CreateModelInvocationJob input prefix per `job-NNN/`
    jobs.json                    the plan: files, records and bytes per job, and the quotas used
    provenance.jsonl             recordId -> lineage (kept outside the job prefixes, which Bedrock reads)
Each line is `{"recordId": "R0000000001", "modelInput": {...}}` with an 11-character alphanumeric
recordId (Bedrock's output order is not guaranteed: join results on it). A file closes before it
would pass the per-file record or byte quota; a job before the per-job ones; a job below the
minimum record count aborts the whole export.
"""

from __future__ import annotations

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
    out = {"messages": [{"role": "user", "content": [{"text": prompt}]}],
           "inferenceConfig": {"maxTokens": body.max_tokens}}
    if system:
        out["system"] = [{"text": system}]
    return out


def record_id(n: int) -> str:
    return f"R{n:010d}"


class BedrockBatchWriter(Writer):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.quotas: BatchQuotas = self.options.quotas or BatchQuotas()
        q = self.quotas
        if q.records_per_file < 1 or q.records_per_job < 1 or q.file_bytes < 1 or q.job_bytes < 1:
            raise ValueError("batch quotas must be positive")
        self.reserved = ReservedWords(self.options.reserved_words)
        self.jobs: list[dict[str, Any]] = []
        self.fh: IO[bytes] | None = None
        self.provenance: Provenance | None = None

    def _new_job(self) -> None:
        self.jobs.append({"prefix": f"job-{len(self.jobs):03d}/", "records": 0, "bytes": 0, "files": []})
        self.fh = None

    def _new_file(self) -> None:
        job = self.jobs[-1]
        rel = f"{job['prefix']}part-{len(job['files']):03d}.jsonl"
        self.fh = self.open(join_uri(self.out, rel))
        job["files"].append({"path": rel, "records": 0, "bytes": 0})

    def write(self, records: list[dict[str, Any]]) -> None:
        if self.provenance is None:
            self.provenance = Provenance(self.open(join_uri(self.out, "provenance.jsonl")))
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
            job = self.jobs[-1] if self.jobs else None
            if job is None or job["records"] >= q.records_per_job or job["bytes"] + size > q.job_bytes:
                self._new_job()
                job = self.jobs[-1]
            part = job["files"][-1] if job["files"] else None
            if part is None or part["records"] >= q.records_per_file or part["bytes"] + size > q.file_bytes:
                self._new_file()
                part = job["files"][-1]
            assert self.fh is not None
            self.fh.write(line)
            self.provenance.add(part["path"], part["records"], record, rid, reserved=rewrites)
            part["records"] += 1
            part["bytes"] += size
            job["records"] += 1
            job["bytes"] += size
            self.written += 1

    def finish(self) -> None:
        q = self.quotas
        small = [j for j in self.jobs if j["records"] < q.min_records]
        if not self.jobs:
            raise ExportError(f"bedrock-batch: 0 records; a batch inference job needs at least "
                              f"{q.min_records} (--batch-min-records)")
        if small:
            desc = ", ".join(f"{j['prefix']} has {j['records']}" for j in small)
            raise ExportError(f"bedrock-batch: {desc} records, below the minimum of {q.min_records} per job "
                              f"(--batch-min-records, or raise --batch-records-per-job)")
        plan = {"quotas": asdict(q), "jobs": self.jobs}
        fh = self.open(join_uri(self.out, "jobs.json"), content_type="application/json")
        fh.write(orjson.dumps(plan, option=orjson.OPT_INDENT_2) + b"\n")
