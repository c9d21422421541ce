"""Codec of the peaks file: the `PeaksFile` JSON and the binary `GTPK` encoding (`PeaksHeader` + int16
min/max pairs), gzip or not, plus the binary container shared with the spectrogram file.

Written by `gtkit peaks` and `gtkit manifest build --peaks` (toolkit.ingest.peaks computes the peaks
with ffmpeg + numpy and writes through `peaks_json` / `peaks_binary`), read by `read_peaks` (tests,
tools) through `parse_peaks`, and by the worker UI (static/js/peaks.js, static/js/binary.js).
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel

from toolkit.contract import jsonio
from toolkit.contract.manifest import PEAKS_MAGIC, PEAKS_SCALE, PeaksFile, PeaksHeader
from toolkit.errors import GtkitError

# 3 decimals (0.001 of full scale) are finer than a pixel of any waveform height the UI draws
# (0.012 at its 168 px) and keep the JSON ~12% smaller than 4 would: 14 MB for 3 hours at 100/s.
PRECISION = 3
PEAKS_CONTENT_TYPE = "application/json"
PEAKS_BINARY_CONTENT_TYPE = "application/octet-stream"
GZIP_MAGIC = b"\x1f\x8b"
# zlib's default. Level 9 is 7-15% smaller on peaks but ~7x slower (2.8 s vs 0.4 s per hour of
# media, bench/ui_load.py tone): too much for batch manifest builds; 1 is 30% larger.
GZIP_LEVEL = 6
H = TypeVar("H", bound=BaseModel)


class PeaksError(GtkitError, RuntimeError):
    """The media could not be probed or decoded, or a peaks file cannot be read."""


class PeaksOptionError(GtkitError, ValueError):
    """Peaks or spectrogram options out of range (peaks per second, channels, frame rate, bins)."""


@dataclass
class PeakArrays:
    """Computed peaks before they become a `PeaksFile`: `values` is (channels, 2 * pairs) float64,
    interleaved min/max, rounded as the JSON stores them. The binary writer encodes it directly,
    without the PeaksFile's Python float lists (~70 MB for a 3-hour call)."""

    sample_rate: int
    peaks_per_second: float
    duration: float
    values: np.ndarray

    @property
    def channels(self) -> int:
        return int(self.values.shape[0])

    def to_file(self) -> PeaksFile:
        header = PeaksFile.model_validate({"sample_rate": self.sample_rate, "peaks_per_second": self.peaks_per_second,
                                           "duration": self.duration, "channels": self.channels, "data": []})
        # The values are valid by construction: skip pydantic's copy of millions of floats.
        return PeaksFile.model_construct(**{**header.__dict__, "data": [row.tolist() for row in self.values]})


def round_like_json(values: np.ndarray) -> np.ndarray:
    """Round float64 `values` in place to the JSON's PRECISION decimals (no extra copies of a 3-hour
    call's 2.2 M values). `+= 0.0` turns the -0.0 that rounding leaves for tiny negatives into 0.0:
    the same number, one byte shorter in the JSON."""
    np.round(values, PRECISION, out=values)
    values += 0.0
    return values


def peaks_json(peaks: PeaksFile) -> bytes:
    """Compact JSON bytes of a PeaksFile, as the UI receives them (after any Content-Encoding)."""
    return jsonio.dumps(peaks.model_dump(mode="python"))


def gzip_bytes(data: bytes) -> bytes:
    """gzip at GZIP_LEVEL with mtime 0, so the same input always gives the same bytes."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def peaks_gzip(peaks: PeaksFile) -> bytes:
    """`peaks_json` gzip-compressed."""
    return gzip_bytes(peaks_json(peaks))


def pack_binary(magic: bytes, header: BaseModel, body: bytes) -> bytes:
    """The container of binary peaks and spectrograms: `magic`, the header length (little-endian
    uint32), the header as JSON, padded with a space to an even length so 16-bit data stays
    aligned, then `body`."""
    head = jsonio.dumps(header.model_dump(mode="json"))
    head += b" " * (len(head) % 2)
    return magic + struct.pack("<I", len(head)) + head + body


def gunzip_if_needed(data: bytes, name: str, what: str) -> bytes:
    if not is_gzip(data):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise PeaksError(f"{name}: corrupt gzip {what} file: {exc}") from None


def unpack_binary(data: bytes, header_model: type[H], name: str, what: str) -> tuple[H, int]:
    """Inverse of `pack_binary` (the caller has checked the magic): the validated header and the
    offset of the body. Errors name the file."""
    if len(data) < 8:
        raise PeaksError(f"{name}: truncated binary {what} file")
    (size,) = struct.unpack("<I", data[4:8])
    try:
        return header_model.model_validate_json(data[8:8 + size]), 8 + size
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise PeaksError(f"{name}: invalid binary {what} header: {str(exc).splitlines()[0]}") from None


def peaks_binary(peaks: PeaksFile | PeakArrays) -> bytes:
    """The binary encoding (`PeaksHeader`): magic, header length, JSON header, int16 pairs."""
    channels = peaks.values if isinstance(peaks, PeakArrays) else peaks.data
    length = min((len(channel) for channel in channels), default=0) // 2
    if length < 1 or len(channels) != peaks.channels:
        raise PeaksError("peaks have no complete min/max pair, or a channel count that does not match")
    header = PeaksHeader(sample_rate=peaks.sample_rate, peaks_per_second=peaks.peaks_per_second,
                         duration=peaks.duration, channels=peaks.channels, length=length)
    body = [np.rint(np.clip(np.asarray(channel[: 2 * length], dtype=np.float64), -1, 1) * PEAKS_SCALE)
            .astype("<i2").tobytes() for channel in channels]
    return pack_binary(PEAKS_MAGIC, header, b"".join(body))


def is_gzip(data: bytes) -> bool:
    return data[:2] == GZIP_MAGIC


def is_binary_peaks_name(uri: str | Path) -> bool:
    """`x.peaks.bin` and `x.peaks.bin.gz` are binary; any other name is JSON."""
    name = str(uri).lower().removesuffix(".gz")
    return name.endswith(".bin")


def parse_peaks(data: bytes, name: str = "peaks") -> PeaksFile:
    """A peaks file's bytes, gzip or not, binary or JSON (by content, not name) -> PeaksFile."""
    data = gunzip_if_needed(data, name, "peaks")
    if data[:4] != PEAKS_MAGIC:
        try:
            return PeaksFile.model_validate_json(data)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise PeaksError(f"{name}: not a valid peaks file: {str(exc).splitlines()[0]}") from None
    header, offset = unpack_binary(data, PeaksHeader, name, "peaks")
    expected, got = header.channels * 2 * header.length, len(data) - offset
    if got != 2 * expected:
        raise PeaksError(f"{name}: expected {expected} int16 values, got {got / 2:g}")
    values = np.frombuffer(data, dtype="<i2", offset=offset).reshape(header.channels, -1) / header.scale
    # Back to the JSON's 3 decimals: int16 steps (3e-5) are far finer, so this restores them exactly.
    return PeakArrays(sample_rate=header.sample_rate, peaks_per_second=header.peaks_per_second,
                      duration=header.duration, values=round_like_json(values)).to_file()
