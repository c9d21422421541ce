"""Precomputed spectrogram in peaks mode (`spectrogram-ref`): the toggle works without decoding the
media, the tone's band lights up where it should, and the drawing stays aligned with the waveform
when zoomed and scrolled (checked against the waveform's own on-screen geometry)."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest
from ui_helpers import MEDIA, wait_ready, wait_until

from toolkit.contract import load_label_schema
from toolkit.ingest.peaks import compute_peaks, write_peaks
from toolkit.ingest.spectrogram import compute_spectrogram, write_spectrogram
from toolkit.service.portal import PortalServer, PreviewSource, create_app
from toolkit.storage import Storage

pytestmark = pytest.mark.browser

RATE = 16000
DURATION = 30.0
TONE = (10.0, 20.0)  # seconds
TONE_HZ = 1060.0  # the middle of band 8 of 64 (125 Hz each, up to 8 kHz)


def _tone_wav(path) -> None:
    t = np.arange(int(RATE * DURATION)) / RATE
    x = 0.5 * np.sin(2 * np.pi * TONE_HZ * t) * ((t >= TONE[0]) & (t < TONE[1]))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((x * 32767).astype("<i2").tobytes())


@pytest.fixture
def tone_portal(tmp_path, examples_dir):
    media = tmp_path / "media"
    media.mkdir()
    _tone_wav(media / "tone.wav")
    storage = Storage()
    write_peaks(compute_peaks(media / "tone.wav"), str(media / "tone.peaks.json.gz"), storage)
    spec = compute_spectrogram(media / "tone.wav")
    write_spectrogram(spec, str(media / "tone.spectrogram.bin.gz"), storage)
    line = {"source-ref": "s3://tone-bucket/tone.wav", "media-type": "audio", "interaction-id": "tone-1",
            "duration-seconds": DURATION, "peaks-ref": "s3://tone-bucket/tone.peaks.json.gz",
            "spectrogram-ref": "s3://tone-bucket/tone.spectrogram.bin.gz"}
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    source = PreviewSource(manifest, load_label_schema("call-center"), out=tmp_path / "out",
                           storage=Storage([f"s3://tone-bucket/={media}"]))
    server = PortalServer(create_app(source)).start()
    yield server.url, spec
    server.stop()


GEOMETRY = """(bands) => {
  const ws = window.gtkit.player.ws
  const c = document.querySelector('[data-role=spectrogram-canvas]')
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
  const rows = {}
  for (const band of bands) {
    const y = c.height - 1 - band
    const row = []
    for (let x = 0; x < c.width; x++) { const i = (y * c.width + x) * 4; row.push(px[i] + px[i + 1] + px[i + 2]) }
    rows[band] = row
  }
  const wr = ws.getWrapper().getBoundingClientRect()
  const cr = c.getBoundingClientRect()
  const sr = ws.getWrapper().parentElement.getBoundingClientRect()
  return { width: c.width, height: c.height, cssLeft: cr.left, cssWidth: cr.width, wrapLeft: wr.left,
           wrapWidth: wr.width, viewLeft: sr.left, viewWidth: sr.width, duration: ws.getDuration(), rows }
}"""


def _time_of_column(g: dict, x: float) -> float:
    """Media time under canvas column x, from the waveform's on-screen geometry (not our mapping)."""
    client_x = g["cssLeft"] + (x + 0.5) * g["cssWidth"] / g["width"]
    return (client_x - g["wrapLeft"]) / g["wrapWidth"] * g["duration"]


def _edges(row: list[int], threshold: int = 300) -> tuple[int, int]:
    lit = [x for x, v in enumerate(row) if v > threshold]
    assert lit, "the tone band is not drawn"
    return lit[0], lit[-1]


