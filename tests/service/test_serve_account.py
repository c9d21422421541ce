"""Changing one's password and the admin's password-reset link, through the web app (Flask's test
client) on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from service_helpers import PASSWORD, make_people
from sqlalchemy import select
from web_helpers import sign_in, token

from toolkit.service import people
from toolkit.service.audit import list_audit
from toolkit.service.errors import Refused
from toolkit.service.tables import User
from toolkit.service.web import ServeConfig, create_app
from toolkit.service.web.app import stop

NEW = "a brand new passphrase"


@pytest.fixture
def site(db, tmp_path):
    _, (ann,) = make_people(db, 1, "team-a")
    admin = people.create_user(db, email="admin@example.org", display_name="Admin", password=PASSWORD, role="admin")
    app = create_app(ServeConfig(db=db, output_uri=str(tmp_path / "out"), secure_cookies=False, run_queue=False))
    app.testing = True
    yield {"app": app, "db": db, "ann": ann, "admin": admin}
    stop(app)


def signed_in(site, user, password=PASSWORD):
    client = site["app"].test_client()
    assert sign_in(client, user.email, password).status_code == 302
    return client


def link_path(resp) -> str:
    match = re.search(r'id="invite-link" readonly size="80" value="https?://[^/"]+(/invite/[^"]+)"',
                      resp.get_data(as_text=True))
    assert match, "no link on the page"
    return match.group(1)


def change(client, current, new, confirm=None, csrf=None):
    return client.post("/account/password", data={
        "current": current, "password": new, "confirm": new if confirm is None else confirm,
        "csrf_token": csrf if csrf is not None else token(client, "/account/password")})


def test_change_password_needs_the_current_one_and_ends_other_sessions(site):
    db, ann = site["db"], site["ann"]
    here, elsewhere = signed_in(site, ann), signed_in(site, ann)
    assert change(here, "not my password", NEW).status_code == 403
    assert change(here, PASSWORD, "short").status_code == 400  # the invitation's rules: 10+ characters
    assert change(here, PASSWORD, NEW, confirm=NEW + "x").status_code == 400
    assert change(here, PASSWORD, NEW, csrf="forged").status_code == 403
    assert people.authenticate(db, ann.email, PASSWORD) is not None  # none of those changed anything
    assert elsewhere.get("/").status_code == 200

    done = change(here, PASSWORD, NEW)
    assert done.status_code == 302 and done.location.endswith("/account/password?done=1")
    assert here.get("/").status_code == 200  # this browser has a new session
    assert elsewhere.get("/").status_code == 302  # the other one is signed out
    assert people.authenticate(db, ann.email, PASSWORD) is None
    assert people.authenticate(db, ann.email, NEW) is not None
    with db.read() as session:
        assert session.scalar(select(User.password_hash).where(User.id == ann.id)).startswith("$argon2id$")
    actions = [(r.action, r.actor_id, r.target) for r in list_audit(db)]
    assert ("user.change_password", ann.id, f"user:{ann.id}") in actions
    assert sum(a == "user.change_password" for a, _, _ in actions) == 1


def test_wrong_current_passwords_are_throttled(site):
    client = signed_in(site, site["ann"])
    statuses = [change(client, f"wrong {i} password", NEW).status_code for i in range(11)]
    assert statuses[:10] == [403] * 10 and statuses[10] == 429
    assert change(client, PASSWORD, NEW).status_code == 429  # even the right one, until the window passes
    assert people.authenticate(site["db"], site["ann"].email, PASSWORD) is not None


def test_admin_reset_link_sets_a_new_password_once(site):
    db, ann = site["db"], site["ann"]
    old_session = signed_in(site, ann)
    admin = signed_in(site, site["admin"])
    # Only admins make reset links.
    assert old_session.post(f"/admin/users/{ann.id}/reset-password",
                            data={"csrf_token": token(old_session, "/")}).status_code == 403
    first = admin.post(f"/admin/users/{ann.id}/reset-password", data={"csrf_token": token(admin, "/admin/users")})
    assert first.status_code == 200 and "Password reset link" in first.get_data(as_text=True)
    resp = admin.post(f"/admin/users/{ann.id}/reset-password", data={"csrf_token": token(admin, "/admin/users")})
    path, first_path = link_path(resp), link_path(first)
    assert people.authenticate(db, ann.email, PASSWORD) is not None  # still works until the link is used

    visitor = site["app"].test_client()
    assert visitor.get(first_path).status_code == 404  # a newer link replaced it
    page = visitor.get(path)
    assert page.status_code == 200 and "Choose a new password" in page.get_data(as_text=True)
    assert 'name="display_name"' not in page.get_data(as_text=True)
    csrf = token(visitor, path)
    assert visitor.post(path, data={"password": "short", "confirm": "short", "csrf_token": csrf}).status_code == 400
    done = visitor.post(path, data={"password": NEW, "confirm": NEW, "csrf_token": csrf})
    assert done.status_code == 302 and visitor.get("/").status_code == 200
    assert old_session.get("/").status_code == 302  # the account's old sessions ended
    assert people.authenticate(db, ann.email, PASSWORD) is None
    info = people.authenticate(db, ann.email, NEW)
    assert info is not None and info.worker_id == ann.worker_id and info.display_name == ann.display_name
    again = site["app"].test_client()
    assert again.post(path, data={"password": NEW, "confirm": NEW,
                                  "csrf_token": token(again, "/login")}).status_code == 404  # once only
    actions = [(r.action, r.target) for r in list_audit(db)]
    assert ("user.reset_link", f"user:{ann.id}") in actions and ("user.reset_password", f"user:{ann.id}") in actions
    assert len(people.list_users(db)) == 2  # no account was created


def test_reset_link_of_a_disabled_account_does_not_work(site, clock):
    db, ann = site["db"], site["ann"]
    link = people.reset_link(db, ann.id)
    people.disable_user(db, ann.id)
    visitor = site["app"].test_client()
    csrf = token(visitor, "/login")
    resp = visitor.post(f"/invite/{link.token}", data={"password": NEW, "confirm": NEW, "csrf_token": csrf})
    assert resp.status_code == 404 and people.authenticate(db, ann.email, NEW) is None
    people.enable_user(db, ann.id)
    expired = people.reset_link(db, ann.id, ttl_s=60)
    clock.advance(61)
    assert visitor.get(f"/invite/{expired.token}").status_code == 404
    with pytest.raises(Refused):
        people.reset_link(db, ann.id, actor_id=ann.id)  # annotators cannot make one
