"""Ticket threads: staff answer, owners write back (reopening), close, assign; the figures
the owner dashboard shows."""

from __future__ import annotations

import uuid

from contracts.events import TicketAnswered, TicketAssigned, TicketClosed, TicketReopened
from contracts.rpc import Actor
from contracts.rpc import support as rpc
from servicekit.errors import Conflict, Invalid, NotFound
from servicekit.router import Router
from support_service import ticket_rules
from support_service.context import SupportContext
from support_service.store import SupportStore

router = Router()


async def _ticket_for(store: SupportStore, ticket_id: str, actor: Actor, *,
                      for_update: bool = False) -> rpc.Ticket:
    """The ticket if ``actor`` may see it; a stranger's ticket is "not found" to a worker."""
    ticket = await store.ticket(ticket_id, for_update=for_update)
    if ticket is None or not ticket_rules.may_read(owner_id=ticket.user_id,
                                                   user_id=actor.user_id, role=actor.role):
        raise NotFound("ticket_not_found", f"no ticket {ticket_id}")
    return ticket


@router.rpc(rpc.GET_TICKET)
async def get_ticket(req: rpc.TicketRef, ctx: SupportContext) -> rpc.TicketThread:
    """A ticket with its messages, oldest first (its owner, managers and admins)."""
    async with ctx.read() as r:
        ticket = await _ticket_for(r.store, req.ticket_id, req.actor)
        return rpc.TicketThread(ticket=ticket, messages=await r.store.ticket_messages(
            ticket.ticket_id))


@router.rpc(rpc.REPLY_TICKET)
async def reply_ticket(req: rpc.TicketReply, ctx: SupportContext) -> rpc.TicketThread:
    """Staff answer (the ticket becomes answered and its owner hears it); the owner writes
    back (an answered or closed ticket opens again)."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        ticket = await _ticket_for(uow.store, req.ticket_id, req.actor, for_update=True)
        from_staff = req.actor.user_id != ticket.user_id
        try:
            step = ticket_rules.after_message(ticket.status, from_staff=from_staff)
        except ticket_rules.TicketClosed:
            raise Conflict("ticket_closed", "the ticket is closed: it opens again when its "
                           "owner writes") from None
        await uow.store.add_ticket_message(rpc.TicketMessage(
            message_id=str(uuid.uuid4()), ticket_id=ticket.ticket_id,
            author_id=req.actor.user_id, author_role=req.actor.role, from_staff=from_staff,
            text=req.text, created_at=now))
        values: dict[str, object] = {"status": step.status, "updated_at": now}
        if from_staff and ticket.first_answered_at is None:
            values["first_answered_at"] = now
        if step.change == "reopened":
            values["closed_at"] = None
        ticket = await uow.store.update_ticket(ticket.ticket_id, **values)
        change = {"answered": TicketAnswered, "reopened": TicketReopened}.get(step.change)
        if change is not None:
            uow.record(change(ticket_id=ticket.ticket_id, user_id=ticket.user_id,
                              by_user_id=req.actor.user_id, at=now))
        messages = await uow.store.ticket_messages(ticket.ticket_id)
    return rpc.TicketThread(ticket=ticket, messages=messages)


@router.rpc(rpc.CLOSE_TICKET)
async def close_ticket(req: rpc.TicketRef, ctx: SupportContext) -> rpc.Ticket:
    """Close a ticket (staff, or its owner when the problem is solved)."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        ticket = await _ticket_for(uow.store, req.ticket_id, req.actor, for_update=True)
        if ticket.status == "closed":
            return ticket
        ticket = await uow.store.update_ticket(ticket.ticket_id, status="closed",
                                               closed_at=now, updated_at=now)
        uow.record(TicketClosed(ticket_id=ticket.ticket_id, user_id=ticket.user_id,
                                by_user_id=req.actor.user_id, at=now))
    return ticket


@router.rpc(rpc.ASSIGN_TICKET)
async def assign_ticket(req: rpc.TicketAssign, ctx: SupportContext) -> rpc.Ticket:
    """Put a manager in charge (the gateway checks the assignee is staff)."""
    now = ctx.clock()
    if req.actor.role == "manager" and req.assignee_id not in (None, req.actor.user_id):
        raise Invalid("assign_forbidden", "a manager assigns tickets to themselves; "
                      "an admin assigns them to anyone")
    async with ctx.uow() as uow:
        ticket = await _ticket_for(uow.store, req.ticket_id, req.actor, for_update=True)
        if ticket.assigned_to == req.assignee_id:
            return ticket
        ticket = await uow.store.update_ticket(ticket.ticket_id, assigned_to=req.assignee_id,
                                               updated_at=now)
        uow.record(TicketAssigned(ticket_id=ticket.ticket_id, user_id=ticket.user_id,
                                  by_user_id=req.actor.user_id, at=now,
                                  assignee_id=req.assignee_id))
    return ticket


@router.rpc(rpc.SUPPORT_STATS)
async def stats(req: rpc.SupportStatsRequest, ctx: SupportContext) -> rpc.SupportStats:
    """Tickets by state and the median time to the first staff answer (owner dashboard)."""
    async with ctx.read() as r:
        return await r.store.ticket_stats()
