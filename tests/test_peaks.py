"""toolkit.peaks: ffmpeg decode + numpy min/max reduction, and `gtkit peaks`."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import toolkit.peaks as peaks_mod
from toolkit.cli import app
from toolkit.models import PeaksFile
from toolkit.peaks import PeaksError, compute_peaks


def _wav_samples(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        raw = w.readframes(w.getnframes())
        return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0, w.getframerate()


def _reference(samples: np.ndarray, bucket: int) -> np.ndarray:
    n = int(np.ceil(len(samples) / bucket))
    out = np.empty(2 * n)
    for i in range(n):
        block = samples[i * bucket:(i + 1) * bucket]
        out[2 * i], out[2 * i + 1] = block.min(), block.max()
    return out


def test_wav_peaks_match_numpy(examples):
    wav = examples / "media" / "call_001.wav"
    samples, rate = _wav_samples(wav)
    result = compute_peaks(wav)
    assert isinstance(result, PeaksFile)
    assert result.sample_rate == rate == 16000
    assert result.peaks_per_second == 100.0
    assert result.channels == 1 and len(result.data) == 1
    assert result.duration == pytest.approx(len(samples) / rate) == pytest.approx(21.0)
    expected = _reference(samples, 160)
    got = np.array(result.data[0])
    assert got.shape == expected.shape == (2 * 2100,)
    np.testing.assert_allclose(got, expected, atol=5.01e-4)  # 3-decimal rounding
    assert np.abs(expected).max() > 0.05  # the sample is not silence, so the comparison means something


def test_chunk_boundaries_do_not_change_the_result(examples, monkeypatch):
    wav = examples / "media" / "call_001.wav"
    whole = compute_peaks(wav, peaks_per_second=30)
    # 1000 samples per chunk is not a multiple of the 533-sample bucket: exercises carry-over.
    monkeypatch.setattr(peaks_mod, "CHUNK_SAMPLES", 1000)
    chunked = compute_peaks(wav, peaks_per_second=30)
    assert chunked.data == whole.data
    assert chunked.duration == whole.duration


def test_peaks_per_second_and_channels(examples):
    wav = examples / "media" / "call_001.wav"
    ten = compute_peaks(wav, peaks_per_second=10)
    assert len(ten.data[0]) == 2 * 210
    stereo = compute_peaks(wav, peaks_per_second=10, channels=2)
    assert stereo.channels == 2 and len(stereo.data) == 2
    assert stereo.data[0] == pytest.approx(stereo.data[1])  # mono upmixed: both channels equal
    # Odd rate: the bucket is a whole number of samples and the stored rate is the exact one.
    odd = compute_peaks(wav, peaks_per_second=7)
    assert odd.peaks_per_second == pytest.approx(16000 / round(16000 / 7))


@pytest.mark.parametrize(("name", "duration", "rate"), [("call_002.mp3", 35.1, 16000),
                                                        ("video_001.mp4", 15.0, 48000)])
def test_mp3_and_mp4_decode(examples, name, duration, rate):
    result = compute_peaks(examples / "media" / name)
    assert result.sample_rate == rate
    # Container duration includes mp3 encoder padding; the decoded samples are what we measure.
    assert result.duration == pytest.approx(duration, abs=0.15)
    values = np.array(result.data[0])
    assert len(values) == 2 * int(np.ceil(result.duration * 100 - 1e-9))
    assert values.min() >= -1 and values.max() <= 1
    assert np.all(values[0::2] <= values[1::2])  # min <= max in every pair
    assert np.abs(values).max() > 0.01


def test_errors_name_the_file(tmp_path):
    with pytest.raises(PeaksError, match="no such file"):
        compute_peaks(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    with pytest.raises(PeaksError, match=r"junk\.wav"):
        compute_peaks(junk)
    with pytest.raises(ValueError):
        compute_peaks(junk, peaks_per_second=0)


def test_cli_writes_peaks_json(examples, tmp_path):
    out = tmp_path / "p" / "call.peaks.json"
    result = CliRunner().invoke(app, ["peaks", str(examples / "media" / "call_003.wav"), "--out", str(out),
                                      "--peaks-per-second", "20"])
    assert result.exit_code == 0, result.output
    peaks = PeaksFile.model_validate(json.loads(out.read_bytes()))
    assert peaks.duration == pytest.approx(60.0)
    assert len(peaks.data[0]) == 2 * 1200


def test_cli_peaks_through_a_mirror(examples, example_mirror, tmp_path):
    out = tmp_path / "call.peaks.json"
    result = CliRunner().invoke(app, ["peaks", "s3://example-feedback-bucket/media/call_001.wav", "--out",
                                      str(out), "--mirror", example_mirror])
    assert result.exit_code == 0, result.output
    assert PeaksFile.model_validate_json(out.read_bytes()).duration == pytest.approx(21.0)


def test_cli_reports_bad_media(tmp_path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00" * 100)
    result = CliRunner().invoke(app, ["peaks", str(bad), "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 1
    assert not (tmp_path / "x.json").exists()
