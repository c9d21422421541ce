"""The data contract: validation rules of the models and the exported JSON Schema."""

import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from toolkit.cli.schema import json_schemas
from toolkit.contract import (
    FeedbackRecord,
    LabelSchema,
    ManifestLine,
    SegmentationAnswer,
    load_label_schema,
    validate_answer,
)
from toolkit.contract.schema import builtin_schema_names

REPO = Path(__file__).resolve().parent.parent


def answer(**overrides):
    data = {
        "schemaVersion": "1.0",
        "labelSchema": "call-center",
        "mediaDuration": 21.0,
        "tracks": [{"id": "t1", "category": "speaker", "label": "Customer"}],
        "segments": [{"id": "s1", "track": "t1", "start": 1.0, "end": 2.5, "text": "hello",
                      "attributes": {"emotion": "Happy"}}],
        "content": {"background_noise": ["None"], "overall_rating": 4},
    }
    data.update(overrides)
    return data


@pytest.fixture(scope="module")
def call_center():
    return load_label_schema("call-center")


def test_valid_answer_has_no_problems(call_center):
    assert validate_answer(SegmentationAnswer.model_validate(answer()), call_center) == []


def test_answer_round_trips_with_camel_case_keys():
    parsed = SegmentationAnswer.model_validate(answer())
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["mediaDuration"] == 21.0 and dumped["segments"][0]["track"] == "t1"
    assert SegmentationAnswer.model_validate(dumped) == parsed


@pytest.mark.parametrize("segment, message", [
    ({"start": 3.0, "end": 2.0}, "must be after start"),
    ({"start": 20.0, "end": 21.5}, "past the end of the media"),
    ({"track": "nope"}, "unknown track"),
    ({"start": -1.0}, "greater than or equal to 0"),
])
def test_structural_rules(segment, message):
    seg = dict(answer()["segments"][0], **segment)
    with pytest.raises(ValidationError, match=message):
        SegmentationAnswer.model_validate(answer(segments=[seg]))


def test_duplicate_ids_rejected():
    seg = answer()["segments"][0]
    with pytest.raises(ValidationError, match="duplicate segment id"):
        SegmentationAnswer.model_validate(answer(segments=[seg, seg]))


def test_schema_rules_name_the_path(call_center):
    bad = SegmentationAnswer.model_validate(answer(
        tracks=[{"id": "t1", "category": "speaker", "label": "Robot"},
                {"id": "t2", "category": "mood", "label": "x"}],
        segments=[{"id": "s1", "track": "t1", "start": 0, "end": 1, "attributes": {"emotion": "Bored", "x": "y"}}],
        content={"overall_rating": 9, "colour": "red"},
    ))
    problems = {p.path: p.message for p in validate_answer(bad, call_center)}
    assert problems == {
        "tracks[0].label": "'Robot' is not a Speaker label",
        "tracks[1].category": "unknown track category 'mood'",
        "segments[0].attributes.x": "unknown segment field 'x'",
        "segments[0].attributes.emotion": "'Bored' is not an option of Emotion",
        "content.colour": "unknown content field 'colour'",
        "content.overall_rating": "rating must be between 1 and 5",
        "content.background_noise": "Background noise is required",
    }


def test_required_segment_field_and_text():
    schema = load_label_schema("tts-quality").model_copy(deep=True)
    schema.segment_text.required = True
    ans = SegmentationAnswer.model_validate(answer(
        labelSchema="tts-quality",
        tracks=[{"id": "p", "category": "pronunciation", "label": "Mispronounced"}],
        segments=[{"id": "s1", "track": "p", "start": 0, "end": 1, "text": "  "}],
        content={"naturalness": 3},
    ))
    problems = {p.path: p.segment_id for p in validate_answer(ans, schema)}
    assert problems == {"segments[0].text": "s1", "segments[0].attributes.severity": "s1"}


