"""gtkit export: golden records for every preset x format, record shapes, TRL column consistency,
PII never leaving by default, reader skip reasons, batch sharding."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract import records as R
from toolkit.export import BatchQuotas, ExportError, ExportOptions, PresetError, export
from toolkit.export.formats.bedrock import SCHEMAS
from toolkit.export.presets import FORMATS, Preset, load_preset
from toolkit.export.reader import ManifestReader
from toolkit.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "export"
GOLDEN = FIXTURES / "golden"
MIRROR = f"s3://example-labels-bucket/={FIXTURES}"
CALLS = FIXTURES / "call_center.output.manifest"
TTS = FIXTURES / "tts.output.manifest"
VIDEO = FIXTURES / "video.output.manifest"
COMPARE = FIXTURES / "compare.output.manifest"
MODEL = FIXTURES / "model.output.manifest"  # two calls whose summary workers started from a model's (pre-content)
UPDATE = os.environ.get("GTKIT_UPDATE_GOLDEN") == "1"
PII = ["206 555 0142", "(206) 555-0142", "2065550142", "maria.okafor@example.org", "jordan.rivera@example.com",
       "4111 1111 1111 1111", "4111111111111111"]
SMALL_BATCH = BatchQuotas(min_records=1)


# The video fixture (video-generation) has no machine transcript: nothing for the correction presets.
NO_VIDEO_DATA = ("preference-correction", "dense-preference")


def manifest_for(preset: str, fmt: str = "") -> Path:
    if preset == "preference-model":
        return MODEL
    if fmt == "hf-video" or (fmt == "bedrock-conversation-2024" and preset == "sft-transcription"):
        return VIDEO
    if preset == "preference-compare":
        return COMPARE
    return TTS if preset in ("preference-ratings", "kto") else CALLS


DIRECTORY_FORMATS = ("hf-audio", "hf-video", "lhotse", "nemo")


def out_name(fmt: str) -> str:
    if fmt in DIRECTORY_FORMATS:
        return "dataset"
    return {"bedrock-batch": "batch", "webvtt": "vtt", "rttm": "out.rttm"}.get(fmt, "out.jsonl")


CASES = [(p, f, None) for p, fmts in FORMATS.items() for f in fmts
         if not (f == "hf-video" and p in NO_VIDEO_DATA)]
CASES += [("sft-transcription", "bedrock", s) for s in SCHEMAS if s != "messages"]
CASES += [("sft-summary", "bedrock-conversation-2024", None), ("sft-transcription", "trl", "sidecar")]
CASES += [("sft-transcription", "bedrock-conversation-2024", None)]  # video items: video blocks by s3Location
CASES += [(p, f, "clips") for p in ("sft-transcription", "reward-segments") for f in ("hf-audio", "hf-video", "lhotse")]
CASES += [("sft-transcription", "nemo", "clips")]


def run(tmp_path: Path, preset: str, fmt: str, variant: str | None = None, **kw) -> tuple[Path, object]:
    out = tmp_path / out_name(fmt)
    opts = ExportOptions(preset=preset, format=fmt, out=str(out), quotas=SMALL_BATCH, **kw)
    if fmt == "bedrock" and variant:
        opts.bedrock_schema = variant
    if variant == "sidecar":
        opts.lineage = "sidecar"
    if variant == "clips":
        opts.clips = True
    summary = export(Storage([MIRROR]), str(manifest_for(preset, fmt)), opts)
    return tmp_path, summary


MEDIA_SUFFIXES = (".wav", ".mp3", ".mp4", ".flac")


def digest(data: bytes) -> dict[str, object]:
    import hashlib

    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def canonical(path: Path) -> tuple[str, bytes]:
    """A file as its golden holds it: Parquet as its rows in JSON (media bytes as their digest, which
    sample-exact cuts keep stable), gzip decompressed, media files as their digest, text as is."""
    import gzip

    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        def plain(value: object) -> object:
            if isinstance(value, bytes):
                return digest(value)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        rows = pq.read_table(path).to_pylist()
        return path.name + ".jsonl", "".join(json.dumps(plain(r), ensure_ascii=False) + "\n" for r in rows).encode()
    if path.suffix == ".gz":
        return path.name[:-3], gzip.decompress(path.read_bytes())
    if path.suffix in MEDIA_SUFFIXES:
        return path.name + ".json", json.dumps(digest(path.read_bytes())).encode() + b"\n"
    return path.name, path.read_bytes()


def files_of(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            name, data = canonical(p)
            out[str(p.relative_to(root).parent / name)] = data
    return out


@pytest.mark.parametrize(("preset", "fmt", "variant"), CASES,
                         ids=[f"{p}-{f}" + (f"-{v}" if v else "") for p, f, v in CASES])
def test_golden(tmp_path, preset, fmt, variant):
    root, summary = run(tmp_path / "out", preset, fmt, variant)
    produced = files_of(root)
    assert produced, "the export wrote nothing"
    golden_dir = GOLDEN / (f"{preset}.{fmt}" + (f".{variant}" if variant else ""))
    if UPDATE:
        shutil.rmtree(golden_dir, ignore_errors=True)
        for name, data in produced.items():
            (golden_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (golden_dir / name).write_bytes(data)
    expected = files_of(golden_dir)
    assert sorted(produced) == sorted(expected)
    for name, data in produced.items():
        assert data.decode() == expected[name].decode(), name
    assert summary.written > 0


JSONL_MODELS = {
    "sft-transcription": R.TranscriptionRecord, "sft-summary": R.SummaryRecord,
    "preference-correction": R.CorrectionPairRecord, "preference-ratings": R.RatingPairRecord,
    "preference-model": R.ModelPairRecord,
    "kto": R.KtoRecord, "reward-segments": R.RewardRecord,
}
TRL_MODELS = {
    "sft-transcription": R.TrlMessagesRecord, "sft-summary": R.TrlPromptCompletionRecord,
    "preference-correction": R.TrlPreferenceRecord, "preference-ratings": R.TrlPreferenceRecord,
    "preference-model": R.TrlPreferenceRecord,
    "kto": R.TrlUnpairedRecord,
}
BEDROCK_MODELS = {"messages": R.BedrockMessagesRecord, "conversation-2024": R.BedrockConversationRecord,
                  "prompt-completion": R.BedrockPromptCompletionRecord}


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("preset", sorted(JSONL_MODELS))
def test_jsonl_records_match_their_models(tmp_path, preset):
    _, summary = run(tmp_path, preset, "jsonl")
    rows = lines(tmp_path / "out.jsonl")
    assert len(rows) == summary.written > 0
    for row in rows:
        JSONL_MODELS[preset].model_validate(row)
        lineage = row["lineage"] if "interaction_id" in row["lineage"] else row["lineage"]["chosen"]
        assert lineage["label_attribute"] in ("call-labels", "tts")
        assert lineage["job_name"] in ("cc-seg-1", "tts-review-7")
        assert lineage["source_ref"].startswith("s3://example-labels-bucket/")


def json_type(value: object) -> object:
    """The datasets/Arrow view of a JSON value's type; nulls are compatible with anything."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        kinds = {json.dumps(json_type(v), sort_keys=True) for v in value if v is not None}
        assert len(kinds) <= 1, f"mixed list element types {kinds}"
        return ["list", json.loads(kinds.pop()) if kinds else None]
    assert isinstance(value, dict)
    return {k: json_type(v) for k, v in value.items()}


