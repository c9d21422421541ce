"""Issue 3 acceptance: the worker UI in the local portal, driven through Debian chromium.

Times are checked against what the worker did on screen (pixel positions on the waveform, the
playhead when R was pressed) within 0.05 s, and the saved worker response must validate as a
SegmentationAnswer against the label schema.
"""

from __future__ import annotations

import json

import pytest
from ui_helpers import MEDIA, WORKER, wait_ready, wait_until

from toolkit.contract import SegmentationAnswer, load_label_schema, validate_answer

pytestmark = pytest.mark.browser

XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>alert(2)</script>"
TOL = 0.05


def call_line(peaks_dir, **extra) -> dict:
    line = {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-0001",
            "duration-seconds": 21.0, "peaks-ref": str(peaks_dir / "call_001.wav.peaks.json")}
    line.update(extra)
    return line


def wave_box(page) -> dict:
    box = page.locator("[data-role=waveform]").bounding_box()
    assert box and box["width"] > 500
    return box


def x_at(page, seconds: float) -> float:
    box = wave_box(page)
    duration = page.evaluate("window.gtkit.player.duration")
    return box["x"] + box["width"] * seconds / duration


def lane_y(page, lane: int, lanes: int) -> float:
    """Viewport y of the middle of track lane `lane` (0-based) out of `lanes`."""
    return page.evaluate("""([lane, lanes]) => {
        const wrapper = window.gtkit.wavesurfer.getWrapper()
        const box = (wrapper.querySelector('[part~="regions-container"]') || wrapper).getBoundingClientRect()
        return box.top + box.height * (lane + 0.5) / lanes
    }""", [lane, lanes])


