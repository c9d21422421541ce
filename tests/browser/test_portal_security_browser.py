"""The portal's door in a real browser (issue 12 D5, D6; issue 11 point 6).

- a page on another local port (same *site*: cookies ignore ports) cannot sign a worker in or out;
- a refused submission shows its reason and the answer stays in autosave; the autosaved copy is
  only dropped once the server has taken the answer;
- no page logs a console error (the favicon).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ui_helpers import MEDIA, wait_ready, wait_until

from toolkit.contract import load_label_schema
from toolkit.service.portal import PortalServer, PreviewSource, create_app
from toolkit.storage import Storage

pytestmark = pytest.mark.browser

PRE = [{"id": "pre-1", "track": "speaker", "label": "Agent", "start": 0.4, "end": 3.56, "text": "Hello."}]
SAVED = """() => Object.keys(localStorage).filter(k => k.startsWith('gtkit:answer:'))
                 .map(k => JSON.parse(localStorage.getItem(k)).answer)"""


@pytest.fixture
def make_portal(tmp_path, peaks_dir, examples_dir):
    servers = []

    def make(**options) -> tuple[PortalServer, PreviewSource]:
        line = {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-0001",
                "duration-seconds": 21.0, "pre-segments": PRE,
                "peaks-ref": str(peaks_dir / "call_001.wav.peaks.json")}
        manifest = tmp_path / f"manifest-{len(servers)}.jsonl"
        manifest.write_text(json.dumps(line) + "\n")
        source = PreviewSource(manifest, load_label_schema("call-center"), out=tmp_path / f"out-{len(servers)}",
                               storage=Storage([f"s3://example-feedback-bucket/={examples_dir}"]))
        server = PortalServer(create_app(source, **options)).start()
        servers.append(server)
        return server, source

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def attacker():
    """Another local port serving whatever page the test sets (a hostile site on this machine)."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield pages, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def sign_in(browser, url: str, worker: str = "alice"):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto(f"{url}/login?next=/")
    page.fill("#worker", worker)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    return context, page


def worker_cookie(context) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == "gtkit_worker"), None)


def test_a_page_on_another_port_cannot_sign_the_worker_in_or_out(browser, make_portal, attacker):
    server, _ = make_portal()
    pages, evil = attacker
    pages["/login"] = f"""<!DOCTYPE html><form method="post" action="{server.url}/login">
        <input name="worker" value="mallory"><input name="next" value="/"></form>
        <script>document.forms[0].submit()</script>"""
    pages["/logout"] = f"""<!DOCTYPE html><form method="post" action="{server.url}/logout"></form>
        <script>document.forms[0].submit()</script>"""
    pages["/fetch"] = f"""<!DOCTYPE html><script>
        fetch('{server.url}/logout', {{method: 'POST', mode: 'no-cors', credentials: 'include'}})
          .then(() => {{ document.title = 'sent' }}, () => {{ document.title = 'sent' }})</script>"""
    context, page = sign_in(browser, server.url)
    try:
        statuses: dict[str, int] = {}
        context.on("response", lambda r: statuses.__setitem__(r.url, r.status) if r.request.method == "POST" else None)
        for name in ("login", "logout"):
            with page.expect_response(f"{server.url}/{name}") as response:
                page.goto(f"{evil}/{name}")
            assert response.value.status == 403, name
            assert worker_cookie(context) == "alice", name
        page.goto(f"{evil}/fetch")
        wait_until(page, "document.title === 'sent'")
        assert statuses[f"{server.url}/logout"] == 403
        assert worker_cookie(context) == "alice"
        # The portal's own forms still work (token and same origin).
        page.goto(f"{server.url}/")
        page.click(".portal-worker button[type=submit]")
        page.wait_for_url(f"{server.url}/login")
        assert worker_cookie(context) is None
    finally:
        context.close()


