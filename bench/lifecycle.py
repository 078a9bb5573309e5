"""Full task lifecycles through the gateway's HTTP API, with concurrent workers and managers.

take -> submit (worker), lock the next submission -> accept (manager; ``POST
/api/review/next`` locks the oldest free one), credit (ledger; observed as the
``ledger.credited`` event on the bus). Reports lifecycles/s, p50/p99 of each call and of
accept -> credit, and each process's RSS.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import nats

from contracts.envelope import Envelope

PASSWORD_SUFFIX = "-Bench#Pass-2026"


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))
    return round(values[k] * 1000, 1)


@dataclass
class Recorder:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    accepted_at: dict[str, float] = field(default_factory=dict)
    credited_at: dict[str, float] = field(default_factory=dict)

    async def call(self, name: str, coro) -> tuple[int, Any]:
        t = time.perf_counter()
        try:
            status, body = await coro
        except (TimeoutError, aiohttp.ClientError) as exc:
            # the connection itself failed (the fault suite kills processes): counted, and
            # the caller tries again as a client would
            self.errors[f"{name}:{type(exc).__name__}"] += 1
            return 0, None
        self.latencies[name].append(time.perf_counter() - t)
        if status >= 500:
            self.errors[f"{name}:{status}"] += 1
        return status, body


class Http:
    """The load generator's client: aiohttp costs far less CPU per request than httpx,
    and on two cores the generator shares the machine with the system it measures."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __call__(self, method: str, path: str, headers: dict[str, str],
                       **kw: Any) -> tuple[int, Any]:
        async with self.session.request(method, path, headers=headers, **kw) as r:
            return r.status, await r.json(content_type=None)


async def _user(c: httpx.AsyncClient, admin: dict[str, str], role: str) -> dict[str, str]:
    login = f"bench-{role}-{uuid.uuid4().hex[:8]}"
    r = await c.post("/api/admin/users", json={"login": login, "role": role}, headers=admin)
    r.raise_for_status()
    tmp = r.json()["temporary_password"]
    r = await c.post("/api/auth/login", json={"login": login, "password": tmp})
    r.raise_for_status()
    r = await c.post("/api/auth/password", headers={"Authorization": f"Bearer {r.json()['token']}"},
                     json={"old_password": tmp, "new_password": login + PASSWORD_SUFFIX})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def setup(c: httpx.AsyncClient, bootstrap_password: str, *, tasks: int, workers: int,
                managers: int, price_minor: int = 100) -> dict[str, Any]:
    r = await c.post("/api/auth/login", json={"login": "admin", "password": bootstrap_password})
    r.raise_for_status()
    r = await c.post("/api/auth/password",
                     headers={"Authorization": f"Bearer {r.json()['token']}"},
                     json={"old_password": bootstrap_password,
                           "new_password": "admin" + PASSWORD_SUFFIX})
    r.raise_for_status()
    admin = {"Authorization": f"Bearer {r.json()['token']}"}
    r = await c.put("/api/admin/trust-limits", headers=admin,
                    json={"level": "new", "max_active": 50, "min_pause_s": 0})
    r.raise_for_status()
    r = await c.post("/api/admin/projects", headers=admin, json={
        "name": "bench", "instructions": "Type the word.",
        "input_spec": [{"name": "word", "type": "string"}],
        "output_spec": [{"name": "text", "type": "string", "min_length": 1}]})
    r.raise_for_status()
    r = await c.post("/api/admin/pools", headers=admin, json={
        "project_id": r.json()["project_id"], "name": "bench", "price_minor": price_minor,
        "assignment_timeout_s": 3600})
    r.raise_for_status()
    pool_id = r.json()["pool_id"]
    r = await c.put(f"/api/admin/pools/{pool_id}/worker-share", headers=admin,
                    json={"share": "0.6"})
    r.raise_for_status()
    for i in range(0, tasks, 2000):
        rows = [{"word": f"w{j}"} for j in range(i, min(tasks, i + 2000))]
        r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin, json=rows)
        r.raise_for_status()
    r = await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)
    r.raise_for_status()
    ws = [await _user(c, admin, "worker") for _ in range(workers)]
    ms = [await _user(c, admin, "manager") for _ in range(managers)]
    return {"admin": admin, "pool_id": pool_id, "workers": ws, "managers": ms}


