"""`gtkit manifest build|validate`, mirroring the commands in docs/manifest.md."""

import gzip
import json
import re
from pathlib import Path

import boto3
import orjson
import pytest
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract import ManifestLine
from toolkit.contract.manifest import MAX_LINE_BYTES
from toolkit.contract.peaks import peaks_binary
from toolkit.ingest.build import BuildOptions, build_manifest, validate_manifest
from toolkit.ingest.peaks import read_peaks
from toolkit.storage import Storage
from toolkit.storage.names import file_stem

runner = CliRunner()


def feedback(examples, name="processed_feedback.jsonl"):
    return str(examples / "feedback" / name)


def read_jsonl(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def first_record(examples):
    return read_jsonl(feedback(examples))[0]


def test_build_from_sample_feedback(tmp_path, examples, example_mirror):
    out = tmp_path / "m.jsonl"
    errors = tmp_path / "e.jsonl"
    result = runner.invoke(app, ["manifest", "build", feedback(examples), "--out", str(out),
                                 "--errors", str(errors), "--mirror", example_mirror])
    assert result.exit_code == 0, result.output
    lines = read_jsonl(out)
    assert [line["interaction-id"] for line in lines] == ["int-0001", "int-0003", "int-0004", "int-0006"]
    for raw, line in zip(out.read_text(encoding="utf-8").splitlines(), lines, strict=True):
        assert len(raw.encode()) <= MAX_LINE_BYTES
        ManifestLine.model_validate(line)
        assert line["source-ref"].startswith("s3://example-feedback-bucket/media/")
    assert [line["media-type"] for line in lines] == ["audio", "audio", "audio", "video"]
    # Chat records are reported as skipped, not dropped silently.
    skipped = read_jsonl(errors)
    assert {(p["interaction_id"], p["kind"]) for p in skipped} == {
        (i, "skipped") for i in ("int-0002", "int-0005", "int-0007", "int-0008", "int-0009")}
    assert "skipped" in result.stderr


def test_pre_segments_match_transcribe_and_roles(tmp_path, examples, example_mirror):
    out = tmp_path / "m.jsonl"
    runner.invoke(app, ["manifest", "build", feedback(examples), "-o", str(out), "--mirror", example_mirror])
    lines = {line["interaction-id"]: line for line in read_jsonl(out)}
    for interaction, media in [("int-0001", "call_001"), ("int-0003", "call_002"), ("int-0004", "call_003")]:
        doc = json.loads((examples / "transcribe" / f"{media}.json").read_text())
        segments = doc["results"]["speaker_labels"]["segments"]
        pre = lines[interaction]["pre-segments"]
        assert [(p["start"], p["end"]) for p in pre] == [
            (round(float(s["start_time"]), 3), round(float(s["end_time"]), 3)) for s in segments]
        assert all(p["track"] == "speaker" for p in pre)
    # call_002 is an outbound callback: spk_0 is the customer.
    first = lines["int-0003"]["pre-segments"][0]
    assert (first["speaker"], first["label"], first["text"]) == ("spk_0", "Customer", "Hello?")
    assert lines["int-0001"]["pre-segments"][0]["label"] == "Agent"


def test_no_transcribe_flag(tmp_path, examples, example_mirror):
    out = tmp_path / "m.jsonl"
    result = runner.invoke(app, ["manifest", "build", feedback(examples), "-o", str(out), "--no-transcribe",
                                 "--mirror", example_mirror])
    assert result.exit_code == 0
    assert all("pre-segments" not in line for line in read_jsonl(out))


def test_bad_records_are_all_reported(tmp_path, examples, example_mirror):
    out, errors = tmp_path / "m.jsonl", tmp_path / "e.jsonl"
    result = runner.invoke(app, ["manifest", "build", feedback(examples), feedback(examples, "bad_records.jsonl"),
                                 "--out", str(out), "--errors", str(errors), "--mirror", example_mirror])
    assert result.exit_code == 2
    problems = read_jsonl(errors)
    bad_file = feedback(examples, "bad_records.jsonl")
    errors_by_line = {}
    for p in problems:
        if p["file"] == bad_file:
            errors_by_line.setdefault(p["line"], []).append(p)
    # Every line of bad_records.jsonl is accounted for, with its file and line number.
    assert sorted(errors_by_line) == [1, 2, 3, 4, 5, 6, 7, 8]
    fields = {line: {p["field"] for p in ps} for line, ps in errors_by_line.items()}
    assert fields[1] == {"(line)"} and errors_by_line[1][0]["interaction_id"] == "bad-0001"
    assert fields[2] == {"media_uri"}
    assert fields[3] == {"media_uri"}
    assert fields[4] == {"duration_seconds"}
    assert fields[6] == {"customer_id", "created_at", "duration_seconds", "speaker_roles", "sentiment",
                         "entities", "topics"}
    assert fields[7] == {"interaction_id"} and "processed_feedback.jsonl:3" in errors_by_line[7][0]["message"]
    assert {p["kind"] for p in errors_by_line[5] + errors_by_line[8]} == {"skipped"}
    # records in = lines out + skipped + errors
    assert len(read_jsonl(out)) == 4
    records_in = 9 + 8
    skipped = {(p["file"], p["line"]) for p in problems if p["kind"] == "skipped"}
    failed = {(p["file"], p["line"]) for p in problems if p["kind"] == "error"}
    assert records_in == 4 + len(skipped) + len(failed) == 4 + 7 + 6
    # The first int-0003 (valid) is kept, the re-emitted duplicate is not a second task.
    assert [line["interaction-id"] for line in read_jsonl(out)].count("int-0003") == 1


def test_error_report_never_echoes_record_text(tmp_path, examples, example_mirror):
    errors = tmp_path / "e.jsonl"
    runner.invoke(app, ["manifest", "build", feedback(examples, "bad_records.jsonl"), "--out",
                        str(tmp_path / "m.jsonl"), "--errors", str(errors), "--mirror", example_mirror])
    text = errors.read_text()
    assert "router" not in text.lower() and "NEUTRAL" not in text and "50321" not in text


def test_strict_writes_nothing_on_error(tmp_path, examples, example_mirror):
    out = tmp_path / "m.jsonl"
    result = runner.invoke(app, ["manifest", "build", feedback(examples), feedback(examples, "bad_records.jsonl"),
                                 "--out", str(out), "--strict", "--mirror", example_mirror])
    assert result.exit_code == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temp file left behind either


def hostile_voice_record(examples):
    text = (examples / "feedback" / "bad_records.jsonl").read_text(encoding="utf-8")
    bad = next(json.loads(line) for line in text.splitlines() if '"bad-0008"' in line)
    good = first_record(examples)
    record = dict(good, interaction_id="hostile-1", transcript=bad["transcript"], topics=bad["topics"])
    return record, bad


def test_hostile_text_is_carried_byte_for_byte(tmp_path, examples, example_mirror):
    record, bad = hostile_voice_record(examples)
    src = tmp_path / "hostile.jsonl"
    src.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "m.jsonl"
    result = runner.invoke(app, ["manifest", "build", str(src), "-o", str(out), "--mirror", example_mirror])
    assert result.exit_code == 0, result.output
    raw = out.read_bytes()
    line = json.loads(raw)
    assert line["transcription"] == bad["transcript"]
    assert line["metadata"]["topics"] == bad["topics"]
    assert "\u202e" in line["transcription"] and "<script>" in line["transcription"]
    # Stored as UTF-8, not \u-escaped: the bytes of the text appear verbatim (JSON escapes only the newline).
    for part in bad["transcript"].split("\n"):
        assert part.encode("utf-8") in raw


def test_oversize_line_needs_a_sidecar(tmp_path, examples, example_mirror):
    record = first_record(examples)
    record["transcript"] = "router log line 0123456789 " * 2000  # 54,000 chars > 20,000 per attribute
    src = tmp_path / "big.jsonl"
    src.write_text(json.dumps(record) + "\n")
    out, errors = tmp_path / "m.jsonl", tmp_path / "e.jsonl"
    result = runner.invoke(app, ["manifest", "build", str(src), "-o", str(out), "--errors", str(errors),
                                 "--mirror", example_mirror])
    assert result.exit_code == 2
    [problem] = read_jsonl(errors)
    assert problem["field"] == "transcription" and "--sidecar-prefix" in problem["message"]

    sidecars = tmp_path / "sidecars"
    result = runner.invoke(app, ["manifest", "build", str(src), "-o", str(out), "--sidecar-prefix", str(sidecars),
                                 "--mirror", example_mirror])
    assert result.exit_code == 0, result.output
    [line] = read_jsonl(out)
    assert "transcription" not in line and "pre-segments" not in line
    with open(line["sidecar-ref"], encoding="utf-8") as fh:
        sidecar = json.load(fh)
    assert sidecar["transcription"] == record["transcript"]
    assert len(sidecar["pre-segments"]) == 6


def test_line_over_100kb_of_metadata_is_an_error_even_with_sidecar(tmp_path, examples, example_mirror):
    record = first_record(examples)
    record.update({f"extra_{i}": "x" * 15_000 for i in range(8)})  # 120 KB of passthrough fields
    src = tmp_path / "big.jsonl"
    src.write_text(json.dumps(record) + "\n")
    storage = Storage([example_mirror])
    report = build_manifest([str(src)], str(tmp_path / "m.jsonl"), storage,
                            BuildOptions(sidecar_prefix=str(tmp_path / "side")), errors_out=str(tmp_path / "e.jsonl"))
    assert report.errors == 1 and report.lines_out == 0
    [problem] = read_jsonl(tmp_path / "e.jsonl")
    assert problem["field"] == "metadata" and "even with a sidecar" in problem["message"]


def test_missing_transcribe_output_is_a_record_error(tmp_path, examples):
    # No mirror: the s3:// Transcribe URI cannot be read offline -> reported per record, batch continues.
    record = first_record(examples)
    record["transcribe_output_uri"] = str(tmp_path / "missing.json")
    src = tmp_path / "r.jsonl"
    src.write_text(json.dumps(record) + "\n")
    report = build_manifest([str(src)], str(tmp_path / "m.jsonl"), Storage(), errors_out=str(tmp_path / "e.jsonl"))
    assert (report.errors, report.lines_out) == (1, 0)
    assert read_jsonl(tmp_path / "e.jsonl")[0]["field"] == "transcribe_output_uri"


def test_keys_walking_out_of_the_mirror_are_record_errors(tmp_path, examples):
    """`..` in media_uri / transcribe_output_uri is refused at the record; a symlink out of the mirror
    is refused when read; the other records are written."""
    mirror = tmp_path / "mirror"
    (mirror / "transcribe").mkdir(parents=True)
    outside = tmp_path / "outside.json"
    outside.write_text((examples / "transcribe" / "call_001.json").read_text())
    (mirror / "transcribe" / "link.json").symlink_to(outside)
    (mirror / "transcribe" / "call_001.json").write_text(outside.read_text())
    base = first_record(examples)
    records = [
        dict(base, interaction_id="walk-media", media_uri="s3://example-feedback-bucket/../../../../etc/passwd"),
        dict(base, interaction_id="walk-transcribe",
             transcribe_output_uri="s3://example-feedback-bucket/transcribe/../../outside.json"),
        dict(base, interaction_id="symlink", transcribe_output_uri="s3://example-feedback-bucket/transcribe/link.json"),
        dict(base, interaction_id="fine", transcribe_output_uri="s3://example-feedback-bucket/transcribe/call_001.json"),
    ]
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    out, errors = tmp_path / "m.jsonl", tmp_path / "e.jsonl"
    report = build_manifest([str(src)], str(out), Storage([f"s3://example-feedback-bucket/={mirror}"]),
                            errors_out=str(errors))
    problems = {p["interaction_id"]: p for p in read_jsonl(errors)}
    assert problems["walk-media"]["field"] == "media_uri" and "'..'" in problems["walk-media"]["message"]
    assert problems["walk-transcribe"]["field"] == "transcribe_output_uri"
    assert problems["symlink"]["field"] == "transcribe_output_uri"
    assert "outside the mirror" in problems["symlink"]["message"]
    assert [line["interaction-id"] for line in read_jsonl(out)] == ["fine"]
    assert (report.records_in, report.lines_out, report.errors) == (4, 1, 3)


def test_s3_input_and_output(s3_bucket, examples, tmp_path):
    s3 = boto3.client("s3")
    for sub in ("feedback/processed_feedback.jsonl", "transcribe/call_001.json", "transcribe/call_002.json",
                "transcribe/call_003.json", "transcribe/video_001.json"):
        s3.upload_file(str(examples / sub), s3_bucket, f"in/{sub}")
    # The feedback records point at example-feedback-bucket; host those Transcribe files in moto too.
    s3.create_bucket(Bucket="example-feedback-bucket")
    for sub in ("call_001", "call_002", "call_003", "video_001"):
        s3.upload_file(str(examples / "transcribe" / f"{sub}.json"), "example-feedback-bucket",
                       f"transcribe/{sub}.json")
    result = runner.invoke(app, ["manifest", "build", f"s3://{s3_bucket}/in/feedback/processed_feedback.jsonl",
                                 "--out", f"s3://{s3_bucket}/out/manifest.jsonl",
                                 "--errors", f"s3://{s3_bucket}/out/errors.jsonl"])
    assert result.exit_code == 0, result.output
    body = s3.get_object(Bucket=s3_bucket, Key="out/manifest.jsonl")["Body"].read().decode()
    lines = [orjson.loads(x) for x in body.splitlines()]
    assert len(lines) == 4 and all(len(line["pre-segments"]) > 0 for line in lines)
    errors = s3.get_object(Bucket=s3_bucket, Key="out/errors.jsonl")["Body"].read().decode().splitlines()
    assert len(errors) == 5

    result = runner.invoke(app, ["manifest", "validate", f"s3://{s3_bucket}/out/manifest.jsonl"])
    assert result.exit_code == 0, result.output


def test_validate_reports_problems(tmp_path):
    path = tmp_path / "m.jsonl"
    good = {"source-ref": "s3://b/a.wav", "media-type": "audio", "interaction-id": "a"}
    path.write_text("\n".join([
        json.dumps(good),
        json.dumps(good),  # duplicate
        json.dumps(dict(good, **{"interaction-id": "b", "source-ref": "https://x/a.wav"})),
        "{not json",
        json.dumps(dict(good, **{"interaction-id": "c", "transcription": "x" * 25_000})),
    ]) + "\n")
    problems = list(validate_manifest(str(path), Storage()))
    assert [(p.line, p.field) for p in problems] == [
        (2, "interaction-id"), (3, "source-ref"), (4, "(line)"), (5, "transcription")]
    assert "duplicate of line 1" in problems[0].message
    result = runner.invoke(app, ["manifest", "validate", str(path)])
    assert result.exit_code == 2
    assert "4 problem(s)" in result.stderr


def test_validate_accepts_built_manifest(tmp_path, examples, example_mirror):
    out = tmp_path / "m.jsonl"
    runner.invoke(app, ["manifest", "build", feedback(examples), "-o", str(out), "--mirror", example_mirror])
    assert runner.invoke(app, ["manifest", "validate", str(out)]).exit_code == 0


@pytest.mark.parametrize("spec", ["s3://bucket", "bucket=dir", "s3://bucket/="])
def test_bad_mirror_is_a_usage_error(tmp_path, examples, spec):
    result = runner.invoke(app, ["manifest", "build", feedback(examples), "-o", str(tmp_path / "m"), "--mirror", spec])
    assert result.exit_code == 2 and "--mirror" in result.output + result.stderr


def test_csv_input(tmp_path, examples, example_mirror):
    import csv

    records = read_jsonl(feedback(examples))[:3]
    path = tmp_path / "feedback.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(records[0]))
        writer.writeheader()
        for record in records:
            writer.writerow({k: json.dumps(v) if isinstance(v, dict | list) else ("" if v is None else v)
                             for k, v in record.items()})
    out, errors = tmp_path / "m.jsonl", tmp_path / "e.jsonl"
    result = runner.invoke(app, ["manifest", "build", str(path), "-o", str(out), "--errors", str(errors),
                                 "--mirror", example_mirror])
    assert result.exit_code == 0, result.output
    lines = read_jsonl(out)
    assert [line["interaction-id"] for line in lines] == ["int-0001", "int-0003"]
    assert lines[0]["metadata"]["sentiment"] == records[0]["sentiment"]
    assert lines[0]["duration-seconds"] == 21.0 and len(lines[0]["pre-segments"]) == 6
    assert [p["interaction_id"] for p in read_jsonl(errors)] == ["int-0002"]  # the chat record, skipped


def test_build_with_peaks(tmp_path, examples, example_mirror):
    out, peaks_dir = tmp_path / "m.jsonl", tmp_path / "peaks"
    result = runner.invoke(app, ["manifest", "build", feedback(examples), "-o", str(out), "--peaks", str(peaks_dir),
                                 "--peaks-per-second", "50", "--mirror", example_mirror])
    assert result.exit_code == 0, result.output
    lines = {line["interaction-id"]: line for line in read_jsonl(out)}
    # Peaks are written binary (no JSON.parse in the browser) and gzip-compressed (small downloads
    # for every annotator), and named so.
    ref = lines["int-0003"]["peaks-ref"]
    assert ref == str(peaks_dir / f"{file_stem('int-0003')}.peaks.bin.gz")
    raw = gzip.decompress(Path(ref).read_bytes())
    assert raw[:4] == b"GTPK"
    peaks = read_peaks(ref)
    assert abs(peaks.duration - 35.0) < 0.05  # the mp3 decodes to 35.000 s
    assert peaks.peaks_per_second == 50
    assert len(peaks.data[0]) == 2 * round(peaks.duration * peaks.peaks_per_second)
    assert len(raw) > 2 * len(peaks.data[0])  # int16 per value, after the header
    assert lines["int-0006"]["peaks-ref"].endswith(f"/{file_stem('int-0006')}.peaks.bin.gz")  # the mp4's soundtrack


def test_build_with_peaks_on_s3_sets_content_encoding(s3_bucket, tmp_path, examples, example_mirror):
    """On S3 the compressed peaks carry Content-Encoding: gzip, so a presigned URL hands browsers JSON."""
    out = tmp_path / "m.jsonl"
    result = runner.invoke(app, ["manifest", "build", feedback(examples), "-o", str(out),
                                 "--peaks", f"s3://{s3_bucket}/peaks", "--mirror", example_mirror])
    assert result.exit_code == 0, result.output
    lines = {line["interaction-id"]: line for line in read_jsonl(out)}
    key = f"peaks/{file_stem('int-0001')}.peaks.bin.gz"
    assert lines["int-0001"]["peaks-ref"] == f"s3://{s3_bucket}/{key}"
    s3 = boto3.client("s3")
    obj = s3.get_object(Bucket=s3_bucket, Key=key)
    assert obj["ContentEncoding"] == "gzip" and obj["ContentType"] == "application/octet-stream"
    stored = obj["Body"].read()
    assert stored[:2] == b"\x1f\x8b"  # boto3 returns the stored (compressed) bytes
    peaks = read_peaks(lines["int-0001"]["peaks-ref"], Storage(client=s3))
    assert peaks.duration == pytest.approx(21.0)
    assert len(stored) < 0.8 * len(peaks_binary(peaks))  # really compressed


def test_jobs_give_identical_output_and_report(tmp_path, examples, example_mirror):
    """Good, skipped, broken and duplicate records, with peaks, spectrograms and sidecars: the
    manifest, the problem report and the counts are the same byte for byte with 1 or 3 threads."""
    inputs = [feedback(examples), feedback(examples, "bad_records.jsonl")]
    outputs = {}
    for jobs in (1, 3):
        d = tmp_path / f"j{jobs}"
        options = BuildOptions(peaks_prefix=str(d / "peaks"), spectrogram=True, sidecar_prefix=str(d / "side"),
                               jobs=jobs)
        report = build_manifest(inputs, str(d / "m.jsonl"), Storage([example_mirror]), options,
                                errors_out=str(d / "e.jsonl"))
        text = (d / "m.jsonl").read_text().replace(str(d), "DIR")
        outputs[jobs] = (text, (d / "e.jsonl").read_text(), report.records_in, report.lines_out, report.skipped,
                         report.errors, report.peaks, report.spectrograms, report.sidecars,
                         [p.as_json() for p in report.first_problems])
        assert report.balanced and report.errors > 0 and report.peaks == report.lines_out > 0
    assert outputs[1] == outputs[3]


def test_jobs_run_records_concurrently(tmp_path, examples, example_mirror, monkeypatch):
    """With --jobs 2 two records' peaks are computed at the same time: each waits at a barrier
    for the other (sequential conversion would break the barrier), and the output stays in order."""
    import threading

    import toolkit.ingest.build as manifest_module

    barrier = threading.Barrier(2, timeout=10)
    real = manifest_module._attach_peaks

    def attach(line, record, storage, options):
        if record.interaction_id in ("int-0001", "int-0003"):
            barrier.wait()
        return real(line, record, storage, options)

    monkeypatch.setattr(manifest_module, "_attach_peaks", attach)
    out = tmp_path / "m.jsonl"
    result = runner.invoke(app, ["manifest", "build", feedback(examples), "-o", str(out), "--peaks",
                                 str(tmp_path / "peaks"), "--jobs", "2", "--mirror", example_mirror])
    assert result.exit_code == 0, result.output
    assert [line["interaction-id"] for line in read_jsonl(out)] == ["int-0001", "int-0003", "int-0004", "int-0006"]
    assert not barrier.broken


# -- D7: bad bytes and encodings never abort the run -------------------------------------------

def nested(depth: int):
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def hostile_jsonl(examples) -> bytes:
    """The sample feedback with a BOM, an invalid UTF-8 byte in line 2 and a 500-deep field in line 3."""
    lines = Path(feedback(examples)).read_bytes().splitlines()
    lines[1] = lines[1].replace(b'"cust-50377"', b'"cust-\xff50377"')
    assert b"\xff" in lines[1]
    record = json.loads(lines[2])
    record["nested"] = nested(500)
    lines[2] = json.dumps(record).encode()
    return b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n"


def test_bad_bytes_bom_utf16_and_deep_nesting_are_reported_not_fatal(tmp_path, examples, example_mirror):
    mixed, utf16 = tmp_path / "mixed.jsonl", tmp_path / "utf16.jsonl"
    mixed.write_bytes(hostile_jsonl(examples))
    utf16.write_bytes(Path(feedback(examples)).read_text(encoding="utf-8").encode("utf-16"))
    out, errors = tmp_path / "m.jsonl", tmp_path / "e.jsonl"
    result = runner.invoke(app, ["manifest", "build", str(utf16), str(mixed), "--out", str(out), "--errors",
                                 str(errors), "--mirror", example_mirror])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    # The BOM is accepted (int-0001 on line 1), the rest is written.
    assert [line["interaction-id"] for line in read_jsonl(out)] == ["int-0001", "int-0004", "int-0006"]
    problems = read_jsonl(errors)
    [whole] = [p for p in problems if p["file"] == str(utf16)]
    assert whole["field"] == "(file)" and "UTF-16" in whole["message"]
    errors_at = {p["line"]: p for p in problems if p["file"] == str(mixed) and p["kind"] == "error"}
    assert sorted(errors_at) == [2, 3]
    assert errors_at[2]["field"] == "customer_id" and "UTF-8" in errors_at[2]["message"]
    assert errors_at[2]["interaction_id"] == "int-0002"
    assert errors_at[3]["field"] == "nested" and "deep" in errors_at[3]["message"]
    skipped = {p["line"] for p in problems if p["file"] == str(mixed) and p["kind"] == "skipped"}
    assert 3 + len(skipped) + len(errors_at) == 9  # every line of mixed.jsonl accounted for
    assert "UTF-16" in result.stderr


def test_csv_bad_bytes_bom_utf16_and_deep_nesting(tmp_path, examples, example_mirror):
    import csv
    import io

    records = read_jsonl(feedback(examples))[:4]
    records[2]["speaker_roles"] = {"spk_0": nested(500)}
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: json.dumps(v) if isinstance(v, dict | list) else ("" if v is None else v)
                         for k, v in record.items()})
    data = text.getvalue().encode("utf-8")
    data = data.replace(b"cust-50377", b"cust-\xfe50377", 1)  # row 2 (int-0002) gets a bad byte
    data += b"int-0099,extra,cells" + b",x" * 40 + b"\n"  # more cells than columns
    good = tmp_path / "feedback.csv"
    good.write_bytes(b"\xef\xbb\xbf" + data)
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(b"\xff\xfe" + data.decode("utf-8", "replace").encode("utf-16-le"))
    out, errors = tmp_path / "m.jsonl", tmp_path / "e.jsonl"
    result = runner.invoke(app, ["manifest", "build", str(good), str(utf16), "-o", str(out), "--errors",
                                 str(errors), "--mirror", example_mirror])
    assert result.exit_code == 2, result.output
    assert [line["interaction-id"] for line in read_jsonl(out)] == ["int-0001", "int-0004"]
    problems = read_jsonl(errors)
    [whole] = [p for p in problems if p["file"] == str(utf16)]
    assert whole["field"] == "(file)" and "UTF-16" in whole["message"]
    by_id = {p["interaction_id"]: p for p in problems if p["file"] == str(good)}
    assert by_id["int-0002"]["field"] == "customer_id" and "UTF-8 (byte FE)" in by_id["int-0002"]["message"]
    assert by_id["int-0003"]["field"] == "speaker_roles" and "deep" in by_id["int-0003"]["message"]
    assert by_id["int-0099"]["field"] == "(row)" and "columns" in by_id["int-0099"]["message"]
    assert len(by_id) == 3
    # Rows are numbered by the physical line they end on (transcripts hold newlines).
    assert by_id["int-0099"]["line"] == data.count(b"\n")


