"""The portal's pages, as four blueprints over the app's `TaskSource` (toolkit.service.portal.app
`create_app` registers them): `identity` (the worker name), `pages` (the task list, the next task),
`task` (a task page, its submission and release) and `files` (assets, granted media, the favicon).

Per-app state lives in `current_app.extensions["gtkit_portal"]`: the source, the media grants, the
Liquid environment and the assets folder.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from markupsafe import escape as html_escape

from toolkit.contract.review import REVIEW_KEY, REVIEW_REF_KEY
from toolkit.contract.worker_response import parse_gt_time as parse_time  # the portal and gtkit serve read acceptedAt
from toolkit.labeling.answers import AnswerFormatError, load_json, worker_answer
from toolkit.service.portal import csp
from toolkit.service.portal.tasks import STATUS_FAILED, SubmissionRejected, TaskSource
from toolkit.storage import MirrorEscape, is_s3, split_s3
from toolkit.task.template import CROWD_ELEMENTS_URL
from toolkit.task.template import render_template as render_task_template

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
ASSETS_PREFIX = "/assets/"
WORKER_COOKIE = "gtkit_worker"
WORKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")
STANDIN_PATH = "/_portal/crowd-standin.js"
FAVICON = HERE / "static" / "favicon.svg"
GZIP_MAGIC = b"\x1f\x8b"  # as toolkit.contract.peaks.GZIP_MAGIC (not imported: that module pulls numpy)
# Browsers and wavesurfer are picky about media types; mimetypes' defaults (audio/x-wav) vary by OS.
MEDIA_TYPES = {
    ".wav": "audio/wav", ".mp3": "audio/mpeg", ".mp4": "video/mp4", ".m4a": "audio/mp4",
    ".flac": "audio/flac", ".ogg": "audio/ogg", ".webm": "video/webm", ".mov": "video/quicktime",
    ".json": "application/json", ".js": "text/javascript", ".css": "text/css",
}

identity = Blueprint("identity", __name__)
pages = Blueprint("pages", __name__)
task = Blueprint("task", __name__)
files = Blueprint("files", __name__)
BLUEPRINTS = (identity, pages, task, files)


def _state() -> dict[str, Any]:
    return current_app.extensions["gtkit_portal"]


def _source() -> TaskSource:
    return _state()["source"]


def worker() -> str | None:
    """The worker name of this request (its cookie), when it is a valid one."""
    name = request.cookies.get(WORKER_COOKIE, "")
    return name if WORKER_NAME.match(name) else None


def need_worker() -> Response | None:
    if worker() is None:
        return redirect(url_for("identity.login", next=request.full_path.rstrip("?")))
    return None


def refuse(status: int, message: str, problems: list[str] | None = None) -> Any:
    """JSON for the stand-in's fetch (it shows `error`), a page for forms."""
    if request.path.endswith("/submit") or request.is_json:
        return jsonify(error=message, problems=problems or [message]), status
    return render_template("message.html", job=_source().job_name, worker=worker(), title="Request refused",
                           message=message), status


# -- worker identity -----------------------------------------------------------------------
@identity.get("/login")
def login() -> str:
    return render_template("login.html", job=_source().job_name, next=safe_next(request.args.get("next")),
                           error=None, worker=worker())

@identity.post("/login")
def login_post() -> Any:
    name = (request.form.get("worker") or "").strip()
    nxt = safe_next(request.form.get("next"))
    if not WORKER_NAME.match(name):
        return render_template("login.html", job=_source().job_name, next=nxt, worker=None,
                               error="Use 1-64 letters, digits, spaces or . _ @ -, starting with a "
                                     "letter or digit."), 400
    resp = redirect(nxt)
    resp.set_cookie(WORKER_COOKIE, name, httponly=True, samesite="Strict")
    return resp

@identity.post("/logout")
def logout() -> Any:
    resp = redirect(url_for("identity.login"))
    resp.delete_cookie(WORKER_COOKIE)
    return resp

# -- pages -----------------------------------------------------------------------------------
@pages.get("/")
def index() -> Any:
    if (r := need_worker()) is not None:
        return r
    tasks = _source().list_tasks()
    return render_template("tasks.html", job=_source().job_name, schema=_source().schema, tasks=tasks,
                           worker=worker(), failed=STATUS_FAILED)

@pages.get("/next")
def next_task() -> Any:
    if (r := need_worker()) is not None:
        return r
    task_id = _source().next_task_for(worker())
    if task_id is None:
        return render_template("done.html", job=_source().job_name, worker=worker())
    return redirect(url_for("task.task_page", task_id=task_id))