def merge_types(a: object, b: object, where: str) -> object:
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{where}: struct fields differ {sorted(a)} vs {sorted(b)}"
        return {k: merge_types(a[k], b[k], f"{where}.{k}") for k in a}
    if isinstance(a, list) and isinstance(b, list):
        return ["list", merge_types(a[1], b[1], f"{where}[]")]
    assert a == b, f"{where}: {a} vs {b}"
    return a


@pytest.mark.parametrize("preset", sorted(TRL_MODELS))
def test_trl_files_load_as_one_dataset(tmp_path, preset):
    """datasets.load_dataset("json") semantics: valid JSON Lines, same columns and types on every row."""
    run(tmp_path, preset, "trl")
    text = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert text.endswith("\n")
    rows = [json.loads(line) for line in text.split("\n")[:-1]]
    assert rows
    columns = set(rows[0])
    schema: object = None
    for i, row in enumerate(rows):
        assert set(row) == columns, f"row {i} columns differ"
        TRL_MODELS[preset].model_validate(row)
        schema = merge_types(schema, json_type(row), f"row {i}")
    # Conversational throughout: never a mix of plain-string and message-list rows.
    for col in ("prompt", "chosen", "rejected", "completion", "messages"):
        if col in columns:
            assert all(isinstance(r[col], list) for r in rows)
    if preset == "kto":
        assert {r["label"] for r in rows} == {True, False}


