"""Issue 15: pre-segment word timings on the waveform when zoomed in, and boundaries snapping to
word edges (Alt disables it)."""

from __future__ import annotations

import pytest
from test_worker_ui import answer, call_line, drag_segment
from ui_helpers import wait_ready, wait_until

pytestmark = pytest.mark.browser

PRE = [
    {"id": "p1", "track": "speaker", "label": "Agent", "start": 0.4, "end": 3.5,
     "text": "Northwind support, this is Dana.",
     "words": [[0.4, 0.919, "Northwind"], [0.937, 1.451, "support,"], [1.614, 1.801, "this"], [1.801, 1.945, "is"],
               [1.945, 2.374, "Dana."]]},
    {"id": "p2", "track": "speaker", "label": "Customer", "start": 4.0, "end": 7.8, "text": "my order",
     "words": [[4.0, 4.5, "my"], [4.6, 5.2, "order"]]},
]


def new_segment(page, before: set[str]) -> dict:
    wait_until(page, f"window.gtkit.getAnswer().segments.length === {len(before) + 1}")
    return next(s for s in answer(page)["segments"] if s["id"] not in before)


def test_words_zoomed_in_and_snapping(portal_factory, open_page, peaks_dir):
    portal = portal_factory("call-center", [call_line(peaks_dir, **{"pre-segments": PRE})])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    page.wait_for_timeout(100)
    assert page.evaluate("window.gtkit.player.wordsDrawn") == 0, "the whole file: no words"
    page.evaluate("window.gtkit.player.zoomTo(200); window.gtkit.wavesurfer.setScrollTime(0)")
    wait_until(page, "window.gtkit.player.wordsDrawn >= 5")
    assert page.locator("[data-role=segment-overview]").is_visible()
    page.evaluate("window.gtkit.player.zoomFit()")
    wait_until(page, "window.gtkit.player.wordsDrawn === 0")

    # A drag in the Customer lane starting 50 ms after the end of "support," starts at that edge ...
    ids = {s["id"] for s in answer(page)["segments"]}
    drag_segment(page, 1.50, 3.2, lane=(1, 2))
    snapped = new_segment(page, ids)
    assert snapped["start"] == 1.451
    assert snapped["end"] == pytest.approx(3.2, abs=0.05), "no word edge near the end: as dragged"
    page.evaluate(f"window.gtkit.state.removeSegment({snapped['id']!r})")

    # ... and with Alt held, exactly where the pointer was.
    ids = {s["id"] for s in answer(page)["segments"]}
    page.keyboard.down("Alt")
    drag_segment(page, 1.50, 3.2, lane=(1, 2))
    page.keyboard.up("Alt")
    raw = new_segment(page, ids)
    assert raw["start"] == pytest.approx(1.50, abs=0.03) and raw["start"] != 1.451
    assert probe.errors == []