def settle(page) -> None:
    """Two animation frames: what the UI schedules for the next frame (focus, list scroll) has run."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def drag_segment(page, start: float, end: float, lane: tuple[int, int] | None = None) -> None:
    box = wave_box(page)
    y = lane_y(page, *lane) if lane else box["y"] + box["height"] * 0.6
    page.mouse.move(x_at(page, start), y)
    page.mouse.down()
    page.mouse.move(x_at(page, end), y, steps=12)
    page.mouse.up()


def add_track(page, category: str, label: str) -> None:
    page.select_option("[data-role=new-track]", json.dumps([category, label], separators=(",", ":")))
    page.click("[data-action=add-track]")


def activate_track(page, index: int) -> None:
    page.locator(".gtkit-track [data-action=activate-track]").nth(index).click()


def answer(page) -> dict:
    return page.evaluate("window.gtkit.getAnswer()")


def segment_row(page, segment_id: str):
    return page.locator(f'li.gtkit-seg[data-segment-id="{segment_id}"]')


def test_segment_reload_submit(portal_factory, open_page, peaks_dir):
    portal = portal_factory("call-center", [call_line(peaks_dir, transcription="Hello. Hi.")])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)

    # two tracks
    add_track(page, "speaker", "Agent")
    add_track(page, "speaker", "Customer")
    tracks = answer(page)["tracks"]
    assert [(t["category"], t["label"]) for t in tracks] == [("speaker", "Agent"), ("speaker", "Customer")]
    agent, customer = tracks[0]["id"], tracks[1]["id"]

    # a segment by dragging on the waveform, in the Agent track's lane
    activate_track(page, 0)
    drag_segment(page, 2.0, 5.0, lane=(0, 2))
    wait_until(page, "window.gtkit.getAnswer().segments.length === 1")
    (dragged,) = answer(page)["segments"]
    assert dragged["track"] == agent
    assert dragged["start"] == pytest.approx(2.0, abs=TOL)
    assert dragged["end"] == pytest.approx(5.0, abs=TOL)

    # a segment by keyboard recording (R while playing), on the Customer track
    activate_track(page, 1)
    page.evaluate("window.gtkit.player.seek(8)")
    page.locator(".gtkit-title").click()  # focus outside any field, so keys are shortcuts
    page.keyboard.press("r")
    wait_until(page, "window.gtkit.player.isRecording && window.gtkit.player.currentTime >= 9.3")
    page.keyboard.press("r")
    stopped_at = page.evaluate("window.gtkit.player.currentTime")
    page.keyboard.press("Space")  # pause
    wait_until(page, "window.gtkit.getAnswer().segments.length === 2")
    recorded = next(s for s in answer(page)["segments"] if s["id"] != dragged["id"])
    assert recorded["track"] == customer
    assert recorded["start"] == pytest.approx(8.0, abs=TOL)
    # Playback goes on between the second "r" and reading the clock: the end lies in between.
    assert 9.3 - TOL <= recorded["end"] <= stopped_at + TOL
    assert recorded["end"] - recorded["start"] > 1.2

    # text, segment fields and content fields
    row = segment_row(page, dragged["id"])
    row.locator("textarea[data-part=text]").fill("Northwind support, this is Dana.")
    row.locator('[data-field=emotion] select').select_option("Happy")
    segment_row(page, recorded["id"]).locator("textarea[data-part=text]").fill("My order is late.")
    page.check('input[name="content-background_noise"][value="Music"]')
    page.check('input[name="content-background_noise"][value="Static"]')
    page.check('input[name="content-overall_rating"][value="4"]')
    page.fill('textarea[name="content-summary"]', "Late order W 48172")
    before = answer(page)
    assert before["content"] == {"background_noise": ["Music", "Static"], "overall_rating": 4,
                                 "summary": "Late order W 48172"}

    # reload: everything is restored from autosave
    page.wait_for_timeout(600)  # autosave debounce
    page.reload()
    wait_ready(page)
    after = answer(page)
    for key in ("tracks", "segments", "content"):
        assert after[key] == before[key], key
    row = segment_row(page, dragged["id"])
    assert row.locator("textarea[data-part=text]").input_value() == "Northwind support, this is Dana."
    assert row.locator('[data-field=emotion] select').input_value() == "Happy"
    assert page.is_checked('input[name="content-overall_rating"][value="4"]')
    assert page.input_value('textarea[name="content-summary"]') == "Late order W 48172"

    # submit
    page.click("crowd-button[form-action=submit]")
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    (response,) = portal.responses("0")
    (record,) = response["answers"]
    assert record["workerId"] == WORKER
    content = record["answerContent"]
    saved = SegmentationAnswer.model_validate_json(content["answer"])
    assert validate_answer(saved, load_label_schema("call-center")) == []
    assert saved.media_duration == pytest.approx(21.0, abs=TOL)
    assert saved.interaction_id == "int-0001" and saved.label_schema == "call-center"
    by_id = {s.id: s for s in saved.segments}
    d, r = by_id[dragged["id"]], by_id[recorded["id"]]
    assert (d.start, d.end) == pytest.approx((dragged["start"], dragged["end"]), abs=0.001)
    assert d.track == agent and d.text == "Northwind support, this is Dana." and d.attributes.get("emotion") == "Happy"
    assert (r.start, r.end) == pytest.approx((recorded["start"], recorded["end"]), abs=0.001)
    assert r.track == customer and r.text == "My order is late."
    assert saved.content == {"background_noise": ["Music", "Static"], "overall_rating": 4,
                             "summary": "Late order W 48172"}
    # full-content fields also arrive as crowd-form posts native inputs
    assert content["content-summary"] == "Late order W 48172"
    assert content["content-overall_rating"]["4"] is True and content["content-overall_rating"]["3"] is False
    assert content["content-background_noise"]["Music"] is True
    # autosave is cleared after submit
    keys = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('gtkit:'))")
    assert keys == []
    assert probe.errors == [] and probe.script_ran == []


def test_untrusted_text_is_shown_as_text(portal_factory, open_page, peaks_dir):
    pre = [{"id": "pre-1", "track": "speaker", "label": "Agent", "start": 0.4, "end": 3.5, "text": XSS_SCRIPT},
           {"id": "pre-2", "track": "speaker", "label": "Customer", "start": 4.0, "end": 7.8, "text": XSS_IMG}]
    portal = portal_factory("call-center", [call_line(peaks_dir, transcription=f"Hi {XSS_IMG} there {XSS_SCRIPT}",
                                                      **{"pre-segments": pre})])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    # the transcript and the pre-segment texts are there, as text
    assert page.locator(".gtkit-machine-text").text_content() == f"Hi {XSS_IMG} there {XSS_SCRIPT}"
    texts = page.locator(".gtkit-tr-text").all_text_contents()
    assert XSS_SCRIPT in texts and XSS_IMG in texts
    segs = answer(page)["segments"]
    first = next(s for s in segs if s["presegmentId"] == "pre-1")
    assert segment_row(page, first["id"]).locator("textarea[data-part=text]").input_value() == XSS_SCRIPT
    # and a worker typing markup into a segment text changes nothing either
    segment_row(page, first["id"]).locator("textarea[data-part=text]").fill(f"{XSS_SCRIPT}{XSS_IMG}")
    wait_until(page, f"[...document.querySelectorAll('.gtkit-tr-text')].some(e => e.textContent === "
                           f"{json.dumps(XSS_SCRIPT + XSS_IMG)})")
    page.wait_for_timeout(300)  # give any injected handler the chance to fire
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert page.evaluate("[...document.scripts].filter(s => s.textContent.includes('alert(')).length") == 0
    assert probe.script_ran == []
    assert not [d for d in probe.dialogs if d.startswith("alert")]


def test_invalid_answers_block_submit(portal_factory, open_page, peaks_dir):
    portal = portal_factory("call-center", [call_line(peaks_dir)])
    page, _ = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    add_track(page, "speaker", "Agent")
    drag_segment(page, 15.0, 19.0)
    wait_until(page, "window.gtkit.getAnswer().segments.length === 1")
    (seg,) = answer(page)["segments"]
    end = segment_row(page, seg["id"]).locator("input[data-part=end]")
    end.fill("25")
    end.press("Enter")
    end.blur()
    wait_until(page, "window.gtkit.getAnswer().segments[0].end > 21")

    page.click("crowd-button[form-action=submit]")
    summary = page.locator("[data-role=summary]")
    summary.wait_for(state="visible")
    text = summary.text_content()
    assert "past the end" in text or "after the end" in text or "media" in text.lower()
    assert "required" in text.lower()
    seg_error = segment_row(page, seg["id"]).locator(".gtkit-error")
    assert seg_error.is_visible() and seg_error.text_content()
    assert page.locator('[data-field="overall_rating"] .gtkit-error').is_visible()
    page.wait_for_timeout(500)
    assert page.url == f"{portal.url}/task/0"  # not submitted
    assert portal.responses("0") == []

    # fix both and the same button submits
    end.fill("20")
    end.press("Enter")
    end.blur()
    page.check('input[name="content-background_noise"][value="None"]')
    page.check('input[name="content-overall_rating"][value="3"]')
    page.click("crowd-button[form-action=submit]")
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    saved = SegmentationAnswer.model_validate_json(portal.responses("0")[0]["answers"][0]["answerContent"]["answer"])
    assert saved.segments[0].end == pytest.approx(20.0)


def test_video_mode_times(portal_factory, open_page, peaks_dir):
    line = {"source-ref": f"{MEDIA}/video_001.mp4", "media-type": "video", "interaction-id": "vid-0001",
            "duration-seconds": 15.0, "peaks-ref": str(peaks_dir / "video_001.mp4.peaks.json")}
    portal = portal_factory("video-generation", [line])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    video = page.locator("video.gtkit-video")
    assert video.count() == 1
    wait_until(page, "document.querySelector('video.gtkit-video').readyState >= 1")
    assert page.evaluate("document.querySelector('video.gtkit-video').duration") == pytest.approx(15.0, abs=0.1)

    add_track(page, "motion", "Jitter")
    drag_segment(page, 3.0, 6.0)
    wait_until(page, "window.gtkit.getAnswer().segments.length === 1")
    # keyboard recording in video mode: the video element is the clock
    page.evaluate("window.gtkit.player.seek(9)")
    page.locator(".gtkit-title").click()
    page.keyboard.press("r")
    wait_until(page, "window.gtkit.player.isRecording && "
                           "document.querySelector('video.gtkit-video').currentTime >= 10.2")
    page.keyboard.press("r")
    stopped_at = page.evaluate("document.querySelector('video.gtkit-video').currentTime")
    page.keyboard.press("Space")
    wait_until(page, "window.gtkit.getAnswer().segments.length === 2")
    segs = sorted(answer(page)["segments"], key=lambda s: s["start"])
    assert segs[0]["start"] == pytest.approx(3.0, abs=TOL)
    assert segs[0]["end"] == pytest.approx(6.0, abs=TOL)
    assert segs[1]["start"] == pytest.approx(9.0, abs=TOL)
    # The video plays on between the second "r" and reading its clock, so the recorded end lies
    # between the moment recording was seen past 10.2 s and that reading (a loaded machine widens it).
    assert 10.2 - TOL <= segs[1]["end"] <= stopped_at + TOL
    # the video follows the waveform: seeking the player moves the video
    page.evaluate("window.gtkit.player.seek(12.5)")
    wait_until(page, "Math.abs(document.querySelector('video.gtkit-video').currentTime - 12.5) < 0.05")

    page.check('input[name="content-overall_quality"][value="2"]')
    page.check('input[name="content-prompt_adherence"][value="Partly"]')
    page.click("crowd-button[form-action=submit]")
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    saved = SegmentationAnswer.model_validate_json(portal.responses("0")[0]["answers"][0]["answerContent"]["answer"])
    assert validate_answer(saved, load_label_schema("video-generation")) == []
    assert saved.media_duration == pytest.approx(15.0, abs=TOL)
    times = sorted((s.start, s.end) for s in saved.segments)
    assert times[0] == pytest.approx((segs[0]["start"], segs[0]["end"]), abs=0.001)
    assert times[1] == pytest.approx((segs[1]["start"], segs[1]["end"]), abs=0.001)
    assert probe.errors == []


@pytest.mark.parametrize("media", ["audio", "video"])
def test_drag_creates_segment_where_the_pointer_went(portal_factory, open_page, peaks_dir, media):
    """Left-to-right and right-to-left drags give the times under the pointer (within 0.05 s)."""
    if media == "audio":
        portal = portal_factory("call-center", [call_line(peaks_dir)])
    else:
        portal = portal_factory("video-generation", [
            {"source-ref": f"{MEDIA}/video_001.mp4", "media-type": "video", "interaction-id": "vid-0001",
             "duration-seconds": 15.0, "peaks-ref": str(peaks_dir / "video_001.mp4.peaks.json")}])
    page, _ = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    drag_segment(page, 2.0, 5.0)
    # As a person would: see the first segment (and its row take the focus) before the next drag; under
    # load the row's focus hand-off (a frame after the drag) could otherwise land inside the next drag.
    wait_until(page, "window.gtkit.getAnswer().segments.length === 1")
    settle(page)
    drag_segment(page, 12.0, 9.0)
    wait_until(page, "window.gtkit.getAnswer().segments.length === 2")
    times = sorted((s["start"], s["end"]) for s in answer(page)["segments"])
    assert times[0] == pytest.approx((2.0, 5.0), abs=TOL)
    assert times[1] == pytest.approx((9.0, 12.0), abs=TOL)


def test_drag_in_a_lane_creates_the_segment_on_that_track(portal_factory, open_page, peaks_dir):
    """With several tracks, the lane under the pointer decides the track, not the active one."""
    portal = portal_factory("call-center", [call_line(peaks_dir)])
    page, _ = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    add_track(page, "speaker", "Agent")
    add_track(page, "speaker", "Customer")
    add_track(page, "language", "English")
    agent, customer, english = (t["id"] for t in answer(page)["tracks"])
    activate_track(page, 0)
    drag_segment(page, 1.0, 3.0, lane=(1, 3))
    drag_segment(page, 4.0, 6.0, lane=(2, 3))
    drag_segment(page, 7.0, 8.0, lane=(0, 3))
    wait_until(page, "window.gtkit.getAnswer().segments.length === 3")
    by_start = {round(s["start"]): s["track"] for s in answer(page)["segments"]}
    assert by_start == {1: customer, 4: english, 7: agent}
    assert page.evaluate("window.gtkit.state.activeTrackId") == agent  # the last lane dragged in


def test_player_events_are_typed_per_name(portal_factory, open_page, peaks_dir):
    """player.on(name, fn) in the real page: each event's own arguments, an unsubscribe that works,
    unknown names refused; a drag reports segment id and times while the toolbar follows zoom/rate."""
    portal = portal_factory("call-center", [call_line(peaks_dir)])
    page, _ = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    page.evaluate("""() => {
        const p = window.gtkit.player
        window.seen = []
        const off = p.on('rate', r => window.seen.push(['rate', r]))
        p.on('zoom', px => window.seen.push(['zoom', px]))
        p.on('region-drag', (id, start, end) => window.seen.push(['drag', id, start < end]))
        p.setRate(1.5)
        off()
        p.setRate(2)
        p.zoomTo(200)
        try { p.on('rates', () => {}) } catch (err) { window.seen.push(['refused', err.name, err.message]) }
    }""")
    seen = page.evaluate("window.seen")

    def of(kind):
        return [e[1:] for e in seen if e[0] == kind]

    assert of("rate") == [[1.5]]  # not 2: unsubscribed
    assert of("zoom") and all(e == [200] for e in of("zoom"))
    (refused,) = of("refused")
    assert refused[0] == "TypeError" and 'unknown event "rates"' in refused[1]
    assert page.locator("[data-role=rate]").input_value() == "2"  # the toolbar heard 'rate' too
    page.evaluate("window.gtkit.player.zoomFit()")
    drag_segment(page, 2.0, 5.0)
    wait_until(page, "window.gtkit.getAnswer().segments.length === 1")
    seg = answer(page)["segments"][0]
    region = page.locator(f"[data-region-for='{seg['id']}']")
    box = region.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    drags = [e for e in page.evaluate("window.seen") if e[0] == "drag"]
    assert drags and all(e == ["drag", seg["id"], True] for e in drags)


def test_tampered_module_is_refused(portal_factory, open_page, peaks_dir):
    """The import map's integrity covers sub-modules: a modified dom.js stops the whole UI."""
    portal = portal_factory("call-center", [call_line(peaks_dir)])
    page, _ = open_page(portal)
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.route("**/assets/js/dom.js", lambda route: route.fulfill(
        status=200, content_type="text/javascript", headers={"Access-Control-Allow-Origin": "*"},
        body="export const el = () => { window.tampered = true }\n"))
    page.goto(f"{portal.url}/task/0")
    page.locator("[data-role=boot-error]").wait_for(state="visible", timeout=5000)
    assert page.evaluate("window.gtkit === undefined && window.tampered === undefined")
    assert any("integrity" in line.lower() for line in console), console
    assert page.locator("crowd-button[form-action=submit]").get_attribute("disabled") is not None
    page.evaluate("document.querySelector('crowd-form').requestSubmit()")
    page.wait_for_timeout(300)
    assert portal.responses("0") == []


