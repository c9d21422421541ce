"""`gtkit export --reviewed-only` on a review job's output layout (edit, accept, reject, unreviewed,
provisional), and the review counts in the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract import SegmentationAnswer, load_label_schema
from toolkit.contract.base import dump
from toolkit.export import ExportOptions, export
from toolkit.export.review import NOT_REVIEWED, REJECTED_IN_REVIEW
from toolkit.export.trust import TrustOptions
from toolkit.labeling.answers import worker_answer
from toolkit.labeling.consolidate import consolidate
from toolkit.labeling.review import consolidated_to_answer, review_outcome, reviewed_output_line
from toolkit.storage import Storage

SCHEMA = load_label_schema("call-center")
META = {"type": "groundtruth/custom", "job-name": "calls", "human-annotated": "yes",
        "creation-date": "2026-01-01T00:00:00.000000"}


def worker(text: str) -> dict:
    return {"schemaVersion": "1.0", "labelSchema": "call-center", "mediaDuration": 10.0,
            "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}],
            "segments": [{"id": "s1", "track": "t1", "start": 1.0, "end": 4.0, "text": text,
                          "attributes": {"emotion": "Neutral"}}],
            "content": {"background_noise": ["None"], "overall_rating": 4}}


def review_line(n: int, decision: str | None, *, text: str | None = None, provisional: bool = False) -> dict:
    line = {"source-ref": f"s3://media/call_{n}.wav", "media-type": "audio", "interaction-id": f"int-{n}",
            "duration-seconds": 10.0}
    prior = consolidate([("private.w1", worker("helo there")), ("private.w2", worker("helo there"))], SCHEMA,
                        data_object=line)
    line["calls"] = dump(prior)
    line["calls-metadata"] = META
    if decision is None:
        return line
    answer = dump(consolidated_to_answer(prior))
    if text is not None:
        answer["segments"][0]["text"] = text
    answer["review"] = {"decision": decision, "note": "wrong speaker" if decision == "reject" else ""}
    parsed = [worker_answer("private.rev", SegmentationAnswer.model_validate(answer), schema=SCHEMA)]
    reviewed = review_outcome(None if provisional else prior, parsed)
    return reviewed_output_line(line, "calls-review", reviewed, "calls-review")


@pytest.fixture
def manifest(tmp_path) -> Path:
    lines = [review_line(1, "accept", text="hello there"),       # UI said accept, text changed -> edit
             review_line(2, "edit"),                             # nothing changed -> accept
             review_line(3, "reject"),
             review_line(4, None),                               # not in the review job
             review_line(5, "edit", provisional=True),           # provisional, unchanged -> accept
             review_line(6, "edit", text="hello there", provisional=True)]  # provisional edit
    path = tmp_path / "review.output.manifest"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def records(tmp_path: Path) -> dict[str, str]:
    out = {}
    for text in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(text)
        out[rec["lineage"]["interaction_id"]] = json.dumps(rec)
    return out


def test_reviewed_only_uses_the_reviewed_labels(tmp_path, manifest):
    opts = ExportOptions(preset="sft-transcription", format="jsonl", out=str(tmp_path / "out.jsonl"),
                         trust=TrustOptions(reviewed_only=True))
    summary = export(Storage(), str(manifest), opts)
    assert summary.skipped[REJECTED_IN_REVIEW] == 1 and summary.skipped[NOT_REVIEWED] == 1
    assert summary.extra["reviewed"] == "accept: 2, edit: 2, reject: 1"
    assert summary.extra["label attribute"] == "calls"  # the prior label, not the review attribute
    got = records(tmp_path)
    assert sorted(got) == ["int-1", "int-2", "int-5", "int-6"]
    assert "hello there" in got["int-1"] and "hello there" in got["int-6"]   # the reviewer's text
    assert "helo there" in got["int-2"] and "hello there" not in got["int-2"]  # accept: the prior label
    problems = " ".join(p.detail for p in summary.problems)
    assert "wrong speaker" not in problems  # the reviewer's note is free text
    # Each record says which review it passed (never the note).
    reviews = {k: json.loads(v)["lineage"]["review"] for k, v in got.items()}
    assert {k: (r["decision"], r["adjustment_status"]) for k, r in reviews.items()} == {
        "int-1": ("edit", "adjusted"), "int-2": ("accept", "unadjusted"), "int-5": ("accept", "unadjusted"),
        "int-6": ("edit", "adjusted")}
    assert reviews["int-2"]["changes"] == {} and reviews["int-1"]["changes"]
    assert all(r["reviewer"] for r in reviews.values()) and "wrong speaker" not in json.dumps(got)


def test_without_reviewed_only_the_prior_labels_are_exported(tmp_path, manifest):
    opts = ExportOptions(preset="sft-transcription", format="jsonl", out=str(tmp_path / "out.jsonl"))
    summary = export(Storage(), str(manifest), opts)
    assert not summary.skipped and "reviewed" not in summary.extra
    assert len(records(tmp_path)) == 6 and "hello there" not in json.dumps(records(tmp_path))


def test_cli_reviewed_only(tmp_path, manifest):
    result = CliRunner().invoke(app, ["export", "--labels", str(manifest), "--preset", "sft-transcription",
                                      "--format", "jsonl", "--out", str(tmp_path / "out.jsonl"), "--reviewed-only",
                                      "--summary-json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["skipped"] == {NOT_REVIEWED: 1, REJECTED_IN_REVIEW: 1}


def test_reviewed_only_in_parallel_workers_gives_the_same_counts(tmp_path, manifest):
    opts = ExportOptions(preset="sft-transcription", format="jsonl", out=str(tmp_path / "out.jsonl"),
                         trust=TrustOptions(reviewed_only=True), jobs=2)
    summary = export(Storage(), str(manifest), opts)
    assert summary.skipped[REJECTED_IN_REVIEW] == 1 and summary.skipped[NOT_REVIEWED] == 1
    assert sorted(records(tmp_path)) == ["int-1", "int-2", "int-5", "int-6"]
    assert summary.extra["worker processes"] == 2
    assert summary.extra["reviewed"] == "accept: 2, edit: 2, reject: 1"
