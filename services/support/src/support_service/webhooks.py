"""Webhooks: an admin (acting for a requester) subscribes a URL to event kinds; every
matching event becomes one delivery row per subscription in the same transaction as the
consumer's inbox (so a redelivered event adds nothing), and a periodic sender POSTs due
deliveries with httpx, signed, retrying with exponential backoff until the receiver
answers 2xx or the attempts run out; every attempt is logged; an admin may redeliver.

Signature: ``X-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``
with ``X-Webhook-Timestamp`` (unix seconds, new on every attempt), so a receiver can refuse
stale or replayed requests. The body is JSON: ``delivery_id``, ``event_id``, ``kind``,
``occurred_at``, ``data`` (the event's own fields; events carry no price or share).

Where it goes: the URL's host is resolved at every attempt, every address is checked (no
loopback, private or link-local target unless allowed), and the request is sent to the
checked address with the name in ``Host`` (and as the TLS server name), so a record that
changes between the check and the connection cannot point it inside.

The signing secret is shown once, at creation, and kept sealed (``servicekit.secretbox``,
``SUPPORT_WEBHOOK_SECRET_KEY``); a subscription made before sealing keeps its plain secret
until it is next used, when it is sealed (as is one sealed under a previous key).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from contracts.envelope import Envelope
from contracts.events import Event
from contracts.rpc import support as rpc
from servicekit.errors import Invalid, NotFound
from servicekit.router import Router
from servicekit.secretbox import InvalidToken, SecretBox
from servicekit.uow import UnitOfWork
from support_service.context import SupportContext
from support_service.store import SupportStore
from support_service.webhooks_store import webhook_view

log = logging.getLogger("support.webhooks")

router = Router()

SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"


# ------------------------------------------------------------------- pure rules


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex>``: HMAC-SHA256 over ``"<timestamp>." + body``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (and the tests): recompute, compare in constant time."""
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Seconds before the attempt after ``attempt`` (1-based): base, 2 base, 4 base, ..."""
    return float(min(max_s, base_s * 2 ** max(0, attempt - 1)))


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> str:
    """http(s) with a host and no credentials; a literal loopback/private/link-local
    address (or localhost) is refused unless ``allow_private``."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise Invalid("webhook_url_invalid", "the URL cannot be read") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("webhook_url_invalid", "the URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise Invalid("webhook_url_invalid", "the URL must not carry credentials")
    host = parts.hostname
    if not allow_private:
        try:
            private = _private(host)
        except ValueError:  # a name: resolved (and checked again) at every delivery
            private = host == "localhost" or host.endswith(".localhost")
        if private:
            raise Invalid("webhook_url_private",
                          "loopback, private and link-local addresses are refused")
    return url


async def _resolve(host: str) -> list[str]:
    """Every address of ``host`` (itself when it is an address literal)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def _pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL with its host replaced by ``address``, the Host header the receiver expects
    and, for https, the name TLS checks the certificate against (SNI): the request goes to
    the address that was checked, never to what a second lookup of the name returns (a name
    whose record changes between the check and the connection, "DNS rebinding", cannot
    point the request inside)."""
    parts = httpx.URL(url)
    literal = f"[{address}]" if ":" in address else address
    host_header = parts.netloc.decode("ascii").rsplit("@", 1)[-1]
    extensions: dict[str, Any] = {"sni_hostname": parts.host} if parts.scheme == "https" else {}
    return str(parts.copy_with(host=literal.strip("[]"))), {"Host": host_header}, extensions


# ------------------------------------------------------------------- fan-out


async def fan_out(uow: UnitOfWork[SupportStore], ctx: SupportContext, kind: str,
                  items: list[tuple[Any, Envelope]]) -> None:
    """One pending delivery per active subscription to ``kind`` for each event of a batch
    (the subscriptions are read once per batch: with none, the batch costs one query);
    ``sandbox`` in the body says an event is of a sandbox pool."""
    subs = await uow.store.subscribers(kind)
    if not subs:
        return
    now = ctx.clock()
    for event, env in items:
        for sub in subs:
            await uow.store.add_delivery({
                "delivery_id": str(uuid.uuid4()), "subscription_id": sub.subscription_id,
                "event_id": env.event_id, "kind": kind, "status": "pending", "attempts": 0,
                "give_up_after": ctx.settings.webhook_max_attempts, "next_attempt_at": now,
                "created_at": now, "payload": {
                    "event_id": env.event_id, "kind": kind, "type": env.type,
                    "occurred_at": env.occurred_at.isoformat(),
                    # a sandbox pool's events are delivered too, marked, so a requester
                    # can try an integration without real work
                    "sandbox": bool(getattr(event, "sandbox", False)),
                    "data": event.model_dump(mode="json")}})


