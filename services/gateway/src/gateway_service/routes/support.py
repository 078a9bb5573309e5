# mypy: disable-error-code="valid-type"
"""Support: tickets and the FAQ assistant (every role; workers see only their own tickets)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from contracts.rpc import Page
from contracts.rpc import support as support_rpc
from gateway_service.deps import AnyActor, Rpc
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.common import page

router = APIRouter(tags=["support"])


TicketBody = body_of(support_rpc.TicketCreate, "TicketBody")
QuestionBody = body_of(support_rpc.AskAssistant, "QuestionBody")


@router.get("/support/tickets", response_model=support_rpc.Tickets,
            summary="List support tickets (a worker sees their own, staff see all)")
async def list_tickets(actor: AnyActor, rpc: Rpc, p: Annotated[Page, Depends(page)],
                       status_: Annotated[str | None,
                       Query(alias="status")] = None) -> support_rpc.Tickets:
    return await rpc.call(support_rpc.LIST_TICKETS,
                          support_rpc.TicketList(actor=actor, page=p, status=status_))


@router.post("/support/tickets", response_model=support_rpc.Ticket,
             status_code=status.HTTP_201_CREATED, summary="Open a support ticket")
async def create_ticket(actor: AnyActor, rpc: Rpc, body: TicketBody) -> support_rpc.Ticket:
    return await rpc.call(support_rpc.CREATE_TICKET,
                          request_of(body, support_rpc.TicketCreate, actor=actor))


@router.post("/support/ask", response_model=support_rpc.AssistantAnswer,
             summary="Ask the assistant a frequent question (answers from the FAQ)")
async def ask(actor: AnyActor, rpc: Rpc, body: QuestionBody) -> support_rpc.AssistantAnswer:
    return await rpc.call(support_rpc.ASK, request_of(body, support_rpc.AskAssistant, actor=actor))
