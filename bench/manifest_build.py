"""Benchmark `gtkit manifest build --peaks [--spectrogram]`: time with records converted one at a
time (`--jobs 1`, the baseline) and with a thread per core, measured in the same run.

    .venv/bin/python bench/manifest_build.py                      # 16 calls of 10 minutes
    .venv/bin/python bench/manifest_build.py --calls 8 --minutes 5 --no-spectrogram

Generates WAV calls (ffmpeg, a speech-like tone plus noise) and one feedback record per call whose
`media_uri` is mirrored to the generated files, then builds the manifest with each `--jobs` value.
Prints seconds, calls per second, media minutes per second, the speed-up over `--jobs 1`, and
whether every run wrote byte-identical manifests. With real S3 media the download of each call
overlaps too, so the speed-up there is at least this one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from toolkit.ingest.build import BuildOptions, build_manifest  # noqa: E402
from toolkit.storage import Storage  # noqa: E402

BUCKET = "s3://bench-media"
SAMPLE_RATE = 16000


def generate(work: Path, calls: int, minutes: float) -> Path:
    media = work / "media"
    media.mkdir()
    seconds = minutes * 60
    first = media / "call_0.wav"
    expr = "(0.4*sin(2*PI*180*t)+0.1*(random(0)-0.5))*(0.2+0.8*abs(sin(2*PI*0.35*t)))"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"aevalsrc='{expr}':s={SAMPLE_RATE}:d={seconds}", "-ac", "1", "-c:a", "pcm_s16le",
                    str(first)], check=True)
    for i in range(1, calls):  # hard links: the same bytes, decoded afresh for every call
        os.link(first, media / f"call_{i}.wav")
    feedback = work / "feedback.jsonl"
    with feedback.open("wb") as fh:
        for i in range(calls):
            fh.write(orjson.dumps({
                "interaction_id": f"bench-{i:05d}", "channel": "voice", "media_uri": f"{BUCKET}/media/call_{i}.wav",
                "media_format": "wav", "duration_seconds": seconds, "language_code": "en-US",
                "transcript": "hello " * 20}) + b"\n")
    return feedback


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=10.0, help="Length of each call.")
    ap.add_argument("--jobs", default=",".join(sorted({"1", str(min(os.cpu_count() or 1, 8))}, key=int)),
                    help="Comma-separated --jobs values (default: 1 and the cores, at most 8).")
    ap.add_argument("--no-spectrogram", action="store_true", help="Peaks only.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        feedback = generate(work, args.calls, args.minutes)
        storage = Storage([f"{BUCKET}/={work}"])
        print(f"{args.calls} calls x {args.minutes:g} min, peaks{'' if args.no_spectrogram else ' + spectrogram'}, "
              f"{os.cpu_count()} cores")
        base = None
        outputs = set()
        for jobs in (int(j) for j in args.jobs.split(",")):
            out = work / f"m{jobs}.jsonl"
            options = BuildOptions(peaks_prefix=str(work / "peaks"), spectrogram=not args.no_spectrogram, jobs=jobs)
            start = time.perf_counter()
            report = build_manifest([str(feedback)], str(out), storage, options)
            seconds = time.perf_counter() - start
            assert report.lines_out == args.calls, f"{report.errors} errors: {report.first_problems[:1]}"
            outputs.add(out.read_bytes())
            base = base or seconds
            print(f"  --jobs {jobs}: {seconds:6.2f} s  {args.calls / seconds:5.2f} calls/s  "
                  f"{args.calls * args.minutes / seconds:6.1f} media min/s  speed-up {base / seconds:4.2f}x")
        print(f"  identical manifests: {len(outputs) == 1}")


if __name__ == "__main__":
    main()
