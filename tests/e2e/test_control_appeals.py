"""Manual control and appeals through the API: a manager blocks a worker by hand (the take
is refused with ``restricted``), the worker sees the cause but never the private reason,
appeals once, the upheld appeal lifts the block and the worker takes again; an upheld
appeal of a rejection credits the worker exactly once even when the decision is sent
twice (and at the same time); skills are set and removed by hand; a rule edited in place
is a new version. Every change is in the audit log."""

from __future__ import annotations

import asyncio

from servicekit.testing import eventually

SECRET = "secret-reason-7f3a"


async def _take(c, worker, pool_id, *, wait_for_lift: bool = False):
    async def attempt():
        r = await c.post("/api/worker/tasks/take", headers=worker.headers,
                         json={"pool_id": pool_id})
        if r.status_code == 429:        # the trust level's pause between takes
            return None
        if wait_for_lift and r.status_code == 403:   # the lift is still on its way
            assert r.json()["error"]["code"] == "restricted", r.text
            return None
        return r
    return await eventually(attempt)


async def _worker_texts(c, worker) -> str:
    """Everything the worker's screens read about restrictions and appeals."""
    out = []
    for path in ("/api/worker/overview", "/api/worker/restrictions", "/api/worker/appeals",
                 "/api/worker/profile", "/api/worker/decisions"):
        r = await c.get(path, headers=worker.headers)
        assert r.status_code == 200, (path, r.text)
        out.append(r.text)
    return "\n".join(out)


