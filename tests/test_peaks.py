"""toolkit.ingest.peaks: ffmpeg decode + numpy min/max reduction, and `gtkit peaks`."""

from __future__ import annotations

import gzip
import json
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import toolkit.ingest.peaks as peaks_mod
from toolkit.cli import app
from toolkit.contract import PeaksFile, PeaksHeader
from toolkit.contract.peaks import PeaksError, peaks_binary, peaks_gzip, peaks_json
from toolkit.ingest.peaks import compute_peaks, decode_peaks, read_peaks, write_peaks
from toolkit.storage import Storage


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


def test_no_negative_zero_in_json(examples):
    """Rounding leaves -0.0 for tiny negatives; it is written as 0.0 (same value, shorter JSON)."""
    result = compute_peaks(examples / "media" / "call_001.wav")
    values = np.array(result.data[0])
    assert np.count_nonzero(values == 0) > 100  # the sample has quiet stretches, so this means something
    assert not np.any(np.signbit(values) & (values == 0))
    assert b"-0.0," not in peaks_json(result)


def test_gzip_round_trip_local(examples, tmp_path):
    result = compute_peaks(examples / "media" / "call_001.wav")
    storage = Storage()
    assert write_peaks(result, str(tmp_path / "a.peaks.json.gz"), storage) is True  # by suffix
    assert write_peaks(result, str(tmp_path / "a.peaks.json"), storage) is False
    assert write_peaks(result, str(tmp_path / "b.peaks.json"), storage, compress=True) is True
    packed = (tmp_path / "a.peaks.json.gz").read_bytes()
    assert packed[:2] == b"\x1f\x8b" and (tmp_path / "b.peaks.json").read_bytes() == packed
    assert gzip.decompress(packed) == (tmp_path / "a.peaks.json").read_bytes() == peaks_json(result)
    assert len(packed) * 3 < len(peaks_json(result))
    assert peaks_gzip(result) == packed  # deterministic: no timestamp in the gzip header
    for name in ("a.peaks.json.gz", "a.peaks.json", "b.peaks.json"):  # detected by content, not name
        assert read_peaks(tmp_path / name) == result


def test_gzip_round_trip_s3(examples, s3_bucket):
    import boto3

    result = compute_peaks(examples / "media" / "call_001.wav", peaks_per_second=20)
    s3 = boto3.client("s3")
    storage = Storage(client=s3)
    write_peaks(result, f"s3://{s3_bucket}/p/a.peaks.json.gz", storage)
    write_peaks(result, f"s3://{s3_bucket}/p/a.peaks.json", storage)
    packed = s3.get_object(Bucket=s3_bucket, Key="p/a.peaks.json.gz")
    assert packed["ContentEncoding"] == "gzip" and packed["ContentType"] == "application/json"
    assert gzip.decompress(packed["Body"].read()) == peaks_json(result)
    plain = s3.head_object(Bucket=s3_bucket, Key="p/a.peaks.json")
    assert "ContentEncoding" not in plain and plain["ContentType"] == "application/json"
    assert read_peaks(f"s3://{s3_bucket}/p/a.peaks.json.gz", storage) == result
    assert read_peaks(f"s3://{s3_bucket}/p/a.peaks.json", storage) == result


