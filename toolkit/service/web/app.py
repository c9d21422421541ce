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

import base64
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Flask, Response, current_app, g, jsonify, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from jinja2 import ChoiceLoader, FileSystemLoader
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from toolkit.service import migrate, people
from toolkit.service.db import Database
from toolkit.service.errors import Invalid, NotFound, Refused
from toolkit.service.people import UserInfo
from toolkit.service.portal.app import DEFAULT_MAX_SUBMISSION_BYTES, SAFE_METHODS, same_origin
from toolkit.service.queue import DEFAULT_LEASE_S
from toolkit.service.runner import QueueWorker
from toolkit.service.tables import Setting
from toolkit.storage import Storage
from toolkit.task.liquid import make_environment
from toolkit.task.template import STATIC_DIR

log = logging.getLogger("gtkit.serve")
access_log = logging.getLogger("gtkit.serve.access")

HERE = Path(__file__).resolve().parent
PORTAL = HERE.parent / "portal"
SECRET_SETTING = "secret_key"
SECRET_ENV = "GTKIT_SECRET_KEY"
PUBLIC = frozenset({"auth.login", "auth.login_post", "auth.invite", "auth.invite_post", "health.healthz",
                    "health.readyz", "static", "files.assets", "files.favicon"})


@dataclass
class ServeConfig:
    db: Database
    output_uri: str  # where jobs created in the web UI write (<output_uri>/<job name>/)
    storage: Storage = field(default_factory=Storage)
    media_roots: tuple[Path, ...] = ()  # local media may only come from under these folders
    secure_cookies: bool = True
    run_queue: bool = True  # a queue thread in this process (any number of them is safe)
    queue_poll_s: float = 1.0
    queue_lease_s: int = DEFAULT_LEASE_S  # after this, a queue row a killed process held is taken again
    assets_dir: Path = STATIC_DIR
    max_submission_bytes: int = DEFAULT_MAX_SUBMISSION_BYTES
    presign_ttl_s: int = 900
    session_ttl_s: int = people.SESSION_TTL_S
    secret_key: bytes | None = None  # default: $GTKIT_SECRET_KEY, else the database's shared one
    # Task templates rendered once per (job, media type) and process: the assets (and so their SRI
    # hashes) change only with a gtkit upgrade, which restarts the server. Off: re-rendered per page
    # (--dev, while editing static/).
    cache_templates: bool = True


class WebUser(UserMixin):
    """The signed-in account of a request. `get_id()` is the session token, not the user id."""

    def __init__(self, info: UserInfo, token: str) -> None:
        self.info, self.token = info, token

    def get_id(self) -> str:
        return self.token

    @property
    def id(self) -> int:  # type: ignore[override]
        return self.info.id

    @property
    def is_admin(self) -> bool:
        return self.info.role == "admin"


class Serve:
    """Per-app state (`current_app.extensions["gtkit_serve"]`)."""

    def __init__(self, config: ServeConfig, secret: bytes) -> None:
        self.config = config
        self.db = config.db
        self._media_key = hmac.new(secret, b"gtkit media links", hashlib.sha256).digest()
        # Stable worker pseudonyms on the admin's metrics page (the same on every instance and restart).
        self.worker_key = hmac.new(secret, b"gtkit worker pseudonyms", hashlib.sha256).digest()
        self.liquid = make_environment(self._grant)
        self.queue: QueueWorker | None = None
        self._templates: dict[tuple[int, str | None], Any] = {}
        self._templates_lock = threading.Lock()

    def task_template(self, job_id: int, variant: str | None) -> Any:
        """The job's worker task template, compiled for Liquid (render it with `task.input`)."""
        from toolkit.service import jobs
        from toolkit.service.portal.views import ASSETS_PREFIX, swap_crowd_elements
        from toolkit.task.template import render_template as render_task_template

        key = (job_id, variant)  # a job's schema never changes
        with self._templates_lock:
            cached = self._templates.get(key) if self.config.cache_templates else None
        if cached is not None:
            return cached
        html = render_task_template(jobs.job_schema(self.db, job_id), ASSETS_PREFIX, variant=variant,
                                    static_dir=self.config.assets_dir)
        # The crowd-html-elements script tag is swapped before Liquid: it holds no Liquid.
        compiled = self.liquid.from_string(swap_crowd_elements(html))
        with self._templates_lock:
            self._templates[key] = compiled
        return compiled

    # -- media links: signed, so any instance can check them and nothing is kept in memory --------
    def media_signature(self, object_id: int, uri: str) -> str:
        message = f"{object_id}\0{uri}".encode("utf-8", "surrogateescape")
        return hmac.new(self._media_key, message, hashlib.sha256).hexdigest()[:32]

    def media_url(self, object_id: int, uri: str) -> str:
        if uri.startswith(("https://", "http://")):
            return uri
        encoded = base64.urlsafe_b64encode(uri.encode("utf-8", "surrogateescape")).decode().rstrip("=")
        name = Path(urlsplit(uri).path).name or "media"
        return f"/media/{object_id}/{self.media_signature(object_id, uri)}/{encoded}/{quote(name)}"

    def _grant(self, uri: str) -> str:
        return self.media_url(g.gtkit_object_id, uri)  # set by the task page before rendering


