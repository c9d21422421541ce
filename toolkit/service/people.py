"""People: accounts, roles, teams, invitations, sessions.

- Passwords: argon2id (argon2-cffi's defaults), rehashed on sign-in when the parameters change.
- `worker_id` is a random, stable account id; it is what the output's `workerId` says, so the
  labels never carry a name or an email.
- Invitations and sessions are random tokens of which only the sha256 is stored: a copy of the
  database does not let anyone sign in or accept an invitation. An invitation works once and
  expires; a session ends on logout, on expiry, and when its user is disabled.
- Admin actions take `actor_id`: None is the operator (CLI); otherwise it must be an enabled admin.
  Each writes an audit row in the same transaction.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from toolkit.service.audit import record
from toolkit.service.db import Database
from toolkit.service.errors import Invalid, NotFound, Refused
from toolkit.service.tables import (
    ROLES,
    DataObject,
    Hold,
    Invitation,
    Job,
    LoginThrottle,
    Membership,
    Team,
    User,
    UserSession,
    UTCDateTime,
)

PASSWORD_LENGTH = (10, 1024)
INVITATION_TTL_S = 7 * 24 * 3600
SESSION_TTL_S = 12 * 3600
KEEP_ENDED_S = 24 * 3600  # ended sessions and sign-in throttle windows, deleted after this
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()
_dummy: dict[int, str] = {}


def set_password_hasher(hasher: PasswordHasher) -> None:
    """Other argon2 parameters (tests use cheap ones; existing hashes keep verifying and are
    rehashed at the next sign-in)."""
    global _hasher
    _hasher = hasher


def _dummy_hash() -> str:
    """Verified against when the email is unknown, so a wrong email costs as long as a wrong password."""
    key = id(_hasher)
    if key not in _dummy:
        _dummy[key] = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy[key]


@dataclass(frozen=True)
class UserInfo:
    id: int
    worker_id: str
    email: str | None
    display_name: str
    role: str
    disabled: bool
    external: bool

    @classmethod
    def of(cls, user: User) -> UserInfo:
        return cls(user.id, user.worker_id, user.email, user.display_name, user.role, user.disabled, user.external)


@dataclass(frozen=True)
class TeamInfo:
    id: int
    name: str


@dataclass(frozen=True)
class InvitationLink:
    """`token` goes into the link once; the database keeps only its hash."""

    id: int
    token: str
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_worker_id() -> str:
    return secrets.token_hex(10)


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 320 or not EMAIL.match(email):
        raise Invalid("not an email address")
    return email


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    return role


def _check_password(password: str) -> str:
    low, high = PASSWORD_LENGTH
    if not low <= len(password) <= high:
        raise Invalid(f"a password needs {low} to {high} characters")
    return password


def _check_name(name: str, what: str, limit: int) -> str:
    name = name.strip()
    if not name or len(name) > limit or not name.isprintable():
        raise Invalid(f"{what} needs 1 to {limit} printable characters")
    return name


def require_admin(session: Session, actor_id: int | None) -> None:
    """Admin actions: the operator (None) or an enabled admin account."""
    if actor_id is None:
        return
    actor = session.get(User, actor_id)
    if actor is None or actor.disabled or actor.role != "admin":
        raise Refused(f"user {actor_id} is not an enabled admin")


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def _team(session: Session, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"no team {team_id}")
    return team


# -- users ------------------------------------------------------------------------------------------
def _insert_user(session: Session, now: datetime, *, email: str, display_name: str, password: str,
                 role: str) -> User:
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Refused("an account with this email exists")
    user = User(worker_id=new_worker_id(), email=email, display_name=display_name,
                password_hash=_hasher.hash(password), role=role, disabled=False, external=False,
                created_at=now)
    session.add(user)
    session.flush()
    return user


def create_user(db: Database, *, email: str, display_name: str, password: str, role: str = "annotator",
                team_ids: tuple[int, ...] = (), actor_id: int | None = None) -> UserInfo:
    email = normalize_email(email)
    display_name = _check_name(display_name, "a display name", 200)
    _check_password(password)
    _check_role(role)
    now = db.now()
    try:
        with db.write() as session:
            require_admin(session, actor_id)
            user = _insert_user(session, now, email=email, display_name=display_name, password=password, role=role)
            for team_id in team_ids:
                _team(session, team_id)
                session.add(Membership(user_id=user.id, team_id=team_id))
            record(session, now, actor_id, "user.create", f"user:{user.id}", role=role, teams=list(team_ids))
            return UserInfo.of(user)
    except IntegrityError:  # a concurrent create with the same email
        raise Refused("an account with this email exists") from None


def external_user(session: Session, now: datetime, worker_id: str) -> User:
    """The account standing for a Ground Truth worker of an imported job (cannot sign in)."""
    user = session.scalar(select(User).where(User.worker_id == worker_id))
    if user is None:
        user = User(worker_id=worker_id, email=None, display_name="imported worker", password_hash=None,
                    role="annotator", disabled=True, external=True, created_at=now)
        session.add(user)
        session.flush()
    return user


def named_workers(db: Database, team_id: int, names: list[str]) -> list[int]:
    """Accounts for the workers of a local job (`gtkit local-job run`), in `names` order, members
    of `team_id`: the name is the `workerId`, as in the local portal; they have no email or
    password (nobody signs in to the service as them). An existing account of that id is reused
    (and enabled)."""
    now = db.now()
    ids = []
    with db.write() as session:
        _team(session, team_id)
        for name in names:
            user = session.scalar(select(User).where(User.worker_id == name))
            if user is None:
                user = User(worker_id=name, email=None, display_name=name, password_hash=None,
                            role="annotator", disabled=False, external=False, created_at=now)
                session.add(user)
                session.flush()
            else:  # e.g. imported from the job's earlier answers (gt_import): it labels on
                user.disabled = user.external = False
            if session.get(Membership, (user.id, team_id)) is None:
                session.add(Membership(user_id=user.id, team_id=team_id))
            ids.append(user.id)
        record(session, now, None, "team.local_workers", f"team:{team_id}", count=len(ids))
    return ids


def get_user(db: Database, user_id: int) -> UserInfo:
    with db.read() as session:
        return UserInfo.of(_user(session, user_id))


def list_users(db: Database) -> list[UserInfo]:
    with db.read() as session:
        return [UserInfo.of(u) for u in session.scalars(select(User).where(User.external.is_(False))
                                                          .order_by(User.id))]


def authenticate(db: Database, email: str, password: str) -> UserInfo | None:
    """The enabled user with this email and password, else None (the same None, and about the same
    time, for an unknown email, a wrong password or a disabled account: no user enumeration)."""
    try:
        email = normalize_email(email)
    except Invalid:
        email = ""
    with db.read() as session:
        user = session.scalar(select(User).where(User.email == email)) if email else None
        real = user is not None and bool(user.password_hash)
        stored = user.password_hash if real else _dummy_hash()
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or user.disabled or not real:
            return None
        info = UserInfo.of(user)
        needs_rehash = _hasher.check_needs_rehash(stored)
    if needs_rehash:
        with db.write() as session:
            session.execute(update(User).where(User.id == info.id).values(password_hash=_hasher.hash(password)))
    return info


def _revoke_sessions(session: Session, now: datetime, user_id: int) -> None:
    session.execute(update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
                    .values(revoked_at=now))


def set_password(db: Database, user_id: int, password: str, *, actor_id: int | None = None) -> None:
    _check_password(password)
    now = db.now()
    with db.write() as session:
        if actor_id != user_id:
            require_admin(session, actor_id)
        _user(session, user_id).password_hash = _hasher.hash(password)
        _revoke_sessions(session, now, user_id)  # a new password ends every session (a leaked one among them)
        record(session, now, actor_id, "user.set_password", f"user:{user_id}")


def change_password(db: Database, user_id: int, current: str, new: str) -> None:
    """The signed-in user's own change: the current password must match. Every session of the user
    ends (the caller signs the browser that asked in again, with a new session)."""
    _check_password(new)
    now = db.now()
    with db.write() as session:
        user = session.scalar(db.lock(select(User).where(User.id == user_id)))
        if user is None or user.disabled:
            raise Refused(f"user {user_id} cannot change a password")
        try:
            _hasher.verify(user.password_hash or _dummy_hash(), current)
        except (VerificationError, InvalidHashError):
            raise Refused("the current password is wrong") from None
        if not user.password_hash:  # an SSO-only account: the dummy hash never "matches" a real one
            raise Refused("the current password is wrong")
        user.password_hash = _hasher.hash(new)
        _revoke_sessions(session, now, user_id)
        record(session, now, user_id, "user.change_password", f"user:{user_id}")


def set_role(db: Database, user_id: int, role: str, *, actor_id: int | None = None) -> None:
    _check_role(role)
    now = db.now()
    with db.write() as session:
        require_admin(session, actor_id)
        _user(session, user_id).role = role
        record(session, now, actor_id, "user.set_role", f"user:{user_id}", role=role)


def disable_user(db: Database, user_id: int, *, actor_id: int | None = None) -> None:
    """No more sign-in; every session ends now and the user's held place goes back to the others."""
    now = db.now()
    with db.write() as session:
        require_admin(session, actor_id)
        _user(session, user_id).disabled = True
        _revoke_sessions(session, now, user_id)
        session.execute(delete(Hold).where(Hold.user_id == user_id))
        record(session, now, actor_id, "user.disable", f"user:{user_id}")


