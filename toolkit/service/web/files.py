"""Assets, media and health.

Media links are `/media/<object>/<signature>/<uri>/<name>`, made by the task page's
`grant_read_access` and signed with the shared key, so any instance can check one and nothing is
kept in memory. A request is served only when the signature matches and the user is an admin or a
member of the object's job's team. Then: an `s3://` URI under a `--mirror` is that local file;
other `s3://` URIs redirect to a presigned GET URL (what Ground Truth's `grant_read_access` gives
the browser); a local path must lie under one of the configured media roots (or, for a review task's
`review-ref`, under its review job's `gtkit-review/sidecars/`). Local files are sent
with HTTP Range support.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Blueprint, abort, jsonify, redirect, send_file
from flask_login import current_user
from sqlalchemy import select

from toolkit.service.portal.views import FAVICON, asset_response, local_media_response
from toolkit.service.queue import queue_state
from toolkit.service.tables import DataObject, Job, Membership
from toolkit.service.web.context import decode_media_uri, readiness, serve_state
from toolkit.storage import MirrorEscape, is_s3, split_s3

log = logging.getLogger("gtkit.serve")
bp = Blueprint("files", __name__)
health = Blueprint("health", __name__)


@bp.get("/favicon.ico")
def favicon() -> Any:
    return send_file(FAVICON, mimetype="image/svg+xml", max_age=86400)


@bp.get("/assets/<path:filename>")
def assets(filename: str) -> Any:
    return asset_response(Path(serve_state().config.assets_dir).resolve(), filename)


def may_see(object_id: int) -> bool:
    with serve_state().db.read() as session:
        team_id = session.scalar(select(Job.team_id).join(DataObject, DataObject.job_id == Job.id)
                                 .where(DataObject.id == object_id))
        if team_id is None:
            return False
        if current_user.is_admin:
            return True
        return session.get(Membership, (current_user.id, team_id)) is not None


def local_path(uri: str) -> Path | None:
    """A local media URI (a path or file://) resolved inside a configured media root, else None."""
    if uri.startswith("file://"):
        uri = unquote(urlsplit(uri).path)
    if "://" in uri:
        return None
    roots = [Path(r).resolve() for r in serve_state().config.media_roots]
    try:
        path = Path(uri).resolve()
    except (OSError, ValueError):
        return None
    return path if any(path.is_relative_to(root) for root in roots) else None


def review_sidecar(object_id: int, uri: str) -> Path | None:
    """A review task's `review-ref` when the review job's output is local: its sidecar under
    `<output>/<job>/gtkit-review/sidecars/` (toolkit.service.review), else None."""
    from toolkit.service.review import sidecar_prefix

    if uri.startswith("file://"):
        uri = unquote(urlsplit(uri).path)
    if "://" in uri:
        return None
    with serve_state().db.read() as session:
        job = session.scalar(select(Job).join(DataObject, DataObject.job_id == Job.id)
                             .where(DataObject.id == object_id))
        if job is None or job.kind != "review" or "://" in job.output_uri:
            return None
        root = Path(sidecar_prefix(job.output_uri, job.name)).resolve()
    try:
        path = Path(uri).resolve()
    except (OSError, ValueError):
        return None
    return path if path.is_relative_to(root) else None


@bp.get("/media/<int:object_id>/<signature>/<encoded>/<path:_name>")
def media(object_id: int, signature: str, encoded: str, _name: str) -> Any:
    state = serve_state()
    uri = decode_media_uri(encoded)
    if uri is None or not hmac.compare_digest(signature, state.media_signature(object_id, uri)):
        abort(404, description="unknown media link; reload the task")
    if not may_see(object_id):
        abort(404, description="unknown media link; reload the task")
    storage = state.config.storage
    if is_s3(uri):
        try:
            target = storage.resolve_read(uri)
        except MirrorEscape:
            abort(404, description="media file not found")
        if is_s3(target):
            bucket, key = split_s3(target)
            url = storage.client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                                        ExpiresIn=state.config.presign_ttl_s)
            return redirect(url, code=302)
        path: Path | None = Path(target).resolve()
    else:
        path = local_path(uri) or review_sidecar(object_id, uri)
        if path is None:
            log.warning("media outside the media roots refused (object %s)", object_id)
            abort(404, description="media file not found")
    if path is None or not path.is_file():
        abort(404, description="media file not found")
    return local_media_response(path)


@health.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")


@health.get("/readyz")
def readyz() -> Any:
    """503 only for what makes this instance unable to serve (the load balancer's question). The
    queue's counts come along for monitoring: a queue that nobody works, or rows that keep failing,
    do not stop annotators from labeling, but leave consolidations and output files behind."""
    state = serve_state()
    ready, detail = readiness(state.db)
    if not ready:
        return jsonify(status="not ready", detail=detail), 503
    return jsonify(status="ready", detail=detail,
                   queue=queue_state(state.db, lease_s=state.config.queue_lease_s).counts())
