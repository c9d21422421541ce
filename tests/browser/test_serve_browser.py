"""Issue 14 acceptance in chromium: on `gtkit serve`'s web app, an admin creates a team and a job
(uploading the manifest), invites two annotators; each accepts the link, signs in, labels the call
in the worker UI and submits; the queue consolidates both answers into output.manifest. A POST
without the CSRF token is refused from inside a signed-in page. Changing one's password and the
admin's reset link; single sign-on through a real (test) OpenID Connect provider, the Users page's
mark of linked accounts and unlinking. Every page runs under the service's Content-Security-Policy
with no violation."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider
from service_helpers import fresh_postgres_database
from ui_helpers import MEDIA, READY, wait_until

from toolkit.contract import ConsolidatedLabel
from toolkit.contract.output_manifest import output_line_problems
from toolkit.service import migrate, people, sso
from toolkit.service.audit import list_audit
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


@pytest.fixture(params=["sqlite", "postgresql"])
def service_db(request, tmp_path) -> Iterator[Database]:
    """An empty service database on each backend: the data directory's SQLite file, or a fresh
    database on the session's PostgreSQL server (a server that cannot start fails the test)."""
    if request.param == "sqlite":
        db = Database.for_data_dir(tmp_path / "data")
        yield db
        db.dispose()
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_server")) as url:
        db = Database(url)
        yield db
        db.dispose()


def test_admin_invites_two_annotators_who_label_one_call(browser, service_db, tmp_path, peaks_dir, examples_dir):
    db = service_db
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
            job_path = urlsplit(admin.url).path
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
                if index == 1:  # Bob, with his own valid token: an admin's action is refused
                    status = page.evaluate("""(jobPath) => {
                        const token = document.querySelector('meta[name=csrf-token]').content;
                        return fetch(`${jobPath}/pause`, {method: 'POST',
                            body: 'csrf_token=' + encodeURIComponent(token),
                            headers: {'Content-Type': 'application/x-www-form-urlencoded'}}).then(r => r.status);
                    }""", job_path)
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
    assert errors == [], "\n".join(errors)
    (labeled,) = [json.loads(x) for x in out_manifest.read_text().splitlines()]
    assert output_line_problems(labeled, "segments", "served-job") == []
    label = ConsolidatedLabel.model_validate(labeled["segments"])
    assert label.status == "ok" and label.valid_worker_count == 2
    accounts = {u.email: u.worker_id for u in people.list_users(db)}
    expected = sorted([accounts["ann@example.org"], accounts["bob@example.org"]])
    assert sorted(w.worker_id for w in label.workers) == expected
    assert label.content["overall_rating"].mean == 4.5
    responses = Path(out / "served-job" / "annotations" / "worker-response" / "iteration-1" / "0")
    assert len(list(responses.glob("*.json"))) == 2


NEW_PASSWORD = "a brand new passphrase"
RESET_PASSWORD = "the reset link's passphrase"
SIGNED_OUT = re.compile(r"/login\?next=")  # a page of the service sent to the sign-in page


@contextmanager
def serve(tmp_path, **config):
    """The service on a free 127.0.0.1 port with an admin and one annotator (Ann)."""
    db = Database.for_data_dir(tmp_path / "data")
    migrate.upgrade(db)
    admin = people.create_user(db, email="admin@example.org", display_name="Admin", password=PASSWORD, role="admin")
    ann = people.create_user(db, email="ann@example.org", display_name="Ann", password=PASSWORD)
    app = create_app(ServeConfig(db=db, output_uri=str(tmp_path / "out"), secure_cookies=False, run_queue=False,
                                 **config))
    try:
        with PortalServer(app) as server:
            yield server.url, db, admin, ann
    finally:
        stop(app)
        db.dispose()


def try_sign_in(page, url: str, email: str, password: str) -> bool:
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("#sign-in")
    if page.url == f"{url}/":
        return True
    assert page.text_content(".portal-error").startswith("Email or password is wrong")
    return False


def sign_out(page, url: str) -> None:
    page.click("#sign-out")
    page.wait_for_url(f"{url}/login")


