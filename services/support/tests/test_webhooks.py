"""Webhooks on a real PostgreSQL with a receiver this test runs on loopback: each
subscribed event is delivered once per attempt, every signature verifies, a receiver that
was down gets what it missed after it comes back (exponential backoff), a manual
redeliver sends again, and URLs that are not http(s) or point inside are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contracts.envelope import new_envelope
from contracts.events import PayoutApproved, ReviewAccepted, ReviewRejected
from contracts.rpc import Actor
from contracts.rpc import support as rpc
from servicekit.context import Context
from servicekit.db import make_engine
from servicekit.errors import ServiceError
from servicekit.migrations import upgrade
from servicekit.testing.receiver import Receiver
from servicekit.uow import Database
from support_service import webhooks
from support_service.db import outbox
from support_service.settings import SupportSettings
from support_service.store import SupportStore

SERVICE_DIR = Path(__file__).parents[1]
ADMIN = Actor(user_id="owner", role="admin")
BASE_S = 10.0


def context(database_url: str, clock: Any, **settings: Any) -> Context:
    s = SupportSettings(database_url=database_url, environment="test",
                        webhook_backoff_base_s=BASE_S, **settings)
    db: Database[SupportStore] = Database(make_engine(database_url), producer="support",
                                          outbox=outbox, store=SupportStore)
    return Context(settings=s, db=db, clock=clock)


@pytest.fixture
async def hook_ctx(database_url: str, clock) -> AsyncIterator[Context]:
    upgrade(SERVICE_DIR, database_url)
    ctx = context(database_url, clock, webhook_allow_private=True)
    try:
        yield ctx
    finally:
        await ctx.db.engine.dispose()


async def deliver(ctx: Context, handler, event) -> Any:
    env = new_envelope(event, producer="x")
    async with ctx.uow() as uow:
        await handler([(event, env)], uow, ctx)
    return env


def accepted(n: int) -> ReviewAccepted:
    return ReviewAccepted(assignment_id=f"as-{n}", task_id=f"t-{n}", pool_id="p1",
                          project_id="pr1", worker_id="w1", decided_by="m1",
                          decided_at=datetime(2026, 12, 1, tzinfo=UTC))


async def deliveries(ctx: Context, sid: str) -> list[rpc.WebhookDelivery]:
    got = await webhooks.list_deliveries(rpc.DeliveryList(actor=ADMIN, subscription_id=sid),
                                         ctx)
    return sorted(got.items, key=lambda d: d.created_at)


def verified(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every request the receiver saw, each checked against its signature."""
    import json

    out = []
    for req in receiver.seen:
        h = req["headers"]
        assert webhooks.verify(secret, h[webhooks.TIMESTAMP_HEADER], req["body"],
                               h[webhooks.SIGNATURE_HEADER]), h
        assert not webhooks.verify("another secret", h[webhooks.TIMESTAMP_HEADER],
                                   req["body"], h[webhooks.SIGNATURE_HEADER])
        out.append(json.loads(req["body"]))
    return out


async def test_each_event_once_per_attempt_signed_and_caught_up_after_downtime(
        hook_ctx: Context, clock) -> None:
    ctx = hook_ctx
    receiver = Receiver()
    await receiver.start()
    made = await webhooks.create_webhook(rpc.WebhookCreate(
        actor=ADMIN, url=receiver.url, kinds=["task.accepted", "payout.changed"]), ctx)
    sid, secret = made.subscription_id, made.secret
    listed = await webhooks.list_webhooks(rpc.WebhookList(actor=ADMIN), ctx)
    assert [w.subscription_id for w in listed.items] == [sid]
    assert "secret" not in listed.items[0].model_dump()

    # one acceptance redelivered (same envelope twice), a rejection nobody subscribed to,
    # a payout decision
    env = new_envelope(accepted(1), producer="review")
    for _ in range(2):
        async with ctx.uow() as uow:
            await webhooks.on_accepted([(accepted(1), env)], uow, ctx)
    await deliver(ctx, webhooks.on_rejected, ReviewRejected(**accepted(2).model_dump()))
    await deliver(ctx, webhooks.on_payout_approved, PayoutApproved(
        payout_id="po-1", worker_id="w1", amount_minor=500, currency="RUB",
        at=datetime(2026, 12, 1, tzinfo=UTC), decided_by="owner"))
    await webhooks.deliver_due(ctx)
    bodies = verified(receiver, secret)
    assert sorted(b["kind"] for b in bodies) == ["payout.changed", "task.accepted"]
    assert [b["event_id"] for b in bodies if b["kind"] == "task.accepted"] == [env.event_id]
    assert all(d.status == "delivered" and len(d.log) == 1 for d in await deliveries(ctx, sid))
    await webhooks.deliver_due(ctx)                       # nothing is due any more
    assert len(receiver.seen) == 2

    # the receiver goes down; an acceptance happens; attempts back off 10 s, then 20 s
    await receiver.stop()
    gone = await deliver(ctx, webhooks.on_accepted, accepted(3))

    async def missed_one() -> rpc.WebhookDelivery:
        [d] = [d for d in await deliveries(ctx, sid) if d.event_id == gone.event_id]
        return d

    await webhooks.deliver_due(ctx)
    missed = await missed_one()
    assert (missed.status, missed.attempts) == ("pending", 1)
    assert missed.next_attempt_at == clock.now + webhooks_delay(1)
    await webhooks.deliver_due(ctx)                       # not due yet: not sent again
    assert (await missed_one()).attempts == 1
    clock.advance(BASE_S)
    await webhooks.deliver_due(ctx)
    missed = await missed_one()
    assert missed.attempts == 2 and missed.next_attempt_at == clock.now + webhooks_delay(2)

    # back up: the missed one arrives once, at the next due attempt
    await receiver.start()
    clock.advance(2 * BASE_S)
    await webhooks.deliver_due(ctx)
    await webhooks.deliver_due(ctx)
    bodies = verified(receiver, secret)
    assert [b["data"]["assignment_id"] for b in bodies[2:]] == ["as-3"]
    missed = await missed_one()
    assert (missed.status, missed.attempts) == ("delivered", 3)
    assert [a.status_code for a in missed.log] == [None, None, 204]
    assert missed.log[0].error and missed.log[1].error and missed.log[2].error is None

    # a manual redeliver sends it again, freshly signed
    again = await webhooks.redeliver(rpc.Redeliver(actor=ADMIN,
                                                   delivery_id=missed.delivery_id), ctx)
    assert again.status == "pending"
    await webhooks.deliver_due(ctx)
    bodies = verified(receiver, secret)
    assert [b["delivery_id"] for b in bodies[3:]] == [missed.delivery_id]
    assert len((await missed_one()).log) == 4
    await receiver.stop()


