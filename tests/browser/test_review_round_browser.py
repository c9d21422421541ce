"""Issue 17 end to end in chromium, on `gtkit serve` (SQLite): a full review round.

Two annotators sign in and label a job of two calls in the worker UI; the admin makes a review job
of it on the job's page (as `gtkit serve job create-review --all`); a reviewer signs in, edits one
segment of call 1 with the normal tools (W nudges its start, the row's Track select relabels it)
and accepts, and rejects
call 2 with a note; call 2 goes back to the annotators as iteration 2 with the note on their page;
they label it again; the reviewer gets it back and accepts it. `gtkit export --reviewed-only` of the
review job's written output layout then holds the reviewer's edit (the new start and label) and the
review lineage (reviewer id, adjustment status, changes). Every step is a click or a key press in
the page; only the set-up (accounts, the labeling job) and the export go through Python and the CLI.
A second test: a review too big for its line is read from its sidecar.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from test_serve_browser import PASSWORD, PRE, new_page, sign_in
from ui_helpers import MEDIA, READY, wait_until

from toolkit.contract import load_label_schema
from toolkit.service import jobs, migrate, people
from toolkit.service.db import Database
from toolkit.service.portal import PortalServer
from toolkit.service.tables import Consolidation, DataObject, Job
from toolkit.service.web import ServeConfig, create_app
from toolkit.service.web.app import stop
from toolkit.storage import Storage

pytestmark = pytest.mark.browser
NOTE = "The second turn is the agent, not the customer: fix the speaker. <b>not markup</b>"
GTKIT = [str(Path(sys.executable).with_name("gtkit"))]


def wait_for(db: Database, what: str, check, timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with db.read() as session:
            if check(session):
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {timeout_s} s: {what}")
        time.sleep(0.1)


def decisions(session, job_name: str) -> list[str | None]:
    rows = session.scalars(select(Consolidation.label_json).join(DataObject, DataObject.id == Consolidation.object_id)
                           .join(Job, Job.id == DataObject.job_id).where(Job.name == job_name)
                           .order_by(DataObject.position))
    return [json.loads(t).get("decision") if t else None for t in rows]


def open_task(page) -> str:
    """Claim the next task from the home page; its interaction id once the page is ready."""
    page.click("#next-task")
    page.wait_for_url("**/task/*")
    wait_until(page, READY)
    wait_until(page, "window.gtkit.getAnswer().segments.length === 2")
    return page.evaluate("window.gtkit.taskInput['interaction-id']")


def label_call(page, rating: int) -> None:
    """What an annotator does: answer the whole-call questions, keep the pre-segments, submit."""
    page.check('input[name="content-background_noise"][value="None"]')
    page.check(f'input[name="content-overall_rating"][value="{rating}"]')
    page.click("crowd-button[form-action=submit]")
    page.wait_for_url("**/submitted")


def open_review(page) -> str:
    interaction = open_task(page)
    wait_until(page, "window.gtkit.review && window.gtkit.review.review !== null")
    return interaction


def test_a_full_review_round(browser, tmp_path, peaks_dir, examples_dir):
    data = tmp_path / "data"
    db = Database.for_data_dir(data)
    migrate.upgrade(db)
    team = people.create_team(db, "calls")
    people.create_user(db, email="admin@example.org", display_name="Admin", password=PASSWORD, role="admin")
    annotators = [people.create_user(db, email=f"{n}@example.org", display_name=n.title(), password=PASSWORD,
                                     team_ids=(team.id,)) for n in ("ann", "bob")]
    reviewer = people.create_user(db, email="rev@example.org", display_name="Rev", password=PASSWORD,
                                  role="reviewer", team_ids=(team.id,))
    lines = [{"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": f"int-000{n}",
              "duration-seconds": 21.0, "pre-segments": PRE, "peaks-ref": str(peaks_dir / "call_001.wav.peaks.json")}
             for n in (1, 2)]
    manifest = tmp_path / "calls.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    jobs.create_job(db, name="served-job", manifest=str(manifest), schema=load_label_schema("call-center"),
                    team_id=team.id, output_uri=str(out), workers_per_object=2)
    app = create_app(ServeConfig(db=db, output_uri=str(out), secure_cookies=False, queue_poll_s=0.2,
                                 storage=Storage([f"s3://example-feedback-bucket/={examples_dir}"]),
                                 media_roots=(peaks_dir,)))
    contexts, errors = [], []
    pages = {}
    try:
        with PortalServer(app) as server:
            url = server.url
            for user in (*annotators, reviewer):
                ctx, page = new_page(browser, errors)
                contexts.append(ctx)
                sign_in(page, url, user.email)
                pages[user.email] = page

            # 1. Both annotators label both calls.
            for index, user in enumerate(annotators):
                page = pages[user.email]
                for _ in range(2):
                    open_task(page)
                    label_call(page, 4 + index)
                page.click("#next-task")
                page.wait_for_selector("#all-done")
                page.goto(f"{url}/")
            wait_for(db, "both calls consolidated", lambda s: decisions(s, "served-job") == [None, None])

            # 2. The admin makes the review job on the labeling job's page.
            ctx, admin = new_page(browser, errors)
            contexts.append(ctx)
            sign_in(admin, url, "admin@example.org")
            admin.goto(f"{url}/admin/")
            admin.click('tr[data-job="served-job"] a')
            admin.wait_for_url("**/admin/jobs/*")
            admin.check('#review-form input[name=select][value=all]')
            admin.click("#create-review")
            admin.wait_for_url("**/admin/jobs/2")
            assert admin.text_content("h1").split()[0] == "served-job-review"
            assert admin.locator("#review-form").count() == 0  # a review job is not reviewed again
            assert admin.text_content("#progress tr:first-child td").strip() == "2"

            # 3. The reviewer: call 1 edited (boundary and label) then accepted; call 2 rejected.
            rev = pages[reviewer.email]
            moved = None
            for _ in range(2):
                interaction = open_review(rev)
                if interaction == "int-0001":
                    first = rev.locator("li.gtkit-seg").first
                    first.locator(".gtkit-seg-dur").click()  # select the row (not one of its controls)
                    seg_id = first.get_attribute("data-segment-id")
                    wait_until(rev, f"window.gtkit.state.selectedSegmentId === {json.dumps(seg_id)}")
                    before = rev.evaluate(f"window.gtkit.state.segments.find(s => s.id === {json.dumps(seg_id)})")
                    step = rev.evaluate("window.gtkit.player.nudgeStep()")
                    rev.keyboard.press("w")
                    rev.keyboard.press("w")
                    track = first.locator("select[data-part=track]")
                    customer = track.evaluate("s => [...s.options].find(o => o.textContent.includes('Customer')).value")
                    track.select_option(customer)
                    moved = rev.evaluate(f"window.gtkit.state.segments.find(s => s.id === {json.dumps(seg_id)})")
                    assert moved["start"] == pytest.approx(before["start"] + 2 * step, abs=0.0011)
                    wait_until(rev, "document.querySelector('[data-role=review-decision]').dataset.decision === 'edit'")
                    assert rev.locator("[data-action=review-accept]").inner_text() == "Submit edits"
                    rev.locator("[data-action=review-accept]").click()
                else:
                    rev.locator("[data-action=review-reject]").click()  # no note yet: refused, note focused
                    assert "reject needs a note" in rev.locator("[data-role=review-error]").inner_text()
                    rev.keyboard.type(NOTE)
                    rev.locator("[data-action=review-reject]").click()
                rev.wait_for_url("**/submitted")
                rev.goto(f"{url}/")
            assert moved is not None and before is not None
            wait_for(db, "both reviews consolidated", lambda s: sorted(map(str, decisions(s, "served-job-review")))
                     == ["edit", "reject"])

            # 4. Call 2 is back with the note (as text); the annotators label it again.
            wait_for(db, "call 2 reopened", lambda s: s.scalar(select(DataObject.iteration).join(Job).where(
                Job.name == "served-job", DataObject.position == 1)) == 2)
            for index, user in enumerate(annotators):
                page = pages[user.email]
                assert open_task(page) == "int-0002"
                box = page.locator("[data-role=reviewer-note]")
                assert box.locator(".gtkit-review-note-text").inner_text() == NOTE
                assert "labeling round 2" in box.inner_text() and box.locator("b").count() == 0
                label_call(page, 3 + index)
                page.goto(f"{url}/")

            # 5. The reviewer gets the new label of call 2 and accepts it unchanged.
            wait_for(db, "call 2 up for review again", lambda s: len(decisions(s, "served-job-review")) == 2
                     and s.scalar(select(DataObject.id).join(Job).where(Job.name == "served-job-review",
                                                                        DataObject.position == 2)) is not None)
            assert open_review(rev) == "int-0002"
            assert rev.evaluate("window.gtkit.review.review.iteration") == 2
            assert rev.locator("[data-role=reviewer-note]").count() == 0
            assert rev.locator("[data-role=review-decision]").get_attribute("data-decision") == "accept"
            rev.locator("[data-action=review-accept]").click()
            rev.wait_for_url("**/submitted")
            wait_for(db, "the round is over",
                     lambda s: decisions(s, "served-job-review") == ["edit", "reject", "accept"])

            review_manifest = out / "served-job-review" / "manifests" / "output" / "output.manifest"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (review_manifest.exists()
                                                       and len(review_manifest.read_text().splitlines()) == 3
                                                       and "accept" in review_manifest.read_text()):
                time.sleep(0.1)
    finally:
        for ctx in contexts:
            ctx.close()
        stop(app)
        db.dispose()
    assert errors == [], "\n".join(errors)

    # 6. The export of the reviewed labels, from the written output layout.
    records = tmp_path / "reviewed.jsonl"
    summary = tmp_path / "summary.json"
    done = subprocess.run([*GTKIT, "export", "--labels", str(review_manifest), "--preset", "sft-transcription",
                           "--format", "jsonl", "--out", str(records), "--reviewed-only", "--summary-json",
                           str(summary), "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    counts = json.loads(summary.read_text())
    assert counts["skipped"] == {"rejected-in-review": 1}
    rows = [json.loads(t) for t in records.read_text().splitlines()]
    by_call = {}
    for row in rows:
        by_call.setdefault(row["lineage"]["interaction_id"], []).append(row)
    assert sorted(by_call) == ["int-0001", "int-0002"]
    edited = by_call["int-0001"]
    review = edited[0]["lineage"]["review"]
    assert review["decision"] == "edit" and review["adjustment_status"] == "adjusted"
    assert review["reviewer"] == reviewer.worker_id and review["review_job"] == "served-job-review"
    assert [m["to"][0] for m in review["changes"]["moved"]] == [pytest.approx(moved["start"], abs=0.001)]
    assert [(r["from"], r["to"]) for r in review["changes"]["relabeled"]] == [("Agent", "Customer")]
    # The edited segment: its new start and its new label are what is exported.
    starts = {round(r["media"]["start"], 3): r["media"] for r in edited}
    assert round(moved["start"], 3) in starts and round(before["start"], 3) not in starts
    assert starts[round(moved["start"], 3)]["label"] == "Customer"
    accepted = by_call["int-0002"][0]["lineage"]["review"]
    assert (accepted["decision"], accepted["adjustment_status"], accepted["changes"]) == ("accept", "unadjusted", {})
    assert accepted["reviewer"] == reviewer.worker_id
    # The annotators' iteration-1 answers to call 2 are kept beside iteration 2's.
    responses = out / "served-job" / "annotations" / "worker-response"
    assert len(list((responses / "iteration-1" / "1").glob("*.json"))) == 2
    assert len(list((responses / "iteration-2" / "1").glob("*.json"))) == 2
    db = Database.for_data_dir(data)
    with db.read() as session:
        assert session.scalar(select(DataObject.state).join(Job).where(Job.name == "served-job",
                                                                       DataObject.position == 1)) == "consolidated"
    db.dispose()


def test_a_review_too_big_for_its_line_is_read_from_its_sidecar(browser, tmp_path, peaks_dir, examples_dir):
    """300 segments by two workers: the review task's `review` (over 400,000 characters) is in a
    sidecar; the reviewer's page on `gtkit serve` downloads it, under the service's CSP, and the
    accept consolidates."""
    from toolkit.service import review, work
    from toolkit.service.runner import run_queue
    from toolkit.service.simulate import simulated_answer_content

    data = tmp_path / "data"
    db = Database.for_data_dir(data)
    migrate.upgrade(db)
    team = people.create_team(db, "calls")
    annotators = [people.create_user(db, email=f"{n}@example.org", display_name=n, password=PASSWORD,
                                     team_ids=(team.id,)) for n in ("ann", "bob")]
    reviewer = people.create_user(db, email="rev@example.org", display_name="Rev", password=PASSWORD,
                                  role="reviewer", team_ids=(team.id,))
    many = [{"id": f"pre-{i}", "track": "speaker", "label": "Agent" if i % 2 else "Customer", "start": i * 0.07,
             "end": i * 0.07 + 0.05, "text": f"turn {i}, words words words"} for i in range(300)]
    line = {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-long",
            "duration-seconds": 21.0, "pre-segments": many, "peaks-ref": str(peaks_dir / "call_001.wav.peaks.json")}
    manifest = tmp_path / "long.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    out = tmp_path / "out"
    schema = load_label_schema("call-center")
    storage = Storage([f"s3://example-feedback-bucket/={examples_dir}"])
    job = jobs.create_job(db, name="long-job", manifest=str(manifest), schema=schema, team_id=team.id,
                          output_uri=str(out), workers_per_object=2)
    for n, user in enumerate(annotators, start=1):
        task = work.claim(db, user.id)
        work.submit(db, user.id, task.object_id, simulated_answer_content(task.task_input, schema, n, storage))
    run_queue(db, storage=storage)
    made = review.create_review_job(db, job.id, storage=storage)
    app = create_app(ServeConfig(db=db, output_uri=str(out), secure_cookies=False, queue_poll_s=0.2,
                                 storage=storage, media_roots=(peaks_dir,)))
    errors: list[str] = []
    try:
        with PortalServer(app) as server:
            ctx, page = new_page(browser, errors)
            sign_in(page, server.url, reviewer.email)
            page.click("#next-task")
            page.wait_for_url("**/task/*")
            wait_until(page, READY)
            assert "review" not in page.evaluate("Object.keys(window.gtkit.taskInput)")
            assert page.evaluate("window.gtkit.taskInput['review-ref']").endswith(".review.json")
            wait_until(page, "window.gtkit.review && window.gtkit.review.review !== null")
            lanes = page.eval_on_selector_all("[data-ghost-lane]", "els => els.map(e => e.dataset.ghostLane)")
            assert lanes == ["consolidated", "w1", "w2"]
            assert page.evaluate("window.gtkit.getAnswer().segments.length") >= 300
            page.locator("[data-action=review-accept]").click()
            page.wait_for_url("**/submitted")
            wait_for(db, "the review consolidated", lambda s: decisions(s, made.name) == ["accept"])
            ctx.close()
    finally:
        stop(app)
        db.dispose()
    assert errors == [], "\n".join(errors)
