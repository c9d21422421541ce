"""`gtkit bedrock import`: N synthetic Anthropic `.jsonl.out` lines joined to a records map, text extracted
and masked with the default redactor, written with the resume journal, against a baseline measured in
the same run: reading the same lines with orjson and writing them back (what any importer must do).

    .venv/bin/python bench/bedrock_import.py                  # 20,000 records
    .venv/bin/python bench/bedrock_import.py --records 100000

Prints records per second for both, the ratio import/baseline, the rerun (every record resumed, no
masking) and the peak RSS of this process (ru_maxrss; streaming: it should not grow with N).
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.export.redact import RegexRedactor
from toolkit.ingest.model_outputs import Masker, import_outputs
from toolkit.storage import Storage

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
TEXT = ("The customer's order W 48172 was due on Monday and has not arrived; they ask for a call back on "
        "206 555 0142 or an e-mail to maria.okafor@example.org. The agent promises delivery today.")


def write_inputs(root: Path, n: int) -> tuple[Path, Path]:
    (root / "records").mkdir(parents=True)
    out, records = root / "part-000.jsonl.out", root / "records" / "job-000.jsonl"
    with out.open("wb") as fo, records.open("wb") as fr:
        for i in range(1, n + 1):
            rid = f"R{i:010d}"
            fr.write(orjson.dumps({"recordId": rid, "id": f"int-{i}/content.summary", "interaction_id": f"int-{i}",
                                   "segment_id": None, "source_ref": f"s3://b/{i}.wav", "line": i,
                                   "file": "job-000/part-000.jsonl", "row": i - 1}) + b"\n")
            fo.write(orjson.dumps({"recordId": rid, "modelInput": {
                "anthropic_version": "bedrock-2023-05-31", "max_tokens": 512, "system": "You summarise calls.",
                "messages": [{"role": "user", "content": [{"type": "text", "text": f"Summarise call {i}."}]}]},
                "modelOutput": {"id": f"msg_{i}", "type": "message", "role": "assistant",
                                "content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn",
                                "usage": {"input_tokens": 40, "output_tokens": 45}}}) + b"\n")
    (root / "jobs.json").write_bytes(orjson.dumps({"quotas": {}, "jobs": [
        {"prefix": "job-000/", "records": n, "bytes": 0, "files": [], "records_map": "records/job-000.jsonl"}]}))
    return out, root


def baseline(path: Path, target: Path) -> float:
    start = time.perf_counter()
    with path.open("rb") as src, target.open("wb") as dst:
        for raw in src:
            dst.write(orjson.dumps(orjson.loads(raw)) + b"\n")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out, export_root = write_inputs(Path(tmp) / "in", args.records)
        base = baseline(out, Path(tmp) / "copy.jsonl")
        target = Path(tmp) / "imported.jsonl"
        start = time.perf_counter()
        stats = import_outputs(Storage(), [str(out)], str(target), records=str(export_root),
                               masker=Masker(RegexRedactor()), model_id=MODEL, scratch_dir=tmp)
        took = time.perf_counter() - start
        start = time.perf_counter()
        again = import_outputs(Storage(), [str(out)], str(target), records=str(export_root),
                               masker=Masker(RegexRedactor()), model_id=MODEL, scratch_dir=tmp)
        rerun = time.perf_counter() - start
    n = args.records
    print(f"records                      {n}")
    print(f"baseline (orjson read+write) {n / base:,.0f} records/s ({base:.2f} s)")
    print(f"import (join, extract, mask) {n / took:,.0f} records/s ({took:.2f} s), {stats.masked_now} masked")
    print(f"ratio import/baseline        {base / took:.3f}")
    print(f"rerun (all resumed)          {n / rerun:,.0f} records/s ({rerun:.2f} s), {again.resumed} resumed")
    print(f"peak RSS                     {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
