"""The local worker portal: serves the real worker task template the way Ground Truth would.

Per task page: `render_template()` output (the same file uploaded for Ground Truth) -> python-liquid
with Ground Truth's filters (toolkit/task/liquid.py) -> crowd-html-elements swapped for a local stand-in
-> wrapped in a small page shell. `grant_read_access` hands out portal media URLs keyed by an
unguessable token, like a presigned URL: only URIs a task page granted can be fetched, so the
portal never serves arbitrary files. Binds 127.0.0.1 only (see `run_portal`).

Every answer carries the service's Content-Security-Policy (toolkit/service/portal/csp.py): no
inline script but the task template's own (by hash), no eval, wavesurfer's <style> elements by a
per-page nonce, media from us and from the http(s) origins the page's media links lead to.

At the door: every state-changing request must come from a portal page (same Origin/Referer) and
carry its CSRF token (Flask-WTF; forms post `csrf_token`, the stand-in's fetch sends `X-CSRFToken`
from the page's `csrf-token` meta tag); a submission is parsed and validated by the same code as
the post-annotation Lambda (`toolkit.labeling.answers`) against the job's label schema before it is stored,
and its size is capped (`max_submission_bytes`). Refusals answer JSON `{error, problems}`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import socket
import threading
import traceback
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Flask, Response, g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.serving import WSGIRequestHandler, get_sockaddr, make_server, select_address_family
from werkzeug.wsgi import FileWrapper

from toolkit.service.errors import PortalAddressError
from toolkit.service.portal import csp
from toolkit.service.portal.tasks import TaskSource
from toolkit.service.portal.views import (  # the names callers import from here
    BLUEPRINTS,
    STANDIN_PATH,
    WORKER_COOKIE,
    content_type,
    refuse,
    safe_next,
)
from toolkit.task.liquid import make_environment
from toolkit.task.template import STATIC_DIR

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
# Werkzeug streams files in 8 KiB blocks by default: ~55 MB/s, so a 3-hour peaks file (16 MB) took
# ~0.3 s to arrive. 256 KiB blocks make that a few tens of milliseconds.
FILE_BLOCK = 256 * 1024
# A 3-hour call with a few thousand segments and their text is well under 1 MB of answer JSON.
DEFAULT_MAX_SUBMISSION_BYTES = 4_000_000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class MediaGrants:
    """`grant_read_access` for the portal: URI -> `/media/<token>/<file name>`, token -> URI."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self._uris: dict[str, str] = {}
        self._lock = threading.Lock()

    def grant(self, uri: str) -> str:
        if uri.startswith(("https://", "http://")):
            # Already a URL; Ground Truth would leave it unusable, we pass it on, and the page's
            # Content-Security-Policy lets the browser fetch from its origin.
            found = csp.origin(uri)
            if found is not None and has_request_context():
                g.setdefault("gtkit_media_origins", set()).add(found)
            return uri
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


class PrivateFlask(Flask):
    """Flask that logs an unhandled error by its endpoint, type and stack, never its path or text.

    Flask's own line is "Exception on <path> [POST]" with the traceback: a path carries an
    invitation's token or a media file's name, and an error's text may quote an answer or a
    transcript. The stack (file, line, function of each frame) is what finds the bug."""

    def log_exception(self, exc_info: Any) -> None:
        kind, _exc, trace = exc_info
        frames = [f"{PurePosixPath(f.filename).name}:{f.lineno} {f.name}" for f in traceback.extract_tb(trace)]
        log.error("unhandled error", extra={"fields": {
            "method": request.method if has_request_context() else None,
            "endpoint": request.endpoint if has_request_context() else None,
            "error": kind.__name__ if kind else None, "stack": frames[-12:]}})


def create_app(source: TaskSource, *, assets_dir: Path = STATIC_DIR,
               max_submission_bytes: int | None = None) -> Flask:
    """The portal for `source`. Task pages load static/ from `/assets/`, hashed from `assets_dir`;
    request bodies over `max_submission_bytes` (default DEFAULT_MAX_SUBMISSION_BYTES) are refused (413)."""
    if max_submission_bytes is None:
        max_submission_bytes = DEFAULT_MAX_SUBMISSION_BYTES
    app = PrivateFlask(__name__, template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"),
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
    app.extensions["gtkit_portal"] = {"source": source, "grants": grants, "liquid": liquid_env,
                                      "assets_dir": assets_dir}
    inner_wsgi = app.wsgi_app

    def wsgi_app(environ: dict, start_response: Any) -> Any:
        environ.setdefault("wsgi.file_wrapper", _file_wrapper)
        return inner_wsgi(environ, start_response)

    app.wsgi_app = wsgi_app  # type: ignore[method-assign]

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
        # The service's policy (toolkit/service/portal/csp.py): the task page's inline scripts by
        # hash, wavesurfer's styles by the page's nonce, media from the origins its links lead to.
        resp.headers.setdefault(csp.HEADER, csp.policy(g.get("gtkit_csp_scripts", ()), g.get("gtkit_media_origins", ()),
                                                       g.get("gtkit_csp_nonce")))
        return resp

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app


def _file_wrapper(file: Any, _buffer_size: int = FILE_BLOCK) -> FileWrapper:
    return FileWrapper(file, FILE_BLOCK)  # werkzeug asks for 8 KiB; see FILE_BLOCK


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


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per asset is noise here
        pass


def _listen(host: str, port: int, app: Flask, **kwargs: Any) -> Any:
    """werkzeug's threaded server on host:port, or PortalAddressError saying why it cannot listen there.
    The socket is bound here, not by werkzeug, which on a failed bind prints and calls sys.exit."""
    family = select_address_family(host, port)
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise PortalAddressError(f"cannot start the portal on {host} port {port}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug's server does
        sock.bind(get_sockaddr(host, int(port), family))
        sock.listen(socket.SOMAXCONN)
        return make_server(host, port, app, threaded=True, fd=sock.fileno(), **kwargs)  # it keeps a dup
    except OSError as exc:
        raise PortalAddressError(f"cannot start the portal on {host} port {port}: {exc.strerror or exc}") from exc
    finally:
        sock.close()


class PortalServer:
    """The portal in a background thread (tests, the benchmark, the local job).

    `port=0` picks a free port; `quiet` drops the per-request access log. `host` is 127.0.0.1
    unless the caller protects the app with an access token (toolkit.service.portal.access).
    """

    def __init__(self, app: Flask, port: int = 0, *, quiet: bool = True, host: str = "127.0.0.1") -> None:
        handler = _QuietHandler if quiet else WSGIRequestHandler
        self._server = _listen(host, port, app, request_handler=handler)
        self.host = host
        self.port = self._server.port
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
    server = _listen("127.0.0.1", port, app)
    try:
        server.serve_forever()
    finally:
        server.server_close()


__all__ = ["STANDIN_PATH", "WORKER_COOKIE", "PortalServer", "content_type", "create_app", "csrf_token_in",
           "run_portal", "safe_next", "same_origin"]
