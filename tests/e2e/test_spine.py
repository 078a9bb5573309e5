"""The spine end to end through HTTP (real NATS, real PostgreSQL): a pool's money, exactly.

Admin creates a project and a pool with its own worker share and uploads tasks; two workers
take and submit; a manager accepts one and rejects the other; the accepted worker's balance
is price x share exactly and platform revenue the rest; the worker asks for a payout, the
admin approves under MFA; balances and histories are right and every transfer sums to zero.
"""

from __future__ import annotations

import uuid

from servicekit.testing import eventually

PRICE_MINOR = 1001          # odd on purpose: 1001 * 6543 // 10000 = 654, platform keeps 347
SHARE = "0.6543"
CURRENCY = "CHF"            # no other test uses it, so the dashboard totals are this test's


async def test_two_workers_one_accepted_one_rejected_exact_money(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    w_ok, w_bad = await stack.user("worker"), await stack.user("worker")
    manager = await stack.user("manager")

    r = await c.post("/api/admin/projects", headers=admin, json={
        "name": f"spine-{uuid.uuid4().hex[:6]}", "instructions": "Name the colour.",
        "input_spec": [{"name": "swatch", "type": "url"}],
        "output_spec": [{"name": "colour", "type": "string", "allowed_values": ["red", "blue"]}]})
    assert r.status_code == 201, r.text
    r = await c.post("/api/admin/pools", headers=admin, json={
        "project_id": r.json()["project_id"], "name": "colours", "price_minor": PRICE_MINOR,
        "currency": CURRENCY, "overlap": 1})
    assert r.status_code == 201, r.text
    pool_id = r.json()["pool_id"]
    r = await c.put(f"/api/admin/pools/{pool_id}/worker-share", headers=admin,
                    json={"share": SHARE})
    assert r.status_code == 200, r.text
    r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin, json=[
        {"swatch": "https://example.com/1.png"}, {"swatch": "https://example.com/2.png"},
        {"swatch": "not a url"}])
    assert r.status_code == 200, r.text
    up = r.json()
    assert up["created"] == 2 and [e["line"] for e in up["errors"]] == [3], up
    r = await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)
    assert r.status_code == 200, r.text

    async def take_submit(worker, colour: str) -> str:
        r = await c.post("/api/worker/tasks/take", headers=worker.headers,
                         json={"pool_id": pool_id})
        assert r.status_code == 200, r.text
        aid = r.json()["assignment_id"]
        bad = await c.post(f"/api/worker/assignments/{aid}/submit", headers=worker.headers,
                           json={"answers": {"colour": "green"}})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_answers"
        r = await c.post(f"/api/worker/assignments/{aid}/submit", headers=worker.headers,
                         json={"answers": {"colour": colour}, "comment": "done",
                               "proof": "https://example.com/proof.png"})
        assert r.status_code == 200, r.text
        return aid

    a_ok = await take_submit(w_ok, "red")
    a_bad = await take_submit(w_bad, "blue")
    # the pool is exhausted for a third taker
    third = await stack.user("worker")
    r = await c.post("/api/worker/tasks/take", headers=third.headers, json={"pool_id": pool_id})
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_tasks_available"

    async def both_pending():
        r = await c.get("/api/review/pending", headers=manager.headers,
                        params={"pool_id": pool_id})
        ids = {i["assignment_id"] for i in r.json()["items"]}
        return {a_ok, a_bad} <= ids

    await eventually(both_pending)
    for aid, verdict, body in ((a_ok, "accept", {}), (a_bad, "reject", {"comment": "it is red"})):
        r = await c.post(f"/api/review/submissions/{aid}/lock", headers=manager.headers)
        assert r.status_code == 200, r.text
        r = await c.post(f"/api/review/submissions/{aid}/{verdict}", headers=manager.headers,
                         json=body)
        assert r.status_code == 200, r.text

    expected_worker = PRICE_MINOR * 6543 // 10000
    expected_platform = PRICE_MINOR - expected_worker
    assert (expected_worker, expected_platform) == (654, 347)

    async def credited():
        r = await c.get("/api/worker/balance", headers=w_ok.headers)
        b = {x["currency"]: x for x in r.json()["balances"]}.get(CURRENCY)
        return b if b and b["available_minor"] > 0 else None

    bal = await eventually(credited)
    assert (bal["available_minor"], bal["on_hold_minor"], bal["paid_minor"]) == (654, 0, 0)
    r = await c.get("/api/worker/balance", headers=w_bad.headers)
    assert all(b["available_minor"] == 0 for b in r.json()["balances"]
               if b["currency"] == CURRENCY)

    async def money():
        r = await c.get("/api/admin/dashboard", headers=admin)
        assert r.status_code == 200, r.text
        return next((t for t in r.json()["money"]["totals"] if t["currency"] == CURRENCY), None)

    totals = await money()
    assert totals["charged_minor"] == PRICE_MINOR
    assert totals["credited_to_workers_minor"] == 654
    assert totals["platform_revenue_minor"] == 347

    # both assignments reached their final state in the tasks service too
    async def final_states():
        r = await c.get("/api/worker/assignments", headers=w_ok.headers)
        ok = {i["assignment_id"]: i["status"] for i in r.json()["items"]}
        r = await c.get("/api/worker/assignments", headers=w_bad.headers)
        bad = {i["assignment_id"]: i["status"] for i in r.json()["items"]}
        return ok.get(a_ok) == "ACCEPTED" and bad.get(a_bad) == "REJECTED"

    await eventually(final_states)

    # payout: request -> hold; the approval needs an MFA-elevated admin
    r = await c.post("/api/worker/payouts", headers=w_ok.headers,
                     json={"amount_minor": 600, "currency": CURRENCY, "comment": "IBAN CH00"})
    assert r.status_code == 201, r.text
    payout_id = r.json()["payout_id"]
    r = await c.get("/api/worker/balance", headers=w_ok.headers)
    b = {x["currency"]: x for x in r.json()["balances"]}[CURRENCY]
    assert (b["available_minor"], b["on_hold_minor"]) == (54, 600)
    await stack.admin_step_up()
    r = await c.post(f"/api/admin/payouts/{payout_id}/approve", headers=admin, json={})
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    r = await c.get("/api/worker/balance", headers=w_ok.headers)
    b = {x["currency"]: x for x in r.json()["balances"]}[CURRENCY]
    assert (b["available_minor"], b["on_hold_minor"], b["paid_minor"]) == (54, 0, 600)

    r = await c.get("/api/worker/ledger", headers=w_ok.headers, params={"currency": CURRENCY})
    kinds = sorted((e["kind"], e["account"], e["amount_minor"]) for e in r.json()["items"])
    assert kinds == sorted([("assignment", "available", 654),
                            ("payout_hold", "available", -600), ("payout_hold", "on_hold", 600),
                            ("payout_paid", "on_hold", -600), ("payout_paid", "paid", 600)])

    totals = await money()
    assert (totals["available_minor"], totals["on_hold_minor"], totals["paid_minor"]) == \
        (54, 0, 600)
    r = await c.get("/api/admin/ledger/consistency", headers=admin)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert r.json()["transfers_checked"] >= 3