async def test_a_sandbox_event_is_delivered_marked(hook_ctx: Context) -> None:
    """A requester tests an integration with a sandbox pool: its decisions arrive like any
    other, with ``sandbox: true`` at the top (and in the data); real ones say false."""
    ctx = hook_ctx
    receiver = Receiver()
    await receiver.start()
    made = await webhooks.create_webhook(rpc.WebhookCreate(
        actor=ADMIN, url=receiver.url, kinds=["task.accepted"]), ctx)
    tried = accepted(10).model_copy(update={"sandbox": True, "worker_id": "owner"})
    await deliver(ctx, webhooks.on_accepted, tried)
    await deliver(ctx, webhooks.on_accepted, accepted(11))
    await webhooks.deliver_due(ctx)
    bodies = {b["data"]["assignment_id"]: b for b in verified(receiver, made.secret)}
    assert (bodies["as-10"]["sandbox"], bodies["as-10"]["data"]["sandbox"]) == (True, True)
    assert (bodies["as-11"]["sandbox"], bodies["as-11"]["data"]["sandbox"]) == (False, False)
    await receiver.stop()


def webhooks_delay(attempt: int):
    from datetime import timedelta

    return timedelta(seconds=webhooks.backoff_s(attempt, BASE_S, 3600))


@pytest.mark.parametrize(("url", "code"), [
    ("ftp://example.com/hook", "webhook_url_invalid"),
    ("javascript:alert(1)//x", "webhook_url_invalid"),
    ("http://user:pw@example.com/hook", "webhook_url_invalid"),
    ("http://127.0.0.1:8080/hook", "webhook_url_private"),
    ("http://localhost/hook", "webhook_url_private"),
    ("http://10.1.2.3/hook", "webhook_url_private"),
    ("http://169.254.169.254/latest/meta-data", "webhook_url_private"),
    ("http://[::1]/hook", "webhook_url_private"),
])
async def test_urls_that_are_not_http_or_point_inside_are_refused(
        database_url: str, clock, url: str, code: str) -> None:
    upgrade(SERVICE_DIR, database_url)
    ctx = context(database_url, clock)                   # production default: no private
    try:
        with pytest.raises(ServiceError) as err:
            await webhooks.create_webhook(rpc.WebhookCreate(
                actor=ADMIN, url=url, kinds=["pool.closed"]), ctx)
        assert err.value.code == code
        ok = await webhooks.create_webhook(rpc.WebhookCreate(
            actor=ADMIN, url="https://example.com/hook", kinds=["pool.closed"]), ctx)
        assert ok.secret and ok.url == "https://example.com/hook"
    finally:
        await ctx.db.engine.dispose()


async def test_a_name_resolving_inside_is_not_sent_to(hook_ctx: Context, database_url: str,
                                                      clock) -> None:
    strict = context(database_url, clock)
    try:
        # made while private targets were allowed, sent once they are not
        made = await webhooks.create_webhook(rpc.WebhookCreate(
            actor=ADMIN, url="http://localhost:9/hook", kinds=["task.accepted"]), hook_ctx)
        await deliver(strict, webhooks.on_accepted, accepted(9))
        await webhooks.deliver_due(strict)
        [d] = await deliveries(strict, made.subscription_id)
        assert d.attempts == 1 and "private" in (d.log[0].error or "")
    finally:
        await strict.db.engine.dispose()