def test_password_change_and_the_admin_reset_link(browser, tmp_path):
    """Signed in, Ann changes her password (the current one is needed); signed out, the old one is
    refused and the new one works. Then the admin's reset link (the Users page's button) sets a
    third one, once: opened again, it is refused."""
    errors: list[str] = []
    contexts = []
    with serve(tmp_path) as (url, db, _admin, ann):
        try:
            ctx, page = new_page(browser, errors)
            contexts.append(ctx)
            assert try_sign_in(page, url, ann.email, PASSWORD)
            page.click("#change-password")
            page.wait_for_url(f"{url}/account/password")
            page.fill("#current", "not my password at all")
            page.fill("#password", NEW_PASSWORD)
            page.fill("#confirm", NEW_PASSWORD)
            page.click("#change")
            assert page.text_content(".portal-error") == "The current password is wrong."
            page.fill("#current", PASSWORD)
            page.fill("#password", NEW_PASSWORD)
            page.fill("#confirm", NEW_PASSWORD)
            page.click("#change")
            page.wait_for_selector("#password-changed")
            page.goto(f"{url}/")  # still signed in: this browser got a new session
            assert page.url == f"{url}/"
            sign_out(page, url)
            assert not try_sign_in(page, url, ann.email, PASSWORD)
            assert try_sign_in(page, url, ann.email, NEW_PASSWORD)

            actx, admin = new_page(browser, errors)
            contexts.append(actx)
            assert try_sign_in(admin, url, "admin@example.org", PASSWORD)
            admin.goto(f"{url}/admin/users")
            admin.click(f'tr[data-user="{ann.id}"] button:has-text("Reset password")')
            admin.wait_for_selector("#invite-link")
            assert "Password reset link" in admin.text_content("main")
            link = admin.input_value("#invite-link")
            assert link.startswith(f"{url}/invite/")

            vctx, visitor = new_page(browser, errors)
            contexts.append(vctx)
            visitor.goto(link)
            assert visitor.text_content("h1") == "Choose a new password"
            visitor.fill("#password", RESET_PASSWORD)
            visitor.fill("#confirm", RESET_PASSWORD)
            visitor.click("#accept")
            visitor.wait_for_url(f"{url}/")
            page.goto(f"{url}/")  # the reset ended Ann's other sessions
            page.wait_for_url(SIGNED_OUT)
            sign_out(visitor, url)
            response = visitor.goto(link)  # works once
            assert response.status == 404 and visitor.text_content("h1") == "Invitation not valid"
            assert not try_sign_in(visitor, url, ann.email, NEW_PASSWORD)
            assert try_sign_in(visitor, url, ann.email, RESET_PASSWORD)
        finally:
            for ctx in contexts:
                ctx.close()
        actions = [r.action for r in list_audit(db)]
    for action in ("user.change_password", "user.reset_link", "user.reset_password"):
        assert action in actions, action
    assert errors == [], "\n".join(errors)


def test_sso_sign_in_link_mark_and_unlink(browser, tmp_path):
    """In the browser, through the test OpenID Connect provider: Ann signs in with SSO, which links
    her account; the admin's Users page marks it with the issuer. The provider recreates her
    account (a new subject, the same email): refused while the old identity is linked. The admin
    unlinks it: Ann's sessions end, and her next SSO sign-in links the new identity by email."""
    provider = Provider().start()
    errors: list[str] = []
    contexts = []
    config = sso.OidcConfig(issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            label="Test SSO")
    try:
        with serve(tmp_path, oidc=config) as (url, db, _admin, ann):
            try:
                provider.user.update(sub="sub-1", email=ann.email)
                ctx, page = new_page(browser, errors)
                contexts.append(ctx)
                page.goto(f"{url}/login")
                page.click("#sign-in-sso")  # -> the provider -> the callback -> home
                page.wait_for_url(f"{url}/")
                assert "Hello, Ann" in page.text_content("main")
                assert sso.identities(db, ann.id) == [(provider.issuer, "sub-1")]

                actx, admin = new_page(browser, errors)
                contexts.append(actx)
                assert try_sign_in(admin, url, "admin@example.org", PASSWORD)
                admin.goto(f"{url}/admin/users")
                row = admin.locator(f'tr[data-user="{ann.id}"]')
                assert row.locator("td.sso code.sso-issuer").text_content() == provider.issuer
                assert "sub-1" not in admin.content()
                assert admin.locator('tr:has-text("admin@example.org") td.sso').text_content() == "no"

                provider.user["sub"] = "sub-2"
                rctx, again = new_page(browser, errors)
                contexts.append(rctx)
                again.goto(f"{url}/login")
                again.click("#sign-in-sso")
                again.wait_for_url("**/login/sso/callback*")
                assert "linked to another identity" in again.text_content("main")

                row.locator("button.unlink-sso").click()
                admin.wait_for_url(f"{url}/admin/users")
                assert admin.locator(f'tr[data-user="{ann.id}"] td.sso').text_content() == "no"
                assert admin.locator(f'tr[data-user="{ann.id}"] button.unlink-sso').count() == 0
                page.goto(f"{url}/")
                page.wait_for_url(SIGNED_OUT)  # signed out

                page.click("#sign-in-sso")
                page.wait_for_url(f"{url}/")
                assert sso.identities(db, ann.id) == [(provider.issuer, "sub-2")]
                admin.reload()
                assert admin.locator(f'tr[data-user="{ann.id}"] code.sso-issuer').text_content() == provider.issuer
            finally:
                for ctx in contexts:
                    ctx.close()
            audit = [(r.action, r.target, r.detail) for r in list_audit(db)]
    finally:
        provider.stop()
    assert ("sso.unlink", f"user:{ann.id}", {"issuers": [provider.issuer]}) in audit
    assert [a for a, _t, _d in audit].count("sso.link") == 2
    assert errors == [], "\n".join(errors)
