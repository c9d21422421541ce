"""Codec of the spectrogram file: `GTSG`, a JSON `SpectrogramHeader`, then uint8 frames x bins, in the
binary container shared with the peaks file (toolkit.contract.peaks), gzip or not.

Written by `gtkit peaks --spectrogram` and `gtkit manifest build --spectrogram` (toolkit.ingest.spectrogram
computes it in the peaks' decode), read by `read_spectrogram` and by the worker UI (static/js/spectrogram.js).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.contract.manifest import SPECTROGRAM_MAGIC, SpectrogramHeader
from toolkit.contract.peaks import PeaksError, gunzip_if_needed, pack_binary, unpack_binary

SPECTROGRAM_CONTENT_TYPE = "application/octet-stream"


@dataclass
class Spectrogram:
    header: SpectrogramHeader
    data: np.ndarray  # uint8, shape (frames, bins)


def spectrogram_bytes(spec: Spectrogram) -> bytes:
    """The uncompressed file: magic, header length, JSON header, uint8 matrix."""
    return pack_binary(SPECTROGRAM_MAGIC, spec.header, spec.data.tobytes())


def parse_spectrogram(data: bytes, name: str = "spectrogram") -> Spectrogram:
    """Inverse of `spectrogram_bytes` (gzip bytes are decompressed first)."""
    data = gunzip_if_needed(data, name, "spectrogram")
    if data[:4] != SPECTROGRAM_MAGIC:
        raise PeaksError(f"{name}: not a spectrogram file (bad magic)")
    header, offset = unpack_binary(data, SpectrogramHeader, name, "spectrogram")
    body = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if len(body) != header.frames * header.bins:
        raise PeaksError(f"{name}: expected {header.frames * header.bins} bytes of data, got {len(body)}")
    return Spectrogram(header=header, data=body.reshape(header.frames, header.bins))