def enable_user(db: Database, user_id: int, *, actor_id: int | None = None) -> None:
    now = db.now()
    with db.write() as session:
        require_admin(session, actor_id)
        user = _user(session, user_id)
        if user.external:
            raise Refused(f"user {user_id} is an imported Ground Truth worker and cannot sign in")
        user.disabled = False
        record(session, now, actor_id, "user.enable", f"user:{user_id}")


# -- teams ------------------------------------------------------------------------------------------
def create_team(db: Database, name: str, *, actor_id: int | None = None) -> TeamInfo:
    name = _check_name(name, "a team name", 128)
    now = db.now()
    try:
        with db.write() as session:
            require_admin(session, actor_id)
            if session.scalar(select(Team.id).where(Team.name == name)) is not None:
                raise Refused(f"a team named {name!r} exists")
            team = Team(name=name, created_at=now)
            session.add(team)
            session.flush()
            record(session, now, actor_id, "team.create", f"team:{team.id}")
            return TeamInfo(team.id, team.name)
    except IntegrityError:
        raise Refused(f"a team named {name!r} exists") from None


def list_teams(db: Database) -> list[TeamInfo]:
    with db.read() as session:
        return [TeamInfo(t.id, t.name) for t in session.scalars(select(Team).order_by(Team.id))]