def subscribed(kind: str) -> Callable[[SupportContext], Awaitable[bool]]:
    """The consumers' ``wanted`` check: is any subscription to ``kind`` active? Without one
    a batch is acked after this one read, with no transaction and no inbox rows (the fan-out
    would write nothing); a subscription created meanwhile sees the next events."""

    async def wanted(ctx: SupportContext) -> bool:
        async with ctx.read() as r:
            return bool(await r.store.subscribers(kind))

    return wanted


def _fan_out_consumer(subject: str, name: str, kind: str) -> Callable[..., Awaitable[None]]:
    """The batch consumer of ``subject`` that writes one delivery per subscription to
    ``kind`` for each event (acked after one read while nothing subscribes to ``kind``)."""

    async def handler(items: list[tuple[Event, Envelope]], uow: UnitOfWork[SupportStore],
                      ctx: SupportContext) -> None:
        await fan_out(uow, ctx, kind, items)

    handler.__name__ = handler.__qualname__ = name.replace("-", "_")
    return router.consume_batch(subject, name=name, wanted=subscribed(kind))(handler)


# every decision event reaches these consumers: batches keep them to one transaction (and
# one subscription lookup) per batch instead of one per event, and with no subscription to
# the kind, to one read per batch; a result is ready once per task and method
on_accepted = _fan_out_consumer("review.accepted", "webhook-accepted", "task.accepted")
on_rejected = _fan_out_consumer("review.rejected", "webhook-rejected", "task.rejected")
on_pool_closed = _fan_out_consumer("task.pool_closed", "webhook-pool-closed", "pool.closed")
on_result_ready = _fan_out_consumer("task.result_ready", "webhook-result-ready",
                                    "result.ready")
on_payout_requested = _fan_out_consumer("ledger.payout.requested", "webhook-payout-requested",
                                        "payout.changed")
on_payout_approved = _fan_out_consumer("ledger.payout.approved", "webhook-payout-approved",
                                       "payout.changed")
on_payout_rejected = _fan_out_consumer("ledger.payout.rejected", "webhook-payout-rejected",
                                       "payout.changed")


# ------------------------------------------------------------------- sending


def _body(row: Any) -> bytes:
    payload = {"delivery_id": row.delivery_id, **row.payload}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


@functools.lru_cache(maxsize=4)
def _box_for(keys: tuple[str, ...]) -> SecretBox:
    return SecretBox(*keys)


def _box(ctx: SupportContext) -> SecretBox:
    return _box_for(tuple(ctx.settings.webhook_keys()))


async def _signing_secret(ctx: SupportContext, row: Any) -> str | None:
    """The subscription's secret, sealed again under the newest key when it was plain (made
    before sealing) or sealed under a previous key; None when no configured key opens it."""
    box, stored = _box(ctx), row.secret
    if not stored.startswith(SecretBox.PREFIX):
        secret = stored
    else:
        try:
            secret = box.open(stored)
        except InvalidToken:
            return None
        if box.sealed_with_newest(stored):
            return secret
    async with ctx.uow() as uow:
        await uow.store.reseal_secret(row.subscription_id, box.seal(secret))
    return secret


async def _send(client: httpx.AsyncClient, row: Any, secret: str, *,
                allow_private: bool) -> tuple[int | None, str | None]:
    host = urlsplit(row.url).hostname or ""
    try:
        addresses = await _resolve(host)
        if not addresses:
            return None, "the host has no address"
        if not allow_private and any(_private(a) for a in addresses):
            return None, "refused: the host resolves to a private address"
        url, host_header, extensions = _pinned(row.url, addresses[0])
        body, ts = _body(row), int(time.time())
        r = await client.post(url, content=body, extensions=extensions, headers={
            **host_header, "Content-Type": "application/json", TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(secret, ts, body), "X-Webhook-Event": row.kind,
            "X-Webhook-Delivery": row.delivery_id, "User-Agent": "microtask-webhooks/1"})
    except Exception as exc:  # any failure is this attempt's: logged, then retried
        return None, f"{type(exc).__name__}: {exc}"[:500]
    return r.status_code, None if 200 <= r.status_code < 300 else f"HTTP {r.status_code}"


@router.periodic(lambda s: s.webhook_sweep_s, changes_state=False)
async def deliver_due(ctx: SupportContext) -> None:
    """Send what is due, a batch at a time; a failure is retried after the backoff."""
    s = ctx.settings
    now = ctx.clock()
    lease = now + timedelta(seconds=s.webhook_timeout_s * 2 + 5)
    async with ctx.uow() as uow:
        rows = await uow.store.claim_due(now, lease, s.webhook_batch)
    if not rows:
        return
    async with httpx.AsyncClient(timeout=s.webhook_timeout_s, follow_redirects=False,
                                 trust_env=False) as client:
        # concurrently: one slow receiver does not hold up the others' deliveries
        await asyncio.gather(*(_attempt(ctx, client, row) for row in rows))