def test_validate_reports_bad_bytes_and_deep_nesting_per_line(tmp_path):
    good = {"source-ref": "s3://b/a.wav", "media-type": "audio", "interaction-id": "a"}
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join([
        json.dumps(good).encode(),
        json.dumps(dict(good, **{"interaction-id": "b", "language-code": "en-\u00e9"})).encode().replace(
            b"\\u00e9", b"\xe9"),
        json.dumps(dict(good, **{"interaction-id": "c", "metadata": {"x": nested(200)}})).encode(),
        json.dumps(dict(good, **{"interaction-id": "d"})).encode(),
    ]) + b"\n")
    problems = list(validate_manifest(str(path), Storage()))
    assert [(p.line, p.field) for p in problems] == [(2, "language-code"), (3, "metadata")]
    assert "UTF-8" in problems[0].message and "deep" in problems[1].message
    path.write_bytes(json.dumps(good).encode("utf-16"))
    [whole] = validate_manifest(str(path), Storage())
    assert whole.field == "(file)" and "UTF-16" in whole.message


# -- D8: file names derived from interaction ids -----------------------------------------------

def test_ids_that_sanitise_alike_get_their_own_peaks_spectrogram_and_sidecar(tmp_path, examples, example_mirror):
    """`a/b` (a 21 s call) and `a_b` (a 35 s call) once shared `a_b.peaks.bin.gz`: the second overwrote
    the first, and the 21 s call showed the 35 s waveform."""
    records = read_jsonl(feedback(examples))
    short = dict(records[0], interaction_id="a/b", transcript="long " * 5000)  # 21 s, needs a sidecar
    long = dict(records[2], interaction_id="a_b", transcript="other " * 5000)  # 35 s
    src = tmp_path / "r.jsonl"
    src.write_text(json.dumps(short) + "\n" + json.dumps(long) + "\n")
    out = tmp_path / "m.jsonl"
    report = build_manifest([str(src)], str(out), Storage([example_mirror]),
                            BuildOptions(peaks_prefix=str(tmp_path / "peaks"), spectrogram=True,
                                         sidecar_prefix=str(tmp_path / "side"), peaks_per_second=10))
    assert report.lines_out == 2 and report.errors == 0
    first, second = read_jsonl(out)
    for ref in ("peaks-ref", "spectrogram-ref", "sidecar-ref"):
        assert first[ref] != second[ref], ref
        assert Path(first[ref]).name.startswith("a_b-") and Path(second[ref]).name.startswith("a_b-")
    assert read_peaks(first["peaks-ref"]).duration == pytest.approx(21.0, abs=0.05)
    assert read_peaks(second["peaks-ref"]).duration == pytest.approx(35.0, abs=0.05)
    assert json.loads(Path(first["sidecar-ref"]).read_text())["transcription"].startswith("long ")
    assert len(list((tmp_path / "peaks").iterdir())) == 4 and len(list((tmp_path / "side").iterdir())) == 2


