"""Issue 20: segment fields and segment text follow the tracks the schema names (`tracks: [speaker]`).

call-center asks emotion and the transcription on speaker turns only: the language span's row has
neither, a segment moved onto the language track keeps what it had visible and flagged until the
worker clears it, and the submitted answer validates in Python.
"""

from __future__ import annotations

import pytest
from test_worker_ui import add_track, answer, call_line, drag_segment, segment_row
from ui_helpers import wait_ready, wait_until

from toolkit.contract import SegmentationAnswer, load_label_schema, validate_answer

pytestmark = pytest.mark.browser


def test_fields_and_text_only_on_the_tracks_that_ask_them(portal_factory, open_page, peaks_dir):
    portal = portal_factory("call-center", [call_line(peaks_dir)])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    add_track(page, "speaker", "Agent")
    add_track(page, "language", "English")
    agent, english = (t["id"] for t in answer(page)["tracks"])
    drag_segment(page, 1.0, 4.0, lane=(0, 2))
    drag_segment(page, 6.0, 12.0, lane=(1, 2))
    wait_until(page, "window.gtkit.getAnswer().segments.length === 2")
    by_track = {s["track"]: s["id"] for s in answer(page)["segments"]}
    turn, span = segment_row(page, by_track[agent]), segment_row(page, by_track[english])

    assert turn.locator("textarea[data-part=text]").is_visible()
    assert turn.locator('[data-field="emotion"] select').is_visible()
    assert not span.locator("textarea[data-part=text]").is_visible()
    assert not span.locator('[data-field="emotion"]').is_visible()
    assert not span.locator(".gtkit-seg-fields").is_visible()

    # A speaker turn with text and emotion moved onto the language track: both stay in view, flagged.
    turn.locator("textarea[data-part=text]").fill("Northwind support.")
    turn.locator('[data-field="emotion"] select').select_option("Happy")
    turn.locator("select[data-part=track]").select_option(english)
    wait_until(page, f"window.gtkit.getAnswer().segments.every(s => s.track === {english!r})")
    assert turn.locator("textarea[data-part=text]").is_visible()
    assert turn.locator('[data-field="emotion"] select').is_visible()
    page.check('input[name="content-background_noise"][value="None"]')
    page.check('input[name="content-overall_rating"][value="4"]')
    page.click("crowd-button[form-action=submit]")
    error = turn.locator(".gtkit-error")
    error.wait_for(state="visible")
    assert "Transcription does not apply to Language segments" in error.text_content()
    assert "Emotion does not apply to Language segments" in error.text_content()
    assert portal.responses("0") == []

    # Cleared, they go away, and the answer is accepted.
    turn.locator("textarea[data-part=text]").fill("")
    turn.locator('[data-field="emotion"] select').select_option("")
    assert not turn.locator("textarea[data-part=text]").is_visible()
    assert not turn.locator('[data-field="emotion"]').is_visible()
    page.click("crowd-button[form-action=submit]")
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    saved = SegmentationAnswer.model_validate_json(portal.responses("0")[0]["answers"][0]["answerContent"]["answer"])
    assert validate_answer(saved, load_label_schema("call-center")) == []
    assert all(s.text == "" and not s.attributes.get("emotion") for s in saved.segments)
    assert probe.errors == []
