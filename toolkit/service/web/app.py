"""The web service's app factory: configuration, sessions, CSRF, headers, health and the queue thread.

- Sessions: Flask-Login over `people` sessions. The signed Flask cookie carries the session's
  random token (Flask-Login's "alternative token" pattern: `get_id()` is the token), and every
  request looks it up in the database, so logout, expiry and disabling a user take effect on every
  instance at once. Cookies are HttpOnly, SameSite=Lax and Secure (unless `secure_cookies=False`
  for plain http on 127.0.0.1); with Secure the cookie is `__Host-` prefixed.
- Every state change needs a same-origin Origin/Referer and the page's CSRF token (Flask-WTF).
- Default deny: a route answers without a session only if its endpoint is in PUBLIC (sign-in,
  invitations, health, static files).
- Nothing that matters lives in the process: the signing key is a `settings` row shared by every
  instance, media links are signed, holds and throttling are rows.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, redirect, request, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from jinja2 import ChoiceLoader, FileSystemLoader
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from toolkit.service import people
from toolkit.service.errors import Invalid, NotFound, Refused
from toolkit.service.portal import csp
from toolkit.service.portal.app import SAFE_METHODS, PrivateFlask, same_origin
from toolkit.service.runner import QueueWorker
from toolkit.service.web.context import (
    MAX_MANIFEST_UPLOAD_BYTES,
    SECRET_ENV,
    Serve,
    ServeConfig,
    WebUser,
    refuse,
    shared_secret,
)

log = logging.getLogger("gtkit.serve")
access_log = logging.getLogger("gtkit.serve.access")

HERE = Path(__file__).resolve().parent
PORTAL = HERE.parent / "portal"
PUBLIC = frozenset({"auth.login", "auth.login_post", "auth.invite", "auth.invite_post", "health.healthz",
                    "health.readyz", "static", "files.assets", "files.favicon", "sso.start", "sso.callback"})


def create_app(config: ServeConfig) -> Flask:
    secret = config.secret_key or (os.environ[SECRET_ENV].encode() if os.environ.get(SECRET_ENV)
                                   else shared_secret(config.db))
    app = PrivateFlask(__name__, static_folder=str(PORTAL / "static"), static_url_path="/_portal")
    app.jinja_loader = ChoiceLoader([FileSystemLoader(str(HERE / "templates")),
                                     FileSystemLoader(str(PORTAL / "templates"))])
    secure = config.secure_cookies
    app.config.update(
        SECRET_KEY=hmac.new(secret, b"gtkit flask session", hashlib.sha256).digest(),
        MAX_CONTENT_LENGTH=config.max_submission_bytes,
        SESSION_COOKIE_NAME="__Host-gtkit_session" if secure else "gtkit_session",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
        WTF_CSRF_TIME_LIMIT=None,  # valid for the session: a task may take hours
        WTF_CSRF_SSL_STRICT=False,  # Origin/Referer are checked by _same_origin_only, behind proxies too
    )
    state = Serve(config, secret)
    app.extensions["gtkit_serve"] = state

    @app.before_request
    def _start() -> Any:
        g.gtkit_started = time.perf_counter()
        # Every request is capped at the answer limit except an admin's manifest upload, raised here,
        # before CSRFProtect reads the form, and only once the session says it is an admin's.
        if request.endpoint == "admin.create_job" and current_user.is_authenticated and current_user.is_admin:
            request.max_content_length = MAX_MANIFEST_UPLOAD_BYTES
        # Registered before CSRFProtect, so it runs first.
        if request.method not in SAFE_METHODS and not same_origin(
                request.headers.get("Origin"), request.headers.get("Referer"), request.host):
            return refuse(403, "cross-origin request refused")
        return None

    CSRFProtect(app)
    logins = LoginManager(app)
    logins.session_protection = None  # the database session is the truth; addresses change behind proxies

    @logins.user_loader
    def _load(token: str) -> WebUser | None:
        info = people.session_user(config.db, token)
        return WebUser(info, token) if info is not None else None

    @app.before_request
    def _signed_in_only() -> Any:
        if request.endpoint in PUBLIC or current_user.is_authenticated:
            return None
        if request.method == "GET" and not request.is_json:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return refuse(401, "sign in first")

    @app.errorhandler(CSRFError)
    def _csrf_failed(exc: CSRFError) -> Any:
        return refuse(403, "this page's security token is missing or no longer valid: reload the page "
                           "(your answer is kept in this browser)")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Any:
        limit = request.max_content_length or config.max_submission_bytes
        larger = limit > config.max_submission_bytes  # the manifest upload's limit
        hint = ": name a larger manifest by its path or s3:// URI on the server" if larger else ""
        return refuse(413, f"the request is larger than the limit of {limit:,} bytes{hint}")

    @app.errorhandler(Refused)
    def _refused(exc: Refused) -> Any:
        return refuse(403, str(exc))

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> Any:
        return refuse(404, str(exc))

    @app.errorhandler(Invalid)
    def _invalid(exc: Invalid) -> Any:
        return refuse(400, str(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        if exc.code is not None and exc.code < 400:  # routing redirects
            return exc
        return refuse(exc.code or 500, exc.description or exc.name)

    @app.after_request
    def _finish(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault(csp.HEADER, csp.policy(g.get("gtkit_csp_scripts", ()), g.get("gtkit_media_origins", ()),
                                                       g.get("gtkit_csp_nonce")))
        if resp.mimetype == "text/html":
            resp.headers.setdefault("Cache-Control", "no-store")
        started = g.get("gtkit_started")
        # Endpoint names, never paths: paths carry invitation tokens and media names.
        access_log.info("request", extra={"fields": {
            "method": request.method, "endpoint": request.endpoint, "status": resp.status_code,
            "ms": round((time.perf_counter() - started) * 1000, 1) if started else None}})
        return resp

    from toolkit.service.web import admin, annotate, auth, files, sso

    for blueprint in (auth.bp, annotate.bp, admin.bp, files.bp, files.health, sso.bp):
        app.register_blueprint(blueprint)
    if config.oidc is not None:
        sso.init_app(app, config.oidc)

    @app.context_processor
    def _sso_button() -> dict[str, Any]:
        return {"sso_label": config.oidc.label if config.oidc is not None else None}

    if config.run_queue:
        state.queue = QueueWorker(config.db, storage=config.storage, poll_s=config.queue_poll_s,
                                  lease_s=config.queue_lease_s, output_delay_s=config.output_delay_s).start()
    return app


def stop(app: Flask) -> None:
    """Stop the app's queue thread (tests; gunicorn workers just exit)."""
    state: Serve = app.extensions["gtkit_serve"]
    if state.queue is not None:
        state.queue.stop()
        state.queue = None
