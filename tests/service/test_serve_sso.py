"""Single sign-on through the web app's routes against a real OpenID Connect provider on 127.0.0.1
(tests/oidc_provider.py), on SQLite and PostgreSQL: the full authorization-code flow with
PKCE, linking an identity to an existing account, and the refusals (state, nonce, issuer, audience,
signature, unknown email, disabled account, domains)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc.jwk import RSAKey
from oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider
from service_helpers import PASSWORD, make_people
from web_helpers import sign_in, token

from toolkit.service import people, sso
from toolkit.service.audit import list_audit
from toolkit.service.errors import Invalid, Refused
from toolkit.service.web import ServeConfig, create_app
from toolkit.service.web.app import stop


@pytest.fixture(scope="module")
def provider():
    server = Provider().start()
    yield server
    server.stop()


@pytest.fixture
def idp(provider):
    provider.reset()
    return provider


def make_app(db, tmp_path, idp, **policy):
    config = sso.OidcConfig(issuer=idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **policy)
    app = create_app(ServeConfig(db=db, output_uri=str(tmp_path / "out"), secure_cookies=False, run_queue=False,
                                 oidc=config))
    app.testing = True
    return app


@pytest.fixture
def site(db, tmp_path, idp):
    team, (ann,) = make_people(db, 1, "team-a")
    ann = people.get_user(db, ann.id)
    app = make_app(db, tmp_path, idp)
    idp.user["email"] = ann.email
    yield {"app": app, "db": db, "ann": ann, "team": team, "idp": idp, "tmp_path": tmp_path}
    stop(app)


def sso_flow(client, next_path="/", *, tamper_state=None):
    """Sign-in page -> provider -> callback, as a browser follows the redirects."""
    start = client.get(f"/login/sso?next={next_path}")
    assert start.status_code == 302, start.get_data(as_text=True)
    at_provider = requests.get(start.location, allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    assert back.path == "/login/sso/callback"
    query = back.query
    if tamper_state is not None:
        params = parse_qs(query)
        query = f"code={params['code'][0]}&state={tamper_state}"
    return client.get(f"{back.path}?{query}")


def test_existing_account_signs_in_and_links_its_identity(site):
    db, ann, idp = site["db"], site["ann"], site["idp"]
    client = site["app"].test_client()
    assert "Sign in with single sign-on" in client.get("/login").get_data(as_text=True)
    done = sso_flow(client, "/account/password")
    assert done.status_code == 302 and done.location == "/account/password"
    home = client.get("/")
    assert home.status_code == 200 and f"Hello, {ann.display_name}" in home.get_data(as_text=True)
    # The flow was the code flow with PKCE S256, a nonce, and the client authenticated at the token endpoint.
    asked = idp.authorize_requests[-1]
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) >= 43
    assert asked["nonce"] and asked["state"] and "openid" in asked["scope"].split()
    assert idp.token_requests[-1]["code_verifier"]
    assert sso.identities(db, ann.id) == [(idp.issuer, "sub-1")]
    assert people.get_user(db, ann.id).worker_id == ann.worker_id  # the stable id is unchanged
    assert ("sso.link", f"user:{ann.id}") in [(r.action, r.target) for r in list_audit(db)]

    # Later: the linked identity signs in even after its email changed at the provider.
    idp.user["email"] = "ann.renamed@example.org"
    other = site["app"].test_client()
    assert sso_flow(other).status_code == 302 and other.get("/").status_code == 200
    assert len(people.list_users(db)) == 1
    assert people.authenticate(db, ann.email, PASSWORD) is not None  # the password still works too


def test_unknown_email_gets_no_account_by_default(site):
    db, idp = site["db"], site["idp"]
    idp.user.update(sub="sub-stranger", email="stranger@example.org")
    client = site["app"].test_client()
    resp = sso_flow(client)
    assert resp.status_code == 403 and "ask an admin for an invitation" in resp.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not signed in
    assert [u.email for u in people.list_users(db)] == [site["ann"].email]


def test_a_pending_invitation_is_accepted_by_sso(site):
    db, idp = site["db"], site["idp"]
    link = people.invite(db, email="newbie@example.org", role="reviewer", team_id=site["team"].id)
    idp.user.update(sub="sub-newbie", email="NewBie@Example.org", name="New Bie")
    client = site["app"].test_client()
    assert sso_flow(client).status_code == 302 and client.get("/").status_code == 200
    user = next(u for u in people.list_users(db) if u.email == "newbie@example.org")
    assert user.role == "reviewer" and user.display_name == "New Bie"
    assert people.user_team_ids(db, user.id) == [site["team"].id]
    assert not people.invitation_valid(db, link.token)  # used up
    assert people.authenticate(db, "newbie@example.org", "") is None  # no password was set


def test_new_users_policy_makes_annotators_within_the_domains(db, tmp_path, idp):
    app = make_app(db, tmp_path, idp, new_users="annotator", allowed_domains=("Example.org",))
    try:
        idp.user.update(sub="sub-x", email="x@example.org")
        client = app.test_client()
        assert sso_flow(client).status_code == 302 and client.get("/").status_code == 200
        (user,) = people.list_users(db)
        assert user.role == "annotator" and people.user_team_ids(db, user.id) == []
        idp.user.update(sub="sub-y", email="y@elsewhere.example")
        resp = sso_flow(app.test_client())
        assert resp.status_code == 403 and "domain" in resp.get_data(as_text=True)
        idp.user.update(sub="sub-z", email="z@example.org", email_verified=False)
        assert sso_flow(app.test_client()).status_code == 403
        assert len(people.list_users(db)) == 1
    finally:
        stop(app)
    with pytest.raises(Invalid):
        sso.OidcConfig(issuer=idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, new_users="admin")


def test_disabled_accounts_are_refused_linked_or_not(site):
    db, ann = site["db"], site["ann"]
    people.disable_user(db, ann.id)
    client = site["app"].test_client()
    assert sso_flow(client).status_code == 403 and sso.identities(db, ann.id) == []
    people.enable_user(db, ann.id)
    assert sso_flow(client).status_code == 302  # linked now
    people.disable_user(db, ann.id)
    assert client.get("/").status_code == 302  # its session ended
    again = site["app"].test_client()
    assert sso_flow(again).status_code == 403 and again.get("/").status_code == 302


def test_admin_sees_the_link_and_unlinks_it(site, caplog):
    """The Users page marks linked accounts with the issuer (never the subject); an admin unlinks
    (CSRF token needed, admins only, audited): the account's sessions end and its next SSO sign-in
    links again by email, so a recreated provider account (a new subject) can take over."""
    db, ann, idp = site["db"], site["ann"], site["idp"]
    admin_user = people.create_user(db, email="admin@example.org", display_name="Admin", password=PASSWORD,
                                    role="admin")
    admin = site["app"].test_client()
    assert sign_in(admin, admin_user.email, PASSWORD).status_code == 302
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "sso-issuer" not in page and "Unlink SSO" not in page

    ann_browser = site["app"].test_client()
    assert sso_flow(ann_browser).status_code == 302
    page = admin.get("/admin/users").get_data(as_text=True)
    row = page[page.index(f'<tr data-user="{ann.id}">'):]
    row = row[:row.index("</tr>")]
    assert f'<code class="sso-issuer">{idp.issuer}</code>' in row and "Unlink SSO" in row
    assert "sub-1" not in page
    mine = page[page.index(f'<tr data-user="{admin_user.id}">'):]
    assert '<span class="sso-none">no</span>' in mine[:mine.index("</tr>")]

    # The provider recreated Ann's account: a new subject, the same email. Linked elsewhere: refused.
    idp.user["sub"] = "sub-2"
    refused = sso_flow(site["app"].test_client())
    assert refused.status_code == 403 and "linked to another identity" in refused.get_data(as_text=True)

    url = f"/admin/users/{ann.id}/unlink-sso"
    assert admin.post(url).status_code == 403  # no CSRF token
    assert admin.post(url, data={"csrf_token": "forged"}).status_code == 403
    assert ann_browser.post(url, data={"csrf_token": token(ann_browser, "/")}).status_code == 403  # not an admin
    assert sso.identities(db, ann.id) == [(idp.issuer, "sub-1")]
    with caplog.at_level(logging.INFO):
        done = admin.post(url, data={"csrf_token": token(admin, "/admin/users")})
    assert done.status_code == 302 and done.location.endswith("/admin/users")
    assert sso.identities(db, ann.id) == []
    assert ann_browser.get("/").status_code == 302  # the account's sessions ended
    assert "sso-issuer" not in admin.get("/admin/users").get_data(as_text=True)
    (entry,) = [r for r in list_audit(db) if r.action == "sso.unlink"]
    assert (entry.actor_id, entry.target, entry.detail) == (admin_user.id, f"user:{ann.id}", {"issuers": [idp.issuer]})
    assert "sub-1" not in caplog.text and ann.email not in caplog.text
    again = admin.post(url, data={"csrf_token": token(admin, "/admin/users")})
    assert again.status_code == 403 and "not linked" in again.get_data(as_text=True)
    with pytest.raises(Refused):
        sso.unlink(db, ann.id, actor_id=ann.id)  # admins only

    # The next SSO sign-in is a first one again: it links the new subject by the account's email.
    relinked = site["app"].test_client()
    assert sso_flow(relinked).status_code == 302 and relinked.get("/").status_code == 200
    assert sso.identities(db, ann.id) == [(idp.issuer, "sub-2")]
    assert people.get_user(db, ann.id).worker_id == ann.worker_id
    assert people.authenticate(db, ann.email, PASSWORD) is not None  # the password was never touched


REASON = {"state": "MismatchingStateError", "nonce": "InvalidClaimError", "issuer": "InvalidClaimError",
          "audience": "InvalidClaimError", "signature": "BadSignatureError", "discovery": "Refused",
          "replay": "MismatchingStateError"}


@pytest.mark.parametrize("break_it", ["state", "nonce", "issuer", "audience", "signature", "discovery", "replay"])
def test_refusals(site, break_it, caplog):
    db, idp = site["db"], site["idp"]
    client = site["app"].test_client()
    if break_it == "nonce":
        idp.token_nonce = "not-the-nonce-we-sent"
    elif break_it == "issuer":
        idp.token_issuer = "https://evil.example"
    elif break_it == "audience":
        idp.token_audience = "another-client"
    elif break_it == "signature":
        idp.sign_with = RSAKey.generate_key(2048, parameters={"kid": "test-key"}, private=True)
    elif break_it == "discovery":
        idp.discovery_issuer = "https://evil.example"
    with caplog.at_level(logging.INFO):
        if break_it == "discovery":
            resp = client.get("/login/sso")
            assert resp.status_code == 502
        elif break_it == "replay":  # the same callback twice: the state was used up the first time
            start = client.get("/login/sso")
            back = requests.get(start.location, allow_redirects=False, timeout=10).headers["Location"]
            callback = urlsplit(back)
            attacker = site["app"].test_client()  # another browser, without the state in its session
            assert attacker.get(f"{callback.path}?{callback.query}").status_code == 403
            assert client.get(f"{callback.path}?{callback.query}").status_code == 302
            resp = client.get(f"{callback.path}?{callback.query}")
            assert resp.status_code == 403
            client = attacker
        else:
            resp = sso_flow(client, tamper_state="forged-state" if break_it == "state" else None)
            assert resp.status_code == 403, break_it
    assert client.get("/").status_code == 302, break_it  # not signed in
    if break_it != "replay":
        assert sso.identities(db, site["ann"].id) == []
    reasons = [r.fields["reason"] for r in caplog.records if r.getMessage() == "sso sign-in refused"]
    assert REASON[break_it] in reasons, reasons  # refused for the reason under test, not another one
    logged = caplog.text + " ".join(map(str, reasons))
    assert CLIENT_SECRET not in logged and site["ann"].email not in logged and "sub-1" not in logged


def test_sso_routes_are_absent_without_configuration_and_the_secret_is_never_shown(db, tmp_path, idp):
    app = create_app(ServeConfig(db=db, output_uri=str(tmp_path / "out"), secure_cookies=False, run_queue=False))
    try:
        client = app.test_client()
        assert client.get("/login/sso").status_code == 404
        assert "single sign-on" not in client.get("/login").get_data(as_text=True)
    finally:
        stop(app)
    config = sso.OidcConfig(issuer=idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert CLIENT_SECRET not in repr(config) and CLIENT_SECRET not in str(config)
    with pytest.raises(Invalid):
        sso.OidcConfig(issuer="http://idp.example", client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


def test_serve_run_options_turn_sso_on_with_the_secret_from_a_file(tmp_path, idp):
    """A real `gtkit serve run --dev` with the --oidc-* options; a browser-like session follows the
    redirects through the provider and lands signed in. The secret shows in no output."""
    from serve_processes import GTKIT
    from service_helpers import free_port_number

    data = tmp_path / "data"
    env = {**os.environ, "GTKIT_PASSWORD": PASSWORD}
    subprocess.run([str(GTKIT), "serve", "init", "--data", str(data), "--admin-email", "ann@example.org"],
                   check=True, capture_output=True, env=env, timeout=120)
    secret = tmp_path / "oidc-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    port = free_port_number()
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [str(GTKIT), "serve", "run", "--data", str(data), "--dev", "--port", str(port),
             "--oidc-issuer", idp.issuer, "--oidc-client-id", CLIENT_ID, "--oidc-secret-file", str(secret),
             "--oidc-domain", "example.org", "--oidc-label", "Example SSO"],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        browser = requests.Session()
        assert "Sign in with Example SSO" in browser.get(base + "/login", timeout=10).text
        home = browser.get(base + "/login/sso", timeout=10)  # -> provider -> callback -> /
        assert home.status_code == 200 and home.url == base + "/" and "Hello, Admin" in home.text
        assert idp.token_requests and idp.token_requests[-1]["code_verifier"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    assert CLIENT_SECRET not in log.read_text()


def test_serve_run_refuses_sso_without_a_secret(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from toolkit.cli import app as cli

    monkeypatch.delenv("GTKIT_OIDC_CLIENT_SECRET", raising=False)
    result = CliRunner().invoke(cli, ["serve", "run", "--data", str(tmp_path), "--oidc-issuer", "https://idp.example",
                                      "--oidc-client-id", CLIENT_ID])
    assert result.exit_code == 1 and "client secret" in result.output
    result = CliRunner().invoke(cli, ["serve", "run", "--data", str(tmp_path), "--oidc-issuer", "https://idp.example",
                                      "--oidc-client-id", CLIENT_ID, "--oidc-new-users", "admin"],
                                env={"GTKIT_OIDC_CLIENT_SECRET": CLIENT_SECRET})
    assert result.exit_code == 1 and "new users must be one of" in result.output
    assert CLIENT_SECRET not in result.output
