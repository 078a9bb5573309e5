"""Support: tickets and the FAQ assistant (every role; workers see only their own tickets)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, Field

from contracts.rpc import Page
from contracts.rpc import support as support_rpc
from gateway_service.deps import AnyActor, Rpc
from gateway_service.routes.common import page

router = APIRouter(tags=["support"])


class TicketBody(BaseModel):
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=10_000)


class QuestionBody(BaseModel):
    question: str = Field(min_length=2, max_length=2000)


@router.get("/support/tickets", response_model=support_rpc.Tickets,
            summary="List support tickets (a worker sees their own, staff see all)")
async def list_tickets(actor: AnyActor, rpc: Rpc, p: Annotated[Page, Depends(page)],
                       status_: Annotated[str | None, Query(alias="status")] = None):
    return await rpc.call(support_rpc.LIST_TICKETS,
                          support_rpc.TicketList(actor=actor, page=p, status=status_))


@router.post("/support/tickets", response_model=support_rpc.Ticket,
             status_code=status.HTTP_201_CREATED, summary="Open a support ticket")
async def create_ticket(actor: AnyActor, rpc: Rpc, body: TicketBody):
    return await rpc.call(support_rpc.CREATE_TICKET,
                          support_rpc.TicketCreate(actor=actor, **body.model_dump()))


@router.post("/support/ask", response_model=support_rpc.AssistantAnswer,
             summary="Ask the assistant a frequent question (answers from the FAQ)")
async def ask(actor: AnyActor, rpc: Rpc, body: QuestionBody):
    return await rpc.call(support_rpc.ASK,
                          support_rpc.AskAssistant(actor=actor, question=body.question))
