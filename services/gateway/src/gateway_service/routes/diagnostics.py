"""Admin diagnostics: every service's database, bus, outbox and consumer lag, plus the bus.

Read-only by construction: it only calls each service's diagnostics RPC and reads
JetStream stream info, so it never creates tasks or money.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from contracts.rpc import Actor, ops
from contracts.streams import STREAMS
from gateway_service.deps import AdminActor, Rpc
from servicekit.errors import RpcCallError
from servicekit.rpc import RpcClient

router = APIRouter(tags=["diagnostics"])

DIAGNOSTICS_TIMEOUT_S = 3.0

Health = Literal["ok", "degraded", "down"]


class ServiceHealth(BaseModel):
    service: str
    status: Health
    latency_ms: float | None = None
    error: str | None = None
    diagnostics: ops.Diagnostics | None = None


class StreamState(BaseModel):
    name: str
    messages: int
    bytes: int
    consumers: int


class ConsumerLagRow(ops.ConsumerLag):
    service: str


class BusHealth(BaseModel):
    status: Health
    connected: bool
    streams: list[StreamState]
    dlq_depth: int | None
    error: str | None = None


class DiagnosticsReport(BaseModel):
    status: Literal["ok", "degraded"]
    checked_at: datetime
    services: list[ServiceHealth]
    bus: BusHealth
    consumer_lag: list[ConsumerLagRow]
    outbox_backlog_total: int
    problems: list[str]


async def _service_health(rpc: RpcClient, actor: Actor, service: str) -> ServiceHealth:
    t0 = time.perf_counter()
    try:
        diag = await rpc.call(ops.DIAGNOSTICS[service], ops.DiagnosticsRequest(actor=actor),
                              timeout_s=DIAGNOSTICS_TIMEOUT_S)
    except RpcCallError as exc:
        latency = round((time.perf_counter() - t0) * 1000, 1)
        if exc.error.code == "bad_service_reply":  # it answers, but not what it should
            return ServiceHealth(service=service, status="degraded", latency_ms=latency,
                                 error=f"unreadable diagnostics: {exc.error.message}")
        return ServiceHealth(service=service, status="down",
                             error=f"{exc.error.code}: {exc.error.message}")
    except Exception as exc:  # a broken reply must not turn the whole report into a 500
        return ServiceHealth(service=service, status="down", error=type(exc).__name__)
    latency = round((time.perf_counter() - t0) * 1000, 1)
    healthy = diag.database == "ok" and diag.bus == "ok"
    return ServiceHealth(service=service, status="ok" if healthy else "degraded",
                         latency_ms=latency, diagnostics=diag,
                         error=None if healthy else f"database={diag.database} bus={diag.bus}")


async def _bus_health(nc: Any) -> BusHealth:
    if nc is None or not getattr(nc, "is_connected", False):
        return BusHealth(status="down", connected=False, streams=[], dlq_depth=None,
                         error="the gateway is not connected to NATS")
    js = nc.jetstream()
    streams: list[StreamState] = []
    missing: list[str] = []
    for spec in STREAMS:
        try:
            info = await asyncio.wait_for(js.stream_info(spec.name), DIAGNOSTICS_TIMEOUT_S)
        except Exception:
            missing.append(spec.name)
            continue
        st = info.state
        streams.append(StreamState(name=spec.name, messages=st.messages or 0,
                                   bytes=st.bytes or 0, consumers=st.consumer_count or 0))
    dlq = next((s.messages for s in streams if s.name == "DLQ"), None)
    return BusHealth(status="degraded" if missing else "ok", connected=True, streams=streams,
                     dlq_depth=dlq,
                     error=f"streams not readable: {', '.join(missing)}" if missing else None)


@router.get("/admin/diagnostics", response_model=DiagnosticsReport,
            summary="Health of every service, the bus, consumer lag, outbox backlog and DLQ")
async def diagnostics(actor: AdminActor, rpc: Rpc, request: Request) -> DiagnosticsReport:
    services, bus = await asyncio.gather(
        asyncio.gather(*(_service_health(rpc, actor, s) for s in ops.SERVICES)),
        _bus_health(getattr(request.app.state, "nats", None)),
    )
    lag = [ConsumerLagRow(service=s.service, **c.model_dump())
           for s in services if s.diagnostics for c in s.diagnostics.consumers]
    problems = [f"{s.service}: {s.status}" + (f" ({s.error})" if s.error else "")
                for s in services if s.status != "ok"]
    if bus.status != "ok":
        problems.append(f"bus: {bus.status}" + (f" ({bus.error})" if bus.error else ""))
    if bus.dlq_depth:
        problems.append(f"DLQ holds {bus.dlq_depth} message(s)")
    return DiagnosticsReport(
        status="ok" if not problems else "degraded",
        checked_at=datetime.now(UTC),
        services=list(services),
        bus=bus,
        consumer_lag=lag,
        outbox_backlog_total=sum(s.diagnostics.outbox_backlog for s in services
                                 if s.diagnostics),
        problems=problems,
    )
