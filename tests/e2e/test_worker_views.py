"""The worker's composed views: the credit per task shown before taking is the credit the
ledger books after acceptance; an active assignment comes back with its form after a new
login; the take limits and restrictions are explained."""

from __future__ import annotations

from servicekit.testing import eventually


async def test_overview_credit_is_the_booked_credit_and_active_work_survives_a_new_login(
        stack) -> None:
    c, admin = stack.client, stack.admin.headers
    worker = await stack.user("worker")
    manager = await stack.user("manager")
    pool_id = await stack.pool(input_spec=[{"name": "q"}],
                               output_spec=[{"name": "a", "allowed_values": ["yes", "no"]}],
                               rows=[{"q": "one"}, {"q": "two"}], price_minor=777, currency="RUB")
    r = await c.put(f"/api/admin/pools/{pool_id}/worker-share", headers=admin,
                    json={"share": "0.3333"})
    assert r.status_code == 200, r.text
    r = await c.get("/api/worker/overview", headers=worker.headers)
    assert r.status_code == 200, r.text
    offer = next(p for p in r.json()["pools"] if p["pool_id"] == pool_id)
    assert offer["credit_minor"] == 777 * 3333 // 10_000 and offer["currency"] == "RUB"
    assert offer["available_tasks"] == 2
    take = r.json()["take"]
    assert take["can_take"] and take["trust_level"] == "new" and take["active"] == 0

    taken = await c.post("/api/worker/tasks/take", headers=worker.headers,
                         json={"pool_id": pool_id})
    assert taken.status_code == 200, taken.text
    assignment_id = taken.json()["assignment_id"]
    again = await stack.login(worker.login, worker.password)          # a new login
    r = await c.get("/api/worker/active",
                    headers={"Authorization": f"Bearer {again['token']}"})
    assert r.status_code == 200, r.text
    [active] = r.json()["items"]
    assert active["assignment_id"] == assignment_id
    assert active["instructions"] == "Do it." and active["pool_name"] == "pool"
    assert active["output_spec"][0]["allowed_values"] == ["yes", "no"]
    r = await c.get("/api/worker/overview", headers=worker.headers)
    assert r.json()["take"]["active"] == 1
    assert r.json()["take"]["blocked_by"] in (None, "min_pause")   # 1 of 3; maybe the pause

    r = await c.post(f"/api/worker/assignments/{assignment_id}/submit", headers=worker.headers,
                     json={"answers": {"a": "yes"}})
    assert r.status_code == 200, r.text

    async def locked():
        r = await c.post(f"/api/review/submissions/{assignment_id}/lock", headers=manager.headers)
        return r.status_code == 200

    await eventually(locked)
    r = await c.post(f"/api/review/submissions/{assignment_id}/accept", headers=manager.headers)
    assert r.status_code == 200, r.text

    async def booked():
        r = await c.get("/api/worker/ledger", headers=worker.headers)
        return [e["amount_minor"] for e in r.json()["items"] if e["assignment_id"] == assignment_id]

    assert await eventually(booked) == [offer["credit_minor"]]
    # managers and admins have no worker views
    assert (await c.get("/api/worker/overview", headers=manager.headers)).status_code == 403
    assert (await c.get("/api/worker/active", headers=admin)).status_code == 403
