"""Admin diagnostics: every service's database, bus, outbox and consumer lag, the gateway
itself, JetStream's quorum and each stream's replicas.

Read-only by construction: it only calls each service's diagnostics RPC, reads JetStream
stream and account info (and, when ``GATEWAY_NATS_MONITOR_URLS`` is set, a node's ``/jsz``),
so it never creates tasks or money. Every check has its own timeout
(``CHECK_TIMEOUT_S``) and all run at once: a hung service or node costs the report at most
that, and is named as failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel

from contracts.rpc import Actor, ops
from contracts.streams import STREAMS
from gateway_service.deps import AdminActor, Rpc
from servicekit.errors import RpcCallError
from servicekit.rpc import RpcClient

router = APIRouter(tags=["diagnostics"])

# Each check's own limit; they run in parallel, so the report answers within about this.
CHECK_TIMEOUT_S = 1.5
# How long replies to the scatter ping are collected (replicas answer in milliseconds).
PING_WINDOW_S = 0.3
T = TypeVar("T")

Health = Literal["ok", "degraded", "down"]


class ServiceHealth(BaseModel):
    service: str
    status: Health
    latency_ms: float | None = None
    error: str | None = None
    outbox_lag_seconds: float | None = None
    # replicas that answered the scatter ping within PING_WINDOW_S (None: not asked)
    replicas_seen: int | None = None
    instances: list[str] = []
    diagnostics: ops.Diagnostics | None = None


class StreamState(BaseModel):
    name: str
    messages: int
    bytes: int
    consumers: int
    replicas: int = 1
    leader: str | None = None  # None in a cluster: the stream has no leader (no quorum)
    lagging_replicas: list[str] = []  # replicas not current or offline


class Peer(BaseModel):
    name: str
    current: bool
    active_s: float | None = None  # seconds since the leader last heard from it


class JetStreamHealth(BaseModel):
    """JetStream's own health: ``quorum`` is whether its meta group has a leader (the
    account info answers; without one, JetStream accepts no change)."""
    quorum: bool
    clustered: bool
    cluster_name: str | None = None
    cluster_size: int | None = None
    meta_leader: str | None = None  # from a node's /jsz (GATEWAY_NATS_MONITOR_URLS)
    peers: list[Peer] = []
    error: str | None = None


class ConsumerLagRow(ops.ConsumerLag):
    service: str


class BusHealth(BaseModel):
    status: Health
    connected: bool
    streams: list[StreamState]
    dlq_depth: int | None
    jetstream: JetStreamHealth | None = None
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
        diag = await asyncio.wait_for(
            rpc.call(ops.DIAGNOSTICS[service], ops.DiagnosticsRequest(actor=actor),
                     timeout_s=CHECK_TIMEOUT_S), CHECK_TIMEOUT_S + 0.1)
    except RpcCallError as exc:
        latency = round((time.perf_counter() - t0) * 1000, 1)
        if exc.error.code == "bad_service_reply":  # it answers, but not what it should
            return ServiceHealth(service=service, status="degraded", latency_ms=latency,
                                 error=f"unreadable diagnostics: {exc.error.message}")
        return ServiceHealth(service=service, status="down",
                             error=f"{exc.error.code}: {exc.error.message}")
    except TimeoutError:
        return ServiceHealth(service=service, status="down",
                             error=f"service_timeout: no answer within {CHECK_TIMEOUT_S:g} s")
    except Exception as exc:  # a broken reply must not turn the whole report into a 500
        return ServiceHealth(service=service, status="down", error=type(exc).__name__)
    return _judged(service, diag, t0)


def _judged(service: str, diag: ops.Diagnostics, t0: float) -> ServiceHealth:
    latency = round((time.perf_counter() - t0) * 1000, 1)
    healthy = diag.database == "ok" and diag.bus == "ok"
    return ServiceHealth(service=service, status="ok" if healthy else "degraded",
                         latency_ms=latency, diagnostics=diag,
                         outbox_lag_seconds=diag.outbox_lag_seconds,
                         error=None if healthy else f"database={diag.database} bus={diag.bus}")


async def _gateway_health(gateway: Any) -> ServiceHealth:
    """The gateway's own row: its database, bus and outbox, as the kit reports them."""
    t0 = time.perf_counter()
    try:
        diag = await asyncio.wait_for(gateway.svc.diagnostics(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return ServiceHealth(service="gateway", status="down",
                             error=f"no answer within {CHECK_TIMEOUT_S:g} s")
    except Exception as exc:
        return ServiceHealth(service="gateway", status="down", error=type(exc).__name__)
    return _judged("gateway", diag, t0)


async def _replicas_seen(nc: Any, services: tuple[str, ...]) -> dict[str, list[str]]:
    """The instances of each service that answer ``ops.ping_subject`` within the window:
    every replica, not only the queue group's one that takes an RPC."""
    seen: dict[str, list[str]] = {s: [] for s in services}
    if nc is None or not getattr(nc, "is_connected", False):
        return seen
    subs, inboxes = [], []
    try:
        for service in services:
            async def collect(msg: Any, _service: str = service) -> None:
                try:
                    seen[_service].append(ops.Pong.model_validate_json(msg.data).instance)
                except ValueError:
                    pass

            inboxes.append(nc.new_inbox())
            subs.append(await nc.subscribe(inboxes[-1], cb=collect))
        # the reply inboxes known to the cluster before anyone can answer: a replica on
        # another node answers through routes that must already carry this interest
        await asyncio.wait_for(nc.flush(), CHECK_TIMEOUT_S)
        for service, inbox in zip(services, inboxes, strict=True):
            await nc.publish(ops.ping_subject(service), b"", reply=inbox)
        await asyncio.sleep(PING_WINDOW_S)
    except Exception:  # the bus went away meanwhile: what came is what is reported
        pass
    finally:
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
    return {s: sorted(set(v)) for s, v in seen.items()}


async def _limited(check: Awaitable[T]) -> T | Exception:
    """The check's result, or the exception it raised (a timeout after CHECK_TIMEOUT_S)."""
    try:
        return await asyncio.wait_for(check, CHECK_TIMEOUT_S)
    except Exception as exc:
        return exc


def _stream_state(info: Any) -> StreamState:
    st, cluster = info.state, info.cluster
    replicas = getattr(info.config, "num_replicas", None) or 1
    if cluster is None:  # a single server: it is the leader
        return StreamState(name=info.config.name, messages=st.messages or 0,
                           bytes=st.bytes or 0, consumers=st.consumer_count or 0,
                           replicas=replicas)
    lagging = [p.name for p in cluster.replicas or [] if p.offline or not p.current]
    return StreamState(name=info.config.name, messages=st.messages or 0, bytes=st.bytes or 0,
                       consumers=st.consumer_count or 0, replicas=replicas,
                       leader=cluster.leader, lagging_replicas=sorted(lagging))


def _peers_from_streams(infos: list[Any]) -> list[Peer]:
    """Every node the streams name (leader or replica): current only if current in each."""
    peers: dict[str, Peer] = {}
    for info in infos:
        cluster = info.cluster
        if cluster is None:
            continue
        if cluster.leader:
            peers.setdefault(cluster.leader, Peer(name=cluster.leader, current=True))
        for p in cluster.replicas or []:
            seen = peers.setdefault(p.name, Peer(name=p.name, current=True))
            seen.current = seen.current and bool(p.current) and not p.offline
            if p.active is not None:
                active = round(p.active / 1e9, 3)
                seen.active_s = max(seen.active_s or 0.0, active)
    return sorted(peers.values(), key=lambda p: p.name)


async def _jsz(url: str) -> dict[str, Any]:
    import httpx  # here: the one use, and ~5 MB of the gateway's memory at import

    async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S) as client:
        r = await client.get(url.rstrip("/") + "/jsz")
        r.raise_for_status()
        meta: dict[str, Any] = r.json().get("meta_cluster") or {}
        return meta


async def _meta_from_monitors(urls: list[str]) -> dict[str, Any] | None:
    """The meta group as its leader sees it (each node's /jsz lists the other nodes, and
    only the leader knows whether its followers are current); another node's view if the
    leader's monitor does not answer; None when none is configured or none answered."""
    views = [r for r in await asyncio.gather(*(_limited(_jsz(u)) for u in urls))
             if isinstance(r, dict) and r]
    for view in views:
        if view.get("leader") and view["leader"] not in {
                r.get("name") for r in view.get("replicas") or []}:
            return view
    return views[0] if views else None


def _jetstream(nc: Any, account: Any, infos: list[Any],
               meta: dict[str, Any] | None) -> JetStreamHealth:
    server = getattr(nc, "_server_info", None) or {}
    cluster_name = server.get("cluster")
    health = JetStreamHealth(quorum=not isinstance(account, Exception),
                             clustered=bool(cluster_name), cluster_name=cluster_name,
                             cluster_size=len(server.get("connect_urls") or []) or None,
                             peers=_peers_from_streams(infos))
    if isinstance(account, Exception):
        health.error = (f"JetStream did not answer within {CHECK_TIMEOUT_S:g} s"
                        if isinstance(account, TimeoutError) else
                        f"{type(account).__name__}: {account}"[:200])
    if not cluster_name:
        health.cluster_size = 1
    if meta:
        health.meta_leader = meta.get("leader")
        health.cluster_size = meta.get("cluster_size") or health.cluster_size
        peers = {r.get("name", "?"): Peer(name=r.get("name", "?"), current=bool(r.get("current")),
                                          active_s=round((r.get("active") or 0) / 1e9, 3))
                 for r in meta.get("replicas") or []}
        if meta.get("leader"):
            peers[meta["leader"]] = Peer(name=meta["leader"], current=True)
        health.peers = sorted(peers.values(), key=lambda p: p.name)
        needed = meta.get("quorum_needed") or (len(peers) // 2 + 1)
        current = sum(p.current for p in health.peers)
        if health.quorum and peers and current < needed:  # the leader has not noticed yet
            health.quorum = False
            health.error = f"only {current} of {len(peers)} meta peers current ({needed} needed)"
    return health


async def _bus_health(nc: Any, monitor_urls: list[str]) -> BusHealth:
    if nc is None or not getattr(nc, "is_connected", False):
        return BusHealth(status="down", connected=False, streams=[], dlq_depth=None,
                         error="the gateway is not connected to NATS")
    js = nc.jetstream()
    account, meta, *infos = await asyncio.gather(
        _limited(js.account_info()), _meta_from_monitors(monitor_urls),
        *(_limited(js.stream_info(spec.name)) for spec in STREAMS))
    read = [i for i in infos if not isinstance(i, Exception)]
    missing = [spec.name for spec, i in zip(STREAMS, infos, strict=True)
               if isinstance(i, Exception)]
    streams = [_stream_state(i) for i in read]
    jetstream = _jetstream(nc, account, read, meta if isinstance(meta, dict) else None)
    problems = [f"streams not readable: {', '.join(missing)}"] if missing else []
    if not jetstream.quorum:
        problems.append(f"JetStream has no quorum ({jetstream.error})")
    leaderless = [st.name for st in streams if jetstream.clustered and st.leader is None]
    if leaderless:
        problems.append(f"streams without a leader: {', '.join(leaderless)}")
    lagging = [f"{st.name} ({', '.join(st.lagging_replicas)})" for st in streams
               if st.lagging_replicas]
    if lagging:
        problems.append(f"replicas behind: {'; '.join(lagging)}")
    dlq = next((st.messages for st in streams if st.name == "DLQ"), None)
    status: Health = "down" if not jetstream.quorum else ("degraded" if problems else "ok")
    return BusHealth(status=status, connected=True, streams=streams, dlq_depth=dlq,
                     jetstream=jetstream, error="; ".join(problems) or None)


@router.get("/admin/diagnostics", response_model=DiagnosticsReport,
            summary="Health of every service, the bus, consumer lag, outbox backlog and DLQ")
async def diagnostics(actor: AdminActor, rpc: Rpc, request: Request) -> DiagnosticsReport:
    gateway = getattr(request.app.state, "gateway", None)
    checks: list[Awaitable[ServiceHealth]] = [_service_health(rpc, actor, s)
                                              for s in ops.SERVICES]
    if gateway is not None:
        checks.append(_gateway_health(gateway))
    monitors = list(gateway.settings.nats_monitor_urls) if gateway is not None else []
    nc = getattr(request.app.state, "nats", None)
    services, bus, seen = await asyncio.gather(
        asyncio.gather(*checks), _bus_health(nc, monitors), _replicas_seen(nc, ops.SERVICES))
    for row in services:
        if row.service in seen:
            row.instances = seen[row.service]
            row.replicas_seen = len(row.instances)
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
        outbox_backlog_total=sum(max(0, s.diagnostics.outbox_backlog) for s in services
                                 if s.diagnostics),
        problems=problems,
    )