def test_a_derived_name_collision_is_an_error_never_an_overwrite(tmp_path, examples, example_mirror, monkeypatch):
    import toolkit.ingest.build as manifest_module

    monkeypatch.setattr(manifest_module, "file_stem", lambda identifier: "same")  # as if the hashes collided
    records = read_jsonl(feedback(examples))
    src = tmp_path / "r.jsonl"
    src.write_text(json.dumps(records[0]) + "\n" + json.dumps(records[2]) + "\n")
    out, errors = tmp_path / "m.jsonl", tmp_path / "e.jsonl"
    report = build_manifest([str(src)], str(out), Storage([example_mirror]),
                            BuildOptions(peaks_prefix=str(tmp_path / "peaks"), peaks_per_second=10),
                            errors_out=str(errors))
    assert (report.lines_out, report.errors) == (1, 1)
    [problem] = read_jsonl(errors)
    assert problem["interaction_id"] == "int-0003" and problem["field"] == "interaction_id"
    assert "int-0001" in problem["message"] and "same" in problem["message"]
    assert read_peaks(str(tmp_path / "peaks" / "same.peaks.bin.gz")).duration == pytest.approx(21.0, abs=0.05)


def test_file_stem_is_safe_and_unique_per_exact_id():
    ids = ["a/b", "a_b", "A_b", "a b", "a\\b", "..", ".", "../../etc/passwd", "x" * 300, "ü", "é/é", "int-0001"]
    stems = [file_stem(i) for i in ids]
    assert len(set(stems)) == len(ids) and len({s.lower() for s in stems}) == len(ids)  # case-insensitive FS too
    for stem in stems:
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}-[0-9a-f]{16}", stem), stem
    assert file_stem("int-0001") == file_stem("int-0001")  # stable across runs