@pytest.mark.parametrize("schema", SCHEMAS)
def test_bedrock_lines_have_no_extra_keys_and_provenance_sidecar(tmp_path, schema):
    run(tmp_path, "sft-transcription", "bedrock", schema)
    rows = lines(tmp_path / "out.jsonl")
    prov = lines(tmp_path / "out.provenance.jsonl")
    assert len(rows) == len(prov) > 0
    for i, (row, p) in enumerate(zip(rows, prov, strict=True)):
        BEDROCK_MODELS[schema].model_validate(row)  # extra="forbid"
        R.ProvenanceRecord.model_validate(p)
        assert p["row"] == i and p["file"] == "out.jsonl"
    if schema == "conversation-2024":
        assert all(r["schemaVersion"] == "bedrock-conversation-2024" for r in rows)
    if schema == "messages":
        assert [m["role"] for m in rows[0]["messages"]] == ["user", "assistant"]


def all_text(root: Path) -> str:
    return "\n".join(data.decode("utf-8") for data in files_of(root).values())


@pytest.mark.parametrize(("preset", "fmt", "variant"), CASES,
                         ids=[f"{p}-{f}" + (f"-{v}" if v else "") for p, f, v in CASES])
def test_sample_pii_never_exported_by_default(tmp_path, preset, fmt, variant):
    root, _ = run(tmp_path / "o", preset, fmt, variant)
    text = all_text(root)
    for pii in PII:
        assert pii not in text, f"{pii!r} leaked into {preset}/{fmt}"


def test_no_redact_keeps_the_text(tmp_path):
    root, summary = run(tmp_path, "sft-summary", "jsonl", redact=False)
    text = all_text(root)
    assert "maria.okafor@example.org" in text and "4111 1111 1111 1111" in text
    assert not summary.redactions


def test_redaction_counts_in_summary(tmp_path):
    _, summary = run(tmp_path, "sft-summary", "jsonl")
    # prompt: the transcript's phone; completion: email + card
    assert summary.redactions == {"PHONE": 1, "EMAIL": 1, "CARD": 1}


def test_reader_counts_every_kind_of_bad_line():
    reader = ManifestReader(Storage([MIRROR]), str(CALLS))
    items = list(reader)
    assert [i.interaction_id for i in items] == ["int-0001", "int-0002"]
    s = reader.stats
    assert s.lines == 8 and s.labeled == 2
    assert s.skipped == {"malformed-json": 1, "failed": 2, "no-label": 1, "malformed-label": 1,
                         "unconsolidated": 1}
    assert [p.line for p in s.problems] == [3, 4, 5, 6, 7, 8]
    # Both metadata spellings (job-name / job_name, groundtruth / groundTruth) parse the same.
    assert [i.job_name for i in items] == ["cc-seg-1", "cc-seg-1"]
    assert items[1].creation_date == "2024-11-05T10:05:00.000000"
    assert reader.attribute == "call-labels"
    # Sidecar pre-segments are read through the mirror.
    assert items[1].pre_segment_texts()["ts-1"] == "I've updated your contact details."
    # Problems carry field paths, never annotation text.
    assert "Hello" not in " ".join(p.detail for p in s.problems)


