"""Durable JetStream pull consumers with inbox idempotency, backoff and a DLQ.

* ack only after the effect (and its inbox row) committed;
* on error: nak with the configured backoff, until ``max_deliver``;
* on the last delivery: dead-letter to ``dlq.<service>.<consumer>`` with the
  reason in headers, wait for the PubAck, then ack;
* a message whose deliveries run out without any handler error (the process
  died while handling it: a crash loop) is caught from JetStream's
  MAX_DELIVERIES advisory, which the ADVISORIES stream keeps, and dead-lettered
  by :class:`AdvisoryForwarder`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.envelope import Envelope
from contracts.events import Event, parse_event
from contracts.streams import MAX_DELIVERIES_ADVISORY, dlq_subject, stream_for_subject
from servicekit.errors import UnprocessableEvent
from servicekit.outbox import recorded_events

log = logging.getLogger("servicekit.consumer")

Handler = Callable[[AsyncConnection, Any, Envelope], Awaitable[None]]

CONSUMED = Counter("servicekit_events_consumed_total", "Events handled",
                   ["service", "consumer", "outcome"])
HANDLE_SECONDS = Histogram("servicekit_event_handle_seconds", "Event handling time",
                           ["service", "consumer"])
BATCH_SIZE = Histogram("servicekit_consumer_batch_messages",
                       "Messages applied per consumer transaction", ["service", "consumer"],
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))
DEAD_LETTERED = Counter("servicekit_dead_lettered_total", "Messages sent to the DLQ",
                        ["service", "consumer", "source"])


@dataclass
class EventConsumer:
    """A durable consumer of one subject (may be a wildcard) in one stream."""

    service: str
    name: str
    subject: str
    handler: Handler
    max_deliver: int = 5
    # handler(conn, [(event, envelope), ...]) once per batch instead of once per event
    batch_handler: bool = False
    ack_wait_s: float = 30.0
    backoff_s: tuple[float, ...] = (1.0, 5.0, 15.0, 30.0, 60.0)
    batch_size: int = 50
    linger_s: float = 0.005  # how long a batch waits for more messages (FetchCoalescer)
    deliver_new_only: bool = False
    stream: str = field(init=False)

    def __post_init__(self) -> None:
        self.stream = stream_for_subject(self.subject.replace(">", "x").replace("*", "x")).name

    @property
    def durable(self) -> str:
        return f"{self.service}__{self.name}"

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            name=self.durable,
            filter_subject=self.subject,
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


class ConsumerRunner:
    """Runs one EventConsumer's messages through the unit of work."""

    def __init__(self, consumer: EventConsumer, *, begin: Callable[[], Any], inbox: Any,
                 js: JetStreamContext, after_commit: Callable[[], None]) -> None:
        self.c = consumer
        self.begin = begin
        self.inbox = inbox
        self.js = js
        self.after_commit = after_commit

    async def handle(self, raw: Msg) -> None:
        from servicekit.inbox import claim

        meta = raw.metadata
        delivered = meta.num_delivered
        try:
            with HANDLE_SECONDS.labels(self.c.service, self.c.name).time():
                env = Envelope.model_validate_json(raw.data)
                event: Event = parse_event(env.type, env.schema_version, env.data)
                async with self.begin() as conn:
                    recorded_events(conn)
                    fresh = await claim(conn, self.inbox, self.c.durable, env.event_id)
                    if fresh:
                        if self.c.batch_handler:
                            await self.c.handler(conn, [(event, env)])  # type: ignore[call-arg]
                        else:
                            await self.c.handler(conn, event, env)
                    recorded = recorded_events(conn)
                if recorded:
                    self.after_commit()
            await raw.ack()
            CONSUMED.labels(self.c.service, self.c.name, "ok" if fresh else "duplicate").inc()
        except Exception as exc:
            permanent = isinstance(exc, (UnprocessableEvent, ValidationError))
            if permanent or delivered >= self.c.max_deliver:
                log.error("consumer %s: giving up on %s seq=%s after %d deliveries: %s: %s",
                          self.c.durable, raw.subject, meta.sequence.stream, delivered,
                          type(exc).__name__, exc)
                await self.js.publish(
                    dlq_subject(self.c.service, self.c.name), raw.data,
                    headers=dlq_headers(
                        reason="unprocessable" if permanent else "handler_error",
                        error_type=type(exc).__qualname__,
                        error_message=str(exc), consumer=self.c.durable, stream=meta.stream,
                        subject=raw.subject, seq=meta.sequence.stream, deliveries=delivered,
                        original=raw.headers),
                )
                await raw.ack()
                DEAD_LETTERED.labels(self.c.service, self.c.name,
                                     "unprocessable" if permanent else "handler_error").inc()
                CONSUMED.labels(self.c.service, self.c.name, "dead_lettered").inc()
            else:
                delay = self.c.delay_for(delivered)
                log.warning("consumer %s: %s on %s (delivery %d/%d), retry in %.1fs",
                            self.c.durable, type(exc).__name__, raw.subject, delivered,
                            self.c.max_deliver, delay, exc_info=True)
                await raw.nak(delay=delay)
                CONSUMED.labels(self.c.service, self.c.name, "retry").inc()


    async def handle_batch(self, raws: list[Msg]) -> None:
        """Apply a fetched batch in one transaction: one commit, then the acks.

        If anything in the batch fails, the transaction rolls back and every
        message goes through :meth:`handle` alone, with its own retry and DLQ
        accounting, so one poison message never holds back or dooms the others.
        """
        from servicekit.inbox import claim_many

        BATCH_SIZE.labels(self.c.service, self.c.name).observe(len(raws))
        if len(raws) == 1:
            await self.handle(raws[0])
            return
        try:
            with HANDLE_SECONDS.labels(self.c.service, self.c.name).time():
                parsed = []
                for raw in raws:
                    env = Envelope.model_validate_json(raw.data)
                    parsed.append((env, parse_event(env.type, env.schema_version, env.data)))
                fresh = 0
                async with self.begin() as conn:
                    recorded_events(conn)
                    new_ids = await claim_many(conn, self.inbox, self.c.durable,
                                               [env.event_id for env, _ in parsed])
                    items = []
                    for env, event in parsed:
                        if env.event_id in new_ids:
                            new_ids.discard(env.event_id)  # a duplicate within the batch
                            items.append((event, env))
                    fresh = len(items)
                    if self.c.batch_handler:
                        if items:
                            await self.c.handler(conn, items)  # type: ignore[call-arg]
                    else:
                        for event, env in items:
                            await self.c.handler(conn, event, env)
                    recorded = recorded_events(conn)
                if recorded:
                    self.after_commit()
        except Exception as exc:
            log.info("consumer %s: batch of %d failed (%s); handling one by one",
                     self.c.durable, len(raws), type(exc).__name__)
            for raw in raws:
                await self.handle(raw)
            return
        for raw in raws:
            await raw.ack()
        CONSUMED.labels(self.c.service, self.c.name, "ok").inc(fresh)
        if len(raws) > fresh:
            CONSUMED.labels(self.c.service, self.c.name, "duplicate").inc(len(raws) - fresh)