def serve_state() -> Serve:
    return current_app.extensions["gtkit_serve"]


def shared_secret(db: Database) -> bytes:
    """The signing key every instance shares: made once (first instance wins), kept in `settings`."""
    with db.write() as session:
        dialect = postgresql if db.is_postgres else sqlite
        session.execute(dialect.insert(Setting).values(name=SECRET_SETTING, value=secrets.token_hex(32))
                        .on_conflict_do_nothing(index_elements=[Setting.name]))
        value = session.scalar(select(Setting.value).where(Setting.name == SECRET_SETTING))
    return bytes.fromhex(value)


def decode_media_uri(encoded: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8", "surrogateescape")
    except (ValueError, UnicodeDecodeError):
        return None


def refuse(status: int, message: str, problems: list[str] | None = None) -> Any:
    """JSON for scripted requests and the stand-in's fetch, a page for browsers' forms."""
    if request.is_json or request.path.endswith("/submit") or request.accept_mimetypes.best == "application/json":
        return jsonify(error=message, problems=problems or [message]), status
    return render_template("message.html", title="Request refused", message=message), status


def create_app(config: ServeConfig) -> Flask:
    secret = config.secret_key or (os.environ[SECRET_ENV].encode() if os.environ.get(SECRET_ENV)
                                   else shared_secret(config.db))
    app = Flask(__name__, static_folder=str(PORTAL / "static"), static_url_path="/_portal")
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
        return refuse(413, f"the request is larger than the limit of {config.max_submission_bytes:,} bytes")

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
        if resp.mimetype == "text/html":
            resp.headers.setdefault("Cache-Control", "no-store")
        started = g.get("gtkit_started")
        # Endpoint names, never paths: paths carry invitation tokens and media names.
        access_log.info("request", extra={"fields": {
            "method": request.method, "endpoint": request.endpoint, "status": resp.status_code,
            "ms": round((time.perf_counter() - started) * 1000, 1) if started else None}})
        return resp

    from toolkit.service.web import admin, annotate, auth, files

    for blueprint in (auth.bp, annotate.bp, admin.bp, files.bp, files.health):
        app.register_blueprint(blueprint)

    if config.run_queue:
        state.queue = QueueWorker(config.db, storage=config.storage, poll_s=config.queue_poll_s,
                                  lease_s=config.queue_lease_s).start()
    return app


def stop(app: Flask) -> None:
    """Stop the app's queue thread (tests; gunicorn workers just exit)."""
    state: Serve = app.extensions["gtkit_serve"]
    if state.queue is not None:
        state.queue.stop()
        state.queue = None


def readiness(db: Database) -> tuple[bool, str]:
    try:
        with db.read() as session:
            session.execute(text("SELECT 1"))
        current = migrate.current_revision(db)
    except Exception as exc:  # unreachable, wrong credentials...
        return False, f"database unreachable: {type(exc).__name__}"
    head = migrate.head_revision()
    if current != head:
        return False, f"database at revision {current}, this version needs {head}: run `gtkit serve init`"
    return True, "ready"