def test_explicit_label_attribute_that_is_absent():
    reader = ManifestReader(Storage([MIRROR]), str(CALLS), label_attribute="other")
    assert list(reader) == []
    assert reader.stats.skipped == {"no-label": 7, "malformed-json": 1}


def test_worker_response_path_uses_the_consolidator():
    calls = []

    def fake(data_object, answers, schema):
        calls.append((data_object["interaction-id"], [w for w, _ in answers]))
        from toolkit.contract import ConsolidatedLabel

        return ConsolidatedLabel(interaction_id="int-0007", label_schema="call-center", worker_count=2)

    reader = ManifestReader(Storage([MIRROR]), str(CALLS), worker_responses=True, consolidator=fake)
    ids = [i.interaction_id for i in reader]
    assert ids == ["int-0001", "int-0002", "int-0007"]
    assert calls == [("int-0007", ["private.us-east-1.w1aaaa", "private.us-east-1.w2bbbb"])]
    assert "unconsolidated" not in reader.stats.skipped


def test_worker_responses_consolidated_with_toolkit_consolidate(tmp_path):
    summary = export(Storage([MIRROR]), str(CALLS), ExportOptions(
        preset="sft-transcription", format="jsonl", out=str(tmp_path / "o.jsonl"), worker_responses=True))
    rows = lines(tmp_path / "o.jsonl")
    assert rows[-1]["id"].startswith("int-0007/") and rows[-1]["completion"] == "Hello there."
    assert rows[-1]["lineage"]["agreement"] == 1.0
    assert "unconsolidated" not in summary.skipped and summary.written == 7


def test_format_not_supported_by_preset(tmp_path):
    with pytest.raises(ExportError, match="does not support format 'rttm'"):
        run(tmp_path, "kto", "rttm")
    with pytest.raises(ExportError, match="unknown format"):
        run(tmp_path, "kto", "csv")


def test_an_alias_is_refused_by_its_own_name(tmp_path):
    """Issue 20: the message names `bedrock-conversation-2024` as typed, not the writer 'bedrock'."""
    with pytest.raises(ExportError) as err:
        run(tmp_path, "reward-segments", "bedrock-conversation-2024")
    assert str(err.value) == ("preset reward-segments (reward-segments) does not support format "
                              "'bedrock-conversation-2024'; it supports jsonl, rttm, webvtt, hf-audio, "
                              "hf-video, lhotse")
    with pytest.raises(ExportError, match=r"it supports .*, bedrock-conversation-2024$"):
        run(tmp_path, "sft-transcription", "nemo-dpo")


def test_batch_minimum_aborts_everything(tmp_path):
    out = tmp_path / "batch"
    with pytest.raises(ExportError, match="below the minimum of 100"):
        export(Storage([MIRROR]), str(CALLS), ExportOptions(preset="sft-transcription", format="bedrock-batch",
                                                            out=str(out)))
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_custom_preset_file_and_template_checks(tmp_path):
    preset = load_preset("sft-transcription").model_dump()
    preset.update(name="mine", prompt="[{interaction_id}] {label} at {start}", schemas={}, tracks=["speaker"])
    path = tmp_path / "mine.yaml"
    import yaml

    path.write_text(yaml.safe_dump(preset), encoding="utf-8")
    out = tmp_path / "o.jsonl"
    summary = export(Storage([MIRROR]), str(CALLS), ExportOptions(preset=str(path), format="jsonl", out=str(out)))
    rows = lines(out)
    assert rows[0]["prompt"] == "[int-0001] Agent at 0.400"
    assert summary.dropped["segment-track-not-exported"] == 1  # the language span
    bad = Preset.model_validate(preset | {"prompt": "{nope}"})
    with pytest.raises(PresetError, match="unknown template names"):
        export(Storage([MIRROR]), str(CALLS), ExportOptions(preset=bad, format="jsonl", out=str(out)))
    with pytest.raises(PresetError, match="neither a file nor a built-in preset"):
        load_preset("no-such-preset")


