"""Append-only audit log of security events.

Routers record through the gateway's instance::

    await request.app.state.audit.record("payout.approved", actor.user_id, payout_id,
                                         {"amount_minor": 500})

or the module-level ``record(...)`` (the audit of the most recently started gateway in the
process). There is no update or delete path; on PostgreSQL a trigger refuses both.
Details must never carry a secret (password, token, TOTP code, recovery code).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway_service.db import audit_log

log = logging.getLogger("gateway.audit")

# Kinds recorded by the security layer (routers may add their own, e.g. payout.approved).
KINDS = (
    "login.succeeded", "login.failed", "login.throttled", "logout", "logout.all",
    "password.changed", "password.change_failed", "user.created", "bootstrap.admin_created",
    "mfa.setup", "mfa.confirmed", "mfa.used", "mfa.failed", "mfa.recovery_used",
    "emergency.changed", "trust_level.changed", "login_link.created", "login_link.used",
    "login_link.failed", "dev.quick_login", "worker_share.changed", "payout.approved",
)


class Audit:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(self, kind: str, actor_user_id: str | None, target: str | None = None,
                     details: dict[str, Any] | None = None, *,
                     conn: AsyncConnection | None = None, address: str | None = None) -> None:
        """Append one row; inside ``conn``'s transaction when given, else on its own."""
        row = dict(at=datetime.now(UTC), kind=kind[:64], actor_user_id=actor_user_id,
                   target=(str(target)[:128] if target is not None else None),
                   address=address, details=json.dumps(details or {}, default=str,
                                                       ensure_ascii=False))
        if conn is not None:
            await conn.execute(audit_log.insert().values(**row))
            return
        async with self.engine.begin() as c:
            await c.execute(audit_log.insert().values(**row))

    async def search(self, *, kind: str | None = None, user_id: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Newest first; ``user_id`` matches the actor or the target."""
        q = select(audit_log)
        if kind:
            # "mfa" matches mfa.setup, mfa.used, ...; "mfa.used" matches exactly.
            q = q.where(or_(audit_log.c.kind == kind, audit_log.c.kind.like(f"{kind}.%")))
        if user_id:
            q = q.where(or_(audit_log.c.actor_user_id == user_id, audit_log.c.target == user_id))
        if since:
            q = q.where(audit_log.c.at >= since)
        if until:
            q = q.where(audit_log.c.at < until)
        async with self.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar()
            rows = (await conn.execute(q.order_by(audit_log.c.id.desc()).limit(limit)
                                       .offset(offset))).all()
        items = []
        for r in rows:
            m = dict(r._mapping)
            m["details"] = json.loads(m["details"] or "{}")
            items.append(m)
        return items, int(total or 0)


_current: Audit | None = None


def set_current(audit: Audit | None) -> None:
    global _current
    _current = audit


async def record(kind: str, actor_user_id: str | None, target: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
    """Record through the running gateway's audit log."""
    if _current is None:
        raise RuntimeError("no gateway is running: the audit log is not available")
    await _current.record(kind, actor_user_id, target, details)