async def test_manual_block_refuses_take_and_an_upheld_appeal_lifts_it(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    worker = await stack.user("worker")
    manager = await stack.user("manager")
    pool_id = await stack.pool(input_spec=[{"name": "q"}], output_spec=[{"name": "a"}],
                               rows=[{"q": str(i)} for i in range(3)], price_minor=100)

    r = await c.post(f"/api/admin/workers/{worker.user_id}/restrictions",
                     headers=worker.headers, json={"scope": "all",
                                                   "duration_unit": "permanent",
                                                   "private_comment": "x"})
    assert r.status_code == 403                               # workers do not restrict
    for someone, code in (("nobody", "user_not_found"), (manager.user_id, "not_a_worker")):
        r = await c.post(f"/api/admin/workers/{someone}/restrictions", headers=manager.headers,
                         json={"scope": "all", "duration_unit": "permanent",
                               "private_comment": "x"})
        assert r.json()["error"]["code"] == code, r.text
    r = await c.post(f"/api/admin/workers/{worker.user_id}/restrictions",
                     headers=manager.headers, json={"scope": "pool", "duration_unit": "days",
                                                    "duration": 1, "private_comment": "x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "restriction_incomplete"
    r = await c.post(f"/api/admin/workers/{worker.user_id}/restrictions",
                     headers=manager.headers, json={"scope": "pool", "pool_id": "nope",
                                                    "duration_unit": "permanent",
                                                    "private_comment": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "pool_not_found"
    r = await c.post(f"/api/admin/workers/{worker.user_id}/restrictions",
                     headers=manager.headers, json={"scope": "all",
                                                    "duration_unit": "permanent",
                                                    "private_comment": SECRET})
    assert r.status_code == 201, r.text
    block = r.json()
    assert block["source"] == "manual" and block["until"] is None

    async def refused():
        r = await c.post("/api/worker/tasks/take", headers=worker.headers,
                         json={"pool_id": pool_id})
        return r if r.status_code == 403 else None
    r = await eventually(refused)
    assert r.json()["error"]["code"] == "restricted"
    assert r.json()["error"]["details"] == {"scope": "all", "until": None}

    r = await c.get("/api/worker/restrictions", headers=worker.headers)
    [shown] = r.json()["items"]
    assert shown["restriction_id"] == block["restriction_id"]
    assert shown["cause"] == {"source": "manual", "rule_id": None, "rule_name": None,
                              "rule_version": None, "evidence": None}
    assert SECRET not in await _worker_texts(c, worker)

    r = await c.post("/api/worker/appeals", headers=worker.headers, json={
        "kind": "restriction", "subject_id": "not-mine", "message": "why?"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "appeal_subject_not_found"
    r = await c.post("/api/worker/appeals", headers=worker.headers, json={
        "kind": "restriction", "subject_id": block["restriction_id"],
        "message": "I did nothing wrong"})
    assert r.status_code == 201, r.text
    appeal = r.json()
    assert appeal["status"] == "pending"
    r = await c.post("/api/worker/appeals", headers=worker.headers, json={
        "kind": "restriction", "subject_id": block["restriction_id"], "message": "again"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "appeal_exists"

    r = await c.get("/api/appeals?status=pending", headers=manager.headers)
    assert appeal["appeal_id"] in [a["appeal_id"] for a in r.json()["items"]]
    r = await c.get("/api/appeals", headers=worker.headers)
    assert r.status_code == 403
    r = await c.post(f"/api/admin/appeals/{appeal['appeal_id']}/decision",
                     headers=manager.headers, json={"outcome": "upheld",
                                                    "reply": "sorry, lifted"})
    assert r.status_code == 200 and r.json()["status"] == "upheld", r.text

    r = await _take(c, worker, pool_id, wait_for_lift=True)   # the lifted block: takes again
    assert r.status_code == 200, r.text
    r = await c.get("/api/worker/appeals", headers=worker.headers)
    [mine] = r.json()["items"]
    assert (mine["status"], mine["reply"], mine["decided_by"]) == \
        ("upheld", "sorry, lifted", None)
    r = await c.get("/api/worker/restrictions", headers=worker.headers)
    assert r.json()["items"][0]["lifted_at"]
    assert SECRET not in await _worker_texts(c, worker)

    r = await c.get("/api/admin/audit?kind=worker.restricted", headers=admin)
    [audited] = [i for i in r.json()["items"] if i["target"] == worker.user_id]
    assert audited["actor_user_id"] == manager.user_id
    r = await c.get("/api/admin/audit?kind=appeal.decided", headers=admin)
    assert worker.user_id in [i["target"] for i in r.json()["items"]]


async def test_an_upheld_appeal_of_a_rejection_credits_exactly_once(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    worker = await stack.user("worker")
    manager = await stack.user("manager")
    pool_id = await stack.pool(input_spec=[{"name": "q"}], output_spec=[{"name": "a"}],
                               rows=[{"q": "1"}], price_minor=100, review_mode="manual")
    r = await _take(c, worker, pool_id)
    assert r.status_code == 200, r.text
    aid = r.json()["assignment_id"]
    r = await c.post(f"/api/worker/assignments/{aid}/submit", headers=worker.headers,
                     json={"answers": {"a": "right"}})
    assert r.status_code == 200, r.text

    r = await c.post("/api/worker/appeals", headers=worker.headers, json={
        "kind": "rejection", "subject_id": "nope", "message": "m"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "appeal_subject_not_found"

    async def pending():
        r = await c.get(f"/api/review/pending?pool_id={pool_id}", headers=manager.headers)
        return any(i["assignment_id"] == aid for i in r.json()["items"])
    await eventually(pending)
    r = await c.post("/api/worker/appeals", headers=worker.headers, json={
        "kind": "rejection", "subject_id": aid, "message": "m"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_rejected"
    r = await c.post(f"/api/review/submissions/{aid}/lock", headers=manager.headers)
    assert r.status_code == 200, r.text
    r = await c.post(f"/api/review/submissions/{aid}/reject", headers=manager.headers,
                     json={"comment": "wrong"})
    assert r.status_code == 200, r.text

    r = await c.get("/api/worker/decisions", headers=worker.headers)
    [decision] = r.json()["items"]
    assert (decision["status"], decision["cause"], decision["decided_by"]) == \
        ("rejected", "manager", None)
    r = await c.post("/api/worker/appeals", headers=worker.headers, json={
        "kind": "rejection", "subject_id": aid, "message": "the answer is right"})
    assert r.status_code == 201, r.text
    appeal_id = r.json()["appeal_id"]

    url = f"/api/admin/appeals/{appeal_id}/decision"
    body = {"outcome": "upheld", "reply": "you were right"}
    first, second = await asyncio.gather(c.post(url, headers=manager.headers, json=body),
                                         c.post(url, headers=manager.headers, json=body))
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    assert first.json()["decided_at"] == second.json()["decided_at"]
    again = await c.post(url, headers=manager.headers, json=body)     # sent a third time
    assert again.status_code == 200 and again.json()["decided_at"] == first.json()["decided_at"]
    r = await c.post(url, headers=manager.headers, json={"outcome": "denied", "reply": "no"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "appeal_decided"

    async def credited():
        r = await c.get("/api/worker/ledger", headers=worker.headers)
        items = [i for i in r.json()["items"] if i["assignment_id"] == aid]
        return items or None
    await eventually(credited)
    await asyncio.sleep(1.0)                  # time for any second credit to arrive
    r = await c.get("/api/worker/ledger", headers=worker.headers)
    [entry] = r.json()["items"]                                      # one credit only
    assert entry["assignment_id"] == aid and entry["amount_minor"] > 0, entry
    r = await c.get("/api/worker/balance", headers=worker.headers)
    [bal] = [b for b in r.json()["balances"] if b["available_minor"] > 0]
    assert bal["available_minor"] == entry["amount_minor"] <= 100

    r = await c.get("/api/worker/decisions", headers=worker.headers)
    [decision] = r.json()["items"]
    assert (decision["status"], decision["comment"]) == ("accepted", "you were right")
    r = await c.get("/api/worker/appeals", headers=worker.headers)
    assert [(a["status"], a["reply"]) for a in r.json()["items"]] == \
        [("upheld", "you were right")]
    r = await c.get("/api/admin/audit?kind=appeal.decided", headers=admin)
    assert sum(i["details"]["appeal_id"] == appeal_id for i in r.json()["items"]) >= 1


async def test_skills_by_hand_and_a_rule_edited_in_place(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    worker = await stack.user("worker")
    manager = await stack.user("manager")
    r = await c.put(f"/api/admin/workers/{worker.user_id}/skills/english",
                    headers=manager.headers, json={"value": 70})
    assert r.status_code == 200 and r.json()["value"] == 70, r.text

    async def skills():
        r = await c.get("/api/worker/profile", headers=worker.headers)
        return r.json()["skills"]
    await eventually(lambda: _has(skills, {"english": 70}))
    r = await c.delete(f"/api/admin/workers/{worker.user_id}/skills/english",
                       headers=manager.headers)
    assert r.status_code == 200 and r.json()["value"] is None
    await eventually(lambda: _has(skills, {}))
    r = await c.put(f"/api/admin/workers/{worker.user_id}/skills/english",
                    headers=manager.headers, json={"value": 101})
    assert r.status_code == 422
    r = await c.put("/api/admin/workers/nobody/skills/english", headers=manager.headers,
                    json={"value": 1})
    assert r.status_code == 404 and r.json()["error"]["code"] == "user_not_found"
    r = await c.get("/api/admin/audit?kind=worker.skill_removed", headers=admin)
    assert [i["target"] for i in r.json()["items"]].count(worker.user_id) == 1

    pool_id = await stack.pool(input_spec=[{"name": "q"}], output_spec=[{"name": "a"}],
                               price_minor=100)
    draft = {"name": "fast", "scope": "pool", "pool_id": pool_id,
             "collector": {"kind": "submitted_answers"},
             "conditions": [{"field": "submitted_count_24h", "operator": ">=", "value": 5}],
             "action": {"type": "restriction", "scope": "pool", "duration_unit": "hours",
                        "duration": 1, "private_comment": "cap"}}
    r = await c.post("/api/admin/rules", headers=admin, json=draft)
    rule_id = r.json()["rule_id"]
    edited = {**draft, "name": "faster",
              "conditions": [{"field": "submitted_count_24h", "operator": ">=", "value": 3}]}
    r = await c.put(f"/api/admin/rules/{rule_id}", headers=manager.headers,
                    json={"rule": edited})
    assert r.status_code == 403                                  # admins edit rules
    r = await c.put(f"/api/admin/rules/{rule_id}", headers=admin,
                    json={"rule": edited, "evidence_public": False})
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["name"], r.json()["evidence_public"]) == \
        (2, "faster", False)
    r = await c.put(f"/api/admin/rules/{rule_id}", headers=admin,
                    json={"rule": {**edited, "collector": {"kind": "skipped_in_row"},
                                   "conditions": [{"field": "skipped_in_row_count",
                                                   "operator": ">=", "value": 3}]}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "rule_fixed_field", r.text
    r = await c.get(f"/api/rule-versions/{rule_id}", headers=manager.headers)
    assert [v["version"] for v in r.json()["items"]] == [2, 1]
    r = await c.get("/api/admin/audit?kind=rule.edited", headers=admin)
    [audited] = [i for i in r.json()["items"] if i["target"] == rule_id]
    assert audited["details"]["version"] == 2


async def _has(get, expected) -> bool | None:
    return True if await get() == expected else None
