"""One pool's life through the gateway's HTTP API: TSV upload, take, submit, reject with a
comment, accept, credit, results export, a manager's pool stats, a payout approved under MFA."""

from __future__ import annotations

import csv
import io
import uuid

from servicekit.testing import eventually

PRICE_MINOR = 200


async def test_pool_lifecycle_through_the_api(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    worker = await stack.user("worker")
    manager = await stack.user("manager")

    r = await c.post("/api/admin/projects", headers=admin, json={
        "name": f"signs-{uuid.uuid4().hex[:6]}", "instructions": "Read the sign.",
        "input_spec": [{"name": "image", "type": "string"}],
        "output_spec": [{"name": "text", "type": "string", "min_length": 1}]})
    assert r.status_code == 201, r.text
    project_id = r.json()["project_id"]
    r = await c.post("/api/admin/pools", headers=admin, json={
        "project_id": project_id, "name": "signs", "price_minor": PRICE_MINOR})
    assert r.status_code == 201, r.text
    pool_id = r.json()["pool_id"]
    tsv = "INPUT:image\nhttps://example.com/a.png\nhttps://example.com/b.png\n"
    r = await c.post(f"/api/admin/pools/{pool_id}/tasks", content=tsv.encode(),
                     headers={**admin, "Content-Type": "text/tab-separated-values"})
    assert r.status_code == 200 and r.json()["created"] == 2, r.text
    r = await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)
    assert r.status_code == 200, r.text

    r = await c.get("/api/worker/pools", headers=worker.headers)
    assert r.status_code == 200
    assert any(p["pool_id"] == pool_id for p in r.json()["items"])

    async def take_and_submit(text: str) -> str:
        a = await stack.take(worker, pool_id)
        assert a["instructions"] == "Read the sign." and a["output_spec"][0]["name"] == "text"
        r = await c.post(f"/api/worker/assignments/{a['assignment_id']}/submit",
                         headers=worker.headers, json={"answers": {"text": text}})
        assert r.status_code == 200, r.text
        return a["assignment_id"]

    async def review(assignment_id: str, verdict: str, comment: str) -> None:
        async def pending():
            r = await c.get(f"/api/review/pending?pool_id={pool_id}", headers=manager.headers)
            return any(i["assignment_id"] == assignment_id for i in r.json()["items"])
        await eventually(pending)
        r = await c.post(f"/api/review/submissions/{assignment_id}/lock", headers=manager.headers)
        assert r.status_code == 200 and r.json()["locked"], r.text
        r = await c.post(f"/api/review/submissions/{assignment_id}/{verdict}",
                         headers=manager.headers, json={"comment": comment})
        assert r.status_code == 200 and r.json()["status"] == f"{verdict}ed", r.text

    first = await take_and_submit("STOP")
    r = await c.post(f"/api/review/submissions/{first}/reject", headers=manager.headers, json={})
    assert r.status_code == 422                          # a rejection needs a comment
    await review(first, "reject", "the sign says EXIT")
    second = await take_and_submit("EXIT")
    await review(second, "accept", "right")

    async def decided():
        r = await c.get("/api/worker/decisions", headers=worker.headers)
        assert r.status_code == 200, r.text
        return {d["assignment_id"]: d for d in r.json()["items"]} if r.json()["total"] >= 2 \
            else None
    mine = await eventually(decided)
    assert mine[first]["status"] == "rejected" and mine[first]["comment"] == "the sign says EXIT"
    assert mine[second]["status"] == "accepted"

    async def credited():
        r = await c.get("/api/worker/balance", headers=worker.headers)
        return next((b for b in r.json()["balances"] if b["available_minor"] > 0), None)
    bal = await eventually(credited)
    assert 0 < bal["available_minor"] <= PRICE_MINOR
    r = await c.get("/api/worker/ledger", headers=worker.headers)
    assert r.json()["items"][0]["assignment_id"] == second

    r = await c.get(f"/api/pools/{pool_id}/stats", headers=manager.headers)
    assert r.status_code == 200, r.text
    stats = r.json()
    assert (stats["accepted"], stats["rejected"], stats["acceptance_rate"]) == (1, 1, 0.5)
    assert stats["tasks_total"] == 2

    r = await c.get(f"/api/admin/pools/{pool_id}/results?format=csv", headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert any("EXIT" in row.values() for row in rows), r.text
    r = await c.get(f"/api/admin/pools/{pool_id}/results?format=tsv", headers=admin)
    assert r.headers["content-type"].startswith("text/tab-separated-values")
    r = await c.get(f"/api/admin/pools/{pool_id}/results", headers=manager.headers)
    assert r.status_code == 403

    # A payout: the worker asks, the admin approves only after an MFA step-up.
    amount = bal["available_minor"]
    r = await c.post("/api/worker/payouts", headers=worker.headers,
                     json={"amount_minor": amount, "comment": "card 4111"})
    assert r.status_code == 201, r.text
    payout_id = r.json()["payout_id"]
    r = await c.post("/api/worker/payouts", headers=worker.headers,
                     json={"amount_minor": 1, "comment": "again"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_funds"
    r = await c.get("/api/admin/payouts?status=pending", headers=admin)
    assert any(p["payout_id"] == payout_id for p in r.json()["items"])
    # an admin who never stepped up (the shared stack's admin may have, in another test)
    plain = await stack.user("admin")
    r = await c.post(f"/api/admin/payouts/{payout_id}/approve", headers=plain.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "mfa_required"

    await stack.admin_step_up()
    r = await c.post(f"/api/admin/payouts/{payout_id}/approve", headers=admin,
                     json={"comment": "sent"})
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    r = await c.get("/api/worker/balance", headers=worker.headers)
    paid = next(b for b in r.json()["balances"] if b["currency"] == bal["currency"])
    assert paid["paid_minor"] == amount and paid["available_minor"] == 0
    r = await c.get("/api/admin/audit?kind=payout.approved", headers=admin)
    assert r.status_code == 200 and any(i["target"] == payout_id for i in r.json()["items"]), \
        r.text
