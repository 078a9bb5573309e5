"""Append-only audit log of security events.

There is no update or delete path, and a database trigger refuses both (and TRUNCATE).
Details must never carry a secret (password, token, TOTP code, recovery code).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway_service.security.context import GatewayContext
from gateway_service.security.store import GatewayStore


class AuditLog:
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def record(self, kind: str, actor_user_id: str | None, target: str | None = None,
                     details: dict[str, Any] | None = None, *, address: str | None = None,
                     store: GatewayStore | None = None) -> None:
        """Append one entry: in the transaction of ``store`` when given, else on its own."""
        entry = {"at": self.ctx.clock(), "kind": kind[:64], "actor_user_id": actor_user_id,
                 "target": str(target)[:128] if target is not None else None,
                 "address": address,
                 "details": json.dumps(details or {}, default=str, ensure_ascii=False)}
        if store is not None:
            await store.append_audit(entry)
            return
        async with self.ctx.statement() as uow:
            await uow.store.append_audit(entry)

    async def search(self, *, kind: str | None = None, user_id: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Newest first; ``user_id`` matches the actor or the target."""
        async with self.ctx.read() as r:
            items, total = await r.store.search_audit(kind=kind, user_id=user_id, since=since,
                                                      until=until, limit=limit, offset=offset)
        for item in items:
            item["details"] = json.loads(item["details"] or "{}")
        return items, total
