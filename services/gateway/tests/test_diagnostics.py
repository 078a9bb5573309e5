"""Admin diagnostics: a hung service is named within 2 s, the gateway reports itself,
JetStream's quorum and each stream's replicas (docs/ops-code-needs.md section 8)."""

from __future__ import annotations

import asyncio
import copy
import sys
import time
from pathlib import Path
from typing import Any

from nats.js.api import StreamInfo

sys.path.insert(0, str(Path(__file__).parent))

from test_security_support import settings_for, start_gateway, stop_gateway

from contracts.rpc import ops
from gateway_service.routes import diagnostics as diag


async def test_a_hung_service_is_named_failing_within_two_seconds(own_nats,
                                                                   database_url) -> None:
    ctx = await start_gateway(settings_for(own_nats.url, database_url))
    hung: list[Any] = []

    async def never_answer(msg: Any) -> None:  # takes the request, answers nothing
        hung.append(msg)

    sub = await ctx.gw.svc.nc.subscribe(ops.DIAGNOSTICS["tasks"].subject, cb=never_answer)
    try:
        admin = await ctx.admin()
        t0 = time.perf_counter()
        r = await ctx.client.get("/api/admin/diagnostics", headers=admin)
        elapsed = time.perf_counter() - t0
        assert r.status_code == 200, r.text
        assert elapsed < 2.0, f"the report took {elapsed:.2f} s"
        assert hung, "the hung service was asked"
        body = r.json()
        by = {s["service"]: s for s in body["services"]}
        assert by["tasks"]["status"] == "down" and "timeout" in by["tasks"]["error"]
        assert by["review"]["status"] == "down"  # nobody answers: at once
        assert any(p.startswith("tasks: down") for p in body["problems"])
        # the gateway itself, as the kit reports it
        assert by["gateway"]["status"] == "ok", by["gateway"]
        assert by["gateway"]["diagnostics"]["database"] == "ok"
        assert by["gateway"]["outbox_lag_seconds"] is not None
        js = body["bus"]["jetstream"]
        assert js["quorum"] is True and js["clustered"] is False and js["cluster_size"] == 1
        streams = {s["name"]: s for s in body["bus"]["streams"]}
        assert streams["TASK"]["replicas"] == 1 and streams["TASK"]["lagging_replicas"] == []
    finally:
        await sub.unsubscribe()
        await stop_gateway(ctx)


# What nats-server 2.x answered on a 3-node cluster on loopback with 2 nodes killed (the
# stream leaderless, both other replicas not current) and before (healthy).
LEADERLESS = {"config": {"name": "TASK", "num_replicas": 3, "subjects": ["task.>"]},
              "state": {"messages": 5, "bytes": 900, "consumer_count": 2, "first_seq": 1,
                        "last_seq": 5},
              "cluster": {"name": "c1", "leader": None, "replicas": [
                  {"name": "n0", "current": True, "active": 1_689_773_743},
                  {"name": "n1", "current": False, "active": 0},
                  {"name": "n2", "current": False, "active": 0}]}}
HEALTHY = {"config": {"name": "DLQ", "num_replicas": 3, "subjects": ["dlq.>"]},
           "state": {"messages": 0, "bytes": 0, "consumer_count": 0, "first_seq": 0,
                     "last_seq": 0},
           "cluster": {"name": "c1", "leader": "n1", "replicas": [
               {"name": "n0", "current": True, "active": 1_489_422},
               {"name": "n2", "current": True, "active": 1_201_673}]}}


def info(response: dict) -> StreamInfo:
    return StreamInfo.from_response(copy.deepcopy(response))  # it converts in place


class FakeNc:
    _server_info = {"cluster": "c1", "connect_urls": ["a:1", "b:2", "c:3"]}


def test_lost_quorum_and_lagging_replicas_are_reported() -> None:
    infos = [info(LEADERLESS), info(HEALTHY)]
    task, dlq = (diag._stream_state(i) for i in infos)
    assert (task.replicas, task.leader, task.lagging_replicas) == (3, None, ["n1", "n2"])
    assert (dlq.leader, dlq.lagging_replicas) == ("n1", [])
    unavailable = RuntimeError("nats: JetStream system temporarily unavailable (10008)")
    lost = diag._jetstream(FakeNc(), unavailable, infos, None)
    assert lost.quorum is False and lost.clustered and lost.cluster_size == 3
    assert "temporarily unavailable" in (lost.error or "")
    assert {p.name: p.current for p in lost.peers} == {"n0": True, "n1": False, "n2": False}
    healthy = diag._jetstream(FakeNc(), object(), infos[1:], {
        "leader": "n1", "cluster_size": 3,
        "replicas": [{"name": "n0", "current": True, "active": 2_000_000_000},
                     {"name": "n2", "current": False, "active": 9_000_000_000}]})
    assert healthy.quorum and healthy.meta_leader == "n1" and healthy.cluster_size == 3
    assert [(p.name, p.current, p.active_s) for p in healthy.peers] == [
        ("n0", True, 2.0), ("n1", True, None), ("n2", False, 9.0)]
    # the leader still answers but hears from no follower: no quorum, before it steps down
    alone = diag._jetstream(FakeNc(), object(), [], {
        "leader": "n0", "cluster_size": 3, "quorum_needed": 2,
        "replicas": [{"name": "n1", "current": False}, {"name": "n2", "current": False}]})
    assert alone.quorum is False and "1 of 3 meta peers current" in (alone.error or "")
    # a follower's view (the leader's monitor did not answer) names the leader once
    follower = diag._jetstream(FakeNc(), object(), [], {
        "leader": "n1", "cluster_size": 3,
        "replicas": [{"name": "n1", "current": True, "active": 1}]})
    assert [p.name for p in follower.peers] == ["n1"] and follower.meta_leader == "n1"


async def test_a_hung_check_costs_the_bus_report_its_own_timeout_only() -> None:
    class HungJs:
        async def account_info(self) -> None:
            await asyncio.sleep(30)

        async def stream_info(self, name: str) -> StreamInfo:
            if name == "DLQ":
                await asyncio.sleep(30)
            return info({**HEALTHY, "config": {"name": name, "num_replicas": 3}})

    class Nc(FakeNc):
        is_connected = True

        def jetstream(self) -> HungJs:
            return HungJs()

    t0 = time.perf_counter()
    bus = await diag._bus_health(Nc(), [])
    assert time.perf_counter() - t0 < diag.CHECK_TIMEOUT_S + 0.5
    assert bus.status == "down" and bus.jetstream is not None and not bus.jetstream.quorum
    assert "DLQ" in (bus.error or "") and "no quorum" in (bus.error or "")
    assert "DLQ" not in {s.name for s in bus.streams} and len(bus.streams) >= 5
