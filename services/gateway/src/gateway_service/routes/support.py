# mypy: disable-error-code="valid-type"
"""Support: tickets and their threads, and the FAQ assistant (every role; workers see only
their own tickets; managers and admins list, filter, answer, assign and close)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from contracts.rpc import Page
from contracts.rpc import support as support_rpc
from gateway_service.deps import AnyActor, Rpc, Security, StaffActor
from gateway_service.errors import ApiError
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.common import page

router = APIRouter(tags=["support"])


TicketBody = body_of(support_rpc.TicketCreate, "TicketBody")
QuestionBody = body_of(support_rpc.AskAssistant, "QuestionBody")
TicketReplyBody = body_of(support_rpc.TicketReply, "TicketReplyBody", without={"ticket_id"})
TicketAssignBody = body_of(support_rpc.TicketAssign, "TicketAssignBody", without={"ticket_id"})
TicketId = Annotated[str, Path(min_length=1, max_length=36)]
_F = support_rpc.TicketList.model_fields
AgeQuery = Annotated[int | None, Query(ge=0, le=10 * 365 * 86400)]


@router.get("/support/tickets", response_model=support_rpc.Tickets,
            summary="List support tickets (a worker sees their own, staff see all and filter)")
async def list_tickets(
        actor: AnyActor, rpc: Rpc, p: Annotated[Page, Depends(page)],
        status_: Annotated[support_rpc.TicketStatus | None, Query(alias="status")] = None,
        pool_id: Annotated[str | None, Query(max_length=64)] = None,
        kind: Annotated[str | None, Query(max_length=64,
                                          description=_F["kind"].description)] = None,
        assigned_to: Annotated[str | None, Query(max_length=64)] = None,
        min_age_s: AgeQuery = None, max_age_s: AgeQuery = None) -> support_rpc.Tickets:
    return await rpc.call(support_rpc.LIST_TICKETS, support_rpc.TicketList(
        actor=actor, page=p, status=status_, pool_id=pool_id, kind=kind,
        assigned_to=assigned_to, min_age_s=min_age_s, max_age_s=max_age_s))


@router.post("/support/tickets", response_model=support_rpc.Ticket,
             status_code=status.HTTP_201_CREATED, summary="Open a support ticket")
async def create_ticket(actor: AnyActor, rpc: Rpc, body: TicketBody) -> support_rpc.Ticket:
    return await rpc.call(support_rpc.CREATE_TICKET,
                          request_of(body, support_rpc.TicketCreate, actor=actor))


@router.get("/support/tickets/{ticket_id}", response_model=support_rpc.TicketThread,
            summary="A ticket and its messages (its owner, managers and admins)")
async def get_ticket(actor: AnyActor, rpc: Rpc,
                     ticket_id: TicketId) -> support_rpc.TicketThread:
    return await rpc.call(support_rpc.GET_TICKET,
                          support_rpc.TicketRef(actor=actor, ticket_id=ticket_id))


@router.post("/support/tickets/{ticket_id}/messages", response_model=support_rpc.TicketThread,
             summary="Write in a ticket: staff answer it, its owner's message reopens it")
async def reply_ticket(actor: AnyActor, rpc: Rpc, ticket_id: TicketId,
                       body: TicketReplyBody) -> support_rpc.TicketThread:
    return await rpc.call(support_rpc.REPLY_TICKET, request_of(
        body, support_rpc.TicketReply, actor=actor, ticket_id=ticket_id))


@router.post("/support/tickets/{ticket_id}/close", response_model=support_rpc.Ticket,
             summary="Close a ticket (staff, or its owner)")
async def close_ticket(actor: AnyActor, rpc: Rpc, ticket_id: TicketId) -> support_rpc.Ticket:
    return await rpc.call(support_rpc.CLOSE_TICKET,
                          support_rpc.TicketRef(actor=actor, ticket_id=ticket_id))


@router.put("/support/tickets/{ticket_id}/assignee", response_model=support_rpc.Ticket,
            summary="Put a manager in charge of a ticket (a manager: themselves; an admin: "
                    "anyone on staff); null unassigns")
async def assign_ticket(actor: StaffActor, rpc: Rpc, security: Security, ticket_id: TicketId,
                        body: TicketAssignBody) -> support_rpc.Ticket:
    assignee = body.assignee_id  # type: ignore[attr-defined]
    if assignee is not None:
        try:
            user = await security.accounts.get_user(assignee)
        except ApiError:
            user = None
        if user is None or user.role not in ("manager", "admin") or user.disabled_at:
            raise ApiError(422, "assignee_not_staff",
                           "tickets are assigned to an active manager or admin")
    return await rpc.call(support_rpc.ASSIGN_TICKET, request_of(
        body, support_rpc.TicketAssign, actor=actor, ticket_id=ticket_id))


@router.get("/support/stats", response_model=support_rpc.SupportStats,
            summary="Tickets by state and the median first-answer time (managers, admins)")
async def support_stats(actor: StaffActor, rpc: Rpc) -> support_rpc.SupportStats:
    return await rpc.call(support_rpc.SUPPORT_STATS,
                          support_rpc.SupportStatsRequest(actor=actor))


@router.post("/support/ask", response_model=support_rpc.AssistantAnswer,
             summary="Ask the assistant a frequent question (answers from the FAQ)")
async def ask(actor: AnyActor, rpc: Rpc, body: QuestionBody) -> support_rpc.AssistantAnswer:
    return await rpc.call(support_rpc.ASK, request_of(body, support_rpc.AskAssistant, actor=actor))