def add_member(db: Database, team_id: int, user_id: int, *, actor_id: int | None = None) -> None:
    now = db.now()
    with db.write() as session:
        require_admin(session, actor_id)
        _team(session, team_id)
        _user(session, user_id)
        if session.get(Membership, (user_id, team_id)) is None:
            session.add(Membership(user_id=user_id, team_id=team_id))
            record(session, now, actor_id, "team.add_member", f"team:{team_id}", user=user_id)


def remove_member(db: Database, team_id: int, user_id: int, *, actor_id: int | None = None) -> None:
    """The user stops getting the team's tasks; a place they hold in its jobs is given back."""
    now = db.now()
    with db.write() as session:
        require_admin(session, actor_id)
        session.execute(delete(Membership).where(Membership.team_id == team_id, Membership.user_id == user_id))
        team_objects = select(DataObject.id).join(Job, Job.id == DataObject.job_id).where(Job.team_id == team_id)
        session.execute(delete(Hold).where(Hold.user_id == user_id, Hold.object_id.in_(team_objects)))
        record(session, now, actor_id, "team.remove_member", f"team:{team_id}", user=user_id)


def user_team_ids(db: Database, user_id: int) -> list[int]:
    with db.read() as session:
        return list(session.scalars(select(Membership.team_id).where(Membership.user_id == user_id)
                                    .order_by(Membership.team_id)))


