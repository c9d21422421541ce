"""Min/max waveform peaks for long media, so the worker UI never decodes the whole file.

ffmpeg decodes the media to float32 PCM on a pipe; we read it in fixed-size chunks and reduce each
bucket of `sample_rate / peaks_per_second` samples to its (min, max) with numpy. Memory stays
bounded by the chunk size plus the (small) peaks arrays, whatever the media length: a 3-hour call
at 100 peaks/s is ~1.1 M buckets, i.e. ~9 MB of float32 per channel.

Two encodings of the same `PeaksFile`, chosen by the file name (`write_peaks`):
- `*.peaks.bin[.gz]` (what `gtkit manifest build --peaks` writes): `GTPK`, a JSON `PeaksHeader`,
  then int16 min/max pairs. The browser turns it into Float32Arrays without parsing text: for a
  3-hour call that saves the ~340 ms JSON.parse of 2.2 M numbers, and it is 4.3 MB instead of 14.
- `*.peaks.json[.gz]`: the `PeaksFile` JSON itself, readable by anything.
A `.gz` name is stored gzip-compressed with `Content-Encoding: gzip` on S3, so the browser's fetch()
decompresses it transparently. `read_peaks` reads every variant, whatever the name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from toolkit.contract import PeaksFile
from toolkit.contract.peaks import (
    PEAKS_BINARY_CONTENT_TYPE,
    PEAKS_CONTENT_TYPE,
    PeakArrays,
    PeaksError,
    PeaksOptionError,
    gzip_bytes,
    is_binary_peaks_name,
    parse_peaks,
    peaks_binary,
    peaks_json,
    round_like_json,
)
from toolkit.storage import Storage, is_s3, split_s3, tempfiles

# Samples per channel read from ffmpeg per chunk; a whole number of buckets is taken each time.
CHUNK_SAMPLES = 1 << 20
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


def probe_duration(media_path: Path) -> float | None:
    """The container's duration in seconds via ffprobe, or None when it does not say."""
    cmd = [_require("ffprobe"), "-v", "error", "-show_entries", "format=duration", "-of", "json", str(media_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        value = float(json.loads(proc.stdout or "{}")["format"]["duration"])
    except (KeyError, TypeError, ValueError):
        return None
    return value if value > 0 else None


def compute_peaks(media_path: Path, peaks_per_second: float = 100.0, channels: int = 1,
                  *, sample_rate: int | None = None) -> PeaksFile:
    """Decode `media_path` (wav, mp3, mp4, ... anything ffmpeg reads) and reduce it to min/max peaks
    (`decode_peaks(...).to_file()`)."""
    return decode_peaks(media_path, peaks_per_second, channels, sample_rate=sample_rate).to_file()


def decode_peaks(media_path: Path, peaks_per_second: float = 100.0, channels: int = 1,
                 *, sample_rate: int | None = None,
                 pcm_sink: Callable[[np.ndarray, int], None] | None = None) -> PeakArrays:
    """Decode `media_path` (wav, mp3, mp4, ... anything ffmpeg reads) and reduce it to min/max peaks.

    `channels=1` downmixes; `channels=2` keeps a stereo pair; `channels=0` keeps the stream's own
    channels, up to two (a stereo call keeps agent and customer apart). `sample_rate` resamples before the
    reduction (default: the stream's own rate). The bucket size is a whole number of samples, so the
    stored `peaks_per_second` is the exact rate `sample_rate / bucket`, which may differ from the
    request by a hair for odd rates.

    `pcm_sink(frames, rate)`, if given, also receives every decoded chunk (float32, shape
    `(n, channels)`, in order) before it is reduced: the spectrogram (toolkit/ingest/spectrogram.py) is
    computed from this same decode. The chunk is a view of a buffer that is dropped afterwards.
    """
    media_path = Path(media_path)
    if not media_path.is_file():
        raise PeaksError(f"{media_path}: no such file")
    if peaks_per_second <= 0:
        raise PeaksOptionError("peaks_per_second must be > 0")
    if channels < 0:
        raise PeaksOptionError("channels must be >= 0")
    native_rate, native_channels = probe_audio(media_path)
    if channels == 0:
        channels = max(1, min(2, native_channels))
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
    del mins, maxs
    values = np.empty((channels, 2 * len(lo)), dtype=np.float64)
    values[:, 0::2] = lo.T
    values[:, 1::2] = hi.T
    del lo, hi
    return PeakArrays(sample_rate=rate, peaks_per_second=rate / bucket, duration=total_frames / rate,
                      values=round_like_json(values))


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
        data = gzip_bytes(data)
    storage.write_bytes(uri, data, content_type=content_type, content_encoding="gzip" if compress else None)
    return compress


def write_peaks(peaks: PeaksFile | PeakArrays, uri: str, storage: Storage, *, compress: bool | None = None) -> bool:
    """Write `peaks`, binary for a `.bin`/`.bin.gz` name (`application/octet-stream`), else JSON
    (`application/json`); gzip per `write_maybe_gzip`. Returns whether it was compressed."""
    if is_binary_peaks_name(uri):
        return write_maybe_gzip(peaks_binary(peaks), uri, storage, PEAKS_BINARY_CONTENT_TYPE, compress=compress)
    file = peaks.to_file() if isinstance(peaks, PeakArrays) else peaks
    return write_maybe_gzip(peaks_json(file), uri, storage, PEAKS_CONTENT_TYPE, compress=compress)


def read_peaks(uri_or_path: str | Path, storage: Storage | None = None) -> PeaksFile:
    """Read a peaks file: JSON or binary, plain or gzip (detected from its bytes, whatever its name).

    boto3 returns S3 objects as stored (it does not undo Content-Encoding), so the check also covers
    compressed objects read from S3.
    """
    storage = storage or Storage()
    return parse_peaks(storage.read_bytes(uri_or_path), str(uri_or_path))


@contextmanager
def local_media(uri: str, storage: Storage) -> Iterator[Path]:
    """A local path for a local path or s3:// object (mirrors honoured). S3 media is streamed to a
    temp file, removed afterwards: ffmpeg needs a seekable input for mp4."""
    source = storage.resolve_read(uri)
    if not is_s3(source):
        yield Path(source)
        return
    # In the run's scratch directory: removed with it if the run is killed (toolkit.storage.tempfiles).
    tmp = tempfiles.new_scratch(suffix="-media", directory=True)
    try:
        local = tmp / (Path(split_s3(source)[1]).name or "media")
        with storage.open_read(source, binary=True) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield local
    finally:
        tempfiles.release_scratch(tmp)


def peaks_for_uri(uri: str, storage: Storage, peaks_per_second: float = 100.0, channels: int = 1) -> PeakArrays:
    """Peaks of a local path or s3:// object (see `local_media`), for `write_peaks`."""
    with local_media(uri, storage) as path:
        return decode_peaks(path, peaks_per_second, channels)
