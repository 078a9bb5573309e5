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


async def test_the_request_goes_to_the_address_that_was_checked(
        hook_ctx: Context, database_url: str, clock, monkeypatch) -> None:
    """DNS rebinding: the name is looked up once per attempt and the connection is made to
    the address that lookup gave (checked), with the name in the Host header; a second lookup
    by the HTTP client, which could answer a private address, never happens."""
    receiver = Receiver()
    await receiver.start()
    lookups: list[str] = []
    real = __import__("asyncio").get_running_loop().getaddrinfo

    async def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        if host == "hooks.example.test":   # no such name: only this lookup knows it
            return await real("127.0.0.1", *args, **kwargs)
        return await real(host, *args, **kwargs)

    loop = __import__("asyncio").get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    url = f"http://hooks.example.test:{receiver.port}/hook"
    made = await webhooks.create_webhook(rpc.WebhookCreate(
        actor=ADMIN, url=url, kinds=["task.accepted"]), hook_ctx)
    await deliver(hook_ctx, webhooks.on_accepted, accepted(11))
    await webhooks.deliver_due(hook_ctx)
    [d] = await deliveries(hook_ctx, made.subscription_id)
    assert d.status == "delivered", d.log
    [req] = receiver.seen
    assert req["headers"]["Host"] == f"hooks.example.test:{receiver.port}"
    assert verified(receiver, made.secret)[0]["data"]["assignment_id"] == "as-11"
    assert lookups == ["hooks.example.test"]
    await receiver.stop()

    # the same name answering a private address at the next attempt is refused there
    strict = context(database_url, clock)
    try:
        await deliver(strict, webhooks.on_accepted, accepted(12))
        await webhooks.deliver_due(strict)
        refused = [x for x in await deliveries(strict, made.subscription_id)
                   if x.status != "delivered"]
        assert refused and "private" in (refused[0].log[0].error or "")
    finally:
        await strict.db.engine.dispose()


def test_pinned_url_keeps_port_path_query_and_names_tls_after_the_host() -> None:
    url, headers, ext = webhooks._pinned("https://hooks.example.com:8443/a/b?x=1", "203.0.113.7")
    assert url == "https://203.0.113.7:8443/a/b?x=1"
    assert headers == {"Host": "hooks.example.com:8443"} and ext == {"sni_hostname":
                                                                    "hooks.example.com"}
    url, headers, ext = webhooks._pinned("http://hooks.example.com/h", "2001:db8::1")
    assert url == "http://[2001:db8::1]/h" and headers == {"Host": "hooks.example.com"}
    assert ext == {}


async def _stored_secret(ctx: Context, sid: str) -> str:
    from sqlalchemy import text

    async with ctx.db.engine.connect() as conn:
        return str((await conn.execute(text(
            "SELECT secret FROM webhook_subscriptions WHERE subscription_id = :s"),
            {"s": sid})).scalar_one())


async def test_the_signing_secret_is_sealed_at_rest_and_rotates(
        hook_ctx: Context, database_url: str, clock) -> None:
    from sqlalchemy import text

    receiver = Receiver()
    await receiver.start()
    made = await webhooks.create_webhook(rpc.WebhookCreate(
        actor=ADMIN, url=receiver.url, kinds=["task.accepted"]), hook_ctx)
    stored = await _stored_secret(hook_ctx, made.subscription_id)
    assert stored.startswith("v1:") and made.secret not in stored

    # a row made before sealing (plain) is used, then sealed under the newest key
    async with hook_ctx.db.engine.begin() as conn:
        await conn.execute(text("UPDATE webhook_subscriptions SET secret = :p "
                                "WHERE subscription_id = :s"),
                           {"p": made.secret, "s": made.subscription_id})
    await deliver(hook_ctx, webhooks.on_accepted, accepted(21))
    await webhooks.deliver_due(hook_ctx)
    assert verified(receiver, made.secret)[-1]["data"]["assignment_id"] == "as-21"
    resealed = await _stored_secret(hook_ctx, made.subscription_id)
    assert resealed.startswith("v1:") and made.secret not in resealed

    # a new key with the old one kept as previous: still signs with the same secret and
    # seals it again under the new key
    rotated = context(database_url, clock, webhook_allow_private=True,
                      webhook_secret_key="a-new-key-" + "k" * 32,
                      webhook_previous_keys=["dev-webhook-secret-key-not-for-production"])
    lost = context(database_url, clock, webhook_allow_private=True,
                   webhook_secret_key="yet-another-key-" + "z" * 32)
    try:
        await deliver(rotated, webhooks.on_accepted, accepted(22))
        await webhooks.deliver_due(rotated)
        assert verified(receiver, made.secret)[-1]["data"]["assignment_id"] == "as-22"
        assert await _stored_secret(rotated, made.subscription_id) != resealed

        # without the key that sealed it: not sent, the attempt says why, nothing raised
        await deliver(lost, webhooks.on_accepted, accepted(23))
        await webhooks.deliver_due(lost)
        [d] = [x for x in await deliveries(lost, made.subscription_id)
               if x.status != "delivered"]
        assert d.attempts == 1 and "cannot be opened" in (d.log[0].error or "")
        assert len(receiver.seen) == 2
    finally:
        await rotated.db.engine.dispose()
        await lost.db.engine.dispose()
        await receiver.stop()
