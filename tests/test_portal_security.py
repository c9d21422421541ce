"""The portal at the door: redirects, CSRF and origin checks, what a submission may be, odd paths.

Issue 12 D4, D5, D6, D2 (portal side), D11 (/assets/%00) and issue 11 point 6 (favicon).
"""

from __future__ import annotations

import json
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.contract import load_label_schema
from toolkit.service.portal import PreviewSource, create_app
from toolkit.service.portal.app import WORKER_COOKIE, csrf_token_in, safe_next
from toolkit.storage import Storage

MEDIA = "s3://example-feedback-bucket/media"
HOST = "localhost"  # the Flask test client's host


@pytest.fixture
def source(tmp_path, example_mirror) -> PreviewSource:
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"source-ref": f"{MEDIA}/call_001.wav", "media-type": "audio",
                                    "interaction-id": "int-0001", "duration-seconds": 21.0}) + "\n")
    return PreviewSource(manifest, load_label_schema("call-center"), out=tmp_path / "out",
                         storage=Storage([example_mirror]))


@pytest.fixture
def app(source):
    return create_app(source)


def signed_in(app, worker: str = "alice"):
    """A client signed in through the real form, with the page's CSRF token."""
    client = app.test_client()
    token = csrf_token_in(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"worker": worker, "next": "/", "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    client.csrf = csrf_token_in(client.get("/").get_data(as_text=True))
    return client


def answer(**changes) -> dict:
    value = {"schemaVersion": "1.0", "labelSchema": "call-center", "interactionId": "int-0001",
             "mediaDuration": 21.0,
             "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}],
             "segments": [{"id": "s1", "track": "t1", "start": 0.5, "end": 3.25, "text": "hello",
                           "attributes": {"emotion": "Happy"}}],
             "content": {"background_noise": ["Music"], "overall_rating": 4}}
    value.update(changes)
    return value


def submit(client, content, **headers):
    return client.post("/task/0/submit", json={"answerContent": content},
                       headers={"X-CSRFToken": client.csrf, **headers})


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def responses(source) -> list:
    folder = source.out + f"/{source.job_name}/annotations/worker-response/iteration-1/0"
    from pathlib import Path

    return sorted(Path(folder).glob("*.json"))


# -- D4: only same-origin relative paths -----------------------------------------------------------
TRICKY = ["//x", "/\\x", "/\t/x", "\t//x", "/%09/x", "https:x", "https://x", "http:/x", "//x/", "///x",
          "/\\/x", "\\\\x", " //x", "/ /x", "/\n/x", "/\r/x", "javascript:alert(1)", "x", "", "?next=//x",
          "/\x00/x", "\x0c//x", "/\u3000/x", "/..//x", ".//x", "\u2028//x", "/%2F/x", "/%5c/x", "/%2f%2fx",
          "/a/../..//x", "/."]


@pytest.mark.parametrize("value", TRICKY)
def test_safe_next_refuses_anything_that_could_leave_the_portal(value):
    assert safe_next(value) == "/"


@pytest.mark.parametrize("value", ["/", "/next", "/task/3", "/task/3?x=1", "/login?next=%2Fnext", "/a//b",
                                   "/task/%C3%A9"])
def test_safe_next_keeps_local_paths(value):
    assert safe_next(value) == value


def stays_local(location: str) -> bool:
    # What a browser does with a Location: drop tab/LF/CR, trim C0 and space, read \ as /.
    cleaned = "".join(c for c in location if c not in "\t\n\r").strip("".join(map(chr, range(33))))
    cleaned = cleaned.replace("\\", "/")
    target = urlsplit(urljoin("http://portal.test/", cleaned))
    return target.scheme == "http" and target.netloc == "portal.test"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([*"/\\\t\n\r %09:.xh?#@", "https:", "//", "%2f", "%5C", "\x00", "\u3000"]),
                max_size=12).map("".join) | st.text(max_size=12))
def test_safe_next_never_leaves_the_host(value):
    result = safe_next(value)
    assert result == "/" or result == value
    assert result.startswith("/") and stays_local(result)