def test_rating_presets_need_a_rating_field(tmp_path):
    with pytest.raises(PresetError, match="no rating content field"):
        export(Storage([MIRROR]), str(CALLS), ExportOptions(
            preset="kto", format="jsonl", out=str(tmp_path / "x.jsonl"),
            schema=str(FIXTURES / "no-rating.schema.yaml")))


def test_webvtt_and_rttm_shapes(tmp_path):
    run(tmp_path / "v", "reward-segments", "webvtt")
    vtt = (tmp_path / "v" / "vtt" / "int-0001.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT - int-0001\n\nNOTE lineage {")
    timings = re.findall(r"^(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})$", vtt, re.M)
    assert timings[0] == ("00:00:00.400", "00:00:03.100")
    assert timings == sorted(timings)
    run(tmp_path / "r", "reward-segments", "rttm")
    rttm = (tmp_path / "r" / "out.rttm").read_text(encoding="utf-8").splitlines()
    assert rttm[0] == "SPEAKER int-0001 1 0.400 2.700 <NA> <NA> Agent <NA> <NA>"
    assert all(len(line.split()) == 10 for line in rttm)
    assert not any("English" in line for line in rttm)  # speaker tracks only by default


def test_cli_export_and_summary_json(tmp_path):
    out, summary = tmp_path / "sft.jsonl", tmp_path / "summary.json"
    result = CliRunner().invoke(app, [
        "export", "--labels", str(CALLS), "--preset", "sft-transcription", "--format", "trl", "--out", str(out),
        "--mirror", MIRROR, "--summary-json", str(summary), "--redact-pattern", "ORDER=W \\d{5}", "-q"])
    assert result.exit_code == 0, result.output
    data = json.loads(summary.read_text())
    assert data["written"] == 6 and data["skipped"]["malformed-json"] == 1
    assert data["redactions"]["ORDER"] == 1
    assert "W 48172" not in out.read_text()
    bad = CliRunner().invoke(app, ["export", "--labels", str(CALLS), "--preset", "kto", "--format", "rttm",
                                   "--out", str(tmp_path / "x"), "-q"])
    assert bad.exit_code == 1


def _write_big_manifest(path: Path, lines_count: int, per_line: int) -> None:
    seg = ('{{"id":"s{j}","category":"speaker","label":"Agent","start":{s},"end":{e},"text":"Segment {j} '
           'of call {i}, nothing personal here.","support":2,"agreement":0.9}}')
    with path.open("w", encoding="utf-8") as fh:
        for i in range(lines_count):
            segs = ",".join(seg.format(j=j, i=i, s=j, e=j + 0.5) for j in range(per_line))
            fh.write(f'{{"source-ref":"s3://b/m/{i}.wav","media-type":"audio","interaction-id":"i{i}",'
                     f'"duration-seconds":60,"lab":{{"labelSchema":"call-center","segments":[{segs}]}},'
                     f'"lab-metadata":{{"type":"groundtruth/custom","job-name":"big"}}}}\n')


