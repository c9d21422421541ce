"""Precomputed spectrogram for long media, so the worker UI can show one without decoding the audio.

Computed from the very PCM decode that makes the waveform peaks (`decode_peaks(pcm_sink=...)`):
ffmpeg streams float32 chunks, `SpectrogramAccumulator` keeps only the samples the next frames
still need (at most one chunk plus one FFT window), so memory does not grow with the media length
except for the small uint8 output.

Resolution (defaults): frames per second chosen from the media's duration so a file holds at most
FRAME_BUDGET frames, between 10 (100 ms, media over 90 minutes) and 50 (20 ms, media up to 18
minutes): fine enough to place a noise boundary when zoomed in, and at most 3.5 MB of data up
to 90 minutes (6.9 MB for 3 hours at 10 frames/s). 64 linear bands up to
min(8 kHz, Nyquist) (125 Hz each; the telephone and wideband-speech range, where hum, hiss, music
and crosstalk show). Each frame is a Hann-windowed FFT of >= 32 ms (and >= one frame) centred on it, band
power summed over the FFT bins in the band, in dB relative to a full-scale sine, mapped linearly
from [db_min, db_max] = [-100, 0] dB to 0-255 (docs/manifest.md has the compressed sizes).

File format (`SpectrogramHeader` in toolkit/contract/manifest.py): `GTSG`, a little-endian uint32
header length, the JSON header, then the uint8 matrix, frame-major. Stored gzip-compressed with
`Content-Encoding: gzip` like the peaks, so the browser's fetch() hands the UI the raw bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.contract.manifest import PeaksFile, SpectrogramHeader
from toolkit.contract.peaks import PeakArrays, PeaksError, PeaksOptionError
from toolkit.contract.spectrogram import (
    SPECTROGRAM_CONTENT_TYPE,
    Spectrogram,
    parse_spectrogram,
    spectrogram_bytes,
)
from toolkit.ingest.peaks import decode_peaks, local_media, probe_duration, write_maybe_gzip
from toolkit.storage import Storage

DEFAULT_FRAMES_PER_SECOND = 10.0  # the floor of the automatic choice, and its value without a duration
MAX_FRAMES_PER_SECOND = 50.0
FRAME_BUDGET = 54_000  # frames per file before the rate drops below 50/s: 3.5 MB at 64 bands
DEFAULT_BINS = 64
DEFAULT_FREQUENCY_MAX = 8000.0
DB_MIN = -100.0
DB_MAX = 0.0
WINDOW_SECONDS = 0.032  # FFT length: the next power of two at or above this (and one frame)
FRAME_BATCH = 2048  # frames transformed per numpy call (bounds the temporary FFT arrays)


class SpectrogramAccumulator:
    """Streaming spectrogram: call it with consecutive PCM chunks, then `finish()`.

    Frame `i` is the FFT of `fft_size` samples centred on the middle of `[i * hop, (i + 1) * hop)`
    (zeros before the start and after the end), so it describes media time `[i, i + 1) / fps`.
    """

    def __init__(self, sample_rate: int, frames_per_second: float = DEFAULT_FRAMES_PER_SECOND,
                 bins: int = DEFAULT_BINS, frequency_max: float = DEFAULT_FREQUENCY_MAX,
                 db_min: float = DB_MIN, db_max: float = DB_MAX):
        if sample_rate <= 0 or frames_per_second <= 0 or bins <= 0 or frequency_max <= 0:
            raise PeaksOptionError("sample rate, frames per second, bins and frequency_max must be > 0")
        self.rate = int(sample_rate)
        self.hop = max(1, round(self.rate / frames_per_second))
        self.fft_size = max(16, 1 << int(np.ceil(np.log2(max(self.rate * WINDOW_SECONDS, self.hop)))))
        self.bins = int(bins)
        self.frequency_max = min(float(frequency_max), self.rate / 2)
        self.db_min, self.db_max = float(db_min), float(db_max)
        self.window = np.hanning(self.fft_size + 2)[1:-1].astype(np.float32)  # no zero end points
        # A full-scale sine's power summed over its main lobe (one-sided, Parseval): 0 dB.
        self.reference = float(self.fft_size * np.sum(self.window.astype(np.float64) ** 2) / 4)
        freqs = np.arange(self.fft_size // 2 + 1) * self.rate / self.fft_size
        band = np.floor(freqs / self.frequency_max * self.bins).astype(np.int64)
        self.membership = np.zeros((self.fft_size // 2 + 1, self.bins), dtype=np.float32)
        inside = band < self.bins
        self.membership[np.nonzero(inside)[0], band[inside]] = 1.0
        for k in np.nonzero(self.membership.sum(axis=0) == 0)[0]:  # a band narrower than an FFT bin
            centre = (k + 0.5) * self.frequency_max / self.bins
            self.membership[round(centre * self.fft_size / self.rate), k] = 1.0
        self.pad_left = self.fft_size // 2 - self.hop // 2
        self._buf = np.zeros(self.pad_left, dtype=np.float32)
        self._out: list[np.ndarray] = []
        self.frames_done = 0
        self.total_samples = 0
        self.max_buffered = 0  # largest number of samples held at once (tests: memory is bounded)

    def __call__(self, frames: np.ndarray, rate: int | None = None) -> None:
        if rate is not None and rate != self.rate:
            raise ValueError(f"PCM at {rate} Hz fed to a {self.rate} Hz spectrogram")
        mono = frames.mean(axis=1, dtype=np.float32) if frames.ndim == 2 and frames.shape[1] > 1 \
            else np.asarray(frames, dtype=np.float32).reshape(-1)
        self.total_samples += len(mono)
        self._buf = np.concatenate([self._buf, mono]) if len(self._buf) else mono.copy()
        self.max_buffered = max(self.max_buffered, len(self._buf))
        self._drain(len(self._buf) - self.fft_size)

    def _drain(self, last_start: int) -> None:
        """Transform every frame whose window starts at or before `last_start` in the buffer."""
        if last_start < 0:
            return
        count = last_start // self.hop + 1
        for first in range(0, count, FRAME_BATCH):
            n = min(FRAME_BATCH, count - first)
            view = np.lib.stride_tricks.sliding_window_view(
                self._buf[first * self.hop: (first + n - 1) * self.hop + self.fft_size], self.fft_size)[::self.hop]
            power = np.abs(np.fft.rfft(view * self.window, axis=1)) ** 2
            self._out.append(self._quantise(power.astype(np.float32) @ self.membership))
        self.frames_done += count
        self._buf = self._buf[count * self.hop:].copy()

    def _quantise(self, band_power: np.ndarray) -> np.ndarray:
        db = 10.0 * np.log10(np.maximum(band_power / self.reference, 1e-30))
        scaled = (db - self.db_min) / (self.db_max - self.db_min) * 255.0
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)

    def finish(self, duration: float | None = None) -> Spectrogram:
        if self.total_samples == 0:
            raise PeaksError("decoded no audio samples")
        frames = -(-self.total_samples // self.hop)
        remaining = frames - self.frames_done
        if remaining > 0:
            need = (remaining - 1) * self.hop + self.fft_size
            if len(self._buf) < need:
                self._buf = np.concatenate([self._buf, np.zeros(need - len(self._buf), dtype=np.float32)])
            self._drain((remaining - 1) * self.hop)
        data = np.concatenate(self._out)[:frames] if self._out else np.zeros((0, self.bins), np.uint8)
        header = SpectrogramHeader(
            sample_rate=self.rate, frames_per_second=self.rate / self.hop, hop=self.hop,
            fft_size=self.fft_size, duration=duration or self.total_samples / self.rate, frames=frames,
            bins=self.bins, frequency_max=self.frequency_max, db_min=self.db_min, db_max=self.db_max,
        )
        return Spectrogram(header=header, data=np.ascontiguousarray(data))


def auto_frames_per_second(duration: float | None) -> float:
    """As many frames per second as FRAME_BUDGET allows for this duration, within [10, 50]."""
    if not duration or duration <= 0:
        return DEFAULT_FRAMES_PER_SECOND
    return max(DEFAULT_FRAMES_PER_SECOND, min(MAX_FRAMES_PER_SECOND, FRAME_BUDGET / duration))


def compute_peaks_and_spectrogram(media_path: Path, peaks_per_second: float = 100.0, channels: int = 1,
                                  **kwargs: float) -> tuple[PeaksFile, Spectrogram]:
    """Peaks and spectrogram of `media_path` from one ffmpeg decode (channels are averaged);
    keyword arguments as `decode_peaks_and_spectrogram`."""
    peaks, spec = decode_peaks_and_spectrogram(media_path, peaks_per_second, channels, **kwargs)  # type: ignore[arg-type]
    return peaks.to_file(), spec


def decode_peaks_and_spectrogram(media_path: Path, peaks_per_second: float = 100.0, channels: int = 1, *,
                                 frames_per_second: float | None = None, bins: int = DEFAULT_BINS,
                                 frequency_max: float = DEFAULT_FREQUENCY_MAX) -> tuple[PeakArrays, Spectrogram]:
    """As `compute_peaks_and_spectrogram`, with the peaks as arrays (for `write_peaks`).
    `frames_per_second=None` picks it from the duration (`auto_frames_per_second`)."""
    if frames_per_second is None:
        frames_per_second = auto_frames_per_second(probe_duration(Path(media_path)))
    acc: SpectrogramAccumulator | None = None

    def sink(frames: np.ndarray, rate: int) -> None:
        nonlocal acc
        if acc is None:
            acc = SpectrogramAccumulator(rate, frames_per_second, bins, frequency_max)
        acc(frames, rate)

    peaks = decode_peaks(Path(media_path), peaks_per_second, channels, pcm_sink=sink)
    assert acc is not None  # decode_peaks raises when nothing was decoded
    return peaks, acc.finish(peaks.duration)


def compute_spectrogram(media_path: Path, **kwargs: float) -> Spectrogram:
    """The spectrogram alone (the peaks of the same decode are a cheap by-product, dropped)."""
    return compute_peaks_and_spectrogram(media_path, **kwargs)[1]  # type: ignore[arg-type]


def write_spectrogram(spec: Spectrogram, uri: str, storage: Storage, *, compress: bool | None = None) -> bool:
    """Write to a local path or s3:// URI, gzip per `toolkit.ingest.peaks.write_maybe_gzip` (Content-Encoding)."""
    return write_maybe_gzip(spectrogram_bytes(spec), uri, storage, SPECTROGRAM_CONTENT_TYPE, compress=compress)


def read_spectrogram(uri_or_path: str | Path, storage: Storage | None = None) -> Spectrogram:
    storage = storage or Storage()
    return parse_spectrogram(storage.read_bytes(uri_or_path), str(uri_or_path))


def peaks_and_spectrogram_for_uri(uri: str, storage: Storage, peaks_per_second: float = 100.0, channels: int = 1,
                                  **kwargs: float) -> tuple[PeakArrays, Spectrogram]:
    """As `peaks_for_uri`, with the spectrogram of the same decode."""
    with local_media(uri, storage) as path:
        return decode_peaks_and_spectrogram(path, peaks_per_second, channels, **kwargs)  # type: ignore[arg-type]
