"""Requester budgets through the gateway: a pool whose maximum cost exceeds its requester's
budget does not open; after acceptances and a close, spent + released = reserved and the
worker and platform parts = spent, to the minor unit; a payout destination is masked for
everyone but the owner."""

from __future__ import annotations

import uuid

from servicekit.testing import eventually

PRICE = 301
CURRENCY = "NOK"
SHARE_BPS = 5000


async def test_budget_reserved_spent_and_released_to_the_minor_unit(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    workers = [await stack.user("worker") for _ in range(3)]
    manager = await stack.user("manager")

    r = await c.post("/api/admin/requesters", headers=admin,
                     json={"name": f"Acme {uuid.uuid4().hex[:4]}", "currency": CURRENCY})
    assert r.status_code == 201, r.text
    rid = r.json()["requester_id"]
    r = await c.post(f"/api/admin/requesters/{rid}/top-ups", headers=admin,
                     json={"amount_minor": 900, "comment": "invoice 17"})
    assert r.status_code == 201 and r.json()["requester"]["available_minor"] == 900, r.text

    r = await c.post("/api/admin/projects", headers=admin, json={
        "name": f"budget-{uuid.uuid4().hex[:6]}", "instructions": "Name the colour.",
        "input_spec": [{"name": "n", "type": "integer"}],
        "output_spec": [{"name": "colour", "type": "string", "allowed_values": ["red", "blue"]}]})
    assert r.status_code == 201, r.text
    r = await c.post("/api/admin/pools", headers=admin, json={
        "project_id": r.json()["project_id"], "name": "budgeted", "price_minor": PRICE,
        "currency": CURRENCY, "overlap": 1})
    assert r.status_code == 201, r.text
    pool_id = r.json()["pool_id"]
    r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin,
                     json=[{"n": 1}, {"n": 2}, {"n": 3}])
    assert r.status_code == 200 and r.json()["created"] == 3, r.text
    r = await c.put(f"/api/admin/pools/{pool_id}/budget", headers=admin,
                    json={"requester_id": rid})
    assert r.status_code == 200 and r.json()["funded_by"] == "requester", r.text

    # 3 x 301 = 903 > 900: the pool does not open, and says by how much
    r = await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "budget_insufficient"
    assert (err["details"]["required_minor"], err["details"]["available_minor"]) == (903, 900)
    r = await c.get(f"/api/admin/pools/{pool_id}", headers=admin)
    assert r.json()["status"] == "draft"

    for _ in range(2):  # a retried top-up with its key adds once
        r = await c.post(f"/api/admin/requesters/{rid}/top-ups",
                         headers={**admin, "Idempotency-Key": "inv-18"},
                         json={"amount_minor": 100, "comment": "invoice 18"})
        assert r.status_code == 201, r.text
    assert r.json()["replayed"] and r.json()["requester"]["available_minor"] == 1000
    r = await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "open", r.text
    r = await c.get(f"/api/admin/requesters/{rid}", headers=admin)
    assert (r.json()["available_minor"], r.json()["reserved_minor"]) == (97, 903)

    # three workers answer; two are accepted, one rejected
    aids = []
    for w in workers:
        r = await c.post("/api/worker/tasks/take", headers=w.headers, json={"pool_id": pool_id})
        assert r.status_code == 200, r.text
        aid = r.json()["assignment_id"]
        r = await c.post(f"/api/worker/assignments/{aid}/submit", headers=w.headers,
                         json={"answers": {"colour": "red"}})
        assert r.status_code == 200, r.text
        aids.append(aid)

    async def all_pending():
        r = await c.get("/api/review/pending", headers=manager.headers,
                        params={"pool_id": pool_id})
        return set(aids) <= {i["assignment_id"] for i in r.json()["items"]}

    await eventually(all_pending)
    for aid, verdict in zip(aids, ("accept", "accept", "reject"), strict=True):
        r = await c.post(f"/api/review/submissions/{aid}/lock", headers=manager.headers)
        assert r.status_code == 200, r.text
        r = await c.post(f"/api/review/submissions/{aid}/{verdict}", headers=manager.headers,
                         json={"comment": "checked"})
        assert r.status_code == 200, r.text

    async def both_spent():
        r = await c.get(f"/api/admin/pools/{pool_id}/budget", headers=admin)
        body = r.json()
        return body if body["spent_minor"] == 2 * PRICE else None

    await eventually(both_spent)
    r = await c.post(f"/api/admin/pools/{pool_id}/close", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text
    b = (await c.get(f"/api/admin/pools/{pool_id}/budget", headers=admin)).json()
    worker_part = PRICE * SHARE_BPS // 10_000
    assert (b["reserved_minor"], b["spent_minor"], b["released_minor"]) == (903, 602, 301)
    assert b["spent_minor"] + b["released_minor"] == b["reserved_minor"]
    assert (b["worker_credits_minor"], b["platform_credits_minor"]) == (
        2 * worker_part, 2 * (PRICE - worker_part))
    assert b["worker_credits_minor"] + b["platform_credits_minor"] == b["spent_minor"]
    assert b["remaining_minor"] == 0
    r = await c.get(f"/api/admin/requesters/{rid}", headers=admin)
    assert (r.json()["available_minor"], r.json()["reserved_minor"]) == (1000 - 602, 0)
    # a pool that was open is not handed to a budget afterwards: one pool, one payer
    r = await c.put(f"/api/admin/pools/{pool_id}/budget", headers=admin,
                    json={"requester_id": rid})
    assert r.status_code == 409 and r.json()["error"]["code"] == "pool_not_draft", r.text

    # the budget pages are the owner's: a manager and a worker are refused
    for who in (manager, workers[0]):
        r = await c.get(f"/api/admin/requesters/{rid}", headers=who.headers)
        assert r.status_code == 403

    # a payout carries its destination, masked for the worker, in full for the owner
    w = workers[0]
    r = await c.post("/api/worker/payouts", headers=w.headers, json={
        "amount_minor": 100, "currency": CURRENCY, "comment": "first payout",
        "destination_method": "card", "destination_details": "5555 4444 3333 1111"})
    assert r.status_code == 201, r.text
    assert (r.json()["destination_details"], r.json()["destination_masked"]) == (
        "•••• 1111", True)
    r = await c.get("/api/worker/payouts", headers=w.headers)
    assert [p["destination_details"] for p in r.json()["items"]] == ["•••• 1111"]
    assert "5555" not in r.text
    r = await c.get("/api/admin/payouts", headers=admin, params={"worker_id": w.user_id})
    assert [p["destination_details"] for p in r.json()["items"]] == ["5555 4444 3333 1111"]
    r = await c.post("/api/worker/payouts", headers=w.headers, json={
        "amount_minor": 1, "currency": CURRENCY, "comment": "x", "destination_method": "card"})
    assert r.status_code == 422, r.text


async def test_an_open_pool_reserves_before_it_grows(stack) -> None:
    """Tasks uploaded into an open funded pool, and a higher dynamic overlap, are reserved
    first: refused with nothing changed when the budget is short, so no acceptance of a
    funded pool is ever left without money set aside for it."""
    c, admin = stack.client, stack.admin.headers
    r = await c.post("/api/admin/requesters", headers=admin,
                     json={"name": f"Grow {uuid.uuid4().hex[:4]}", "currency": CURRENCY})
    rid = r.json()["requester_id"]
    r = await c.post(f"/api/admin/requesters/{rid}/top-ups", headers=admin,
                     json={"amount_minor": 1000, "comment": "invoice 20"})
    assert r.status_code == 201, r.text
    r = await c.post("/api/admin/projects", headers=admin, json={
        "name": f"grow-{uuid.uuid4().hex[:6]}", "instructions": "Name the colour.",
        "input_spec": [{"name": "n", "type": "integer"}],
        "output_spec": [{"name": "colour", "type": "string", "allowed_values": ["red", "blue"]}]})
    r = await c.post("/api/admin/pools", headers=admin, json={
        "project_id": r.json()["project_id"], "name": "growing", "price_minor": 100,
        "currency": CURRENCY, "overlap": 2})
    pool_id = r.json()["pool_id"]
    r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin,
                     json=[{"n": 1}, {"n": 2}])
    assert r.status_code == 200 and r.json()["created"] == 2, r.text
    r = await c.put(f"/api/admin/pools/{pool_id}/budget", headers=admin,
                    json={"requester_id": rid})
    r = await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)
    assert r.status_code == 200, r.text

    async def money() -> tuple[int, int]:
        r = await c.get(f"/api/admin/requesters/{rid}", headers=admin)
        return r.json()["available_minor"], r.json()["reserved_minor"]

    assert await money() == (600, 400)                    # 2 tasks x 2 answers x 100

    # three more tasks (600) fit exactly; then one more (200) does not, and is not uploaded
    tsv = {**admin, "Content-Type": "text/tab-separated-values"}
    r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=tsv, content="n\n3\n4\n5\n")
    assert r.status_code == 200 and r.json()["created"] == 3, r.text
    assert await money() == (0, 1000)
    r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin, json=[{"n": 6}])
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "budget_insufficient" and err["details"]["required_minor"] == 200
    r = await c.get(f"/api/pools/{pool_id}/tasks", headers=admin)
    assert r.json()["total"] == 5

    # a dynamic overlap up to 3 answers would cost 5 more answers: refused, the setting kept
    r = await c.put(f"/api/admin/pools/{pool_id}/quality", headers=admin, json={
        "dynamic_max_overlap": 3, "dynamic_confidence": 0.9})
    assert r.status_code == 409 and r.json()["error"]["code"] == "budget_insufficient", r.text
    assert r.json()["error"]["details"]["required_minor"] == 500
    r = await c.get(f"/api/pools/{pool_id}/quality", headers=admin)
    assert r.json()["dynamic_max_overlap"] is None
    r = await c.post(f"/api/admin/requesters/{rid}/top-ups", headers=admin,
                     json={"amount_minor": 500, "comment": "invoice 21"})
    r = await c.put(f"/api/admin/pools/{pool_id}/quality", headers=admin, json={
        "dynamic_max_overlap": 3, "dynamic_confidence": 0.9})
    assert r.status_code == 200, r.text
    assert await money() == (0, 1500)

    # closing gives back everything not spent
    r = await c.post(f"/api/admin/pools/{pool_id}/close", headers=admin)
    assert r.status_code == 200, r.text
    assert await money() == (1500, 0)
