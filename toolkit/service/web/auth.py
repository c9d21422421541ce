"""Sign-in, sign-out and invitation links.

One answer for every failed sign-in (unknown email, wrong password, disabled account), and
throttled per client address and per typed email whether or not the account exists: nothing here
tells whether an account exists. An invitation link can be opened any number of times (showing the
form does not use it) and accepted once, before it expires.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from toolkit.service import people
from toolkit.service.errors import Invalid, Refused
from toolkit.service.portal.views import safe_next
from toolkit.service.web import throttle
from toolkit.service.web.context import WebUser, serve_state

bp = Blueprint("auth", __name__)
WRONG = "Email or password is wrong, or the account is disabled."
THROTTLED = "Too many sign-in attempts. Wait a few minutes and try again."
BAD_LINK = "This invitation link is not valid: it is unknown, was used already or has expired. Ask for a new one."


def sign_in(info: people.UserInfo) -> None:
    state = serve_state()
    session.clear()  # a new cookie (and CSRF token) for the new identity: no session fixation
    token = people.create_session(state.db, info.id, ttl_s=state.config.session_ttl_s)
    login_user(WebUser(info, token))


@bp.get("/login")
def login() -> Any:
    return render_template("login.html", next=safe_next(request.args.get("next")), error=None, email="")


@bp.post("/login")
def login_post() -> Any:
    db = serve_state().db
    email = (request.form.get("email") or "")[:320]
    password = (request.form.get("password") or "")[:1024]
    nxt = safe_next(request.form.get("next"))
    keys = throttle.keys(request.remote_addr, email)
    if throttle.blocked(db, keys):
        return render_template("login.html", next=nxt, error=THROTTLED, email=email), 429
    info = people.authenticate(db, email, password)
    if info is None:
        throttle.failed(db, keys)
        return render_template("login.html", next=nxt, error=WRONG, email=email), 401
    throttle.succeeded(db, keys)
    sign_in(info)
    return redirect(nxt)


@bp.post("/logout")
def logout() -> Any:
    if current_user.is_authenticated:
        people.end_session(serve_state().db, current_user.token)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/invite/<token>")
def invite(token: str) -> Any:
    kind = people.invitation_kind(serve_state().db, token)
    if kind is None:
        return render_template("message.html", title="Invitation not valid", message=BAD_LINK), 404
    return render_template("invite.html", token=token, error=None, reset=kind == "reset")


@bp.post("/invite/<token>")
def invite_post(token: str) -> Any:
    password = request.form.get("password") or ""
    reset = people.invitation_kind(serve_state().db, token) == "reset"
    if password != (request.form.get("confirm") or ""):
        return render_template("invite.html", token=token, error="The two passwords differ.", reset=reset), 400
    try:
        info = people.accept_invitation(serve_state().db, token, display_name=request.form.get("display_name") or "",
                                        password=password)
    except Refused:
        return render_template("message.html", title="Invitation not valid", message=BAD_LINK), 404
    except Invalid as exc:
        return render_template("invite.html", token=token, error=str(exc), reset=reset), 400
    sign_in(info)
    return redirect(url_for("annotate.home"))


@bp.get("/account/password")
def password() -> Any:
    return render_template("password.html", error=None, done=request.args.get("done") == "1")


@bp.post("/account/password")
def password_post() -> Any:
    """Change one's own password: the current one is required; every other session of the account
    ends, and this browser gets a new session."""
    db = serve_state().db
    new = request.form.get("password") or ""
    if new != (request.form.get("confirm") or ""):
        return render_template("password.html", error="The two new passwords differ.", done=False), 400
    keys = throttle.keys(request.remote_addr, current_user.info.email or f"user:{current_user.id}")
    if throttle.blocked(db, keys):
        return render_template("password.html", error=THROTTLED, done=False), 429
    try:
        people.change_password(db, current_user.id, (request.form.get("current") or "")[:1024], new)
    except Refused:
        throttle.failed(db, keys)
        return render_template("password.html", error="The current password is wrong.", done=False), 403
    except Invalid as exc:
        return render_template("password.html", error=str(exc), done=False), 400
    throttle.succeeded(db, keys)
    sign_in(people.get_user(db, current_user.id))
    return redirect(url_for("auth.password", done=1))
