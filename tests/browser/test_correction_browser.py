"""Issue 15: correcting Transcribe pre-segments from the keyboard alone (no mouse event at all).

Five pre-segments on the 21-second example call; the worker nudges, retypes, splits, merges and
loops them with the keys the `?` overlay lists, and the answer validates against the schema.
"""

from __future__ import annotations

import pytest
from test_worker_ui import answer, call_line, settle
from ui_helpers import wait_ready, wait_until

from toolkit.contract import SegmentationAnswer, load_label_schema, validate_answer

pytestmark = pytest.mark.browser

PRE = [
    {"id": "p1", "track": "speaker", "label": "Agent", "start": 0.4, "end": 3.5, "text": "northwind support"},
    {"id": "p2", "track": "speaker", "label": "Customer", "start": 4.0, "end": 7.8, "text": "my odor was due"},
    {"id": "p3", "track": "speaker", "label": "Agent", "start": 8.2, "end": 11.0, "text": "let me check"},
    {"id": "p4", "track": "speaker", "label": "Customer", "start": 11.5, "end": 15.0, "text": "it is"},
    {"id": "p5", "track": "speaker", "label": "Customer", "start": 15.2, "end": 19.0, "text": "still missing"},
]


def by_pre(page) -> dict[str, dict]:
    return {s.get("presegmentId") or s["id"]: s for s in answer(page)["segments"]}


def selected(page) -> str | None:
    return page.evaluate("window.gtkit.state.selectedSegmentId")


def press(page, *keys: str) -> None:
    for key in keys:
        page.keyboard.press(key)


def test_five_segments_corrected_without_the_mouse(portal_factory, open_page, peaks_dir):
    portal = portal_factory("call-center", [call_line(peaks_dir, **{"pre-segments": PRE})])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    page.evaluate("""() => { window.__mouse = 0
        for (const t of ['mousedown', 'pointerdown', 'click', 'wheel']) {
          document.addEventListener(t, e => { if (e.isTrusted) window.__mouse++ }, true)
        } }""")
    ids = {p: s["id"] for p, s in by_pre(page).items()}
    step = page.evaluate("window.gtkit.player.nudgeStep()")
    assert 0.001 <= step <= 1

    # 1. next segment (J from the start selects p1); its start two steps later, its end one earlier
    press(page, "j")
    assert selected(page) == ids["p1"]
    press(page, "w", "w", "i")
    seg = by_pre(page)["p1"]
    assert seg["start"] == pytest.approx(0.4 + 2 * step, abs=0.0011)
    assert seg["end"] == pytest.approx(3.5 - step, abs=0.0011)

    # 2. next segment: Enter edits its text, Escape returns to the shortcuts
    press(page, "j")
    assert selected(page) == ids["p2"]
    press(page, "Enter")
    assert page.evaluate("document.activeElement.dataset.part") == "text"
    page.keyboard.press("Control+a")
    page.keyboard.type("my order was due")
    press(page, "Escape")
    wait_until(page, "window.gtkit.getAnswer().segments.some(s => s.text === 'my order was due')")

    # 3. next segment (J seeks to its start), playhead 1 s on, split there
    press(page, "j")
    assert selected(page) == ids["p3"]
    # J's seek and ArrowRight's step are media seeks: wait for each to land (a loaded machine is slow).
    landed = "(t => Math.abs(window.gtkit.player.currentTime - t) < 0.05 && !window.gtkit.player.media.seeking)"
    wait_until(page, f"{landed}(8.2)")
    settle(page)
    press(page, "ArrowRight")
    wait_until(page, f"{landed}(9.2)")
    settle(page)
    playhead = page.evaluate("window.gtkit.player.currentTime")
    assert playhead == pytest.approx(9.2, abs=0.05)
    press(page, "x")
    halves = sorted((s for s in answer(page)["segments"] if s["track"] == by_pre(page)["p3"]["track"]
                     and 8 < s["start"] < 11), key=lambda s: s["start"])
    assert [(h["start"], h["end"]) for h in halves] == [(8.2, pytest.approx(playhead, abs=0.001)),
                                                        (pytest.approx(playhead, abs=0.001), 11.0)]
    assert selected(page) == halves[1]["id"], "the new half is selected"

    # 4. next segment, merge with the next one on its track (p4 + p5, both Customer)
    press(page, "j")
    assert selected(page) == ids["p4"]
    press(page, "m")
    merged = by_pre(page)["p4"]
    assert (merged["start"], merged["end"], merged["text"]) == (11.5, 19.0, "it is still missing")
    assert "p5" not in by_pre(page)

    # 5. previous segment (the second half of p3), loop it: the playhead comes back to its start
    press(page, "k")
    second = halves[1]
    assert selected(page) == second["id"]
    press(page, "l")
    assert page.evaluate("window.gtkit.player.looping") == second["id"]
    wait_until(page, f"""(() => {{ const p = window.gtkit.player
        if (!window.__passedEnd && p.currentTime > {second['end']} - 0.4) window.__passedEnd = true
        return window.__passedEnd && p.currentTime < {second['start']} + 0.5 }})()""", timeout=10000, polling=20)
    assert page.evaluate("window.gtkit.player.isPlaying")
    press(page, "l")
    assert page.evaluate("window.gtkit.player.looping") is None
    press(page, "Space")

    # the shortcuts are all in the ? overlay
    press(page, "?")
    overlay = page.locator(".gtkit-help").inner_text()
    for keys in ("Shift + J / K", "Q / W", "I / O", "X", "M", "L", "Enter"):
        assert keys in overlay
    press(page, "Escape")

    assert page.evaluate("window.__mouse") == 0
    final = SegmentationAnswer.model_validate(answer(page))
    assert len(final.segments) == 5  # 5 - 1 merged + 1 split
    problems = [p for p in validate_answer(final, load_label_schema("call-center")) if p.segment_id]
    assert problems == []
    assert probe.errors == []
