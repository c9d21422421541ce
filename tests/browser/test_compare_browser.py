"""Issue 16 A: a comparison task in the local portal through Debian chromium: switch candidates at
the same playhead (keys A/B/X), loop a span across switches, mark a span, give the overall CMOS
preference and MOS, submit; the saved answer validates and consolidates."""

from __future__ import annotations

import json
import shutil
import subprocess
from types import SimpleNamespace

import pytest
from ui_helpers import MEDIA, wait_until

from toolkit.contract import SegmentationAnswer, load_label_schema, validate_answer
from toolkit.labeling.consolidate import consolidate
from toolkit.service.portal import PortalServer, PreviewSource, create_app
from toolkit.storage import Storage

pytestmark = pytest.mark.browser
TOL = 0.15  # a switch lands where the playhead was, give or take a frame of playback


def compare_line(n: int = 2, reference: bool = True) -> dict:
    files = ["call_001.wav", "call_003.wav", "call_002.mp3"][:n]
    return {"source-ref": f"{MEDIA}/{files[0]}", "media-type": "audio", "interaction-id": "cmp-0001",
            "duration-seconds": 20.0,
            "prompt": {"text": "Read <b>this</b> aloud",
                       **({"reference-ref": f"{MEDIA}/call_002.mp3"} if reference else {})},
            "candidates": [{"source-ref": f"{MEDIA}/{f}", "system-id": f"sys-{i}"} for i, f in enumerate(files)]}


def wait_compare(page) -> None:
    wait_until(page, "window.gtkit && window.gtkit.mode === 'compare' && window.gtkit.compare.duration > 0")