def test_login_redirect_stays_on_the_portal(app):
    client = app.test_client()
    html = client.get("/login?next=/%09/other-host/").get_data(as_text=True)
    assert 'name="next" value="/"' in html
    token = csrf_token_in(html)
    resp = client.post("/login", data={"worker": "bob", "next": "/\t/other-host/", "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


# -- D5: CSRF token and same origin on every state-changing request ---------------------------------
def test_login_and_logout_need_the_csrf_token(app):
    client = app.test_client()
    assert client.post("/login", data={"worker": "mallory", "next": "/"}).status_code == 403
    assert client.get_cookie(WORKER_COOKIE) is None
    alice = signed_in(app)
    assert alice.post("/logout").status_code == 403
    assert alice.get_cookie(WORKER_COOKIE).value == "alice"
    assert alice.post("/logout", data={"csrf_token": alice.csrf}).status_code == 302
    assert alice.get_cookie(WORKER_COOKIE) is None


def test_cross_origin_requests_are_refused_even_with_a_token(app):
    alice = signed_in(app)
    other = {"Origin": "http://127.0.0.1:9999"}
    data = {"worker": "mallory", "next": "/", "csrf_token": alice.csrf}
    assert alice.post("/login", data=data, headers=other).status_code == 403
    assert alice.post("/login", data=data, headers={"Referer": "http://evil.test/page"}).status_code == 403
    assert alice.post("/login", data=data, headers={"Origin": "null"}).status_code == 403
    assert alice.post("/logout", data={"csrf_token": alice.csrf}, headers=other).status_code == 403
    assert alice.post("/task/0/release", data={"csrf_token": alice.csrf}, headers=other).status_code == 403
    assert submit(alice, {"answer": json.dumps(answer())}, **other).status_code == 403
    assert alice.get_cookie(WORKER_COOKIE).value == "alice"
    same = {"Origin": f"http://{HOST}"}
    assert submit(alice, {"answer": json.dumps(answer())}, **same).status_code == 200


def test_json_endpoints_need_the_token_header(app, source):
    alice = signed_in(app)
    resp = alice.post("/task/0/submit", json={"answerContent": {"answer": json.dumps(answer())}})
    assert resp.status_code == 403 and "reload" in resp.get_json()["error"]
    assert alice.post("/task/0/release").status_code == 403
    assert responses(source) == []
    html = alice.get("/task/0").get_data(as_text=True)
    assert csrf_token_in(html)  # the task page carries it for the stand-in's fetch
    assert 'name="csrf_token"' in html  # and the release form


# -- D6 / D2: what a submission may be ------------------------------------------------------------------
@pytest.mark.parametrize("content", [{}, {"x": "1"}, {"answer": "{}"}, {"answer": "not json"},
                                     {"answer": json.dumps(answer(mediaDuration=0))},
                                     {"answer": json.dumps(answer(content={"overall_rating": 9}))},
                                     {"answer": json.dumps(answer(tracks=[{"id": "t1", "category": "speaker",
                                                                           "label": "Nobody"}]))}])
def test_invalid_answers_are_refused_at_the_door_with_the_reason(app, source, content):
    alice = signed_in(app)
    resp = submit(alice, content)
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["error"] and body["problems"] and all(isinstance(p, str) for p in body["problems"])
    assert responses(source) == []  # nothing stored, no place used up
    assert submit(alice, {"answer": json.dumps(answer())}).status_code == 200


def test_deep_submissions_fail_alone(app, source):
    alice = signed_in(app)
    deep_content = {"answer": json.dumps(answer()), "content-x": nested(250)}
    resp = submit(alice, deep_content)
    assert resp.status_code == 400 and "nested" in resp.get_json()["error"]
    deep_string = {"answer": "[" * 5000 + "]" * 5000}
    resp = submit(alice, deep_string)
    assert resp.status_code == 400 and "nested" in resp.get_json()["error"]
    raw = '{"answerContent": ' + "[" * 5000 + "]" * 5000 + "}"
    resp = alice.post("/task/0/submit", data=raw, content_type="application/json",
                      headers={"X-CSRFToken": alice.csrf})
    assert resp.status_code == 400 and "nested" in resp.get_json()["error"]
    assert responses(source) == []
    assert submit(alice, {"answer": json.dumps(answer())}).status_code == 200


def test_body_size_is_limited_with_a_json_reason(source):
    app = create_app(source, max_submission_bytes=10_000)
    alice = signed_in(app)
    big = {"answer": json.dumps(answer(segments=[{"id": "s1", "track": "t1", "start": 0.5, "end": 3.25,
                                                   "text": "x" * 20_000}]))}
    resp = submit(alice, big)
    assert resp.status_code == 413
    assert "10 kB" in resp.get_json()["error"] or "10,000" in resp.get_json()["error"]
    assert responses(source) == []
    assert submit(alice, {"answer": json.dumps(answer())}).status_code == 200


def test_the_default_body_limit_is_a_few_megabytes(app, source):
    alice = signed_in(app)
    huge = {"answer": json.dumps(answer()), "content-x": "x" * 50_000_000}
    assert submit(alice, huge).status_code == 413
    assert responses(source) == []


# -- D11 and the favicon ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/assets/%00", "/assets/js/%00.js", "/assets/" + "a" * 5000,
                                  "/assets/..%2f..%2fetc/passwd"])
def test_odd_asset_paths_are_404(app, path):
    assert signed_in(app).get(path).status_code == 404


def test_favicon_is_served(app):
    resp = app.test_client().get("/favicon.ico")
    assert resp.status_code == 200 and resp.mimetype.startswith("image/")
    assert len(resp.data) > 0