def open_task_and_answer(page, url: str) -> None:
    page.goto(f"{url}/task/0")
    wait_ready(page)
    wait_until(page, "window.gtkit.getAnswer().segments.length === 1")
    page.check('input[name="content-background_noise"][value="None"]')
    page.check('input[name="content-overall_rating"][value="4"]')


def test_a_refused_submission_shows_the_reason_and_stays_autosaved(browser, make_portal):
    server, source = make_portal(max_submission_bytes=600)
    context, page = sign_in(browser, server.url)
    try:
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        open_task_and_answer(page, server.url)
        page.click("crowd-button[form-action=submit]")
        page.wait_for_selector(".crowd-standin-error")
        assert "larger than the portal's limit of 600 bytes" in page.text_content(".crowd-standin-error")
        (saved,) = page.evaluate(SAVED)
        assert saved["content"]["overall_rating"] == 4 and len(saved["segments"]) == 1
        assert page.url.endswith("/task/0") and errors == []
        assert not list(Path(source.out).rglob("*.json"))  # nothing stored
    finally:
        context.close()


def test_autosave_is_cleared_only_after_the_server_took_the_answer(browser, make_portal):
    server, _ = make_portal()
    context, page = sign_in(browser, server.url)
    try:
        held = []
        page.route(f"{server.url}/task/0/submit", lambda route: held.append(route))
        open_task_and_answer(page, server.url)
        page.click("crowd-button[form-action=submit]")
        for _ in range(100):
            if held:
                break
            page.wait_for_timeout(50)
        assert held, "the submission was not posted"
        # In flight: the server has not answered, the copy must still be there.
        (saved,) = page.evaluate(SAVED)
        assert saved["content"]["overall_rating"] == 4
        held[0].continue_()
        page.wait_for_url(f"{server.url}/task/0/submitted")
        assert page.evaluate(SAVED) == []
    finally:
        context.close()


def test_portal_pages_log_no_console_errors(browser, make_portal):
    server, _ = make_portal()
    context = browser.new_context()
    page = context.new_page()
    try:
        console_errors: list[str] = []
        failed: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(f"{server.url}/login")
        page.fill("#worker", "alice")
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}/")
        page.goto(f"{server.url}/task/0")
        wait_ready(page)
        page.goto(f"{server.url}/favicon.ico")
        page.wait_for_timeout(300)
        assert console_errors == [] and failed == []
    finally:
        context.close()


def test_the_portal_policy_holds_in_chromium_and_how_tests_wait_under_it(browser, make_portal):
    """The task page's Content-Security-Policy is enforced: script put into the page at run time
    (what injected markup would be) does not run. And what tests can do under it: `page.evaluate`
    runs (the DevTools protocol is not governed by the page's policy), playwright's
    `wait_for_function` with a string expression fails with EvalError once it has to poll, with a
    function's source it polls fine: `ui_helpers.wait_until` wraps expressions so."""
    server, _ = make_portal()
    context = browser.new_context()
    context.add_cookies([{"name": "gtkit_worker", "value": "alice", "url": server.url}])
    page = context.new_page()
    page.set_default_timeout(15000)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        response = page.goto(f"{server.url}/task/0")
        assert "script-src 'self' 'sha256-" in response.headers["content-security-policy"]
        wait_ready(page)
        assert violations == []  # the worker UI itself needs nothing the policy refuses
        page.evaluate("""() => { const s = document.createElement('script')
            s.textContent = 'window.__injected = 1'; document.head.append(s) }""")
        wait_until(page, "true")
        assert page.evaluate("window.__injected === undefined")
        assert any("inline script" in v for v in violations), violations

        page.evaluate("setTimeout(() => { window.__late = 1 }, 300)")
        with pytest.raises(Exception, match="EvalError"):
            page.wait_for_function("window.__late === 1", timeout=5000)
        page.evaluate("setTimeout(() => { window.__later = 1 }, 300)")
        wait_until(page, "window.__later === 1", timeout=5000)
    finally:
        context.close()