def test_ab_switch_loop_mark_submit_consolidate(portal_factory, open_page):
    line = compare_line(2)
    portal = portal_factory("tts-compare", [line])
    page, probe = open_page(portal)
    page.goto(f"{portal.url}/task/0")
    wait_compare(page)
    # the prompt is text, never markup; system ids never reach the page
    assert page.locator("[data-role=prompt] p").text_content() == "Read <b>this</b> aloud"
    assert page.locator("[data-role=prompt] b").count() == 0
    assert "sys-" not in page.content()
    order = page.evaluate("window.gtkit.order")
    assert sorted(order) == ["1", "2"]

    # play A, switch to B at the same playhead, keep playing
    page.locator(".gtkit-title").click()
    page.evaluate("window.gtkit.compare.seek(3)")
    page.keyboard.press("Space")
    wait_until(page, "window.gtkit.compare.currentTime >= 3.5")
    before = page.evaluate("window.gtkit.compare.currentTime")
    page.keyboard.press("b")
    state = page.evaluate("""() => { const c = window.gtkit.compare, m = c.media
        return { active: c.active, t: c.currentTime, playing: m.filter(x => !x.paused).map(x => x.dataset.candidate),
                 audible: m.filter(x => !x.muted).map(x => x.dataset.candidate) } }""")
    assert state["active"] == "B" and state["playing"] == ["B"] and state["audible"] == ["B"]
    assert state["t"] == pytest.approx(before, abs=TOL)
    page.keyboard.press("x")  # the reference, same time
    assert page.evaluate("window.gtkit.compare.active") == "X"
    page.keyboard.press("a")
    assert page.evaluate("window.gtkit.compare.active") == "A"
    assert page.locator('[data-role=switch][data-key="A"]').get_attribute("aria-pressed") == "true"

    # select 5..6 s by dragging on the timeline; loop it; the loop holds across a switch
    box = page.locator("[data-role=timeline]").bounding_box()
    duration = page.evaluate("window.gtkit.compare.duration")
    x = lambda t: box["x"] + box["width"] * t / duration  # noqa: E731
    y = box["y"] + box["height"] / 2
    page.mouse.move(x(5), y)
    page.mouse.down()
    page.mouse.move(x(6), y, steps=8)
    page.mouse.up()
    page.keyboard.press("l")
    assert page.evaluate("window.gtkit.compare.looping") is True
    wait_until(page, "window.gtkit.compare.currentTime > 5.7")
    page.keyboard.press("b")
    wait_until(page, "window.gtkit.compare.currentTime > 5.8", timeout=5000)
    wait_until(page, "window.gtkit.compare.currentTime < 5.5", timeout=5000)  # wrapped back
    assert page.evaluate("window.gtkit.compare.active") == "B"
    page.keyboard.press("Space")  # pause

    # mark the span: B better, prosody
    page.click("[data-action=mark-span]")
    row = page.locator(".gtkit-compare-span").first
    row.locator("[data-field=span-preferred]").select_option(order[1])
    row.locator("[data-field=span-reason]").select_option("Prosody")

    # submit without a preference is refused with the reason shown
    page.click("crowd-button[form-action=submit]")
    assert page.locator('[data-role=problems] li[data-path="comparison.preferred"]').is_visible()
    assert page.url == f"{portal.url}/task/0"

    page.check('[data-cmos="2"]')  # B clearly better
    page.select_option('[data-mos="A"]', "3")
    page.select_option('[data-mos="B"]', "4")
    page.fill('textarea[name="content-comment"]', "B sounds natural")
    before = page.evaluate("window.gtkit.getAnswer()")

    # a reload restores the judgement (autosave), controls included
    page.wait_for_timeout(600)  # autosave debounce
    page.reload()
    wait_compare(page)
    assert page.evaluate("window.gtkit.restored") is True
    after = page.evaluate("window.gtkit.getAnswer()")
    for key in ("comparison", "content"):
        assert after[key] == before[key], key
    assert page.is_checked('[data-cmos="2"]')
    assert page.locator('[data-mos="B"]').input_value() == "4"
    assert page.locator('textarea[name="content-comment"]').input_value() == "B sounds natural"
    assert page.locator(".gtkit-compare-span [data-field=span-reason]").input_value() == "Prosody"
    page.click("crowd-button[form-action=submit]")
    page.wait_for_url(f"{portal.url}/task/0/submitted")
    assert probe.errors == [] and probe.dialogs == [] and probe.script_ran == []
    # the autosave is cleared after submit
    page.goto(f"{portal.url}/task/0")
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('compare:'))") == []

    (saved,) = portal.responses("0")
    raw = saved["answers"][0]["answerContent"]["answer"]
    answer = (SegmentationAnswer.model_validate_json(raw) if isinstance(raw, str)
              else SegmentationAnswer.model_validate(raw))
    assert validate_answer(answer, load_label_schema("tts-compare")) == []
    comp = answer.comparison
    assert comp.order == order and comp.preferred == order[1] and comp.strength == 2 and comp.cmos() == 2
    assert comp.mos == {order[0]: 3, order[1]: 4}
    (span,) = comp.spans
    assert span.start == pytest.approx(5, abs=0.1) and span.end == pytest.approx(6, abs=0.1)
    assert (span.preferred, span.reason) == (order[1], "Prosody")

    label = consolidate([("w1", answer)], load_label_schema("tts-compare"), data_object=line)
    systems = {c["candidate-id"]: c["system-id"] for c in
               [{"candidate-id": str(i + 1), **c} for i, c in enumerate(line["candidates"])]}
    assert label.comparison.preferred_system == systems[order[1]]


