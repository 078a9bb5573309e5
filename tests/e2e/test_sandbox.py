"""The sandbox through the gateway: an admin creates a sandbox project and a priced pool,
opens it with an empty requester budget, tries a task as a worker would, a manager accepts
it; no money moves, no rule fires, no statistic counts it, and a real worker neither sees
the pool nor takes from it. A real pool run beside it is paid and counted, so "nothing
happened" is not "not yet"."""

from __future__ import annotations

import uuid
from typing import Any

from servicekit.testing import eventually

CURRENCY = "RUB"
PRICE = 700
INPUT = [{"name": "n", "type": "integer"}]
OUTPUT = [{"name": "colour", "type": "string", "allowed_values": ["red", "blue"]}]


def rule_on(pool_id: str) -> dict[str, Any]:
    """A rule that restricts a worker on their first reviewed answer in the pool."""
    return {"name": f"first review {pool_id[:6]}", "scope": "pool", "pool_id": pool_id,
            "collector": {"kind": "acceptance_rate"},
            "conditions": [{"field": "total_reviewed_count", "operator": ">=", "value": 1}],
            "action": {"type": "restriction", "scope": "pool", "duration_unit": "days",
                       "duration": 1, "private_comment": "first review"}}


async def test_a_sandbox_try_is_reviewed_but_never_paid_or_counted(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    manager = await stack.user("manager")
    worker = await stack.user("worker")

    async def money() -> tuple[dict[str, Any], dict[str, Any]]:
        r = await c.get("/api/admin/dashboard", headers=admin)
        assert r.status_code == 200, r.text
        m = r.json()["money"]
        totals = next((t for t in m["totals"] if t["currency"] == CURRENCY), {})
        return totals, m["counts"]

    totals_before, counts_before = await money()

    # an empty requester budget: a real pool of it could not open
    r = await c.post("/api/admin/requesters", headers=admin,
                     json={"name": f"Try {uuid.uuid4().hex[:4]}", "currency": CURRENCY})
    assert r.status_code == 201, r.text
    rid = r.json()["requester_id"]

    r = await c.post("/api/admin/projects", headers=admin, json={
        "name": f"sandbox-{uuid.uuid4().hex[:6]}", "instructions": "Name the colour.",
        "input_spec": INPUT, "output_spec": OUTPUT, "sandbox": True})
    assert r.status_code == 201 and r.json()["sandbox"] is True, r.text
    project_id = r.json()["project_id"]
    # the flag is fixed at creation: a patch has no such field and leaves it
    r = await c.patch(f"/api/admin/projects/{project_id}", headers=admin,
                      json={"sandbox": False, "name": "renamed sandbox"})
    assert r.status_code == 200 and r.json()["sandbox"] is True, r.text
    r = await c.post("/api/admin/pools", headers=admin, json={
        "project_id": project_id, "name": "sandbox pool", "price_minor": PRICE,
        "currency": CURRENCY, "overlap": 1})
    assert r.status_code == 201 and r.json()["sandbox"] is True, r.text
    pool_id = r.json()["pool_id"]
    r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin,
                     json=[{"n": 1}, {"n": 2}])
    assert r.status_code == 200 and r.json()["created"] == 2, r.text
    r = await c.put(f"/api/admin/pools/{pool_id}/budget", headers=admin,
                    json={"requester_id": rid})
    assert r.status_code == 200, r.text
    r = await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "open", r.text
    r = await c.get(f"/api/admin/requesters/{rid}", headers=admin)
    assert (r.json()["available_minor"], r.json()["reserved_minor"]) == (0, 0)
    r = await c.post("/api/admin/rules", headers=admin, json=rule_on(pool_id))
    assert r.status_code == 201, r.text

    # a real worker neither sees the pool nor takes from it (as for a pool they cannot see)
    r = await c.get("/api/worker/pools", headers=worker.headers)
    assert pool_id not in {p["pool_id"] for p in r.json()["items"]}
    r = await c.get("/api/worker/overview", headers=worker.headers)
    assert pool_id not in {p["pool_id"] for p in r.json()["pools"]}
    r = await c.post("/api/worker/tasks/take", headers=worker.headers, json={"pool_id": pool_id})
    assert r.status_code == 404 and r.json()["error"]["code"] == "pool_not_found", r.text
    r = await c.post(f"/api/sandbox/pools/{pool_id}/take", headers=worker.headers)
    assert r.status_code == 403, r.text

    # the admin tries it as a worker: take, see the task, submit with proof and comment
    r = await c.post(f"/api/sandbox/pools/{pool_id}/take", headers=admin)
    assert r.status_code == 200, r.text
    task = r.json()
    assert (task["sandbox"], task["pool_name"], task["instructions"]) == (
        True, "sandbox pool", "Name the colour.")
    assert task["input"] == {"n": 1} and [f["name"] for f in task["output_spec"]] == ["colour"]
    assert "price_minor" not in task
    r = await c.post(f"/api/sandbox/pools/{pool_id}/take", headers=admin)  # no max_active,
    assert r.status_code == 200, r.text  # no pause between takes for a tester
    second = r.json()["assignment_id"]
    r = await c.get("/api/sandbox/active", headers=admin)
    assert [a["assignment_id"] for a in r.json()["items"]] == [task["assignment_id"], second]
    r = await c.post(f"/api/sandbox/assignments/{second}/skip", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "SKIPPED", r.text
    aid = task["assignment_id"]
    r = await c.post(f"/api/sandbox/assignments/{aid}/submit", headers=admin, json={
        "answers": {"colour": "green"}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_answers", r.text
    r = await c.post(f"/api/sandbox/assignments/{aid}/submit", headers=admin, json={
        "answers": {"colour": "red"}, "comment": "trying it",
        "proof_url": "https://example.org/proof.png"})
    assert r.status_code == 200 and r.json()["status"] == "SUBMITTED", r.text

    # a manager reviews it as usual
    async def pending() -> dict[str, Any] | None:
        r = await c.get("/api/review/pending", headers=manager.headers,
                        params={"pool_id": pool_id})
        return next((i for i in r.json()["items"] if i["assignment_id"] == aid), None)

    item = await eventually(pending)
    assert (item["sandbox"], item["comment"], item["proof"]) == (
        True, "trying it", "https://example.org/proof.png")
    r = await c.post(f"/api/review/submissions/{aid}/lock", headers=manager.headers)
    assert r.status_code == 200, r.text
    r = await c.post(f"/api/review/submissions/{aid}/accept", headers=manager.headers, json={})
    assert r.status_code == 200, r.text

    async def accepted_in_tasks() -> bool:
        r = await c.get("/api/sandbox/assignments", headers=admin)
        return {a["assignment_id"]: a["status"] for a in r.json()["items"]}.get(aid) == \
            "ACCEPTED"

    await eventually(accepted_in_tasks)

    # a real pool beside it, with the same rule: its acceptance is paid and counted
    real = await stack.pool(input_spec=INPUT, output_spec=OUTPUT, rows=[{"n": 1}],
                            name="real", price_minor=PRICE, currency=CURRENCY)
    r = await c.post("/api/admin/rules", headers=admin, json=rule_on(real))
    assert r.status_code == 201, r.text
    real_aid = (await stack.take(worker, real))["assignment_id"]
    r = await c.post(f"/api/worker/assignments/{real_aid}/submit", headers=worker.headers,
                     json={"answers": {"colour": "blue"}})
    assert r.status_code == 200, r.text

    async def real_pending() -> bool:
        r = await c.get("/api/review/pending", headers=manager.headers, params={"pool_id": real})
        return real_aid in {i["assignment_id"] for i in r.json()["items"]}

    await eventually(real_pending)
    for step in ("lock", "accept"):
        r = await c.post(f"/api/review/submissions/{real_aid}/{step}", headers=manager.headers,
                         json={} if step == "accept" else None)
        assert r.status_code == 200, r.text

    async def real_credited() -> dict[str, Any] | None:
        r = await c.get("/api/worker/balance", headers=worker.headers)
        b = {x["currency"]: x for x in r.json()["balances"]}.get(CURRENCY)
        return b if b and b["available_minor"] > 0 else None

    await eventually(real_credited)

    async def real_restricted() -> bool:
        r = await c.get("/api/restrictions", headers=manager.headers,
                        params={"worker_id": worker.user_id})
        return [x["pool_id"] for x in r.json()["items"]] == [real]

    await eventually(real_restricted)

    # no money moved for the sandbox: one credit more (the real one), to the minor unit
    totals_after, counts_after = await money()
    assert counts_after["assignment_credits"] - counts_before["assignment_credits"] == 1
    credited = (totals_after["credited_to_workers_minor"]
                - totals_before.get("credited_to_workers_minor", 0))
    charged = totals_after["charged_minor"] - totals_before.get("charged_minor", 0)
    r = await c.get("/api/worker/balance", headers=worker.headers)
    earned = {x["currency"]: x for x in r.json()["balances"]}[CURRENCY]["available_minor"]
    assert (charged, credited) == (PRICE, earned)
    r = await c.get(f"/api/admin/ledger/workers/{stack.admin.user_id}/history", headers=admin)
    assert r.status_code == 200 and r.json()["items"] == [], r.text
    r = await c.get(f"/api/admin/pools/{pool_id}/budget", headers=admin)
    b = r.json()
    assert (b["reserved_minor"], b["spent_minor"], b["worker_credits_minor"]) == (0, 0, 0), b
    r = await c.get(f"/api/admin/requesters/{rid}", headers=admin)
    assert (r.json()["available_minor"], r.json()["reserved_minor"]) == (0, 0)
    r = await c.get("/api/admin/ledger/consistency", headers=admin)
    assert r.json()["ok"] is True, r.text

    # the rules kept nothing of the tester: no firing, no restriction
    r = await c.get(f"/api/rules/explain/{stack.admin.user_id}", headers=manager.headers)
    assert (r.json()["total"], r.json()["restrictions"]) == (0, []), r.text
    r = await c.get("/api/restrictions", headers=manager.headers, params={"pool_id": pool_id})
    assert r.json()["items"] == [], r.text
    r = await c.get(f"/api/rules/explain/{worker.user_id}", headers=manager.headers)
    assert r.json()["total"] == 1, r.text

    # the statistics count nothing of it; the owner's task flow leaves the pool out
    r = await c.get(f"/api/pools/{pool_id}/stats", headers=manager.headers)
    s = r.json()
    assert (s["pending_review"], s["accepted"], s["rejected"], s["top_workers"]) == (
        0, 0, 0, []), s
    r = await c.get(f"/api/pools/{real}/stats", headers=manager.headers)
    assert (r.json()["accepted"], r.json()["top_workers"][0]["worker_id"]) == (
        1, worker.user_id)
    r = await c.get("/api/admin/dashboard", headers=admin)
    assert pool_id not in {p["pool_id"] for p in r.json()["task_flow"]["pools"]}
    r = await c.get("/api/review/decisions", headers=manager.headers,
                    params={"pool_id": pool_id})
    assert [(d["assignment_id"], d["sandbox"]) for d in r.json()["items"]] == [(aid, True)]

    # the results export says it is a sandbox pool's
    r = await c.get(f"/api/admin/pools/{pool_id}/results", headers=admin,
                    params={"format": "json"})
    assert r.status_code == 200 and "sandbox_results_" in r.headers["content-disposition"]
