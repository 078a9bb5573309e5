"""Ticket threads and chat: handlers on the real store and a real PostgreSQL, a clock the
test moves, events read back from the outbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from contracts.envelope import new_envelope
from contracts.events import PoolOpened, TaskReported
from contracts.rpc import Actor
from contracts.rpc import support as rpc
from contracts.rpc.tasks import AssignmentOwner
from servicekit.context import Context
from servicekit.db import make_engine
from servicekit.errors import Conflict, Invalid, NotFound, ServiceError
from servicekit.migrations import upgrade
from servicekit.uow import Database
from support_service import chat, chat_rules, threads, ticket_rules, tickets
from support_service.db import outbox
from support_service.settings import SupportSettings
from support_service.store import SupportStore

SERVICE_DIR = Path(__file__).parents[1]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WORKER = Actor(user_id="w1", role="worker")
OTHER = Actor(user_id="w2", role="worker")
MANAGER = Actor(user_id="m1", role="manager")
ADMIN = Actor(user_id="a1", role="admin")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, s: float) -> None:
        self.now += timedelta(seconds=s)


@pytest.fixture
async def env(database_url):
    upgrade(SERVICE_DIR, database_url)
    engine = make_engine(database_url)
    clock = Clock()
    db = Database(engine, producer="support", outbox=outbox, store=SupportStore)
    ctx = Context(settings=SupportSettings(database_url=database_url, chat_rate_max=3,
                                           chat_rate_window_s=10),
                  db=db, clock=clock)
    yield ctx, clock, engine
    await engine.dispose()


async def events(engine, prefix: str = "support.") -> list[tuple[str, dict]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.subject, outbox.c.payload)
                                   .order_by(outbox.c.id))).all()
    return [(s, json.loads(p)["data"]) for s, p in rows if s.startswith(prefix)]


async def reported(ctx, worker="w1", assignment="a-1", pool="p1") -> rpc.Ticket:
    event = TaskReported(assignment_id=assignment, task_id="t1", pool_id=pool, project_id="pr",
                         worker_id=worker, reason="broken_link", text="the image is gone",
                         reported_at=ctx.clock())
    async with ctx.db.consumer_unit() as uow:
        await tickets.on_task_reported(event, new_envelope(event, producer="tasks"), uow, ctx)
    found = await tickets.list_tickets(rpc.TicketList(actor=Actor(user_id=worker,
                                                                  role="worker")), ctx)
    return next(t for t in found.items if t.assignment_id == assignment)


# ---------------------------------------------------------------- pure rules

def test_ticket_state_follows_who_writes() -> None:
    assert ticket_rules.after_message("open", from_staff=True).status == "answered"
    assert ticket_rules.after_message("answered", from_staff=False).change == "reopened"
    assert ticket_rules.after_message("closed", from_staff=False).status == "open"
    assert ticket_rules.after_message("open", from_staff=False).change == "none"
    with pytest.raises(ticket_rules.TicketClosed):
        ticket_rules.after_message("closed", from_staff=True)


def test_rate_limit_says_when_the_oldest_post_leaves_the_window() -> None:
    posts = [T0, T0 + timedelta(seconds=2), T0 + timedelta(seconds=3)]
    now = T0 + timedelta(seconds=4)
    assert chat_rules.retry_after_s(posts[:2], now=now, max_posts=3, window_s=10) is None
    assert chat_rules.retry_after_s(posts, now=now, max_posts=3, window_s=10) == 6


# ---------------------------------------------------------------- tickets

async def test_report_answer_reopen_close_and_the_figures(env) -> None:
    ctx, clock, engine = env
    ticket = await reported(ctx)
    assert ticket.status == "open" and ticket.pool_id == "p1"
    thread = await threads.get_ticket(rpc.TicketRef(actor=WORKER, ticket_id=ticket.ticket_id), ctx)
    assert [m.text for m in thread.messages] == ["the image is gone"]

    clock.advance(60)
    answered = await threads.reply_ticket(rpc.TicketReply(
        actor=MANAGER, ticket_id=ticket.ticket_id, text="Fixed, take it again"), ctx)
    assert answered.ticket.status == "answered"
    assert answered.ticket.first_answered_at == T0 + timedelta(seconds=60)
    seen = await threads.get_ticket(rpc.TicketRef(actor=WORKER, ticket_id=ticket.ticket_id), ctx)
    assert seen.messages[-1].text == "Fixed, take it again" and seen.messages[-1].from_staff

    closed = await threads.close_ticket(rpc.TicketRef(actor=MANAGER,
                                                      ticket_id=ticket.ticket_id), ctx)
    assert closed.status == "closed" and closed.closed_at is not None
    with pytest.raises(Conflict) as refused:
        await threads.reply_ticket(rpc.TicketReply(actor=MANAGER, ticket_id=ticket.ticket_id,
                                                   text="one more"), ctx)
    assert refused.value.code == "ticket_closed"
    clock.advance(30)
    reopened = await threads.reply_ticket(rpc.TicketReply(
        actor=WORKER, ticket_id=ticket.ticket_id, text="still broken"), ctx)
    assert reopened.ticket.status == "open" and reopened.ticket.closed_at is None
    clock.advance(30)
    again = await threads.reply_ticket(rpc.TicketReply(
        actor=ADMIN, ticket_id=ticket.ticket_id, text="now?"), ctx)
    assert again.ticket.first_answered_at == T0 + timedelta(seconds=60)   # the first stays

    assert [s for s, _ in await events(engine)] == [
        "support.ticket.created", "support.ticket.answered", "support.ticket.closed",
        "support.ticket.reopened", "support.ticket.answered"]
    assert (await events(engine))[1][1]["user_id"] == "w1"

    second = await reported(ctx, assignment="a-2")
    clock.advance(120)
    await threads.reply_ticket(rpc.TicketReply(actor=MANAGER, ticket_id=second.ticket_id,
                                               text="ok"), ctx)
    figures = await threads.stats(rpc.SupportStatsRequest(actor=ADMIN), ctx)
    assert (figures.open, figures.answered, figures.closed) == (0, 2, 0)
    assert figures.median_first_answer_s == 90.0                        # median of 60 and 120


async def test_strangers_cannot_read_or_write_a_ticket(env) -> None:
    ctx, _, _ = env
    ticket = await reported(ctx)
    for call in (threads.get_ticket(rpc.TicketRef(actor=OTHER, ticket_id=ticket.ticket_id), ctx),
                 threads.reply_ticket(rpc.TicketReply(actor=OTHER, ticket_id=ticket.ticket_id,
                                                      text="hi"), ctx),
                 threads.close_ticket(rpc.TicketRef(actor=OTHER, ticket_id=ticket.ticket_id),
                                      ctx)):
        with pytest.raises(NotFound):
            await call
    # the owner closes their own ticket
    assert (await threads.close_ticket(rpc.TicketRef(actor=WORKER, ticket_id=ticket.ticket_id),
                                       ctx)).status == "closed"


async def test_assignment_and_filters(env) -> None:
    ctx, clock, _ = env
    old = await reported(ctx, assignment="a-old", pool="p1")
    clock.advance(3600)
    await reported(ctx, assignment="a-new", pool="p2")
    await tickets.create_ticket(rpc.TicketCreate(actor=OTHER, subject="money", text="when?"), ctx)
    with pytest.raises(Invalid):
        await threads.assign_ticket(rpc.TicketAssign(actor=MANAGER, ticket_id=old.ticket_id,
                                                     assignee_id="m2"), ctx)
    mine = await threads.assign_ticket(rpc.TicketAssign(actor=MANAGER, ticket_id=old.ticket_id,
                                                        assignee_id="m1"), ctx)
    assert mine.assigned_to == "m1"

    async def ids(**filters) -> set[str]:
        got = await tickets.list_tickets(rpc.TicketList(actor=MANAGER, **filters), ctx)
        return {t.assignment_id or t.kind for t in got.items}

    assert await ids() == {"a-old", "a-new", "question"}
    assert await ids(pool_id="p2") == {"a-new"}
    assert await ids(kind="task_report:") == {"a-old", "a-new"}
    assert await ids(kind="question") == {"question"}
    assert await ids(min_age_s=1800) == {"a-old"}
    assert await ids(max_age_s=1800) == {"a-new", "question"}
    assert await ids(assigned_to="m1") == {"a-old"}
    assert await ids(status="answered") == set()


# ---------------------------------------------------------------- chat

def owned(assignment="as-1", worker="w1", pool="p1") -> dict:
    """An assignment thread's reference as the gateway sends it: with the assignment's owner
    (which the gateway asked tasks for)."""
    return {"kind": "assignment", "ref": assignment,
            "owner": AssignmentOwner(assignment_id=assignment, worker_id=worker, pool_id=pool,
                                     task_id="t1", taken_at=T0)}


async def test_task_chat_is_between_its_worker_and_staff(env) -> None:
    ctx, clock, engine = env
    ref = owned()
    await chat.post_chat(rpc.ChatPost(actor=WORKER, text="Is the second field optional?", **ref),
                         ctx)
    clock.advance(1)
    await chat.post_chat(rpc.ChatPost(actor=MANAGER, text="Yes", **ref), ctx)
    thread = await chat.list_chat(rpc.ChatList(actor=WORKER, **ref), ctx)
    assert [(m.author_id, m.text) for m in thread.items] == [
        ("w1", "Is the second field optional?"), ("m1", "Yes")]
    assert thread.worker_id == "w1"
    with pytest.raises(NotFound):
        await chat.list_chat(rpc.ChatList(actor=OTHER, **ref), ctx)
    with pytest.raises(NotFound):
        await chat.post_chat(rpc.ChatPost(actor=OTHER, text="me too", **ref), ctx)
    with pytest.raises(NotFound):                   # an assignment nobody vouched for
        await chat.post_chat(rpc.ChatPost(actor=MANAGER, kind="assignment", ref="nope",
                                          text="x"), ctx)
    with pytest.raises(NotFound):
        await chat.list_chat(rpc.ChatList(actor=WORKER, kind="assignment", ref="nope"), ctx)
    posted = await events(engine, "support.chat.")
    assert [d["worker_id"] for _, d in posted] == ["w1", "w1"]
    mine = await chat.chat_threads(rpc.ChatThreadsRequest(actor=WORKER), ctx)
    assert [(t.ref, t.messages) for t in mine.threads] == [("as-1", 2)]
    assert (await chat.chat_threads(rpc.ChatThreadsRequest(actor=OTHER), ctx)).threads == []


async def test_pool_chat_moderation_and_rate_limit(env) -> None:
    ctx, clock, engine = env
    ref = {"kind": "pool", "ref": "p9"}
    with pytest.raises(NotFound):
        await chat.post_chat(rpc.ChatPost(actor=WORKER, text="hello", **ref), ctx)
    opened = PoolOpened(pool_id="p9", project_id="pr", price_minor=100, currency="RUB",
                        opened_at=T0)
    async with ctx.db.consumer_unit() as uow:
        await chat.on_pool_opened(opened, new_envelope(opened, producer="tasks"), uow, ctx)

    for i in range(3):                               # the limit: 3 in 10 s
        await chat.post_chat(rpc.ChatPost(actor=WORKER, text=f"m{i}", **ref), ctx)
        clock.advance(1)
    with pytest.raises(ServiceError) as limited:
        await chat.post_chat(rpc.ChatPost(actor=WORKER, text="too fast", **ref), ctx)
    assert limited.value.status == 429 and limited.value.code == "chat_rate_limited"
    assert limited.value.details == {"retry_after_s": 7}
    await chat.post_chat(rpc.ChatPost(actor=OTHER, text="I may", **ref), ctx)  # per user
    clock.advance(7)
    await chat.post_chat(rpc.ChatPost(actor=WORKER, text="after the wait", **ref), ctx)

    spam = await chat.post_chat(rpc.ChatPost(actor=OTHER, text="spam!", **ref), ctx)
    hidden = await chat.delete_chat(rpc.ChatDelete(actor=MANAGER, message_id=spam.message_id),
                                    ctx)
    assert hidden.deleted and hidden.text == ""
    muted = await chat.mute_chat(rpc.ChatMute(actor=MANAGER, user_id="w2", minutes=5), ctx)
    assert muted.muted_until == clock.now + timedelta(minutes=5)
    with pytest.raises(ServiceError) as refused:
        await chat.post_chat(rpc.ChatPost(actor=OTHER, text="let me", **ref), ctx)
    assert refused.value.status == 403 and refused.value.code == "chat_muted"
    listed = await chat.list_chat(rpc.ChatList(actor=OTHER, **ref), ctx)
    assert listed.muted_until is not None and "spam!" not in [m.text for m in listed.items]
    with pytest.raises(Invalid):
        await chat.mute_chat(rpc.ChatMute(actor=MANAGER, user_id="m1", minutes=5), ctx)
    await chat.unmute_chat(rpc.ChatUnmute(actor=ADMIN, user_id="w2"), ctx)
    await chat.post_chat(rpc.ChatPost(actor=OTHER, text="sorry", **ref), ctx)
    clock.advance(301)
    subjects = [s for s, _ in await events(engine, "support.chat.")]
    assert subjects.count("support.chat.deleted") == 1
    assert subjects.count("support.chat.muted") == 2
    assert (await chat.chat_threads(rpc.ChatThreadsRequest(actor=WORKER), ctx)).pools == ["p9"]
