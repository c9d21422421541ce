"""Accounts, teams, invitations, sessions and the audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from service_helpers import PASSWORD
from sqlalchemy import select

from toolkit.service import people
from toolkit.service.audit import list_audit
from toolkit.service.errors import Invalid, Refused
from toolkit.service.tables import Invitation, User, UserSession


def test_accounts_hash_passwords_with_argon2_and_sign_in(db):
    user = people.create_user(db, email=" Ann@Example.ORG ", display_name="Ann", password=PASSWORD)
    assert user.email == "ann@example.org" and user.role == "annotator"
    assert len(user.worker_id) == 20 and "ann" not in user.worker_id.lower()  # never derived from a name
    with db.read() as session:
        stored = session.scalar(select(User.password_hash).where(User.id == user.id))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert people.authenticate(db, "ANN@example.org", PASSWORD) == user
    assert people.authenticate(db, "ann@example.org", "wrong password!") is None
    assert people.authenticate(db, "nobody@example.org", PASSWORD) is None
    assert people.authenticate(db, "not an email", PASSWORD) is None
    with pytest.raises(Refused, match="exists"):
        people.create_user(db, email="ann@example.org", display_name="Ann 2", password=PASSWORD)
    with pytest.raises(Invalid, match="password"):
        people.create_user(db, email="bob@example.org", display_name="Bob", password="short")
    with pytest.raises(Invalid, match="role"):
        people.create_user(db, email="bob@example.org", display_name="Bob", password=PASSWORD, role="root")


def test_disabling_ends_sessions_and_sign_in(db):
    admin = people.create_user(db, email="admin@example.org", display_name="Admin", password=PASSWORD, role="admin")
    user = people.create_user(db, email="ann@example.org", display_name="Ann", password=PASSWORD)
    token = people.create_session(db, user.id)
    assert people.session_user(db, token) == user
    people.disable_user(db, user.id, actor_id=admin.id)
    assert people.session_user(db, token) is None
    assert people.authenticate(db, "ann@example.org", PASSWORD) is None
    with pytest.raises(Refused, match="disabled"):
        people.create_session(db, user.id)
    people.enable_user(db, user.id, actor_id=admin.id)
    assert people.session_user(db, token) is None  # a revoked session stays revoked
    assert people.authenticate(db, "ann@example.org", PASSWORD) is not None


def test_sessions_end_on_logout_expiry_and_password_change(db, clock):
    user = people.create_user(db, email="ann@example.org", display_name="Ann", password=PASSWORD)
    first, second = people.create_session(db, user.id, ttl_s=60), people.create_session(db, user.id, ttl_s=3600)
    with db.read() as session:  # only hashes are stored
        hashes = set(session.scalars(select(UserSession.id_hash)))
    assert first not in hashes and people.token_hash(first) in hashes
    people.end_session(db, first)
    assert people.session_user(db, first) is None and people.session_user(db, second) == user
    clock.advance(3600)
    assert people.session_user(db, second) is None
    third = people.create_session(db, user.id)
    people.set_password(db, user.id, "another good password", actor_id=user.id)
    assert people.session_user(db, third) is None
    assert people.authenticate(db, "ann@example.org", "another good password") == user
    assert people.session_user(db, "made-up token") is None


def test_invitation_works_once_and_expires(db, clock):
    team = people.create_team(db, "team-a")
    link = people.invite(db, email="new@example.org", role="annotator", team_id=team.id, ttl_s=3600)
    with db.read() as session:
        row = session.scalar(select(Invitation))
    assert row.token_hash == people.token_hash(link.token) and link.token not in row.token_hash
    user = people.accept_invitation(db, link.token, display_name="New", password=PASSWORD)
    assert user.email == "new@example.org" and people.user_team_ids(db, user.id) == [team.id]
    with pytest.raises(Refused, match="not valid"):
        people.accept_invitation(db, link.token, display_name="Again", password=PASSWORD)

    late = people.invite(db, email="late@example.org", ttl_s=60)
    clock.advance(61)
    with pytest.raises(Refused, match="not valid"):
        people.accept_invitation(db, late.token, display_name="Late", password=PASSWORD)
    with pytest.raises(Refused, match="not valid"):
        people.accept_invitation(db, "no-such-token", display_name="X", password=PASSWORD)
    assert people.authenticate(db, "late@example.org", PASSWORD) is None


def test_a_bad_accept_does_not_use_up_the_invitation(db):
    link = people.invite(db, email="new@example.org")
    with pytest.raises(Invalid, match="password"):
        people.accept_invitation(db, link.token, display_name="New", password="short")
    assert people.accept_invitation(db, link.token, display_name="New", password=PASSWORD).email == "new@example.org"


def test_racing_accepts_create_one_account(db):
    link = people.invite(db, email="new@example.org")
    results: list[object] = []

    def accept(i: int) -> None:
        try:
            results.append(people.accept_invitation(db, link.token, display_name=f"N{i}", password=PASSWORD))
        except Refused as exc:
            results.append(exc)

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accounts = [r for r in results if isinstance(r, people.UserInfo)]
    assert len(results) == 8 and len(accounts) == 1
    with db.read() as session:
        assert session.scalar(select(User.id).where(User.email == "new@example.org")) == accounts[0].id


def test_admin_actions_need_an_admin_and_leave_an_audit_trail(db):
    admin = people.create_user(db, email="admin@example.org", display_name="Admin", password=PASSWORD, role="admin")
    ann = people.create_user(db, email="ann@example.org", display_name="Ann Example", password=PASSWORD)
    with pytest.raises(Refused, match="not an enabled admin"):
        people.create_team(db, "team-x", actor_id=ann.id)
    team = people.create_team(db, "team-a", actor_id=admin.id)
    people.add_member(db, team.id, ann.id, actor_id=admin.id)
    people.add_member(db, team.id, ann.id, actor_id=admin.id)  # already a member: nothing changes
    assert people.user_team_ids(db, ann.id) == [team.id]
    people.set_role(db, ann.id, "reviewer", actor_id=admin.id)
    people.remove_member(db, team.id, ann.id, actor_id=admin.id)
    assert people.user_team_ids(db, ann.id) == []
    people.disable_user(db, ann.id, actor_id=admin.id)
    trail = list_audit(db)
    assert [(r.action, r.actor_id) for r in trail[:5]] == [
        ("user.disable", admin.id), ("team.remove_member", admin.id), ("user.set_role", admin.id),
        ("team.add_member", admin.id), ("team.create", admin.id)]
    assert trail[2].target == f"user:{ann.id}" and trail[2].detail == {"role": "reviewer"}
    text = repr(trail)
    assert "ann@example.org" not in text and "Ann Example" not in text  # ids only, no PII
    assert [u.id for u in people.list_users(db)] == [admin.id, ann.id]


def test_ended_sessions_and_throttle_rows_are_pruned_a_day_after_they_end(db, clock, monkeypatch):
    from sqlalchemy import func

    from toolkit.service import runner
    from toolkit.service.tables import LoginThrottle
    from toolkit.service.web import throttle

    def counts():
        with db.read() as session:
            return (session.scalar(select(func.count()).select_from(UserSession)),
                    session.scalar(select(func.count()).select_from(LoginThrottle)))

    user = people.create_user(db, email="ann@example.org", display_name="Ann", password=PASSWORD)
    expiring = people.create_session(db, user.id, ttl_s=12 * 3600)
    people.end_session(db, people.create_session(db, user.id))  # revoked now
    throttle.failed(db, throttle.keys("192.0.2.7", "typo@example.org"))
    assert counts() == (2, 2)
    clock.advance(24 * 3600 - 1)
    assert people.prune_ended(db) == (0, 0)
    clock.advance(2)  # a day after the logout and the failed sign-in
    assert people.prune_ended(db) == (1, 2) and counts() == (1, 0)
    live = people.create_session(db, user.id, ttl_s=24 * 3600)
    clock.advance(12 * 3600)  # a day after `expiring` expired
    assert people.prune_ended(db) == (1, 0)
    assert people.session_user(db, live) == user and people.session_user(db, expiring) is None

    # The queue worker prunes on its first round, then at most once every PRUNE_EVERY_S.
    people.end_session(db, live)
    clock.advance(24 * 3600 + 1)
    worker = runner.QueueWorker(db)
    worker.run_round()
    assert counts() == (0, 0)
    people.end_session(db, people.create_session(db, user.id))
    clock.advance(24 * 3600 + 1)
    worker.run_round()
    assert counts() == (1, 0)  # within the hour: not again
    monkeypatch.setattr(runner, "PRUNE_EVERY_S", 0)
    worker.run_round()
    assert counts() == (0, 0)
