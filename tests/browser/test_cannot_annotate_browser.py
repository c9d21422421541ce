"""Issue 15: a worker who cannot annotate the item (media that does not play, silence...) submits
one of the schema's reasons without segments; the answer is saved and consolidates to that reason."""

from __future__ import annotations

import pytest
from test_worker_ui import call_line, drag_segment
from ui_helpers import MEDIA, wait_ready, wait_until

from toolkit.contract import SegmentationAnswer, load_label_schema, validate_answer
from toolkit.labeling.consolidate import consolidate

pytestmark = pytest.mark.browser
SUBMIT = "crowd-button[form-action=submit]"


def saved_answer(portal) -> SegmentationAnswer:
    (response,) = portal.responses("0")
    return SegmentationAnswer.model_validate_json(response["answers"][0]["answerContent"]["answer"])


def test_media_that_cannot_load_can_still_be_reported(portal_factory, open_page):
    portal = portal_factory("call-center", [{"source-ref": f"{MEDIA}/no_such_call.wav", "media-type": "audio",
                                             "interaction-id": "int-missing", "duration-seconds": 30.0}])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    page.locator("[data-role=media-error]").wait_for(state="visible")
    wait_until(page, f"document.querySelector('{SUBMIT}').hasAttribute('disabled')")
    page.select_option("[data-role=cannot-annotate-reason]", "Corrupt or unplayable media")
    wait_until(page, f"!document.querySelector('{SUBMIT}').hasAttribute('disabled')")
    page.fill("[data-role=cannot-annotate-note]", "404 on the file")
    page.click(SUBMIT)
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    saved = saved_answer(portal)
    assert saved.cannot_annotate.reason == "Corrupt or unplayable media"
    assert saved.cannot_annotate.note == "404 on the file"
    assert saved.segments == []
    assert validate_answer(saved, load_label_schema("call-center")) == []
    label = consolidate([("w1", saved)], load_label_schema("call-center"))
    assert label.cannot_annotate.reason == "Corrupt or unplayable media"
    assert probe.errors == []


def test_segments_wait_while_a_reason_is_chosen(portal_factory, open_page, peaks_dir):
    portal = portal_factory("call-center", [call_line(peaks_dir)])
    page, _ = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    drag_segment(page, 2.0, 5.0)
    wait_until(page, "window.gtkit.getAnswer().segments.length === 1")
    page.select_option("[data-role=cannot-annotate-reason]", "Silence or no speech")
    assert page.evaluate("window.gtkit.getAnswer().segments.length") == 0
    assert page.evaluate("window.gtkit.state.segments.length") == 1, "the worker's segments are kept"
    page.select_option("[data-role=cannot-annotate-reason]", "")
    assert page.evaluate("window.gtkit.getAnswer().segments.length") == 1
    page.select_option("[data-role=cannot-annotate-reason]", "Silence or no speech")
    # No content field is required of an item the worker could not annotate.
    page.click(SUBMIT)
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    saved = saved_answer(portal)
    assert saved.cannot_annotate.reason == "Silence or no speech" and saved.segments == []
