"""The composition root every service is built on.

    def create_service(settings=None, *, clock=utcnow) -> Service:
        settings = settings or LedgerSettings()
        return Service(settings, metadata, routers=[postings.router, payouts.router],
                       store=LedgerStore, clock=clock)

    run(create_service())   # uvicorn: /healthz, /readyz, /metrics; relay, consumers, RPCs

One NATS connection per process carries the RPC server, the outbox relay, the
consumers and the emergency watch. Handlers get a :class:`~servicekit.context.Context`
(settings, clock, unit of work), never the service itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
from fastapi import FastAPI, Response
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest
from sqlalchemy import MetaData, text

import contracts.rpc.ops as ops
from contracts.streams import STREAMS
from servicekit.consumer import (
    AdvisoryForwarder,
    ConsumerRunner,
    EventConsumer,
    PullLoop,
    is_transient,
)
from servicekit.context import Context, utcnow
from servicekit.db import make_engine, ping
from servicekit.emergency import EmergencyWatch
from servicekit.messaging_tables import add_messaging_tables
from servicekit.migrations import head_revision, version_table
from servicekit.observability import (
    FASTAPI_TELEMETRY_OFF,
    nats_callbacks,
    setup_logging,
    setup_telemetry,
    uvicorn_log_options,
)
from servicekit.outbox import OutboxRelay
from servicekit.router import PeriodicRoute, Router
from servicekit.rpc import RpcServer
from servicekit.settings import ServiceSettings
from servicekit.streams import apply_consumer, ensure_streams
from servicekit.uow import Database, StoreFactory

log = logging.getLogger("servicekit.service")

_ADVISORY_STREAM = next(s.name for s in STREAMS if s.name == "ADVISORIES")


def tune_gc(gen0_threshold: int) -> None:
    """Move everything alive now (modules, tables, compiled queries) out of the collector's
    sight, and collect the young generation less often.

    A service imports hundreds of thousands of objects that live until exit; every
    full collection would scan them again. With the default threshold (700
    allocations) a busy handler triggers collections all the time: measured on the
    rules path, this tuning cut CPU per event by about a sixth.
    """
    gc.collect()
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, g1, g2)


# Each check of a service's diagnostics (the gateway allows the whole reply 1.5 s).
DIAGNOSTICS_CHECK_S = 1.0

# each step of a stop waits at most this long, then the stop goes on (and says so)
STOP_STEP_S = 10.0

# 1 while a readiness check passes (updated at every /readyz and by the service's own
# 15 s loop), for the ServiceNotReady alert and the "service RED" dashboard
READY = Gauge("servicekit_ready", "Whether a readiness check passes (1) or not (0)",
              ["service", "check"])


class Service:
    def __init__(self, settings: ServiceSettings, metadata: MetaData, *,
                 routers: list[Router] | None = None, store: StoreFactory | None = None,
                 clock: Callable[[], datetime] = utcnow,
                 context: Callable[..., Context[Any, Any]] = Context,
                 migrations_dir: Path | None = None) -> None:
        if not settings.database_url:
            raise ValueError(f"{settings.service_name}: no database URL (set "
                             f"{settings.service_name.upper()}_DATABASE_URL to a "
                             "postgresql:// URL)")
        self.settings = settings
        self.name = settings.service_name
        self.metadata = metadata
        self.outbox, self.inbox = add_messaging_tables(metadata)
        setup_logging(self.name, level=settings.log_level, json_logs=settings.log_json)
        self.tracer_provider = setup_telemetry(self.name, otlp_endpoint=settings.otlp_endpoint,
                                               sample_ratio=settings.trace_sample_ratio)
        self.engine = make_engine(settings.database_url, pool_size=settings.db_pool_size,
                                  max_overflow=settings.db_max_overflow,
                                  lock_timeout_ms=settings.db_lock_timeout_ms,
                                  statement_timeout_ms=settings.db_statement_timeout_ms,
                                  application_name=self.name)
        self.db: Database[Any] = Database(self.engine, producer=self.name, outbox=self.outbox,
                                          store=store)
        self.read_only = EmergencyWatch()
        self.ctx = context(settings=settings, db=self.db, clock=clock,
                           read_only=self.read_only)
        self.router = Router()
        for r in routers or []:
            self.router.include(r)
        self.migrations_dir = migrations_dir
        self.nc: NATS | None = None
        self.rpc_server: RpcServer | None = None
        self.relay: OutboxRelay | None = None
        self.consumers = [self._consumer(route) for route in self.router.consumers]
        self._loops: list[PullLoop] = []
        self._runners: list[ConsumerRunner] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._started = False
        self._ping_sub: Any = None
        # called when the bus connection drops (e.g. an RPC client ends its waiting calls)
        self.on_disconnect: list[Callable[[], None]] = []
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self._schema_ok = migrations_dir is None
        self.http = self._make_http()

    def _consumer(self, route: Any) -> EventConsumer:
        s = self.settings
        c = EventConsumer(
            service=self.name, name=route.name, subject=route.subject, handler=route.handler,
            batch_handler=route.batch, max_deliver=route.max_deliver or s.consumer_max_deliver,
            ack_wait_s=route.ack_wait_s or s.consumer_ack_wait_s,
            batch_size=s.consumer_batch_size,
            linger_s=route.linger_s if route.linger_s is not None else s.consumer_linger_s,
            wanted=route.wanted)
        if route.backoff_s:
            c.backoff_s = route.backoff_s
        return c

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        s = self.settings
        callbacks = nats_callbacks(self.name)

        async def disconnected() -> None:
            for hook in self.on_disconnect:
                hook()

        self.nc = await nats.connect(self.nats_servers, max_reconnect_attempts=-1,
                                     reconnect_time_wait=0.5, name=self.name,
                                     disconnected_cb=disconnected, **callbacks,
                                     **self.nats_credentials())
        js = self.nc.jetstream()
        # nothing consumes, answers or relays before the schema is at head: a replica of a
        # new version must not apply events to the old schema while its migration still runs
        await self._await_schema(s.schema_wait_s)
        if s.ensure_streams:
            await ensure_streams(js, replicas=s.stream_replicas)
        self.relay = OutboxRelay(service=self.name, engine=self.engine, outbox=self.outbox,
                                 nc=self.nc, batch_size=s.relay_batch_size,
                                 poll_interval_s=s.relay_poll_interval_s,
                                 linger_s=s.relay_linger_s)
        self.db.on_recorded = self.relay.notify
        await self.read_only.start(self.nc)
        for stream, name in self.router.retired:
            with contextlib.suppress(NotFoundError):  # gone already (or never made)
                await js.delete_consumer(stream, f"{self.name}__{name}")
                log.info("retired consumer %s__%s deleted", self.name, name)
        for c in self.consumers:
            await apply_consumer(js, c.stream, c.config())
            runner = ConsumerRunner(c, unit=self.db.consumer_unit, inbox=self.inbox, js=js,
                                    context=self.ctx)
            self._runners.append(runner)
            self._loops.append(PullLoop(self.nc, c, runner.handle_batch))
        if self.consumers:
            fwd = AdvisoryForwarder(service=self.name, consumers=self.consumers, js=js)
            await apply_consumer(js, _ADVISORY_STREAM, fwd.config())
            self._loops.append(PullLoop(self.nc, fwd.as_consumer(), fwd.handle_batch))
        self.rpc_server = RpcServer(service=self.name, nc=self.nc,
                                    concurrency=s.rpc_concurrency)
        for route in self._rpc_routes():
            spec, handler = route

            async def call(req: Any, _handler: Any = handler) -> Any:
                return await _handler(req, self.ctx)

            await self.rpc_server.serve(spec, call)
        if self.name in ops.SERVICES:
            self._ping_sub = await self.nc.subscribe(ops.ping_subject(self.name), cb=self._pong)
        await self.relay.start()
        for hook in self.router.startups:
            await hook(self.ctx)
        self._tasks += [asyncio.create_task(loop.run(), name=f"consume-{loop.c.durable}")
                        for loop in self._loops]
        self._tasks += [asyncio.create_task(self._every(p)) for p in self.router.periodics]
        self._tasks.append(asyncio.create_task(self._readiness_loop()))
        if s.gc_gen0_threshold > 0:
            tune_gc(s.gc_gen0_threshold)
        self._started = True
        log.info("service %s started: %d consumers, %d rpcs", self.name, len(self.consumers),
                 len(self.router.rpcs))

    @property
    def nats_servers(self) -> list[str]:
        return [u.strip() for u in self.settings.nats_url.split(",") if u.strip()]

    def nats_credentials(self) -> dict[str, Any]:
        """Connect options that identify this process on the bus: its own user, its own
        reply inbox (the only one its permissions let it read), the servers' CA."""
        s = self.settings
        opts: dict[str, Any] = {}
        if s.nats_user:
            opts["user"] = s.nats_user
            opts["password"] = s.nats_password.get_secret_value()
        prefix = s.nats_inbox_prefix or (f"_INBOX_{s.nats_user}" if s.nats_user else "")
        if prefix:
            opts["inbox_prefix"] = prefix
        if s.nats_tls_ca_file:
            import ssl

            opts["tls"] = ssl.create_default_context(cafile=s.nats_tls_ca_file)
        return opts

    def _rpc_routes(self) -> list[tuple[Any, Any]]:
        routes = [(r.spec, r.handler) for r in self.router.rpcs]
        spec = ops.DIAGNOSTICS.get(self.name)
        if spec is not None and all(r.spec.subject != spec.subject for r in self.router.rpcs):
            routes.append((spec, lambda _req, _ctx: self.diagnostics()))
        replay = ops.DLQ_REPLAY.get(self.name)
        if replay is not None and self.consumers:
            routes.append((replay, lambda req, _ctx: self.replay_dead_letter(req)))
        return routes

    async def _pong(self, msg: Any) -> None:
        """Answer a scatter ping: this replica is here (no queue group, so every one does)."""
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(ops.Pong(service=self.name, instance=self.instance)
                                  .model_dump_json().encode())

    async def replay_dead_letter(self, req: ops.DeadLetterReplay) -> ops.DeadLetterReplayed:
        """One letter of the DLQ stream applied again by the consumer that dead-lettered it
        (not re-published: no other consumer of the subject sees it twice). The caller (the
        gateway) removes the letter once this answered: a service may not delete from the
        DLQ, and a replay of a letter left behind answers ``duplicate``."""
        from servicekit.consumer import PermanentFailure
        from servicekit.dlq import NoSuchLetter, letter
        from servicekit.errors import Invalid, NotFound

        assert self.nc is not None
        try:
            msg = await letter(self.nc.jetstream(), req.seq)
        except NoSuchLetter:
            raise NotFound("dead_letter_not_found", f"no dead letter {req.seq}") from None
        headers = dict(msg.headers or {})
        durable, subject = headers.get("Dlq-Consumer", ""), headers.get("Dlq-Original-Subject")
        runner = next((r for r in self._runners if r.c.durable == durable), None)
        if runner is None or not subject:
            raise Invalid("dead_letter_not_ours",
                          f"letter {req.seq} was dead-lettered by {durable or '?'}, "
                          f"not by a consumer of {self.name}")
        try:
            outcome = await runner.replay(subject, msg.data or b"")
        except PermanentFailure as exc:
            raise Invalid("dead_letter_unprocessable",
                          f"letter {req.seq} still cannot be processed: {exc}") from None
        log.warning("dead letter %s replayed to %s: %s", req.seq, durable, outcome)
        return ops.DeadLetterReplayed(seq=req.seq, consumer=durable, subject=subject,
                                      outcome=outcome)

    async def stop(self) -> None:
        if self._ping_sub is not None:
            with contextlib.suppress(Exception):
                await self._ping_sub.unsubscribe()
            self._ping_sub = None
        for runner in self._runners:
            runner.stopping = True
        for loop in self._loops:
            loop.stop()
        if self.rpc_server is not None:
            await self.rpc_server.stop()
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_STEP_S)
            if stuck:  # a stop never hangs: say what did not end, and go on
                log.warning("stop: %d task(s) did not end within %.0f s: %s", len(stuck),
                            STOP_STEP_S, ", ".join(t.get_name() for t in stuck))
        self._tasks.clear()
        for runner in self._runners:
            await self._bounded(f"consumer {runner.c.durable}", runner.close())
        self._loops.clear()
        self._runners.clear()
        await self._bounded("emergency watch", self.read_only.stop())
        if self.relay:
            await self._bounded("outbox relay", self.relay.stop())
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), STOP_STEP_S)
            if not self.nc.is_closed:
                with contextlib.suppress(Exception):
                    await self.nc.close()
        await self.engine.dispose()
        self._started = False

    async def _bounded(self, what: str, step: Any) -> None:
        try:
            await asyncio.wait_for(step, STOP_STEP_S)
        except TimeoutError:
            log.warning("stop: %s did not end within %.0f s; going on", what, STOP_STEP_S)

    async def _readiness_loop(self, every_s: float = 15.0) -> None:
        """Keep the readiness gauge current between scrapes of /readyz."""
        while True:
            try:
                await self.readiness()
            except Exception:  # the gauge stays as it was; /readyz reports the cause
                log.debug("readiness refresh failed", exc_info=True)
            await asyncio.sleep(every_s)

    async def _every(self, route: PeriodicRoute) -> None:
        interval = route.interval_s(self.settings)
        name = getattr(route.handler, "__name__", "periodic")
        while True:
            if route.changes_state and self.read_only.enabled:
                await asyncio.sleep(min(interval, 0.5))  # resume soon after the switch
                continue
            try:
                await route.handler(self.ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):  # the database is down or busy: the next round retries
                    log.warning("periodic %s: %s: %s", name, type(exc).__name__,
                                str(exc)[:200])
                else:
                    log.exception("periodic %s failed", name)
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ diagnostics

    async def diagnostics(self) -> ops.Diagnostics:
        """Database, bus, outbox backlog and lag of each of this service's consumers: every
        check at once, each within ``DIAGNOSTICS_CHECK_S``, so the reply comes within the
        gateway's own limit even when the database or JetStream hangs (what did not answer
        is named in ``details``; an unknown backlog is -1)."""
        connected = self.nc is not None and self.nc.is_connected
        details: dict[str, Any] = {}

        async def timed(name: str, check: Any, default: Any) -> Any:
            try:
                return await asyncio.wait_for(check, DIAGNOSTICS_CHECK_S)
            except Exception as exc:
                details[name] = f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__
                return default

        async def no_backlog() -> tuple[int, float]:
            return 0, 0.0

        js = self.nc.jetstream() if connected and self.nc is not None else None
        consumers = self.consumers if js is not None else []
        lag_checks = [timed(f"consumer {c.durable}", js.consumer_info(c.stream, c.durable), None)
                      for c in consumers] if js is not None else []
        checks, (backlog, lag), *infos = await asyncio.gather(
            timed("readiness", self.readiness(),
                  {"database": "error: no answer", "bus": "ok" if connected else "error"}),
            timed("outbox", self.relay.backlog() if self.relay else no_backlog(), (-1, -1.0)),
            *lag_checks)
        lags = [ops.ConsumerLag(consumer=c.durable, stream=c.stream,
                                pending=info.num_pending or 0,
                                ack_pending=info.num_ack_pending or 0,
                                redelivered=info.num_redelivered or 0)
                for c, info in zip(consumers, infos, strict=True) if info is not None]
        return ops.Diagnostics(service=self.name, database=checks["database"], bus=checks["bus"],
                               outbox_backlog=backlog, outbox_lag_seconds=round(lag, 3),
                               consumers=lags, details=details)

    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}

        async def database() -> None:
            async with self.engine.connect() as conn:
                await ping(conn)
                if not self._schema_ok:
                    self._schema_ok = await self._schema_at_head(conn)

        try:
            # the whole check, connecting included, answers within 3 s (probes wait on it)
            await asyncio.wait_for(database(), 3)
            checks["database"] = "ok"
            checks["schema"] = "ok" if self._schema_ok else "not at head: run the migrations"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
            checks["schema"] = "unknown"
        checks["bus"] = "ok" if self.nc is not None and self.nc.is_connected else "error"
        checks["started"] = "ok" if self._started else "starting"
        for check, value in checks.items():
            READY.labels(service=self.name, check=check).set(1 if value == "ok" else 0)
        return checks

    async def _await_schema(self, timeout_s: float, every_s: float = 0.5) -> None:
        """Wait until the database's schema is this code's head (the migration step runs
        apart: a compose service, a k8s Job); give up after ``timeout_s`` so the orchestrator
        restarts the process and says so."""
        if self._schema_ok:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        warned_at = loop.time()
        while True:
            try:
                async with self.engine.connect() as conn:
                    self._schema_ok = await self._schema_at_head(conn)
            except Exception as exc:  # the database is not there yet: the same wait
                if not is_transient(exc):
                    raise
            if self._schema_ok:
                return
            now = loop.time()
            if now >= deadline:
                raise RuntimeError(f"{self.name}: the database schema is not at head after "
                                   f"{timeout_s:.0f} s: run `python -m servicekit.migrations "
                                   f"upgrade {self.name}`")
            if now - warned_at >= 10:
                warned_at = now
                log.warning("%s waits for its schema to reach head (run the migrations)",
                            self.name)
            await asyncio.sleep(every_s)

    async def _schema_at_head(self, conn: Any) -> bool:
        assert self.migrations_dir is not None
        try:
            current = (await conn.execute(text(
                f"SELECT version_num FROM {version_table(self.name)}"))).scalar()
        except Exception:
            await conn.rollback()
            return False
        # migrations_dir is the service's migrations folder; head_revision takes the
        # service's folder (the one holding migrations/)
        return current is not None and current == head_revision(self.migrations_dir.parent)

    # --------------------------------------------------------------------- http

    def _make_http(self) -> FastAPI:
        app = FastAPI(title=f"{self.name} service", docs_url=None, redoc_url=None,
                      telemetry=FASTAPI_TELEMETRY_OFF)

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok", "service": self.name}

        @app.get("/readyz")
        async def readyz(response: Response) -> dict[str, Any]:
            checks = await self.readiness()
            ready = all(v == "ok" for v in checks.values())
            response.status_code = 200 if ready else 503
            return {"status": "ready" if ready else "not_ready", "checks": checks}

        @app.get("/metrics")
        async def metrics() -> Response:
            return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

        return app


def run(svc: Service, *, host: str | None = None, port: int | None = None) -> None:
    """Serve the service: bus work plus its small HTTP ops surface."""
    import uvicorn

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await svc.start()
        try:
            yield
        finally:
            await svc.stop()

    svc.http.router.lifespan_context = lifespan
    uvicorn.run(svc.http, host=host or svc.settings.http_host,
                port=port if port is not None else svc.settings.http_port,
                access_log=False, lifespan="on", **uvicorn_log_options())
