"""toolkit.ingest.spectrogram: the precomputed spectrogram for long media (`gtkit peaks --spectrogram`,
`gtkit manifest build --peaks ... --spectrogram`)."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
from pathlib import Path

import boto3
import numpy as np
import pytest
from typer.testing import CliRunner

import toolkit.ingest.peaks as peaks_mod
from toolkit.cli import app
from toolkit.contract import SpectrogramHeader
from toolkit.contract.manifest import SPECTROGRAM_MAGIC
from toolkit.contract.peaks import PeaksError
from toolkit.contract.spectrogram import parse_spectrogram, spectrogram_bytes
from toolkit.ingest.peaks import compute_peaks, read_peaks
from toolkit.ingest.spectrogram import (
    FRAME_BUDGET,
    SpectrogramAccumulator,
    auto_frames_per_second,
    compute_peaks_and_spectrogram,
    compute_spectrogram,
    read_spectrogram,
    write_spectrogram,
)
from toolkit.storage import Storage
from toolkit.storage.names import file_stem

runner = CliRunner()


def _lavfi(tmp_path: Path, name: str, source: str, seconds: float, rate: int = 16000, channels: int = 1) -> Path:
    out = tmp_path / name
    lavfi = f"{source}:sample_rate={rate}:duration={seconds}" if source.startswith("sine") else source
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", lavfi, "-t", str(seconds),
                    "-ac", str(channels), "-ar", str(rate), str(out)], check=True)
    return out


def test_sine_energy_lands_in_its_band(tmp_path):
    # 1060 Hz: the middle of band 8 of 64 bands of 125 Hz up to 8 kHz.
    media = _lavfi(tmp_path, "tone.wav", "sine=frequency=1060", 4.0)
    spec = compute_spectrogram(media)
    h = spec.header
    assert (h.bins, h.frequency_max, h.sample_rate) == (64, 8000.0, 16000)
    # A 4-second file gets the finest automatic rate, 50 frames/s (20 ms).
    assert h.frames_per_second == pytest.approx(50.0) and h.frames == 200 and spec.data.shape == (200, 64)
    assert h.fft_size >= h.hop  # every sample is inside some frame's window
    inner = spec.data[1:-1]  # the first/last frames are half zero-padded
    assert (inner.argmax(axis=1) == 8).all()
    # ffmpeg's sine is 1/8 of full scale: -18 dB -> (100 - 18) / 100 * 255 ~ 209.
    assert abs(int(inner[:, 8].min()) - 209) <= 3
    far = np.delete(inner, [7, 8, 9], axis=1)
    assert far.max() < inner[:, 8].min() - 100  # > 40 dB below the tone everywhere else


def test_silence_is_all_zero_and_stereo_is_averaged(tmp_path):
    media = _lavfi(tmp_path, "silence.wav", "anullsrc=r=44100:cl=stereo", 2.0, rate=44100, channels=2)
    spec = compute_spectrogram(media)
    assert spec.header.sample_rate == 44100 and spec.header.frequency_max == 8000.0
    assert spec.data.max() == 0


def test_frequency_max_is_capped_at_nyquist(tmp_path):
    media = _lavfi(tmp_path, "tel.wav", "sine=frequency=1000", 1.0, rate=8000)
    spec = compute_spectrogram(media)
    assert spec.header.frequency_max == 4000.0
    assert (spec.data[1:-1].argmax(axis=1) == 1000 // (4000 // 64)).all()


def test_automatic_frame_rate_keeps_files_small():
    """50 frames/s up to 18 minutes, then FRAME_BUDGET frames per file, never under 10 frames/s."""
    assert auto_frames_per_second(None) == 10.0
    assert auto_frames_per_second(4.0) == auto_frames_per_second(18 * 60) == 50.0
    assert auto_frames_per_second(30 * 60) == pytest.approx(30.0)
    assert auto_frames_per_second(60 * 60) == pytest.approx(15.0)
    assert auto_frames_per_second(90 * 60) == auto_frames_per_second(180 * 60) == 10.0
    for minutes in (1, 10, 20, 45, 90):
        assert minutes * 60 * auto_frames_per_second(minutes * 60) <= FRAME_BUDGET


def test_explicit_frame_rate(tmp_path):
    media = _lavfi(tmp_path, "tone.wav", "sine=frequency=1060", 4.0)
    spec = compute_peaks_and_spectrogram(media, frames_per_second=10)[1]
    assert spec.header.frames_per_second == pytest.approx(10.0) and spec.header.frames == 40
    assert (spec.data[1:-1].argmax(axis=1) == 8).all()


def test_header_validation():
    good = dict(sample_rate=16000, frames_per_second=10, hop=1600, fft_size=2048, duration=1.0, frames=10,
                bins=64, frequency_max=8000, db_min=-100, db_max=0)
    SpectrogramHeader.model_validate(good)
    for bad in ({"frequency_max": 9000}, {"db_max": -100}, {"bins": 0}, {"version": 2}, {"extra": 1}):
        with pytest.raises(ValueError):
            SpectrogramHeader.model_validate(good | bad)


def test_chunked_equals_one_shot():
    rng = np.random.default_rng(1)
    rate = 16000
    t = np.arange(rate * 7 + 123) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) * (t > 2) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
    one = SpectrogramAccumulator(rate)
    one(x.reshape(-1, 1), rate)
    whole = one.finish()
    chunked = SpectrogramAccumulator(rate)
    at = 0
    for size in [1, 999, 1600, 5000, 31, 40000] * 100:
        if at >= len(x):
            break
        chunked(x[at:at + size].reshape(-1, 1), rate)
        at += size
    parts = chunked.finish()
    assert parts.header == whole.header and whole.header.frames == -(-len(x) // 1600)
    assert np.abs(parts.data.astype(int) - whole.data.astype(int)).max() <= 1


def test_memory_is_bounded_by_the_chunk(tmp_path, monkeypatch):
    """A long-ish decode never holds more than one chunk plus one FFT window of PCM."""
    monkeypatch.setattr(peaks_mod, "CHUNK_SAMPLES", 1 << 14)
    media = _lavfi(tmp_path, "long.wav", "sine=frequency=500", 60.0)
    seen: list[SpectrogramAccumulator] = []
    real_init = SpectrogramAccumulator.__init__

    def spy(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        seen.append(self)

    monkeypatch.setattr(SpectrogramAccumulator, "__init__", spy)
    peaks, spec = compute_peaks_and_spectrogram(media)
    (acc,) = seen
    assert acc.total_samples == 60 * 16000
    assert acc.max_buffered <= (1 << 14) + acc.fft_size
    assert acc.max_buffered * 20 < acc.total_samples
    assert spec.header.frames == 3000 and peaks.duration == pytest.approx(60.0)  # 50 frames/s


def test_same_decode_gives_the_same_peaks(examples):
    media = examples / "media" / "call_001.wav"
    peaks, spec = compute_peaks_and_spectrogram(media, peaks_per_second=50)
    assert peaks == compute_peaks(media, peaks_per_second=50)
    assert spec.header.duration == pytest.approx(peaks.duration)
    assert spec.data.max() > 100  # speech is in there


def test_file_format_round_trip_and_errors(examples, tmp_path):
    spec = compute_spectrogram(examples / "media" / "call_001.wav")
    raw = spectrogram_bytes(spec)
    assert raw[:4] == SPECTROGRAM_MAGIC
    (length,) = struct.unpack("<I", raw[4:8])
    assert SpectrogramHeader.model_validate(json.loads(raw[8:8 + length])) == spec.header
    assert len(raw) == 8 + length + spec.header.frames * spec.header.bins
    storage = Storage()
    assert write_spectrogram(spec, str(tmp_path / "a.spectrogram.bin.gz"), storage) is True
    assert write_spectrogram(spec, str(tmp_path / "b.spectrogram.bin.gz"), storage) is True
    assert write_spectrogram(spec, str(tmp_path / "a.spectrogram.bin"), storage) is False
    packed = (tmp_path / "a.spectrogram.bin.gz").read_bytes()
    assert packed == (tmp_path / "b.spectrogram.bin.gz").read_bytes()  # deterministic: no gzip timestamp
    assert gzip.decompress(packed) == raw and (tmp_path / "a.spectrogram.bin").read_bytes() == raw
    for name in ("a.spectrogram.bin.gz", "a.spectrogram.bin"):
        back = read_spectrogram(str(tmp_path / name))
        assert back.header == spec.header and np.array_equal(back.data, spec.data)
    with pytest.raises(PeaksError, match="bad magic"):
        parse_spectrogram(b"{}" * 10)
    with pytest.raises(PeaksError, match="expected"):
        parse_spectrogram(raw[:-1])


def test_cli_peaks_with_spectrogram(examples, tmp_path):
    out, spec_out = tmp_path / "c.peaks.json.gz", tmp_path / "c.spectrogram.bin.gz"
    result = runner.invoke(app, ["peaks", str(examples / "media" / "call_003.wav"), "--out", str(out),
                                 "--spectrogram", str(spec_out), "--spectrogram-fps", "20",
                                 "--spectrogram-bins", "32"])
    assert result.exit_code == 0, result.output
    assert read_peaks(str(out)).duration == pytest.approx(60.0)
    spec = read_spectrogram(str(spec_out))
    assert (spec.header.frames, spec.header.bins) == (1200, 32)
    assert spec_out.read_bytes()[:2] == b"\x1f\x8b"


def feedback(examples: Path) -> str:
    return str(examples / "feedback" / "processed_feedback.jsonl")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_manifest_build_attaches_spectrogram_ref(tmp_path, examples, example_mirror):
    out, peaks_dir = tmp_path / "m.jsonl", tmp_path / "peaks"
    result = runner.invoke(app, ["manifest", "build", feedback(examples), "-o", str(out), "--peaks", str(peaks_dir),
                                 "--spectrogram", "--mirror", example_mirror])
    assert result.exit_code == 0, result.output
    lines = {line["interaction-id"]: line for line in read_jsonl(out)}
    for iid, line in lines.items():
        assert line["spectrogram-ref"] == str(peaks_dir / f"{file_stem(iid)}.spectrogram.bin.gz")
        assert line["peaks-ref"] == str(peaks_dir / f"{file_stem(iid)}.peaks.bin.gz")
    spec = read_spectrogram(lines["int-0003"]["spectrogram-ref"])
    assert spec.header.duration == pytest.approx(35.0, abs=0.05)
    # Without --spectrogram nothing changes; --spectrogram without --peaks is refused.
    plain = tmp_path / "p.jsonl"
    assert runner.invoke(app, ["manifest", "build", feedback(examples), "-o", str(plain), "--peaks",
                               str(tmp_path / "p2"), "--mirror", example_mirror]).exit_code == 0
    assert all("spectrogram-ref" not in line for line in read_jsonl(plain))
    refused = runner.invoke(app, ["manifest", "build", feedback(examples), "-o", str(tmp_path / "x.jsonl"),
                                  "--spectrogram", "--mirror", example_mirror])
    assert refused.exit_code != 0 and "--peaks" in refused.output


def test_manifest_build_spectrogram_on_s3(s3_bucket, tmp_path, examples, example_mirror):
    out = tmp_path / "m.jsonl"
    result = runner.invoke(app, ["manifest", "build", feedback(examples), "-o", str(out),
                                 "--peaks", f"s3://{s3_bucket}/peaks", "--spectrogram", "--mirror", example_mirror])
    assert result.exit_code == 0, result.output
    lines = {line["interaction-id"]: line for line in read_jsonl(out)}
    key = f"peaks/{file_stem('int-0001')}.spectrogram.bin.gz"
    assert lines["int-0001"]["spectrogram-ref"] == f"s3://{s3_bucket}/{key}"
    s3 = boto3.client("s3")
    obj = s3.get_object(Bucket=s3_bucket, Key=key)
    assert obj["ContentEncoding"] == "gzip" and obj["ContentType"] == "application/octet-stream"
    spec = read_spectrogram(lines["int-0001"]["spectrogram-ref"], Storage(client=s3))
    assert spec.header.duration == pytest.approx(21.0)