def test_segment_fields_and_text_apply_to_the_tracks_they_name():
    """Issue 20: `tracks: [speaker]` on a segment field or the segment text (call-center)."""
    schema = load_label_schema("call-center")
    assert schema.segment_field("emotion").tracks == ["speaker"] and schema.segment_text.tracks == ["speaker"]
    assert [f.name for f in schema.fields_for("speaker")] == ["emotion"] and schema.fields_for("language") == []
    assert schema.text_applies("speaker") and not schema.text_applies("language")
    ok = answer(tracks=[{"id": "t1", "category": "speaker", "label": "Agent"},
                        {"id": "t2", "category": "language", "label": "English"}],
                segments=[{"id": "s1", "track": "t1", "start": 0, "end": 1, "text": "Hi.",
                           "attributes": {"emotion": "Happy"}},
                          {"id": "s2", "track": "t2", "start": 0, "end": 2, "text": "", "attributes": {}}])
    assert validate_answer(SegmentationAnswer.model_validate(ok), schema) == []
    bad = json.loads(json.dumps(ok))
    bad["segments"][1].update(text="Hello", attributes={"emotion": "Happy"})
    problems = {p.path: p.message for p in validate_answer(SegmentationAnswer.model_validate(bad), schema)}
    assert problems == {
        "segments[1].text": "Transcription does not apply to Language segments; clear it",
        "segments[1].attributes.emotion": "Emotion does not apply to Language segments; clear it",
    }
    # required applies only where the field is asked
    strict = schema.model_copy(deep=True)
    strict.segment_fields[0].required = True
    strict.segment_text.required = True
    problems = {p.path for p in validate_answer(SegmentationAnswer.model_validate(ok), strict)}
    assert problems == set()
    ok["segments"][0].update(text="", attributes={})
    problems = {p.path for p in validate_answer(SegmentationAnswer.model_validate(ok), strict)}
    assert problems == {"segments[0].text", "segments[0].attributes.emotion"}


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["segment_fields"][0].update(tracks=["speakers"]),
     "segment field 'emotion': tracks names 'speakers', not a track category of this schema (speaker, language)"),
    (lambda d: d["segment_text"].update(tracks=["lang"]), "segment_text: tracks names 'lang'"),
    (lambda d: d["segment_fields"][0].update(tracks=[]), "tracks"),
    (lambda d: d["segment_fields"][0].update(tracks=["speaker", "speaker"]), "tracks must be unique"),
    (lambda d: d["content_fields"][1].update(tracks=["speaker"]),
     "content field 'overall_rating': 'tracks' only applies to segment fields"),
])
def test_segment_field_tracks_must_name_track_categories(change, message):
    data = load_label_schema("call-center").model_dump(exclude_none=True)
    change(data)
    with pytest.raises(ValidationError, match=re.escape(message)):
        LabelSchema.model_validate(data)


@given(st.lists(st.tuples(st.floats(0, 30, allow_nan=False), st.floats(0, 30, allow_nan=False)), max_size=8),
       st.floats(1, 30, allow_nan=False))
def test_time_rules_property(spans, duration):
    """Whatever the times, an answer is accepted exactly when 0 <= start < end <= duration."""
    segments = [{"id": f"s{i}", "track": "t1", "start": a, "end": b} for i, (a, b) in enumerate(spans)]
    ok = all(0 <= a < b <= duration + 0.001 and b > 0 for a, b in spans)
    try:
        SegmentationAnswer.model_validate(answer(mediaDuration=duration, segments=segments))
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == ok


def test_builtin_schemas_load():
    assert builtin_schema_names() == ["call-center", "tts-compare", "tts-quality", "video-generation"]
    assert load_label_schema("video-generation").media == "video"
    cc = load_label_schema("call-center")
    assert [t.name for t in cc.tracks] == ["speaker", "language"]
    assert cc.track("speaker").labels == ["Customer", "Agent"]


@pytest.mark.parametrize("change, message", [
    ({"tracks": []}, "at least one track category"),
    ({"segment_fields": [{"name": "r", "type": "rating"}]}, "not allowed per segment"),
    ({"content_fields": [{"name": "c", "type": "single_choice"}]}, "needs a non-empty 'options'"),
    ({"content_fields": [{"name": "Bad Name", "type": "text"}]}, "String should match pattern"),
    ({"tracks": [{"name": "a", "labels": ["x", "x"]}]}, "labels must be unique"),
])
def test_label_schema_rejects_mistakes(change, message):
    data = yaml.safe_load((REPO / "toolkit/schemas/call-center.yaml").read_text())
    data.update(change)
    with pytest.raises(ValidationError, match=message):
        LabelSchema.model_validate(data)


def test_feedback_record_keeps_unknown_fields(examples):
    line = (examples / "feedback/processed_feedback.jsonl").read_text(encoding="utf-8").splitlines()[0]
    data = json.loads(line)
    data["upstream_new_field"] = {"a": 1}
    dumped = FeedbackRecord.model_validate(data).model_dump(mode="json")
    assert dumped["upstream_new_field"] == {"a": 1}
    # Known fields round-trip unchanged too (timestamps stay the strings they were).
    assert {k: dumped[k] for k in json.loads(line)} == json.loads(line)