def test_missing_media_shows_an_error(portal_factory, open_page):
    portal = portal_factory("call-center", [{"source-ref": f"{MEDIA}/no_such_call.wav", "media-type": "audio",
                                             "interaction-id": "int-missing", "duration-seconds": 30.0}])
    page, _ = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    error = page.locator("[data-role=media-error]")
    error.wait_for(state="visible")
    wait_until(page, "document.querySelector('[data-role=media-error]').textContent.includes('404')")
    text = error.text_content()
    assert "could not be loaded" in text and portal.url.removeprefix("http://") in text
    assert page.locator("crowd-button[form-action=submit]").get_attribute("disabled") is not None
    page.evaluate("document.querySelector('crowd-form').requestSubmit()")
    page.wait_for_timeout(300)
    assert portal.responses("0") == []


def test_space_plays_instead_of_pressing_the_focused_button(portal_factory, open_page, peaks_dir):
    """Issue 11.6: after clicking "Add track", Space added the track again and nothing played."""
    portal = portal_factory("call-center", [call_line(peaks_dir)])
    page, _ = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    add_track(page, "speaker", "Agent")
    assert page.evaluate("document.activeElement.dataset.action") == "add-track"
    page.keyboard.press("Space")
    wait_until(page, "window.gtkit.player.isPlaying")
    page.wait_for_timeout(200)  # a button press would land on keyup
    assert len(answer(page)["tracks"]) == 1
    page.keyboard.press("Space")
    wait_until(page, "!window.gtkit.player.isPlaying")
    assert len(answer(page)["tracks"]) == 1
    # nor does the focused Submit button post (it is not a text field either)
    page.locator("crowd-button[form-action=submit]").focus()
    page.keyboard.press("Space")
    wait_until(page, "window.gtkit.player.isPlaying")
    page.keyboard.press("Space")
    page.wait_for_timeout(300)
    assert page.url == f"{portal.url}/task/0" and portal.responses("0") == []
    assert page.locator("[data-role=summary]").is_hidden()  # no submit attempt at all
    # in a text field Space is a space, and checkboxes keep their own Space
    drag_segment(page, 2.0, 5.0)
    wait_until(page, "window.gtkit.getAnswer().segments.length === 1")
    (seg,) = answer(page)["segments"]
    playing = page.evaluate("window.gtkit.player.isPlaying")
    text = segment_row(page, seg["id"]).locator("textarea[data-part=text]")
    text.click()
    page.keyboard.type("a b")
    assert text.input_value() == "a b"
    box = page.locator('input[name="content-background_noise"][value="Music"]')
    box.focus()
    page.keyboard.press("Space")
    assert box.is_checked()
    assert page.evaluate("window.gtkit.player.isPlaying") == playing


