import json

import pytest

from toolkit.ingest.transcribe import TranscribeError, speaker_turns


def load(examples, name):
    return json.loads((examples / "transcribe" / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["call_001", "call_002", "call_003", "video_001"])
def test_turn_boundaries_match_speaker_label_segments(examples, name):
    doc = load(examples, name)
    expected = sorted((s["speaker_label"], float(s["start_time"]), float(s["end_time"]))
                      for s in doc["results"]["speaker_labels"]["segments"])
    got = sorted((t.speaker, t.start, t.end) for t in speaker_turns(doc))
    assert got == expected


@pytest.mark.parametrize("name", ["call_001", "call_002", "call_003"])
def test_turn_text_is_the_words_of_the_turn(examples, name):
    """Transcribe's own audio_segments carry the same text per turn: an independent check."""
    doc = load(examples, name)
    expected = [s["transcript"] for s in doc["results"]["audio_segments"]]
    assert [t.text for t in speaker_turns(doc)] == expected


def test_overlap_error_keeps_transcribe_attribution(examples):
    turns = speaker_turns(load(examples, "call_003"))
    agent = next(t for t in turns if t.start == 19.53)
    customer = next(t for t in turns if t.speaker == "spk_1" and t.start > 26)
    assert agent.text.endswith("restarting the? Yes,") and agent.end == 25.999
    assert customer.start == 26.174 and customer.text == "I already did that twice."


def test_items_grouped_by_speaker_without_segments():
    doc = {"results": {"items": [
        {"type": "pronunciation", "start_time": "0.5", "end_time": "0.9", "speaker_label": "spk_0",
         "alternatives": [{"content": "Hello", "confidence": "0.9"}]},
        {"type": "punctuation", "alternatives": [{"content": ".", "confidence": "0.0"}]},
        {"type": "pronunciation", "start_time": "1.2", "end_time": "1.5", "speaker_label": "spk_1",
         "alternatives": [{"content": "Hi", "confidence": "0.9"}]},
        {"type": "pronunciation", "start_time": "1.6", "end_time": "2.0", "speaker_label": "spk_1",
         "alternatives": [{"content": "there", "confidence": "0.9"}]},
        {"type": "punctuation", "alternatives": [{"content": "!", "confidence": "0.0"}]},
    ]}}
    turns = speaker_turns(doc)
    assert [(t.speaker, t.start, t.end, t.text) for t in turns] == [
        ("spk_0", 0.5, 0.9, "Hello."), ("spk_1", 1.2, 2.0, "Hi there!")]


def test_undiarized_output_gives_no_turns():
    doc = {"results": {"items": [{"type": "pronunciation", "start_time": "0.1", "end_time": "0.2",
                                  "alternatives": [{"content": "hi"}]}]}}
    assert speaker_turns(doc) == []


@pytest.mark.parametrize("doc, field", [
    ({"nope": 1}, "results"),
    ({"results": {"items": [{"type": "pronunciation", "start_time": "x", "end_time": "1",
                             "alternatives": [{"content": "a"}]}]}}, "results.items[0].start_time"),
    ({"results": {"items": [], "speaker_labels": {"segments": [
        {"speaker_label": "spk_0", "start_time": "2", "end_time": "1"}]}}}, "speaker_labels.segments[0]"),
])
def test_malformed_output_names_the_field(doc, field):
    with pytest.raises(TranscribeError, match=field.replace("[", r"\[").replace("]", r"\]")):
        speaker_turns(doc)
