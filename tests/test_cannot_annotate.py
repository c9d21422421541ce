"""Issue 15: "cannot annotate" - a schema-defined reason, an answer without segments, validated like
the UI does, carried to the consolidated label, and skipped or kept by `gtkit export`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract import LabelSchema, SegmentationAnswer, load_label_schema, validate_answer
from toolkit.export import ExportOptions, export
from toolkit.labeling.consolidate import consolidate
from toolkit.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "export"
MIRROR = f"s3://example-labels-bucket/={FIXTURES}"
CALLS = FIXTURES / "call_center.output.manifest"
SILENCE = "Silence or no speech"


@pytest.fixture(scope="module")
def schema() -> LabelSchema:
    return load_label_schema("call-center")


def cannot(reason: str = SILENCE, **extra) -> dict:
    return {"mediaDuration": 21.0, "labelSchema": "call-center", "cannotAnnotate": {"reason": reason}, **extra}


def normal() -> dict:
    return {"mediaDuration": 21.0, "labelSchema": "call-center",
            "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}],
            "segments": [{"id": "s1", "track": "t1", "start": 0.4, "end": 3.5, "text": "hi"}],
            "content": {"background_noise": ["None"], "overall_rating": 4}}


def test_schema_reasons_are_yaml_users_edit(schema, tmp_path):
    assert SILENCE in schema.cannot_annotate.reasons
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntitle: X\ntracks: [{name: speaker, labels: [A]}]\n"
                   "cannot_annotate: {reasons: [Silence, Silence]}\n")
    with pytest.raises(ValueError, match="cannot_annotate: reasons must be unique"):
        load_label_schema(bad)


def test_answer_without_segments_is_valid_and_needs_nothing_else(schema):
    answer = SegmentationAnswer.model_validate(cannot())
    assert answer.segments == [] and validate_answer(answer, schema) == []
    # Corrupt media: the duration may be unknown.
    assert validate_answer(SegmentationAnswer.model_validate(cannot(mediaDuration=0)), schema) == []
    with pytest.raises(ValidationError, match="media duration is unknown"):
        SegmentationAnswer.model_validate({**normal(), "mediaDuration": 0})
    with pytest.raises(ValidationError, match="a cannot-annotate answer has no segments"):
        SegmentationAnswer.model_validate({**normal(), "cannotAnnotate": {"reason": SILENCE}})
    problems = validate_answer(SegmentationAnswer.model_validate(cannot("Too boring")), schema)
    assert [(p.path, p.message) for p in problems] == [
        ("cannotAnnotate.reason", "'Too boring' is not a cannot-annotate reason")]
    no_reasons = schema.model_copy(update={"cannot_annotate": None})
    assert [p.path for p in validate_answer(SegmentationAnswer.model_validate(cannot()), no_reasons)] == [
        "cannotAnnotate"]


def test_no_overlap_track_refuses_touching_segments(schema):
    strict = schema.model_copy(deep=True)
    strict.tracks[0].no_overlap = True
    answer = normal()
    answer["segments"].append({"id": "s2", "track": "t1", "start": 3.5, "end": 5.0})
    problems = validate_answer(SegmentationAnswer.model_validate(answer), strict)
    assert [(p.path, p.segment_id) for p in problems] == [("segments[1].start", "s2")]
    assert validate_answer(SegmentationAnswer.model_validate(answer), schema) == []


def test_reaches_the_consolidated_label(schema):
    label = consolidate([("w1", cannot()), ("w2", cannot(SILENCE, cannotAnnotate={"reason": SILENCE, "note": "x"})),
                         ("w3", normal())], schema)
    assert label.status == "ok" and label.valid_worker_count == 3
    assert label.cannot_annotate.reason == SILENCE
    assert label.cannot_annotate.votes == {SILENCE: 2}
    assert label.cannot_annotate.share == pytest.approx(0.667)
    assert [w.answer.cannot_annotate is not None for w in label.workers] == [True, True, False]
    dumped = label.model_dump(by_alias=True)
    assert dumped["cannotAnnotate"]["reason"] == SILENCE
    # A minority (or a tie) does not make the item a cannot-annotate one.
    assert consolidate([("w1", cannot()), ("w2", normal())], schema).cannot_annotate is None
    assert consolidate([("w1", cannot()), ("w2", normal()), ("w3", normal())], schema).cannot_annotate is None
    assert consolidate([("w1", cannot("Wrong language"))], schema).cannot_annotate.reason == "Wrong language"


def flagged_manifest(tmp_path: Path) -> tuple[Path, str]:
    """The call-center fixture with its first item consolidated as cannot-annotate."""
    lines = CALLS.read_text().splitlines()
    first = json.loads(lines[0])
    first["call-labels"]["cannotAnnotate"] = {"reason": SILENCE, "votes": {SILENCE: 2}, "share": 1.0}
    out = tmp_path / "flagged.manifest"
    # The other lines as they are (the fixture has broken lines on purpose).
    out.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    return out, first["interaction-id"]


@pytest.mark.parametrize("mode", ["skip", "keep"])
def test_export_skips_or_keeps(tmp_path, mode):
    manifest, flagged = flagged_manifest(tmp_path)
    out = tmp_path / "o.jsonl"
    summary = export(Storage([MIRROR]), str(manifest), ExportOptions(
        preset="sft-transcription", format="jsonl", out=str(out), cannot_annotate=mode))
    ids = {json.loads(x)["id"].split("/")[0] for x in out.read_text().splitlines()}
    baseline = tmp_path / "base.jsonl"
    export(Storage([MIRROR]), str(CALLS), ExportOptions(preset="sft-transcription", format="jsonl", out=str(baseline)))
    base_ids = {json.loads(x)["id"].split("/")[0] for x in baseline.read_text().splitlines()}
    assert flagged in base_ids
    if mode == "skip":
        assert ids == base_ids - {flagged}
        assert summary.skipped["cannot-annotate"] == 1
    else:
        assert ids == base_ids
        assert "cannot-annotate" not in summary.skipped


def test_cli_option(tmp_path):
    manifest, flagged = flagged_manifest(tmp_path)
    runner = CliRunner()
    base = ["export", "--labels", str(manifest), "--preset", "sft-transcription", "--format", "jsonl",
            "--mirror", MIRROR, "--quiet"]
    kept = runner.invoke(app, [*base, "--out", str(tmp_path / "k.jsonl"), "--cannot-annotate", "keep"])
    assert kept.exit_code == 0, kept.output
    assert flagged in (tmp_path / "k.jsonl").read_text()
    skipped = runner.invoke(app, [*base, "--out", str(tmp_path / "s.jsonl")])
    assert skipped.exit_code == 0, skipped.output
    assert flagged not in (tmp_path / "s.jsonl").read_text()
    bad = runner.invoke(app, [*base, "--out", str(tmp_path / "b.jsonl"), "--cannot-annotate", "maybe"])
    assert bad.exit_code != 0
    assert "--cannot-annotate must be skip or keep" in bad.output
