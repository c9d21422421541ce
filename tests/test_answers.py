"""toolkit.labeling.answers: answerContent (gtkit or aws-samples format) -> SegmentationAnswer."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from toolkit.contract import ANSWER_FIELD, load_label_schema
from toolkit.labeling.answers import (
    AnswerFormatError,
    from_aws_sample,
    load_answer_content,
    parse_answer,
    worker_answer,
)


@pytest.fixture(scope="module")
def schema():
    return load_label_schema("call-center")


def our_answer(**overrides) -> dict:
    answer = {"mediaDuration": 21.0,
              "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}],
              "segments": [{"id": "s1", "track": "t1", "start": 0.5, "end": 3.0, "text": "hello",
                            "attributes": {"emotion": "Happy"}}],
              "content": {"background_noise": ["None"], "overall_rating": 4}}
    answer.update(overrides)
    return answer


# The answerContent the public aws-samples template posts (audio-index.html + audiovideo-wavesurfer.js).
AWS_SAMPLE_TAGDATA = {
    "categories": {"language": ["English", "Spanish"], "speaker": ["Customer", "Representative"]},
    "streams": {
        "speaker": [
            {"id": "Representative", "start": 0.4, "end": 3.6, "text": "Northwind support.", "emotion": "Happy"},
            {"id": "Customer", "start": 3.9, "end": 8.25, "text": "My order is late.", "emotion": "angry"},
        ],
        "language": [{"id": "English", "start": 0.4, "end": 8.25, "text": "", "emotion": ""}],
    },
    "startTimestamp": 1730800000000, "startUTCTime": "Tue, 05 Nov 2024 10:00:00 GMT",
    "endTimestamp": 1730800090000, "endUTCTime": "Tue, 05 Nov 2024 10:01:30 GMT", "elapsedTime": 90000,
}
AWS_SAMPLE_CONTENT = {
    "annotations": json.dumps(AWS_SAMPLE_TAGDATA),
    "backgroundNoise": {"traffic": False, "music": True, "ambient": False},
    "rate": {"1": False, "2": False, "3": False, "4": True, "5": False},
    "speechNonSpeech": {"speech": True, "non-speech": False},
    "textTranslationFinal": "Northwind support. My order is late.",
}


def test_gtkit_format_as_string_object_and_wrapped_list(schema):
    content = {ANSWER_FIELD: json.dumps(our_answer()), "content-summary": "ignored copy"}
    for form in (content, json.dumps(content), json.dumps([content])):
        answer = parse_answer(form, schema=schema)
        assert answer.segments[0].start == 0.5
        assert answer.content["overall_rating"] == 4


def test_bad_json_and_unknown_format_name_the_problem_without_echoing_text():
    with pytest.raises(AnswerFormatError, match="not valid JSON"):
        load_answer_content('{"answer": "secret transcript')
    with pytest.raises(AnswerFormatError, match="'answer' is not valid JSON"):
        parse_answer({ANSWER_FIELD: "{secret transcript"})
    with pytest.raises(AnswerFormatError, match="no 'answer' field") as info:
        parse_answer({"foo": "secret transcript"})
    assert "secret transcript" not in str(info.value)
    with pytest.raises(ValidationError):
        parse_answer({ANSWER_FIELD: json.dumps(our_answer(mediaDuration=-1))})


def test_worker_answer_records_schema_problems_and_keeps_answer(schema):
    bad = our_answer(content={"overall_rating": 9})
    w = worker_answer("w1", {ANSWER_FIELD: json.dumps(bad)}, schema=schema)
    assert not w.valid and w.answer is not None
    assert any("overall_rating" in p for p in w.problems)
    assert any("background_noise" in p and "required" in p for p in w.problems)
    broken = worker_answer("w2", "{nope", schema=schema)
    assert not broken.valid and broken.raw == "{nope" and broken.answer is None
    good = worker_answer("w3", {ANSWER_FIELD: json.dumps(our_answer())}, schema=schema)
    assert good.valid and good.problems == []


def test_aws_sample_format_maps_onto_our_model(schema):
    answer = parse_answer(json.dumps(AWS_SAMPLE_CONTENT), schema=schema, media_duration=21.0,
                          interaction_id="int-0001")
    tracks = {t.id: (t.category, t.label) for t in answer.tracks}
    assert sorted(tracks.values()) == [("language", "English"), ("speaker", "Agent"), ("speaker", "Customer")]
    by_label = {tracks[s.track][1]: s for s in answer.segments}
    assert by_label["Agent"].start == 0.4 and by_label["Agent"].end == 3.6
    assert by_label["Agent"].text == "Northwind support."
    assert by_label["Agent"].attributes == {"emotion": "Happy"}
    assert by_label["Customer"].attributes == {"emotion": "Angry"}  # matched case-insensitively
    assert by_label["English"].attributes == {}
    assert answer.media_duration == 21.0 and answer.interaction_id == "int-0001"
    # fields the schema defines are mapped; the others stay only in the raw submission
    assert answer.content == {"background_noise": ["Music"], "overall_rating": 4}
    w = worker_answer("w1", AWS_SAMPLE_CONTENT, schema=schema, media_duration=21.0)
    assert w.valid, w.problems
    assert w.raw == AWS_SAMPLE_CONTENT  # migrated answers keep the original for audit


def test_aws_sample_without_schema_keeps_every_field_and_infers_duration():
    answer = from_aws_sample(AWS_SAMPLE_CONTENT)
    assert answer.media_duration == 8.25  # last segment end, no media length given
    assert answer.content["overall_rating"] == 4
    assert answer.content["background_noise"] == ["music"]
    assert answer.content["speech_non_speech"] == ["speech"]
    assert answer.content["transcription"].startswith("Northwind")
    labels = sorted(t.label for t in answer.tracks)
    assert labels == ["Agent", "Customer", "English"]


def test_aws_sample_bad_streams_are_format_errors():
    with pytest.raises(AnswerFormatError, match="streams"):
        parse_answer({"annotations": json.dumps({"streams": ["x"]})})
    with pytest.raises(AnswerFormatError, match="must be a list"):
        parse_answer({"annotations": json.dumps({"streams": {"speaker": {"id": "A"}}})})
    with pytest.raises(ValidationError):  # end before start
        parse_answer({"annotations": json.dumps({"streams": {"speaker": [{"id": "A", "start": 5, "end": 2}]}})})
