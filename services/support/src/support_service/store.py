"""All of the support service's SQL: statements built once, results as contract models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.rpc import support as rpc
from servicekit.db import insert
from support_service.changes_store import ChangesStore
from support_service.chat_store import ChatStore
from support_service.db import tickets
from support_service.store_records import RecordsStore
from support_service.threads_store import TicketThreadsStore, ticket_filters
from support_service.webhooks_store import WebhooksStore

_INSERT_TICKET = insert(tickets).on_conflict_do_nothing(index_elements=["assignment_id"])


class SupportStore(TicketThreadsStore, ChatStore, RecordsStore, ChangesStore, WebhooksStore):
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add_ticket(self, ticket: rpc.Ticket) -> bool:
        """Store a new ticket; False when the assignment already has one (a report
        received twice under different event ids)."""
        result = await self.conn.execute(_INSERT_TICKET, ticket.model_dump())
        return result.rowcount == 1

    async def list_tickets(self, req: rpc.TicketList, *, own: str | None,
                           now: datetime) -> tuple[list[rpc.Ticket], int]:
        cond = ticket_filters(req, own=own, now=now)
        limit, offset = req.page.limit, req.page.offset
        total = (await self.conn.execute(
            select(func.count()).select_from(tickets).where(*cond))).scalar_one()
        rows = (await self.conn.execute(
            select(tickets).where(*cond).order_by(tickets.c.created_at.desc())
            .limit(limit).offset(offset))).all()
        return [rpc.Ticket.model_validate(dict(r._mapping)) for r in rows], int(total)
