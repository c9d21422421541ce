"""Seeks made in quick succession land where the last one asked, whatever state the media is in.

wavesurfer.js defers a seek asked for while the media element is still seeking (readyState below
HAVE_FUTURE_DATA) and then forgets it when the earlier seek's `seeking` event arrives, so J then
ArrowRight, pressed faster than the media seeks, ended on the segment start instead of 1 s after it.
The test puts the media in that state on purpose (readyState reported as HAVE_CURRENT_DATA for the
second seek) instead of hoping the machine is slow enough.
"""

from __future__ import annotations

import pytest
from test_worker_ui import call_line
from ui_helpers import wait_ready

pytestmark = pytest.mark.browser

SEEK_WHILE_SEEKING = """async ([first, delta]) => {
    const player = window.gtkit.player
    const media = window.gtkit.wavesurfer.getMediaElement()
    player.seek(first)
    Object.defineProperty(media, 'readyState', { configurable: true, get: () => 2 })
    try { player.skip(delta) } finally { delete media.readyState }
    const wanted = first + delta
    // Until the media has settled: no seek in flight and no event left to run.
    for (let i = 0; i < 50; i++) {
        await new Promise(r => setTimeout(r, 20))
        if (!media.seeking && i > 5) break
    }
    return { media: media.currentTime, player: player.currentTime, wanted }
}"""


@pytest.mark.parametrize("media_type", ["audio", "video"])
def test_a_seek_asked_while_the_media_seeks_is_not_lost(portal_factory, open_page, peaks_dir, media_type):
    line = call_line(peaks_dir)
    if media_type == "video":
        line.update({"source-ref": line["source-ref"].replace("call_001.wav", "video_001.mp4"),
                     "media-type": "video", "duration-seconds": 15.0,
                     "peaks-ref": str(peaks_dir / "video_001.mp4.peaks.json")})
    portal = portal_factory("call-center" if media_type == "audio" else "video-generation", [line])
    page, _ = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)

    where = page.evaluate(SEEK_WHILE_SEEKING, [4.0, 1.0])

    assert where["media"] == pytest.approx(5.0, abs=0.01), where
    assert where["player"] == pytest.approx(5.0, abs=0.01), where
