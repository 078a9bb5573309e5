"""Durable JetStream pull consumers: batches, inbox idempotency, retries and a DLQ.

One plain nats-py loop per consumer (:class:`PullLoop`) keeps pull requests open on the
server, so messages stream in as they are published, and hands whatever has arrived to
:class:`ConsumerRunner` as one batch (the way nats.go's ``Consume`` works). The runner:

* applies a batch in one unit of work: the inbox claim, the handler(s), the outbox,
  one commit; then the acks. Nothing is acked before its effect committed;
* refuses at once (dead-letters) what can never be applied: an envelope that does not
  parse, an unknown schema version, a type that does not match the subject it came on,
  or an ``UnprocessableEvent``;
* sets aside what only has to wait (a lock timeout, the database away, ``NotReady``) and
  retries it with a capped backoff while the others go on, sending in-progress acks so the
  server neither redelivers it nor counts a delivery; it is never dead-lettered for waiting;
* naks anything else with a backoff, and dead-letters it on its ``max_deliver``-th
  delivery, with the reason in headers;
* a message whose deliveries run out without any handler error (the process died while
  handling it: a crash loop) is caught from JetStream's MAX_DELIVERIES advisory, which
  the ADVISORIES stream keeps, and dead-lettered by :class:`AdvisoryForwarder`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from contracts.envelope import Envelope
from contracts.events import Event, parse_event
from contracts.streams import MAX_DELIVERIES_ADVISORY, dlq_subject, stream_for_subject
from servicekit.errors import NotReady, UnprocessableEvent
from servicekit.inbox import claim_many

log = logging.getLogger("servicekit.consumer")

CONSUMED = Counter("servicekit_events_consumed_total", "Events handled",
                   ["service", "consumer", "outcome"])
HANDLE_SECONDS = Histogram("servicekit_event_handle_seconds", "Event handling time",
                           ["service", "consumer"])
BATCH_SIZE = Histogram("servicekit_consumer_batch_messages",
                       "Messages applied per consumer transaction", ["service", "consumer"],
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))
DEAD_LETTERED = Counter("servicekit_dead_lettered_total", "Messages sent to the DLQ",
                        ["service", "consumer", "source"])
WAITS = Counter("servicekit_consumer_waits_total",
                "Batches retried in place because they had to wait (lock, database, "
                "dependency)", ["service", "consumer"])
_DLQ_SOURCES = ("unprocessable", "handler_error", "max_deliveries_advisory")
CONSUMED_OUTCOMES = ("ok", "duplicate", "retry", "dead_lettered")

# SQLSTATE classes and codes that mean "try again later", not "this message is bad".
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")  # connection, resources, operator action
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "55006"}  # serialization, deadlock, lock


class PermanentFailure(Exception):
    """A message that can never be applied (refused before any handler ran)."""


def _sqlstate(exc: BaseException) -> str | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        code = getattr(cur, "sqlstate", None) or getattr(cur, "pgcode", None)
        if isinstance(code, str):
            return code
        cur = getattr(cur, "orig", None) or cur.__cause__
    return None


def is_transient(exc: BaseException) -> bool:
    """The failure says "later", not "never": retry in place without counting it."""
    if isinstance(exc, (NotReady, PoolTimeout, InterfaceError, ConnectionError, OSError,
                        TimeoutError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = _sqlstate(exc)
        if state is not None:
            return state in _TRANSIENT_SQLSTATES or state[:2] in _TRANSIENT_SQLSTATE_CLASSES
    return False


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, (PermanentFailure, UnprocessableEvent, ValidationError))


Handler = Callable[..., Awaitable[None]]


@dataclass
class EventConsumer:
    """A durable consumer of one subject (may be a wildcard) in one stream."""

    service: str
    name: str
    # one subject (may be a wildcard), or several of one stream: the durable filters on
    # all of them (the server then delivers nothing else)
    subject: str | tuple[str, ...]
    handler: Handler
    # handler(items, uow, ctx) once per batch instead of handler(event, env, uow, ctx)
    batch_handler: bool = False
    max_deliver: int = 8
    ack_wait_s: float = 30.0
    backoff_s: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0, 30.0, 60.0)
    batch_size: int = 50
    linger_s: float = 0.005  # how long a batch waits for more messages
    deliver_new_only: bool = False
    # a batch handler's cheap "is there anything to do" read (Router.consume_batch)
    wanted: Callable[[Any], Awaitable[bool]] | None = None
    stream: str = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.subject, str) and len(self.subject) == 1:
            self.subject = self.subject[0]
        streams = {stream_for_subject(s.replace(">", "x").replace("*", "x")).name
                   for s in self.subjects}
        if len(streams) != 1:
            raise ValueError(f"consumer {self.name}: its subjects are in streams "
                             f"{sorted(streams)}, not in one")
        self.stream = streams.pop()

    @property
    def subjects(self) -> tuple[str, ...]:
        return (self.subject,) if isinstance(self.subject, str) else self.subject

    @property
    def durable(self) -> str:
        return f"{self.service}__{self.name}"

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            name=self.durable,
            # a single subject as before (the durables made before keep their config)
            filter_subject=self.subject if isinstance(self.subject, str) else None,
            filter_subjects=None if isinstance(self.subject, str) else list(self.subject),
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            max_deliver=self.max_deliver,
            deliver_policy=DeliverPolicy.NEW if self.deliver_new_only else DeliverPolicy.ALL,
            max_ack_pending=max(1000, self.batch_size * 4),
        )

    def delay_for(self, delivered: int) -> float:
        i = min(max(delivered - 1, 0), len(self.backoff_s) - 1)
        return self.backoff_s[i]


def dlq_headers(*, reason: str, error_type: str, error_message: str, consumer: str,
                stream: str, subject: str, seq: int, deliveries: int,
                original: dict[str, str] | None = None) -> dict[str, str]:
    headers = {k: v for k, v in (original or {}).items() if k.lower() == "traceparent"}
    headers.update({
        # One DLQ entry per (stream, seq, consumer) even if both paths report it.
        "Nats-Msg-Id": f"dlq:{stream}:{seq}:{consumer}",
        "Dlq-Reason": reason,
        "Dlq-Error-Type": error_type,
        "Dlq-Error-Message": error_message[:2000].replace("\r", " ").replace("\n", " "),
        "Dlq-Consumer": consumer,
        "Dlq-Stream": stream,
        "Dlq-Original-Subject": subject,
        "Dlq-Stream-Seq": str(seq),
        "Dlq-Deliveries": str(deliveries),
    })
    return headers


def parse_message(raw: Msg) -> tuple[Envelope, Event]:
    """The envelope and its event, or :class:`PermanentFailure`."""
    try:
        env = Envelope.model_validate_json(raw.data)
    except ValidationError as exc:
        raise PermanentFailure(f"not an envelope: {exc.error_count()} error(s)") from exc
    if env.type != raw.subject:
        raise PermanentFailure(f"an envelope of type {env.type!r} arrived on {raw.subject!r}")
    try:
        return env, parse_event(env.type, env.schema_version, env.data)
    except KeyError as exc:
        raise PermanentFailure(f"unknown event {env.type} v{env.schema_version}") from exc
    except ValidationError as exc:
        raise PermanentFailure(f"{env.type} v{env.schema_version} does not match its schema: "
                               f"{exc.errors(include_url=False)[:3]}") from exc


Item = tuple[Msg, Envelope, Event]


@dataclass
class _Letter:
    """A dead letter's message as the parser and the handlers see it (no acks)."""

    subject: str
    data: bytes