def test_precomputed_spectrogram_in_peaks_mode(tone_portal, open_page):
    url, spec = tone_portal
    page, probe = open_page(type("P", (), {"url": url})())
    responses: dict[str, str | None] = {}
    page.on("response", lambda r: responses.__setitem__(r.url.rsplit("/", 1)[-1], r.headers.get("content-encoding")))
    page.goto(f"{url}/task/0")
    wait_ready(page)
    assert page.evaluate("window.gtkit.player.peaksMode") is True
    button = page.locator("[data-action=toggle-spectrogram]")
    assert button.is_enabled() and button.get_attribute("aria-pressed") == "false"
    assert page.locator(".gtkit-spectro-note").is_hidden()
    assert "tone.spectrogram.bin.gz" not in responses  # nothing downloaded until asked for

    button.click()
    wait_until(page, "window.gtkit.player.spectrogramDrawnAt > 0")
    assert responses["tone.spectrogram.bin.gz"] == "gzip"
    assert button.get_attribute("aria-pressed") == "true"
    bands = [8, 30]
    g = page.evaluate(GEOMETRY, bands)
    assert g["height"] == spec.header.bins
    assert abs(g["cssLeft"] - g["viewLeft"]) < 1 and abs(g["cssWidth"] - g["viewWidth"]) < 2  # under the waveform
    first, last = _edges(g["rows"]["8"])
    frame = 1 / spec.header.frames_per_second
    px = g["duration"] / g["wrapWidth"]  # seconds per CSS pixel at fit zoom
    assert _time_of_column(g, first) == pytest.approx(TONE[0], abs=frame + 2 * px)
    assert _time_of_column(g, last) == pytest.approx(TONE[1], abs=frame + 2 * px)
    # Far from the tone's band: dark, except the broadband click of its abrupt start and stop.
    splatter = [_time_of_column(g, x) for x, v in enumerate(g["rows"]["30"]) if v > 100]
    assert all(min(abs(t - TONE[0]), abs(t - TONE[1])) < 0.3 for t in splatter)
    assert page.locator(".gtkit-spectrogram-top").text_content() == "8 kHz"

    # Zoom in and scroll so the tone's onset is mid-screen: still at 10.0 s on the waveform's axis.
    page.evaluate("window.gtkit.player.zoomTo(200)")
    page.evaluate("window.gtkit.wavesurfer.setScrollTime(7)")
    wait_until(page, "(() => { const v = window.gtkit.player.spectrogram.view;"
                           " return v && Math.abs(v.start - 7) < 0.05 && v.end - v.start < 10 })()")
    page.wait_for_timeout(100)
    g = page.evaluate(GEOMETRY, bands)
    assert g["wrapWidth"] == pytest.approx(DURATION * 200, rel=0.01)
    first, _ = _edges(g["rows"]["8"])
    assert first > 100  # the silence before the tone is on screen, dark
    assert _time_of_column(g, first) == pytest.approx(TONE[0], abs=frame + 0.02)
    # ...and at the tone's end.
    page.evaluate("window.gtkit.wavesurfer.setScrollTime(17)")
    wait_until(page, "Math.abs(window.gtkit.player.spectrogram.view.start - 17) < 0.05")
    g = page.evaluate(GEOMETRY, bands)
    _, last = _edges(g["rows"]["8"])
    assert last < g["width"] - 100
    assert _time_of_column(g, last) == pytest.approx(TONE[1], abs=frame + 0.02)

    # Off and on again: the download is reused, the drawing comes back.
    button.click()
    assert page.locator("[data-role=spectrogram-canvas]").count() == 0
    button.click()
    wait_until(page, "window.gtkit.player.spectrogramDrawnAt > 0")
    assert list(responses).count("tone.spectrogram.bin.gz") == 1
    # The S shortcut toggles it too, and the button follows.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("s")
    assert page.locator("[data-role=spectrogram-canvas]").count() == 0
    assert button.get_attribute("aria-pressed") == "false"
    page.keyboard.press("s")
    wait_until(page, "window.gtkit.player.spectrogramDrawnAt > 0")
    assert button.get_attribute("aria-pressed") == "true"
    assert probe.errors == [] and probe.dialogs == []


def test_peaks_mode_without_spectrogram_keeps_the_disabled_button(portal_factory, open_page, peaks_dir):
    portal = portal_factory("call-center", [
        {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-0001",
         "duration-seconds": 21.0, "peaks-ref": str(peaks_dir / "call_001.wav.peaks.json")}])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    button = page.locator("[data-action=toggle-spectrogram]")
    assert button.is_disabled()
    assert "precomputed peaks" in (button.get_attribute("title") or "")
    assert page.locator(".gtkit-spectro-note").is_visible()
    assert probe.errors == []


def test_viewing_preferences_follow_the_worker(tone_portal, open_page):
    """Spectrogram on and the playback rate are the worker's preferences: after a reload (or on
    the next task) the spectrogram comes back by itself and the rate is kept; turning it off sticks."""
    url, _ = tone_portal
    page, probe = open_page(type("P", (), {"url": url})())
    page.goto(f"{url}/task/0")
    wait_ready(page)
    assert page.evaluate("window.gtkit.player.spectrogram") is None and page.evaluate("window.gtkit.player.rate") == 1
    page.locator("[data-role=rate]").select_option("1.5")
    page.locator("[data-action=toggle-spectrogram]").click()
    wait_until(page, "window.gtkit.player.spectrogramDrawnAt > 0")

    page.reload()
    wait_ready(page)
    wait_until(page, "window.gtkit.player.spectrogramDrawnAt > 0")  # shown without a click
    assert page.locator("[data-action=toggle-spectrogram]").get_attribute("aria-pressed") == "true"
    assert page.evaluate("window.gtkit.player.rate") == 1.5
    assert page.evaluate("window.gtkit.player.media.playbackRate") == 1.5
    assert page.locator("[data-role=rate]").input_value() == "1.5"

    page.locator("[data-action=toggle-spectrogram]").click()
    page.reload()
    wait_ready(page)
    page.wait_for_timeout(300)
    assert page.evaluate("window.gtkit.player.spectrogram") is None
    assert page.locator("[data-role=spectrogram-canvas]").count() == 0
    assert probe.errors == []
