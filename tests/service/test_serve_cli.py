"""`gtkit serve ...` commands through typer's runner, on SQLite (--data) and PostgreSQL (--db)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from service_helpers import PASSWORD, manifest_lines, write_manifest
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.service import migrate, people, work
from toolkit.service.db import Database
from toolkit.service.simulate import simulated_answer_content


@pytest.fixture
def gtkit(db_url, tmp_path, monkeypatch):
    """Run `gtkit serve ...` against an empty database of each backend; returns (run, Database)."""
    monkeypatch.setenv("GTKIT_PASSWORD", PASSWORD)
    runner = CliRunner()
    location = ["--data", str(tmp_path / "data")] + ([] if db_url.startswith("sqlite") else ["--db", db_url])
    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{tmp_path / 'data' / 'gtkit.db'}"

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, ["serve", *args, *location])
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    yield run, lambda: Database(db_url)


def test_init_users_teams_jobs_export(gtkit, tmp_path, schema, example_mirror):
    run, open_db = gtkit
    first = run("init", "--admin-email", "admin@example.org")
    assert f"revision {migrate.head_revision()}" in first.output and "admin account" in first.output
    assert "exists already" in run("init", "--admin-email", "admin@example.org").output  # safe to rerun
    run("team", "add", "calls")
    run("user", "add", "ann@example.org", "--name", "Ann", "--team", "calls")
    run("user", "add", "bob@example.org", "--name", "Bob")
    run("team", "member", "calls", "bob@example.org")
    link = run("user", "invite", "cy@example.org", "--team", "calls", "--base-url", "https://label.example").stdout
    assert link.startswith("https://label.example/invite/") and len(link.strip()) > 60
    listing = json.loads(run("user", "list", "--json").stdout)
    assert [(u["email"], u["role"], u["teams"]) for u in listing] == [
        ("admin@example.org", "admin", []), ("ann@example.org", "annotator", ["calls"]),
        ("bob@example.org", "annotator", ["calls"])]
    run("user", "role", "bob@example.org", "reviewer")
    run("user", "disable", "bob@example.org")
    assert run("user", "add", "ann@example.org", code=1).output.count("exists") == 1  # one line, exit 1
    assert "no team" in run("user", "add", "x@example.org", "--team", "nope", code=1).output

    manifest = write_manifest(tmp_path / "m.jsonl", manifest_lines(tmp_path))
    out = tmp_path / "out"
    made = run("job", "create", "--name", "calls-1", "--manifest", str(manifest), "--schema", "call-center",
               "--team", "calls", "--out", str(out), "--mirror", example_mirror)
    assert "3 objects (1 declined" in made.output
    gold_lines = manifest_lines(tmp_path)
    gold_lines[0]["gold-answer"] = {"mediaDuration": 21.0, "tracks": [], "segments": []}
    gold_manifest = write_manifest(tmp_path / "g.jsonl", gold_lines)
    gold = run("job", "create", "--name", "calls-gold", "--manifest", str(gold_manifest), "--schema", "call-center",
               "--team", "calls", "--out", str(out), "--gold-rate", "0.25")
    assert "1 gold mixed in at rate 0.25" in " ".join(gold.output.split())
    assert "--gold-rate" in run("job", "create", "--name", "x", "--manifest", str(manifest), "--schema", "call-center",
                                "--team", "calls", "--gold-rate", "1.5", code=2).output
    run("job", "cancel", "calls-gold")
    more = write_manifest(tmp_path / "more.jsonl", manifest_lines(tmp_path, 3)[2:])
    assert "1 added" in run("job", "add-objects", "calls-1", "--manifest", str(more)).output
    assert "0 added" in run("job", "add-objects", "calls-1", "--manifest", str(more)).output
    for action, status in (("pause", "paused"), ("resume", "active")):
        assert f"is {status}" in run("job", action, "calls-1").output

    database = open_db()
    try:
        ann = next(u for u in people.list_users(database) if u.email == "ann@example.org")
        while (task := work.claim(database, ann.id)) is not None:
            work.submit(database, ann.id, task.object_id, simulated_answer_content(task.task_input, schema, 1))
    finally:
        database.dispose()
    written = run("job", "write-output", "calls-1")
    manifest_uri = written.stdout.strip()
    assert manifest_uri == str(out / "calls-1" / "manifests" / "output" / "output.manifest")
    lines = [json.loads(x) for x in Path(manifest_uri).read_text().splitlines()]
    assert len(lines) == 4 and sum("segments" in x for x in lines) == 3
    shown = json.loads(run("job", "show", "calls-1").stdout)
    assert shown["status"] == "done" and shown["progress"]["consolidated"] == 3
    assert shown["queue"] == {"rows": 0, "waiting": 0, "oldest_waiting_s": None, "failing": 0, "last_error": None}
    assert json.loads(run("job", "list", "--json").stdout)[0]["name"] == "calls-1"

    # The written layout imports back as a new job (Ground Truth's layout both ways).
    imported = run("job", "import", str(out / "calls-1"), "--name", "calls-1-again", "--schema", "call-center",
                   "--team", "calls", "--out", str(out))
    assert "4 objects, 3 labeled, 3 answers imported" in imported.output
    assert "is cancelled" in run("job", "cancel", "calls-1-again").output

    # A review job of it: one way of choosing at a time.
    assert "give one of" in run("job", "create-review", "calls-1", code=1).output
    assert "give one of" in run("job", "create-review", "calls-1", "--all", "--sample", "10", code=1).output
    made = run("job", "create-review", "calls-1", "--sample", "50", "--seed", "3")
    assert "calls-1-review of calls-1: 2 objects" in made.output and "segments-review" in made.output
    assert "no consolidated object" in run("job", "create-review", "calls-1", "--below-agreement", "0",
                                           "--name", "calls-1-none", code=1).output


def test_commands_refuse_a_database_that_is_not_migrated(gtkit):
    run, _open = gtkit
    result = run("user", "list", code=1)
    assert "gtkit serve init" in result.output


def test_user_reset_password_prints_a_single_use_link(gtkit):
    """The CLI's reset link is the admin page's: an invitation tied to the account, audited with
    the operator as actor; a newer link replaces an unused older one; it works once."""
    from toolkit.service.audit import list_audit

    run, open_db = gtkit
    run("init", "--admin-email", "admin@example.org")
    run("user", "add", "ann@example.org", "--name", "Ann")
    first = run("user", "reset-password", "ann@example.org", "--base-url", "https://label.example/").stdout.strip()
    result = run("user", "reset-password", "ANN@example.org ", "--hours", "1", "--base-url", "https://label.example")
    link = result.stdout.strip()
    assert link.startswith("https://label.example/invite/") and len(link) > 60 and link != first
    assert "password-reset link, valid until" in result.output and "ann@example.org" not in result.output
    assert "no account" in run("user", "reset-password", "nobody@example.org", code=1).output
    database = open_db()
    try:
        ann = next(u for u in people.list_users(database) if u.email == "ann@example.org")
        token, old = link.rsplit("/", 1)[1], first.rsplit("/", 1)[1]
        assert people.invitation_kind(database, old) is None  # replaced by the newer link
        assert people.invitation_kind(database, token) == "reset"
        assert people.authenticate(database, ann.email, PASSWORD) is not None  # until the link is used
        people.accept_invitation(database, token, display_name="", password="a new passphrase here")
        assert people.authenticate(database, ann.email, "a new passphrase here").id == ann.id
        assert people.invitation_kind(database, token) is None  # once only
        rows = [(r.action, r.actor_id, r.target) for r in list_audit(database)]
        assert rows.count(("user.reset_link", None, f"user:{ann.id}")) == 2
        assert ("user.reset_password", None, f"user:{ann.id}") in rows
        assert len(people.list_users(database)) == 2
    finally:
        database.dispose()


def test_user_list_shows_sso_issuers_and_unlink_sso_removes_them(gtkit, caplog):
    """`user list` names the issuers an account is linked to (never the subject); `user unlink-sso`
    is the admin page's Unlink SSO: all links or one issuer's, the account's sessions end, audited
    with the operator as actor; one-line errors for an unknown account and for nothing linked."""
    from toolkit.service import sso
    from toolkit.service.audit import list_audit

    run, open_db = gtkit
    run("init", "--admin-email", "admin@example.org")
    run("user", "add", "ann@example.org", "--name", "Ann")
    run("user", "add", "bob@example.org", "--name", "Bob")
    staff, partner = "https://login.example.org/realms/staff", "https://sso.partner.example"
    database = open_db()
    try:
        ann = next(u for u in people.list_users(database) if u.email == "ann@example.org")
        for issuer, subject in ((staff, "subject-one"), (partner, "subject-two")):
            config = sso.OidcConfig(issuer=issuer, client_id="gtkit", client_secret="not printed")
            claims = {"iss": issuer, "sub": subject, "email": "ann@example.org"}
            assert sso.sign_in(database, config, claims).id == ann.id  # linked by email
        ann_session = people.create_session(database, ann.id)
    finally:
        database.dispose()

    listing = run("user", "list", "--json").stdout
    assert {u["email"]: u["sso"] for u in json.loads(listing)} == {
        "admin@example.org": [], "ann@example.org": [staff, partner], "bob@example.org": []}
    table = run("user", "list").output
    sso_column = "".join(line.split("│")[-2].strip() for line in table.splitlines() if line.count("│") > 2)
    assert "SSO" in table and sso_column.count("no") == 2 and f"{staff}{partner}" in sso_column  # folded, whole
    assert "subject-" not in listing + table

    with caplog.at_level("DEBUG"):
        assert "no account" in run("user", "unlink-sso", "nobody@example.org", code=1).output
        bob_refused = run("user", "unlink-sso", "bob@example.org", code=1).output
        assert "not linked to single sign-on" in bob_refused and len(bob_refused.strip().splitlines()) == 1
        other = run("user", "unlink-sso", str(ann.id), "--issuer", "https://elsewhere.example", code=1).output
        assert f"user {ann.id} is not linked to issuer https://elsewhere.example" in " ".join(other.split())
        one = run("user", "unlink-sso", "ANN@example.org ", "--issuer", partner).output
        assert "1 single sign-on link removed; the account's sessions ended" in one
        assert "ann@example.org" not in one and "subject-" not in one
    assert "subject-" not in caplog.text and "ann@example.org" not in caplog.text
    database = open_db()
    try:
        assert sso.identities(database, ann.id) == [(staff, "subject-one")]
        assert people.session_user(database, ann_session) is None  # the account's sessions ended
        ann_session = people.create_session(database, ann.id)
    finally:
        database.dispose()
    listing = json.loads(run("user", "list", "--json").stdout)
    assert {u["email"]: u["sso"] for u in listing}["ann@example.org"] == [staff]

    assert "1 single sign-on link removed" in run("user", "unlink-sso", "ann@example.org").output
    assert "not linked to single sign-on" in run("user", "unlink-sso", "ann@example.org", code=1).output
    database = open_db()
    try:
        assert sso.identities(database, ann.id) == []
        assert people.session_user(database, ann_session) is None
        assert people.authenticate(database, ann.email, PASSWORD) is not None  # the password keeps working
        unlinks = [(r.actor_id, r.target, r.detail) for r in list_audit(database) if r.action == "sso.unlink"]
        assert unlinks == [(None, f"user:{ann.id}", {"issuers": [staff]}),  # newest first
                           (None, f"user:{ann.id}", {"issuers": [partner]})]
    finally:
        database.dispose()
