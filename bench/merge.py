"""Benchmark `gtkit merge`: peak memory and throughput against the same run with the labels held
in memory (how merge worked before the on-disk index), measured in the same run.

    .venv/bin/python bench/merge.py                  # 40,000 labelled items (~840 MB of labels)
    .venv/bin/python bench/merge.py --items 5000

Generates, streaming, an output manifest of realistic labelled lines (bench/export.py's generator)
and a feedback file with one record per labelled item plus as many unlabelled ones, then runs each
phase in its own subprocess so peak RSS (VmHWM) is per phase:
  in-memory: build a dict of every merged label entry (the old index) and merge from it;
  merge:     toolkit.export.merge() with its SQLite-backed index.
Prints seconds, feedback MB/s, peak RSS, and the ratios (target: RSS flat in the item count, well
under 200 MB, and throughput within 2x of the in-memory run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))
from export import make_line, peak_rss_mb  # bench/export.py: the shared generator


def generate(labels: Path, feedback: Path, items: int) -> None:
    templates = [make_line(i) for i in range(6)]
    with labels.open("wb") as lab, feedback.open("wb") as fb:
        for i in range(items):
            # The generator's template k has id int-0000000k: the first 11 characters become the
            # running number, so item i is int-{i:07d}{k}.
            iid = f"int-{i:07d}{i % 6}"
            lab.write(templates[i % 6].replace(b"int-0000000", iid[:11].encode(), 2))
            # Each labelled record, then an unlabelled one, like a feedback export of mixed channels.
            fb.write(orjson.dumps({"interaction_id": iid, "channel": "voice", "transcript": "redacted " * 40,
                                   "sentiment": {"overall": "NEUTRAL"}}) + b"\n")
            fb.write(orjson.dumps({"interaction_id": f"chat-{i}", "channel": "chat", "transcript": "x " * 80}) + b"\n")


def phase_memory(labels: str, feedback: str, out: str) -> dict:
    # The old way: every entry as a dict in one process-wide index.
    from toolkit.export.merge import MERGE_KEY, job_key, merged_labels
    from toolkit.export.reader import ManifestReader
    from toolkit.storage import Storage

    start = time.perf_counter()
    index = {item.interaction_id: merged_labels(item) for item in ManifestReader(Storage(), labels)}
    with open(feedback, "rb") as src, open(out, "wb") as dst:
        for raw in src:
            record = json.loads(raw)
            entry = index.get(record["interaction_id"])
            if entry is None:
                dst.write(raw)
                continue
            record[MERGE_KEY] = {job_key(entry): entry}
            dst.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb(), "labelled": len(index)}


def phase_merge(labels: str, feedback: str, out: str) -> dict:
    from toolkit.export import merge
    from toolkit.storage import Storage

    start = time.perf_counter()
    summary = merge(Storage(), feedback, labels, out)
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb(),
            "labelled": summary.extra["records with labels"]}


def run_phase(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=40_000, help="Labelled items (default 40,000).")
    ap.add_argument("--dir", default=None, help="Work directory (default: a temp dir, removed after).")
    ap.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        kind, *rest = args.phase
        print(json.dumps(phase_memory(*rest) if kind == "memory" else phase_merge(*rest)))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        labels, feedback = Path(tmp) / "output.manifest", Path(tmp) / "feedback.jsonl"
        generate(labels, feedback, args.items)
        lab_mb, fb_mb = labels.stat().st_size / 1e6, feedback.stat().st_size / 1e6
        print(f"generated {args.items:,} labelled items: labels {lab_mb:,.0f} MB, feedback {fb_mb:,.0f} MB "
              f"({2 * args.items:,} records)")
        base = run_phase("memory", str(labels), str(feedback), str(Path(tmp) / "a.jsonl"))
        ours = run_phase("merge", str(labels), str(feedback), str(Path(tmp) / "b.jsonl"))
        same = (Path(tmp) / "a.jsonl").read_bytes() == (Path(tmp) / "b.jsonl").read_bytes()
        for name, r in (("in-memory index", base), ("gtkit merge    ", ours)):
            print(f"{name}: {r['seconds']:6.1f} s  {(lab_mb + fb_mb) / r['seconds']:6.1f} MB/s (labels+feedback)  "
                  f"peak RSS {r['peak_rss_mb']:7.1f} MB  ({r['labelled']:,} records labelled)")
        print(f"  merge / in-memory: time {ours['seconds'] / base['seconds']:.2f}x, "
              f"peak RSS {ours['peak_rss_mb'] / base['peak_rss_mb']:.2f}x; identical output: {same}")


if __name__ == "__main__":
    main()
