"""A small, real OpenID Connect provider on 127.0.0.1 for the SSO tests, the service's and the
browser's (imported as `oidc_provider`: tests/ is on sys.path).

Discovery, JWKS, authorize and token endpoints; RS256 ID tokens signed with a key made here
(joserfc, the JOSE library Authlib verifies with). Authorize signs in `provider.user` at once (no
login page) and redirects back with a code; the token endpoint checks the client secret, the
redirect URI and the PKCE verifier, as a real provider does. Attributes let a test make it
misbehave: another issuer or audience in the token, a wrong nonce, another issuer in discovery.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import WSGIRequestHandler, make_server


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


CLIENT_ID = "gtkit-test-client"
CLIENT_SECRET = "s3cret-" + "x" * 24


class Provider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"},
                                       private=True)
        self.app = self._make_app()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_Quiet)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.reset()

    def reset(self) -> None:
        self.user: dict[str, Any] = {"sub": "sub-1", "email": "ann@example.org", "email_verified": True,
                                     "name": "Ann SSO"}
        self.token_issuer: str | None = None  # None: self.issuer
        self.token_audience: str | None = None  # None: CLIENT_ID
        self.token_nonce: str | None = None  # None: the nonce of the authorization request
        self.discovery_issuer: str | None = None
        self.sign_with: RSAKey | None = None  # another key: a forged token
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self._codes: dict[str, dict[str, Any]] = {}

    def start(self) -> Provider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)

    def _make_app(self) -> Flask:
        app = Flask("oidc-test-provider")

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            return jsonify(issuer=self.discovery_issuer or self.issuer,
                           authorization_endpoint=self.issuer + "/authorize", token_endpoint=self.issuer + "/token",
                           jwks_uri=self.issuer + "/jwks", response_types_supported=["code"],
                           subject_types_supported=["public"], id_token_signing_alg_values_supported=["RS256"],
                           code_challenge_methods_supported=["S256"],
                           token_endpoint_auth_methods_supported=["client_secret_basic"])

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify(KeySet([self.key]).as_dict(private=False))

        @app.get("/authorize")
        def authorize() -> Any:
            params = request.args.to_dict()
            self.authorize_requests.append(params)
            if params.get("client_id") != CLIENT_ID or params.get("response_type") != "code":
                return jsonify(error="invalid_request"), 400
            code = secrets.token_urlsafe(16)
            self._codes[code] = {"params": params, "user": dict(self.user)}
            return redirect(params["redirect_uri"] + "?" + urlencode({"code": code, "state": params.get("state", "")}))

        @app.post("/token")
        def token() -> Any:
            form = request.form.to_dict()
            self.token_requests.append(form)
            auth = request.authorization
            if auth is None or (auth.username, auth.password) != (CLIENT_ID, CLIENT_SECRET):
                return jsonify(error="invalid_client"), 401
            grant = self._codes.pop(form.get("code", ""), None)  # a code works once
            if grant is None or form.get("grant_type") != "authorization_code":
                return jsonify(error="invalid_grant"), 400
            params = grant["params"]
            if form.get("redirect_uri") != params["redirect_uri"]:
                return jsonify(error="invalid_grant", error_description="redirect_uri"), 400
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if params.get("code_challenge_method") != "S256" or challenge != params.get("code_challenge"):
                return jsonify(error="invalid_grant", error_description="PKCE"), 400
            now = int(time.time())
            claims = {**grant["user"], "iss": self.token_issuer or self.issuer,
                      "aud": self.token_audience or CLIENT_ID, "iat": now, "exp": now + 300,
                      "nonce": self.token_nonce or params.get("nonce")}
            key = self.sign_with or self.key
            id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
            return jsonify(access_token=secrets.token_urlsafe(16), token_type="Bearer", expires_in=300,
                           id_token=id_token)

        return app