# -- the task: page, submit, release ------------------------------------------------------------
@task.get("/task/<task_id>")
def task_page(task_id: str) -> Any:
    if (r := need_worker()) is not None:
        return r
    try:
        task_input = _source().task_input(task_id)
        _source().accept(task_id, worker())
    except KeyError:
        abort(404, description=f"no task {task_id!r} in this job")
    except SubmissionRejected as exc:
        return render_template("message.html", job=_source().job_name, worker=worker(),
                               title="Task unavailable", message=str(exc)), 409
    variant = task_input.get("media-type") if task_input.get("media-type") in ("audio", "video") else None
    # Re-rendered per request: the SRI hashes must match the files as they are now.
    review = REVIEW_KEY in task_input or REVIEW_REF_KEY in task_input  # a review task: its page variant
    template = render_task_template(_source().schema, ASSETS_PREFIX, variant=variant,
                                    static_dir=_state()["assets_dir"], review=review)
    g.gtkit_csp_scripts = csp.inline_script_hashes(template)  # before Liquid: no task text can match
    g.gtkit_csp_nonce = csp.new_nonce()  # layout.html's gtkit-csp-nonce meta tag: wavesurfer's styles
    body = _state()["liquid"].from_string(template).render(task={"input": task_input})
    body = swap_crowd_elements(body)
    # At Ground Truth every worker has their own browser, so the UI's autosave (keyed by
    # data-task-key) is theirs alone. Here several worker names can share one browser.
    body = body.replace('data-task-key="', f'data-task-key="{html_escape(worker())}@', 1)
    return render_template(
        "task.html", job=_source().job_name, worker=worker(), task_id=task_id, body=body,
        interaction_id=task_input.get("interaction-id"),
        submit_url=url_for("task.submit", task_id=task_id),
        release_url=url_for("task.release", task_id=task_id),
        accepted_at=datetime.now(UTC).isoformat(),
    )

@task.post("/task/<task_id>/submit")
def submit(task_id: str) -> Any:
    worker_id = worker()
    if worker_id is None:
        return jsonify(error="enter a worker name first"), 401
    payload = submission_payload()
    if isinstance(payload, str):
        return refuse(400, payload)
    problems = submission_problems(_source(), task_id, worker_id, payload["answerContent"])
    if problems:
        return refuse(400, f"answer refused: {summary(problems)}", problems)
    submitted_at = datetime.now(UTC)
    accepted_at = parse_time(payload.get("acceptedAt")) or submitted_at
    accepted_at = min(accepted_at, submitted_at)
    try:
        _source().submit(task_id, worker_id, payload["answerContent"], accepted_at, submitted_at)
    except KeyError:
        return jsonify(error=f"no task {task_id!r}"), 404
    except SubmissionRejected as exc:
        return jsonify(error=str(exc)), 409
    return jsonify(ok=True, next=url_for("task.submitted", task_id=task_id))

@task.post("/task/<task_id>/release")
def release(task_id: str) -> Any:
    if (r := need_worker()) is not None:
        return r
    _source().release(task_id, worker())
    return redirect(url_for("pages.index"))

@task.get("/task/<task_id>/submitted")
def submitted(task_id: str) -> Any:
    if (r := need_worker()) is not None:
        return r
    next_id = _source().next_task_for(worker())
    return render_template("submitted.html", job=_source().job_name, worker=worker(), task_id=task_id,
                           next_id=next_id)

# -- files -----------------------------------------------------------------------------------
@files.get("/favicon.ico")
def favicon() -> Any:
    return send_file(FAVICON, mimetype="image/svg+xml", max_age=86400)

@files.get("/assets/<path:filename>")
def assets(filename: str) -> Any:
    return asset_response(_state()["assets_dir"], filename)


def asset_response(assets_dir: Path, filename: str) -> Response:
    """A file of the worker UI's static/ folder (also the web service's `/assets/`)."""
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

@files.get("/media/<token>/<path:name>")
def media(token: str, name: str) -> Any:
    uri = _state()["grants"].lookup(token)
    if uri is None:
        abort(404, description="unknown or expired media link; reload the task")
    try:
        target = _source().storage.resolve_read(uri)
    except MirrorEscape:
        abort(404, description="media file not found")
    if is_s3(target):
        return _proxy_s3(_source(), target)
    path = Path(target).resolve()  # mirrors may be relative to the working directory
    if not path.is_file():
        log.warning("granted media is missing locally (token %s)", token[:8])
        abort(404, description="media file not found (is a --mirror missing?)")
    return local_media_response(path)


def local_media_response(path: Path) -> Response:
    """A local media file, with HTTP Range and conditional requests (also the web service's media)."""
    resp = send_file(path, mimetype=content_type(path.name), conditional=True, max_age=0)
    if _is_gzip_file(path):
        # A gzip peaks/sidecar file (`gtkit manifest build --peaks`): on S3 it carries
        # Content-Encoding gzip, so say the same here and the browser decompresses it. Ranges
        # (none are asked for JSON) apply to the stored bytes, as on S3.
        resp.headers["Content-Encoding"] = "gzip"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


def content_type(name: str) -> str:
    """Media type of a file name; `x.json.gz` is the JSON it encodes (served with Content-Encoding)."""
    path = PurePosixPath(name)
    if path.suffix.lower() == ".gz" and path.stem:
        path = PurePosixPath(path.stem)
    return MEDIA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _is_gzip_file(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def swap_crowd_elements(html: str) -> str:
    """Ground Truth's crowd-html-elements script is not reachable offline: use the stand-in."""
    return html.replace(f'<script src="{CROWD_ELEMENTS_URL}"></script>',
                        f'<script src="{STANDIN_PATH}"></script>')


def submission_payload() -> dict[str, Any] | str:
    """The request's `{answerContent: {...}, acceptedAt}` (the crowd-form stand-in's post), or why not."""
    try:
        payload = load_json(request.get_data(cache=False), "the submission")
    except AnswerFormatError as exc:
        return str(exc)
    if not isinstance(payload, dict) or not isinstance(payload.get("answerContent"), dict):
        return "expected JSON {answerContent: {...}, acceptedAt}"
    return payload


def summary(problems: list[str]) -> str:
    return "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")


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
