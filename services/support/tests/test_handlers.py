"""Support handlers on a fake store: no database, no bus."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.envelope import new_envelope
from contracts.events import TaskReported
from contracts.rpc import Actor
from contracts.rpc import support as rpc
from servicekit.testing.fakes import fake_context
from support_service import assistant, tickets
from support_service.settings import SupportSettings


class FakeSupportStore:
    def __init__(self) -> None:
        self.tickets: list[rpc.Ticket] = []
        self.messages: list[rpc.TicketMessage] = []

    async def add_ticket_message(self, message: rpc.TicketMessage) -> None:
        self.messages.append(message)

    async def add_ticket(self, ticket: rpc.Ticket) -> bool:
        if ticket.assignment_id and any(t.assignment_id == ticket.assignment_id
                                        for t in self.tickets):
            return False
        self.tickets.append(ticket)
        return True

    async def list_tickets(self, req, *, own, now):
        found = [t for t in self.tickets if (own is None or t.user_id == own)
                 and (not req.status or t.status == req.status)]
        return found[req.page.offset:req.page.offset + req.page.limit], len(found)


def ctx(store: FakeSupportStore):
    return fake_context(SupportSettings(database_url="postgresql://unused/x"), store)


def report(worker: str, assignment: str) -> TaskReported:
    return TaskReported(assignment_id=assignment, task_id="t1", pool_id="p1", project_id="pr1",
                        worker_id=worker, reason="broken_link", text="no image",
                        reported_at=datetime.now(UTC))


async def test_a_report_opens_one_ticket_and_announces_it_once() -> None:
    store = FakeSupportStore()
    c = ctx(store)
    event = report("w1", "a1")
    env = new_envelope(event, producer="tasks")
    for _ in range(2):  # the same report under two event ids
        async with c.db.consumer_unit() as uow:
            await tickets.on_task_reported(event, env, uow, c)
    assert [t.kind for t in store.tickets] == ["task_report:broken_link"]
    assert c.db.event_types() == ["support.ticket.created"]
    assert c.db.events[0].causation_id == env.event_id


async def test_workers_see_their_own_tickets_staff_see_all() -> None:
    store = FakeSupportStore()
    c = ctx(store)
    for who in ("w1", "w2"):
        await tickets.create_ticket(rpc.TicketCreate(
            actor=Actor(user_id=who, role="worker"), subject="help", text="how?"), c)
    mine = await tickets.list_tickets(rpc.TicketList(actor=Actor(user_id="w1", role="worker")), c)
    assert [t.user_id for t in mine.items] == ["w1"] and mine.total == 1
    everyone = await tickets.list_tickets(
        rpc.TicketList(actor=Actor(user_id="m", role="manager")), c)
    assert everyone.total == 2


async def test_the_assistant_answers_or_hands_over() -> None:
    c = ctx(FakeSupportStore())
    actor = Actor(user_id="w", role="worker")
    hit = await assistant.ask(rpc.AskAssistant(actor=actor, question="how do I withdraw money"), c)
    assert hit.answered and "payout" in (hit.answer or "").lower()
    miss = await assistant.ask(rpc.AskAssistant(actor=actor, question="zebra marmalade"), c)
    assert not miss.answered and miss.suggestion