_WAIT_FIRST_S, _WAIT_MAX_S = 0.1, 5.0


@dataclass
class Parked:
    item: Item
    next_at: float
    delay: float


class ConsumerRunner:
    """Applies one consumer's batches through the unit of work."""

    def __init__(self, consumer: EventConsumer, *, unit: Callable[[], Any], inbox: Table,
                 js: JetStreamContext, context: Any) -> None:
        self.c = consumer
        self.unit = unit  # () -> async context manager of a UnitOfWork
        self.inbox = inbox
        self.js = js
        self.ctx = context
        self.stopping = False
        self._parked: dict[int, Parked] = {}
        self._retrying: asyncio.Task[None] | None = None
        self._one_at_a_time = asyncio.Lock()  # this consumer's transactions, one after another
        for source in _DLQ_SOURCES:  # a series from the start: the first dead letter counts
            DEAD_LETTERED.labels(self.c.service, self.c.name, source)
        for outcome in CONSUMED_OUTCOMES:  # rates and ratios see the first event too
            CONSUMED.labels(self.c.service, self.c.name, outcome)
        WAITS.labels(self.c.service, self.c.name)

    async def handle_batch(self, raws: list[Msg]) -> None:
        BATCH_SIZE.labels(self.c.service, self.c.name).observe(len(raws))
        parsed: list[Item] = []
        for raw in raws:
            try:
                env, event = parse_message(raw)
            except PermanentFailure as exc:
                await self.dead_letter(raw, exc, reason="unprocessable")
                continue
            parsed.append((raw, env, event))
        if not parsed:
            return
        async with self._in_progress([p[0] for p in parsed]):
            await self._apply_all(parsed)

    async def _apply_all(self, parsed: list[Item]) -> None:
        try:
            async with self._one_at_a_time:
                with HANDLE_SECONDS.labels(self.c.service, self.c.name).time():
                    if self.c.wanted is not None and not await self.c.wanted(self.ctx):
                        fresh = len(parsed)  # nothing to do: no transaction, no inbox rows
                    else:
                        fresh = await self._apply(parsed)
        except Exception as exc:
            if len(parsed) > 1 and not self.stopping:
                log.info("consumer %s: batch of %d failed (%s); applying one by one",
                         self.c.durable, len(parsed), type(exc).__name__)
                for item in parsed:
                    await self._apply_all([item])
            elif is_transient(exc) and not self.stopping:
                self._park(parsed[0], exc)
            else:
                await self._failed(parsed[0][0], exc)
            return
        for raw, _, _ in parsed:
            await raw.ack()
        CONSUMED.labels(self.c.service, self.c.name, "ok").inc(fresh)
        if len(parsed) > fresh:
            CONSUMED.labels(self.c.service, self.c.name, "duplicate").inc(len(parsed) - fresh)

    async def _apply(self, parsed: list[Item]) -> int:
        async with self.unit() as uow:
            new_ids = await claim_many(uow.conn, self.inbox, self.c.durable,
                                       [env.event_id for _, env, _ in parsed])
            items = []
            for _, env, event in parsed:
                if env.event_id in new_ids:
                    new_ids.discard(env.event_id)  # a duplicate within the batch
                    items.append((event, env))
            if self.c.batch_handler:
                if items:
                    await self.c.handler(items, uow, self.ctx)
            else:
                for event, env in items:
                    await self.c.handler(event, env, uow, self.ctx)
        return len(items)

    async def replay(self, subject: str, data: bytes) -> str:
        """Apply one dead-lettered message again, through this consumer only (its inbox
        makes it idempotent): ``applied`` or ``duplicate``. Raises PermanentFailure when
        the message still cannot be parsed; a handler's error propagates."""
        raw = _Letter(subject=subject, data=data)
        env, event = parse_message(raw)  # type: ignore[arg-type]
        async with self._one_at_a_time:
            fresh = await self._apply([(raw, env, event)])  # type: ignore[list-item]
        outcome = "applied" if fresh else "duplicate"
        CONSUMED.labels(self.c.service, self.c.name, "ok" if fresh else "duplicate").inc()
        return outcome

    # ------------------------------------------------------------------ waiting

    def _park(self, item: Item, exc: BaseException) -> None:
        """Keep a message that has to wait aside, in progress, and go on with the others
        (events carry no order a consumer may rely on): retried with a capped backoff until
        it applies; never dead-lettered for waiting, never holding up the rest."""
        raw = item[0]
        key = id(raw)
        before = self._parked.get(key)
        delay = min(before.delay * 2, _WAIT_MAX_S) if before else _WAIT_FIRST_S
        self._parked[key] = Parked(item, time.monotonic() + delay, delay)
        WAITS.labels(self.c.service, self.c.name).inc()
        log.warning("consumer %s: %s must wait (%s: %s); retrying in %.1fs", self.c.durable,
                    raw.subject, type(exc).__name__, str(exc)[:200], delay)
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.create_task(self._retry_parked(),
                                                 name=f"{self.c.durable}-waits")

    async def _retry_parked(self) -> None:
        beat = 0.0
        while self._parked and not self.stopping:
            now = time.monotonic()
            if now - beat >= self.c.ack_wait_s / 3:  # parked messages stay ours
                beat = now
                for parked in list(self._parked.values()):
                    with contextlib.suppress(Exception):
                        await parked.item[0].in_progress()
            due = [p for p in self._parked.values() if p.next_at <= now]
            for parked in due:
                parked.next_at = float("inf")  # being retried: not due again meanwhile
                await self._apply_all([parked.item])  # parks it again if it must still wait
                if self._parked.get(id(parked.item[0])) is parked:
                    del self._parked[id(parked.item[0])]  # applied, or failed for good
            soonest = min((p.next_at for p in self._parked.values()), default=now + 0.05)
            await asyncio.sleep(max(0.01, min(soonest - time.monotonic(),
                                               self.c.ack_wait_s / 3)))

    async def close(self) -> None:
        """Stop retrying; hand parked messages back to the server for another replica."""
        self.stopping = True
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._retrying
        for parked in list(self._parked.values()):
            with contextlib.suppress(Exception):
                await parked.item[0].nak()
        self._parked.clear()

    @property
    def waiting(self) -> int:
        """How many messages are parked, waiting."""
        return len(self._parked)

    async def _failed(self, raw: Msg, exc: BaseException) -> None:
        if self.stopping and is_transient(exc):
            await raw.nak()  # another replica (or this one after a restart) takes it now
            return
        delivered = raw.metadata.num_delivered
        if is_permanent(exc):
            await self.dead_letter(raw, exc, reason="unprocessable")
        elif delivered >= self.c.max_deliver:
            await self.dead_letter(raw, exc, reason="handler_error")
        else:
            delay = self.c.delay_for(delivered)
            log.warning("consumer %s: %s on %s (delivery %d/%d), retry in %.1fs",
                        self.c.durable, type(exc).__name__, raw.subject, delivered,
                        self.c.max_deliver, delay, exc_info=exc)
            await raw.nak(delay=delay)
            CONSUMED.labels(self.c.service, self.c.name, "retry").inc()

    async def dead_letter(self, raw: Msg, exc: BaseException, *, reason: str) -> None:
        meta = raw.metadata
        log.error("consumer %s: dead-lettering %s seq=%s after %d deliveries: %s: %s",
                  self.c.durable, raw.subject, meta.sequence.stream, meta.num_delivered,
                  type(exc).__name__, exc)
        await self.js.publish(
            dlq_subject(self.c.service, self.c.name), raw.data,
            headers=dlq_headers(
                reason=reason, error_type=type(exc).__qualname__, error_message=str(exc),
                consumer=self.c.durable, stream=meta.stream, subject=raw.subject,
                seq=meta.sequence.stream, deliveries=meta.num_delivered,
                original=raw.headers))
        await raw.ack()
        DEAD_LETTERED.labels(self.c.service, self.c.name, reason).inc()
        CONSUMED.labels(self.c.service, self.c.name, "dead_lettered").inc()

    @contextlib.asynccontextmanager
    async def _in_progress(self, raws: list[Msg]) -> Any:
        """While the batch is applied, tell the server every third of ``ack_wait`` that
        it is still being worked on, so a slow handler's messages are not redelivered."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.c.ack_wait_s / 3)
                for raw in raws:
                    with contextlib.suppress(Exception):
                        await raw.in_progress()

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


_STATUS_HEARTBEAT = "100"
_PENDING = "Nats-Pending-Messages"


class PullLoop:
    """Keeps pull requests open for one durable and hands over what arrives in batches.

    At most about two batches are requested ahead; a request expires after
    ``expires_s`` and carries idle heartbeats, so a request lost with a JetStream
    leader or a reconnect is noticed within ``2 * heartbeat_s + 0.25`` s and asked again
    (0.75 s: after an election the new consumer leader gets a request within a second).
    """

    def __init__(self, nc: NATS, consumer: EventConsumer,
                 on_batch: Callable[[list[Msg]], Awaitable[None]], *,
                 expires_s: float = 5.0, heartbeat_s: float = 0.25) -> None:
        self.nc = nc
        self.c = consumer
        self.on_batch = on_batch
        self.expires_s = expires_s
        self.heartbeat_s = heartbeat_s
        self.next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{consumer.stream}.{consumer.durable}"
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._outstanding = 0
        self._last_seen = 0.0
        self._inbox = ""
        self._sub: Any = None
        self._stopping = False

    async def _on_message(self, msg: Msg) -> None:
        self._last_seen = time.monotonic()
        status = msg.headers.get("Status") if msg.headers and not msg.data else None
        if status is not None:
            if status != _STATUS_HEARTBEAT:
                # 408 request expired, 409 limits or leadership change: what that request
                # still owed us will not come
                left = (msg.headers or {}).get(_PENDING)
                self._outstanding = max(0, self._outstanding - int(left)) if left else 0
            return
        self._outstanding = max(0, self._outstanding - 1)
        self._queue.put_nowait(msg)

    async def _request_more(self) -> None:
        if self._outstanding > self.c.batch_size or not self.nc.is_connected:
            return
        want = self.c.batch_size * 2 - self._outstanding
        body = json.dumps({"batch": want, "expires": int(self.expires_s * 1e9),
                           "idle_heartbeat": int(self.heartbeat_s * 1e9)}).encode()
        self._outstanding += want
        self._last_seen = time.monotonic()
        try:
            await self.nc.publish(self.next_subject, body, reply=self._inbox)
        except Exception as exc:  # the bus is away: ask again once it is back
            self._outstanding = 0
            log.debug("consumer %s: pull request not sent: %s", self.c.durable, exc)

    async def run(self) -> None:
        self._inbox = self.nc.new_inbox()
        self._sub = await self.nc.subscribe(self._inbox, cb=self._on_message)
        try:
            while not self._stopping:
                if time.monotonic() - self._last_seen > 2 * self.heartbeat_s + 0.25:
                    self._outstanding = 0  # heartbeats stopped: the request is gone
                await self._request_more()
                try:
                    first = await asyncio.wait_for(self._queue.get(), self.heartbeat_s)
                except TimeoutError:
                    continue
                batch = [first]
                self._drain(batch)
                if len(batch) < self.c.batch_size and self.c.linger_s > 0:
                    await asyncio.sleep(self.c.linger_s)
                    self._drain(batch)
                await self._request_more()  # the server streams the next while we apply
                try:
                    await self.on_batch(batch)
                except asyncio.CancelledError:
                    raise
                except Exception:  # unacked messages are redelivered after ack_wait
                    log.exception("consumer %s: batch failed outside the handlers",
                                  self.c.durable)
        finally:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            while not self._queue.empty():  # fetched, never applied: give them back now
                with contextlib.suppress(Exception):
                    await self._queue.get_nowait().nak()

    def _drain(self, batch: list[Msg]) -> None:
        while len(batch) < self.c.batch_size and not self._queue.empty():
            batch.append(self._queue.get_nowait())

    def stop(self) -> None:
        self._stopping = True


class AdvisoryForwarder:
    """Dead-letters messages that exhausted deliveries without a recorded error."""

    def __init__(self, *, service: str, consumers: list[EventConsumer],
                 js: JetStreamContext) -> None:
        self.service = service
        self.by_durable = {c.durable: c for c in consumers}
        self.js = js

    @property
    def durable(self) -> str:
        return f"{self.service}__max-deliveries"

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            name=self.durable,
            filter_subjects=[f"{MAX_DELIVERIES_ADVISORY}.{c.stream}.{c.durable}"
                             for c in self.by_durable.values()],
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_deliver=-1,
        )

    def as_consumer(self) -> EventConsumer:
        """This forwarder as a consumer for a :class:`PullLoop` (its stream and durable)."""
        return EventConsumer(service=self.service, name="max-deliveries",
                             subject=f"{MAX_DELIVERIES_ADVISORY}.x", handler=_no_handler,
                             batch_size=10, linger_s=0.0)

    async def handle_batch(self, raws: list[Msg]) -> None:
        for raw in raws:
            await self.handle(raw)

    async def handle(self, raw: Msg) -> None:
        headers: dict[str, str]
        adv = json.loads(raw.data)
        stream, consumer, seq = adv["stream"], adv["consumer"], int(adv["stream_seq"])
        c = self.by_durable.get(consumer)
        name = c.name if c else consumer
        try:
            original = await self.js.get_msg(stream, seq)
        except Exception as exc:  # the message aged out of the stream: keep the facts
            log.error("max-deliveries advisory for %s seq=%s: original gone: %s",
                      consumer, seq, exc)
            data, subject, headers = b"", "?", {}
        else:
            data, subject = original.data or b"", original.subject or "?"
            headers = dict(original.headers or {})
        await self.js.publish(
            dlq_subject(self.service, name), data,
            headers=dlq_headers(
                reason="max_deliveries_exceeded",
                error_type="NoHandlerError",
                error_message="deliveries ran out without a handler error being recorded "
                              "(the consumer crashed or timed out while handling it)",
                consumer=consumer, stream=stream, subject=subject, seq=seq,
                deliveries=int(adv.get("deliveries", 0)), original=headers),
        )
        DEAD_LETTERED.labels(self.service, name, "max_deliveries_advisory").inc()
        await raw.ack()


async def _no_handler(*_args: Any) -> None:  # pragma: no cover - never called
    raise RuntimeError("the advisory forwarder handles its own messages")
