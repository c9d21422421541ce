"""The local portal (`gtkit local-job run`, `gtkit preview`) sends the service's
Content-Security-Policy (toolkit/service/portal/csp.py): strict on every page, the task page's
inline scripts allowed by hash, wavesurfer's styles by a per-page nonce, and media origins from
the http(s) links the page hands out."""

from __future__ import annotations

import json

import pytest
from csp_helpers import INLINE, assert_strict, assert_task_page_policy
from portal_client import portal_client

from toolkit.contract import load_label_schema
from toolkit.service.local_job import JobSource
from toolkit.service.portal import create_app, csp
from toolkit.service.portal.access import require_token
from toolkit.storage import Storage

MEDIA = "s3://example-feedback-bucket/media"
REMOTE = "https://media.example.net:8443/peaks/call_003.wav.peaks.json"


@pytest.fixture
def client(tmp_path, example_mirror):
    lines = [
        {"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio", "interaction-id": "int-0001",
         "duration-seconds": 21.0},
        # Injected markup in the task's text must never match a script hash.
        {"source-ref": f"{MEDIA}/call_003.wav", "media-type": "audio", "peaks-ref": REMOTE,
         "interaction-id": "<script>alert(1)</script>", "duration-seconds": 60.0},
    ]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    source = JobSource(manifest, load_label_schema("call-center"), workers=1, out=tmp_path / "out",
                       job_name="csp", storage=Storage([example_mirror]))
    return portal_client(create_app(source), worker="alice")


def test_every_portal_page_has_a_strict_policy(client):
    for path in ("/login", "/", "/next", "/task/0/submitted", "/favicon.ico", "/assets/js/main.js", "/task/nope"):
        resp = client.get(path)
        assert resp.status_code in (200, 302, 404), path
        found = assert_strict(resp.headers[csp.HEADER])
        assert found["script-src"] == ["'self'"], path  # no inline script outside the task page
        assert found["style-src"] == ["'self'"], path
        assert found["media-src"] == ["'self'", "blob:"], path
        if resp.mimetype == "text/html":
            body = resp.get_data(as_text=True)
            assert not INLINE.search(body) and " style=" not in body and "<style" not in body, path


def test_task_page_allows_its_own_inline_scripts_and_a_fresh_style_nonce(client):
    found = assert_task_page_policy(client, "/task/0")
    assert found["media-src"] == ["'self'", "blob:"]  # mirrored media: served by the portal itself


def test_media_origins_come_from_the_links_the_page_hands_out(client):
    resp = client.get("/task/1")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    found = assert_strict(resp.headers[csp.HEADER])
    for name in ("media-src", "img-src", "connect-src"):
        assert "https://media.example.net:8443" in found[name], (name, found[name])
    assert REMOTE in html and "<script>alert(1)</script>" not in html  # escaped, so not an inline script
    assert len(INLINE.findall(html)) == 2 and len(found["script-src"]) == 3
    # The origin is this page's alone: the next page without remote media allows only ourselves.
    assert "media.example.net" not in client.get("/task/0").headers[csp.HEADER]


def test_the_access_gate_answers_under_the_policy_too(client):
    app = client.application
    require_token(app, "t" * 32)
    resp = app.test_client().get("/", base_url="http://192.0.2.7")
    assert resp.status_code == 403
    assert assert_strict(resp.headers[csp.HEADER])["script-src"] == ["'self'"]
