"""Issue 19, fail safe: the worker task page on one origin, the UI assets on a second, the media on a third.

Like Ground Truth: the page (the rendered template after Liquid, with the crowd-form stand-in) comes
from one 127.0.0.1 port; `static/` from another port whose CORS header each test chooses; the
"presigned" media, peaks and sidecar URLs from a third, carrying a fake signature that must never
appear in the page's text or console. Whatever fails, the worker is told what to do and no answer
can be posted: the page server records every POST and must have received none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask, Response, abort, jsonify, request, send_file
from ui_helpers import MEDIA, wait_ready, wait_until

from toolkit.contract import SegmentationAnswer, load_label_schema
from toolkit.service.portal import PortalServer
from toolkit.service.portal.app import content_type
from toolkit.task.liquid import render_liquid
from toolkit.task.template import CROWD_ELEMENTS_URL, STATIC_DIR, render_template

pytestmark = pytest.mark.browser

STANDIN = Path(__file__).resolve().parents[2] / "toolkit" / "service" / "portal" / "static" / "crowd-standin.js"
SIGNATURE = "X-Amz-Signature=f00dfeedSECRET"


@dataclass
class Hosts:
    """Three origins and what each one does for the current test (reset before every test)."""

    page: PortalServer
    assets: PortalServer
    media: PortalServer
    posted: list[dict] = field(default_factory=list)
    asset_cors: bool = True
    media_cors: bool = True
    media_status: dict[str, int] = field(default_factory=dict)  # file name -> HTTP status
    tampered: set[str] = field(default_factory=set)  # asset paths served modified (SRI mismatch)
    delayed: dict[str, float] = field(default_factory=dict)  # asset path -> seconds before answering
    task_input: dict = field(default_factory=dict)
    boot_timeout: float | None = None

    def reset(self) -> None:
        self.posted.clear()
        self.asset_cors = self.media_cors = True
        self.media_status.clear()
        self.tampered.clear()
        self.delayed.clear()
        self.task_input = {}
        self.boot_timeout = None

    @property
    def task_url(self) -> str:
        return f"{self.page.url}/task"

    @property
    def media_host(self) -> str:
        return self.media.url.removeprefix("http://")


def _page_app(hosts_ref: list[Hosts]) -> Flask:
    app = Flask("gtkit-test-page", static_folder=None)
    schema = load_label_schema("call-center")

    def grant(uri: str) -> str:  # a presigned URL on the media host
        name = uri.rsplit("/", 1)[-1]
        return f"{hosts_ref[0].media.url}/m/{name}?X-Amz-Expires=60&{SIGNATURE}"

    @app.get("/task")
    def task() -> Response:
        hosts = hosts_ref[0]
        extra = {} if hosts.boot_timeout is None else {"boot_timeout": hosts.boot_timeout}
        template = render_template(schema, f"{hosts.assets.url}/ui/", **extra)
        body = render_liquid(template, hosts.task_input, grant)
        body = body.replace(f'<script src="{CROWD_ELEMENTS_URL}"></script>', '<script src="/standin.js"></script>')
        accepted = datetime.now(UTC).isoformat()
        return Response(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>task</title>'
                        f'<meta name="gtkit-submit-url" content="/submit">'
                        f'<meta name="gtkit-accepted-at" content="{accepted}"></head><body>{body}</body></html>',
                        mimetype="text/html")

    @app.get("/standin.js")
    def standin() -> Response:
        return send_file(STANDIN, mimetype="text/javascript")

    @app.post("/submit")
    def submit() -> Response:
        hosts_ref[0].posted.append(request.get_json(silent=True) or {})
        return jsonify(ok=True, next="/done")

    @app.get("/done")
    def done() -> str:
        return "submitted"

    return app


def _assets_app(hosts_ref: list[Hosts]) -> Flask:
    app = Flask("gtkit-test-assets", static_folder=None)
    root = STATIC_DIR.resolve()

    @app.get("/ui/<path:rel>")
    def static_file(rel: str) -> Response:
        hosts = hosts_ref[0]
        time.sleep(hosts.delayed.get(rel, 0))
        path = (root / rel).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            abort(404)
        if rel in hosts.tampered:
            resp = Response(path.read_bytes() + b"\n// modified on the asset host\n", mimetype=content_type(rel))
        else:
            resp = send_file(path, mimetype=content_type(rel), max_age=0)
        if hosts.asset_cors:
            resp.headers["Access-Control-Allow-Origin"] = "*"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    return app


def _media_app(hosts_ref: list[Hosts], files: dict[str, Path]) -> Flask:
    app = Flask("gtkit-test-media", static_folder=None)

    @app.get("/m/<name>")
    def media(name: str) -> Response:
        hosts = hosts_ref[0]
        if SIGNATURE.split("=")[1] not in request.query_string.decode():
            abort(403)
        status = hosts.media_status.get(name)
        if status:
            resp = Response("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                            status=status, mimetype="application/xml")
        elif name in files:
            resp = send_file(files[name], mimetype=content_type(name), conditional=True, max_age=0)
        else:
            abort(404)
        if hosts.media_cors:
            resp.headers["Access-Control-Allow-Origin"] = "*"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    return app


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, examples_dir) -> Iterator[Hosts]:
    from toolkit.contract.peaks import peaks_json
    from toolkit.ingest.peaks import compute_peaks

    work = tmp_path_factory.mktemp("failsafe")
    peaks = work / "call_001.wav.peaks.json"
    peaks.write_bytes(peaks_json(compute_peaks(examples_dir / "media" / "call_001.wav")))
    sidecar = work / "call_001.sidecar.json"
    sidecar.write_text(json.dumps({"transcription": "Hello there."}))
    files = {"call_001.wav": examples_dir / "media" / "call_001.wav", peaks.name: peaks, sidecar.name: sidecar}
    ref: list[Hosts] = []
    servers = [PortalServer(make(ref, *args)).start()
               for make, args in ((_page_app, ()), (_assets_app, ()), (_media_app, (files,)))]
    ref.append(Hosts(*servers))
    yield ref[0]
    for server in servers:
        server.stop()


@pytest.fixture
def task(hosts, browser):
    """(page, console lines) for the task page as `hosts` is set up by the test."""
    hosts.reset()
    hosts.task_input = call_input()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.on("pageerror", lambda err: console.append(str(err)))
    yield page, console
    context.close()


def call_input(**extra) -> dict:
    line = {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-0001",
            "duration-seconds": 21.0, "peaks-ref": f"{MEDIA}/call_001.wav.peaks.json"}
    line.update(extra)
    return line


def origin(server: PortalServer) -> str:
    return server.url  # http://127.0.0.1:PORT


def try_to_submit(page) -> None:
    """Every way a worker (or a script) could post: click, Enter and Space on the button, requestSubmit."""
    button = page.locator("crowd-button[form-action=submit]")
    box = button.bounding_box()
    assert box, "the Submit button is not on screen"
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    button.focus()
    page.keyboard.press("Enter")
    page.keyboard.press(" ")
    page.evaluate("document.querySelector('crowd-form').requestSubmit()")
    page.wait_for_timeout(400)


def assert_submit_disabled(page, hosts: Hosts) -> None:
    button = page.locator("crowd-button[form-action=submit]")
    assert button.get_attribute("disabled") is not None
    assert button.get_attribute("aria-disabled") == "true"
    try_to_submit(page)
    assert hosts.posted == []
    assert page.url == hosts.task_url


def no_signature(page, console: list[str]) -> None:
    text = page.evaluate("document.body.innerText")
    assert SIGNATURE not in text and "f00dfeed" not in text
    assert not [line for line in console if "f00dfeed" in line and "gtkit" in line.lower()], console


def test_assets_without_cors_fail_safe(hosts, task):
    page, _ = task
    hosts.asset_cors = False
    page.goto(hosts.task_url)
    box = page.locator("[data-role=boot-error]")
    box.wait_for(state="visible", timeout=5000)
    text = box.text_content()
    assert origin(hosts.assets) in text  # what failed: the asset host
    assert origin(hosts.page) in text  # the page's own origin, for the requester's CORS rule
    assert "Access-Control-Allow-Origin" in text
    assert "release" in text.lower() and "do not submit" in text.lower()
    assert page.evaluate("window.gtkit === undefined")
    assert page.locator("[role=alert][data-role=boot-error]").count() == 1
    assert_submit_disabled(page, hosts)


def test_assets_with_cors_boot_and_submit(hosts, task):
    page, _ = task
    page.goto(hosts.task_url)
    wait_ready(page)
    wait_until(page, "window.gtkit.drawnAt > 0")  # the waveform is drawn
    assert page.locator("[data-role=boot-error]").count() == 0
    box = page.locator("[data-role=waveform]").bounding_box()
    y = box["y"] + box["height"] * 0.6
    page.mouse.move(box["x"] + box["width"] * 0.1, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, y, steps=8)
    page.mouse.up()
    wait_until(page, "window.gtkit.getAnswer().segments.length === 1")
    page.check('input[name="content-background_noise"][value="None"]')
    page.check('input[name="content-overall_rating"][value="3"]')
    assert page.locator("crowd-button[form-action=submit]").get_attribute("disabled") is None
    page.click("crowd-button[form-action=submit]")
    page.wait_for_url(f"{hosts.page.url}/done")
    (posted,) = hosts.posted
    saved = SegmentationAnswer.model_validate_json(posted["answerContent"]["answer"])
    assert len(saved.segments) == 1 and saved.content["overall_rating"] == 3


@pytest.mark.parametrize("module", ["js/main.js", "js/dom.js"])
def test_integrity_mismatch_fails_safe(hosts, task, module):
    """The entry script (error event on <script type=module>) or a module deep in its graph."""
    page, _ = task
    hosts.tampered.add(module)
    page.goto(hosts.task_url)
    box = page.locator("[data-role=boot-error]")
    box.wait_for(state="visible", timeout=5000)
    text = box.text_content()
    assert origin(hosts.assets) in text and origin(hosts.page) in text
    assert "integrity" in text.lower()
    assert page.evaluate("window.gtkit === undefined")
    assert_submit_disabled(page, hosts)


def test_boot_timeout_then_late_start(hosts, task):
    """Nothing failed yet but nothing started: the message after the timeout; the app, once it
    arrives, takes the page back (message gone, Submit usable)."""
    page, _ = task
    hosts.boot_timeout = 0.8
    hosts.delayed["js/main.js"] = 2.0
    started = time.monotonic()
    page.goto(hosts.task_url, wait_until="commit")
    box = page.locator("[data-role=boot-error]")
    box.wait_for(state="visible", timeout=1900)
    assert time.monotonic() - started < 2.0
    text = box.text_content()
    assert "0.8 s" in text and origin(hosts.assets) in text and origin(hosts.page) in text
    assert page.locator("crowd-button[form-action=submit]").get_attribute("disabled") is not None
    wait_ready(page)
    assert page.locator("[data-role=boot-error]").count() == 0
    assert page.locator("crowd-button[form-action=submit]").get_attribute("disabled") is None


def test_media_403_blocks_submit(hosts, task):
    """An expired presigned media URL: S3 answers 403 to the <audio> element."""
    page, console = task
    hosts.media_status["call_001.wav"] = 403
    page.goto(hosts.task_url)
    error = page.locator("[data-role=media-error]")
    error.wait_for(state="visible")
    wait_until(page, "document.querySelector('[data-role=media-error]').textContent.includes('403')")
    text = error.text_content()
    assert "could not be loaded" in text and hosts.media_host in text
    assert "release" in text.lower() and "do not submit" in text.lower()
    no_signature(page, console)
    assert_submit_disabled(page, hosts)


def test_media_blocked_by_cors_blocks_submit(hosts, task):
    """No peaks: the media is fetched to be decoded, and the media host sends no CORS header."""
    page, console = task
    hosts.media_cors = False
    hosts.task_input = call_input()
    del hosts.task_input["peaks-ref"]
    page.goto(hosts.task_url)
    error = page.locator("[data-role=media-error]")
    error.wait_for(state="visible")  # at once; the reason follows the probe fetch
    wait_until(page, "document.querySelector('[data-role=media-error]').textContent.includes('CORS')")
    text = error.text_content()
    assert hosts.media_host in text
    assert "CORS" in text and origin(hosts.page) in text
    no_signature(page, console)
    assert_submit_disabled(page, hosts)


def open_with_403(hosts: Hosts, page, name: str, **refs: str) -> None:
    """Open the task with `refs` added to its input; the file `name` answers 403 (expired link)."""
    hosts.task_input = call_input(**refs)
    hosts.media_status[name] = 403
    page.goto(hosts.task_url)
    wait_ready(page)


def test_sidecar_403_blocks_submit(hosts, task):
    page, console = task
    open_with_403(hosts, page, "call_001.sidecar.json", **{"sidecar-ref": f"{MEDIA}/call_001.sidecar.json"})
    error = page.locator("[data-role=media-error]")
    error.wait_for(state="visible")
    text = error.text_content()
    assert "403" in text and hosts.media_host in text
    no_signature(page, console)
    assert_submit_disabled(page, hosts)


def test_peaks_403_names_the_host_and_falls_back(hosts, task):
    """Short media: the peaks are a convenience (the media is decoded instead), so Submit stays."""
    page, console = task
    open_with_403(hosts, page, "call_001.wav.peaks.json")
    notice = page.locator("[data-role=notice]")
    assert "403" in notice.text_content() and hosts.media_host in notice.text_content()
    no_signature(page, console)
    assert page.locator("crowd-button[form-action=submit]").get_attribute("disabled") is None


def test_spectrogram_403_names_the_host(hosts, task):
    """An optional view: its failure is shown where it would be drawn; Submit stays."""
    page, console = task
    open_with_403(hosts, page, "call_001.spectrogram.bin", **{"spectrogram-ref": f"{MEDIA}/call_001.spectrogram.bin"})
    page.click("[data-action=toggle-spectrogram]")
    status = page.locator("[data-role=spectrogram-status]")
    wait_until(page, "document.querySelector('[data-role=spectrogram-status]').textContent.includes('403')")
    assert hosts.media_host in status.text_content()
    no_signature(page, console)
    assert page.locator("crowd-button[form-action=submit]").get_attribute("disabled") is None
