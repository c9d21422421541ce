"""Issue 17: the review page in the local portal, through Debian chromium.

The review task input is the one `toolkit.labeling.review` builds (tests/js/fixtures/review-task-input.json,
kept current by tests/test_review.py), cut to two worker answers and put on the 21-second example
call; the video case is built by hand following docs/worker-ui.md ("Review tasks") and checked
against the `ReviewInput` model. The reviewer sees the ghost lanes and the disagreements, edits a
segment and submits (decision "edit"), rejects with a note, and cannot reject without one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_worker_ui import answer, call_line, settle
from ui_helpers import MEDIA, wait_ready, wait_until

from toolkit.contract import SegmentationAnswer
from toolkit.contract.review import ReviewInput

pytestmark = pytest.mark.browser

FIXTURE = Path(__file__).resolve().parents[1] / "js" / "fixtures" / "review-task-input.json"


def review_line(peaks_dir, **extra) -> dict:
    """The Python-built review task input with two workers, on the example call."""
    data = json.loads(FIXTURE.read_text())
    review = data["review"]
    review["workers"] = review["workers"][:2]
    line = call_line(peaks_dir, **{"interaction-id": data["interaction-id"], "pre-segments": data["pre-segments"],
                                   "review": review})
    line.update(extra)
    return line


def open_review(portal, open_page):
    page, probe = open_page(portal)
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}")
            if msg.type in ("error", "warning") else None)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    wait_until(page, "window.gtkit.review && window.gtkit.review.review !== null")
    settle(page)
    return page, probe, console


def saved_answer(portal) -> SegmentationAnswer:
    (response,) = portal.responses("0")
    return SegmentationAnswer.model_validate_json(response["answers"][0]["answerContent"]["answer"])


def by_pre(page) -> dict[str, dict]:
    return {s.get("presegmentId") or s["id"]: s for s in answer(page)["segments"]}


def test_review_shows_ghost_lanes_and_disagreements_then_an_edit_is_submitted(portal_factory, open_page, peaks_dir):
    line = review_line(peaks_dir)
    portal = portal_factory("call-center", [line])
    page, probe, console = open_review(portal, open_page)
    review = line["review"]

    # The editable label is review.answer (attributes and content included), under the pre-segments' ids.
    start = by_pre(page)
    assert set(start) == {"seg-0001", "seg-0002", "seg-0003"}
    assert start["seg-0002"]["attributes"] == {"emotion": "Angry"}
    assert answer(page)["content"]["background_noise"] == ["None"]

    # One ghost lane per answer, consolidated first, each drawn (only its visible segments).
    lanes = page.eval_on_selector_all("[data-ghost-lane]", "els => els.map(e => [e.dataset.ghostLane, e.textContent])")
    counts = [len(w["answer"]["segments"]) for w in review["workers"]]
    assert lanes == [["consolidated", "Consolidated (3)"], ["w1", f"w1 ({counts[0]})"], ["w2", f"w2 ({counts[1]})"]]
    ghosts = page.evaluate("(g => ({drawn: g.drawn, bands: g.drawnBands, h: g.canvas.clientHeight}))"
                           "(window.gtkit.review.ghosts)")
    total = sum(len(w["answer"]["segments"]) for w in review["workers"]) + len(review["consolidated"]["segments"])
    assert ghosts["drawn"] == total and ghosts["bands"] >= 2 and ghosts["h"] > 20
    # Zoomed in on 4-6 s, only what overlaps the window is drawn.
    page.evaluate("window.gtkit.player.zoomTo(400); window.gtkit.wavesurfer.setScrollTime(4)")
    wait_until(page, f"window.gtkit.review.ghosts.drawn < {total}")

    # The disagreements come first (panel before the columns), in Python's order, as text.
    assert page.evaluate("""!!(document.querySelector('[data-role=review]').compareDocumentPosition(
        document.querySelector('.gtkit-columns')) & Node.DOCUMENT_POSITION_FOLLOWING)""")
    items = page.locator("[data-role=disagreements] li")
    assert items.count() == len(review["disagreements"])
    kinds = [items.nth(i).get_attribute("data-kind") for i in range(items.count())]
    assert kinds == [d["kind"] for d in review["disagreements"]]
    assert review["disagreements"][0]["message"] in items.nth(0).inner_text()

    # Per-worker content answers beside the field where they differ (summary), not where they agree.
    assert page.locator("[data-worker-answers=summary]").inner_text() == "w1: card · w2: lost card"
    assert page.locator("[data-worker-answers=background_noise]").count() == 0

    # A content tie: its disagreement focuses the field.
    page.locator("[data-role=disagreements] li[data-kind=content-tie] button").click()
    assert page.evaluate("document.activeElement.name") == "content-summary"

    # A segment attribute (segment-id and field): its segment selected, the field's control focused.
    page.locator("[data-role=disagreements] li[data-kind=content-disagreement] button").click()
    assert page.evaluate("window.gtkit.state.selectedSegmentId") == start["seg-0002"]["id"]
    focused = page.evaluate("(e => [!!e.closest('[data-field=emotion]'), e.closest('li.gtkit-seg')?.dataset.segmentId])"
                            "(document.activeElement)")
    assert focused == [True, start["seg-0002"]["id"]]

    # The low-support one selects its segment and seeks to it.
    decision = page.locator("[data-role=review-decision]")
    assert decision.get_attribute("data-decision") == "accept"
    assert page.locator("[data-action=review-accept]").inner_text() == "Accept"
    page.locator("[data-role=disagreements] li").nth(0).locator("button").click()
    target = start["seg-0003"]["id"]
    assert page.evaluate("window.gtkit.state.selectedSegmentId") == target
    wait_until(page, "Math.abs(window.gtkit.player.currentTime - 12.0) < 0.05")
    assert page.locator("[data-role=disagreements] li.gtkit-selected").get_attribute("data-kind") == "low-support"

    # Edit with the normal tools (W: start later), then Accept becomes "Submit edits" (decision edit).
    step = page.evaluate("window.gtkit.player.nudgeStep()")
    page.keyboard.press("w")
    page.keyboard.press("w")
    moved = by_pre(page)["seg-0003"]
    assert moved["start"] == pytest.approx(12.0 + 2 * step, abs=0.0011)
    wait_until(page, "document.querySelector('[data-role=review-decision]').dataset.decision === 'edit'")
    assert page.locator("[data-action=review-accept]").inner_text() == "Submit edits"

    # The keys are in the help overlay.
    page.keyboard.press("?")
    keys = page.eval_on_selector_all(".gtkit-help kbd", "els => els.map(e => e.textContent)")
    assert "A" in keys and "N" in keys
    page.keyboard.press("Escape")

    page.keyboard.press("a")  # accept -> an edit, since a segment moved
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    saved = saved_answer(portal)
    assert saved.review is not None and saved.review.decision == "edit"
    seg = {s.presegment_id: s for s in saved.segments}["seg-0003"]
    assert (seg.start, seg.end) == pytest.approx((moved["start"], 14.0), abs=0.001)
    assert probe.errors == [] and probe.script_ran == [] and console == []


def test_reject_without_a_note_is_refused(portal_factory, open_page, peaks_dir):
    portal = portal_factory("call-center", [review_line(peaks_dir)])
    page, probe, console = open_review(portal, open_page)
    # Accessible: the note has a label, the buttons have names, the counter and error are announced.
    note = page.get_by_label("Note for the annotators (required to reject)")
    assert note.count() == 1 and note.get_attribute("maxlength") == "2000"
    for action in ("review-accept", "review-reject"):
        assert page.locator(f"[data-action={action}]").inner_text().strip()
    assert page.locator("[data-role=review-error]").get_attribute("role") == "alert"
    assert page.locator("[data-role=ghost-lanes]").get_attribute("aria-hidden") == "true"

    # Reject without a note: refused, with a visible message, and nothing is posted.
    page.locator("[data-action=review-reject]").click()
    error = page.locator("[data-role=review-error]")
    assert error.is_visible() and "reject needs a note" in error.inner_text()
    assert page.evaluate("document.activeElement.dataset.role") == "review-note-input"
    assert page.locator("[data-role=review-decision]").get_attribute("data-decision") == "reject"
    # The form's own Submit refuses it the same way (the summary lists it too).
    page.click("crowd-button[form-action=submit]")
    page.wait_for_timeout(300)
    assert page.url.endswith("/task/0") and portal.responses("0") == []
    assert "reject needs a note" in page.locator("[data-role=summary]").inner_text()
    # "Do not reject" takes the choice back.
    page.locator("[data-action=review-cancel-reject]").click()
    assert page.locator("[data-role=review-decision]").get_attribute("data-decision") == "accept"
    assert probe.errors == [] and probe.script_ran == [] and console == []


def test_reject_with_a_note(portal_factory, open_page, peaks_dir):
    portal = portal_factory("call-center", [review_line(peaks_dir)])
    page, probe, console = open_review(portal, open_page)
    # N, then the note (counter), then Ctrl+Enter in the note rejects.
    page.locator(".gtkit-title").click()
    page.keyboard.press("n")
    assert page.evaluate("document.activeElement.dataset.role") == "review-note-input"
    text = "Speaker turns at 12 s are the agent, not the customer. <b>check</b>"
    page.keyboard.type(text)
    assert page.locator("[data-role=review-note-count]").inner_text() == f"{len(text)} / 2000"
    # The note and the reject choice are autosaved with the answer: a reload keeps them.
    wait_until(page, "(localStorage.getItem(window.gtkit.autosave.key) || '').includes('Speaker turns at 12 s')")
    page.reload()
    wait_ready(page)
    wait_until(page, "window.gtkit.review && window.gtkit.review.review !== null")
    assert page.locator("[data-role=review-note-input]").input_value() == text
    assert page.locator("[data-role=review-decision]").get_attribute("data-decision") == "reject"
    page.locator("[data-role=review-note-input]").focus()
    page.keyboard.press("Control+Enter")
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    saved = saved_answer(portal)
    assert saved.review is not None and (saved.review.decision, saved.review.note) == ("reject", text)
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('gtkit:answer:'))") == []
    assert probe.errors == [] and probe.script_ran == [] and console == []


def test_unchanged_review_is_an_accept_and_a_missing_review_file_blocks_submit(portal_factory, open_page, peaks_dir,
                                                                               tmp_path):
    # The review data in a file (review-ref, as when it would not fit in the line): same page.
    line = review_line(peaks_dir)
    review_file = tmp_path / "c1.review.json"
    review_file.write_text(json.dumps(line.pop("review")))
    missing = review_line(peaks_dir, **{"interaction-id": "c2", "review-ref": str(tmp_path / "gone.review.json")})
    missing.pop("review")
    portal = portal_factory("call-center", [{**line, "review-ref": str(review_file)}, missing])
    page, probe, console = open_review(portal, open_page)
    assert page.locator("[data-ghost-lane]").count() == 3
    assert by_pre(page)["seg-0002"]["attributes"] == {"emotion": "Angry"}  # the file's review.answer
    page.locator("[data-action=review-accept]").click()
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    assert saved_answer(portal).review.decision == "accept"
    assert probe.errors == [] and console == []

    # A review file that cannot be downloaded: said (host only), and Submit is disabled.
    page.goto(f"{portal.url}/task/1")
    wait_ready(page)
    wait_until(page, "document.querySelector('[data-role=media-error]').textContent.includes('review file')")
    assert page.locator("crowd-button[form-action=submit]").get_attribute("data-gtkit-blocked") is not None
    assert "gone.review.json" not in page.locator("[data-role=media-error]").inner_text()


def video_review() -> dict:
    """A review of a video-generation label, by hand, as contract/review.py has it."""
    def worker(name: str, spans: list[tuple[float, float]], quality: int) -> dict:
        return {"worker": name, "answer": {
            "schemaVersion": "1.0", "labelSchema": "video-generation", "interactionId": "vid-0001",
            "mediaDuration": 15.0,
            "tracks": [{"id": "t1", "category": "motion", "label": "Jitter"}],
            "segments": [{"id": f"s{i}", "track": "t1", "start": a, "end": b, "text": "", "attributes": {}}
                         for i, (a, b) in enumerate(spans)],
            "content": {"overall_quality": quality, "prompt_adherence": "Yes"}}}

    seg = {"id": "seg-0001", "category": "motion", "label": "Jitter", "start": 3.0, "end": 6.0, "text": "",
           "support": 2, "agreement": 0.6}
    review = {
        "of-job": "video-labels", "label-attribute": "video-labels", "iteration": 1,
        "consolidated": {"schemaVersion": "1.0", "labelSchema": "video-generation", "interactionId": "vid-0001",
                         "mediaDuration": 15.0, "workerCount": 2, "validWorkerCount": 2, "segments": [seg],
                         "content": {"overall_quality": {"value": 3, "agreement": 0.5, "tie": True},
                                     "prompt_adherence": {"value": "Yes", "agreement": 1.0}}},
        "answer": {"schemaVersion": "1.0", "labelSchema": "video-generation", "interactionId": "vid-0001",
                   "mediaDuration": 15.0, "tracks": [{"id": "t1", "category": "motion", "label": "Jitter"}],
                   "segments": [{"id": "seg-0001", "track": "t1", "start": 3.0, "end": 6.0, "text": "",
                                 "attributes": {}, "presegmentId": "seg-0001"}],
                   "content": {"overall_quality": 3, "prompt_adherence": "Yes"}},
        "workers": [worker("w1", [(2.5, 6.0)], 2), worker("w2", [(3.5, 6.2), (9.0, 10.0)], 4)],
        "disagreements": [{"kind": "low-agreement", "segment-id": "seg-0001", "score": 0.6,
                           "message": "2 of 2 workers marked this motion Jitter segment; mean IoU 0.6"},
                          {"kind": "content-tie", "field": "overall_quality", "score": 0.5,
                           "message": "overall_quality: a tie (votes 1/1)"}],
    }
    ReviewInput.model_validate(review)  # the hand-made fixture follows the contract
    return review


def test_video_review(portal_factory, open_page, peaks_dir):
    line = {"source-ref": f"{MEDIA}/video_001.mp4", "media-type": "video", "interaction-id": "vid-0001",
            "duration-seconds": 15.0, "peaks-ref": str(peaks_dir / "video_001.mp4.peaks.json"),
            "pre-segments": [{"id": "seg-0001", "track": "motion", "label": "Jitter", "start": 3.0, "end": 6.0,
                              "source": "consolidated"}],
            "review": video_review()}
    portal = portal_factory("video-generation", [line])
    page, probe, console = open_review(portal, open_page)
    assert page.locator("video.gtkit-video").count() == 1
    lanes = page.eval_on_selector_all("[data-ghost-lane]", "els => els.map(e => e.dataset.ghostLane)")
    assert lanes == ["consolidated", "w1", "w2"]
    assert page.locator("[data-worker-answers=overall_quality]").inner_text() == "w1: 2 · w2: 4"
    # The disagreement on the segment seeks the video to it.
    page.locator("[data-role=disagreements] li").nth(0).locator("button").click()
    wait_until(page, "Math.abs(document.querySelector('video.gtkit-video').currentTime - 3.0) < 0.05")
    # Clicking a disagreement band on the ghost lanes picks it too.
    page.locator("[data-role=disagreements] li").nth(1).locator("button").click()
    page.locator("[data-role=ghost-lanes]").scroll_into_view_if_needed()
    box = page.locator("[data-role=ghost-lanes]").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 4.5 / 15.0, box["y"] + box["height"] / 2)
    wait_until(page, "document.querySelector('[data-role=disagreements] li.gtkit-selected')"
                           ".dataset.kind === 'low-agreement'")
    # Change the tied rating, then Accept: an edit.
    page.check('input[name="content-overall_quality"][value="4"]')
    wait_until(page, "document.querySelector('[data-role=review-decision]').dataset.decision === 'edit'")
    page.locator("[data-action=review-accept]").click()
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    saved = saved_answer(portal)
    assert saved.review.decision == "edit" and saved.content["overall_quality"] == 4
    assert probe.errors == [] and console == []


def test_a_relabeling_task_shows_the_reviewers_note_as_text(portal_factory, open_page, peaks_dir):
    note = "Wrong speaker from 12 s. <img src=x onerror=alert(1)><script>alert(2)</script>"
    portal = portal_factory("call-center", [call_line(peaks_dir, **{"review-note": {"note": note, "iteration": 2}})])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_ready(page)
    box = page.locator("[data-role=reviewer-note]")
    assert box.locator(".gtkit-review-note-text").inner_text() == note
    assert "labeling round 2" in box.inner_text()
    assert box.locator("img, script").count() == 0
    # Above the form: before the stage; and it is a labeling page, not a review.
    assert page.evaluate("""!!(document.querySelector('[data-role=reviewer-note]').compareDocumentPosition(
        document.querySelector('.gtkit-stage')) & Node.DOCUMENT_POSITION_FOLLOWING)""")
    assert page.evaluate("window.gtkit.review") is None and page.locator("[data-role=review]").count() == 0
    assert page.locator("crowd-button[form-action=submit]").inner_text() == "Submit"
    assert probe.script_ran == [] and probe.dialogs == [] and probe.errors == []


def test_disagreements_are_marked_on_the_editable_lane_and_a_mean_rating_is_explained(portal_factory, open_page,
                                                                                       peaks_dir):
    line = review_line(peaks_dir)
    other = review_line(peaks_dir, **{"interaction-id": "c2"})
    portal = portal_factory("call-center", [line, other])
    page, probe, console = open_review(portal, open_page)
    start = by_pre(page)

    # The segments a disagreement is about are marked in their rows and on the waveform, in the
    # editable lane (not only the ghost lanes); the others are not.
    def marks() -> dict[str, list]:
        return page.evaluate("""(() => {
            const out = {}
            for (const s of window.gtkit.state.segments) {
                const row = document.querySelector(`li.gtkit-seg[data-segment-id="${s.id}"]`)
                const region = window.gtkit.player.regionById.get(s.id)?.element
                out[s.presegmentId] = [row?.classList.contains('gtkit-flagged') || false,
                    row?.dataset.disagreement || '',
                    row?.querySelector('[data-role=segment-disagreement]')?.hidden === false
                        ? row.querySelector('[data-role=segment-disagreement]').textContent : '',
                    region?.dataset.disagreement || '', region ? region.style.backgroundImage !== '' : null]
            }
            return out
        })()""")
    wait_until(page, "document.querySelectorAll('li.gtkit-seg.gtkit-flagged').length === 2")
    got = marks()
    assert got["seg-0001"] == [False, "", "", "", False]
    assert got["seg-0003"] == [True, "low-support", "⚑ Low support", "low-support", True]
    assert got["seg-0002"][:2] == [True, "content-disagreement low-agreement"]
    assert got["seg-0002"][2] == "⚑ Content disagreement, Low agreement"
    # The list is still first and still seeks; a moved segment keeps its mark.
    page.locator("[data-role=disagreements] li").nth(0).locator("button").click()
    wait_until(page, "Math.abs(window.gtkit.player.currentTime - 12.0) < 0.05")
    page.keyboard.press("w")
    wait_until(page, "document.querySelector('[data-role=review-decision]').dataset.decision === 'edit'")
    assert marks()["seg-0003"][:2] == [True, "low-support"]
    assert start["seg-0003"]["id"] == page.evaluate("window.gtkit.state.selectedSegmentId")
    page.keyboard.press("Control+z")
    wait_until(page, "document.querySelector('[data-role=review-decision]').dataset.decision === 'accept'")
    # A row's mark goes to its (first) disagreement in the list.
    page.locator(f'li.gtkit-seg[data-segment-id="{start["seg-0002"]["id"]}"] [data-role=segment-disagreement]').click()
    assert page.evaluate("window.gtkit.state.selectedSegmentId") == start["seg-0002"]["id"]
    assert page.locator("[data-role=disagreements] li.gtkit-selected").get_attribute("data-kind") == \
        "content-disagreement"

    # The consolidated rating is the workers' mean (3.333): no step pretends to be selected, the
    # hint gives the mean and each worker's rating and says what Accept does with it.
    assert page.locator('input[name="content-overall_rating"]:checked').count() == 0
    hint = page.locator("[data-rating-hint=overall_rating]")
    assert hint.inner_text() == ("No step is selected: Accept keeps the mean 3.33 of the workers' ratings "
                                 "(w1: 4 · w2: 4). Choose a step to change it.")
    assert page.locator("[data-worker-answers=overall_rating]").count() == 0
    page.locator("[data-action=review-accept]").click()
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    saved = saved_answer(portal)
    assert saved.review.decision == "accept" and saved.content["overall_rating"] == pytest.approx(3.333)

    # Choosing a step: it is selected, the hint says so, and the label is edited.
    page.goto(f"{portal.url}/task/1")
    wait_ready(page)
    wait_until(page, "window.gtkit.review && window.gtkit.review.review !== null")
    page.check('input[name="content-overall_rating"][value="4"]')
    wait_until(page, "document.querySelector('[data-rating-hint=overall_rating]').dataset.selected === '4'")
    assert page.locator("[data-rating-hint=overall_rating]").inner_text() == \
        "You chose 4; the workers' mean is 3.33 (w1: 4 · w2: 4)."
    wait_until(page, "document.querySelector('[data-role=review-decision]').dataset.decision === 'edit'")
    assert probe.errors == [] and probe.script_ran == [] and console == []
