"""SQL of webhooks: subscriptions, deliveries (one per subscription and event), attempts.

A mixin of :class:`support_service.store.SupportStore`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update

from contracts.rpc import support as rpc
from servicekit.db import insert
from support_service.db import webhook_attempts, webhook_deliveries, webhook_subscriptions

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

S, D, A = webhook_subscriptions, webhook_deliveries, webhook_attempts
_ADD_DELIVERY = insert(D).on_conflict_do_nothing(
    index_elements=["subscription_id", "event_id"])


def webhook_view(row: Any) -> rpc.Webhook:
    return rpc.Webhook(subscription_id=row.subscription_id, url=row.url, kinds=row.kinds,
                       description=row.description, active=row.active,
                       created_by=row.created_by, created_at=row.created_at)


class WebhooksStore:
    conn: AsyncConnection

    async def add_webhook(self, row: dict[str, Any]) -> None:
        await self.conn.execute(S.insert().values(**row))

    async def webhook(self, subscription_id: str) -> Any:
        return (await self.conn.execute(select(S).where(
            S.c.subscription_id == subscription_id))).first()

    async def webhooks(self, *, limit: int, offset: int) -> tuple[list[Any], int]:
        total = (await self.conn.execute(select(func.count()).select_from(S))).scalar_one()
        rows = (await self.conn.execute(select(S).order_by(
            S.c.created_at.desc(), S.c.subscription_id).limit(limit).offset(offset))).all()
        return list(rows), int(total)

    async def disable_webhook(self, subscription_id: str) -> None:
        await self.conn.execute(update(S).where(S.c.subscription_id == subscription_id)
                                .values(active=False))

    async def subscribers(self, kind: str) -> list[Any]:
        """Active subscriptions to ``kind`` (few rows: filtered here, not in JSON SQL)."""
        rows = (await self.conn.execute(select(S.c.subscription_id, S.c.kinds)
                                        .where(S.c.active.is_(True)))).all()
        return [r for r in rows if kind in r.kinds]

    async def add_delivery(self, row: dict[str, Any]) -> bool:
        """One delivery per (subscription, event): False when it exists (a redelivery)."""
        return bool((await self.conn.execute(_ADD_DELIVERY, row)).rowcount == 1)

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[Any]:
        """Pending deliveries that are due, with their subscription's URL and secret,
        leased (``next_attempt_at`` moved on) so no other replica sends them meanwhile."""
        due = (select(D.c.delivery_id).where(D.c.status == "pending",
                                             or_(D.c.next_attempt_at.is_(None),
                                                 D.c.next_attempt_at <= now))
               .order_by(D.c.next_attempt_at).limit(limit)
               .with_for_update(skip_locked=True))
        ids = [r.delivery_id for r in (await self.conn.execute(due)).all()]
        if not ids:
            return []
        await self.conn.execute(update(D).where(D.c.delivery_id.in_(ids))
                                .values(next_attempt_at=lease_until))
        rows = (await self.conn.execute(
            select(D, S.c.url, S.c.secret).select_from(D.join(
                S, S.c.subscription_id == D.c.subscription_id))
            .where(D.c.delivery_id.in_(ids)).order_by(D.c.created_at))).all()
        return list(rows)

    async def reseal_secret(self, subscription_id: str, sealed: str) -> None:
        await self.conn.execute(update(S).where(S.c.subscription_id == subscription_id)
                                .values(secret=sealed))

    async def record_attempt(self, *, delivery_id: str, attempt: int, at: datetime,
                             status_code: int | None, error: str | None, duration_ms: int,
                             status: str, next_attempt_at: datetime | None) -> None:
        await self.conn.execute(A.insert().values(
            delivery_id=delivery_id, attempt=attempt, at=at, status_code=status_code,
            error=error, duration_ms=duration_ms))
        await self.conn.execute(update(D).where(D.c.delivery_id == delivery_id).values(
            attempts=attempt, status=status, next_attempt_at=next_attempt_at,
            delivered_at=at if status == "delivered" else None))

    async def redeliver(self, delivery_id: str, *, now: datetime, more: int) -> bool:
        result = await self.conn.execute(update(D).where(D.c.delivery_id == delivery_id).values(
            status="pending", next_attempt_at=now, give_up_after=D.c.attempts + more))
        return bool(result.rowcount == 1)

    async def deliveries(self, req: rpc.DeliveryList) -> tuple[list[rpc.WebhookDelivery], int]:
        cond = [D.c.subscription_id == req.subscription_id]
        if req.status is not None:
            cond.append(D.c.status == req.status)
        total = (await self.conn.execute(select(func.count()).select_from(D)
                                         .where(*cond))).scalar_one()
        rows = (await self.conn.execute(select(D).where(*cond).order_by(
            D.c.created_at.desc(), D.c.delivery_id).limit(req.page.limit)
            .offset(req.page.offset))).all()
        return await self._with_logs(rows), int(total)

    async def delivery(self, delivery_id: str) -> rpc.WebhookDelivery | None:
        rows = (await self.conn.execute(select(D).where(D.c.delivery_id == delivery_id))).all()
        found = await self._with_logs(rows)
        return found[0] if found else None

    async def _with_logs(self, rows: Sequence[Any]) -> list[rpc.WebhookDelivery]:
        ids = [r.delivery_id for r in rows]
        logs: dict[str, list[rpc.DeliveryAttempt]] = {i: [] for i in ids}
        if ids:
            for a in (await self.conn.execute(select(A).where(A.c.delivery_id.in_(ids))
                                              .order_by(A.c.attempt_id))).all():
                logs[a.delivery_id].append(rpc.DeliveryAttempt(
                    attempt=a.attempt, at=a.at, status_code=a.status_code, error=a.error,
                    duration_ms=a.duration_ms))
        return [rpc.WebhookDelivery(
            delivery_id=r.delivery_id, subscription_id=r.subscription_id, event_id=r.event_id,
            kind=r.kind, status=r.status, attempts=r.attempts,
            next_attempt_at=r.next_attempt_at if r.status == "pending" else None,
            created_at=r.created_at, delivered_at=r.delivered_at, log=logs[r.delivery_id])
            for r in rows]
