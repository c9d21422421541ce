"""Admin pages: jobs with progress, creating and steering jobs, people and teams.

Every action goes through the library with `actor_id` = the signed-in admin, so the library checks
the role again and writes the audit row in the action's own transaction.
"""

from __future__ import annotations

from typing import Any

import yaml
from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup
from pydantic import ValidationError

from toolkit.contract import LabelSchema, load_label_schema, worker_report
from toolkit.contract.schema import builtin_schema_names
from toolkit.export.workers import COLUMNS, WorkerReportError, charts, collect_workers, table_rows
from toolkit.labeling.output_layout import JobLayout
from toolkit.service import jobs, output, people, queue, sso
from toolkit.service.audit import record
from toolkit.service.errors import Invalid
from toolkit.service.web.context import serve_state
from toolkit.storage import tempfiles

bp = Blueprint("admin", __name__, url_prefix="/admin")
ACTIONS = {"pause": jobs.pause_job, "resume": jobs.resume_job, "cancel": jobs.cancel_job}


@bp.before_request
def _admins_only() -> Any:
    if not current_user.is_authenticated or not current_user.is_admin:
        abort(403, description="admins only")
    return None


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = (request.form.get(name) or "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise Invalid(f"{name}: not a whole number") from None
    if not low <= value <= high:
        raise Invalid(f"{name}: must be between {low} and {high}")
    return value


def _rate(name: str) -> float:
    raw = (request.form.get(name) or "").strip()
    try:
        value = float(raw) if raw else 0.0
    except ValueError:
        raise Invalid(f"{name}: not a number") from None
    if not 0 <= value <= 1:  # NaN fails this too
        raise Invalid(f"{name}: must be between 0 and 1")
    return value


@bp.get("/")
def index() -> Any:
    db = serve_state().db
    teams = {t.id: t.name for t in people.list_teams(db)}
    rows = [(job, jobs.job_progress(db, job.id)) for job in jobs.list_jobs(db)]
    return render_template("admin_jobs.html", rows=rows, teams=teams)


@bp.get("/jobs/new")
def new_job() -> Any:
    return _job_form(None)


def _job_form(error: str | None, status: int = 200) -> Any:
    db = serve_state().db
    return render_template("admin_job_new.html", teams=people.list_teams(db), schemas=builtin_schema_names(),
                           error=error, form=request.form), status


def _schema_from_form() -> LabelSchema:
    upload = request.files.get("schema_file")
    if upload is not None and upload.filename:
        try:
            return LabelSchema.model_validate(yaml.safe_load(upload.read().decode("utf-8")))
        except (ValidationError, yaml.YAMLError, UnicodeDecodeError, TypeError) as exc:
            raise Invalid(f"schema file: not a valid label schema ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]})") from None
    name = request.form.get("schema") or ""
    if name not in builtin_schema_names():
        raise Invalid("schema: choose a built-in schema or upload a YAML file")
    return load_label_schema(name)


@bp.post("/jobs/new")
def create_job() -> Any:
    state = serve_state()
    try:
        schema = _schema_from_form()
        team_id = _int("team", 0, 1, 2**31)
        options = {"workers_per_object": _int("workers", 1, 1, 9),
                   "task_time_limit_s": _int("time_limit", jobs.DEFAULT_TASK_TIME_LIMIT, 30, 28_800),
                   "availability_s": _int("availability", jobs.DEFAULT_AVAILABILITY_S, *jobs.AVAILABILITY_RANGE),
                   "priority": _int("priority", 0, -1000, 1000), "gold_rate": _rate("gold_rate")}
        upload = request.files.get("manifest_file")
        manifest_uri = (request.form.get("manifest") or "").strip()
        # An upload goes to the run's scratch directory, which a killed worker's successor sweeps.
        temp = tempfiles.new_scratch(suffix=".jsonl") if upload is not None and upload.filename else None
        try:
            if temp is not None:
                upload.save(str(temp))
                manifest_uri = str(temp)
            if not manifest_uri:
                raise Invalid("manifest: upload a file or give a path or s3:// URI on the server")
            job = jobs.create_job(state.db, name=(request.form.get("name") or "").strip(), manifest=manifest_uri,
                                  schema=schema, team_id=team_id, output_uri=state.config.output_uri,
                                  storage=state.config.storage, actor_id=current_user.id, **options)
        finally:
            if temp is not None:
                tempfiles.release_scratch(temp)
    except (Invalid, FileNotFoundError) as exc:
        return _job_form(str(exc), 400)
    return redirect(url_for("admin.job", job_id=job.id))


@bp.get("/jobs/<int:job_id>")
def job(job_id: int) -> Any:
    state = serve_state()
    db = state.db
    info = jobs.get_job(db, job_id)
    teams = {t.id: t.name for t in people.list_teams(db)}
    return render_template("admin_job.html", job=info, progress=jobs.job_progress(db, job_id),
                           queue=queue.job_state(db, job_id, lease_s=state.config.queue_lease_s),
                           team=teams.get(info.team_id), written=request.args.get("written"))


@bp.get("/jobs/<int:job_id>/workers")
def job_workers(job_id: int) -> Any:
    """Per-worker metrics of a job, read from its written output like `gtkit report --workers`: pseudonyms
    unless the admin asks for the ids (`?ids=real`)."""
    state = serve_state()
    info = jobs.get_job(state.db, job_id)
    real = request.args.get("ids") == "real"
    layout = JobLayout(info.output_uri, info.name)
    if not state.config.storage.exists(layout.output_manifest):
        return render_template("admin_workers.html", job=info, real=real,
                               error="No output written yet (it is written as answers come in, or with Write output).")
    try:
        report = collect_workers(state.config.storage, layout.root, id_key=state.worker_key, real_ids=real)
    except (WorkerReportError, OSError) as exc:
        return render_template("admin_workers.html", job=info, error=str(exc), real=real)
    data = report.as_dict()
    rows = table_rows(data)
    return render_template("admin_workers.html", job=info, data=data, rows=rows, columns=COLUMNS, real=real,
                           charts=[Markup(c) for c in charts(rows)])  # bar_chart escapes every text it draws


@bp.get("/jobs/<int:job_id>/workers.json")
def job_workers_json(job_id: int) -> Any:
    """The same figures as `gtkit report --workers --json` writes them (what `gtkit export --worker-report`
    reads): pseudonyms under the service's key, or with `?ids=real` the worker ids."""
    state = serve_state()
    info = jobs.get_job(state.db, job_id)
    layout = JobLayout(info.output_uri, info.name)
    if not state.config.storage.exists(layout.output_manifest):
        abort(404, description="no output written yet")
    try:
        report = collect_workers(state.config.storage, layout.root, id_key=state.worker_key,
                                 real_ids=request.args.get("ids") == "real")
    except (WorkerReportError, OSError) as exc:
        abort(409, description=str(exc))
    return Response(worker_report.encode(report.as_dict()), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{info.name}-workers.json"'})


@bp.post("/jobs/<int:job_id>/<action>")
def job_action(job_id: int, action: str) -> Any:
    state = serve_state()
    if action == "write-output":
        stats = output.write_output(state.db, job_id, storage=state.config.storage, full=True)
        with state.db.write() as session:
            record(session, state.db.now(), current_user.id, "job.write_output", f"job:{job_id}",
                   objects=stats.objects, labeled=stats.labeled)
        return redirect(url_for("admin.job", job_id=job_id, written=stats.manifest_uri))
    if action == "add-objects":
        manifest = (request.form.get("manifest") or "").strip()
        if not manifest:
            raise Invalid("manifest: give a path or s3:// URI on the server")
        jobs.add_objects(state.db, job_id, manifest, storage=state.config.storage, actor_id=current_user.id)
        return redirect(url_for("admin.job", job_id=job_id))
    if action == "create-review":
        made = _create_review(job_id)
        return redirect(url_for("admin.job", job_id=made.id))
    if action not in ACTIONS:
        abort(404)
    ACTIONS[action](state.db, job_id, actor_id=current_user.id)
    return redirect(url_for("admin.job", job_id=job_id))


def _number(name: str, kind: type[float] | type[int]) -> float | int:
    try:
        return kind(request.form.get(name) or "")
    except ValueError:
        raise Invalid(f"{name}: not a number") from None


def _create_review(job_id: int) -> jobs.JobInfo:
    """The job page's review form: `gtkit serve job create-review` (all, below an agreement, a sample)."""
    from toolkit.service import review

    select = request.form.get("select") or "all"
    if select not in ("all", "below", "sample"):
        raise Invalid("select: all, below or sample")
    workers = int(_number("workers", int)) if request.form.get("workers") else 1
    if not 1 <= workers <= 9:
        raise Invalid("workers: 1 to 9 reviews per object")
    state = serve_state()
    return review.create_review_job(
        state.db, job_id, below_agreement=float(_number("below_agreement", float)) if select == "below" else None,
        sample_pct=float(_number("sample", float)) if select == "sample" else None,
        seed=int(_number("seed", int)) if select == "sample" and request.form.get("seed") else 0,
        workers_per_object=workers, storage=state.config.storage, actor_id=current_user.id)


# -- people ---------------------------------------------------------------------------------------
def _users_page(link: str | None = None, error: str | None = None, status: int = 200,
                link_kind: str = "invitation") -> Any:
    db = serve_state().db
    users = people.list_users(db)
    teams = people.list_teams(db)
    memberships = {u.id: people.user_team_ids(db, u.id) for u in users}
    return render_template("admin_users.html", users=users, teams=teams, memberships=memberships,
                           team_names={t.id: t.name for t in teams}, link=link, link_kind=link_kind,
                           linked=sso.linked_issuers(db), error=error), status


@bp.get("/users")
def users() -> Any:
    return _users_page()


@bp.post("/users/invite")
def invite() -> Any:
    raw_team = request.form.get("team") or ""
    try:
        invitation = people.invite(serve_state().db, email=request.form.get("email") or "",
                                   role=request.form.get("role") or "annotator",
                                   team_id=int(raw_team) if raw_team.isdigit() else None, actor_id=current_user.id)
    except Invalid as exc:
        return _users_page(error=str(exc), status=400)
    return _users_page(link=url_for("auth.invite", token=invitation.token, _external=True))


@bp.post("/users/<int:user_id>/<action>")
def user_action(user_id: int, action: str) -> Any:
    db = serve_state().db
    if action == "disable":
        if user_id == current_user.id:
            raise Invalid("you cannot disable your own account")
        people.disable_user(db, user_id, actor_id=current_user.id)
    elif action == "enable":
        people.enable_user(db, user_id, actor_id=current_user.id)
    elif action == "role":
        people.set_role(db, user_id, request.form.get("role") or "", actor_id=current_user.id)
    elif action == "reset-password":
        link = people.reset_link(db, user_id, actor_id=current_user.id)
        return _users_page(link=url_for("auth.invite", token=link.token, _external=True), link_kind="reset")
    elif action == "unlink-sso":
        sso.unlink(db, user_id, actor_id=current_user.id)
    else:
        abort(404)
    return redirect(url_for("admin.users"))


@bp.get("/teams")
def teams() -> Any:
    db = serve_state().db
    return render_template("admin_teams.html", teams=people.list_teams(db), users=people.list_users(db))


@bp.post("/teams")
def create_team() -> Any:
    people.create_team(serve_state().db, request.form.get("name") or "", actor_id=current_user.id)
    return redirect(url_for("admin.teams"))


@bp.post("/teams/<int:team_id>/members")
def add_member(team_id: int) -> Any:
    raw = request.form.get("user") or ""
    if not raw.isdigit():
        raise Invalid("user: choose an account")
    people.add_member(serve_state().db, team_id, int(raw), actor_id=current_user.id)
    return redirect(url_for("admin.teams"))
