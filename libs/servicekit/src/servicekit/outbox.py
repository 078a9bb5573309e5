"""Transactional outbox: events commit with the state change, a relay publishes them.

The relay publishes every row with ``Nats-Msg-Id`` = event id and waits for the
JetStream PubAck before marking the row published, so an event committed while
NATS is down is published once NATS is back, and a re-publish after a crash is
dropped by the stream's duplicate window.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NATS
from opentelemetry import propagate
from prometheus_client import Counter, Gauge
from sqlalchemy import Table, bindparam, func, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.envelope import Envelope
from servicekit.db import transaction
from servicekit.prepared import Prepared

log = logging.getLogger("servicekit.outbox")

OUTBOX_BACKLOG = Gauge("servicekit_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_LAG = Gauge("servicekit_outbox_lag_seconds",
                   "Age of the oldest unpublished outbox row", ["service"])
OUTBOX_PUBLISHED = Counter("servicekit_outbox_published_total",
                           "Outbox rows published and acknowledged by JetStream", ["service"])
OUTBOX_PASSES = Counter("servicekit_outbox_relay_passes_total",
                        "Relay passes that published at least one row", ["service"])
OUTBOX_ERRORS = Counter("servicekit_outbox_publish_errors_total",
                        "Failed outbox publish attempts", ["service"])
EVENTS_RECORDED = Counter("servicekit_events_recorded_total",
                          "Events committed to the outbox, by envelope type",
                          ["service", "type"])


def count_recorded(service: str, envs: list[Envelope]) -> None:
    """Count events once their transaction committed (the platform overview's task flow)."""
    for env in envs:
        EVENTS_RECORDED.labels(service, env.type).inc()


_RECORDED = "servicekit.outbox.recorded"


def recorded_events(conn: AsyncConnection) -> bool:
    """Whether the transaction on ``conn`` recorded events (and forget it): the relay is
    woken only after commits that gave it something to publish."""
    return bool(conn.info.pop(_RECORDED, False))


def current_trace_headers() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.05, 0.25

_OUTBOX_COLS = ("event_id", "subject", "payload", "headers", "created_at")
_INSERTS: dict[str, Any] = {}  # the INSERT statements of each outbox table, prepared


def outbox_row(env: Envelope, headers: str) -> dict[str, Any]:
    """An outbox row's values (the columns of ``_OUTBOX_COLS``): the one format of a row."""
    return {"event_id": env.event_id, "subject": env.type, "payload": env.model_dump_json(),
            "headers": headers, "created_at": env.occurred_at}


def outbox_insert_from(outbox: Table, source: Any) -> Any:
    """An INSERT of one event into the outbox that adds the row only where ``source`` (a
    CTE or subquery) yields a row, for a statement that records its event in the same
    round trip as the change (``WITH change AS (... RETURNING ...) INSERT INTO outbox
    ... FROM change``). Build it once; execute it with ``UnitOfWork.outbox_params``.
    """
    sel = select(*[bindparam(f"ob_{c}", type_=outbox.c[c].type).label(c)
                   for c in _OUTBOX_COLS]).select_from(source)
    return outbox.insert().from_select(list(_OUTBOX_COLS), sel)


def _insert_arrays(outbox: Table) -> Any:
    """Many rows in one execution over arrays, ids given in the envelopes' order."""
    return text(
        f"INSERT INTO {outbox.name} (event_id, subject, payload, headers, created_at) "
        "SELECT e, s, p, h, c FROM unnest(CAST(:e AS text[]), CAST(:s AS text[]), "
        "CAST(:p AS text[]), CAST(:h AS text[]), CAST(:c AS timestamptz[])) "
        "WITH ORDINALITY AS u(e, s, p, h, c, n) ORDER BY n")


async def write_outbox(conn: AsyncConnection, outbox: Table, envs: list[Envelope]) -> None:
    """Insert the envelopes into the outbox in one statement, inside ``conn``'s transaction:
    one row as a plain INSERT, more as one execution over arrays (an executemany ran one
    INSERT per row in the server and processed every row's parameters in SQLAlchemy)."""
    if not envs:
        return
    headers = json.dumps(current_trace_headers())
    if len(envs) == 1:
        stmt = _INSERTS.get(outbox.name)
        if stmt is None:
            stmt = _INSERTS[outbox.name] = Prepared(outbox.insert().values(
                {c: bindparam(c, type_=outbox.c[c].type) for c in _OUTBOX_COLS}))
        await stmt.all(conn, outbox_row(envs[0], headers))
        return
    many = _INSERTS.get(outbox.name + "*")
    if many is None:
        many = _INSERTS[outbox.name + "*"] = Prepared(_insert_arrays(outbox))
    rows = [outbox_row(env, headers) for env in envs]
    await many.all(conn, {key: [row[col] for row in rows]
                          for key, col in zip("esphc", _OUTBOX_COLS, strict=True)})


class OutboxRelay:
    def __init__(self, *, service: str, engine: AsyncEngine, outbox: Table, nc: NATS,
                 batch_size: int = 200, poll_interval_s: float = 0.2,
                 linger_s: float = 0.005,
                 publish_timeout_s: float = 2.0, retention: timedelta = timedelta(days=3)) -> None:
        self.service = service
        self.engine = engine
        self.outbox = outbox
        self.nc = nc
        self.js = nc.jetstream(timeout=publish_timeout_s)
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.linger_s = linger_s
        self.retention = retention
        ob = outbox
        # Several replicas share the outbox: each takes rows nobody else holds. The rows are
        # marked published by the statement that takes them, inside the pass's transaction,
        # which commits only after JetStream acknowledged them (a row whose publish failed is
        # unmarked first): one statement per pass fewer than a read and then a mark.
        free = (select(ob.c.id).where(ob.c.published_at.is_(None)).order_by(ob.c.id)
                .limit(batch_size).with_for_update(skip_locked=True).scalar_subquery())
        self._claim = Prepared(update(ob).where(ob.c.id.in_(free))
                               .values(published_at=bindparam("now",
                                                              type_=ob.c.published_at.type))
                               .returning(ob.c.id, ob.c.event_id, ob.c.subject, ob.c.payload,
                                          ob.c.headers))
        self._unmark = (update(ob).where(ob.c.id.in_(bindparam("ids", expanding=True)))
                        .values(published_at=None))
        # a poll nobody woke asks this first, in one round trip without a transaction: the
        # locking read above costs BEGIN, SELECT and COMMIT, three round trips, every
        # ``poll_interval_s`` in every process, mostly to find nothing
        self._probe = Prepared(select(literal(1)).where(ob.c.published_at.is_(None)).limit(1))
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = False

    def notify(self) -> None:
        """Wake the relay now (called after a commit that recorded events)."""
        self._wake.set()

    async def start(self) -> None:
        for metric in (OUTBOX_PUBLISHED, OUTBOX_ERRORS, OUTBOX_PASSES):
            metric.labels(self.service)  # at 0 from the start, not from the first event
        await self._set_gauges()  # the backlog alert and dashboards see a value at once
        self._tasks = [asyncio.create_task(self._run(), name=f"{self.service}-outbox-relay"),
                       asyncio.create_task(self._gauges(), name=f"{self.service}-outbox-gauges")]

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        # Short backoff, capped at a quarter second: after a JetStream leader election the
        # relay resumes within 0.25 s of the new leader (each retry is one cheap SELECT and
        # one publish attempt; measured by bench.chaos --cluster: "failover").
        backoff = _BACKOFF_MIN_S
        probe = False  # the first pass looks at once
        while not self._stopping:
            try:
                published = await self.publish_pending(probe=probe)
                backoff = _BACKOFF_MIN_S
            except Exception as exc:  # NATS down, DB hiccup: retry, never drop
                OUTBOX_ERRORS.labels(self.service).inc()
                log.warning("outbox relay: %s: %s; retrying in %.1fs",
                            type(exc).__name__, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            probe = False
            if published >= self.batch_size:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
                # woken by a commit: let the commits of the next few ms join this pass
                await asyncio.sleep(self.linger_s)
            except TimeoutError:
                probe = published == 0  # nobody woke it and the last pass found nothing
            self._wake.clear()

    async def publish_pending(self, *, probe: bool = False) -> int:
        """Publish one batch; returns how many rows were published. ``probe``: first ask,
        without a transaction, whether any row waits at all."""
        if probe:
            async with self._autocommit.connect() as conn:
                if await self._probe.first(conn) is None:
                    return 0
        async with transaction(self.engine) as conn:
            rows = sorted(await self._claim.all(conn, {"now": datetime.now(UTC)}),
                          key=lambda r: r.id)  # published in the order they were recorded
            if not rows:
                return 0
            done, error = await self._publish(rows)
            if len(done) < len(rows):  # these stay unpublished: the next pass tries again
                kept = set(done)
                await conn.execute(self._unmark, {"ids": [r.id for r in rows
                                                          if r.id not in kept]})
        if done:
            OUTBOX_PUBLISHED.labels(self.service).inc(len(done))
            OUTBOX_PASSES.labels(self.service).inc()
        if error is not None:
            raise error
        return len(done)

    async def _publish(self, rows: Any) -> tuple[list[int], BaseException | None]:
        async def one(row: Any) -> None:
            headers = json.loads(row.headers or "{}")
            headers["Nats-Msg-Id"] = row.event_id
            await self.js.publish(row.subject, row.payload.encode(), headers=headers)

        results = await asyncio.gather(*(one(r) for r in rows), return_exceptions=True)
        done = [r.id for r, res in zip(rows, results, strict=True) if res is None]
        errors = [res for res in results if isinstance(res, BaseException)]
        return done, (errors[0] if errors else None)

    async def backlog(self) -> tuple[int, float]:
        """(unpublished rows, age in seconds of the oldest)."""
        ob = self.outbox
        async with self.engine.connect() as conn:
            count, oldest = (await conn.execute(
                select(func.count(), func.min(ob.c.created_at)).where(ob.c.published_at.is_(None))
            )).one()
        lag = 0.0
        if oldest is not None:
            lag = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        return int(count), lag

    async def _set_gauges(self) -> None:
        try:
            count, lag = await asyncio.wait_for(self.backlog(), 3.0)
        except Exception as exc:  # the database is not there yet: the loop tries again
            log.debug("outbox gauges: %s", exc)
            return
        OUTBOX_BACKLOG.labels(self.service).set(count)
        OUTBOX_LAG.labels(self.service).set(lag)

    async def _gauges(self) -> None:
        while not self._stopping:
            await asyncio.sleep(5.0)
            await self._set_gauges()
            try:
                cutoff = datetime.now(UTC) - self.retention
                async with transaction(self.engine) as conn:
                    await conn.execute(self.outbox.delete().where(
                        self.outbox.c.published_at.is_not(None),
                        self.outbox.c.published_at < cutoff))
            except Exception as exc:
                log.debug("outbox retention: %s", exc)