class FetchCoalescer:
    """Turns the messages FastStream hands over one by one back into batches.

    FastStream's pull subscriber calls the handler once per message of a fetch (through
    the middlewares: metrics and traces stay per message) and fetches again when every
    call of the fetch has returned. Each call parks its message here and returns at once
    while fewer than ``max_batch`` are parked, so FastStream goes on fetching; a flush
    ``linger_s`` later applies everything parked with ``handle_batch`` (one transaction,
    then the acks). Flushes of one consumer run one after another, so messages that
    arrive while a batch is being applied make the next batch bigger: under load the
    per-transaction costs (BEGIN, inbox claim, COMMIT) are shared by many messages, at
    low rates a message waits only ``linger_s``. A full buffer makes the calls wait for
    their flush (backpressure). Acks are manual: a message parked when the process dies
    is simply redelivered.
    """

    def __init__(self, handle_batch: Callable[[list[Msg]], Awaitable[None]], *,
                 linger_s: float = 0.005, max_batch: int = 50) -> None:
        self.handle_batch = handle_batch
        self.linger_s = linger_s
        self.max_batch = max_batch
        self._parked: list[tuple[Msg, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._one_at_a_time = asyncio.Lock()

    async def submit(self, raw: Msg) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parked.append((raw, fut))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        if len(self._parked) >= self.max_batch:
            await fut

    async def close(self) -> None:
        task, self._flushing = self._flushing, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        async with self._one_at_a_time:  # a batch being applied finishes first
            pass

    async def _flush(self) -> None:
        await asyncio.sleep(self.linger_s)
        async with self._one_at_a_time:
            batch, self._parked, self._flushing = self._parked, [], None
            try:
                await self.handle_batch([raw for raw, _ in batch])
            except Exception:  # unacked messages are redelivered after ack_wait
                log.exception("consumer batch failed outside the handlers")
            finally:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)


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

    async def handle(self, raw: Msg) -> None:
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
            data, subject, headers = original.data or b"", original.subject, original.headers
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
