"""Min/max waveform peaks for long media, so the worker UI never decodes the whole file.

ffmpeg decodes the media to float32 PCM on a pipe; we read it in fixed-size chunks and reduce each
bucket of `sample_rate / peaks_per_second` samples to its (min, max) with numpy. Memory stays
bounded by the chunk size plus the (small) peaks arrays, whatever the media length: a 3-hour call
at 100 peaks/s is ~1.1 M buckets, i.e. ~9 MB of float32 per channel.

On the wire: a 3-hour call is ~14 MB of JSON, which every annotator's browser downloads. Peaks
files are therefore stored gzip-compressed (`write_peaks`, `<id>.peaks.json.gz`) with
`Content-Encoding: gzip` + `Content-Type: application/json` on S3, so the browser's fetch()
decompresses them transparently and the UI receives the very same JSON. `read_peaks` reads both.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import orjson

from toolkit.models import PeaksFile
from toolkit.storage import Storage, is_s3, split_s3

# Samples per channel read from ffmpeg per chunk; a whole number of buckets is taken each time.
CHUNK_SAMPLES = 1 << 20
# 3 decimals (0.001 of full scale) are finer than a pixel of any waveform height the UI draws
# (0.012 at its 168 px) and keep the JSON ~12% smaller than 4 would: 14 MB for 3 hours at 100/s.
PRECISION = 3
PEAKS_CONTENT_TYPE = "application/json"
GZIP_MAGIC = b"\x1f\x8b"
# zlib's default. Level 9 is 7-15% smaller on peaks but ~7x slower (2.8 s vs 0.4 s per hour of
# media, bench/ui_load.py tone): too much for batch manifest builds; 1 is 30% larger.
GZIP_LEVEL = 6


class PeaksError(RuntimeError):
    """The media could not be probed or decoded."""


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise PeaksError(f"{tool} is not installed or not on PATH (needed to decode media)")
    return path


def probe_audio(media_path: Path) -> tuple[int, int]:
    """(sample rate, channel count) of the first audio stream, via ffprobe."""
    cmd = [
        _require("ffprobe"), "-v", "error", "-select_streams", "a:0",
        "-show_entries", "stream=sample_rate,channels", "-of", "json", str(media_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PeaksError(f"{media_path}: ffprobe failed: {proc.stderr.strip()[:300]}")
    streams = json.loads(proc.stdout or "{}").get("streams") or []
    if not streams:
        raise PeaksError(f"{media_path}: no audio stream")
    return int(streams[0]["sample_rate"]), int(streams[0].get("channels") or 1)


def compute_peaks(media_path: Path, peaks_per_second: float = 100.0, channels: int = 1,
                  *, sample_rate: int | None = None,
                  pcm_sink: Callable[[np.ndarray, int], None] | None = None) -> PeaksFile:
    """Decode `media_path` (wav, mp3, mp4, ... anything ffmpeg reads) and reduce it to min/max peaks.

    `channels=1` downmixes; `channels=2` keeps a stereo pair. `sample_rate` resamples before the
    reduction (default: the stream's own rate). The bucket size is a whole number of samples, so the
    stored `peaks_per_second` is the exact rate `sample_rate / bucket`, which may differ from the
    request by a hair for odd rates.

    `pcm_sink(frames, rate)`, if given, also receives every decoded chunk (float32, shape
    `(n, channels)`, in order) before it is reduced: the spectrogram (toolkit/spectrogram.py) is
    computed from this same decode. The chunk is a view of a buffer that is dropped afterwards.
    """
    media_path = Path(media_path)
    if not media_path.is_file():
        raise PeaksError(f"{media_path}: no such file")
    if peaks_per_second <= 0:
        raise ValueError("peaks_per_second must be > 0")
    if channels < 1:
        raise ValueError("channels must be >= 1")
    native_rate, _ = probe_audio(media_path)
    rate = sample_rate or native_rate
    bucket = max(1, round(rate / peaks_per_second))
    cmd = [
        _require("ffmpeg"), "-v", "error", "-nostdin", "-i", str(media_path),
        "-map", "0:a:0", "-vn", "-ac", str(channels), "-ar", str(rate), "-f", "f32le", "-",
    ]
    frame_bytes = 4 * channels
    chunk_bytes = (CHUNK_SAMPLES // bucket) * bucket * frame_bytes or bucket * frame_bytes
    mins: list[np.ndarray] = []
    maxs: list[np.ndarray] = []
    total_frames = 0
    carry = b""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        while True:
            data = proc.stdout.read(chunk_bytes - len(carry))
            if not data and not carry:
                break
            buf = carry + data
            if data and len(buf) < chunk_bytes:
                # A pipe read can return short; keep filling until a full chunk or EOF.
                carry = buf
                continue
            carry = b""
            usable = len(buf) - len(buf) % frame_bytes
            frames = np.frombuffer(buf[:usable], dtype="<f4").reshape(-1, channels)
            total_frames += len(frames)
            if pcm_sink is not None and len(frames):
                pcm_sink(frames, rate)
            full = len(frames) - len(frames) % bucket
            if full:
                blocks = frames[:full].reshape(-1, bucket, channels)
                mins.append(blocks.min(axis=1))
                maxs.append(blocks.max(axis=1))
            if full < len(frames):  # the last, partial bucket (only at EOF)
                tail = frames[full:]
                mins.append(tail.min(axis=0, keepdims=True))
                maxs.append(tail.max(axis=0, keepdims=True))
            if not data:
                break
        stderr = proc.stderr.read()
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    if code != 0:
        raise PeaksError(f"{media_path}: ffmpeg failed: {stderr.decode(errors='replace').strip()[:300]}")
    if total_frames == 0:
        raise PeaksError(f"{media_path}: decoded no audio samples")
    lo = np.clip(np.concatenate(mins), -1.0, 1.0)
    hi = np.clip(np.concatenate(maxs), -1.0, 1.0)
    data_out: list[list[float]] = []
    for ch in range(channels):
        pairs = np.empty(2 * len(lo), dtype=np.float64)
        pairs[0::2] = lo[:, ch]
        pairs[1::2] = hi[:, ch]
        # `+ 0.0` turns the -0.0 that rounding leaves for tiny negatives into 0.0: the same number,
        # one byte shorter in the JSON.
        data_out.append((np.round(pairs, PRECISION) + 0.0).tolist())
    return PeaksFile(
        sample_rate=rate, peaks_per_second=rate / bucket, duration=total_frames / rate,
        channels=channels, data=data_out,
    )


def peaks_json(peaks: PeaksFile) -> bytes:
    """Compact JSON bytes of a PeaksFile, as the UI receives them (after any Content-Encoding)."""
    return orjson.dumps(peaks.model_dump(mode="python"))


def peaks_gzip(peaks: PeaksFile) -> bytes:
    """`peaks_json` gzip-compressed (mtime 0, so the same peaks always give the same bytes)."""
    return gzip.compress(peaks_json(peaks), compresslevel=GZIP_LEVEL, mtime=0)


def is_gzip(data: bytes) -> bool:
    return data[:2] == GZIP_MAGIC


def write_maybe_gzip(data: bytes, uri: str, storage: Storage, content_type: str, *,
                     compress: bool | None = None) -> bool:
    """Write `data` to a local path or s3:// URI, gzip-compressed (mtime 0: same input, same bytes)
    when `compress`, or when it is None and the name ends in `.gz`; returns whether it was.

    Compressed objects go to S3 with `Content-Encoding: gzip`, so a browser fetching them (presigned
    URL) gets the original bytes, decompressed transparently. Locally the file is just gzip bytes;
    the portal detects them and sends the same headers.
    """
    if compress is None:
        compress = str(uri).lower().endswith(".gz")
    if compress:
        data = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
    storage.write_bytes(uri, data, content_type=content_type, content_encoding="gzip" if compress else None)
    return compress


def write_peaks(peaks: PeaksFile, uri: str, storage: Storage, *, compress: bool | None = None) -> bool:
    """Write `peaks` as JSON (`Content-Type: application/json`), gzip per `write_maybe_gzip`."""
    return write_maybe_gzip(peaks_json(peaks), uri, storage, PEAKS_CONTENT_TYPE, compress=compress)


def read_peaks(uri_or_path: str | Path, storage: Storage | None = None) -> PeaksFile:
    """Read a peaks file, plain JSON or gzip (detected by its magic bytes, whatever its name).

    boto3 returns S3 objects as stored (it does not undo Content-Encoding), so the check also covers
    compressed objects read from S3.
    """
    storage = storage or Storage()
    data = storage.read_bytes(uri_or_path)
    if is_gzip(data):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise PeaksError(f"{uri_or_path}: corrupt gzip peaks file: {exc}") from None
    try:
        return PeaksFile.model_validate_json(data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise PeaksError(f"{uri_or_path}: not a valid peaks file: {str(exc).splitlines()[0]}") from None


@contextmanager
def local_media(uri: str, storage: Storage) -> Iterator[Path]:
    """A local path for a local path or s3:// object (mirrors honoured). S3 media is streamed to a
    temp file, removed afterwards: ffmpeg needs a seekable input for mp4."""
    source = storage.resolve_read(uri)
    if not is_s3(source):
        yield Path(source)
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / (Path(split_s3(source)[1]).name or "media")
        with storage.open_read(source, binary=True) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield local


def peaks_for_uri(uri: str, storage: Storage, peaks_per_second: float = 100.0, channels: int = 1) -> PeaksFile:
    """Peaks of a local path or s3:// object (see `local_media`)."""
    with local_media(uri, storage) as path:
        return compute_peaks(path, peaks_per_second, channels)
