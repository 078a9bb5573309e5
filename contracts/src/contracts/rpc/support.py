"""Support service RPCs: tickets (problem reports) and the FAQ assistant."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from contracts.rpc import ROLES, Page, RpcRequest, rpc


class TicketCreate(RpcRequest):
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=10_000)


class Ticket(BaseModel):
    ticket_id: str
    user_id: str
    kind: str
    subject: str
    text: str
    status: str
    assignment_id: str | None = None
    created_at: datetime


class TicketList(RpcRequest):
    page: Page = Page()
    status: str | None = None


class Tickets(BaseModel):
    items: list[Ticket]
    total: int


class AskAssistant(RpcRequest):
    question: str = Field(min_length=2, max_length=2000)


class AssistantAnswer(BaseModel):
    answered: bool
    question: str | None = None
    answer: str | None = None
    score: float = 0.0
    suggestion: str | None = None


CREATE_TICKET = rpc("support", "create_ticket", TicketCreate, Ticket, "Open a support ticket",
    roles=ROLES)
LIST_TICKETS = rpc("support", "list_tickets", TicketList, Tickets,
                   "Tickets: a worker sees their own, managers and admins see all",
    roles=ROLES)
ASK = rpc("support", "ask", AskAssistant, AssistantAnswer,
          "Answer a frequent question from the knowledge base",
    roles=ROLES)
