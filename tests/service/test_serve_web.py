"""The web service (toolkit.service.web) through Flask's test client, on SQLite and PostgreSQL:
sessions, CSRF, default deny, teams' walls around jobs and media, invitations, the annotator flow."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from chart_helpers import parse_charts
from csp_helpers import assert_strict
from service_helpers import PASSWORD, make_people, manifest_lines, write_manifest
from web_helpers import claim, media_links, sign_in, submit, token

from toolkit.export.trust import WorkerTrust
from toolkit.service import jobs, migrate, output, people, work
from toolkit.service.portal import csp
from toolkit.service.simulate import simulated_answer_content
from toolkit.service.web import ServeConfig, create_app
from toolkit.service.web.app import PUBLIC, stop
from toolkit.storage import Storage, tempfiles


@pytest.fixture
def site(db, tmp_path, schema, storage):
    """Two teams (a: two annotators, b: one), an admin, a job per team, and the app."""
    team_a, (ann, bob) = make_people(db, 2, "team-a")
    team_b, (carol,) = make_people(db, 1, "team-b")
    admin = people.create_user(db, email="admin@example.org", display_name="Admin", password=PASSWORD, role="admin")
    manifest = write_manifest(tmp_path / "m.jsonl", manifest_lines(tmp_path))
    job_a = jobs.create_job(db, name="job-a", manifest=str(manifest), schema=schema, team_id=team_a.id,
                            output_uri=str(tmp_path / "out"), workers_per_object=1)
    job_b = jobs.create_job(db, name="job-b", manifest=str(manifest), schema=schema, team_id=team_b.id,
                            output_uri=str(tmp_path / "out"), workers_per_object=1)
    app = create_app(ServeConfig(db=db, output_uri=str(tmp_path / "out"), storage=storage, secure_cookies=False,
                                 run_queue=False, media_roots=(tmp_path / "media",)))
    app.testing = True
    yield {"app": app, "db": db, "ann": ann, "bob": bob, "carol": carol, "admin": admin, "job_a": job_a,
           "job_b": job_b, "team_a": team_a, "team_b": team_b, "schema": schema}
    stop(app)


def client_for(site, user=None):
    client = site["app"].test_client()
    if user is not None:
        assert sign_in(client, user.email, PASSWORD).status_code == 302
    return client


def answer(site, task):
    return simulated_answer_content(task.task_input, site["schema"], 1)


def test_sign_in_claim_label_submit_next(site):
    client = client_for(site, site["ann"])
    resp = claim(client)
    assert resp.status_code == 302
    object_id = int(resp.location.rsplit("/", 1)[1])
    page = client.get(f"/task/{object_id}").get_data(as_text=True)
    assert "<crowd-form" in page and "/_portal/crowd-standin.js" in page and "gtkit-submit-url" in page
    assert claim(client).location == resp.location  # one held task: claiming again returns it
    task = work.current_task(site["db"], site["ann"].id)
    done = submit(client, object_id, answer(site, task))
    assert done.status_code == 200 and done.json["ok"] and not done.json["duplicate"]
    again = submit(client, object_id, answer(site, task))  # a double click stores nothing twice
    assert again.status_code == 200 and again.json["duplicate"]
    nxt = claim(client)
    assert nxt.status_code == 302 and nxt.location != resp.location
    assert client.get(resp.location).status_code == 409  # not held any more


def test_no_route_answers_without_a_session(site):
    client = client_for(site)
    checked = 0
    for rule in site["app"].url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        values = {name: 1 if "int" in type(conv).__name__.lower() else "x"
                  for name, conv in rule._converters.items()}
        url = rule.build(values, append_unknown=False)[1] if values else rule.rule
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            resp = client.open(url, method=method)
            if method == "GET":
                assert resp.status_code == 302 and urlsplit(resp.location).path == "/login", (rule, method)
            else:  # the CSRF check comes first; a token from the login page does not open them either
                assert resp.status_code == 403, (rule, method)
                resp = client.open(url, method=method, headers={"X-CSRFToken": token(client)})
                assert resp.status_code == 401, (rule, method)
            checked += 1
    assert checked >= 18
    for public in ("/login", "/healthz", "/readyz", "/_portal/portal.css", "/favicon.ico"):
        assert client.get(public).status_code == 200, public


def test_csrf_less_and_cross_origin_posts_are_refused(site):
    client = client_for(site, site["ann"])
    assert client.post("/next").status_code == 403
    assert client.post("/next", data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/next", data={"csrf_token": token(client, "/")},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    assert work.current_task(site["db"], site["ann"].id) is None  # nothing was claimed
    assert claim(client).status_code == 302


def test_annotator_cannot_see_other_teams_jobs_or_media(site):
    admin = client_for(site, site["admin"])
    carol = client_for(site, site["carol"])
    resp = claim(carol)
    b_object = int(resp.location.rsplit("/", 1)[1])
    b_links = media_links(carol.get(resp.location).get_data(as_text=True))
    assert b_links and carol.get(b_links[0]).status_code == 200
    assert admin.get(b_links[0]).status_code == 200  # admins see every job's media

    ann = client_for(site, site["ann"])
    for link in b_links:
        assert ann.get(link).status_code == 404
    assert ann.get(f"/task/{b_object}").status_code == 409
    task = work.current_task(site["db"], site["carol"].id)
    assert submit(ann, b_object, answer(site, task)).status_code == 404
    refused = submit(ann, b_object, {"segments": "not a list"})  # not validated: no field names of B's schema
    assert refused.status_code == 404 and "segments" not in refused.get_data(as_text=True)
    assert ann.get("/admin/").status_code == 403
    assert ann.get(f"/admin/jobs/{site['job_b'].id}").status_code == 403
    # A's tasks are only team A's job
    a_task = claim(ann)
    held = work.current_task(site["db"], site["ann"].id)
    assert a_task.status_code == 302 and held.job_id == site["job_a"].id


def test_submitting_another_workers_task_is_refused(site):
    ann, bob = client_for(site, site["ann"]), client_for(site, site["bob"])
    object_id = int(claim(ann).location.rsplit("/", 1)[1])
    task = work.current_task(site["db"], site["ann"].id)
    refused = submit(bob, object_id, answer(site, task))
    assert refused.status_code == 403 and "hold" in refused.json["error"]
    assert submit(ann, object_id, answer(site, task)).status_code == 200


def test_the_service_takes_no_answer_on_a_task_never_claimed(site, tmp_path, clock):
    """A scripted teammate cannot answer an object of their choosing, free place or not (so cannot
    pick easy objects or step around mixed-in gold); a late answer on a task they took still counts."""
    db, schema = site["db"], site["schema"]
    jobs.cancel_job(db, site["job_a"].id)
    team = site["team_a"]
    manifest = write_manifest(tmp_path / "two.jsonl", manifest_lines(tmp_path, 1))
    two = jobs.create_job(db, name="two-places", manifest=str(manifest), schema=schema, team_id=team.id,
                          output_uri=str(tmp_path / "out"), workers_per_object=2)
    ann, bob = client_for(site, site["ann"]), client_for(site, site["bob"])
    object_id = int(claim(ann).location.rsplit("/", 1)[1])
    task = work.current_task(db, site["ann"].id)
    assert task.job_id == two.id
    refused = submit(bob, object_id, answer(site, task))  # a place is free, but Bob never took it
    assert refused.status_code == 403 and "hold no place" in refused.json["error"]
    assert work.current_task(db, site["bob"].id) is None  # and nothing was taken on his behalf
    clock.advance(jobs.DEFAULT_TASK_TIME_LIMIT + 1)  # Ann's time ran out while she worked
    late = submit(ann, object_id, answer(site, task))
    assert late.status_code == 200 and not late.json["duplicate"]


def test_a_bad_answer_is_refused_at_the_door_naming_fields(site):
    ann = client_for(site, site["ann"])
    object_id = int(claim(ann).location.rsplit("/", 1)[1])
    task = work.current_task(site["db"], site["ann"].id)
    content = answer(site, task)
    segments = json.loads(content["answer"])
    segments["segments"][0]["end"] = 999.0
    content["answer"] = json.dumps(segments)
    resp = submit(ann, object_id, content)
    assert resp.status_code == 400 and resp.json["problems"]
    assert "Northwind" not in json.dumps(resp.json)  # problems name fields, never values
    assert work.current_task(site["db"], site["ann"].id) is not None  # still held


def test_sign_in_gives_one_answer_and_is_throttled(site, clock):
    client = client_for(site)
    wrong = sign_in(client, site["ann"].email, "wrong password!")
    unknown = sign_in(client, "nobody@example.org", "wrong password!")
    assert wrong.status_code == unknown.status_code == 401
    body = lambda r, email: r.get_data(as_text=True).replace(email, "EMAIL")  # noqa: E731
    assert body(wrong, site["ann"].email) == body(unknown, "nobody@example.org")
    for _ in range(9):
        sign_in(client, site["ann"].email, "wrong password!")
        sign_in(client, "nobody@example.org", "wrong password!")
    # Ten failures: the right password is refused too, and so is any unknown email, alike.
    assert sign_in(client, site["ann"].email, PASSWORD).status_code == 429
    assert sign_in(client, "nobody@example.org", PASSWORD).status_code == 429
    assert sign_in(client, site["bob"].email, PASSWORD).status_code == 302  # another account is not locked
    clock.advance(16 * 60)
    assert sign_in(client_for(site), site["ann"].email, PASSWORD).status_code == 302


def test_one_address_is_throttled_after_fifty_failures_whatever_the_emails(site, clock):
    """A password spray from one address (a new email each time, so no email's count reaches ten)
    meets the address's limit; another address signs in meanwhile."""
    from toolkit.service.web.throttle import LIMITS

    sprayer = site["app"].test_client()
    sprayer.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    for n in range(LIMITS["ip"]):
        assert sign_in(sprayer, f"guess-{n}@example.org", "wrong password!").status_code == 401
    assert sign_in(sprayer, site["bob"].email, PASSWORD).status_code == 429  # the right password, too
    elsewhere = site["app"].test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "203.0.113.4"
    assert sign_in(elsewhere, site["bob"].email, PASSWORD).status_code == 302
    clock.advance(16 * 60)
    assert sign_in(sprayer, site["bob"].email, PASSWORD).status_code == 302


def test_logout_and_disable_end_the_session_everywhere(site):
    client = client_for(site, site["ann"])
    cookie = client.get_cookie("gtkit_session").value
    other = client_for(site)
    other.set_cookie("gtkit_session", cookie)
    assert other.get("/").status_code == 200  # the same session from another place
    client.post("/logout", data={"csrf_token": token(client, "/")})
    assert other.get("/").status_code == 302
    bob = client_for(site, site["bob"])
    people.disable_user(site["db"], site["bob"].id)
    assert bob.get("/").status_code == 302


def test_invitation_link_works_once_and_expires(site, clock):
    admin = client_for(site, site["admin"])
    resp = admin.post("/admin/users/invite", data={"email": "dana@example.org", "role": "annotator",
                                                   "team": str(site["team_a"].id),
                                                   "csrf_token": token(admin, "/admin/users")})
    assert resp.status_code == 200
    link = resp.get_data(as_text=True).split('id="invite-link" readonly size="80" value="', 1)[1].split('"', 1)[0]
    path = urlsplit(link).path
    guest = client_for(site)
    assert guest.get(path).status_code == 200 and guest.get(path).status_code == 200  # viewing does not use it
    form = {"display_name": "Dana", "password": PASSWORD, "confirm": PASSWORD, "csrf_token": token(guest, path)}
    accepted = guest.post(path, data=form)
    assert accepted.status_code == 302 and guest.get("/").status_code == 200  # signed in
    again = client_for(site)
    assert again.get(path).status_code == 404
    assert again.post(path, data={**form, "csrf_token": token(again)}).status_code == 404
    dana = next(u for u in people.list_users(site["db"]) if u.email == "dana@example.org")
    assert people.user_team_ids(site["db"], dana.id) == [site["team_a"].id]

    late = people.invite(site["db"], email="eve@example.org", ttl_s=60)
    clock.advance(61)
    assert client_for(site).get(f"/invite/{late.token}").status_code == 404


def test_admin_creates_a_job_from_an_uploaded_manifest_and_sees_progress(site, tmp_path):
    admin = client_for(site, site["admin"])
    lines = manifest_lines(tmp_path, 3)
    data = {"name": "uploaded", "team": str(site["team_a"].id), "schema": "call-center", "workers": "2",
            "csrf_token": token(admin, "/admin/jobs/new"),
            "manifest_file": (__import__("io").BytesIO("".join(json.dumps(x) + "\n" for x in lines).encode()),
                              "m.jsonl")}
    resp = admin.post("/admin/jobs/new", data=data, content_type="multipart/form-data")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    job = jobs.get_job(site["db"], "uploaded")
    assert job.workers_per_object == 2 and jobs.job_progress(site["db"], job.id).objects == 4
    listing = admin.get("/admin/").get_data(as_text=True)
    assert 'data-job="uploaded"' in listing and "Median time per task" in listing
    bad = admin.post("/admin/jobs/new", data={"name": "bad name!", "team": str(site["team_a"].id),
                                              "schema": "call-center", "manifest": "/nope.jsonl",
                                              "csrf_token": token(admin, "/admin/jobs/new")})
    assert bad.status_code == 400 and "job name" in bad.get_data(as_text=True)
    bad_upload = {**data, "name": "bad name!", "csrf_token": token(admin, "/admin/jobs/new"),
                  "manifest_file": (__import__("io").BytesIO(b"{}\n"), "m.jsonl")}
    refused = admin.post("/admin/jobs/new", data=bad_upload, content_type="multipart/form-data")
    assert refused.status_code == 400
    uploads = Path(tempfile.gettempdir()).glob(f"gtkit-scratch-{tempfiles.HOST}-{os.getpid()}-*/*.jsonl")
    assert list(uploads) == []  # both uploads are gone once their request ends
    pause = admin.post(f"/admin/jobs/{job.id}/pause", data={"csrf_token": token(admin, "/admin/")})
    assert pause.status_code == 302 and jobs.get_job(site["db"], job.id).status == "paused"


def test_an_admin_uploads_a_manifest_larger_than_an_answer_may_be(site, tmp_path):
    """Requests are capped at the answer limit (4 MB), but a manifest upload on the new-job page, by
    an admin, may be as large as MAX_MANIFEST_UPLOAD_BYTES; bigger ones are named by path or URI."""
    from toolkit.service.portal.app import DEFAULT_MAX_SUBMISSION_BYTES
    from toolkit.service.web.context import MAX_MANIFEST_UPLOAD_BYTES

    lines = manifest_lines(tmp_path, 80)
    for line in lines:
        line.setdefault("metadata", {})["notes"] = "x" * 70_000  # under Ground Truth's 100 KB a line
    body = "".join(json.dumps(x) + "\n" for x in lines).encode()
    assert DEFAULT_MAX_SUBMISSION_BYTES < len(body) < MAX_MANIFEST_UPLOAD_BYTES

    def upload(client, name, page):
        return client.post("/admin/jobs/new", content_type="multipart/form-data", data={
            "name": name, "team": str(site["team_a"].id), "schema": "call-center",
            "csrf_token": token(client, page), "manifest_file": (__import__("io").BytesIO(body), "m.jsonl")})

    admin = client_for(site, site["admin"])
    resp = upload(admin, "big-upload", "/admin/jobs/new")
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    assert jobs.job_progress(site["db"], jobs.get_job(site["db"], "big-upload").id).objects == 81
    refused = upload(client_for(site, site["ann"]), "not-an-admin", "/")  # the answer limit still holds for others
    assert refused.status_code == 413


def test_admin_new_job_takes_a_gold_rate_and_shows_it(site, tmp_path):
    admin = client_for(site, site["admin"])
    lines = manifest_lines(tmp_path, 3)
    lines[0]["gold-answer"] = GOLD_ANSWER
    manifest = write_manifest(tmp_path / "gold-form.jsonl", lines)
    form = {"name": "gold-form", "team": str(site["team_a"].id), "schema": "call-center", "manifest": str(manifest)}
    for bad in ("1.5", "-0.1", "nan", "a quarter"):
        resp = admin.post("/admin/jobs/new",
                          data={**form, "gold_rate": bad, "csrf_token": token(admin, "/admin/jobs/new")})
        assert resp.status_code == 400 and "gold_rate" in resp.get_data(as_text=True)
    resp = admin.post("/admin/jobs/new",
                      data={**form, "gold_rate": "0.25", "csrf_token": token(admin, "/admin/jobs/new")})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    job = jobs.get_job(site["db"], "gold-form")
    assert job.gold_rate == 0.25
    page = admin.get(f"/admin/jobs/{job.id}").get_data(as_text=True)
    assert "gold rate 0.25: 1 gold object(s), mixed in" in page
    workers = admin.get(f"/admin/jobs/{job.id}/workers").get_data(as_text=True)
    assert '<span id="workers-gold-rate">0.25</span> (gold objects are mixed into' in workers


def test_media_served_with_range_and_only_from_its_roots(db, tmp_path, schema):
    """`s3://` media under a --mirror and local peaks files under a media root are served (with Range);
    a local file outside the roots (or reached through `..`) and a changed link are not. (`..` in an
    s3:// key is refused by the manifest contract itself.)"""
    media = tmp_path / "media"
    media.mkdir()
    (media / "a.wav").write_bytes(bytes(range(256)) * 4)
    (media / "a.peaks.json").write_text('{"version": 2}')
    (tmp_path / "secret.json").write_text("secret")
    base = {"media-type": "audio", "duration-seconds": 1.0, "source-ref": "s3://media-bucket/a.wav"}
    lines = [{**base, "interaction-id": "in-root", "peaks-ref": str(media / "a.peaks.json")},
             {**base, "interaction-id": "outside", "peaks-ref": str(tmp_path / "secret.json")},
             {**base, "interaction-id": "dotdot", "peaks-ref": str(media / ".." / "secret.json")}]
    team = people.create_team(db, "local")
    user = people.create_user(db, email="l@example.org", display_name="L", password=PASSWORD, team_ids=(team.id,))
    jobs.create_job(db, name="local-media", manifest=str(write_manifest(tmp_path / "l.jsonl", lines)),
                    schema=schema, team_id=team.id, output_uri=str(tmp_path / "out"))
    app = create_app(ServeConfig(db=db, output_uri=str(tmp_path / "out"), storage=Storage([f"s3://media-bucket/={media}"]),
                                 secure_cookies=False, run_queue=False, media_roots=(media,)))
    client = app.test_client()
    assert sign_in(client, user.email, PASSWORD).status_code == 302
    seen = {}
    for _ in lines:
        claimed = claim(client)
        assert claimed.status_code == 302
        links = media_links(client.get(claimed.location).get_data(as_text=True))
        task = work.current_task(db, user.id)
        seen[task.task_input["interaction-id"]] = [(link.rsplit("/", 1)[1], client.get(link).status_code)
                                                   for link in links]
        if task.task_input["interaction-id"] == "in-root":
            wav = next(x for x in links if x.endswith("a.wav"))
            part = client.get(wav, headers={"Range": "bytes=10-19"})
            assert part.status_code == 206 and part.data == bytes(range(10, 20))
            assert part.headers["Content-Range"] == "bytes 10-19/1024"
            forged = wav.replace(wav.split("/")[3], "0" * 32)
            assert client.get(forged).status_code == 404  # a changed link is refused
        work.submit(db, user.id, task.object_id, simulated_answer_content(task.task_input, schema, 1))
    assert seen == {"in-root": [("a.wav", 200), ("a.peaks.json", 200)],
                    "outside": [("a.wav", 200), ("secret.json", 404)],
                    "dotdot": [("a.wav", 200), ("secret.json", 404)]}


def test_s3_media_redirects_to_a_presigned_get(site, s3_bucket, db, tmp_path, schema):
    import boto3

    boto3.client("s3").put_object(Bucket=s3_bucket, Key="calls/c.wav", Body=b"RIFF....")
    team = people.create_team(db, "s3")
    user = people.create_user(db, email="s@example.org", display_name="S", password=PASSWORD, team_ids=(team.id,))
    line = {"source-ref": f"s3://{s3_bucket}/calls/c.wav", "media-type": "audio", "duration-seconds": 1.0,
            "interaction-id": "s3-1"}
    jobs.create_job(db, name="s3-media", manifest=str(write_manifest(tmp_path / "s.jsonl", [line])), schema=schema,
                    team_id=team.id, output_uri=str(tmp_path / "out"))
    app = create_app(ServeConfig(db=db, output_uri=str(tmp_path / "out"), storage=Storage(), secure_cookies=False,
                                 run_queue=False, presign_ttl_s=300))
    client = app.test_client()
    assert sign_in(client, user.email, PASSWORD).status_code == 302
    link = next(x for x in media_links(client.get(claim(client).location).get_data(as_text=True)) if "c.wav" in x)
    resp = client.get(link)
    assert resp.status_code == 302
    url = urlsplit(resp.location)
    query = parse_qs(url.query)
    assert url.path.endswith("/calls/c.wav") and s3_bucket in resp.location
    assert any(k.endswith("Signature") for k in query) and any(k.endswith("Expires") for k in query)
    assert boto3.client("s3").get_object(Bucket=s3_bucket, Key="calls/c.wav")["Body"].read() == b"RIFF...."


def test_cookies_are_secure_by_default(db, tmp_path):
    people.create_user(db, email="x@example.org", display_name="X", password=PASSWORD)
    app = create_app(ServeConfig(db=db, output_uri=str(tmp_path), run_queue=False))
    client = app.test_client()
    page = client.get("/login", base_url="https://gtkit.example")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("__Host-gtkit_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie


def test_readiness_needs_current_migrations(db_url, tmp_path):
    from toolkit.service.db import Database

    database = Database(db_url)
    try:
        migrate.upgrade(database, "0002")
        app = create_app(ServeConfig(db=database, output_uri=str(tmp_path), run_queue=False,
                                     secret_key=b"k" * 32))
        assert app.test_client().get("/readyz").status_code == 503
        assert app.test_client().get("/healthz").status_code == 200
        migrate.upgrade(database)
        assert app.test_client().get("/readyz").json == {
            "status": "ready", "detail": "ready",
            "queue": {"rows": 0, "waiting": 0, "oldest_waiting_s": None, "failing": 0}}
    finally:
        database.dispose()


def test_logs_carry_no_names_emails_tokens_or_answers(site, caplog):
    caplog.set_level(logging.DEBUG)
    ann = client_for(site, site["ann"])
    object_id = int(claim(ann).location.rsplit("/", 1)[1])
    task = work.current_task(site["db"], site["ann"].id)
    submit(ann, object_id, answer(site, task))
    invitation = people.invite(site["db"], email="z@example.org")
    client_for(site).get(f"/invite/{invitation.token}")
    text = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert "request" in text and "annotate.submit" in text
    for secret in (site["ann"].email, site["ann"].display_name, site["ann"].worker_id, invitation.token,
                   "Northwind", "My order"):
        assert secret not in text


def test_an_unhandled_error_is_logged_without_the_path_or_the_error_text(site, caplog, monkeypatch):
    """Flask logs "Exception on <path> [POST]" by itself: the path of an invitation carries its token
    (and a media path the file's name). The service logs the endpoint and the error's type instead,
    and the person gets a plain 500 page."""
    invitation = people.invite(site["db"], email="z@example.org")
    client = client_for(site)
    csrf = token(client, f"/invite/{invitation.token}")

    def broken(*args, **kwargs):
        raise RuntimeError("Northwind: the database said no")

    monkeypatch.setattr(people, "accept_invitation", broken)
    site["app"].config["PROPAGATE_EXCEPTIONS"] = False  # as in production, not as in Flask's testing mode
    caplog.set_level(logging.DEBUG)
    resp = client.post(f"/invite/{invitation.token}", data={"csrf_token": csrf, "display_name": "Zed",
                                                           "password": PASSWORD, "confirm": PASSWORD})
    assert resp.status_code == 500 and "Northwind" not in resp.get_data(as_text=True)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].getMessage() == "unhandled error" and errors[0].exc_info is None
    fields = errors[0].fields
    assert (fields["method"], fields["endpoint"], fields["error"]) == ("POST", "auth.invite_post", "RuntimeError")
    assert fields["stack"][-1].startswith("test_serve_web.py:") and fields["stack"][-1].endswith(" broken")
    for record in caplog.records:
        shown = f"{record.getMessage()} {getattr(record, 'fields', '')}"
        assert invitation.token not in shown and "Northwind" not in shown


def test_the_queue_thread_consolidates_and_writes_output(db, tmp_path, schema, storage):
    team, (ann,) = make_people(db, 1)
    manifest = write_manifest(tmp_path / "m.jsonl", manifest_lines(tmp_path, 1))
    job = jobs.create_job(db, name="queued", manifest=str(manifest), schema=schema,
                          team_id=team.id, output_uri=str(tmp_path / "out"))
    app = create_app(ServeConfig(db=db, output_uri=str(tmp_path / "out"), storage=storage, secure_cookies=False,
                                 queue_poll_s=0.05))
    try:
        client = app.test_client()
        sign_in(client, ann.email, PASSWORD)
        object_id = int(claim(client).location.rsplit("/", 1)[1])
        task = work.current_task(db, ann.id)
        assert submit(client, object_id, simulated_answer_content(task.task_input, schema, 1)).status_code == 200
        manifest = tmp_path / "out" / "queued" / "manifests" / "output" / "output.manifest"
        deadline = time.monotonic() + 20

        def labeled() -> int:
            if not manifest.exists():
                return 0
            return sum("segments" in json.loads(x) for x in manifest.read_text().splitlines())

        while time.monotonic() < deadline and labeled() == 0:
            time.sleep(0.05)
        assert labeled() == 1
        assert jobs.get_job(db, job.id).status == "done"
    finally:
        stop(app)


def test_admin_changes_roles_and_disables_accounts_from_the_users_page(site):
    admin = client_for(site, site["admin"])
    page = admin.get("/admin/users").get_data(as_text=True)
    assert site["ann"].email in page and site["ann"].worker_id in page
    csrf = token(admin, "/admin/users")
    role = f"/admin/users/{site['ann'].id}/role"
    assert admin.post(role, data={"role": "reviewer", "csrf_token": csrf}).status_code == 302
    assert people.get_user(site["db"], site["ann"].id).role == "reviewer"
    assert admin.post(role, data={"role": "boss", "csrf_token": csrf}).status_code == 400
    assert admin.post(f"/admin/users/{site['bob'].id}/disable", data={"csrf_token": csrf}).status_code == 302
    assert people.get_user(site["db"], site["bob"].id).disabled
    assert admin.post(f"/admin/users/{site['admin'].id}/disable", data={"csrf_token": csrf}).status_code == 400


def test_json_log_lines():
    from toolkit.service.web.server import JsonFormatter

    record = logging.LogRecord("gtkit.serve.access", logging.INFO, __file__, 1, "request", (), None)
    record.fields = {"endpoint": "annotate.submit", "status": 200, "ms": 12.5}
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "request" and line["endpoint"] == "annotate.submit" and line["status"] == 200
    assert line["level"] == "INFO" and line["ts"].endswith("+00:00")


def test_readiness_fails_when_the_database_is_unreachable(tmp_path):
    from service_helpers import free_port_number

    from toolkit.service.db import Database

    database = Database(f"postgresql://postgres@127.0.0.1:{free_port_number()}/gtkit")  # nothing listens there
    app = create_app(ServeConfig(db=database, output_uri=str(tmp_path), run_queue=False, secret_key=b"k" * 32))
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503 and "unreachable" in resp.json["detail"]
    assert app.test_client().get("/healthz").status_code == 200
    database.dispose()


GOLD_ANSWER = {"mediaDuration": 21.0, "tracks": [{"id": "t1", "category": "speaker", "label": "Agent"}],
               "segments": [{"id": "g1", "track": "t1", "start": 0.4, "end": 3.1, "text": "gold text not for workers"}],
               "content": {"overall_rating": 4}}


def test_gold_object_is_hidden_from_workers_and_scored_on_the_workers_page(site, tmp_path):
    db, admin_user = site["db"], site["admin"]
    lines = manifest_lines(tmp_path, 1)
    lines[0]["gold-answer"] = GOLD_ANSWER
    manifest = write_manifest(tmp_path / "gold.jsonl", lines)
    job = jobs.create_job(db, name="job-gold", manifest=str(manifest), schema=site["schema"],
                          team_id=site["team_a"].id, output_uri=str(tmp_path / "out"), workers_per_object=2)
    admin = client_for(site, admin_user)
    page = admin.get(f"/admin/jobs/{job.id}/workers")
    assert page.status_code == 200 and "No output written yet" in page.get_data(as_text=True)
    for user in (site["ann"], site["bob"]):
        client = client_for(site, user)
        while True:  # job-a's tasks come first for team a; answer everything
            resp = claim(client)
            if resp.status_code != 302 or "/task/" not in resp.location:
                break
            object_id = int(resp.location.rsplit("/", 1)[1])
            html = client.get(f"/task/{object_id}").get_data(as_text=True)
            assert "gold-answer" not in html and "gold text not for workers" not in html
            task = work.current_task(db, user.id)
            assert "gold-answer" not in task.task_input
            assert submit(client, object_id, answer(site, task)).status_code == 200
    output.write_output(db, job.id, storage=site["app"].extensions["gtkit_serve"].config.storage, full=True)
    html = admin.get(f"/admin/jobs/{job.id}/workers").get_data(as_text=True)
    assert 'id="workers"' in html and "Gold F1" in html and "<svg" in html
    for user in (site["ann"], site["bob"]):
        assert user.worker_id not in html
    assert "<tr><th>Gold objects</th><td>1</td></tr>" in html
    rows = re.findall(r"<tr><td>(w-[0-9a-f]{12})</td><td>(\d+)</td><td>(\d+)</td><td>([^<]+)</td>", html)
    assert len(rows) == 2 and all(tasks == "1" and gold == "1" and f1 != "–" for _w, tasks, gold, f1 in rows)
    # The charts are SVG drawn on the server: the bars say what the table says, under a strict policy.
    charts = parse_charts(html)
    assert {"Gold F1 per worker", "Tasks per hour", "Time per task relative to media duration (median)"} <= set(charts)
    assert sorted((w, float(v)) for w, v, _ in charts["Gold F1 per worker"]) == sorted(
        (w, float(f1)) for w, _t, _g, f1 in rows)
    assert {w for w, _, _ in charts["Time per task relative to media duration (median)"]} == {w for w, *_ in rows}
    page = admin.get(f"/admin/jobs/{job.id}/workers")
    policy = assert_strict(page.headers[csp.HEADER])
    assert policy["style-src"] == ["'self'"] and " style=" not in html and "<style" not in html
    real = admin.get(f"/admin/jobs/{job.id}/workers?ids=real").get_data(as_text=True)
    assert site["ann"].worker_id in real and site["bob"].worker_id in real
    assert client_for(site, site["ann"]).get(f"/admin/jobs/{job.id}/workers").status_code == 403
    # The JSON to download is what `gtkit export --worker-report` reads: with ids, or pseudonyms.
    assert 'id="workers-json"' in html
    state = site["app"].extensions["gtkit_serve"]
    for query, key in (("?ids=real", None), ("", state.worker_key)):
        resp = admin.get(f"/admin/jobs/{job.id}/workers.json{query}")
        assert resp.status_code == 200 and resp.mimetype == "application/json"
        assert "attachment" in resp.headers["Content-Disposition"]
        path = tmp_path / "workers.json"
        path.write_bytes(resp.data)
        trust = WorkerTrust.load(Storage(), str(path), key)
        assert trust.pseudonymized is (key is not None)
        if key is not None:  # the page's pseudonyms: the same names, the same F1
            assert trust.f1 == {w: float(f1) for w, _t, _g, f1 in rows}
        assert all(trust.gold_f1(u.worker_id) is not None for u in (site["ann"], site["bob"]))
    assert client_for(site, site["ann"]).get(f"/admin/jobs/{job.id}/workers.json").status_code == 403


def test_a_job_template_is_rendered_once_when_many_first_pages_arrive_together(site, monkeypatch):
    """The first pages of a job after a start arrive together: one thread renders, the others wait
    for it (a render is tens of ms of CPU; 50 of them at once stalled every request behind them)."""
    import threading

    import toolkit.task.template as task_template_module

    state = site["app"].extensions["gtkit_serve"]
    real, calls = task_template_module.render_template, []

    def slow_render(*args, **kwargs):
        calls.append(threading.get_ident())
        time.sleep(0.05)  # wide enough for every thread to miss the cache if nothing holds them
        return real(*args, **kwargs)

    monkeypatch.setattr(task_template_module, "render_template", slow_render)
    start, results = threading.Barrier(8), []

    def first_page(job_id):
        start.wait()
        results.append((job_id, state.task_template(job_id, None)))

    threads = [threading.Thread(target=first_page, args=(job.id,))
               for job in (site["job_a"], site["job_b"]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 8 and len(calls) == 2  # one render per job, not per request
    for job in (site["job_a"], site["job_b"]):
        assert len({id(found) for job_id, found in results if job_id == job.id}) == 1


def test_a_started_worker_keeps_its_app_out_of_full_collections(tmp_path):
    """gunicorn workers call settle_garbage_collector after building the app: what start-up made is
    frozen (a full collection no longer walks it), and garbage made before is collected, not kept."""
    script = textwrap.dedent("""
        import gc, json, sys, weakref
        from toolkit.service import migrate
        from toolkit.service.db import Database
        from toolkit.service.web import ServeConfig, create_app
        from toolkit.service.web.server import settle_garbage_collector

        db = Database(sys.argv[1])
        migrate.upgrade(db)
        app = create_app(ServeConfig(db=db, output_uri=sys.argv[2], run_queue=False, secret_key=b"k" * 32))
        class Cycle:
            pass
        cycle = Cycle()
        cycle.me = cycle
        gone = weakref.ref(cycle)
        del cycle
        before = gc.get_freeze_count()
        settle_garbage_collector()
        print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "left": len(gc.get_objects()),
                          "cycle_collected": gone() is None, "app": app.name}))
    """)
    done = subprocess.run([sys.executable, "-c", script, f"sqlite:///{tmp_path / 'g.db'}", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120, check=True)
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["before"] == 0 and facts["cycle_collected"]
    assert facts["frozen"] > 10 * facts["left"], facts  # the app's objects, not what is made later


def test_a_failing_queue_row_shows_on_the_job_page_and_its_count_on_readyz(site):
    """An output write that keeps failing (a bucket policy, a full disk) leaves the files behind the
    database while annotators go on labeling: the admin sees it and why, a monitor sees the count."""
    from toolkit.service import queue

    db, job = site["db"], site["job_a"]
    item = queue.claim_next(db, "w1")
    assert item.job_id == job.id and item.kind == queue.WRITE_OUTPUT
    with db.write() as session:
        queue.retry_later(session, db.now(), item, "ClientError: AccessDenied on s3://labels/out")
    admin = client_for(site, site["admin"])
    page = admin.get(f"/admin/jobs/{job.id}").get_data(as_text=True)
    shown = re.search(r'<td id="queue">(.*?)</td>', page, re.S).group(1)
    assert "1 row(s), 0 waiting" in shown and "1 failing" in shown and "AccessDenied on s3://labels/out" in shown
    other = admin.get(f"/admin/jobs/{site['job_b'].id}").get_data(as_text=True)
    assert "1 row(s), 1 waiting (longest 0 s)" in other and "failing" not in re.search(
        r'<td id="queue">(.*?)</td>', other, re.S).group(1)
    ready = client_for(site).get("/readyz")
    assert ready.status_code == 200 and ready.json["queue"] == {"rows": 2, "waiting": 1, "oldest_waiting_s": 0.0,
                                                                "failing": 1}
    assert "AccessDenied" not in ready.get_data(as_text=True)  # /readyz answers without a session


def test_the_admin_writes_a_jobs_output_from_its_page_and_it_is_audited(site, tmp_path):
    from toolkit.service.audit import list_audit

    admin, job = client_for(site, site["admin"]), site["job_a"]
    resp = admin.post(f"/admin/jobs/{job.id}/write-output", data={"csrf_token": token(admin, f"/admin/jobs/{job.id}")})
    manifest = tmp_path / "out" / "job-a" / "manifests" / "output" / "output.manifest"
    assert resp.status_code == 302 and parse_qs(urlsplit(resp.location).query)["written"] == [str(manifest)]
    assert len(manifest.read_text().splitlines()) == 3
    entry = list_audit(site["db"], limit=1)[0]
    assert (entry.actor_id, entry.action, entry.target) == (site["admin"].id, "job.write_output", f"job:{job.id}")
    assert entry.detail == {"objects": 3, "labeled": 0}
    ann = client_for(site, site["ann"])
    assert ann.post(f"/admin/jobs/{job.id}/write-output", data={"csrf_token": token(ann, "/")}).status_code == 403
