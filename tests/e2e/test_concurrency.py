"""Races through the HTTP API: no overbooking, no overdraft, no 500."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter


async def _pool(stack, *, tasks: int, price_minor: int, currency: str,
                share: str | None = None) -> str:
    c, admin = stack.client, stack.admin.headers
    r = await c.post("/api/admin/projects", headers=admin, json={
        "name": f"race-{uuid.uuid4().hex[:6]}", "instructions": "x",
        "input_spec": [{"name": "n", "type": "integer"}],
        "output_spec": [{"name": "ok", "type": "boolean"}]})
    assert r.status_code == 201, r.text
    r = await c.post("/api/admin/pools", headers=admin, json={
        "project_id": r.json()["project_id"], "name": "race", "price_minor": price_minor,
        "currency": currency, "overlap": 1})
    assert r.status_code == 201, r.text
    pool_id = r.json()["pool_id"]
    if share is not None:
        r = await c.put(f"/api/admin/pools/{pool_id}/worker-share", headers=admin,
                        json={"share": share})
        assert r.status_code == 200, r.text
    r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin,
                     json=[{"n": i} for i in range(tasks)])
    assert r.status_code == 200 and r.json()["created"] == tasks, r.text
    r = await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)
    assert r.status_code == 200, r.text
    return pool_id


async def test_fifty_concurrent_takes_on_ten_tasks_make_ten_assignments(stack) -> None:
    pool_id = await _pool(stack, tasks=10, price_minor=10, currency="SEK")
    workers = await asyncio.gather(*(stack.user("worker") for _ in range(50)))
    responses = await asyncio.gather(*(
        stack.client.post("/api/worker/tasks/take", headers=w.headers, json={"pool_id": pool_id})
        for w in workers))
    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 10, 404: 40}, codes
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 404} == \
        {"no_tasks_available"}
    task_ids = [r.json()["task_id"] for r in responses if r.status_code == 200]
    assert len(set(task_ids)) == 10
    r = await stack.client.get(f"/api/pools/{pool_id}/stats", headers=stack.admin.headers)
    assert r.status_code == 200, r.text


async def test_fifty_concurrent_payouts_of_30_against_100_make_three_holds(stack) -> None:
    c = stack.client
    pool_id = await _pool(stack, tasks=1, price_minor=100, currency="NOK", share="1.0")
    worker, manager = await stack.user("worker"), await stack.user("manager")
    r = await c.post("/api/worker/tasks/take", headers=worker.headers, json={"pool_id": pool_id})
    assert r.status_code == 200, r.text
    aid = r.json()["assignment_id"]
    r = await c.post(f"/api/worker/assignments/{aid}/submit", headers=worker.headers,
                     json={"answers": {"ok": True}})
    assert r.status_code == 200, r.text
    for _ in range(200):
        r = await c.post(f"/api/review/submissions/{aid}/lock", headers=manager.headers)
        if r.status_code == 200:
            break
        await asyncio.sleep(0.1)
    r = await c.post(f"/api/review/submissions/{aid}/accept", headers=manager.headers, json={})
    assert r.status_code == 200, r.text

    async def balance() -> dict:
        r = await c.get("/api/worker/balance", headers=worker.headers)
        return {b["currency"]: b for b in r.json()["balances"]}.get("NOK") or {}

    for _ in range(200):
        if (await balance()).get("available_minor") == 100:
            break
        await asyncio.sleep(0.1)
    assert (await balance())["available_minor"] == 100

    responses = await asyncio.gather(*(
        c.post("/api/worker/payouts", headers=worker.headers,
               json={"amount_minor": 30, "currency": "NOK", "comment": f"try {i}"})
        for i in range(50)))
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 3, 409: 47}, codes
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == \
        {"insufficient_funds"}
    b = await balance()
    assert (b["available_minor"], b["on_hold_minor"]) == (10, 90)
    # A client retrying one request with its Idempotency-Key holds the money once: the last
    # 10 go out as five retries of one request (one hold of 10), never a second hold.
    body = {"amount_minor": 10, "currency": "NOK", "comment": "retried"}
    retried = await asyncio.gather(*(
        c.post("/api/worker/payouts", headers={**worker.headers, "Idempotency-Key": "pay-42"},
               json=body) for _ in range(5)))
    assert {r.status_code for r in retried} == {201}, [r.text for r in retried]
    assert len({r.json()["payout_id"] for r in retried}) == 1
    b = await balance()
    assert (b["available_minor"], b["on_hold_minor"]) == (0, 100)
    r = await c.post("/api/worker/payouts", json=body,
                     headers={**worker.headers, "Idempotency-Key": "has a space"})
    assert r.status_code == 422, r.text
