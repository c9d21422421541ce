"""Audit rows for admin actions, written in the same transaction as the action itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from toolkit.service.db import Database
from toolkit.service.tables import AuditEntry


@dataclass(frozen=True)
class AuditRecord:
    id: int
    actor_id: int | None
    action: str
    target: str
    detail: dict[str, Any] | None
    at: datetime


def record(session: Session, now: datetime, actor_id: int | None, action: str, target: str,
           **detail: Any) -> None:
    """One audit row. `target` is `kind:id`; `detail` holds ids, roles, counts, never PII."""
    session.add(AuditEntry(actor_id=actor_id, action=action, target=target, at=now,
                           detail_json=json.dumps(detail, sort_keys=True) if detail else None))


def list_audit(db: Database, *, limit: int = 100) -> list[AuditRecord]:
    """Newest first."""
    with db.read() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)).all()
        return [AuditRecord(r.id, r.actor_id, r.action, r.target,
                            json.loads(r.detail_json) if r.detail_json else None, r.at) for r in rows]
