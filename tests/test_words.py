"""Issue 15: Transcribe's word timings kept in the pre-segments, within the line / sidecar rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract import PreSegment
from toolkit.ingest.transcribe import speaker_turns

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MIRROR = f"s3://example-feedback-bucket/={EXAMPLES}"


def test_turns_carry_their_words_with_punctuation_attached():
    doc = json.loads((EXAMPLES / "transcribe" / "call_001.json").read_text())
    turns = speaker_turns(doc)
    first = turns[0]
    assert first.words[:2] == ((0.4, 0.919, "Northwind"), (0.937, 1.451, "support,"))
    assert " ".join(w[2] for w in first.words) == first.text
    for turn in turns:
        assert all(a <= b for a, b, _ in turn.words)
        assert [w[0] for w in turn.words] == sorted(w[0] for w in turn.words)


def test_presegment_words_must_lie_in_the_segment():
    PreSegment(id="p", track="speaker", label="Agent", start=1, end=2, words=[(1.0, 1.5, "a"), (1.5, 2.0005, "b")])
    with pytest.raises(ValidationError, match=r"words\[1\]: \[1.9, 2.5\] is not within the segment"):
        PreSegment(id="p", track="speaker", label="Agent", start=1, end=2, words=[(1, 1.5, "a"), (1.9, 2.5, "b")])


def build(tmp_path: Path, *extra: str) -> list[dict]:
    out = tmp_path / "m.jsonl"
    result = CliRunner().invoke(app, ["manifest", "build", str(EXAMPLES / "feedback" / "processed_feedback.jsonl"),
                                      "--out", str(out), "--mirror", MIRROR, "--quiet", *extra])
    assert result.exit_code == 0, result.output
    return [json.loads(x) for x in out.read_text().splitlines()]


def test_manifest_build_keeps_words_unless_told_not_to(tmp_path):
    lines = build(tmp_path)
    pre = lines[0]["pre-segments"]
    assert all(p["words"] for p in pre)
    for p in pre:
        assert p["start"] <= p["words"][0][0] and p["words"][-1][1] <= p["end"]
    plain = build(tmp_path, "--no-words")
    assert all("words" not in p for p in plain[0]["pre-segments"])
    assert len(json.dumps(plain[0])) < len(json.dumps(lines[0]))
