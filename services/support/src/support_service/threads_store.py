"""SQL of ticket threads, assignment and the support figures (mixed into SupportStore)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.rpc import support as rpc
from servicekit.db import insert
from support_service.db import ticket_messages, tickets

_INSERT_MESSAGE = insert(ticket_messages)
_MEDIAN_FIRST_ANSWER = select(func.percentile_cont(0.5).within_group(
    func.extract("epoch", tickets.c.first_answered_at - tickets.c.created_at))).where(
    tickets.c.first_answered_at.is_not(None))
_COUNTS = select(tickets.c.status, func.count()).group_by(tickets.c.status)


def ticket_filters(req: rpc.TicketList, *, own: str | None, now: datetime) -> list[Any]:
    """The WHERE clauses of a ticket list request (a worker's list is their own)."""
    cond: list[Any] = []
    if own is not None:
        cond.append(tickets.c.user_id == own)
    if req.status:
        cond.append(tickets.c.status == req.status)
    if req.pool_id:
        cond.append(tickets.c.pool_id == req.pool_id)
    if req.kind:
        cond.append(tickets.c.kind.startswith(req.kind, autoescape=True)
                    if req.kind.endswith(":") else tickets.c.kind == req.kind)
    if req.assigned_to:
        cond.append(tickets.c.assigned_to == req.assigned_to)
    if req.min_age_s is not None:
        cond.append(tickets.c.created_at <= now - timedelta(seconds=req.min_age_s))
    if req.max_age_s is not None:
        cond.append(tickets.c.created_at >= now - timedelta(seconds=req.max_age_s))
    return cond


class TicketThreadsStore:
    conn: AsyncConnection

    async def add_ticket_message(self, message: rpc.TicketMessage) -> None:
        await self.conn.execute(_INSERT_MESSAGE, message.model_dump())

    async def ticket(self, ticket_id: str, *, for_update: bool = False) -> rpc.Ticket | None:
        q = select(tickets).where(tickets.c.ticket_id == ticket_id)
        row = (await self.conn.execute(q.with_for_update() if for_update else q)).first()
        return rpc.Ticket.model_validate(dict(row._mapping)) if row else None

    async def ticket_messages(self, ticket_id: str) -> list[rpc.TicketMessage]:
        rows = (await self.conn.execute(
            select(ticket_messages).where(ticket_messages.c.ticket_id == ticket_id)
            .order_by(ticket_messages.c.created_at, ticket_messages.c.message_id))).all()
        return [rpc.TicketMessage.model_validate(dict(r._mapping)) for r in rows]

    async def update_ticket(self, ticket_id: str, **values: Any) -> rpc.Ticket:
        row = (await self.conn.execute(
            update(tickets).where(tickets.c.ticket_id == ticket_id).values(**values)
            .returning(*tickets.c))).one()
        return rpc.Ticket.model_validate(dict(row._mapping))

    async def ticket_stats(self) -> rpc.SupportStats:
        counts: dict[str, int] = {status: int(n) for status, n in
                                  (await self.conn.execute(_COUNTS)).tuples().all()}
        median: float | None = (await self.conn.execute(_MEDIAN_FIRST_ANSWER)).scalar_one()
        return rpc.SupportStats(open=counts.get("open", 0), answered=counts.get("answered", 0),
                                closed=counts.get("closed", 0),
                                median_first_answer_s=None if median is None
                                else round(float(median), 3))
