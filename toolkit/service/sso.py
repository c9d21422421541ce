"""Single sign-on (OpenID Connect): which account an ID token's identity signs in to.

The web layer (toolkit.service.web.sso, Authlib's Flask client) runs the authorization-code flow
with PKCE and checks state, nonce, signature, issuer, audience and expiry; what it hands here are
the ID token's verified claims. Policy, safest by default:

- An identity (issuer + subject) already linked to an account signs in to that account while it
  is enabled; its email may have changed at the provider.
- Otherwise the token's email (the `email_claim`, not one the provider says is unverified, within
  `allowed_domains` when given) must belong to an account an admin created, or to a pending
  invitation, which it then accepts. The identity is linked on that first sign-in; `worker_id`
  stays the account's stable id.
- `new_users="none"` (the default): nothing else signs in, so SSO never grants access by itself.
  `"annotator"`/`"reviewer"`: an unknown email (still within `allowed_domains`) gets a new
  account with that role, in no team. Never admin.
- An admin may unlink an account's identities (`unlink`, e.g. when the person's account at the
  provider was recreated with a new subject): the account's sessions end, and its next SSO
  sign-in is a first one again, linking by email as above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from toolkit.service import people
from toolkit.service.audit import record
from toolkit.service.db import Database
from toolkit.service.errors import Invalid, NotFound, Refused
from toolkit.service.tables import Identity, Invitation, Membership, User

NEW_USER_POLICIES = ("none", "annotator", "reviewer")


@dataclass(frozen=True)
class OidcConfig:
    issuer: str  # exactly the provider's `issuer` (its discovery document and every ID token say it)
    client_id: str
    client_secret: str = field(repr=False)  # from a file or an environment variable; never printed
    discovery_url: str | None = None  # default: <issuer>/.well-known/openid-configuration
    allowed_domains: tuple[str, ...] = ()  # lower-case email domains; empty: any
    email_claim: str = "email"
    new_users: str = "none"
    label: str = "single sign-on"  # the sign-in page's button says "Sign in with <label>"
    timeout_s: float = 10.0  # for each call to the provider

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer)
        loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
        if not (parts.scheme == "https" or loopback) or not parts.hostname:
            raise Invalid("OIDC issuer must be an https:// URL (http:// only on this machine, for tests)")
        if not self.client_id:
            raise Invalid("OIDC client id is empty")
        if not self.client_secret:
            raise Invalid("OIDC client secret is empty")
        if self.new_users not in NEW_USER_POLICIES:
            raise Invalid(f"OIDC new users must be one of {', '.join(NEW_USER_POLICIES)}")
        object.__setattr__(self, "allowed_domains",
                           tuple(d.strip().lower().lstrip("@") for d in self.allowed_domains if d.strip()))

    @property
    def metadata_url(self) -> str:
        return self.discovery_url or self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def _claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > 255:
        raise Refused(f"the ID token has no usable {name!r} claim")
    return value


def _email(claims: Mapping[str, Any], config: OidcConfig) -> str:
    raw = claims.get(config.email_claim)
    if not isinstance(raw, str):
        raise Refused(f"the ID token has no {config.email_claim!r} claim")
    if claims.get("email_verified") is False:
        raise Refused("the provider says this email is not verified")
    try:
        email = people.normalize_email(raw)
    except Invalid:
        raise Refused(f"the ID token's {config.email_claim!r} claim is not an email address") from None
    if config.allowed_domains and email.rsplit("@", 1)[1] not in config.allowed_domains:
        raise Refused("this email's domain may not sign in here")
    return email


def _display_name(claims: Mapping[str, Any], email: str) -> str:
    for value in (claims.get("name"), email.split("@", 1)[0]):
        if isinstance(value, str):
            try:
                return people._check_name(value[:200], "a display name", 200)
            except Invalid:
                continue
    return "SSO user"


def _link(session: Session, now: datetime, user: User, issuer: str, subject: str, how: str) -> None:
    if session.scalar(select(Identity.id).where(Identity.user_id == user.id, Identity.issuer == issuer)):
        raise Refused("this account is linked to another identity of this provider")
    session.add(Identity(user_id=user.id, issuer=issuer, subject=subject, created_at=now))
    session.flush()
    record(session, now, None, "sso.link", f"user:{user.id}", how=how)


def _sign_in_once(db: Database, config: OidcConfig, claims: Mapping[str, Any]) -> people.UserInfo:
    issuer, subject = _claim(claims, "iss"), _claim(claims, "sub")
    if issuer != config.issuer:
        raise Refused("the ID token is from another issuer")
    now = db.now()
    with db.write() as session:
        linked = session.scalar(select(User).join(Identity, Identity.user_id == User.id)
                                .where(Identity.issuer == issuer, Identity.subject == subject))
        if linked is not None:
            if linked.disabled or linked.external:
                raise Refused("this account is disabled")
            return people.UserInfo.of(linked)
        email = _email(claims, config)
        user = session.scalar(select(User).where(User.email == email))
        if user is not None:
            if user.disabled or user.external:
                raise Refused("this account is disabled")
            _link(session, now, user, issuer, subject, "email")
            return people.UserInfo.of(user)
        invitation = session.scalar(db.lock(
            select(Invitation).where(Invitation.email == email, Invitation.user_id.is_(None),
                                     Invitation.used_at.is_(None), Invitation.expires_at > now)
            .order_by(Invitation.id.desc()).limit(1)))
        if invitation is not None:
            role, team_id = invitation.role, invitation.team_id
        elif config.new_users != "none":
            role, team_id = config.new_users, None
        else:
            raise Refused("no account here has this email; ask an admin for an invitation")
        user = User(worker_id=people.new_worker_id(), email=email, display_name=_display_name(claims, email),
                    password_hash=None, role=role, disabled=False, external=False, created_at=now)
        session.add(user)
        session.flush()
        if invitation is not None:
            invitation.used_at, invitation.used_by = now, user.id
            record(session, now, None, "invitation.accept", f"invitation:{invitation.id}", user=user.id, via="sso")
        else:
            record(session, now, None, "user.create", f"user:{user.id}", role=role, teams=[], via="sso")
        if team_id is not None:
            session.add(Membership(user_id=user.id, team_id=team_id))
        _link(session, now, user, issuer, subject, "invitation" if invitation is not None else "new")
        return people.UserInfo.of(user)


def sign_in(db: Database, config: OidcConfig, claims: Mapping[str, Any]) -> people.UserInfo:
    """The enabled account these verified ID-token claims sign in to (linking the identity on its
    first sign-in), else Refused saying why (shown to the person signing in: their own identity)."""
    try:
        return _sign_in_once(db, config, claims)
    except IntegrityError:  # a concurrent first sign-in of the same identity or email linked it
        return _sign_in_once(db, config, claims)


def identities(db: Database, user_id: int) -> list[tuple[str, str]]:
    """(issuer, subject) linked to an account."""
    with db.read() as session:
        return [(i.issuer, i.subject) for i in session.scalars(
            select(Identity).where(Identity.user_id == user_id).order_by(Identity.id))]


def linked_issuers(db: Database) -> dict[int, list[str]]:
    """Account id -> the issuers of its linked identities (the admin's Users page: never the subject)."""
    out: dict[int, list[str]] = {}
    with db.read() as session:
        for user_id, issuer in session.execute(select(Identity.user_id, Identity.issuer).order_by(Identity.id)):
            out.setdefault(user_id, []).append(issuer)
    return out


def unlink(db: Database, user_id: int, *, issuer: str | None = None, actor_id: int | None = None) -> int:
    """Remove the SSO identities linked to the account (admins; audited with the issuers, never the
    subject): every one, or only `issuer`'s. Every session of the account ends (one opened through
    the identity among them); the password, if it has one, keeps working. The next SSO sign-in is a
    first one again: it links to the account with the ID token's email, or is refused (see the
    module's policy). Returns how many identities were removed; NotFound for no such account,
    Refused when none (of `issuer`) was linked."""
    now = db.now()
    with db.write() as session:
        people.require_admin(session, actor_id)
        if session.get(User, user_id) is None:
            raise NotFound(f"no user {user_id}")
        which = Identity.user_id == user_id
        if issuer is not None:
            which = which & (Identity.issuer == issuer)
        issuers = list(session.scalars(select(Identity.issuer).where(which).order_by(Identity.id)))
        if not issuers:
            raise Refused(f"user {user_id} is not linked to single sign-on" if issuer is None
                          else f"user {user_id} is not linked to issuer {issuer}")
        session.execute(delete(Identity).where(which))
        people._revoke_sessions(session, now, user_id)
        record(session, now, actor_id, "sso.unlink", f"user:{user_id}", issuers=issuers)
        return len(issuers)