def test_bedrock_batch_splits_120000_records_within_quotas(tmp_path):
    manifest = tmp_path / "big.manifest"
    _write_big_manifest(manifest, 12_000, 10)
    # Jobs split on the record quota (50,000) into 3 balanced jobs, files on the byte quota (~17,000 records
    # per 6 MB) into balanced files.
    quotas = BatchQuotas(min_records=100, records_per_file=50_000, records_per_job=50_000,
                         file_bytes=6_000_000)
    out = tmp_path / "batch"
    summary = export(Storage(), str(manifest), ExportOptions(
        preset="sft-transcription", format="bedrock-batch", out=str(out), quotas=quotas))
    assert summary.written == 120_000
    plan = R.BatchPlan.model_validate_json((out / "jobs.json").read_text())
    seen_ids: set[str] = set()
    total = 0
    for job in plan.jobs:
        assert quotas.min_records <= job.records <= quotas.records_per_job
        assert job.bytes <= quotas.job_bytes
        assert sum(f.records for f in job.files) == job.records
        for f in job.files:
            path = out / f.path
            data = path.read_bytes()
            assert len(data) == f.bytes <= quotas.file_bytes
            n = data.count(b"\n")
            assert n == f.records <= quotas.records_per_file
            for line in data.splitlines()[:: max(1, n // 50)]:
                rec = R.BedrockBatchRecord.model_validate_json(line)
                assert re.fullmatch(r"[A-Za-z0-9]{11}", rec.record_id)
            seen_ids.update(re.findall(rb'"recordId":"([A-Za-z0-9]{11})"', data))
            total += n
    assert total == 120_000 == len(seen_ids)
    assert [j.records for j in plan.jobs] == [40_000, 40_000, 40_000]
    assert all(len(j.files) > 1 for j in plan.jobs)  # the byte quota split each job into several files
    assert sum(1 for _ in (out / "provenance.jsonl").open()) == 120_000
    # The provenance file sits outside every job prefix (Bedrock reads all files under a prefix).
    assert all(not f.startswith("job-") for f in os.listdir(out) if f.endswith(".jsonl"))


def test_batch_record_quota_per_file(tmp_path):
    out = tmp_path / "b"
    quotas = BatchQuotas(min_records=1, records_per_file=2, records_per_job=5)
    summary = export(Storage([MIRROR]), str(CALLS), ExportOptions(
        preset="sft-transcription", format="bedrock-batch", out=str(out), quotas=quotas))
    plan = R.BatchPlan.model_validate_json((out / "jobs.json").read_text())
    assert summary.written == 6
    assert [[f.records for f in j.files] for j in plan.jobs] == [[2, 1], [2, 1]]  # 2 balanced jobs of 3
    prov = lines(out / "provenance.jsonl")
    assert [(p["file"], p["row"]) for p in prov][:3] == [
        ("job-000/part-000.jsonl", 0), ("job-000/part-000.jsonl", 1), ("job-000/part-001.jsonl", 0)]
    assert [p["recordId"] for p in prov] == [f"R{n:010d}" for n in range(1, 7)]


@pytest.mark.parametrize(("preset", "fmt"), [("sft-transcription", "trl"), ("reward-segments", "webvtt"),
                                             ("sft-summary", "bedrock"), ("kto", "jsonl")])
def test_parallel_export_is_byte_identical(tmp_path, monkeypatch, preset, fmt):
    import importlib

    exporter = importlib.import_module("toolkit.export.exporter")
    monkeypatch.setattr(exporter, "BATCH_BYTES", 1)  # one line per batch: many batches in flight
    _, seq = run(tmp_path / "seq", preset, fmt)
    _, par = run(tmp_path / "par", preset, fmt, jobs=2)
    assert par.extra["worker processes"] == 2
    assert files_of(tmp_path / "seq") == files_of(tmp_path / "par")
    for key in ("read", "labeled", "written", "skipped", "dropped", "redactions"):
        assert getattr(seq, key) == getattr(par, key), key
    assert [(p.line, p.reason) for p in seq.problems] == [(p.line, p.reason) for p in par.problems]


def test_export_from_and_to_s3(s3_bucket, tmp_path):
    import boto3

    s3 = boto3.client("s3")
    s3.upload_file(str(CALLS), s3_bucket, "jobs/cc/output.manifest")
    storage = Storage([MIRROR])
    summary = export(storage, f"s3://{s3_bucket}/jobs/cc/output.manifest", ExportOptions(
        preset="sft-transcription", format="bedrock-batch", out=f"s3://{s3_bucket}/batch", quotas=SMALL_BATCH))
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="batch/")["Contents"])
    assert keys == ["batch/job-000/part-000.jsonl", "batch/jobs.json",
                    "batch/provenance.jsonl", "batch/records/job-000.jsonl"]
    body = s3.get_object(Bucket=s3_bucket, Key="batch/job-000/part-000.jsonl")["Body"].read()
    golden = (GOLDEN / "sft-transcription.bedrock-batch" / "batch" / "job-000" / "part-000.jsonl").read_bytes()
    assert body == golden and summary.written == 6
    # A failed check aborts the multipart uploads: nothing appears under the prefix.
    with pytest.raises(ExportError):
        export(storage, f"s3://{s3_bucket}/jobs/cc/output.manifest", ExportOptions(
            preset="sft-transcription", format="bedrock-batch", out=f"s3://{s3_bucket}/batch2"))
    assert "Contents" not in s3.list_objects_v2(Bucket=s3_bucket, Prefix="batch2/")


