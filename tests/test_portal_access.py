"""toolkit.service.portal.access: the access token of a portal served on a network address."""

from __future__ import annotations

import http.cookiejar
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from toolkit.contract import load_label_schema
from toolkit.service.portal import PreviewSource, create_app
from toolkit.service.portal.access import (
    ACCESS_COOKIE,
    check_token,
    is_loopback,
    new_token,
    portal_link,
    require_token,
)
from toolkit.storage import Storage

MEDIA = "s3://example-feedback-bucket/media"
TOKEN = "s3cret-token-for-the-team"


@pytest.fixture
def client(tmp_path, example_mirror):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio",
                                    "interaction-id": "int-0001", "duration-seconds": 21.0}) + "\n")
    source = PreviewSource(manifest, load_label_schema("call-center"), out=tmp_path / "out",
                           storage=Storage([example_mirror]))
    app = create_app(source)
    require_token(app, TOKEN)
    return app.test_client()


def test_every_request_without_the_token_is_refused(client):
    for path in ("/", "/login", "/next", "/task/0", "/assets/js/main.js", "/_portal/portal.css"):
        resp = client.get(path)
        assert resp.status_code == 403, path
        assert b"Access link needed" in resp.data
    for path in ("/task/0/submit", "/login", "/logout"):
        refused = client.post(path, json={"answerContent": {}})
        # the gate runs before the CSRF and origin checks, whose pages would name the job
        assert refused.status_code == 403 and b"Access link needed" in refused.data, path
    assert client.get("/favicon.ico").status_code == 200  # browsers ask for it on the refusal page
    assert client.get("/?token=wrong-token-wrong-token").status_code == 403
    client.set_cookie(ACCESS_COOKIE, "wrong-token-wrong-token")
    assert client.get("/").status_code == 403
    client.set_cookie(ACCESS_COOKIE, "n\u00f6n-ascii-cookie-value!!")
    assert client.get("/").status_code == 403  # no TypeError from compare_digest


def test_the_link_sets_a_cookie_and_drops_the_token_from_the_url(client):
    resp = client.get(f"/login?next=/next&token={TOKEN}")
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/login?next=%2Fnext"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{ACCESS_COOKIE}={TOKEN}") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get("/login?next=/next")  # the cookie now opens everything
    assert page.status_code == 200 and b"worker" in page.data
    assert client.get("/assets/js/main.js").status_code == 200


def test_tokens_and_links():
    assert len(new_token()) >= 24 and new_token() != new_token()
    with pytest.raises(ValueError, match="at least 16"):
        check_token("short")
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    assert portal_link("192.168.1.20", 8080, TOKEN) == f"http://192.168.1.20:8080/?token={TOKEN}"
    assert portal_link("127.0.0.1", 8080, None) == "http://127.0.0.1:8080/"
    link = portal_link("0.0.0.0", 9000, TOKEN)  # a wildcard bind prints a reachable address
    assert link.startswith("http://") and "0.0.0.0" not in link and link.endswith(f":9000/?token={TOKEN}")



def test_local_job_on_a_network_address_prints_a_token_link_and_refuses_without_it(tmp_path, examples):
    """`gtkit local-job run --host 0.0.0.0`: the printed link opens the portal, nothing else does."""
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio",
                                    "interaction-id": "int-0001", "duration-seconds": 21.0}) + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = tmp_path / "stderr.txt"
    gtkit = Path(sys.executable).with_name("gtkit")
    proc = subprocess.Popen([str(gtkit), "local-job", "run", "--manifest", str(manifest), "--schema", "call-center",
                             "--out", str(tmp_path / "out"), "--host", "0.0.0.0", "--port", str(port),
                             "--mirror", f"s3://example-feedback-bucket/={examples}"],
                            stdout=subprocess.DEVNULL, stderr=err.open("w"))
    try:
        deadline = time.monotonic() + 30
        while "Worker portal:" not in err.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.1)
        link = next(w for w in err.read_text().split() if w.startswith("http://"))
        parts = urlsplit(link)
        assert parts.port == port and parts.query.startswith("token=") and len(parts.query) >= 6 + 24
        local = link.replace(parts.hostname, "127.0.0.1", 1)  # a 0.0.0.0 bind also answers on loopback
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10)
        assert refused.value.code == 403
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with opener.open(local, timeout=10) as resp:  # 303 to /, then /login: the worker-name page
            assert resp.status == 200 and urlsplit(resp.url).path == "/login"
            assert "token=" not in resp.url
        with opener.open(f"http://127.0.0.1:{port}/task/0", timeout=10) as resp:
            assert resp.status == 200  # the cookie carries the token
    finally:
        proc.terminate()
        proc.wait(timeout=10)
