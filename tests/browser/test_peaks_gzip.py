"""Gzip peaks, binary (`gtkit manifest build --peaks` writes `<name>.peaks.bin.gz`) or JSON
(`.peaks.json.gz`): served with `Content-Encoding: gzip`, as S3 serves them, the browser's fetch()
decodes them transparently, in the blob worker main.js starts and in the main-thread fallback, and
the UI draws those very peaks (int16 steps of the binary file: within 1e-4).
"""

from __future__ import annotations

import pytest
from ui_helpers import MEDIA, wait_ready

from toolkit.ingest.peaks import compute_peaks, write_peaks
from toolkit.storage import Storage

pytestmark = pytest.mark.browser

# An unusual rate, so the drawn peaks are recognisably these and not decoded from the media.
RATE = 37


@pytest.mark.parametrize(("name", "content_type"), [("call_001.peaks.bin.gz", "application/octet-stream"),
                                                   ("call_001.peaks.json.gz", "application/json")])
def test_ui_draws_from_gzip_peaks(portal_factory, open_page, examples_dir, tmp_path, name, content_type):
    peaks = compute_peaks(examples_dir / "media" / "call_001.wav", peaks_per_second=RATE)
    target = tmp_path / name
    assert write_peaks(peaks, str(target), Storage()) is True
    portal = portal_factory("call-center", [
        {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-0001",
         "duration-seconds": 21.0, "peaks-ref": str(target)}])
    page, probe = open_page(portal)
    encodings: dict[str, tuple[str | None, str | None]] = {}
    page.on("response", lambda r: encodings.__setitem__(
        r.url, (r.headers.get("content-encoding"), r.headers.get("content-type"))) if r.url.endswith(name) else None)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)

    assert list(encodings.values()) == [("gzip", content_type)]  # the worker's download, compressed
    assert page.evaluate("window.gtkit.player.peaksMode") is True
    assert page.evaluate("window.gtkit.timings.peaks") > 0  # peaks arrived (no fallback to decoding)
    assert page.locator("[data-role=notice]").is_hidden()
    assert page.locator("[data-role=media-error]").is_hidden()
    drawn = page.evaluate("""() => {
        const d = window.gtkit.wavesurfer.getDecodedData()
        return { duration: d.duration, values: Array.from(d.getChannelData(0)) }
    }""")
    assert drawn["duration"] == pytest.approx(peaks.duration)
    assert drawn["values"] == pytest.approx(peaks.data[0], abs=1e-4)

    # The main-thread fallback (no worker allowed) decodes it the same way.
    url = page.evaluate("document.getElementById('gtkit-app').dataset.peaksUrl")
    fallback = page.evaluate("""async (url) => {
        const { fetchPeaks } = await import('/assets/js/player.js')
        const p = await fetchPeaks(url)
        return { duration: p.duration, rate: p.peaksPerSecond, n: p.peaks[0].length,
                 first: Array.from(p.peaks[0].slice(0, 50)) }
    }""", url)
    assert fallback["duration"] == pytest.approx(peaks.duration)
    assert fallback["rate"] == pytest.approx(peaks.peaks_per_second)
    assert fallback["n"] == len(peaks.data[0])
    assert fallback["first"] == pytest.approx(peaks.data[0][:50], abs=1e-4)
    assert probe.errors == [] and probe.dialogs == []
