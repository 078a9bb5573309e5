"""The admin's API surface against the real services: rules, trust limits, shares, ledger."""

from __future__ import annotations

import uuid


async def test_admin_surface_round_trips(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    manager = await stack.user("manager")
    worker = await stack.user("worker")

    r = await c.post("/api/admin/projects", headers=admin, json={
        "name": f"admin-{uuid.uuid4().hex[:6]}", "input_spec": [{"name": "q"}],
        "output_spec": [{"name": "a"}]})
    assert r.status_code == 201, r.text
    project_id = r.json()["project_id"]
    r = await c.patch(f"/api/admin/projects/{project_id}", headers=admin,
                      json={"instructions": "Answer the question."})
    assert r.status_code == 200 and r.json()["instructions"] == "Answer the question.", r.text
    r = await c.get(f"/api/projects/{project_id}", headers=manager.headers)
    assert r.status_code == 200 and r.json()["name"].startswith("admin-")
    r = await c.post("/api/admin/pools", headers=admin, json={
        "project_id": project_id, "name": "p", "price_minor": 150})
    pool_id = r.json()["pool_id"]
    r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin, json=[{"q": "2+2?"}])
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    r = await c.get(f"/api/pools/{pool_id}/tasks", headers=manager.headers)
    assert r.status_code == 200 and r.json()["total"] == 1
    for step, expected in (("open", "open"), ("close", "closed"), ("archive", "archived")):
        r = await c.post(f"/api/admin/pools/{pool_id}/{step}", headers=admin)
        assert r.status_code == 200 and r.json()["status"] == expected, r.text
    r = await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)
    assert 400 <= r.status_code < 500                      # an archived pool stays archived

    # Trust limits and a worker's profile.
    r = await c.get("/api/admin/trust-limits", headers=admin)
    assert r.status_code == 200, r.text
    levels = {lv["level"]: lv for lv in r.json()["levels"]}
    r = await c.put("/api/admin/trust-limits", headers=admin,
                    json={**levels["trusted"], "max_active": levels["trusted"]["max_active"]})
    assert r.status_code == 200, r.text
    r = await c.get("/api/worker/profile", headers=worker.headers)
    assert r.status_code == 200 and r.json()["worker_id"] == worker.user_id, r.text
    r = await c.get(f"/api/admin/workers/{worker.user_id}", headers=admin)
    assert r.status_code == 200, r.text

    # Rules: an incomplete rule is refused with what is missing; a complete one round-trips.
    r = await c.post("/api/admin/rules", headers=admin, json={"name": "half a rule"})
    assert r.status_code == 422, r.text
    rule = {"name": "fast answers", "scope": "pool", "pool_id": pool_id,
            "collector": {"kind": "fast_answers", "history_size": 5,
                          "fast_submit_threshold_seconds": 3},
            "conditions": [{"field": "fast_submitted_count", "operator": ">=", "value": 3}],
            "action": {"type": "restriction", "scope": "pool", "duration_unit": "days",
                       "duration": 1, "private_comment": "too fast"}}
    r = await c.post("/api/admin/rules", headers=admin, json=rule)
    assert r.status_code == 201, r.text
    rule_id = r.json()["rule_id"]
    r = await c.post("/api/admin/rules", headers=manager.headers, json=rule)
    assert r.status_code == 403
    r = await c.get(f"/api/rules?pool_id={pool_id}", headers=manager.headers)
    assert [x["rule_id"] for x in r.json()["items"]] == [rule_id]
    r = await c.get(f"/api/rules/{rule_id}", headers=manager.headers)
    assert r.status_code == 200
    r = await c.patch(f"/api/admin/rules/{rule_id}", headers=admin, json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False, r.text
    r = await c.get(f"/api/rules/explain/{worker.user_id}", headers=manager.headers)
    assert r.status_code == 200 and r.json()["total"] == 0, r.text
    r = await c.get("/api/restrictions", headers=manager.headers)
    assert r.status_code == 200, r.text
    r = await c.post("/api/rules/backtest", headers=manager.headers, json={"rule": rule})
    assert r.status_code == 200 and r.json()["hits"] == [], r.text
    r = await c.delete(f"/api/admin/rules/{rule_id}", headers=admin)
    assert r.status_code == 200 and r.json()["deleted"] is True, r.text
    r = await c.get("/api/rules", headers=worker.headers)
    assert r.status_code == 403

    # Shares and the ledger's admin views.
    r = await c.get("/api/admin/worker-share/default", headers=admin)
    assert r.status_code == 200 and 0 <= r.json()["share_bps"] <= 10_000, r.text
    r = await c.put(f"/api/admin/pools/{pool_id}/worker-share", headers=admin,
                    json={"share": 0.55})
    assert r.status_code == 200 and r.json()["share_bps"] == 5500, r.text
    r = await c.put(f"/api/admin/pools/{pool_id}/worker-share", headers=admin,
                    json={"share": 1.5})
    assert r.status_code == 422, r.text
    r = await c.get(f"/api/admin/pools/{pool_id}/worker-share", headers=admin)
    assert r.json()["source"] == "pool"
    r = await c.get("/api/admin/worker-share", headers=admin)
    assert any(p["pool_id"] == pool_id for p in r.json()["pools"])
    r = await c.get(f"/api/admin/worker-share/audit?pool_id={pool_id}", headers=admin)
    assert r.status_code == 200 and r.json()["items"][0]["new_share_bps"] == 5500
    r = await c.get("/api/admin/audit?kind=worker_share.changed", headers=admin)
    assert any(i["target"] == pool_id for i in r.json()["items"]), r.text
    r = await c.get(f"/api/admin/pools/{pool_id}/worker-share", headers=manager.headers)
    assert r.status_code == 403
    for path in ("/api/admin/ledger/workers", "/api/admin/ledger/consistency",
                 f"/api/admin/ledger/workers/{worker.user_id}/balance",
                 f"/api/admin/ledger/workers/{worker.user_id}/history",
                 "/api/admin/payouts"):
        r = await c.get(path, headers=admin)
        assert r.status_code == 200, (path, r.text)
    r = await c.get("/api/admin/ledger/consistency", headers=admin)
    assert r.json()["ok"] is True, r.text
