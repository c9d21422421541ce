"""WebVTT exports read by webvtt-py (strict) and by the browser's own parser (a <track> element of a
<video>, as the worker UI would load them): same cues, ids, timings, voices and texts as the
records, also for labels and ids with line terminators, cue-breaking text and items without spans."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from toolkit.export import ExportOptions, export
from toolkit.export.formats.webvtt import render
from toolkit.storage import Storage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "export"
MIRROR = f"s3://example-labels-bucket/={FIXTURES}"
CALLS = FIXTURES / "call_center.output.manifest"
EDGE = FIXTURES / "edge.output.manifest"
PRESETS = ["sft-transcription", "reward-segments"]
MANIFESTS = pytest.mark.parametrize("manifest", [CALLS, EDGE], ids=["calls", "edge"])
Cue = tuple[str, float, float, str, str]  # id, start, end, voice, text (whitespace-normalised)


def words(text: str) -> str:
    return " ".join(text.split())


def export_both(tmp_path: Path, manifest: Path, preset: str) -> tuple[Path, dict[str, list[Cue]], int]:
    """The WebVTT export and the cues its jsonl records say it should hold, per interaction id."""
    storage = Storage([MIRROR])
    summary = export(storage, str(manifest), ExportOptions(preset=preset, format="webvtt", out=str(tmp_path / "vtt")))
    export(storage, str(manifest), ExportOptions(preset=preset, format="jsonl", out=str(tmp_path / "r.jsonl")))
    expected: dict[str, list[Cue]] = {}
    for line in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if preset == "reward-segments":
            cues = [(str(i + 1), s["start"], s["end"], s["label"], s["text"] or s["label"])
                    for i, s in enumerate(rec["spans"])]
        else:
            m = rec["media"]
            cues = [(rec["lineage"]["segment_id"], m["start"], m["end"], m["label"], rec["completion"])]
        expected.setdefault(rec["lineage"]["interaction_id"], []).extend(
            (words(c), s, e, words(v), words(t)) for c, s, e, v, t in cues if e > s)
    return tmp_path / "vtt", {k: sorted(v, key=lambda c: (c[1], c[2])) for k, v in expected.items()}, summary.written


def vtt_name(interaction_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", interaction_id) + ".vtt"


def seconds(timing: str) -> float:
    h, m, s = timing.split(":")
    return round(int(h) * 3600 + int(m) * 60 + float(s), 3)


@pytest.mark.parametrize("preset", PRESETS)
@MANIFESTS
def test_webvtt_parses_in_webvtt_py(tmp_path, preset, manifest):
    import webvtt

    out, expected, written = export_both(tmp_path, manifest, preset)
    assert sorted(p.name for p in out.iterdir()) == sorted(vtt_name(i) for i in expected)
    assert written == len(expected)
    for iid, cues in expected.items():
        vtt = webvtt.read(str(out / vtt_name(iid)), strict=True)
        got = [(words(c.identifier or ""), seconds(c.start), seconds(c.end), words(c.voice or ""),
                words(html.unescape(c.text))) for c in vtt.captions]
        assert got == cues, iid
    if manifest == EDGE and preset == "reward-segments":
        assert expected["int-edge-2"] == []  # an item without spans: a file without any cue, still valid


def test_render_keeps_every_line_terminator_out_of_single_line_fields():
    import webvtt

    text = render("a\rb\nc\u2028d", {"interaction_id": "a\rb"}, [
        {"id": "x\r\ny", "start": 0.0, "end": 1.0, "track": "t\r\rk", "label": "L\r\r", "text": "t\r\r\rx"}])
    vtt = webvtt.from_string(text, strict=True)
    assert [(words(c.identifier), words(c.voice), words(c.text)) for c in vtt.captions] == [("x y", "L", "t x")]
    assert "\r" not in text and "\u2028" not in text
    assert text.split("\n")[0] == "WEBVTT - a b c d"


READ_TRACK = """async (text) => {
  const video = document.createElement('video');
  const track = document.createElement('track');
  track.kind = 'metadata';
  video.appendChild(track);
  document.body.appendChild(video);
  const loaded = new Promise((resolve) => {
    track.addEventListener('load', () => resolve('load'));
    track.addEventListener('error', () => resolve('error'));
  });
  track.src = URL.createObjectURL(new Blob([text], {type: 'text/vtt'}));
  track.track.mode = 'hidden';
  const how = await loaded;
  const cues = Array.from(track.track.cues || []).map((cue) => {
    const html = cue.getCueAsHTML();
    const voice = html.querySelector ? html.querySelector('[title]') : null;
    return [cue.id, cue.startTime, cue.endTime, voice ? voice.title : '', html.textContent];
  });
  video.remove();
  return {how, cues};
}"""


@pytest.mark.browser
@pytest.mark.parametrize("preset", PRESETS)
@MANIFESTS
def test_webvtt_parses_in_the_browser(browser, tmp_path, preset, manifest):
    out, expected, _ = export_both(tmp_path, manifest, preset)
    page = browser.new_page()
    try:
        page.set_content("<!doctype html><html><body></body></html>")
        for iid, cues in expected.items():
            result = page.evaluate(READ_TRACK, (out / vtt_name(iid)).read_text(encoding="utf-8"))
            assert result["how"] == "load", iid
            got = [(words(c), round(s, 3), round(e, 3), words(v), words(t)) for c, s, e, v, t in result["cues"]]
            # The browser orders cues by start time, then by end time descending.
            assert sorted(got, key=lambda c: (c[1], c[2])) == cues, iid
        assert page.evaluate(READ_TRACK, "not a WebVTT file\n")["how"] == "error"  # the check can fail
    finally:
        page.close()
