"""The media behind the records, for the formats that carry it (hf-audio, hf-video, lhotse, nemo).

`MediaFiles` turns a `source-ref` into a local file: the mirrored path when `--mirror` maps it,
else a download into the run's scratch directory (one item's media at a time, removed when the
next item's is fetched). `probe` reads its streams with ffprobe. `cut_audio` cuts clips at segment
boundaries, sample-accurately: spans are in samples, and one ffmpeg process decodes the media once
into a pipe from which every clip is sliced by sample index (see cut_audio). Video clips are
re-encoded from an exact input seek (`cut_video`), frame-accurately.

Failures are MediaError (the writer counts the record as not exported, `media-unreadable`, and
names the line and the URI; never a text).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import GtkitError
from toolkit.storage import Storage, is_s3, tempfiles
from toolkit.storage.names import file_stem

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
QUIET = ("-nostdin", "-hide_banner", "-loglevel", "error")
# No encoder tag, creation time or other run-dependent metadata in the clips: equal cuts, equal bytes.
BITEXACT = ("-map_metadata", "-1", "-fflags", "+bitexact", "-flags", "+bitexact")


class MediaError(GtkitError):
    """The media of a record cannot be read, probed or cut; the message names the URI."""


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    kind: str                      # "audio" or "video" (a video stream present)
    duration: float
    sample_rate: int | None = None
    channels: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    container: str = ""


def _run(args: list[str], what: str) -> bytes:
    try:
        done = subprocess.run(args, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise MediaError(f"{args[0]} is not installed (the media formats need ffmpeg)") from exc
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise MediaError(f"{what}: {args[0]} failed: {detail[-1] if detail else f'exit {done.returncode}'}")
    return done.stdout


def _rate(text: str | None) -> float | None:
    if not text or text in ("0/0", "0"):
        return None
    num, _, den = text.partition("/")
    try:
        value = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def probe(path: Path, uri: str = "") -> MediaInfo:
    out = _run([FFPROBE, "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
               uri or str(path))
    data = json.loads(out or b"{}")
    streams = data.get("streams") or []
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    if audio is None and video is None:
        raise MediaError(f"{uri or path}: no audio or video stream")
    fmt = data.get("format") or {}
    try:
        duration = float((audio or video or {}).get("duration") or fmt.get("duration") or 0)
    except ValueError:
        duration = 0.0
    return MediaInfo(
        path=path, kind="video" if video is not None else "audio", duration=duration,
        sample_rate=int(audio["sample_rate"]) if audio and audio.get("sample_rate") else None,
        channels=int(audio["channels"]) if audio and audio.get("channels") else None,
        width=video.get("width") if video else None, height=video.get("height") if video else None,
        fps=_rate(video.get("avg_frame_rate") or video.get("r_frame_rate")) if video else None,
        container=str(fmt.get("format_name") or ""))


def to_samples(seconds: float, sample_rate: int) -> int:
    return round(seconds * sample_rate)


CHUNK_FRAMES = 1 << 16   # decoded frames read from ffmpeg at a time (128 KB of 16-bit mono)
SHORT_TOLERANCE = 0.010  # a clip may end this many seconds past the decoded stream (label rounding)


def cut_audio(src: Path, sample_rate: int, spans: list[tuple[int, int]], outs: list[Path], channels: int = 1,
              uri: str = "") -> None:
    """Write `src[start:end]` (sample indices of the decoded stream, end exclusive) of each span to
    the matching `outs` path as 16-bit PCM WAV at the source's rate and channels.

    One ffmpeg process decodes the stretch from the whole second before the first span to the end of
    the last (an exact seek) into a pipe; the spans are sliced out of that stream by sample index as it
    passes, so every clip holds exactly the samples a full decode has there, the input is decoded once
    whatever the number of clips (overlapping ones too), and memory is one chunk plus the open clips.
    (One ffmpeg with an `asplit`/`atrim` output per clip measured 0.07x of a plain decode: every frame
    goes through every branch.)"""
    if len(spans) != len(outs):
        raise ValueError("one output path per span")
    if not spans:
        return
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    seek = spans[order[0]][0] // sample_rate  # whole seconds: the seek lands on an exact sample
    base = seek * sample_rate
    last = max(end for _, end in spans)
    args = [FFMPEG, *QUIET, "-ss", str(seek), "-i", str(src), "-t", f"{(last - base) / sample_rate + 0.5:.6f}",
            "-map", "0:a:0", "-ac", str(channels), "-f", "s16le", "-c:a", "pcm_s16le", "-"]
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1 << 20)
    except FileNotFoundError as exc:
        raise MediaError(f"{FFMPEG} is not installed (the media formats need ffmpeg)") from exc
    frame = 2 * channels
    pos, nxt = base, 0
    open_clips: list[tuple[int, int, wave.Wave_write]] = []  # (end, index, writer)
    try:
        assert proc.stdout is not None
        while nxt < len(order) or open_clips:
            data = proc.stdout.read(CHUNK_FRAMES * frame)
            if not data:
                break
            n = len(data) // frame
            while nxt < len(order) and spans[order[nxt]][0] < pos + n:
                i = order[nxt]
                writer = wave.open(str(outs[i]), "wb")  # noqa: SIM115 (closed when its span ends, or below)
                writer.setnchannels(channels)
                writer.setsampwidth(2)
                writer.setframerate(sample_rate)
                open_clips.append((spans[i][1], i, writer))
                nxt += 1
            still = []
            for end, i, writer in open_clips:
                lo, hi = max(spans[i][0], pos) - pos, min(end, pos + n) - pos
                if hi > lo:
                    writer.writeframesraw(data[lo * frame:hi * frame])
                if end <= pos + n:
                    writer.close()
                else:
                    still.append((end, i, writer))
            open_clips = still
            pos += n
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
        stderr = proc.stderr.read() if proc.stderr is not None else b""
        code = proc.wait()
        for _, _, writer in open_clips:
            writer.close()
    if code not in (0, -13) and (nxt < len(order) or open_clips):  # -13: SIGPIPE once every clip was done
        detail = stderr.decode("utf-8", "replace").strip().splitlines()
        raise MediaError(f"{uri or src}: {FFMPEG} failed: {detail[-1] if detail else f'exit {code}'}")
    missing = [i for i in order[nxt:]] + [i for end, i, _ in open_clips if end - pos > SHORT_TOLERANCE * sample_rate]
    if missing:
        start, end = spans[missing[0]]
        raise MediaError(f"{uri or src}: segment {start / sample_rate:.3f}-{end / sample_rate:.3f} s runs past the "
                         f"end of the media ({pos / sample_rate:.3f} s)")


def cut_audio_spans(info: MediaInfo, spans: list[tuple[float, float]], outs: list[Path], uri: str = "") -> None:
    """cut_audio with spans in seconds (each at least one sample long)."""
    assert info.sample_rate is not None
    rate = info.sample_rate
    samples = [(to_samples(s, rate), max(to_samples(e, rate), to_samples(s, rate) + 1)) for s, e in spans]
    cut_audio(info.path, rate, samples, outs, channels=info.channels or 1, uri=uri)


def cut_video(src: Path, start: float, end: float, out: Path, uri: str = "") -> None:
    """A frame-accurate clip (exact input seek, H.264/AAC re-encode) of `src` from start to end s."""
    _run([FFMPEG, *QUIET, "-y", "-ss", f"{start:.6f}", "-i", str(src), "-t", f"{max(0.0, end - start):.6f}",
          "-map", "0:v:0", "-map", "0:a:0?", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
          "-pix_fmt", "yuv420p", "-c:a", "aac", *BITEXACT, "-movflags", "+faststart", str(out)], uri or str(src))


class MediaFiles:
    """Local files for `source-ref`s, probed once each; downloads live in the run's scratch directory."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self.scratch: Path | None = None
        self._current: tuple[str, MediaInfo, bool] | None = None  # (uri, info, downloaded)

    def work_dir(self) -> Path:
        if self.scratch is None:
            self.scratch = tempfiles.new_scratch(suffix="-media", directory=True)
        return self.scratch

    def get(self, uri: str) -> MediaInfo:
        if self._current is not None and self._current[0] == uri:
            return self._current[1]
        self._drop()
        target = self.storage.resolve_read(uri)
        downloaded = is_s3(target)
        if downloaded:
            path = self.work_dir() / f"{file_stem(uri)}{Path(uri).suffix}"
            try:
                with self.storage.open_read(uri, binary=True) as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except Exception as exc:  # botocore, smart_open and OS errors alike: the item's media is unreadable
                path.unlink(missing_ok=True)
                raise MediaError(f"{uri}: cannot download: {type(exc).__name__}") from exc
        else:
            path = Path(target)
            if not path.is_file():
                raise MediaError(f"{uri}: no such file" + (" (is a --mirror missing?)" if is_s3(uri) else ""))
        info = probe(path, uri)
        self._current = (uri, info, downloaded)
        return info

    def clip_path(self, name: str) -> Path:
        return self.work_dir() / name

    def _drop(self) -> None:
        if self._current is not None and self._current[2]:
            self._current[1].path.unlink(missing_ok=True)
        self._current = None

    def close(self) -> None:
        self._drop()
        if self.scratch is not None:
            tempfiles.release_scratch(self.scratch)
            self.scratch = None


def read_and_remove(path: Path) -> bytes:
    data = path.read_bytes()
    path.unlink(missing_ok=True)
    return data
