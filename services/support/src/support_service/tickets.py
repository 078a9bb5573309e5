"""Tickets: opened by a user or from a worker's problem report on a task."""

from __future__ import annotations

import uuid

from contracts.envelope import Envelope
from contracts.events import TaskReported, TicketCreated
from contracts.rpc import support as rpc
from servicekit.router import Router
from servicekit.uow import UnitOfWork
from support_service.context import SupportContext
from support_service.store import SupportStore

router = Router()


async def open_ticket(uow: UnitOfWork[SupportStore], ctx: SupportContext, *, user_id: str,
                      role: str, kind: str, subject: str, text: str,
                      assignment_id: str | None = None, pool_id: str | None = None,
                      cause: Envelope | None = None) -> rpc.Ticket:
    now = ctx.clock()
    ticket = rpc.Ticket(ticket_id=str(uuid.uuid4()), user_id=user_id, kind=kind,
                        subject=subject, text=text, status="open", assignment_id=assignment_id,
                        pool_id=pool_id, created_at=now, updated_at=now)
    if await uow.store.add_ticket(ticket):
        # the opening text is the thread's first message
        await uow.store.add_ticket_message(rpc.TicketMessage(
            message_id=str(uuid.uuid4()), ticket_id=ticket.ticket_id, author_id=user_id,
            author_role=role, from_staff=False, text=text, created_at=now))
        uow.record(TicketCreated(ticket_id=ticket.ticket_id, user_id=user_id, kind=kind,
                                 subject=subject), cause=cause)
    return ticket


@router.consume("task.reported", name="task-reported")
async def on_task_reported(event: TaskReported, env: Envelope, uow: UnitOfWork[SupportStore],
                           ctx: SupportContext) -> None:
    """A worker's problem report on a task becomes a support ticket."""
    await open_ticket(uow, ctx, user_id=event.worker_id, role="worker",
                      kind=f"task_report:{event.reason}",
                      subject=f"Problem with task {event.task_id}", text=event.text,
                      assignment_id=event.assignment_id, pool_id=event.pool_id, cause=env)


@router.rpc(rpc.CREATE_TICKET)
async def create_ticket(req: rpc.TicketCreate, ctx: SupportContext) -> rpc.Ticket:
    """Any signed-in user opens a ticket with a question."""
    async with ctx.uow() as uow:
        return await open_ticket(uow, ctx, user_id=req.actor.user_id, role=req.actor.role,
                                 kind="question", subject=req.subject, text=req.text)


@router.rpc(rpc.LIST_TICKETS)
async def list_tickets(req: rpc.TicketList, ctx: SupportContext) -> rpc.Tickets:
    """A worker sees their own tickets; managers and admins see all, filtered by state,
    pool, kind, assignee and age."""
    own = req.actor.user_id if req.actor.role == "worker" else None
    async with ctx.read() as r:
        items, total = await r.store.list_tickets(req, own=own, now=ctx.clock())
    return rpc.Tickets(items=items, total=total)