# -- invitations ------------------------------------------------------------------------------------
def invite(db: Database, *, email: str, role: str = "annotator", team_id: int | None = None,
           ttl_s: int = INVITATION_TTL_S, actor_id: int | None = None) -> InvitationLink:
    """A single-use invitation, valid for `ttl_s` seconds. Put `token` in the link you send."""
    email = normalize_email(email)
    _check_role(role)
    if ttl_s <= 0:
        raise Invalid("an invitation needs a positive lifetime")
    token = secrets.token_urlsafe(32)
    now = db.now()
    with db.write() as session:
        require_admin(session, actor_id)
        if team_id is not None:
            _team(session, team_id)
        row = Invitation(token_hash=token_hash(token), email=email, role=role, team_id=team_id, created_by=actor_id,
                         created_at=now, expires_at=now + timedelta(seconds=ttl_s))
        session.add(row)
        session.flush()
        record(session, now, actor_id, "invitation.create", f"invitation:{row.id}", role=role, team=team_id)
        return InvitationLink(row.id, token, row.expires_at)


def reset_link(db: Database, user_id: int, *, ttl_s: int = INVITATION_TTL_S,
               actor_id: int | None = None) -> InvitationLink:
    """A single-use link with which the account's owner chooses a new password (an invitation row
    tied to the account). Earlier unused reset links of the account stop working; the current
    password and sessions keep working until the link is used."""
    if ttl_s <= 0:
        raise Invalid("a reset link needs a positive lifetime")
    token = secrets.token_urlsafe(32)
    now = db.now()
    with db.write() as session:
        require_admin(session, actor_id)
        user = _user(session, user_id)
        if user.external or not user.email:
            raise Refused(f"user {user_id} has no sign-in to reset")
        session.execute(update(Invitation).where(Invitation.user_id == user_id, Invitation.used_at.is_(None))
                        .values(used_at=now))
        row = Invitation(token_hash=token_hash(token), email=user.email, role=user.role, team_id=None,
                         user_id=user_id, created_by=actor_id, created_at=now,
                         expires_at=now + timedelta(seconds=ttl_s))
        session.add(row)
        session.flush()
        record(session, now, actor_id, "user.reset_link", f"user:{user_id}", invitation=row.id)
        return InvitationLink(row.id, token, row.expires_at)


def invitation_kind(db: Database, token: str) -> str | None:
    """"account" (a new account) or "reset" (a new password) if the link would be accepted now,
    else None. Read only: showing the form does not use it up."""
    now = db.now()
    with db.read() as session:
        row = session.scalar(select(Invitation).where(Invitation.token_hash == token_hash(token)))
        if row is None or row.used_at is not None or row.expires_at <= now:
            return None
        return "account" if row.user_id is None else "reset"


def invitation_valid(db: Database, token: str) -> bool:
    """Whether a link would be accepted now (read only: showing the form does not use it up)."""
    return invitation_kind(db, token) is not None


