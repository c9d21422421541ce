"""Issue 15: a stereo call - both channels' peaks, one waveform per channel on demand, and the
channel-identified pre-segments on the lane over their channel."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from test_worker_ui import answer
from ui_helpers import MEDIA, wait_ready, wait_until

from toolkit.contract.peaks import peaks_json
from toolkit.ingest.peaks import compute_peaks

pytestmark = pytest.mark.browser


@pytest.fixture
def stereo_peaks(tmp_path):
    if not shutil.which("ffmpeg"):
        pytest.fail("ffmpeg not installed")
    wav = tmp_path / "stereo.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "aevalsrc=0.8*sin(2*PI*300*t)|0.05*sin(2*PI*300*t):s=8000:d=21", str(wav)], check=True)
    path = tmp_path / "stereo.peaks.json"
    path.write_bytes(peaks_json(compute_peaks(wav, channels=0)))
    return path


def test_stereo_call(portal_factory, open_page, stereo_peaks):
    pre = [{"id": "p1", "track": "speaker", "label": "Customer", "channel": 1, "start": 0.5, "end": 3.0, "text": "hi"},
           {"id": "p2", "track": "speaker", "label": "Agent", "channel": 0, "start": 3.5, "end": 6.0, "text": "hello"}]
    portal = portal_factory("call-center", [{
        "source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-stereo",
        "duration-seconds": 21.0, "peaks-ref": str(stereo_peaks), "pre-segments": pre}])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    assert page.evaluate("window.gtkit.player.channelCount") == 2
    # Channel 0's track is the first lane (the top), though the customer speaks first.
    assert [t["label"] for t in answer(page)["tracks"]] == ["Agent", "Customer"]
    button = page.locator("[data-action=toggle-channels]")
    assert button.is_visible() and button.get_attribute("aria-pressed") == "false"
    height = page.evaluate("window.gtkit.wavesurfer.getWrapper().getBoundingClientRect().height")
    button.click()
    wait_until(page, "document.querySelector('[data-action=toggle-channels]')"
                           ".getAttribute('aria-pressed') === 'true'")
    assert page.evaluate("window.gtkit.wavesurfer.options.splitChannels.length") == 2
    page.wait_for_timeout(200)
    split_height = page.evaluate("window.gtkit.wavesurfer.getWrapper().getBoundingClientRect().height")
    assert split_height == pytest.approx(height, abs=4), "the same total height: lanes stay over their channel"
    button.click()
    wait_until(page, "!window.gtkit.wavesurfer.options.splitChannels")
    assert probe.errors == []
