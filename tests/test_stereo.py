"""Issue 15: stereo calls - peaks keep both channels, channel-identification turns per channel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.contract.peaks import parse_peaks
from toolkit.ingest.peaks import decode_peaks
from toolkit.ingest.transcribe import speaker_turns


def word(ch: str, start: float, end: float, text: str, top_level_label: bool = True) -> dict:
    item = {"type": "pronunciation", "start_time": str(start), "end_time": str(end),
            "alternatives": [{"confidence": "0.9", "content": text}]}
    if top_level_label:
        item["channel_label"] = ch
    return item


AGENT = [("ch_0", 0.5, 0.9, "thanks"), ("ch_0", 0.95, 1.3, "for"), ("ch_0", 1.35, 1.8, "calling"),
         ("ch_0", 4.0, 4.4, "sure")]          # a pause of 2.2 s: a second turn
CUSTOMER = [("ch_1", 1.2, 1.6, "hi"), ("ch_1", 1.7, 2.4, "there")]  # talks over the agent


def channel_doc(top_level_labels: bool) -> dict:
    channels = [{"channel_label": ch, "items": [word(c, a, b, t) for c, a, b, t in words]}
                for ch, words in (("ch_0", AGENT), ("ch_1", CUSTOMER))]
    items = sorted((word(c, a, b, t, top_level_labels) for c, a, b, t in AGENT + CUSTOMER),
                   key=lambda i: float(i["start_time"]))
    return {"results": {"transcripts": [{"transcript": "..."}], "channel_labels": {"channels": channels,
                                                                                   "number_of_channels": 2},
                        "items": items}}


@pytest.mark.parametrize("top_level_labels", [True, False])
def test_channel_identification_turns_per_channel_may_overlap(top_level_labels):
    turns = speaker_turns(channel_doc(top_level_labels))
    got = [(t.speaker, t.start, t.end, t.text) for t in turns]
    assert got == [("ch_0", 0.5, 1.8, "thanks for calling"), ("ch_1", 1.2, 2.4, "hi there"),
                   ("ch_0", 4.0, 4.4, "sure")]


@pytest.fixture
def stereo_wav(tmp_path) -> Path:
    if not shutil.which("ffmpeg"):  # .ci/run installs it: there a missing ffmpeg is a failure
        (pytest.fail if os.environ.get("CI") else pytest.skip)("ffmpeg not installed")
    path = tmp_path / "stereo.wav"
    # Left: a loud tone; right: near silence.
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "aevalsrc=0.8*sin(2*PI*300*t)|0.01*sin(2*PI*300*t):s=8000:d=2", str(path)], check=True)
    return path


def test_peaks_keep_both_channels_of_a_stereo_call(stereo_wav):
    both = decode_peaks(stereo_wav, 100, channels=0)
    assert both.channels == 2
    left, right = both.to_file().data
    assert max(left) > 0.7 and max(right) < 0.05
    assert decode_peaks(stereo_wav, 100, channels=1).channels == 1


def test_manifest_build_stereo_peaks_and_channel_presegments(stereo_wav, tmp_path):
    (tmp_path / "t.json").write_text(json.dumps(channel_doc(True)))
    feedback = tmp_path / "f.jsonl"
    feedback.write_text(json.dumps({
        "interaction_id": "stereo-1", "channel": "voice", "media_uri": "s3://b/stereo.wav", "media_format": "wav",
        "duration_seconds": 2.0, "transcribe_output_uri": "s3://b/t.json",
        "speaker_roles": {"ch_0": "agent", "ch_1": "customer"}}) + "\n")
    out = tmp_path / "m.jsonl"
    result = CliRunner().invoke(app, ["manifest", "build", str(feedback), "--out", str(out), "--mirror",
                                      f"s3://b/={tmp_path}", "--peaks", str(tmp_path / "peaks"), "--quiet"])
    assert result.exit_code == 0, result.output
    line = json.loads(out.read_text())
    assert parse_peaks(Path(line["peaks-ref"]).read_bytes()).channels == 2
    pre = [(p["label"], p["channel"], p["start"]) for p in line["pre-segments"]]
    assert pre == [("Agent", 0, 0.5), ("Customer", 1, 1.2)]  # the 4.0 s turn is past duration-seconds