def accept_invitation(db: Database, token: str, *, display_name: str, password: str) -> UserInfo:
    """Create the invited account (and its team membership), or, for a reset link, set the
    account's new password and end its sessions. Works once, before it expires."""
    _check_password(password)
    now = db.now()
    with db.write() as session:
        row = session.scalar(db.lock(select(Invitation).where(Invitation.token_hash == token_hash(token))))
        if row is None or row.used_at is not None or row.expires_at <= now:
            raise Refused("this invitation link is not valid (unknown, already used or expired)")
        if row.user_id is None:
            display_name = _check_name(display_name, "a display name", 200)
        # The conditional update is what makes it single use when two requests race.
        claimed = session.execute(update(Invitation).where(Invitation.id == row.id, Invitation.used_at.is_(None))
                                  .values(used_at=now))
        if claimed.rowcount != 1:
            raise Refused("this invitation link is not valid (unknown, already used or expired)")
        if row.user_id is not None:
            user = _user(session, row.user_id)
            if user.disabled:
                raise Refused("this invitation link is not valid (unknown, already used or expired)")
            user.password_hash = _hasher.hash(password)
            _revoke_sessions(session, now, user.id)
            row.used_by = user.id
            record(session, now, None, "user.reset_password", f"user:{user.id}", invitation=row.id)
            return UserInfo.of(user)
        user = _insert_user(session, now, email=row.email, display_name=display_name, password=password,
                            role=row.role)
        row.used_by = user.id
        if row.team_id is not None:
            session.add(Membership(user_id=user.id, team_id=row.team_id))
        record(session, now, None, "invitation.accept", f"invitation:{row.id}", user=user.id)
        return UserInfo.of(user)


# -- sessions ---------------------------------------------------------------------------------------
def create_session(db: Database, user_id: int, *, ttl_s: int = SESSION_TTL_S) -> str:
    """A new session for an enabled user; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    now = db.now()
    with db.write(durable=False) as session:  # lost to a power cut: the user signs in again
        user = _user(session, user_id)
        if user.disabled:
            raise Refused(f"user {user_id} is disabled")
        session.add(UserSession(id_hash=token_hash(token), user_id=user_id, created_at=now, last_seen_at=now,
                                expires_at=now + timedelta(seconds=ttl_s)))
    return token


def session_user(db: Database, token: str) -> UserInfo | None:
    """The user of a live session (not expired, not revoked, user enabled), else None."""
    now = db.now()
    with db.read() as session:
        row = session.execute(_session_user_template(),
                              {"id_hash": token_hash(token), "now": now}).scalar_one_or_none()
        return UserInfo.of(row) if row is not None else None


@functools.cache
def _session_user_template() -> Any:
    """Built once: every request runs it (toolkit.service.work says why that matters)."""
    return (select(User).join(UserSession, UserSession.user_id == User.id)
            .where(UserSession.id_hash == bindparam("id_hash"), UserSession.revoked_at.is_(None),
                   UserSession.expires_at > bindparam("now", type_=UTCDateTime), User.disabled.is_(False)))


def prune_ended(db: Database, *, keep_s: int = KEEP_ENDED_S) -> tuple[int, int]:
    """Delete sessions that expired or were revoked, and sign-in throttle rows whose window (15
    min) began, more than `keep_s` ago: neither is read again, and a service that runs for months
    would otherwise keep a row for every sign-in and every address that ever mistyped a password.
    Returns (sessions, throttle rows) deleted. The queue process runs it every hour."""
    cutoff = db.now() - timedelta(seconds=keep_s)
    with db.write(durable=False) as session:  # lost to a power cut: deleted at the next run
        sessions = session.execute(delete(UserSession).where(
            or_(UserSession.expires_at < cutoff, UserSession.revoked_at < cutoff))).rowcount
        throttles = session.execute(delete(LoginThrottle).where(LoginThrottle.window_start < cutoff)).rowcount
    return sessions, throttles


def end_session(db: Database, token: str) -> None:
    """Logout: the session stops working on every instance at once."""
    now = db.now()
    with db.write() as session:
        session.execute(update(UserSession).where(UserSession.id_hash == token_hash(token),
                                                  UserSession.revoked_at.is_(None)).values(revoked_at=now))