def _max_gap(times: Any, start: float, end: float) -> float | None:
    inside = sorted(t for t in times if start <= t <= end)
    if len(inside) < 2:
        return None
    return round(max(b - a for a, b in zip(inside, inside[1:], strict=False)), 2)


async def drive(gateway_url: str, nats_url: str, ctx: dict[str, Any], *,
                seconds: float, nats_auth: dict[str, str] | None = None,
                seen_credits: list[float] | None = None) -> dict[str, Any]:
    """Full lifecycles for ``seconds``; ``seen_credits`` (when given) gets the wall-clock
    time each ``ledger.credited`` event reached this client."""
    rec = Recorder()
    pool_id = ctx["pool_id"]
    # as the bus's ops user where the bus has users (the launcher's stack has them)
    nc = await nats.connect(nats_url.split(","), **(nats_auth or {}))

    async def on_credit(msg) -> None:  # core subscription sees every JetStream publish
        env = Envelope.model_validate_json(msg.data)
        aid = env.data.get("assignment_id")
        if aid:
            # the first sight: an outbox relay that re-publishes after a lost PubAck (the
            # stream drops the copy, a core subscriber still sees it) must not move it
            rec.credited_at.setdefault(aid, time.perf_counter())
            if seen_credits is not None:
                seen_credits.append(time.time())

    await nc.subscribe("ledger.credited", cb=on_credit)
    stop_at = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(base_url=gateway_url, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        http = Http(session)

        async def worker(headers: dict[str, str]) -> None:
            while time.perf_counter() < stop_at:
                status, body = await rec.call("take", http(
                    "POST", "/api/worker/tasks/take", headers, json={"pool_id": pool_id}))
                if status != 200:
                    rec.errors[f"take:{status}"] += 1
                    await asyncio.sleep(0.05)
                    continue
                aid = body["assignment_id"]
                status, _ = await rec.call("submit", http(
                    "POST", f"/api/worker/assignments/{aid}/submit", headers,
                    json={"answers": {"text": "ok"}}))
                if status != 200:
                    rec.errors[f"submit:{status}"] += 1

        async def manager(headers: dict[str, str]) -> None:
            # "Review next": the oldest free submission, locked for this manager in one call
            while time.perf_counter() < stop_at:
                status, body = await rec.call("lock_next", http(
                    "POST", "/api/review/next", headers, json={"pool_id": pool_id}))
                if status != 200:
                    if status != 404:
                        rec.errors[f"lock_next:{status}"] += 1
                    await asyncio.sleep(0.1)  # nothing to review: look again shortly
                    continue
                aid = body["assignment_id"]
                status, _ = await rec.call("accept", http(
                    "POST", f"/api/review/submissions/{aid}/accept", headers, json={}))
                if status == 200:
                    rec.accepted_at[aid] = time.perf_counter()
                else:
                    rec.errors[f"accept:{status}"] += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(h) for h in ctx["workers"]),
                             *(manager(h) for h in ctx["managers"]))
        elapsed = time.perf_counter() - start
    await asyncio.sleep(3)  # credits of the last accepts
    await nc.close()
    credit_lat = [rec.credited_at[a] - t for a, t in rec.accepted_at.items()
                  if a in rec.credited_at]
    completed = sum(1 for a, t in rec.accepted_at.items()
                    if a in rec.credited_at and rec.credited_at[a] <= start + elapsed)
    return {
        "seconds": round(elapsed, 1),
        "lifecycles": completed,
        "lifecycles_per_s": round(completed / elapsed, 1),
        "accepted": len(rec.accepted_at),
        # the longest time without any credit while the load ran (a pause a fault caused)
        "max_credit_gap_s": _max_gap(rec.credited_at.values(), start, start + elapsed),
        "accepted_not_credited": len(rec.accepted_at) - len(credit_lat),
        "latency_ms": {name: {"n": len(v), "p50": pct(v, 50), "p99": pct(v, 99),
                              "mean": round(statistics.fmean(v) * 1000, 1) if v else None}
                       for name, v in rec.latencies.items()},
        "accept_to_credit_ms": {"n": len(credit_lat), "p50": pct(credit_lat, 50),
                                "p99": pct(credit_lat, 99)},
        "errors": dict(rec.errors),
    }
