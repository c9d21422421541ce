"""Issue 14 acceptance in chromium: on `gtkit serve`'s web app, an admin creates a team and a job
(uploading the manifest), invites two annotators; each accepts the link, signs in, labels the call
in the worker UI and submits; the queue consolidates both answers into output.manifest. A POST
without the CSRF token is refused from inside a signed-in page. Every page runs under the service's
Content-Security-Policy with no violation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from ui_helpers import MEDIA, READY, wait_until

from toolkit.contract import ConsolidatedLabel
from toolkit.contract.output_manifest import output_line_problems
from toolkit.service import migrate, people
from toolkit.service.db import Database
from toolkit.service.portal import PortalServer
from toolkit.service.web import ServeConfig, create_app
from toolkit.service.web.app import stop
from toolkit.storage import Storage

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
PRE = [
    {"id": "pre-1", "track": "speaker", "label": "Agent", "start": 0.4, "end": 3.56, "text": "Northwind support."},
    {"id": "pre-2", "track": "speaker", "label": "Customer", "start": 3.9, "end": 8.2, "text": "My order is late."},
]


def new_page(browser, errors: list[str]):
    """A page whose script errors and Content-Security-Policy violations (console messages and
    `securitypolicyviolation` events) all land in `errors`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script("document.addEventListener('securitypolicyviolation', e => console.error("
                            "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))")
    page = context.new_page()
    page.set_default_timeout(20000)
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if (
        "Content Security Policy" in msg.text or "CSP violation" in msg.text) else None)
    return context, page


def sign_in(page, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{url}/")


def test_admin_invites_two_annotators_who_label_one_call(browser, tmp_path, peaks_dir, examples_dir):
    db = Database.for_data_dir(tmp_path / "data")
    migrate.upgrade(db)
    people.create_user(db, email="admin@example.org", display_name="Admin", password=PASSWORD, role="admin")
    line = {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-0001",
            "duration-seconds": 21.0, "pre-segments": PRE, "peaks-ref": str(peaks_dir / "call_001.wav.peaks.json")}
    manifest = tmp_path / "upload.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    out = tmp_path / "out"
    app = create_app(ServeConfig(db=db, output_uri=str(out), secure_cookies=False, queue_poll_s=0.2,
                                 storage=Storage([f"s3://example-feedback-bucket/={examples_dir}"]),
                                 media_roots=(peaks_dir,)))
    contexts, errors = [], []
    try:
        with PortalServer(app) as server:
            url = server.url
            ctx, admin = new_page(browser, errors)
            contexts.append(ctx)
            sign_in(admin, url, "admin@example.org")
            admin.goto(f"{url}/admin/teams")
            admin.fill("#team-name", "calls")
            admin.click("#create-team")
            admin.goto(f"{url}/admin/jobs/new")
            admin.fill("#job-name", "served-job")
            admin.set_input_files("#manifest-file", str(manifest))
            admin.select_option("#job-schema", "call-center")
            admin.fill("#job-workers", "2")
            admin.click("#create-job")
            admin.wait_for_url("**/admin/jobs/*")
            links = []
            for email in ("ann@example.org", "bob@example.org"):
                admin.goto(f"{url}/admin/users")
                admin.fill("#invite-email", email)
                admin.select_option("#invite-team", label="calls")
                admin.click("#invite")
                links.append(admin.input_value("#invite-link"))

            for index, (email, link) in enumerate(zip(("ann@example.org", "bob@example.org"), links, strict=True)):
                ctx, page = new_page(browser, errors)
                contexts.append(ctx)
                page.goto(link)
                page.fill("#display_name", email.split("@")[0].title())
                page.fill("#password", PASSWORD)
                page.fill("#confirm", PASSWORD)
                page.click("#accept")
                page.wait_for_url(f"{url}/")
                page.click("#sign-out")
                page.wait_for_url("**/login")
                sign_in(page, url, email)
                # From a signed-in page, a state change without the token is refused.
                status = page.evaluate("fetch('/next', {method: 'POST'}).then(r => r.status)")
                assert status == 403
                with page.expect_response("**/task/*") as task_response:
                    page.click("#next-task")
                page.wait_for_url("**/task/*")
                policy = task_response.value.headers["content-security-policy"]
                assert "'unsafe-inline'" not in policy and "script-src 'self' 'sha256-" in policy
                assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
                wait_until(page, READY)  # the service's CSP allows no eval: no wait_for_function
                wait_until(page, "window.gtkit.getAnswer().segments.length === 2")
                page.check('input[name="content-background_noise"][value="None"]')
                page.check(f'input[name="content-overall_rating"][value="{4 + index}"]')
                page.click("crowd-button[form-action=submit]")
                page.wait_for_url("**/submitted")
                page.click("#next-task")
                page.wait_for_selector("#all-done")  # one object, answered by both: nothing left

            out_manifest = out / "served-job" / "manifests" / "output" / "output.manifest"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                    out_manifest.exists() and "segments" in out_manifest.read_text()):
                time.sleep(0.1)
            admin.goto(f"{url}/admin/")
            assert admin.text_content('tr[data-job="served-job"] td.done').strip() == "1 / 1"
    finally:
        for ctx in contexts:
            ctx.close()
        stop(app)
        db.dispose()
    assert errors == [], "\n".join(errors)
    (labeled,) = [json.loads(x) for x in out_manifest.read_text().splitlines()]
    assert output_line_problems(labeled, "segments", "served-job") == []
    label = ConsolidatedLabel.model_validate(labeled["segments"])
    assert label.status == "ok" and label.valid_worker_count == 2
    db = Database.for_data_dir(tmp_path / "data")
    accounts = {u.email: u.worker_id for u in people.list_users(db)}
    db.dispose()
    expected = sorted([accounts["ann@example.org"], accounts["bob@example.org"]])
    assert sorted(w.worker_id for w in label.workers) == expected
    assert label.content["overall_rating"].mean == 4.5
    responses = Path(out / "served-job" / "annotations" / "worker-response" / "iteration-1" / "0")
    assert len(list(responses.glob("*.json"))) == 2
