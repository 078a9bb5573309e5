"""Re-execution after access revoked by a skill change, across tasks and rules on the bus.

A rule sets a skill that the pool's filter forbids after the worker's first answer; the
tasks service sees the worker shut out of a pool they worked in and says so
(``task.access_revoked``); a re-execution rule raises the overlap of that worker's tasks,
so the task they answered goes back to the pool for another worker.
"""

from __future__ import annotations

import uuid

from servicekit.testing import eventually


async def test_skill_change_revokes_access_and_reopens_the_workers_task(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    first, second = await stack.user("worker"), await stack.user("worker")
    flag = f"flagged_{uuid.uuid4().hex[:6]}"

    pool_id = await stack.pool(
        name="reexec", input_spec=[{"name": "q", "type": "string"}],
        output_spec=[{"name": "a", "type": "string"}], rows=[{"q": "1"}], price_minor=10,
        overlap=1, skill_filters=[{"skill": flag, "op": "absent"}])

    def rule(name: str, collector: dict, field: str, op: str, value, action: dict) -> dict:
        return {"name": name, "scope": "pool", "pool_id": pool_id, "collector": collector,
                "conditions": [{"field": field, "operator": op, "value": value}],
                "action": action}

    for body in (
        rule("flag after one answer", {"kind": "submitted_answers"}, "submitted_count_24h",
             ">=", 1, {"type": "set_skill", "skill": flag, "value": 1}),
        rule("re-execute", {"kind": "access_revoked"}, "access_revoked_reason", "==",
             "skill_change", {"type": "change_overlap", "add": 1}),
    ):
        r = await c.post("/api/admin/rules", headers=admin, json=body)
        assert r.status_code == 201, r.text

    r = await c.post("/api/worker/tasks/take", headers=first.headers, json={"pool_id": pool_id})
    assert r.status_code == 200, r.text
    task_id, aid = r.json()["task_id"], r.json()["assignment_id"]
    r = await c.post(f"/api/worker/assignments/{aid}/submit", headers=first.headers,
                     json={"answers": {"a": "yes"}})
    assert r.status_code == 200, r.text
    # overlap 1 is used up: nobody else gets the task until the re-execution rule acts
    r = await c.post("/api/worker/tasks/take", headers=second.headers, json={"pool_id": pool_id})
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_tasks_available", r.text

    async def second_takes_it() -> dict | None:
        r = await c.post("/api/worker/tasks/take", headers=second.headers,
                         json={"pool_id": pool_id})
        return r.json() if r.status_code == 200 else None

    got = await eventually(second_takes_it, timeout_s=20)
    assert got["task_id"] == task_id
    # the first worker now carries the skill the pool's filter forbids
    r = await c.get("/api/worker/profile", headers=first.headers)
    assert r.status_code == 200 and r.json()["skills"] == {flag: 1}, r.text
    r = await c.get(f"/api/rules/explain/{first.user_id}", headers=admin)
    assert r.status_code == 200, r.text
    fired = {f["action"]["type"] for f in r.json()["firings"]}
    assert fired == {"set_skill", "change_overlap"}, r.json()
