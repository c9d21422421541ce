"""Sign-in throttling in the database, so the limit holds across gunicorn workers and instances.

Two keys per attempt: the client address and the sha256 of the typed email. Both are counted for
every failure, whether or not the account exists, so a refusal says nothing about the account.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import case, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from toolkit.service.db import Database
from toolkit.service.tables import LoginThrottle, UTCDateTime

WINDOW_S = 15 * 60
LIMITS = {"ip": 50, "email": 10}  # failures per window


def keys(address: str | None, email: str) -> list[str]:
    digest = hashlib.sha256(email.strip().lower().encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return [f"ip:{address or '-'}"[:100], f"email:{digest}"]


def _limit(key: str) -> int:
    return LIMITS[key.split(":", 1)[0]]


def blocked(db: Database, attempt_keys: list[str]) -> bool:
    cutoff = db.now() - timedelta(seconds=WINDOW_S)
    with db.read() as session:
        rows = session.execute(select(LoginThrottle.key, LoginThrottle.failures)
                               .where(LoginThrottle.key.in_(attempt_keys), LoginThrottle.window_start > cutoff)).all()
    return any(failures >= _limit(key) for key, failures in rows)


def failed(db: Database, attempt_keys: list[str]) -> None:
    now = db.now()
    cutoff = now - timedelta(seconds=WINDOW_S)
    with db.write(durable=False) as session:
        dialect = postgresql if db.is_postgres else sqlite
        for key in attempt_keys:
            stmt = dialect.insert(LoginThrottle).values(key=key, window_start=now, failures=1)
            expired = LoginThrottle.window_start <= cutoff
            stmt = stmt.on_conflict_do_update(index_elements=[LoginThrottle.key], set_={
                "failures": case((expired, 1), else_=LoginThrottle.failures + 1),
                "window_start": case((expired, literal(now, UTCDateTime())), else_=LoginThrottle.window_start)})
            session.execute(stmt)


def succeeded(db: Database, attempt_keys: list[str]) -> None:
    """A right password clears its email's count (never the address's: one account's owner on a
    shared address must not reset an attacker's count for others)."""
    with db.write(durable=False) as session:
        for key in attempt_keys:
            if key.startswith("email:"):
                row = session.get(LoginThrottle, key)
                if row is not None:
                    session.delete(row)
