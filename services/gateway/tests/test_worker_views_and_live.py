"""The gateway's composed worker views (pure parts) and the live-update hub on a real bus."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest

from contracts.rpc import tasks as tasks_rpc
from gateway_service.routes.live import LiveHub
from gateway_service.routes.worker_views import take_state, worker_credit
from servicekit.testing.natsserver import NatsServer

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LIMITS = tasks_rpc.TrustLimits(levels=[
    tasks_rpc.TrustLevelLimits(level="new", max_active=2, min_pause_s=5.0)])


def profile(active: int, last_take_s_ago: float | None) -> tasks_rpc.WorkerProfile:
    return tasks_rpc.WorkerProfile(
        worker_id="w1", trust_level="new", skills={}, restrictions=[], active_assignments=active,
        last_take_at=None if last_take_s_ago is None else NOW - timedelta(seconds=last_take_s_ago),
        created_at=NOW)


def test_take_state_says_which_limit_holds_and_for_how_long() -> None:
    free = take_state(profile(0, None), LIMITS, NOW)
    assert free.can_take and free.blocked_by is None and free.max_active == 2
    pause = take_state(profile(1, 2.0), LIMITS, NOW)
    assert not pause.can_take and pause.blocked_by == "min_pause" and pause.pause_left_s == 3.0
    assert take_state(profile(1, 6.0), LIMITS, NOW).can_take
    full = take_state(profile(2, 60.0), LIMITS, NOW)
    assert not full.can_take and full.blocked_by == "max_active"


def test_worker_credit_rounds_down_like_the_ledger() -> None:
    assert worker_credit(777, 3333) == 258          # 258.9841 -> 258
    assert worker_credit(100, 10_000) == 100 and worker_credit(100, 0) == 0


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory):
    server = NatsServer(tmp_path_factory.mktemp("nats-live"))
    server.start()
    yield server
    server.stop()


def envelope(subject: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"event_id": "e", "type": subject, "producer": "x", "data": data}).encode()


async def drained(q: asyncio.Queue[str]) -> list[str]:
    await asyncio.sleep(0.2)
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


async def test_hints_reach_only_the_worker_concerned_and_the_staff(bus) -> None:
    nc = await nats.connect(bus.url)
    hub = LiveHub()
    try:
        await hub.ensure_started(nc)
        await hub.ensure_started(nc)                  # once per process
        assert len(hub._subs) == 9
        mine, other, manager = asyncio.Queue(), asyncio.Queue(), asyncio.Queue()
        hub.listeners.update({mine: ("w1", "worker"), other: ("w2", "worker"),
                              manager: ("m1", "manager")})
        await nc.publish("ledger.credited", envelope("ledger.credited",
                                                     {"worker_id": "w1", "amount_minor": 5}))
        await nc.publish("task.submitted", envelope("task.submitted",
                                                    {"worker_id": "w2", "price_minor": 98765}))
        await nc.publish("review.rejected", envelope("review.rejected", {"worker_id": "w1"}))
        await nc.publish("ledger.payout.approved", b"not json")   # ignored, not a crash
        await nc.flush()
        assert await drained(mine) == ["credits", "decisions"]
        assert await drained(other) == []             # w2's own submission is no news to w2
        assert await drained(manager) == ["review_queue", "review_queue"]
    finally:
        await hub.stop()
        await nc.close()


async def test_support_hints_reach_the_ticket_owner_the_thread_and_the_staff(bus) -> None:
    nc = await nats.connect(bus.url)
    hub = LiveHub()
    try:
        await hub.ensure_started(nc)
        worker, other, manager = asyncio.Queue(), asyncio.Queue(), asyncio.Queue()
        hub.listeners.update({worker: ("w1", "worker"), other: ("w2", "worker"),
                              manager: ("m1", "manager")})
        for subject, data in [
                ("support.ticket.answered", {"ticket_id": "t", "user_id": "w1"}),
                ("support.ticket.reopened", {"ticket_id": "t", "user_id": "w1"}),
                ("support.chat.posted", {"kind": "assignment", "ref": "a", "worker_id": "w1",
                                         "author_id": "m1"}),
                ("support.chat.posted", {"kind": "pool", "ref": "p", "author_id": "w2"}),
                ("support.chat.muted", {"user_id": "w2", "by_user_id": "m1"})]:
            await nc.publish(subject, envelope(subject, data))
        await nc.flush()
        assert await drained(worker) == ["tickets", "chat", "chat"]
        assert await drained(other) == ["chat", "chat"]          # the pool chat, the mute
        assert await drained(manager) == ["tickets", "chat", "chat"]
    finally:
        await hub.stop()
        await nc.close()