def test_parallel_handles_blank_lines_and_no_final_newline(tmp_path, monkeypatch):
    import importlib

    exporter = importlib.import_module("toolkit.export.exporter")
    monkeypatch.setattr(exporter, "BATCH_BYTES", 700)
    text = CALLS.read_text(encoding="utf-8").replace("\n", "\n\n", 2).rstrip("\n")
    manifest = tmp_path / "m.manifest"
    manifest.write_text(text, encoding="utf-8")
    results = []
    for jobs in (1, 2):
        out = tmp_path / f"o{jobs}.jsonl"
        summary = export(Storage([MIRROR]), str(manifest), ExportOptions(
            preset="reward-segments", format="jsonl", out=str(out), jobs=jobs))
        results.append((out.read_bytes(), summary.read, dict(summary.skipped),
                        [(p.line, p.reason) for p in summary.problems]))
    assert results[0] == results[1]
    assert results[0][3][0] == (5, "malformed-json")  # line numbers count the blank lines


def test_problem_details_never_name_workers_or_quote_text(tmp_path):
    line = json.loads(CALLS.read_text().splitlines()[0])
    line["call-labels"]["segments"][0]["texts"]["private.us-east-1.w1aaaa"] = 5
    line["call-labels"]["segments"][1]["start"] = "206 555 0142"
    manifest = tmp_path / "m.manifest"
    manifest.write_text(json.dumps(line) + "\n")
    reader = ManifestReader(Storage(), str(manifest))
    assert list(reader) == []
    detail = reader.stats.problems[0].detail
    assert detail.startswith("call-labels: segments.0.texts: ")
    assert "w1aaaa" not in detail and "555" not in detail


def test_every_golden_sidecar_and_batch_line_matches_its_model():
    checked = 0
    for path in GOLDEN.rglob("*"):
        if path.name.endswith("provenance.jsonl"):
            for row in lines(path):
                R.ProvenanceRecord.model_validate(row)
                checked += 1
        elif path.name == "jobs.json":
            R.BatchPlan.model_validate_json(path.read_text())
        elif path.match("records/job-*.jsonl"):
            for row in lines(path):
                R.BatchRecordMapEntry.model_validate(row)
                checked += 1
        elif path.match("job-*/part-*.jsonl"):
            for row in lines(path):
                R.BedrockBatchRecord.model_validate(row)
                assert row["modelInput"]["messages"][0]["role"] == "user"
        elif path.suffix == ".vtt":
            text = path.read_text(encoding="utf-8")
            assert text.startswith("WEBVTT") and "\n\n\n" not in text
            for block in text.strip().split("\n\n")[1:]:
                if not block.startswith("NOTE"):
                    cue = block.split("\n")
                    assert " --> " in cue[1] and "-->" not in cue[0] and len(cue) == 3
    assert checked > 0


def test_parallel_spool_dir_is_removed(tmp_path, monkeypatch):
    import importlib
    import tempfile

    exporter = importlib.import_module("toolkit.export.exporter")
    monkeypatch.setattr(exporter, "BATCH_BYTES", 1)
    spool_root = tmp_path / "tmp"
    spool_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_root))
    _, seq = run(tmp_path / "seq", "sft-transcription", "trl")
    _, par = run(tmp_path / "par", "sft-transcription", "trl", jobs=2)
    assert files_of(tmp_path / "seq") == files_of(tmp_path / "par") and par.written == seq.written > 0
    assert list(spool_root.iterdir()) == []  # encoded batches went through files there, all removed


