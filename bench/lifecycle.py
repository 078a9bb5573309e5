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


async def admin_login(c: httpx.AsyncClient, bootstrap_password: str) -> dict[str, str]:
    """The bootstrap admin's first login and password change; its headers."""
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
    return admin


def task_rows(start: int, n: int) -> list[dict[str, str]]:
    return [{"word": f"w{j}"} for j in range(start, start + n)]


async def upload(c: httpx.AsyncClient, admin: dict[str, str], pool_id: str, tasks: int, *,
                 rows_per_request: int = 2000, concurrency: int = 1,
                 tsv: bool = False) -> float:
    """Upload ``tasks`` rows through ``POST /api/admin/pools/{id}/tasks`` (a JSON array, or
    with ``tsv`` a TSV file with a header line); seconds taken."""
    t0 = time.perf_counter()
    starts = list(range(0, tasks, rows_per_request))

    async def one() -> None:
        while starts:
            i = starts.pop(0)
            n = min(rows_per_request, tasks - i)
            if tsv:
                body = "word\n" + "".join(f"w{j}\n" for j in range(i, i + n))
                r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers={
                    **admin, "Content-Type": "text/tab-separated-values"}, content=body)
            else:
                r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin,
                                 json=task_rows(i, n))
            r.raise_for_status()
            assert r.json()["created"] == n, r.text[:300]

    await asyncio.gather(*(one() for _ in range(concurrency)))
    return time.perf_counter() - t0


async def make_pool(c: httpx.AsyncClient, admin: dict[str, str], *, tasks: int,
                    price_minor: int = 100, name: str = "bench", open_pool: bool = True) -> str:
    r = await c.post("/api/admin/projects", headers=admin, json={
        "name": name, "instructions": "Type the word.",
        "input_spec": [{"name": "word", "type": "string"}],
        "output_spec": [{"name": "text", "type": "string", "min_length": 1}]})
    r.raise_for_status()
    r = await c.post("/api/admin/pools", headers=admin, json={
        "project_id": r.json()["project_id"], "name": name, "price_minor": price_minor,
        "assignment_timeout_s": 3600})
    r.raise_for_status()
    pool_id: str = r.json()["pool_id"]
    r = await c.put(f"/api/admin/pools/{pool_id}/worker-share", headers=admin,
                    json={"share": "0.6"})
    r.raise_for_status()
    await upload(c, admin, pool_id, tasks)
    if open_pool:
        await open_(c, admin, pool_id)
    return pool_id


async def open_(c: httpx.AsyncClient, admin: dict[str, str], pool_id: str) -> None:
    r = await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)
    r.raise_for_status()


async def make_users(c: httpx.AsyncClient, admin: dict[str, str], role: str,
                     n: int, concurrency: int = 4) -> list[dict[str, str]]:
    """``n`` users of ``role``, a few at a time (each costs the gateway three password
    hashes, in its worker threads)."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> dict[str, str]:
        async with gate:
            return await _user(c, admin, role)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def setup(c: httpx.AsyncClient, bootstrap_password: str, *, tasks: int, workers: int,
                managers: int, price_minor: int = 100) -> dict[str, Any]:
    admin = await admin_login(c, bootstrap_password)
    pool_id = await make_pool(c, admin, tasks=tasks, price_minor=price_minor)
    ws = await make_users(c, admin, "worker", workers)
    ms = await make_users(c, admin, "manager", managers)
    return {"admin": admin, "pool_id": pool_id, "workers": ws, "managers": ms}


def _max_gap(times: Any, start: float, end: float) -> float | None:
    inside = sorted(t for t in times if start <= t <= end)
    if len(inside) < 2:
        return None
    return round(max(b - a for a, b in zip(inside, inside[1:], strict=False)), 2)


class Pace:
    """At most ``rate`` takes per second over all workers (0: as fast as they go). With the
    same offered load, two runs do the same work per second, so their CPU per lifecycle
    compares even when other work shares the machine."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.next = time.perf_counter()

    async def wait(self) -> None:
        if self.rate <= 0:
            return
        now = time.perf_counter()
        self.next = max(self.next, now) + 1 / self.rate
        if self.next - 1 / self.rate > now:
            await asyncio.sleep(self.next - 1 / self.rate - now)


