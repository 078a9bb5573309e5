"""An owner lifts a rule's restriction by hand: the worker may take again at once."""

from __future__ import annotations

from servicekit.testing import eventually


async def test_admin_lifts_a_restriction_and_the_worker_takes_again(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    worker = await stack.user("worker")
    manager = await stack.user("manager")
    pool_id = await stack.pool(input_spec=[{"name": "q"}], output_spec=[{"name": "a"}],
                               rows=[{"q": str(i)} for i in range(3)], price_minor=100)
    r = await c.post("/api/admin/rules", headers=admin, json={
        "name": "one answer is enough", "scope": "pool", "pool_id": pool_id,
        "collector": {"kind": "submitted_answers"},
        "conditions": [{"field": "submitted_count_24h", "operator": ">=", "value": 1}],
        "action": {"type": "restriction", "scope": "pool", "duration_unit": "days",
                   "duration": 1, "private_comment": "cap"}})
    assert r.status_code == 201, r.text
    taken = await c.post("/api/worker/tasks/take", headers=worker.headers,
                         json={"pool_id": pool_id})
    assert taken.status_code == 200, taken.text
    r = await c.post(f"/api/worker/assignments/{taken.json()['assignment_id']}/submit",
                     headers=worker.headers, json={"answers": {"a": "x"}})
    assert r.status_code == 200, r.text

    async def restricted():
        r = await c.get("/api/worker/overview", headers=worker.headers)
        return r.json()["restrictions"]

    [shown] = await eventually(restricted)
    assert shown["scope"] == "pool" and shown["name"] == "pool" and shown["until"]
    r = await c.get(f"/api/restrictions?worker_id={worker.user_id}", headers=admin)
    [restriction] = r.json()["items"]
    r = await c.post(f"/api/admin/restrictions/{restriction['restriction_id']}/lift",
                     headers=manager.headers)
    assert r.status_code == 403                     # managers see restrictions, owners lift
    r = await c.post(f"/api/admin/restrictions/{restriction['restriction_id']}/lift",
                     headers=admin)
    assert r.status_code == 200 and r.json()["lifted_at"], r.text
    again = await c.post(f"/api/admin/restrictions/{restriction['restriction_id']}/lift",
                         headers=admin)
    assert again.json()["lifted_at"] == r.json()["lifted_at"]     # lifting twice: no change
    r = await c.post("/api/admin/restrictions/nope/lift", headers=admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "restriction_not_found"

    async def free_again():
        r = await c.get("/api/worker/overview", headers=worker.headers)
        return r.json()["restrictions"] == []

    await eventually(free_again)

    async def takes():              # once the new worker's pause between takes is over
        r = await c.post("/api/worker/tasks/take", headers=worker.headers,
                         json={"pool_id": pool_id})
        assert r.status_code in (200, 429), r.text
        return r.status_code == 200

    await eventually(takes)
    r = await c.get("/api/admin/audit?kind=restriction.lifted", headers=admin)
    assert [i["target"] for i in r.json()["items"]] == [worker.user_id, worker.user_id]
