"""Signing in with the company's OpenID Connect provider (Authlib's Flask client).

`/login/sso` starts the authorization-code flow: Authlib makes the state, the nonce and the PKCE
(S256) verifier and keeps them in the signed session cookie; `/login/sso/callback` checks the
state, redeems the code at the token endpoint (client secret + verifier) and verifies the ID
token: signature against the provider's JWKS, issuer (the configured one, which the discovery
document must also name), audience (our client id), expiry and nonce. Which account the identity
may use is toolkit.service.sso's decision. Failures answer one page; the log gets the reason's
kind, never the token, the email or the subject.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, redirect, render_template, request, session, url_for
from joserfc.errors import JoseError

from toolkit.service import sso
from toolkit.service.errors import Refused
from toolkit.service.portal.views import safe_next
from toolkit.service.web.context import serve_state

log = logging.getLogger("gtkit.serve")
bp = Blueprint("sso", __name__)
NEXT_KEY = "gtkit_sso_next"
FAILED = "Single sign-on did not work. Try again; if it keeps failing, ask an admin."


def init_app(app: Flask, config: sso.OidcConfig) -> None:
    oauth = OAuth(app)
    oauth.register("oidc", client_id=config.client_id, client_secret=config.client_secret,
                   server_metadata_url=config.metadata_url,
                   client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256",
                                  "default_timeout": config.timeout_s})
    app.extensions["gtkit_oidc"] = oauth


def _client() -> Any:
    config = serve_state().config.oidc
    oauth = current_app.extensions.get("gtkit_oidc")
    if config is None or oauth is None:
        abort(404)
    return oauth.oidc, config


def _metadata(client: Any, config: sso.OidcConfig) -> dict[str, Any]:
    metadata = client.load_server_metadata()
    if metadata.get("issuer") != config.issuer:  # OpenID Connect Discovery 1.0, section 4.3
        raise Refused("the provider's discovery document names another issuer")
    return metadata


def _failed(kind: str, message: str = FAILED, status: int = 403) -> Any:
    log.warning("sso sign-in refused", extra={"fields": {"reason": kind}})
    return render_template("message.html", title="Sign-in refused", message=message), status


@bp.get("/login/sso")
def start() -> Any:
    client, config = _client()
    try:
        _metadata(client, config)
    except (requests.RequestException, ValueError, Refused) as exc:
        return _failed(type(exc).__name__, status=502)
    session[NEXT_KEY] = safe_next(request.args.get("next"))
    return client.authorize_redirect(url_for("sso.callback", _external=True))


@bp.get("/login/sso/callback")
def callback() -> Any:
    from toolkit.service.web.auth import sign_in

    client, config = _client()
    try:
        _metadata(client, config)
        token = client.authorize_access_token(claims_options={
            "iss": {"essential": True, "values": [config.issuer]}, "sub": {"essential": True},
            "aud": {"essential": True, "values": [config.client_id]}, "nonce": {"essential": True}})
    except (AuthlibBaseError, JoseError, requests.RequestException, ValueError, KeyError, Refused) as exc:
        return _failed(type(exc).__name__)
    claims = token.get("userinfo")
    if not claims:  # no ID token (Authlib only parses one when it sent a nonce)
        return _failed("no_id_token")
    try:
        info = sso.sign_in(serve_state().db, config, claims)
    except Refused as exc:
        return _failed("account", f"Single sign-on worked, but it does not open an account here: {exc}.")
    nxt = safe_next(session.pop(NEXT_KEY, None))
    sign_in(info)
    return redirect(nxt)