def test_portal_shows_the_boot_failure_and_blocks_submit(portal_factory, open_page, peaks_dir):
    """The portal (and so `gtkit preview` and local jobs) renders the same template: same message."""
    portal = portal_factory("call-center", [call_line(peaks_dir)])
    page, _ = open_page(portal)
    page.route("**/assets/js/main.js", lambda route: route.abort())
    page.goto(f"{portal.url}/task/0")
    box = page.locator("[data-role=boot-error]")
    box.wait_for(state="visible", timeout=5000)
    text = box.text_content()
    assert portal.url in text  # asset host and page origin are both the portal here
    assert "do not submit" in text.lower()
    button = page.locator("crowd-button[form-action=submit]")
    assert button.get_attribute("disabled") is not None
    button.focus()
    page.keyboard.press("Enter")
    page.evaluate("document.querySelector('crowd-form').requestSubmit()")
    page.wait_for_timeout(300)
    assert portal.responses("0") == [] and page.url == f"{portal.url}/task/0"


def test_a_model_answer_is_prefilled_corrected_and_sent_back(portal_factory, open_page, peaks_dir):
    """pre-content (gtkit manifest build --model-outputs): the summary starts as the model's text, the
    worker corrects it, and the answer says what it started from."""
    model = "anthropic.claude-3-haiku-20240307-v1:0"
    pre = [{"id": "pre-1", "track": "speaker", "label": "Agent", "start": 0.4, "end": 3.5, "text": "Hello."}]
    given = {"summary": {"value": f"Order is late. {XSS_IMG}", "model_id": model, "record_id": "R0000000001"}}
    portal = portal_factory("call-center", [call_line(peaks_dir, **{"pre-segments": pre, "pre-content": given})])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    assert page.input_value('textarea[name="content-summary"]') == f"Order is late. {XSS_IMG}"  # as text
    page.fill('textarea[name="content-summary"]', "Order W 48172 is late; the customer wants a call back.")
    page.check('input[name="content-background_noise"][value="None"]')
    page.check('input[name="content-overall_rating"][value="4"]')
    page.click("crowd-button[form-action=submit]")
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    (response,) = portal.responses("0")
    saved = SegmentationAnswer.model_validate_json(response["answers"][0]["answerContent"]["answer"])
    assert validate_answer(saved, load_label_schema("call-center")) == []
    assert saved.content["summary"] == "Order W 48172 is late; the customer wants a call back."
    assert saved.prefill["summary"].value == f"Order is late. {XSS_IMG}"
    assert (saved.prefill["summary"].model_id, saved.prefill["summary"].record_id) == (model, "R0000000001")
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert probe.errors == [] and probe.script_ran == []