async def drive(gateway_url: str, nats_url: str, ctx: dict[str, Any], *,
                seconds: float, nats_auth: dict[str, str] | None = None,
                rate: float = 0.0,
                seen_credits: list[float] | None = None,
                keep_raw: bool = False) -> dict[str, Any]:
    """Full lifecycles for ``seconds``; ``seen_credits`` (when given) gets the wall-clock
    time each ``ledger.credited`` event reached this client. ``keep_raw`` adds every
    latency (seconds, under ``raw``) for :func:`merge_drives`."""
    rec = Recorder()
    pace = Pace(rate)
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
                await pace.wait()
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
                    # nothing to review: look again in half a second (the review screen
                    # asks when the manager presses "next"; at 0.1 s, 16 managers of a run
                    # capped at 40 takes/s made two empty asks per lifecycle, which then
                    # made most of its CPU per lifecycle)
                    await asyncio.sleep(0.5)
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
    out = _lifecycles_summary(
        elapsed, completed, len(rec.accepted_at),
        # the longest time without any credit while the load ran (a pause a fault caused)
        _max_gap(rec.credited_at.values(), start, start + elapsed),
        rec.latencies, credit_lat, rec.errors)
    if keep_raw:
        out["raw"] = {"latencies": dict(rec.latencies), "accept_to_credit": credit_lat}
    return out


def _latency_summary(v: list[float]) -> dict[str, Any]:
    return {"n": len(v), "p50": pct(v, 50), "p99": pct(v, 99),
            "mean": round(statistics.fmean(v) * 1000, 1) if v else None}


def _lifecycles_summary(seconds: float, done: int, accepted: int, max_gap: float | None,
                        latencies: dict[str, list[float]], credit: list[float],
                        errors: dict[str, int]) -> dict[str, Any]:
    """The result of a lifecycle run (:func:`drive`, :func:`merge_drives`)."""
    return {
        "seconds": round(seconds, 1),
        "lifecycles": done,
        "lifecycles_per_s": round(done / seconds, 1) if seconds else 0.0,
        "accepted": accepted,
        "max_credit_gap_s": max_gap,
        "accepted_not_credited": accepted - len(credit),
        "latency_ms": {name: _latency_summary(v) for name, v in latencies.items()},
        "accept_to_credit_ms": {"n": len(credit), "p50": pct(credit, 50),
                                "p99": pct(credit, 99)},
        "errors": dict(errors),
    }


def _merged_calls(parts: list[dict[str, Any]]) -> tuple[dict[str, list[float]],
                                                       dict[str, int]]:
    """Every call's latencies (from ``raw``) and the error counts of several runs, together."""
    lat: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for p in parts:
        for name, v in p["raw"]["latencies"].items():
            lat[name].extend(v)
        for k, n in p["errors"].items():
            errors[k] += n
    return lat, errors