def test_feedback_record_is_strict_about_types():
    with pytest.raises(ValidationError) as info:
        FeedbackRecord.model_validate({"interaction_id": "x", "channel": "voice", "customer_id": 5,
                                       "duration_seconds": "21.0", "created_at": "yesterday"})
    fields = {e["loc"][0] for e in info.value.errors()}
    assert fields == {"customer_id", "duration_seconds", "created_at"}


def test_manifest_line_rejects_dollar_keys_and_non_s3():
    with pytest.raises(ValidationError, match="starting with"):
        ManifestLine.model_validate({"source-ref": "s3://b/k", "media-type": "audio", "interaction-id": "i", "$x": 1})
    with pytest.raises(ValidationError, match="s3://"):
        ManifestLine.model_validate({"source-ref": "/local/k.wav", "media-type": "audio", "interaction-id": "i"})


# Keys that would walk a --mirror directory (or any path built from the key) out of its root.
WALKING_KEYS = ["../../../../etc/passwd", "media/../../x.wav", "./x.wav", "media/./x.wav", "media//x.wav",
                "/etc/passwd", "media/x.wav/", "media/\x00.wav"]


@pytest.mark.parametrize("key", WALKING_KEYS)
def test_s3_keys_that_leave_their_root_are_refused_with_the_field_named(examples, key):
    uri = f"s3://example-feedback-bucket/{key}"
    record = json.loads((examples / "feedback/processed_feedback.jsonl").read_text(encoding="utf-8").splitlines()[0])
    for field in ("media_uri", "transcribe_output_uri"):
        with pytest.raises(ValidationError) as info:
            FeedbackRecord.model_validate(dict(record, **{field: uri}))
        assert [e["loc"] for e in info.value.errors()] == [(field,)]
    line = {"source-ref": "s3://b/a.wav", "media-type": "audio", "interaction-id": "a"}
    for field in ("source-ref", "sidecar-ref", "peaks-ref", "spectrogram-ref"):
        with pytest.raises(ValidationError) as info:
            ManifestLine.model_validate(dict(line, **{field: uri}))
        assert [e["loc"] for e in info.value.errors()] == [(field,)]
    from toolkit.contract.events import AnnotationData, PayloadDataObject, S3Ref

    for model in (S3Ref, AnnotationData, PayloadDataObject):
        with pytest.raises(ValidationError) as info:
            model.model_validate({"s3Uri": uri})
        assert [e["loc"] for e in info.value.errors()] == [("s3Uri",)]


def test_ordinary_s3_keys_and_local_refs_still_pass():
    line = {"media-type": "audio", "interaction-id": "a", "peaks-ref": "peaks/a.peaks.bin.gz",
            "sidecar-ref": "/data/sidecars/a.json"}
    for key in ("media/a b (1).wav", "media/..hidden.wav", "a", "x/y/z...wav", "media/ünï.wav"):
        parsed = ManifestLine.model_validate(dict(line, **{"source-ref": f"s3://my.bucket-1/{key}"}))
        assert parsed.source_ref == f"s3://my.bucket-1/{key}"
    # Local paths (local jobs, previews) stay what they are; only s3:// URIs have S3 key rules.
    assert ManifestLine.model_validate(dict(line, **{"source-ref": "s3://b/a.wav"})).peaks_ref == "peaks/a.peaks.bin.gz"


def test_exported_json_schema_is_current():
    """static/schema/ is generated from the models; regenerate with `gtkit schema export`."""
    for name, text in json_schemas().items():
        path = REPO / "static" / "schema" / name
        assert path.exists(), f"{path} missing: run gtkit schema export"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run gtkit schema export"


def test_json_schema_uses_wire_names():
    schemas = {k: json.loads(v) for k, v in json_schemas().items()}
    assert "source-ref" in schemas["manifest-line.schema.json"]["properties"]
    assert "mediaDuration" in schemas["segmentation-answer.schema.json"]["properties"]


@pytest.mark.parametrize("name", [n for n in builtin_schema_names() if load_label_schema(n).mode == "segment"])
def test_builtin_instructions_say_how_to_add_the_tracks_they_mention(name):
    """Issue 20: a task starts with no track except those pre-segments create, so instructions that
    send the worker to a track say how to add it, with the UI's own words."""
    panels = (Path(__file__).resolve().parent.parent / "static" / "js" / "panels.js").read_text()
    assert "text: 'Add track'" in panels and "h3', { id: 'gtkit-tracks-h', text: 'Tracks' }" in panels
    schema = load_label_schema(name)
    text = " ".join(schema.instructions.split())
    assert "Tracks panel" in text and "Add track" in text
    # The example track named is one the picker offers ("Category: Label").
    offered = {f"{c.display}: {label}" for c in schema.tracks for label in c.labels}
    assert any(f'"{o}"' in text for o in offered)
