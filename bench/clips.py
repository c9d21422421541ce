"""Clip cutting (`--clips`): N segments of a 60-minute call, cut sample-accurately with
toolkit.export.media.cut_audio, against one ffmpeg decode of the whole file.

    .venv/bin/python bench/clips.py                      # 60 min, 16 kHz WAV, 600 segments
    .venv/bin/python bench/clips.py --segments 2000 --codec mp3

Generates the call with ffmpeg (pink noise, mono 16 kHz) in a temp dir, then measures:
- baseline: one `ffmpeg -i call -f s16le -` decode to /dev/null (audio seconds per second);
- cutting: all N clips (segments of 1.5-12 s, back to back with gaps, like a call's turns): one ffmpeg
  decode into a pipe, each clip sliced out by sample index and written as WAV; clips per second, audio
  seconds cut per second, and the ratio of that to the baseline's throughput (target >= 0.5);
- peak RSS of the cutting's ffmpeg children (ru_maxrss of the largest) and of this process.
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.export.media import cut_audio, probe


def make_call(path: Path, minutes: float, codec: str) -> None:
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
            f"anoisesrc=d={minutes * 60}:c=pink:r=16000:a=0.3"]
    args += ["-c:a", "libmp3lame", "-b:a", "64k"] if codec == "mp3" else ["-c:a", "pcm_s16le"]
    subprocess.run([*args, str(path)], check=True)


def segments(n: int, duration: float, seed: int = 7) -> list[tuple[float, float]]:
    """n turns of 1.5-12 s spread over the call with small gaps (scaled to fit)."""
    rng = random.Random(seed)
    lengths = [rng.uniform(1.5, 12.0) for _ in range(n)]
    gaps = [rng.uniform(0.1, 1.5) for _ in range(n)]
    scale = min(1.0, (duration - 1.0) / (sum(lengths) + sum(gaps)))
    out, t = [], 0.0
    for length, gap in zip(lengths, gaps, strict=True):
        t += gap * scale
        out.append((t, t + length * scale))
        t += length * scale
    return out


def children_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--segments", type=int, default=600)
    ap.add_argument("--codec", choices=("wav", "mp3"), default="wav")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gtkit-bench-clips-") as tmp:
        src = Path(tmp) / f"call.{args.codec}"
        t0 = time.perf_counter()
        make_call(src, args.minutes, args.codec)
        info = probe(src)
        assert info.sample_rate is not None
        print(f"call: {args.minutes:g} min {args.codec}, {src.stat().st_size / 1e6:.1f} MB, "
              f"{info.sample_rate} Hz (generated in {time.perf_counter() - t0:.1f} s)")

        t0 = time.perf_counter()
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(src), "-f", "s16le",
                        "-c:a", "pcm_s16le", "-y", "/dev/null"], check=True)
        decode_s = time.perf_counter() - t0
        decode_rss = children_rss_mb()
        decode_rate = info.duration / decode_s
        print(f"baseline, one ffmpeg decode: {decode_s:.2f} s, {decode_rate:.0f} audio s/s "
              f"(ffmpeg peak RSS {decode_rss:.0f} MB)")

        spans_s = segments(args.segments, info.duration)
        rate = info.sample_rate
        spans = [(round(s * rate), round(e * rate)) for s, e in spans_s]
        outs = [Path(tmp) / f"clip-{i:05d}.wav" for i in range(len(spans))]
        cut_seconds = sum(e - s for s, e in spans_s)
        t0 = time.perf_counter()
        cut_audio(src, rate, spans, outs, channels=info.channels or 1)
        cut_s = time.perf_counter() - t0
        cut_rate = cut_seconds / cut_s
        clip_bytes = sum(p.stat().st_size for p in outs)
        print(f"cutting {len(spans)} clips ({cut_seconds / 60:.1f} min of audio, one ffmpeg decode piped and "
              f"sliced): {cut_s:.2f} s, {len(spans) / cut_s:.1f} clips/s, "
              f"{cut_rate:.0f} audio s/s, {clip_bytes / 1e6:.1f} MB written")
        print(f"ratio to one decode: {cut_rate / decode_rate:.2f}x (target >= 0.5x)")
        print(f"peak RSS: largest ffmpeg child {children_rss_mb():.0f} MB, this process "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
