"""Issue 15: segments between lanes, recording into several tracks, the drawn segment's row, and the
instructions box at the default size."""

from __future__ import annotations

import pytest
from test_worker_ui import add_track, answer, call_line, drag_segment, lane_y, x_at
from ui_helpers import wait_ready, wait_until

pytestmark = pytest.mark.browser


def open_task(portal_factory, open_page, peaks_dir, **extra):
    portal = portal_factory("call-center", [call_line(peaks_dir, **extra)])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    return page, probe


def test_drag_a_segment_to_another_lane_changes_its_track(portal_factory, open_page, peaks_dir):
    pre = [{"id": "p1", "track": "speaker", "label": "Agent", "start": 2.0, "end": 6.0, "text": "hi"},
           {"id": "p2", "track": "speaker", "label": "Customer", "start": 10.0, "end": 12.0, "text": "yo"}]
    page, probe = open_task(portal_factory, open_page, peaks_dir, **{"pre-segments": pre})
    seg = next(s for s in answer(page)["segments"] if s["presegmentId"] == "p1")
    tracks = {t["label"]: t["id"] for t in answer(page)["tracks"]}
    assert seg["track"] == tracks["Agent"]
    lanes = len(tracks)
    agent_lane = list(tracks).index("Agent")
    other = 1 - agent_lane
    page.mouse.move(x_at(page, 4.0), lane_y(page, agent_lane, lanes))
    page.mouse.down()
    page.mouse.move(x_at(page, 4.0), lane_y(page, other, lanes), steps=8)
    page.mouse.up()
    wait_until(page, f"window.gtkit.state.segment({seg['id']!r}).track === {tracks['Customer']!r}")
    moved = next(s for s in answer(page)["segments"] if s["id"] == seg["id"])
    assert (moved["start"], moved["end"]) == (2.0, 6.0), "a vertical move keeps the times"
    page.keyboard.press("Control+z")
    wait_until(page, f"window.gtkit.state.segment({seg['id']!r}).track === {tracks['Agent']!r}")
    assert probe.errors == []


def test_record_into_several_tracks_and_the_drawn_row_gets_focus(portal_factory, open_page, peaks_dir):
    page, probe = open_task(portal_factory, open_page, peaks_dir)
    add_track(page, "speaker", "Agent")
    add_track(page, "language", "English")
    boxes = page.locator("[data-role=record-into]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.evaluate("window.gtkit.player.seek(3)")
    page.locator(".gtkit-title").click()
    page.keyboard.press("r")
    wait_until(page, "window.gtkit.player.isRecording && window.gtkit.player.currentTime >= 4.2")
    page.keyboard.press("r")
    page.keyboard.press("Space")
    wait_until(page, "window.gtkit.getAnswer().segments.length === 2")
    segs = answer(page)["segments"]
    assert {s["track"] for s in segs} == {t["id"] for t in answer(page)["tracks"]}
    assert segs[0]["start"] == segs[1]["start"] and segs[0]["end"] == segs[1]["end"]

    # A drawn segment: its row is in view in the list and its text box has the focus.
    before = {s["id"] for s in segs}
    drag_segment(page, 14.0, 17.0, lane=(0, 2))
    wait_until(page, "window.gtkit.getAnswer().segments.length === 3")
    (new,) = [s for s in answer(page)["segments"] if s["id"] not in before]
    focused = f"document.activeElement && document.activeElement.closest('[data-segment-id=\"{new['id']}\"]')"
    wait_until(page, focused + " && document.activeElement.dataset.part === 'text'")
    in_view = page.evaluate(f"""(() => {{
        const li = document.querySelector('li.gtkit-seg[data-segment-id="{new['id']}"]').getBoundingClientRect()
        const panel = document.querySelector('.gtkit-segments').getBoundingClientRect()
        return li.top >= panel.top - 1 && li.bottom <= panel.bottom + 1 }})()""")
    assert in_view
    page.keyboard.type("typed right away")
    wait_until(page, f"window.gtkit.state.segment({new['id']!r}).text === 'typed right away'")
    assert probe.errors == []


def test_instructions_show_every_step(portal_factory, open_page, peaks_dir):
    page, _ = open_task(portal_factory, open_page, peaks_dir)
    box = page.locator(".gtkit-instructions-text")
    assert box.is_visible()
    overflow = page.evaluate("(() => { const e = document.querySelector('.gtkit-instructions-text');"
                             " return e.scrollHeight - e.clientHeight })()")
    assert overflow <= 1
    text = box.inner_text()
    for step in ("1. ", "2. ", "3. ", "4. "):
        assert step in text


def test_many_segments_overview_canvas_and_click_select(portal_factory, open_page, peaks_dir):
    # 200 short turns on the 21 s call: more than MAX_REGIONS at the whole-file view.
    pre = [{"id": f"p{i}", "track": "speaker", "label": "Agent" if i % 2 else "Customer",
            "start": round(i * 0.1, 3), "end": round(i * 0.1 + 0.08, 3), "text": f"t{i}"} for i in range(200)]
    page, probe = open_task(portal_factory, open_page, peaks_dir, **{"pre-segments": pre})
    wait_until(page, "window.gtkit.player.overviewCount === 200")
    assert page.evaluate("window.gtkit.player.regionById.size") == 0
    assert page.locator("[data-role=segment-overview]").is_visible()
    assert page.locator("li.gtkit-seg").count() == 200  # up to 200 rows: all of them
    # A click on the canvas in the Customer lane (lane 0: it spoke first) selects the turn under it.
    target = next(p for p in pre if p["id"] == "p50")
    page.mouse.click(x_at(page, target["start"] + 0.04), lane_y(page, 0, 2))
    wait_until(page, "window.gtkit.state.selectedSegmentId !== null")
    chosen = page.evaluate("window.gtkit.state.segment(window.gtkit.state.selectedSegmentId).presegmentId")
    assert chosen == "p50"
    # Zoomed in, they are regions again, only those near the view.
    page.evaluate("window.gtkit.player.zoomTo(400); window.gtkit.wavesurfer.setScrollTime(10)")
    wait_until(page, "window.gtkit.player.overviewCount === 0 && window.gtkit.player.regionById.size > 0")
    assert page.evaluate("window.gtkit.player.regionById.size") < 60
    assert probe.errors == []


def test_long_lists_are_windowed(portal_factory, open_page, peaks_dir):
    pre = [{"id": f"p{i}", "track": "speaker", "label": "Agent", "start": round(i * 0.05, 3),
            "end": round(i * 0.05 + 0.04, 3), "text": f"turn {i}"} for i in range(400)]
    page, probe = open_task(portal_factory, open_page, peaks_dir, **{"pre-segments": pre})
    wait_until(page, "window.gtkit.state.segments.length === 400")
    rows = page.locator("li.gtkit-seg").count()
    lines = page.locator(".gtkit-tr-item").count()
    assert 0 < rows < 40 and 0 < lines < 80, (rows, lines)
    # J to the far end: its row is made and scrolled into the panel, and typing there edits it.
    last = page.evaluate("window.gtkit.state.sortedSegments()[399].id")
    page.evaluate(f"window.gtkit.state.select({last!r})")
    wait_until(page, f"document.querySelector('li.gtkit-seg[data-segment-id=\"{last}\"]') !== null")
    assert page.locator(f'li.gtkit-seg[data-segment-id="{last}"] textarea').input_value() == "turn 399"
    assert page.locator("li.gtkit-seg").count() < 40
    assert probe.errors == []