def merge_drives(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result of several :func:`drive` runs on the same stack (made with
    ``keep_raw``): counts and seconds summed, percentiles of every latency together."""
    lat, errors = _merged_calls(parts)
    credit = [x for p in parts for x in p["raw"]["accept_to_credit"]]
    gaps = [p["max_credit_gap_s"] for p in parts if p["max_credit_gap_s"] is not None]
    out = _lifecycles_summary(sum(p["seconds"] for p in parts),
                              sum(p["lifecycles"] for p in parts),
                              sum(p["accepted"] for p in parts), max(gaps) if gaps else None,
                              lat, credit, errors)
    out["segments"] = len(parts)
    return out


async def drive_pairs(gateway_url: str, ctx: dict[str, Any], *, seconds: float,
                      top_up: int = 250, keep_raw: bool = False) -> dict[str, Any]:
    """Take + submit pairs only (no review), the peer comparison's load: every worker of
    ``ctx`` takes and submits in a loop. The pool is held at the number of open tasks it
    started with: every ``top_up`` takes, ``top_up`` new tasks are uploaded (the same in
    every run, so the uploads cost the same per pair whatever the pool's size), and the
    takes left over at the end once more, so that the next run on the pool starts from
    its size. ``keep_raw`` adds every latency (seconds, under ``raw``) for
    :func:`merge_pairs`."""
    rec = Recorder()
    pool_id = ctx["pool_id"]
    stop_at = time.perf_counter() + seconds
    taken = 0
    done = 0
    uploaded = 0
    wake = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(base_url=gateway_url, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        http = Http(session)

        async def worker(headers: dict[str, str]) -> None:
            nonlocal taken, done
            while time.perf_counter() < stop_at:
                status, body = await rec.call("take", http(
                    "POST", "/api/worker/tasks/take", headers, json={"pool_id": pool_id}))
                if status != 200:
                    rec.errors[f"take:{status}"] += 1
                    await asyncio.sleep(0.05)
                    continue
                taken += 1
                if taken - uploaded >= top_up:
                    wake.set()
                aid = body["assignment_id"]
                status, _ = await rec.call("submit", http(
                    "POST", f"/api/worker/assignments/{aid}/submit", headers,
                    json={"answers": {"text": "ok"}}))
                if status == 200:
                    done += 1
                else:
                    rec.errors[f"submit:{status}"] += 1

        async def refill() -> None:
            nonlocal uploaded
            while time.perf_counter() < stop_at:
                try:
                    await asyncio.wait_for(wake.wait(), timeout=0.5)
                except TimeoutError:
                    continue
                wake.clear()
                while taken - uploaded >= top_up:
                    status, _ = await rec.call("top_up", http(
                        "POST", f"/api/admin/pools/{pool_id}/tasks", ctx["admin"],
                        json=task_rows(10**9 + uploaded, top_up)))
                    if status != 200:
                        rec.errors[f"top_up:{status}"] += 1
                        break
                    uploaded += top_up

        start = time.perf_counter()
        await asyncio.gather(*(worker(h) for h in ctx["workers"]), refill())
        elapsed = time.perf_counter() - start
        if taken > uploaded:
            status, _ = await rec.call("top_up", http(
                "POST", f"/api/admin/pools/{pool_id}/tasks", ctx["admin"],
                json=task_rows(10**9 + uploaded, taken - uploaded)))
            if status == 200:
                uploaded = taken
            else:
                rec.errors[f"top_up:{status}"] += 1
    out = _pairs_summary(elapsed, len(ctx["workers"]), done, uploaded, rec.latencies,
                         rec.errors)
    if keep_raw:
        out["raw"] = {"latencies": dict(rec.latencies), "seconds": elapsed}
    return out


def _pairs_summary(seconds: float, workers: int, pairs: int, topped_up: int,
                   latencies: dict[str, list[float]], errors: dict[str, int]) -> dict[str, Any]:
    """The result of a pairs run (:func:`drive_pairs`, :func:`merge_pairs`)."""
    return {
        "seconds": round(seconds, 1),
        "workers": workers,
        "pairs": pairs,
        "pairs_per_s": round(pairs / seconds, 1) if seconds else 0.0,
        "topped_up": topped_up,
        "latency_ms": {name: _latency_summary(v) for name, v in latencies.items()},
        "errors": dict(errors),
    }


def merge_pairs(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result of several :func:`drive_pairs` runs on the same pool (made with
    ``keep_raw``): counts and seconds summed, percentiles of every latency together."""
    lat, errors = _merged_calls(parts)
    out = _pairs_summary(sum(p["raw"]["seconds"] for p in parts), parts[0]["workers"],
                         sum(p["pairs"] for p in parts), sum(p["topped_up"] for p in parts),
                         lat, errors)
    out["segments"] = len(parts)
    out["segments_pairs_per_s"] = [p["pairs_per_s"] for p in parts]
    return out