async def _attempt(ctx: SupportContext, client: httpx.AsyncClient, row: Any) -> None:
    started = time.monotonic()
    secret = await _signing_secret(ctx, row)
    code: int | None
    error: str | None
    if secret is None:
        code, error = None, ("the signing secret cannot be opened with the configured keys "
                             "(SUPPORT_WEBHOOK_SECRET_KEY changed without keeping the old one "
                             "in SUPPORT_WEBHOOK_PREVIOUS_KEYS?)")
    else:
        code, error = await _send(client, row, secret,
                                  allow_private=ctx.settings.webhook_allow_private)
    await _record(ctx, row, code, error, int((time.monotonic() - started) * 1000))


async def _record(ctx: SupportContext, row: Any, code: int | None, error: str | None,
                  duration_ms: int) -> None:
    s, at = ctx.settings, ctx.clock()
    attempt = row.attempts + 1
    if error is None:
        status, next_at = "delivered", None
    elif attempt >= row.give_up_after:
        status, next_at = "failed", None
    else:
        status = "pending"
        next_at = at + timedelta(seconds=backoff_s(attempt, s.webhook_backoff_base_s,
                                                   s.webhook_backoff_max_s))
    async with ctx.uow() as uow:
        await uow.store.record_attempt(delivery_id=row.delivery_id, attempt=attempt, at=at,
                                       status_code=code, error=error, duration_ms=duration_ms,
                                       status=status, next_attempt_at=next_at)
    if error is not None:
        log.info("webhook delivery %s attempt %d: %s", row.delivery_id, attempt, error)


# ------------------------------------------------------------------- RPCs


@router.rpc(rpc.CREATE_WEBHOOK)
async def create_webhook(req: rpc.WebhookCreate, ctx: SupportContext) -> rpc.WebhookCreated:
    """Subscribe; the secret is in this reply only."""
    url = check_url(req.url, allow_private=ctx.settings.webhook_allow_private)
    secret = secrets.token_urlsafe(32)
    row: dict[str, Any] = {
        "subscription_id": str(uuid.uuid4()), "url": url, "kinds": sorted(set(req.kinds)),
        "description": req.description, "secret": _box(ctx).seal(secret), "active": True,
        "created_by": req.actor.user_id, "created_at": ctx.clock()}
    async with ctx.uow() as uow:
        await uow.store.add_webhook(row)
    return rpc.WebhookCreated(**{**row, "secret": secret})


@router.rpc(rpc.LIST_WEBHOOKS)
async def list_webhooks(req: rpc.WebhookList, ctx: SupportContext) -> rpc.Webhooks:
    """Subscriptions, newest first (never their secrets)."""
    async with ctx.read() as r:
        rows, total = await r.store.webhooks(limit=req.page.limit, offset=req.page.offset)
    return rpc.Webhooks(items=[webhook_view(row) for row in rows], total=total)


@router.rpc(rpc.DISABLE_WEBHOOK)
async def disable_webhook(req: rpc.WebhookRef, ctx: SupportContext) -> rpc.Webhook:
    """No new deliveries for this subscription (pending ones are still sent)."""
    async with ctx.uow() as uow:
        if await uow.store.webhook(req.subscription_id) is None:
            raise NotFound("webhook_not_found", f"no webhook {req.subscription_id}")
        await uow.store.disable_webhook(req.subscription_id)
        return webhook_view(await uow.store.webhook(req.subscription_id))


@router.rpc(rpc.LIST_DELIVERIES)
async def list_deliveries(req: rpc.DeliveryList, ctx: SupportContext) -> rpc.WebhookDeliveries:
    """A subscription's deliveries, newest first, each with its attempts."""
    async with ctx.read() as r:
        if await r.store.webhook(req.subscription_id) is None:
            raise NotFound("webhook_not_found", f"no webhook {req.subscription_id}")
        items, total = await r.store.deliveries(req)
    return rpc.WebhookDeliveries(items=items, total=total)


@router.rpc(rpc.REDELIVER)
async def redeliver(req: rpc.Redeliver, ctx: SupportContext) -> rpc.WebhookDelivery:
    """Send again now (delivered or failed ones too), with a fresh round of attempts."""
    async with ctx.uow() as uow:
        if not await uow.store.redeliver(req.delivery_id, now=ctx.clock(),
                                         more=ctx.settings.webhook_max_attempts):
            raise NotFound("delivery_not_found", f"no delivery {req.delivery_id}")
        found = await uow.store.delivery(req.delivery_id)
    assert found is not None
    return found
