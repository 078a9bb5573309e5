"""A worker downloads everything the platform holds on them: every answer they gave, the
credit of an accepted one, their ticket and chat message; nothing of anyone else's, no
price, no share."""

from __future__ import annotations

from typing import Any

from servicekit.testing import eventually


def walk(doc: Any) -> tuple[set[str], list[Any]]:
    """Every key and every number in a JSON document."""
    keys: set[str] = set()
    numbers: list[Any] = []
    stack = [doc]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            keys.update(x)
            stack += x.values()
        elif isinstance(x, list):
            stack += x
        elif isinstance(x, int | float) and not isinstance(x, bool):
            numbers.append(x)
    return keys, numbers


async def test_a_workers_data_export_holds_every_answer_they_gave(stack) -> None:
    c = stack.client
    worker, other, manager = (await stack.user("worker"), await stack.user("worker"),
                              await stack.user("manager"))
    pool_id = await stack.pool(input_spec=[{"name": "q"}],
                               output_spec=[{"name": "a", "allowed_values": ["yes", "no"]}],
                               rows=[{"q": f"question {i}"} for i in range(3)],
                               price_minor=777, currency="RUB", overlap=2)
    given: dict[str, str] = {}
    for i in range(3):
        a = await stack.take(worker, pool_id)
        answer = "yes" if i % 2 else "no"
        r = await c.post(f"/api/worker/assignments/{a['assignment_id']}/submit",
                         headers=worker.headers,
                         json={"answers": {"a": answer}, "comment": f"comment {i}"})
        assert r.status_code == 200, r.text
        given[a["assignment_id"]] = answer
    theirs = await stack.take(other, pool_id)
    r = await c.post(f"/api/worker/assignments/{theirs['assignment_id']}/submit",
                     headers=other.headers, json={"answers": {"a": "yes"}})
    assert r.status_code == 200, r.text

    first = next(iter(given))

    async def pending():
        r = await c.get(f"/api/review/pending?pool_id={pool_id}", headers=manager.headers)
        return any(i["assignment_id"] == first for i in r.json()["items"])
    await eventually(pending)
    r = await c.post(f"/api/review/submissions/{first}/lock", headers=manager.headers)
    assert r.status_code == 200, r.text
    r = await c.post(f"/api/review/submissions/{first}/accept", headers=manager.headers,
                     json={})
    assert r.status_code == 200, r.text
    r = await c.post("/api/support/tickets", headers=worker.headers,
                     json={"subject": "Мои данные", "text": "Что вы храните обо мне?"})
    assert r.status_code == 201, r.text

    async def credited():
        r = await c.get("/api/worker/ledger", headers=worker.headers)
        return r.json()["items"] or None
    await eventually(credited)

    r = await c.get("/api/me/data", headers=worker.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith('attachment; filename="my-data-')
    assert r.headers["cache-control"] == "no-store"
    d = r.json()
    assert d["account"]["user_id"] == worker.user_id and d["account"]["role"] == "worker"
    got = {a["assignment_id"]: a["answers"]["a"] for a in d["worker"]["assignments"]}
    assert got == given  # every answer, and only this worker's
    assert {a["comment"] for a in d["worker"]["assignments"]} == {"comment 0", "comment 1",
                                                                   "comment 2"}
    assert [e["assignment_id"] for e in d["worker"]["ledger"]
            if e.get("assignment_id")] == [first]
    assert d["worker"]["balance"]["balances"], d["worker"]["balance"]
    assert [t["ticket"]["subject"] for t in d["tickets"]] == ["Мои данные"]
    text = r.text
    assert other.user_id not in text and theirs["assignment_id"] not in text
    keys, numbers = walk(d)
    assert not [k for k in keys if "price" in k or "share" in k], keys  # neither is shown
    assert 777 not in numbers

    r = await c.get("/api/me/data", headers=manager.headers)
    assert r.status_code == 200 and r.json()["worker"] is None, r.text
    assert (await c.get("/api/me/data")).status_code == 401


async def test_erasure_is_asked_for_then_carried_out_by_an_admin_with_mfa(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    worker, earner = await stack.user("worker"), await stack.user("worker")
    r = await c.post("/api/support/tickets", headers=worker.headers,
                     json={"subject": "Мой телефон", "text": "+7 900 000-00-00"})
    assert r.status_code == 201, r.text
    r = await c.post("/api/me/erasure", headers=worker.headers,
                     json={"message": "Удалите всё"})
    assert r.status_code == 201 and r.json()["subject"].startswith("Удаление"), r.text
    r = await c.post("/api/me/erasure", headers=admin, json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "cannot_erase_admin"

    # an admin without the MFA step-up is refused; with it, a worker owed money is refused
    plain = await stack.user("admin")
    r = await c.post(f"/api/admin/users/{worker.user_id}/erase", headers=plain.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "mfa_required", r.text
    await stack.admin_step_up()
    pool_id = await stack.pool(input_spec=[{"name": "q"}], output_spec=[{"name": "a"}],
                               rows=[{"q": "x"}], price_minor=500, currency="RUB",
                               review_mode="auto", auto_accept_after_s=0)
    r = await c.post("/api/worker/tasks/take", headers=earner.headers, json={"pool_id": pool_id})
    assert r.status_code == 200, r.text
    r = await c.post(f"/api/worker/assignments/{r.json()['assignment_id']}/submit",
                     headers=earner.headers, json={"answers": {"a": "y"}})
    assert r.status_code == 200, r.text

    async def owed():
        r = await c.post(f"/api/admin/users/{earner.user_id}/erase", headers=admin)
        return r if r.status_code == 409 else None
    refused = await eventually(owed)
    assert refused.json()["error"]["code"] == "erasure_money_pending", refused.text

    r = await c.post(f"/api/admin/users/{worker.user_id}/erase", headers=admin)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["login"].startswith("erased-") and done["sessions_revoked"] >= 1
    assert done["support"]["tickets"] == 2
    assert (await c.get("/api/auth/me", headers=worker.headers)).status_code == 401
    r = await c.post("/api/auth/login", json={"login": worker.login, "password": worker.password})
    assert r.status_code == 401, r.text
    r = await c.get("/api/support/tickets", headers=admin)
    texts = [(t["subject"], t["text"]) for t in r.json()["items"] if t["user_id"] == worker.user_id]
    assert texts == [("[erased]", "[erased]")] * 2
    r = await c.get("/api/admin/audit", headers=admin, params={"kind": "user.erased"})
    assert any(e["target"] == worker.user_id for e in r.json()["items"]), r.text
    again = await c.post(f"/api/admin/users/{worker.user_id}/erase", headers=admin)
    assert again.status_code == 200 and again.json()["support"]["tickets"] == 0, again.text