def test_abn_video_frame_synced(tmp_path, examples_dir, open_page):
    """Three video candidates (copies of the example video under other keys), no reference."""
    media = tmp_path / "media"
    media.mkdir()
    for name in ("v1.mp4", "v2.mp4", "v3.mp4"):
        shutil.copy(examples_dir / "media" / "video_001.mp4", media / name)
    line = {"source-ref": "s3://cmp-bucket/v1.mp4", "media-type": "video", "interaction-id": "vid-1",
            "prompt": {"text": "A cat on a skateboard"},
            "candidates": [{"source-ref": f"s3://cmp-bucket/{n}", "system-id": f"gen-{n}"}
                           for n in ("v1.mp4", "v2.mp4", "v3.mp4")]}
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    schema = load_label_schema("tts-compare").model_copy(update={"media": "video"})
    source = PreviewSource(manifest, schema, out=tmp_path / "out", storage=Storage([f"s3://cmp-bucket/={media}"]))
    server = PortalServer(create_app(source)).start()
    try:
        page, probe = open_page(SimpleNamespace(url=server.url))  # open_page needs only the url
        page.goto(f"{server.url}/task/0")
        wait_compare(page)
        assert page.locator("video[data-role=media]").count() == 3
        assert page.locator('[data-role=switch][data-key="X"]').count() == 0
        page.evaluate("window.gtkit.compare.seek(2)")
        page.locator(".gtkit-title").click()
        page.keyboard.press("c")
        wait_until(page, "(() => { const v = document.querySelector('video[data-candidate=C]')\n"
                               "return !v.hidden && !v.seeking })()")
        shown = page.evaluate("[...document.querySelectorAll('video[data-role=media]')].filter(v => !v.hidden)"
                              ".map(v => [v.dataset.candidate, v.currentTime])")
        assert len(shown) == 1 and shown[0][0] == "C" and shown[0][1] == pytest.approx(2, abs=0.05)
        page.keyboard.press("d")  # no fourth candidate: nothing changes
        assert page.evaluate("window.gtkit.compare.active") == "C"
        order = page.evaluate("window.gtkit.order")
        page.check(f'[data-best="{order[2]}"]')
        page.check('[data-strength="3"]')
        got = page.evaluate("window.gtkit.getAnswer().comparison")
        assert (got["preferred"], got["strength"]) == (order[2], 3)
        assert page.evaluate("window.gtkit.validate()") == []
        assert probe.errors == []
    finally:
        server.stop()


def test_two_workers_compare_through_the_local_job(browser, tmp_path, examples_dir):
    """`gtkit local-job run` (a real subprocess): two workers judge an A/B task in chromium, the job
    consolidates with the post-annotation Lambda code; the output manifest carries the majority."""
    from test_localjob_browser import GTKIT, close_all, free_port, wait_for_port

    from toolkit.contract import ConsolidatedLabel

    line = compare_line(2, reference=False)
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    out, port = tmp_path / "out", free_port()
    proc = subprocess.Popen(
        [str(GTKIT), "local-job", "run", "--manifest", str(manifest), "--schema", "tts-compare", "--workers", "2",
         "--out", str(out), "--job-name", "cmp-job", "--port", str(port),
         "--mirror", f"s3://example-feedback-bucket/={examples_dir}"],
        stdout=(tmp_path / "stdout.txt").open("w"), stderr=(tmp_path / "stderr.txt").open("w"))
    contexts, orders = [], []
    try:
        wait_for_port(port, proc)
        url = f"http://127.0.0.1:{port}"
        for worker, cmos in (("alice", "-3"), ("bob", "-1")):  # both: A better
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            contexts.append(context)
            page = context.new_page()
            page.set_default_timeout(20000)
            page.goto(f"{url}/login?next=/next")
            page.fill("#worker", worker)
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/task/0")
            wait_compare(page)
            orders.append(page.evaluate("window.gtkit.order"))
            page.check(f'[data-cmos="{cmos}"]')
            page.click("crowd-button[form-action=submit]")
            page.wait_for_url(f"{url}/task/0/submitted")
        proc.wait(timeout=30)
    finally:
        close_all(contexts, proc)
    assert proc.returncode == 0, (tmp_path / "stderr.txt").read_text()
    (labeled,) = [json.loads(x) for x in (out / "cmp-job" / "manifests" / "output" / "output.manifest")
                  .read_text().splitlines()]
    label = ConsolidatedLabel.model_validate(labeled["segments"])
    comp = label.comparison
    order = orders[0]
    assert orders[1] == order  # one order per task, the same for every worker
    assert label.status == "ok" and label.valid_worker_count == 2
    assert comp.votes == {order[0]: 2} and comp.preferred == order[0] and comp.strength == 2.0
    assert comp.agreement == 1.0 and comp.preferred_positions == {"A": 2}
    assert labeled["candidates"] == line["candidates"]  # system ids travel in the output manifest