def test_binary_round_trip_and_layout(examples, tmp_path):
    """`.peaks.bin[.gz]`: GTPK, uint32 header length, PeaksHeader JSON, int16 min/max per channel;
    read back, it is the very PeaksFile (int16 steps are far finer than the JSON's 3 decimals)."""
    storage = Storage()
    for channels in (1, 2):
        result = compute_peaks(examples / "media" / "call_001.wav", channels=channels)
        raw = peaks_binary(result)
        assert raw[:4] == b"GTPK"
        (size,) = struct.unpack("<I", raw[4:8])
        header = PeaksHeader.model_validate_json(raw[8:8 + size])
        assert size % 2 == 0  # the int16 data is aligned (a browser views it without a copy)
        assert (header.channels, header.length, header.duration) == (channels, len(result.data[0]) // 2, 21.0)
        values = np.frombuffer(raw, dtype="<i2", offset=8 + size).reshape(channels, -1)
        assert np.array_equal(values, np.rint(np.array(result.data) * 32767))
        assert write_peaks(result, str(tmp_path / f"{channels}.peaks.bin.gz"), storage) is True
        assert write_peaks(result, str(tmp_path / f"{channels}.peaks.bin"), storage) is False
        assert (tmp_path / f"{channels}.peaks.bin").read_bytes() == raw
        assert gzip.decompress((tmp_path / f"{channels}.peaks.bin.gz").read_bytes()) == raw
        for name in (f"{channels}.peaks.bin.gz", f"{channels}.peaks.bin"):
            assert read_peaks(tmp_path / name) == result
    assert len(raw) * 2.5 < len(peaks_json(result))  # a quarter to a third of the JSON


def test_arrays_and_file_write_the_same_bytes(examples, tmp_path):
    """`decode_peaks` (what manifest build writes from, no Python float lists) and the PeaksFile of
    `compute_peaks` encode to identical files, binary and JSON."""
    media = examples / "media" / "call_003.wav"
    arrays, file = decode_peaks(media, channels=2), compute_peaks(media, channels=2)
    assert arrays.values.shape == (2, len(file.data[0])) and arrays.to_file() == file
    assert peaks_binary(arrays) == peaks_binary(file)
    storage = Storage()
    for name in ("a.peaks.json.gz", "a.peaks.bin.gz"):
        write_peaks(arrays, str(tmp_path / f"arrays-{name}"), storage)
        write_peaks(file, str(tmp_path / f"file-{name}"), storage)
        assert (tmp_path / f"arrays-{name}").read_bytes() == (tmp_path / f"file-{name}").read_bytes()


def test_binary_on_s3_is_octet_stream(examples, s3_bucket):
    import boto3

    result = compute_peaks(examples / "media" / "call_001.wav", peaks_per_second=20)
    s3 = boto3.client("s3")
    storage = Storage(client=s3)
    write_peaks(result, f"s3://{s3_bucket}/p/a.peaks.bin.gz", storage)
    obj = s3.get_object(Bucket=s3_bucket, Key="p/a.peaks.bin.gz")
    assert obj["ContentEncoding"] == "gzip" and obj["ContentType"] == "application/octet-stream"
    assert gzip.decompress(obj["Body"].read()) == peaks_binary(result)
    assert read_peaks(f"s3://{s3_bucket}/p/a.peaks.bin.gz", storage) == result


def test_binary_errors_name_the_file(examples, tmp_path):
    raw = peaks_binary(compute_peaks(examples / "media" / "call_001.wav", peaks_per_second=10))
    for name, data, message in [
        ("cut.peaks.bin", raw[:-2], r"cut\.peaks\.bin: expected 420 int16 values, got 419"),
        ("odd.peaks.bin", raw[:-1], r"odd\.peaks\.bin: expected 420 int16 values, got 419\.5"),
        ("short.peaks.bin", raw[:6], r"short\.peaks\.bin: truncated"),
        ("head.peaks.bin", raw[:8] + b"[" + raw[9:], r"head\.peaks\.bin: invalid binary peaks header"),
    ]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(PeaksError, match=message):
            read_peaks(tmp_path / name)


def test_read_peaks_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.peaks.json.gz"
    bad.write_bytes(gzip.compress(b'{"version": 1}'))
    with pytest.raises(PeaksError, match=r"bad\.peaks\.json\.gz: not a valid peaks file"):
        read_peaks(bad)
    cut = tmp_path / "cut.peaks.json.gz"
    cut.write_bytes(gzip.compress(b'{"version": 1}')[:12])
    with pytest.raises(PeaksError, match=r"cut\.peaks\.json\.gz: corrupt gzip"):
        read_peaks(cut)


@pytest.mark.parametrize(("name", "flags", "compressed"), [("p.peaks.json.gz", [], True), ("p.peaks.json", [], False),
                                                           ("p.peaks.json", ["--gzip"], True),
                                                           ("p.peaks.json.gz", ["--no-gzip"], False)])
def test_cli_gzip_choice(examples, tmp_path, name, flags, compressed):
    out = tmp_path / name
    result = CliRunner().invoke(app, ["peaks", str(examples / "media" / "call_001.wav"), "--out", str(out),
                                      "--peaks-per-second", "10", *flags])
    assert result.exit_code == 0, result.output
    assert (out.read_bytes()[:2] == b"\x1f\x8b") is compressed
    assert read_peaks(out).duration == pytest.approx(21.0)


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
