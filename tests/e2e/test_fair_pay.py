"""The fair-pay floor: pools estimated below the owner's floor do not open, the measured
median of accepted work replaces the declared figure, workers see their hourly earning
before they take, managers see no money, and without a floor everything opens."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from gateway_service.routes.common import hidden_keys
from servicekit.testing import eventually

SPEC = {"input_spec": [{"name": "q"}], "output_spec": [{"name": "a"}]}
CUR = "EUR"  # a currency of its own: the floor is platform-wide and the stack is shared
# take -> submit of the ten accepted assignments: median (40 + 50) / 2 = 45 s
DURATIONS = [30, 30, 40, 40, 40, 50, 50, 60, 70, 200]


async def _floor(stack, minor: int | None) -> dict[str, Any]:
    r = await stack.client.put(f"/api/admin/fair-pay/floors/{CUR}", headers=stack.admin.headers,
                               json={"floor_minor_per_hour": minor})
    assert r.status_code == 200, r.text
    return r.json()


async def _draft(stack, rows: int, **pool: Any) -> str:
    pool_id = await stack.pool(**SPEC, currency=CUR, **pool)
    r = await stack.client.post(f"/api/admin/pools/{pool_id}/tasks", headers=stack.admin.headers,
                                json=[{"q": f"q{i}"} for i in range(rows)])
    assert r.status_code == 200, r.text
    r = await stack.client.put(f"/api/admin/pools/{pool_id}/worker-share",
                               headers=stack.admin.headers, json={"share": "0.5"})
    assert r.status_code == 200, r.text
    return pool_id


async def _open(stack, pool_id: str):
    return await stack.client.post(f"/api/admin/pools/{pool_id}/open", headers=stack.admin.headers)


async def _fair_pay(stack, pool_id: str) -> dict[str, Any]:
    r = await stack.client.get(f"/api/admin/pools/{pool_id}/fair-pay", headers=stack.admin.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _offer(stack, worker, pool_id: str) -> dict[str, Any]:
    r = await stack.client.get("/api/worker/overview", headers=worker.headers)
    assert r.status_code == 200, r.text
    return next(p for p in r.json()["pools"] if p["pool_id"] == pool_id)


async def _work(stack, worker, pool_id: str, n: int) -> list[str]:
    done = []
    for _ in range(n):
        a = await stack.take(worker, pool_id)
        r = await stack.client.post(f"/api/worker/assignments/{a['assignment_id']}/submit",
                                    headers=worker.headers, json={"answers": {"a": "x"}})
        assert r.status_code == 200, r.text
        done.append(a["assignment_id"])
    return done


async def _accept(stack, manager, assignment_id: str) -> None:
    c = stack.client

    async def locked() -> bool:
        r = await c.post(f"/api/review/submissions/{assignment_id}/lock", headers=manager.headers)
        return r.status_code == 200

    await eventually(locked)
    r = await c.post(f"/api/review/submissions/{assignment_id}/accept", headers=manager.headers)
    assert r.status_code == 200, r.text


async def test_the_floor_refuses_pools_below_it_and_the_median_replaces_the_declared_figure(
        stack) -> None:
    c, admin = stack.client, stack.admin.headers
    manager = await stack.user("manager")
    before = await _floor(stack, 3000)                 # 30.00 EUR an hour
    try:
        assert before["new_minor_per_hour"] == 3000
        r = await c.get("/api/admin/fair-pay/floors", headers=admin)
        assert {"currency": CUR, "floor_minor_per_hour": 3000} .items() <= next(
            f for f in r.json()["items"] if f["currency"] == CUR).items()

        # price 100, share 0.5: 50 per task; 120 s declared -> 30 tasks -> 1500 an hour
        slow = await _draft(stack, 10, price_minor=100, expected_seconds_per_task=120)
        r = await _open(stack, slow)
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert err["code"] == "below_fair_pay_floor"
        assert err["details"]["estimate_minor_per_hour"] == 1500
        assert err["details"]["floor_minor_per_hour"] == 3000
        assert err["details"]["source"] == "declared"
        # with no figure at all the estimate is unknown: refused, asking for one
        unknown = await _draft(stack, 1, price_minor=100)
        r = await _open(stack, unknown)
        assert r.status_code == 409 and r.json()["error"]["code"] == "fair_pay_unknown", r.text
        # 60 s declared: 3000 an hour, at the floor: opens
        r = await c.patch(f"/api/admin/pools/{slow}", headers=admin,
                          json={"expected_seconds_per_task": 60})
        assert r.status_code == 200, r.text
        r = await _open(stack, slow)
        assert r.status_code == 200 and r.json()["status"] == "open", r.text
        pool_id = slow

        # the worker sees their own hourly earning before taking; a manager sees no money
        worker = await stack.user("worker")
        offer = await _offer(stack, worker, pool_id)
        assert (offer["credit_minor"], offer["hourly_minor"], offer["hourly_source"]) == (
            50, 3000, "declared")
        r = await c.get(f"/api/pools/{pool_id}", headers=manager.headers)
        assert r.status_code == 200 and hidden_keys(r.json()) == [] and "hourly" not in r.text
        for path in ("/api/worker/overview", f"/api/admin/pools/{pool_id}/fair-pay",
                     "/api/admin/fair-pay/pools", "/api/admin/fair-pay/floors"):
            assert (await c.get(path, headers=manager.headers)).status_code == 403, path

        # ten accepted assignments with known take -> submit times
        workers = [worker] + [await stack.user("worker") for _ in range(4)]
        done = [aid for ids in await asyncio.gather(*(_work(stack, w, pool_id, 2)
                                                      for w in workers)) for aid in ids]
        async with stack.services["tasks"].engine.begin() as conn:
            for aid, seconds in zip(done, DURATIONS, strict=True):
                await conn.execute(text(
                    "UPDATE assignments SET taken_at = submitted_at - make_interval(secs => :s)"
                    " WHERE assignment_id = :a"), {"s": seconds, "a": aid})
        for aid in done[:9]:
            await _accept(stack, manager, aid)

        async def counted(n: int):
            fp = await _fair_pay(stack, pool_id)
            return fp if fp["accepted_timed"] == n else None

        nine = await eventually(lambda: counted(9))
        assert (nine["source"], nine["estimate_minor_per_hour"]) == ("declared", 3000)
        await _accept(stack, manager, done[9])
        fp = await eventually(lambda: counted(10))
        # 50 x 3600 / 45 = 4000
        assert fp["source"] == "measured" and fp["measured_seconds"] == 45.0
        assert fp["estimate_minor_per_hour"] == 4000 and fp["warning"] is None
        offer = await _offer(stack, worker, pool_id)
        assert (offer["hourly_minor"], offer["hourly_source"]) == (4000, "measured")

        # the floor rises above it: the open pool is flagged for the requester, not closed
        await _floor(stack, 5000)
        fp = await _fair_pay(stack, pool_id)
        assert fp["warning"] == "below_fair_pay_floor" and fp["status"] == "open"
        r = await c.get("/api/admin/fair-pay/pools?status=open&limit=500", headers=admin)
        listed = next(p for p in r.json()["items"] if p["pool_id"] == pool_id)
        assert listed["warning"] == "below_fair_pay_floor"
        r = await c.get("/api/admin/audit?kind=fair_pay_floor.changed", headers=admin)
        assert any(e["kind"] == "fair_pay_floor.changed" and e["target"] == CUR
                   and e["details"]["new_minor_per_hour"] == 5000
                   for e in r.json()["items"]), r.text
    finally:
        await _floor(stack, None)

    # floor off: everything opens, the unknown one too
    r = await c.get("/api/admin/fair-pay/floors", headers=admin)
    assert all(f["currency"] != CUR for f in r.json()["items"])
    r = await _open(stack, unknown)
    assert r.status_code == 200 and r.json()["status"] == "open", r.text
    fp = await _fair_pay(stack, unknown)
    assert (fp["source"], fp["floor_minor_per_hour"], fp["warning"]) == ("unknown", None, None)
    worker = await stack.user("worker")
    offer = await _offer(stack, worker, unknown)
    assert offer["hourly_minor"] is None and offer["hourly_source"] is None