@pytest.mark.parametrize("sizes", [[5] * 1000, [20_000] * 40, [3, 70_000, 1, 1], [10] * 300 + [1]])
def test_mapped_line_scans_match_bytes_methods(tmp_path, sizes):
    import mmap

    from toolkit.export.exporter import FIND_LINES, _count_newlines, _mapped_lines

    data = b"".join(b"x" * n + b"\n" for n in sizes) + b"tail"
    path = tmp_path / "lines"
    path.write_bytes(data)
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        spans = [(0, len(data)), (7, len(data) - 2), (len(data) // 3, len(data) // 2), (4, 4), (0, sizes[0] + 1)]
        for start, end in spans:
            assert _count_newlines(mm, start, end) == data[start:end].count(b"\n")
            assert list(_mapped_lines(mm, start, end)) == data[start:end].split(b"\n")
    assert len(sizes) > FIND_LINES or max(sizes) > 10_000  # both the find and the count branch are used


def test_segment_formatter_renders_like_the_template():
    from toolkit.export.builders import SegmentFormatter
    from toolkit.export.presets import Template

    template = Template("{label} {{source_ref}} on {source_ref} [{start}-{end}] {segment_id}/{track} }{ {x.y} "
                        "{0} %s {label}")
    item = {"source_ref": "s3://b/{a}}.wav"}
    seg = {"segment_id": "s{1}", "start": "1.000", "end": "2.500", "track": "speaker", "label": "Agent {0}"}
    fmt = SegmentFormatter(template).bind(item)
    assert fmt(*(seg[k] for k in ("segment_id", "start", "end", "track", "label"))) == template.render({**item, **seg})
    static = Template("Transcribe {start}-{end} {{ }} {0}")
    assert SegmentFormatter(static).bind({})("s", "1.000", "2.000", "t", "l") == static.render(
        {"start": "1.000", "end": "2.000"})


def test_trl_counts_attribute_redactions_like_jsonl(tmp_path):
    # TRL rows leave segment attributes out, but a free-text attribute is still redacted and counted.
    line = json.loads(CALLS.read_text().splitlines()[0])
    attr = next(k[: -len("-metadata")] for k in line if k.endswith("-metadata"))
    line[attr]["segments"][0]["attributes"]["note"] = "call me on 206 555 0142"
    manifest = tmp_path / "m.manifest"
    manifest.write_text(json.dumps(line) + "\n", encoding="utf-8")
    counts = {}
    for fmt in ("jsonl", "trl"):
        summary = export(Storage([MIRROR]), str(manifest), ExportOptions(
            preset="sft-transcription", format=fmt, out=str(tmp_path / f"{fmt}.jsonl")))
        counts[fmt] = dict(summary.redactions)
    assert counts["trl"] == counts["jsonl"] and counts["jsonl"]["PHONE"] >= 1
    assert "206 555 0142" not in (tmp_path / "jsonl.jsonl").read_text()


def test_webvtt_ids_that_sanitise_alike_get_distinct_files(tmp_path):
    """`a/b` and `a_b` sanitise to one name: each still gets its own file, none overwrites the other."""
    lines = CALLS.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    manifest = tmp_path / "alike.manifest"
    manifest.write_text("".join(json.dumps(first | {"interaction-id": iid}) + "\n" for iid in ("a/b", "a_b")),
                        encoding="utf-8")
    out = tmp_path / "vtt"
    summary = export(Storage([MIRROR]), str(manifest),
                     ExportOptions(preset="reward-segments", format="webvtt", out=str(out), quotas=SMALL_BATCH))
    files = sorted(p.name for p in out.iterdir())
    assert summary.written == 2 and len(files) == 2, files
    assert "a_b.vtt" in files  # an id that is already a safe name keeps it (int-0001.vtt stays int-0001.vtt)
    headers = sorted((out / name).read_text(encoding="utf-8").splitlines()[0] for name in files)
    assert headers == ["WEBVTT - a/b", "WEBVTT - a_b"]
