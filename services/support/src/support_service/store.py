"""All of the support service's SQL: statements built once, results as contract models."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.rpc import support as rpc
from servicekit.db import insert
from support_service.db import tickets
from support_service.store_records import RecordsStore

_INSERT_TICKET = insert(tickets).on_conflict_do_nothing(index_elements=["assignment_id"])


class SupportStore(RecordsStore):
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add_ticket(self, ticket: rpc.Ticket) -> bool:
        """Store a new ticket; False when the assignment already has one (a report
        received twice under different event ids)."""
        result = await self.conn.execute(_INSERT_TICKET, ticket.model_dump())
        return result.rowcount == 1

    async def list_tickets(self, *, user_id: str | None, status: str | None, limit: int,
                           offset: int) -> tuple[list[rpc.Ticket], int]:
        cond: list[Any] = []
        if user_id is not None:
            cond.append(tickets.c.user_id == user_id)
        if status:
            cond.append(tickets.c.status == status)
        total = (await self.conn.execute(
            select(func.count()).select_from(tickets).where(*cond))).scalar_one()
        rows = (await self.conn.execute(
            select(tickets).where(*cond).order_by(tickets.c.created_at.desc())
            .limit(limit).offset(offset))).all()
        return [rpc.Ticket.model_validate(dict(r._mapping)) for r in rows], int(total)
