"""gtkit merge: labels joined onto feedback records by interaction id; idempotent; atomic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract.records import MergedLabels
from toolkit.export import merge
from toolkit.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "export"
CALLS = FIXTURES / "call_center.output.manifest"
MIRROR = f"s3://example-labels-bucket/={FIXTURES}"


@pytest.fixture
def feedback(examples) -> Path:
    return examples / "feedback" / "processed_feedback.jsonl"


def test_merge_adds_labels_under_one_key(tmp_path, feedback):
    out = tmp_path / "enriched.jsonl"
    summary = merge(Storage([MIRROR]), str(feedback), str(CALLS), str(out))
    src = feedback.read_bytes().splitlines(keepends=True)
    dst = out.read_bytes().splitlines(keepends=True)
    assert len(src) == len(dst) == summary.written == 9
    by_id = {json.loads(line)["interaction_id"]: (s, line) for s, line in zip(src, dst, strict=True)}
    for iid in ("int-0001", "int-0002"):
        before, after = (json.loads(x) for x in by_id[iid])
        labels = after.pop("human_labels")
        assert after == before  # every original field kept, in order
        assert list(after) == list(before)
        entry = MergedLabels.model_validate(labels["cc-seg-1"])
        assert entry.label_attribute == "call-labels" and entry.status == "ok"
        assert entry.creation_date and entry.segments
        assert "workers" not in labels["cc-seg-1"] and "texts" not in json.dumps(labels)
    # Records without labels pass through byte for byte.
    for iid in ("int-0003", "int-0004", "int-0009"):
        assert by_id[iid][0] == by_id[iid][1]
    assert summary.extra["records with labels"] == 2
    assert summary.extra["passed through without labels"] == 7
    assert summary.skipped["labels: malformed-json"] == 1


def test_merge_is_idempotent(tmp_path, feedback):
    storage = Storage([MIRROR])
    once, twice, again = tmp_path / "1.jsonl", tmp_path / "2.jsonl", tmp_path / "3.jsonl"
    merge(storage, str(feedback), str(CALLS), str(once))
    summary = merge(storage, str(once), str(CALLS), str(twice))
    merge(storage, str(feedback), str(CALLS), str(again))
    assert once.read_bytes() == twice.read_bytes() == again.read_bytes()
    assert summary.extra["re-merged (replaced)"] == 2


def test_another_job_is_added_and_same_job_replaced(tmp_path, feedback):
    storage = Storage([MIRROR])
    first = tmp_path / "1.jsonl"
    merge(storage, str(feedback), str(CALLS), str(first))
    # A second job (different job name) with a changed label for int-0001.
    other = tmp_path / "other.manifest"
    line = json.loads(CALLS.read_text().splitlines()[0])
    line["call-labels-metadata"]["job-name"] = "cc-seg-2"
    line["call-labels"]["segments"] = line["call-labels"]["segments"][:1]
    other.write_text(json.dumps(line) + "\n")
    second = tmp_path / "2.jsonl"
    merge(storage, str(first), str(other), str(second))
    rec = next(json.loads(x) for x in second.read_text().splitlines() if '"int-0001"' in x)
    assert list(rec["human_labels"]) == ["cc-seg-1", "cc-seg-2"]
    assert len(rec["human_labels"]["cc-seg-2"]["segments"]) == 1
    # Re-running job 1 replaces its entry in place and keeps job 2.
    third = tmp_path / "3.jsonl"
    merge(storage, str(second), str(CALLS), str(third))
    assert third.read_bytes() == second.read_bytes()


def test_merge_is_atomic(tmp_path, feedback, monkeypatch):
    out = tmp_path / "enriched.jsonl"
    out.write_text("previous good output\n")
    import importlib

    m = importlib.import_module("toolkit.export.merge")
    real, calls = m.feedback_line.encode, []

    def boom(*a, **k):  # the second labelled record crashes, after the first was written
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("crash mid-write")
        return real(*a, **k)

    monkeypatch.setattr(m.feedback_line, "encode", boom)  # the feedback codec writes each line
    with pytest.raises(RuntimeError):
        merge(Storage([MIRROR]), str(feedback), str(CALLS), str(out))
    assert out.read_text() == "previous good output\n"
    assert [p.name for p in tmp_path.iterdir()] == ["enriched.jsonl"]  # temp file cleaned up


def test_merge_passes_unparseable_feedback_lines_through(tmp_path):
    fb = tmp_path / "fb.jsonl"
    fb.write_bytes(b'{"interaction_id": "int-0001", "channel": "voice"}\nnot json\n\n')
    out = tmp_path / "o.jsonl"
    summary = merge(Storage([MIRROR]), str(fb), str(CALLS), str(out))
    lines = out.read_bytes().split(b"\n")
    assert lines[1] == b"not json" and lines[2] == b""
    assert summary.skipped["feedback: malformed-json (copied unchanged)"] == 1
    assert summary.problems[-1].line == 2


def test_merge_to_s3_with_cli(s3_bucket, tmp_path, feedback):
    import boto3

    result = CliRunner().invoke(app, ["merge", "--feedback", str(feedback), "--labels", str(CALLS), "--out",
                                      f"s3://{s3_bucket}/enriched/out.jsonl", "--mirror", MIRROR, "-q"])
    assert result.exit_code == 0, result.output
    body = boto3.client("s3").get_object(Bucket=s3_bucket, Key="enriched/out.jsonl")["Body"].read()
    local = tmp_path / "o.jsonl"
    merge(Storage([MIRROR]), str(feedback), str(CALLS), str(local))
    assert body == local.read_bytes()
