"""The service's Content-Security-Policy (toolkit/service/portal/csp.py) on its pages, on SQLite and
PostgreSQL: strict everywhere, the task page's inline scripts allowed by hash and wavesurfer's
styles by a per-page nonce, and media origins derived from where the page's media links lead."""

from __future__ import annotations

import re

import pytest
from csp_helpers import INLINE, assert_strict, assert_task_page_policy, directives
from service_helpers import PASSWORD, PRE, make_people, manifest_lines, write_manifest
from web_helpers import claim, sign_in

from toolkit.service import jobs, people
from toolkit.service.portal import csp
from toolkit.service.web import ServeConfig, create_app
from toolkit.service.web.app import stop


@pytest.fixture
def site(db, tmp_path, schema, storage, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # presigning is local: no AWS is called
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    team, (ann, bob) = make_people(db, 2, "team-a")
    admin = people.create_user(db, email="admin@example.org", display_name="Admin", password=PASSWORD, role="admin")
    lines = manifest_lines(tmp_path, 1)
    jobs.create_job(db, name="mirrored", manifest=str(write_manifest(tmp_path / "m.jsonl", lines)), schema=schema,
                    team_id=team.id, output_uri=str(tmp_path / "out"), workers_per_object=1, priority=1)
    remote = [{"source-ref": "s3://other-media-bucket/calls/a.wav", "media-type": "audio", "duration-seconds": 21.0,
               "interaction-id": "int-r1", "pre-segments": PRE}]
    jobs.create_job(db, name="remote", manifest=str(write_manifest(tmp_path / "r.jsonl", remote)), schema=schema,
                    team_id=team.id, output_uri=str(tmp_path / "out"), workers_per_object=1, priority=2)
    app = create_app(ServeConfig(db=db, output_uri=str(tmp_path / "out"), storage=storage, secure_cookies=False,
                                 run_queue=False, media_roots=(tmp_path / "media",)))
    app.testing = True
    yield {"app": app, "ann": ann, "bob": bob, "admin": admin}
    stop(app)


def signed_in(site, user):
    client = site["app"].test_client()
    assert sign_in(client, user.email, PASSWORD).status_code == 302
    return client


def test_every_page_has_a_strict_policy(site):
    anonymous = site["app"].test_client()
    admin = signed_in(site, site["admin"])
    pages = [(anonymous, "/login"), (anonymous, "/invite/unknown"), (anonymous, "/healthz"),
             (admin, "/"), (admin, "/admin/"), (admin, "/admin/users"), (admin, "/admin/teams"),
             (admin, "/admin/jobs/new"), (admin, "/admin/jobs/1"), (admin, "/account/password")]
    for client, path in pages:
        resp = client.get(path)
        assert resp.status_code in (200, 404), path
        found = assert_strict(resp.headers[csp.HEADER])
        assert found["script-src"] == ["'self'"], path  # no inline script outside the task page
        assert found["style-src"] == ["'self'"], path
        body = resp.get_data(as_text=True)
        assert not INLINE.search(body) and " style=" not in body and "<style" not in body, path


def test_task_page_allows_its_own_inline_scripts_only(site):
    assert claim(signed_in(site, site["ann"])).status_code == 302  # ann takes the remote job's call
    client = signed_in(site, site["bob"])
    page_url = claim(client).location
    found = assert_task_page_policy(client, page_url)
    assert found["media-src"] == ["'self'", "blob:"]  # mirrored and local media: served by us


def test_media_origins_come_from_where_the_links_lead(site):
    """The remote job (claimed first: higher priority) has an S3 call outside every mirror: the
    browser follows its media link to a presigned URL of that bucket."""
    s3 = signed_in(site, site["ann"])
    resp = s3.get(claim(s3).location)
    found = assert_strict(resp.headers[csp.HEADER])
    origin = "https://other-media-bucket.s3.amazonaws.com"
    for name in ("media-src", "img-src", "connect-src"):
        assert origin in found[name], (name, found[name])
    link = re.search(r'/media/[^"]+/a\.wav', resp.get_data(as_text=True)).group(0)
    redirect = s3.get(link)
    assert redirect.status_code == 302 and csp.origin(redirect.location) == origin  # where the browser goes
    # Pages without media allow only ourselves; the mirrored job's page does not name the bucket.
    assert directives(s3.get("/").headers[csp.HEADER])["media-src"] == ["'self'", "blob:"]
    bob = signed_in(site, site["bob"])
    assert origin not in bob.get(claim(bob).location).headers[csp.HEADER]
