"""Issue 4 acceptance: `gtkit local-job run` with 2 workers, labeled through the UI in chromium.

The job runs as a real subprocess (the CLI), two browser contexts sign in with different worker
names and submit through the worker UI; the job then consolidates with the post-annotation
Lambda code, writes output.manifest and exits by itself.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ui_helpers import MEDIA, wait_ready, wait_until

from toolkit.contract import ConsolidatedLabel, SegmentationAnswer
from toolkit.contract.output_manifest import output_line_problems

pytestmark = pytest.mark.browser

PRE = [
    {"id": "pre-1", "track": "speaker", "label": "Agent", "start": 0.4, "end": 3.56,
     "text": "Northwind support, this is Dana. How can I help?"},
    {"id": "pre-2", "track": "speaker", "label": "Customer", "start": 3.9, "end": 8.2,
     "text": "Hi, my order was due on Monday."},
]
GTKIT = Path(sys.executable).with_name("gtkit")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"local job exited early with code {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("portal did not start")


def close_all(contexts: list, proc: subprocess.Popen) -> None:
    """Close the browser contexts, and stop the job if it is still running (a failed test)."""
    for ctx in contexts:
        ctx.close()
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def sign_in_and_open_task(browser, url: str, worker: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20000)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(f"{url}/login?next=/next")
    page.fill("#worker", worker)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/task/0")
    wait_ready(page)
    wait_until(page, "window.gtkit.getAnswer().segments.length === 2")
    return context, page, errors


def test_two_workers_label_a_call_through_the_portal(browser, tmp_path, peaks_dir, examples_dir):
    line = {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-0001",
            "duration-seconds": 21.0, "pre-segments": PRE,
            "peaks-ref": str(peaks_dir / "call_001.wav.peaks.json")}
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    out = tmp_path / "out"
    port = free_port()
    proc = subprocess.Popen(
        [str(GTKIT), "local-job", "run", "--manifest", str(manifest), "--schema", "call-center",
         "--workers", "2", "--out", str(out), "--job-name", "browser-job", "--port", str(port),
         "--mirror", f"s3://example-feedback-bucket/={examples_dir}"],
        stdout=(tmp_path / "stdout.txt").open("w"), stderr=(tmp_path / "stderr.txt").open("w"))
    contexts = []
    try:
        wait_for_port(port, proc)
        url = f"http://127.0.0.1:{port}"

        # Worker one accepts the pre-segments and answers the required questions.
        ctx, page, errors_a = sign_in_and_open_task(browser, url, "alice")
        contexts.append(ctx)
        page.check('input[name="content-background_noise"][value="None"]')
        page.check('input[name="content-overall_rating"][value="4"]')
        page.click("crowd-button[form-action=submit]")
        page.wait_for_url(f"{url}/task/0/submitted")

        # Worker two moves the first segment's end and rates differently.
        ctx, page, errors_b = sign_in_and_open_task(browser, url, "bob")
        contexts.append(ctx)
        first = page.evaluate("window.gtkit.getAnswer().segments[0]")
        end = page.locator(f'li.gtkit-seg[data-segment-id="{first["id"]}"] input[data-part=end]')
        end.fill("3.76")
        end.press("Enter")
        end.blur()
        wait_until(page, "Math.abs(window.gtkit.getAnswer().segments[0].end - 3.76) < 0.001")
        page.check('input[name="content-background_noise"][value="Music"]')
        page.check('input[name="content-overall_rating"][value="5"]')
        page.click("crowd-button[form-action=submit]")
        page.wait_for_url(f"{url}/task/0/submitted")
        assert errors_a == [] and errors_b == []

        proc.wait(timeout=30)  # the job ends once every task is labeled
    finally:
        close_all(contexts, proc)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 0, stderr
    assert (tmp_path / "stdout.txt").read_text() == ""  # human output goes to stderr
    assert "browser-job" in stderr and "output.manifest" in stderr

    out_manifest = out / "browser-job" / "manifests" / "output" / "output.manifest"
    (labeled,) = [json.loads(x) for x in out_manifest.read_text().splitlines()]
    assert output_line_problems(labeled, "segments", "browser-job") == []
    assert labeled["source-ref"] == line["source-ref"] and labeled["pre-segments"] == PRE
    label = ConsolidatedLabel.model_validate(labeled["segments"])
    assert label.status == "ok" and label.valid_worker_count == 2
    assert sorted(w.worker_id for w in label.workers) == ["alice", "bob"]
    assert len(label.segments) == 2 and all(s.support == 2 for s in label.segments)
    agent = label.segments[0]
    assert agent.label == "Agent" and agent.start == pytest.approx(0.4, abs=0.01)
    assert agent.end == pytest.approx(3.66, abs=0.01)  # median of 3.56 and 3.76
    assert label.content["overall_rating"].mean == 4.5
    assert label.content["background_noise"].tie is True

    responses = out / "browser-job" / "annotations" / "worker-response" / "iteration-1" / "0"
    answers = [json.loads(p.read_text())["answers"][0] for p in sorted(responses.glob("*.json"))]
    assert sorted(a["workerId"] for a in answers) == ["alice", "bob"]
    for a in answers:
        SegmentationAnswer.model_validate_json(a["answerContent"]["answer"])


def test_a_refused_submission_keeps_the_work_saved_in_the_browser(browser, tmp_path, peaks_dir, examples_dir):
    """Alice opens the only place of a task; it goes to bob (her hold released here) and he
    answers first. Her submission is refused with the reason, and her work stays autosaved."""
    from datetime import UTC, datetime

    from toolkit.contract import load_label_schema
    from toolkit.service.local_job import JobSource
    from toolkit.service.portal import PortalServer, create_app
    from toolkit.service.simulate import simulated_answer_content
    from toolkit.storage import Storage

    line = {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-0001",
            "duration-seconds": 21.0, "pre-segments": PRE,
            "peaks-ref": str(peaks_dir / "call_001.wav.peaks.json")}
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    schema = load_label_schema("call-center")
    storage = Storage([f"s3://example-feedback-bucket/={examples_dir}"])
    source = JobSource(manifest, schema, workers=1, out=tmp_path / "out", job_name="held", storage=storage)
    with PortalServer(create_app(source)) as server:
        ctx, page, errors = sign_in_and_open_task(browser, server.url, "alice")
        try:
            assert [t.in_progress_by for t in source.list_tasks()] == [frozenset({"alice"})]
            source.release("0", "alice")
            source.accept("0", "bob")
            now = datetime.now(UTC)
            source.submit("0", "bob", simulated_answer_content(source.task_input("0"), schema, 1, storage), now, now)

            page.check('input[name="content-background_noise"][value="None"]')
            page.check('input[name="content-overall_rating"][value="2"]')
            page.click("crowd-button[form-action=submit]")
            page.wait_for_selector(".crowd-standin-error")
            assert "already has its 1 responses" in page.text_content(".crowd-standin-error")
            saved = page.evaluate("""() => Object.keys(localStorage).filter(k => k.startsWith('gtkit:answer:'))
                                         .map(k => JSON.parse(localStorage.getItem(k)).answer)""")
            assert len(saved) == 1 and saved[0]["content"]["overall_rating"] == 2
            assert len(saved[0]["segments"]) == 2
            assert page.url.endswith("/task/0") and errors == []
        finally:
            ctx.close()
