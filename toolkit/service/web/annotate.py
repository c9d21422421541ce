"""The annotator's pages: home, next task (work.claim), the task page (the portal's worker template
rendering), submit (work.submit, validated at the door), release.

A task page shows only the task its user holds; "next" is a POST (claiming changes state, so it
carries the CSRF token like every other change). One held task per user: claiming again returns it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, redirect, render_template, url_for
from flask_login import current_user
from markupsafe import escape as html_escape

from toolkit.service import work
from toolkit.service.errors import NotFound, NotInTeam, Refused, SubmissionInvalid
from toolkit.service.portal import csp
from toolkit.service.portal.views import parse_time, submission_payload, summary
from toolkit.service.web.context import refuse, serve_state

bp = Blueprint("annotate", __name__)


@bp.get("/")
def home() -> Any:
    held = work.current_task(serve_state().db, current_user.id)
    return render_template("home.html", held=held)


@bp.post("/next")
def next_task() -> Any:
    task = work.claim(serve_state().db, current_user.id)
    if task is None:
        return render_template("done.html")
    return redirect(url_for("annotate.task_page", object_id=task.object_id))


@bp.get("/task/<int:object_id>")
def task_page(object_id: int) -> Any:
    state = serve_state()
    task = work.current_task(state.db, current_user.id)
    if task is None or task.object_id != object_id:
        return render_template("message.html", title="Not your task",
                               message="You do not hold this task (it was submitted, released or its time ran "
                                       "out). Take the next one."), 409
    variant = task.task_input.get("media-type") if task.task_input.get("media-type") in ("audio", "video") else None
    g.gtkit_object_id = object_id  # for grant_read_access (Serve._grant)
    template, g.gtkit_csp_scripts = state.task_template(task.job_id, variant)
    g.gtkit_csp_nonce = csp.new_nonce()  # layout.html's gtkit-csp-nonce meta tag: wavesurfer's styles
    body = template.render(task={"input": task.task_input})
    # The UI's autosave is keyed by data-task-key; people may share a browser.
    body = body.replace('data-task-key="', f'data-task-key="{html_escape(current_user.info.worker_id)}@', 1)
    return render_template(
        "task.html", job=task.job_name, task_id=task.dataset_object_id, body=body,
        interaction_id=task.task_input.get("interaction-id"),
        submit_url=url_for("annotate.submit", object_id=object_id),
        release_url=url_for("annotate.release", object_id=object_id),
        accepted_at=task.accepted_at.isoformat())


@bp.post("/task/<int:object_id>/submit")
def submit(object_id: int) -> Any:
    payload = submission_payload()
    if isinstance(payload, str):
        return refuse(400, payload)
    try:
        result = work.submit(serve_state().db, current_user.id, object_id, payload["answerContent"],
                             accepted_at=parse_time(payload.get("acceptedAt")), require_hold=True)
    except SubmissionInvalid as exc:
        problems = [str(p) for p in exc.problems]
        return refuse(400, f"answer refused: {summary(problems)}", problems)
    except (NotFound, NotInTeam):  # another team's object is answered as one that does not exist
        return refuse(404, f"no task {object_id} for you")
    except Refused as exc:
        return refuse(403, str(exc))
    return jsonify(ok=True, duplicate=result.duplicate, answer_id=result.answer_id,
                   next=url_for("annotate.submitted", object_id=object_id))


@bp.post("/task/<int:object_id>/release")
def release(object_id: int) -> Any:
    work.release(serve_state().db, current_user.id, object_id)
    return redirect(url_for("annotate.home"))


@bp.get("/task/<int:object_id>/submitted")
def submitted(object_id: int) -> Any:
    return render_template("submitted.html", object_id=object_id)
