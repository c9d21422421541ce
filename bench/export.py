"""Benchmark `gtkit export` against orjson parse-only over the same generated output manifest.

    .venv/bin/python bench/export.py                 # 1 GB (default)
    .venv/bin/python bench/export.py --size 200M --preset reward-segments --format jsonl

Generates an output manifest of realistic lines (pre-segments, a consolidated label with per-worker
texts, content answers and the raw worker answers, some PII) in a temp dir, streaming, then runs
each phase in its own subprocess so peak RSS (VmHWM) is per phase:
  parse:  read the file line by line and orjson.loads every line (the baseline);
  export: toolkit.export.export() with default PII redaction, writing to the temp dir.
Prints MB/s for both, their ratio (target >= 0.5) and peak RSS (target < 200 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

UNITS = {"K": 1_000, "M": 1_000_000, "G": 1_000_000_000}
WORKERS = ["private.us-east-1.w1aaaa", "private.us-east-1.w2bbbb", "private.us-east-1.w3cccc"]
SENTENCES = [
    "Hi, my order was due on Monday and it still hasn't arrived, can you check it for me please?",
    "Northwind support, this is Dana speaking, thanks for waiting, how can I help you today?",
    "You can reach me at 206 555 0142 or by email at maria.okafor@example.org any time.",
    "Let me look up the order number, one moment while I pull up the account details.",
    "I paid with the card ending in one one one one and the charge went through twice.",
    "Sorry about that, I have refunded the duplicate charge and it should arrive in three days.",
]


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_size(text: str) -> int:
    text = text.strip().upper().rstrip("B")
    if text and text[-1] in UNITS:
        return int(float(text[:-1]) * UNITS[text[-1]])
    return int(text)


def make_line(i: int, n_segments: int = 12) -> bytes:
    pre, segs, answers = [], [], []
    t = 0.0
    for j in range(n_segments):
        text = SENTENCES[(i + j) % len(SENTENCES)]
        start, end = round(t, 3), round(t + 3.2, 3)
        t += 3.5
        label = "Customer" if j % 2 else "Agent"
        pre.append({"id": f"ts-{j}", "track": "speaker", "label": label, "start": start, "end": end,
                    "text": text.replace("order", "odor"), "speaker": f"spk_{j % 2}", "source": "transcribe"})
        segs.append({"id": f"s{j}", "category": "speaker", "label": label, "start": start, "end": end,
                     "text": text, "texts": dict.fromkeys(WORKERS, text), "attributes": {"emotion": "Neutral"},
                     "attributeAgreement": {"emotion": 1.0}, "support": 3, "agreement": 0.9,
                     "presegmentId": f"ts-{j}"})
        answers.append({"id": f"a{j}", "track": "t1" if j % 2 else "t0", "start": start, "end": end,
                        "text": text, "attributes": {"emotion": "Neutral"}, "presegmentId": f"ts-{j}"})
    duration = round(t + 1, 3)
    worker_answer = {"schemaVersion": "1.0", "labelSchema": "call-center", "interactionId": f"int-{i:08d}",
                     "mediaDuration": duration,
                     "tracks": [{"id": "t0", "category": "speaker", "label": "Agent"},
                                {"id": "t1", "category": "speaker", "label": "Customer"}],
                     "segments": answers, "content": {"overall_rating": 4, "summary": SENTENCES[i % 6]}}
    line = {
        "source-ref": f"s3://bench-bucket/media/call_{i:08d}.wav", "media-type": "audio",
        "interaction-id": f"int-{i:08d}", "duration-seconds": duration, "language-code": "en-US",
        "transcription": " ".join(p["text"] for p in pre), "pre-segments": pre,
        "metadata": {"customer_id": f"cust-{i}", "channel": "voice", "topics": ["delivery"]},
        "call-labels": {
            "schemaVersion": "1.0", "status": "ok", "labelSchema": "call-center", "interactionId": f"int-{i:08d}",
            "mediaDuration": duration, "workerCount": 3, "validWorkerCount": 3, "segments": segs,
            "content": {"overall_rating": {"value": 4, "agreement": 0.67, "tie": False, "votes": {"4": 2, "5": 1},
                                           "mean": 4.333, "values": dict.fromkeys(WORKERS, 4)},
                        "summary": {"value": SENTENCES[i % 6], "agreement": 0.67, "tie": False, "votes": {},
                                    "values": {}}},
            "agreement": {"overall": 0.88, "segments": 0.9, "content": 0.67},
            "workers": [{"workerId": w, "valid": True, "problems": [], "answer": worker_answer} for w in WORKERS],
        },
        "call-labels-metadata": {"type": "groundtruth/custom", "job-name": "bench-job", "human-annotated": "yes",
                                 "creation-date": "2024-11-05T10:00:00.000000"},
    }
    return orjson.dumps(line) + b"\n"


def generate(path: Path, size: int) -> tuple[int, int]:
    # A handful of distinct lines re-stamped with a running id keeps generation fast and streaming.
    templates = [make_line(i) for i in range(6)]
    written = lines = 0
    with path.open("wb") as fh:
        while written < size:
            base = templates[lines % 6]
            line = base.replace(b"int-0000000", f"int-{lines:07d}".encode()[:11], 2)
            fh.write(line)
            written += len(line)
            lines += 1
    return written, lines


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def phase_parse(path: str) -> dict:
    cpu0 = cpu_seconds(resource.RUSAGE_SELF)
    start = time.perf_counter()
    n = 0
    with open(path, "rb") as fh:
        for raw in fh:
            orjson.loads(raw)
            n += 1
    return {"seconds": time.perf_counter() - start, "lines": n, "peak_rss_mb": peak_rss_mb(),
            "cpu": cpu_seconds(resource.RUSAGE_SELF) - cpu0}


def phase_export(path: str, out: str, preset: str, fmt: str, jobs: str) -> dict:
    from toolkit.export import BatchQuotas, ExportOptions, export
    from toolkit.storage import Storage

    cpu0 = cpu_seconds(resource.RUSAGE_SELF)
    start = time.perf_counter()
    summary = export(Storage(), path, ExportOptions(preset=preset, format=fmt, out=out, jobs=int(jobs),
                                                    quotas=BatchQuotas(min_records=1)))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": time.perf_counter() - start, "lines": summary.read, "written": summary.written,
            "redactions": dict(summary.redactions), "peak_rss_mb": peak_rss_mb(),
            "worker_peak_rss_mb": children, "jobs": int(summary.extra.get("worker processes", 1)),
            "cpu_main": cpu_seconds(resource.RUSAGE_SELF) - cpu0, "cpu_workers": cpu_seconds(resource.RUSAGE_CHILDREN)}


def run_phase(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1G", help="Manifest size to generate, e.g. 1G, 200M (default 1G).")
    ap.add_argument("--preset", default="sft-transcription")
    ap.add_argument("--format", default="trl")
    ap.add_argument("--jobs", default=",".join(sorted({"1", str(min(os.cpu_count() or 1, 4))})),
                    help="Comma-separated worker counts to measure (default: 1 and all cores).")
    ap.add_argument("--dir", default=None, help="Work directory (default: a temp dir, removed after).")
    ap.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        kind, *rest = args.phase
        result = phase_parse(rest[0]) if kind == "parse" else phase_export(*rest)
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        manifest = Path(tmp) / "output.manifest"
        t0 = time.perf_counter()
        size, lines = generate(manifest, parse_size(args.size))
        print(f"generated {size / 1e6:,.0f} MB, {lines:,} lines in {time.perf_counter() - t0:.1f} s "
              f"({size / lines / 1e3:.1f} kB/line)")
        out = str(Path(tmp) / ("out" if args.format in ("bedrock-batch", "webvtt") else "out.jsonl"))
        parse = run_phase("parse", str(manifest))
        mb = size / 1e6
        p_rate = mb / parse["seconds"]
        print(f"orjson parse-only : {parse['seconds']:7.1f} s {p_rate:7.1f} MB/s  peak RSS "
              f"{parse['peak_rss_mb']:6.1f} MB  (CPU {parse['cpu']:.1f} s)")
        for jobs in args.jobs.split(","):
            exp = run_phase("export", str(manifest), out, args.preset, args.format, jobs)
            e_rate = mb / exp["seconds"]
            ratio = e_rate / p_rate
            workers = exp["jobs"]
            # Upper bound of the process tree: main + every worker at the largest worker's peak.
            total_rss = exp["peak_rss_mb"] + (workers * exp["worker_peak_rss_mb"] if workers > 1 else 0)
            print(f"export {args.preset}/{args.format} jobs={workers}: {exp['seconds']:7.1f} s {e_rate:7.1f} MB/s  "
                  f"peak RSS main {exp['peak_rss_mb']:6.1f} MB"
                  + (f", per worker {exp['worker_peak_rss_mb']:6.1f} MB, tree <= {total_rss:6.1f} MB" if workers > 1
                     else "")
                  + f"  ({exp['written']:,} records; CPU main {exp['cpu_main']:.1f} s, workers "
                    f"{exp['cpu_workers']:.1f} s)")
            # Under CPU contention wall time says little; the CPU view is what an idle machine would
            # see: the busiest of (main, workers spread over the cores) sets the pace.
            cores = min(os.cpu_count() or 1, workers + 1)
            total_cpu = exp["cpu_main"] + exp["cpu_workers"]
            cpu_wall = max(exp["cpu_main"], total_cpu / cores) if workers > 1 else exp["cpu_main"]
            print(f"  CPU-bound estimate: export {mb / cpu_wall:7.1f} MB/s vs parse-only {mb / parse['cpu']:7.1f} MB/s"
                  f" = {parse['cpu'] / cpu_wall:.2f}")
            print(f"  export / parse-only throughput: {ratio:.2f} (target >= 0.50: "
                  f"{'ok' if ratio >= 0.5 else 'MISSED'}); RSS target < 200 MB: "
                  f"{'ok' if total_rss < 200 else 'MISSED'}")

if __name__ == "__main__":
    main()
