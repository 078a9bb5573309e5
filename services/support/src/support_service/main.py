"""Support service: tickets (also from task reports) and the FAQ assistant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from contracts.envelope import Envelope
from contracts.events import TaskReported, TicketCreated
from contracts.rpc import support as rpc
from servicekit.service import Service, run
from support_service.db import metadata, tickets
from support_service.faq import best_answer
from support_service.settings import SupportSettings


def create_service(settings: SupportSettings | None = None) -> Service:
    svc = Service(settings or SupportSettings(), metadata)

    async def open_ticket(conn, *, user_id: str, kind: str, subject: str, text: str,
                          assignment_id: str | None = None, cause: Envelope | None = None):
        row = dict(ticket_id=str(uuid.uuid4()), user_id=user_id, kind=kind, subject=subject,
                   text=text, status="open", assignment_id=assignment_id,
                   created_at=datetime.now(UTC))
        await conn.execute(tickets.insert().values(**row))
        await svc.record(conn, TicketCreated(ticket_id=row["ticket_id"], user_id=user_id,
                                             kind=kind, subject=subject), cause=cause)
        return row

    @svc.consume("task.reported", name="task-reported")
    async def on_task_reported(conn, event: TaskReported, env: Envelope) -> None:
        """A worker's problem report on a task becomes a support ticket."""
        await open_ticket(conn, user_id=event.worker_id, kind=f"task_report:{event.reason}",
                          subject=f"Problem with task {event.task_id}", text=event.text,
                          assignment_id=event.assignment_id, cause=env)

    @svc.rpc(rpc.CREATE_TICKET)
    async def create_ticket(req: rpc.TicketCreate) -> rpc.Ticket:
        async with svc.transaction() as conn:
            row = await open_ticket(conn, user_id=req.actor.user_id, kind="question",
                                    subject=req.subject, text=req.text)
        return rpc.Ticket(**row)

    @svc.rpc(rpc.LIST_TICKETS)
    async def list_tickets(req: rpc.TicketList) -> rpc.Tickets:
        q = select(tickets)
        if req.actor.role == "worker":
            q = q.where(tickets.c.user_id == req.actor.user_id)
        if req.status:
            q = q.where(tickets.c.status == req.status)
        async with svc.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar()
            rows = (await conn.execute(q.order_by(tickets.c.created_at.desc())
                                       .limit(req.page.limit).offset(req.page.offset))).all()
        return rpc.Tickets(items=[rpc.Ticket(**r._mapping) for r in rows], total=total or 0)

    @svc.rpc(rpc.ASK)
    async def ask(req: rpc.AskAssistant) -> rpc.AssistantAnswer:
        m = best_answer(req.question)
        if m is None:
            return rpc.AssistantAnswer(
                answered=False,
                suggestion="No answer found in the knowledge base: open a support ticket.")
        return rpc.AssistantAnswer(answered=True, question=m.question, answer=m.answer,
                                   score=m.score)

    return svc


def main() -> None:
    run(create_service())


if __name__ == "__main__":
    main()
