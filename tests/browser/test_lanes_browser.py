"""Issue 15: segments between lanes, recording into several tracks, the drawn segment's row, and the
instructions box at the default size."""

from __future__ import annotations

import pytest
from test_worker_ui import add_track, answer, call_line, drag_segment, lane_y, x_at
from ui_helpers import wait_ready

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
    page.wait_for_function(f"window.gtkit.state.segment({seg['id']!r}).track === {tracks['Customer']!r}")
    moved = next(s for s in answer(page)["segments"] if s["id"] == seg["id"])
    assert (moved["start"], moved["end"]) == (2.0, 6.0), "a vertical move keeps the times"
    page.keyboard.press("Control+z")
    page.wait_for_function(f"window.gtkit.state.segment({seg['id']!r}).track === {tracks['Agent']!r}")
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
    page.wait_for_function("window.gtkit.player.isRecording && window.gtkit.player.currentTime >= 4.2")
    page.keyboard.press("r")
    page.keyboard.press("Space")
    page.wait_for_function("window.gtkit.getAnswer().segments.length === 2")
    segs = answer(page)["segments"]
    assert {s["track"] for s in segs} == {t["id"] for t in answer(page)["tracks"]}
    assert segs[0]["start"] == segs[1]["start"] and segs[0]["end"] == segs[1]["end"]

    # A drawn segment: its row is in view in the list and its text box has the focus.
    before = {s["id"] for s in segs}
    drag_segment(page, 14.0, 17.0, lane=(0, 2))
    page.wait_for_function("window.gtkit.getAnswer().segments.length === 3")
    (new,) = [s for s in answer(page)["segments"] if s["id"] not in before]
    focused = f"document.activeElement && document.activeElement.closest('[data-segment-id=\"{new['id']}\"]')"
    page.wait_for_function(focused + " && document.activeElement.dataset.part === 'text'")
    in_view = page.evaluate(f"""(() => {{
        const li = document.querySelector('li.gtkit-seg[data-segment-id="{new['id']}"]').getBoundingClientRect()
        const panel = document.querySelector('.gtkit-segments').getBoundingClientRect()
        return li.top >= panel.top - 1 && li.bottom <= panel.bottom + 1 }})()""")
    assert in_view
    page.keyboard.type("typed right away")
    page.wait_for_function(f"window.gtkit.state.segment({new['id']!r}).text === 'typed right away'")
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
