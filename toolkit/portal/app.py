"""The local worker portal: serves the real worker task template the way Ground Truth would.

Per task page: `render_template()` output (the same file uploaded for Ground Truth) -> python-liquid
with Ground Truth's filters (toolkit/liquid.py) -> crowd-html-elements swapped for a local stand-in
-> wrapped in a small page shell. `grant_read_access` hands out portal media URLs keyed by an
unguessable token, like a presigned URL: only URIs a task page granted can be fetched, so the
portal never serves arbitrary files. Binds 127.0.0.1 only (see `run_portal`).

At the door: every state-changing request must come from a portal page (same Origin/Referer) and
carry its CSRF token (Flask-WTF; forms post `csrf_token`, the stand-in's fetch sends `X-CSRFToken`
from the page's `csrf-token` meta tag); a submission is parsed and validated by the same code as
the post-annotation Lambda (`toolkit.answers`) against the job's label schema before it is stored,
and its size is capped (`max_submission_bytes`). Refusals answer JSON `{error, problems}`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import mimetypes
import re
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from flask import Flask, Response, abort, jsonify, redirect, render_template, request, send_file, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import escape as html_escape
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wsgi import FileWrapper

from toolkit.answers import AnswerFormatError, load_json, worker_answer
from toolkit.liquid import make_environment
from toolkit.portal.tasks import STATUS_FAILED, SubmissionRejected, TaskSource
from toolkit.storage import MirrorEscape, is_s3, split_s3
from toolkit.template import CROWD_ELEMENTS_URL, STATIC_DIR
from toolkit.template import render_template as render_task_template

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
ASSETS_PREFIX = "/assets/"
WORKER_COOKIE = "gtkit_worker"
# Werkzeug streams files in 8 KiB blocks by default: ~55 MB/s, so a 3-hour peaks file (16 MB) took
# ~0.3 s to arrive. 256 KiB blocks make that a few tens of milliseconds.
FILE_BLOCK = 256 * 1024
WORKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")
STANDIN_PATH = "/_portal/crowd-standin.js"
FAVICON = HERE / "static" / "favicon.svg"
# A 3-hour call with a few thousand segments and their text is well under 1 MB of answer JSON.
DEFAULT_MAX_SUBMISSION_BYTES = 4_000_000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
GZIP_MAGIC = b"\x1f\x8b"  # as toolkit.peaks.GZIP_MAGIC (not imported: that module pulls numpy)
# Browsers and wavesurfer are picky about media types; mimetypes' defaults (audio/x-wav) vary by OS.
MEDIA_TYPES = {
    ".wav": "audio/wav", ".mp3": "audio/mpeg", ".mp4": "video/mp4", ".m4a": "audio/mp4",
    ".flac": "audio/flac", ".ogg": "audio/ogg", ".webm": "video/webm", ".mov": "video/quicktime",
    ".json": "application/json", ".js": "text/javascript", ".css": "text/css",
}


def content_type(name: str) -> str:
    """Media type of a file name; `x.json.gz` is the JSON it encodes (served with Content-Encoding)."""
    path = PurePosixPath(name)
    if path.suffix.lower() == ".gz" and path.stem:
        path = PurePosixPath(path.stem)
    return MEDIA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _is_gzip_file(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


class MediaGrants:
    """`grant_read_access` for the portal: URI -> `/media/<token>/<file name>`, token -> URI."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self._uris: dict[str, str] = {}
        self._lock = threading.Lock()

    def grant(self, uri: str) -> str:
        if uri.startswith(("https://", "http://")):
            return uri  # already a URL; Ground Truth would leave it unusable, we pass it on
        token = hmac.new(self._secret, uri.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
        with self._lock:
            self._uris[token] = uri
        name = PurePosixPath(urlsplit(uri).path).name or "media"
        return f"/media/{token}/{quote(name)}"

    def lookup(self, token: str) -> str | None:
        with self._lock:
            return self._uris.get(token)


class _PortSession(SecureCookieSessionInterface):
    """Cookies ignore ports: two portals on one host (a preview and a job) would overwrite each
    other's session, and with it the CSRF tokens of open pages. One session cookie per port."""

    def get_cookie_name(self, app: Flask) -> str:
        port = request.host.rpartition(":")[2] if request.host.rpartition(":")[0] else "default"
        return "gtkit_session_" + re.sub(r"\W", "_", port)


def create_app(source: TaskSource, *, assets_dir: Path = STATIC_DIR,
               max_submission_bytes: int = DEFAULT_MAX_SUBMISSION_BYTES) -> Flask:
    """The portal for `source`. Task pages load static/ from `/assets/`, hashed from `assets_dir`;
    request bodies over `max_submission_bytes` are refused (413)."""
    app = Flask(__name__, template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"),
                static_url_path="/_portal")
    app.config.update(
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=max_submission_bytes,
        SECRET_KEY=secrets.token_bytes(32),  # per run: a restarted portal asks open pages to reload
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # valid for the session: a task may take hours
    )
    app.session_interface = _PortSession()
    assets_dir = Path(assets_dir).resolve()
    grants = MediaGrants()
    liquid_env = make_environment(grants.grant)
    app.extensions["gtkit_portal"] = {"source": source, "grants": grants}
    inner_wsgi = app.wsgi_app

    def wsgi_app(environ: dict, start_response: Any) -> Any:
        environ.setdefault("wsgi.file_wrapper", _file_wrapper)
        return inner_wsgi(environ, start_response)

    app.wsgi_app = wsgi_app  # type: ignore[method-assign]

    def worker() -> str | None:
        name = request.cookies.get(WORKER_COOKIE, "")
        return name if WORKER_NAME.match(name) else None

    def need_worker() -> Response | None:
        if worker() is None:
            return redirect(url_for("login", next=request.full_path.rstrip("?")))
        return None

    def refuse(status: int, message: str, problems: list[str] | None = None) -> Any:
        """JSON for the stand-in's fetch (it shows `error`), a page for forms."""
        if request.path.endswith("/submit") or request.is_json:
            return jsonify(error=message, problems=problems or [message]), status
        return render_template("message.html", job=source.job_name, worker=worker(), title="Request refused",
                               message=message), status

    @app.before_request
    def _same_origin_only() -> Any:
        # Registered before CSRFProtect, so it runs first. Ports are the same *site*, so SameSite
        # cookies do not stop a page on another local port; Origin/Referer (and the token) do.
        if request.method not in SAFE_METHODS and not same_origin(
                request.headers.get("Origin"), request.headers.get("Referer"), request.host):
            return refuse(403, "cross-origin request refused")
        return None

    CSRFProtect(app)

    @app.errorhandler(CSRFError)
    def _csrf_failed(exc: CSRFError) -> Any:
        return refuse(403, "this page's security token is missing or no longer valid (did the portal "
                           "restart?): reload the page; your answer is kept in this browser")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Any:
        return refuse(413, f"the submission is larger than the portal's limit of {max_submission_bytes:,} "
                           "bytes; your answer is kept in this browser")

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        # same-origin (not no-referrer): with no-referrer, browsers send `Origin: null` on our own
        # POSTs; other origins still get no Referer.
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp

    # -- worker identity -----------------------------------------------------------------------
    @app.get("/login")
    def login() -> str:
        return render_template("login.html", job=source.job_name, next=safe_next(request.args.get("next")),
                               error=None, worker=worker())

    @app.post("/login")
    def login_post() -> Any:
        name = (request.form.get("worker") or "").strip()
        nxt = safe_next(request.form.get("next"))
        if not WORKER_NAME.match(name):
            return render_template("login.html", job=source.job_name, next=nxt, worker=None,
                                   error="Use 1-64 letters, digits, spaces or . _ @ -, starting with a "
                                         "letter or digit."), 400
        resp = redirect(nxt)
        resp.set_cookie(WORKER_COOKIE, name, httponly=True, samesite="Strict")
        return resp

    @app.post("/logout")
    def logout() -> Any:
        resp = redirect(url_for("login"))
        resp.delete_cookie(WORKER_COOKIE)
        return resp

    # -- pages -----------------------------------------------------------------------------------
    @app.get("/")
    def index() -> Any:
        if (r := need_worker()) is not None:
            return r
        tasks = source.list_tasks()
        return render_template("tasks.html", job=source.job_name, schema=source.schema, tasks=tasks,
                               worker=worker(), failed=STATUS_FAILED)

    @app.get("/next")
    def next_task() -> Any:
        if (r := need_worker()) is not None:
            return r
        task_id = source.next_task_for(worker())
        if task_id is None:
            return render_template("done.html", job=source.job_name, worker=worker())
        return redirect(url_for("task_page", task_id=task_id))

    @app.get("/task/<task_id>")
    def task_page(task_id: str) -> Any:
        if (r := need_worker()) is not None:
            return r
        try:
            task_input = source.task_input(task_id)
            source.accept(task_id, worker())
        except KeyError:
            abort(404, description=f"no task {task_id!r} in this job")
        except SubmissionRejected as exc:
            return render_template("message.html", job=source.job_name, worker=worker(),
                                   title="Task unavailable", message=str(exc)), 409
        variant = task_input.get("media-type") if task_input.get("media-type") in ("audio", "video") else None
        # Re-rendered per request: the SRI hashes must match the files as they are now.
        template = render_task_template(source.schema, ASSETS_PREFIX, variant=variant, static_dir=assets_dir)
        body = liquid_env.from_string(template).render(task={"input": task_input})
        body = _swap_crowd_elements(body)
        # At Ground Truth every worker has their own browser, so the UI's autosave (keyed by
        # data-task-key) is theirs alone. Here several worker names can share one browser.
        body = body.replace('data-task-key="', f'data-task-key="{html_escape(worker())}@', 1)
        return render_template(
            "task.html", job=source.job_name, worker=worker(), task_id=task_id, body=body,
            interaction_id=task_input.get("interaction-id"),
            submit_url=url_for("submit", task_id=task_id),
            release_url=url_for("release", task_id=task_id),
            accepted_at=datetime.now(UTC).isoformat(),
        )

    @app.post("/task/<task_id>/submit")
    def submit(task_id: str) -> Any:
        worker_id = worker()
        if worker_id is None:
            return jsonify(error="enter a worker name first"), 401
        try:
            payload = load_json(request.get_data(cache=False), "the submission")
        except AnswerFormatError as exc:
            return refuse(400, str(exc))
        if not isinstance(payload, dict) or not isinstance(payload.get("answerContent"), dict):
            return refuse(400, "expected JSON {answerContent: {...}, acceptedAt}")
        problems = submission_problems(source, task_id, worker_id, payload["answerContent"])
        if problems:
            shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
            return refuse(400, f"answer refused: {shown}", problems)
        submitted_at = datetime.now(UTC)
        accepted_at = _parse_time(payload.get("acceptedAt")) or submitted_at
        accepted_at = min(accepted_at, submitted_at)
        try:
            source.submit(task_id, worker_id, payload["answerContent"], accepted_at, submitted_at)
        except KeyError:
            return jsonify(error=f"no task {task_id!r}"), 404
        except SubmissionRejected as exc:
            return jsonify(error=str(exc)), 409
        return jsonify(ok=True, next=url_for("submitted", task_id=task_id))

    @app.post("/task/<task_id>/release")
    def release(task_id: str) -> Any:
        if (r := need_worker()) is not None:
            return r
        source.release(task_id, worker())
        return redirect(url_for("index"))

    @app.get("/task/<task_id>/submitted")
    def submitted(task_id: str) -> Any:
        if (r := need_worker()) is not None:
            return r
        next_id = source.next_task_for(worker())
        return render_template("submitted.html", job=source.job_name, worker=worker(), task_id=task_id,
                               next_id=next_id)

    # -- files -----------------------------------------------------------------------------------
    @app.get("/favicon.ico")
    def favicon() -> Any:
        return send_file(FAVICON, mimetype="image/svg+xml", max_age=86400)

    @app.get("/assets/<path:filename>")
    def assets(filename: str) -> Any:
        try:
            path = (assets_dir / filename).resolve()
            found = path.is_relative_to(assets_dir) and path.is_file()
        except (OSError, ValueError):  # NUL bytes, names too long for the file system
            found = False
        if not found:
            abort(404)
        resp = send_file(path, mimetype=content_type(path.name), conditional=True, max_age=0)
        # SRI across origins needs CORS; same-origin here, but mirror what the asset host sends.
        resp.headers["Access-Control-Allow-Origin"] = "*"
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    @app.get("/media/<token>/<path:name>")
    def media(token: str, name: str) -> Any:
        uri = grants.lookup(token)
        if uri is None:
            abort(404, description="unknown or expired media link; reload the task")
        try:
            target = source.storage.resolve_read(uri)
        except MirrorEscape:
            abort(404, description="media file not found")
        if is_s3(target):
            return _proxy_s3(source, target)
        path = Path(target).resolve()  # mirrors may be relative to the working directory
        if not path.is_file():
            log.warning("granted media is missing locally (token %s)", token[:8])
            abort(404, description="media file not found (is a --mirror missing?)")
        resp = send_file(path, mimetype=content_type(path.name), conditional=True, max_age=0)
        if _is_gzip_file(path):
            # A gzip peaks/sidecar file (`gtkit manifest build --peaks`): on S3 it carries
            # Content-Encoding gzip, so say the same here and the browser decompresses it. Ranges
            # (none are asked for JSON) apply to the stored bytes, as on S3.
            resp.headers["Content-Encoding"] = "gzip"
        resp.headers["Access-Control-Allow-Origin"] = "*"
        return resp

    return app


def _file_wrapper(file: Any, _buffer_size: int = FILE_BLOCK) -> FileWrapper:
    return FileWrapper(file, FILE_BLOCK)  # werkzeug asks for 8 KiB; see FILE_BLOCK


def _swap_crowd_elements(html: str) -> str:
    """Ground Truth's crowd-html-elements script is not reachable offline: use the stand-in."""
    return html.replace(f'<script src="{CROWD_ELEMENTS_URL}"></script>',
                        f'<script src="{STANDIN_PATH}"></script>')


def submission_problems(source: TaskSource, task_id: str, worker_id: str, content: dict[str, Any]) -> list[str]:
    """Why the post-annotation Lambda would mark this answer invalid (same code), or []."""
    try:
        task_input = source.task_input(task_id)
    except (KeyError, SubmissionRejected):
        return []  # the source refuses it with its own reason
    duration = task_input.get("duration-seconds")
    checked = worker_answer(worker_id, content, schema=source.schema,
                            media_duration=float(duration) if isinstance(duration, int | float) else None,
                            interaction_id=task_input.get("interaction-id"))
    return [] if checked.valid else checked.problems


def safe_next(value: str | None) -> str:
    """Where to go after signing in: `value` when it is a path on this portal, else "/".

    Browsers drop tab/CR/LF anywhere in a URL, trim control characters and spaces, and read `\\`
    as `/`, so `/\t/evil.example/` becomes `//evil.example/`: any of those, a scheme, a host, dot
    segments, or the same tricks percent-encoded, and the answer is "/"."""
    if not value or not _local_path(value) or not _local_path(unquote(value)):
        return "/"
    return value


def _local_path(value: str) -> bool:
    if not value.startswith("/") or value.startswith("//"):
        return False
    if any(c == "\\" or c.isspace() or not c.isprintable() for c in value):
        return False
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return False
    return not any(segment in (".", "..") for segment in parts.path.split("/"))


def same_origin(origin: str | None, referer: str | None, host: str) -> bool:
    """A state-changing request comes from this portal's own pages. Browsers send Origin on every
    cross-origin POST (`null` from sandboxed or opaque contexts: refused); without it, the Referer
    decides; a client that sends neither is not a browser, so no ambient cookies to abuse."""
    if origin is not None:
        return urlsplit(origin).netloc == host
    if referer:
        return urlsplit(referer).netloc == host
    return True


def csrf_token_in(html: str) -> str | None:
    """The CSRF token a portal page carries (its `csrf-token` meta tag), for scripted clients."""
    match = CSRF_META.search(html)
    return match.group(1) if match else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _proxy_s3(source: TaskSource, uri: str) -> Response:
    """Stream an un-mirrored S3 object, passing the Range header through."""
    bucket, key = split_s3(uri)
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if rng := request.headers.get("Range"):
        kwargs["Range"] = rng
    try:
        obj = source.storage.client.get_object(**kwargs)
    except Exception as exc:  # any S3 failure is a 404/502 for the browser
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        abort(404 if code in ("NoSuchKey", "404") else 502)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(obj["ContentLength"]),
               "Access-Control-Allow-Origin": "*"}
    if "ContentRange" in obj:
        headers["Content-Range"] = obj["ContentRange"]
    if obj.get("ContentEncoding"):
        # As a presigned URL would: the stored encoding only (boto3 hands back the stored bytes), so
        # a gzip object uploaded without the header fails here just as it would at Ground Truth.
        headers["Content-Encoding"] = obj["ContentEncoding"]
    body = obj["Body"]
    return Response(iter(lambda: body.read(256 * 1024), b""), status=206 if rng else 200,
                    headers=headers, mimetype=content_type(key))


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per asset is noise here
        pass


class PortalServer:
    """The portal in a background thread (tests, the benchmark, the local job).

    `port=0` picks a free port; `quiet` drops the per-request access log. `host` is 127.0.0.1
    unless the caller protects the app with an access token (toolkit.portal.access).
    """

    def __init__(self, app: Flask, port: int = 0, *, quiet: bool = True, host: str = "127.0.0.1") -> None:
        handler = _QuietHandler if quiet else WSGIRequestHandler
        self._server = make_server(host, port, app, threaded=True, request_handler=handler)
        self.host = host
        self.port = self._server.server_port
        local = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
        self.url = f"http://{local}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="gtkit-portal", daemon=True)

    def start(self) -> PortalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def __enter__(self) -> PortalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_portal(app: Flask, port: int = 8080) -> None:
    """Serve until interrupted. Loopback only: the portal has no authentication."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
