"""What the web app's parts share: its configuration, the per-app state, the signed-in user, and
the helpers every blueprint uses (refusals, media links, readiness). Blueprints import this, never
the app factory, so the factory can import them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from flask import current_app, g, jsonify, render_template, request
from flask_login import UserMixin
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite

from toolkit.service import migrate, people
from toolkit.service.db import Database
from toolkit.service.people import UserInfo
from toolkit.service.portal import csp
from toolkit.service.portal.app import DEFAULT_MAX_SUBMISSION_BYTES
from toolkit.service.queue import DEFAULT_LEASE_S
from toolkit.service.runner import QueueWorker
from toolkit.service.sso import OidcConfig
from toolkit.service.tables import Setting
from toolkit.storage import MirrorEscape, Storage, is_s3, split_s3
from toolkit.task.liquid import make_environment
from toolkit.task.template import STATIC_DIR

SECRET_SETTING = "secret_key"
SECRET_ENV = "GTKIT_SECRET_KEY"


# The new-job page's manifest upload (an admin's): werkzeug spools it to a temporary file, not memory.
# Larger manifests are named by a path or an s3:// URI on the server.
MAX_MANIFEST_UPLOAD_BYTES = 256 * 1024 * 1024


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
    output_delay_s: float = 0.0  # the queue thread's debounce of output writes (toolkit.service.queue)
    assets_dir: Path = STATIC_DIR
    max_submission_bytes: int = DEFAULT_MAX_SUBMISSION_BYTES
    presign_ttl_s: int = 900
    session_ttl_s: int = people.SESSION_TTL_S
    secret_key: bytes | None = None  # default: $GTKIT_SECRET_KEY, else the database's shared one
    # Task templates rendered once per (job, media type) and process: the assets (and so their SRI
    # hashes) change only with a gtkit upgrade, which restarts the server. Off: re-rendered per page
    # (--dev, while editing static/).
    cache_templates: bool = True
    oidc: OidcConfig | None = None  # single sign-on (toolkit.service.sso); None: passwords only


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
        self._templates: dict[tuple[int, str | None], tuple[Any, tuple[str, ...]]] = {}
        self._bucket_origins: dict[str, str | None] = {}
        self._templates_lock = threading.Lock()
        self._template_locks: dict[tuple[int, str | None], threading.Lock] = {}

    def task_template(self, job_id: int, variant: str | None) -> tuple[Any, tuple[str, ...]]:
        """The job's worker task template, compiled for Liquid (render it with `task.input`), and
        the CSP hashes of its inline scripts."""
        key = (job_id, variant)  # a job's schema never changes
        if not self.config.cache_templates:
            return self._compile_task_template(job_id, variant)
        with self._templates_lock:
            cached = self._templates.get(key)
            if cached is not None:
                return cached
            key_lock = self._template_locks.setdefault(key, threading.Lock())
        # Single flight: the first pages of a job after a start arrive together; one thread
        # renders (tens of ms of CPU), the others wait for its result instead of each rendering.
        with key_lock:
            with self._templates_lock:
                cached = self._templates.get(key)
            if cached is None:
                cached = self._compile_task_template(job_id, variant)
                with self._templates_lock:
                    self._templates[key] = cached
        return cached

    def _compile_task_template(self, job_id: int, variant: str | None) -> tuple[Any, tuple[str, ...]]:
        from toolkit.service import jobs
        from toolkit.service.portal.views import ASSETS_PREFIX, swap_crowd_elements
        from toolkit.task.template import render_template as render_task_template

        review = jobs.get_job(self.db, job_id).kind == "review"  # a review job's page is the review template
        html = render_task_template(jobs.job_schema(self.db, job_id), ASSETS_PREFIX, variant=variant,
                                    static_dir=self.config.assets_dir, review=review)
        # The crowd-html-elements script tag is swapped before Liquid: it holds no Liquid.
        html = swap_crowd_elements(html)
        return self.liquid.from_string(html), csp.inline_script_hashes(html)

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

    def media_origin(self, uri: str) -> str | None:
        """The other origin the browser fetches this media from: an http(s) URI's own, or for
        S3 (not mirrored) the presigned GET URLs' origin, which depends on the bucket, the region
        and the endpoint configured for the client. None: served by us."""
        if uri.startswith(("https://", "http://")):
            return csp.origin(uri)
        if not is_s3(uri):
            return None
        try:
            target = self.config.storage.resolve_read(uri)
        except MirrorEscape:
            return None
        if not is_s3(target):
            return None
        bucket, _key = split_s3(target)
        if bucket not in self._bucket_origins:
            try:
                url = self.config.storage.client.generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": "gtkit-origin-probe"}, ExpiresIn=60)
            except Exception:  # no credentials: the media link cannot work either
                url = ""
            self._bucket_origins[bucket] = csp.origin(url)
        return self._bucket_origins[bucket]

    def _grant(self, uri: str) -> str:
        found = self.media_origin(uri)
        if found is not None:
            g.setdefault("gtkit_media_origins", set()).add(found)
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
