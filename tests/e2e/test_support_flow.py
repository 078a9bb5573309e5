"""Support through the gateway: a worker's report becomes a ticket, a manager answers, the
worker sees it (and gets a live hint), the ticket closes and reopens on the worker's next
message, and the owner dashboard's support numbers follow; task chat between the worker
and the reviewer, delivered live, with a mute and the rate limit."""

from __future__ import annotations

import asyncio

from servicekit.testing import eventually


async def support_numbers(stack) -> dict:
    r = await stack.client.get("/api/admin/dashboard", headers=stack.admin.headers)
    assert r.status_code == 200, r.text
    return r.json()["support"]


async def live_hints(stack, user, action) -> str:
    """What ``user``'s open page hears on /api/live while ``action`` runs (the stream lasts
    live_max_s = 1 s in the test stack)."""
    stream = asyncio.create_task(stack.client.get("/api/live", headers=user.headers))
    await asyncio.sleep(0.2)                       # the stream is open and listening
    await action()
    r = await stream
    assert r.status_code == 200, r.text
    return r.text


async def taken_assignment(stack, worker) -> tuple[str, str]:
    pool_id = await stack.pool(input_spec=[{"name": "q"}],
                               output_spec=[{"name": "a", "allowed_values": ["yes", "no"]}],
                               rows=[{"q": "one"}], price_minor=500, currency="RUB")
    r = await stack.client.post("/api/worker/tasks/take", headers=worker.headers,
                                json={"pool_id": pool_id})
    assert r.status_code == 200, r.text
    return pool_id, r.json()["assignment_id"]


async def test_report_to_ticket_answer_close_reopen_and_dashboard(stack) -> None:
    c = stack.client
    worker, manager = await stack.user("worker"), await stack.user("manager")
    pool_id, assignment_id = await taken_assignment(stack, worker)
    before = await support_numbers(stack)

    r = await c.post(f"/api/worker/assignments/{assignment_id}/report", headers=worker.headers,
                     json={"reason": "broken_link", "text": "Картинка не открывается"})
    assert r.status_code == 200, r.text

    async def worker_ticket():
        r = await c.get("/api/support/tickets", headers=worker.headers)
        return next((t for t in r.json()["items"] if t["assignment_id"] == assignment_id), None)

    ticket = await eventually(worker_ticket)
    tid = ticket["ticket_id"]
    assert ticket["status"] == "open" and ticket["pool_id"] == pool_id
    assert (await support_numbers(stack))["open"] == before["open"] + 1

    # the manager finds it by pool and kind, takes it and answers
    r = await c.get("/api/support/tickets", headers=manager.headers,
                    params={"pool_id": pool_id, "kind": "task_report:", "status": "open"})
    assert [t["ticket_id"] for t in r.json()["items"]] == [tid]
    r = await c.put(f"/api/support/tickets/{tid}/assignee", headers=manager.headers,
                    json={"assignee_id": manager.user_id})
    assert r.status_code == 200 and r.json()["assigned_to"] == manager.user_id, r.text
    r = await c.put(f"/api/support/tickets/{tid}/assignee", headers=manager.headers,
                    json={"assignee_id": worker.user_id})
    assert r.status_code == 422 and r.json()["error"]["code"] == "assignee_not_staff"

    async def answer():
        r = await c.post(f"/api/support/tickets/{tid}/messages", headers=manager.headers,
                         json={"text": "Ссылку исправили, попробуйте снова"})
        assert r.status_code == 200 and r.json()["ticket"]["status"] == "answered", r.text

    assert "event: tickets" in await live_hints(stack, worker, answer)
    r = await c.get(f"/api/support/tickets/{tid}", headers=worker.headers)
    assert r.status_code == 200, r.text
    thread = r.json()
    assert thread["ticket"]["status"] == "answered"
    assert [(m["from_staff"], m["text"]) for m in thread["messages"]] == [
        (False, "Картинка не открывается"), (True, "Ссылку исправили, попробуйте снова")]
    after_answer = await support_numbers(stack)
    assert after_answer["open"] == before["open"]
    assert after_answer["answered"] == before["answered"] + 1
    assert after_answer["median_first_answer_s"] is not None

    # another worker cannot read it; the manager closes; the worker's new message reopens
    stranger = await stack.user("worker")
    r = await c.get(f"/api/support/tickets/{tid}", headers=stranger.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "ticket_not_found"
    r = await c.post(f"/api/support/tickets/{tid}/close", headers=manager.headers)
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text
    closed = await support_numbers(stack)
    assert (closed["answered"], closed["closed"]) == (before["answered"],
                                                      before["closed"] + 1)
    r = await c.post(f"/api/support/tickets/{tid}/messages", headers=worker.headers,
                     json={"text": "Снова не работает"})
    assert r.status_code == 200 and r.json()["ticket"]["status"] == "open", r.text
    reopened = await support_numbers(stack)
    assert (reopened["open"], reopened["closed"]) == (before["open"] + 1, before["closed"])

    # a user's own question is a ticket too
    r = await c.post("/api/support/tickets", headers=worker.headers,
                     json={"subject": "Выплата", "text": "Когда придут деньги?"})
    assert r.status_code == 201 and r.json()["kind"] == "question", r.text


async def test_task_chat_live_mute_and_rate_limit(stack) -> None:
    c = stack.client
    worker, reviewer = await stack.user("worker"), await stack.user("manager")
    pool_id, assignment_id = await taken_assignment(stack, worker)
    url = f"/api/chat/assignment/{assignment_id}"

    # the chat exists as soon as the task is taken (the gateway asks tasks whose it is)
    r = await c.get(url, headers=worker.headers)
    assert r.status_code == 200 and r.json()["worker_id"] == worker.user_id, r.text
    other = await stack.user("worker")
    r = await c.get(url, headers=other.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "chat_not_found"), r.text
    r = await c.get("/api/chat/assignment/no-such-assignment", headers=reviewer.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "chat_not_found"), r.text
    # whose the assignment is comes from tasks only: an owner in the body changes nothing
    forged = {"worker_id": other.user_id, "pool_id": pool_id, "task_id": "t",
              "taken_at": "2026-01-01T00:00:00Z"}
    r = await c.post(f"{url}/messages", headers=other.headers,
                     json={"text": "моё", "owner": forged})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "chat_not_found"), r.text

    async def worker_asks():
        r = await c.post(f"{url}/messages", headers=worker.headers,
                         json={"text": "Можно ли оставить поле пустым?"})
        assert r.status_code == 201, r.text

    async def reviewer_answers():
        r = await c.post(f"{url}/messages", headers=reviewer.headers, json={"text": "Нет"})
        assert r.status_code == 201, r.text

    assert "event: chat" in await live_hints(stack, reviewer, worker_asks)
    assert "event: chat" in await live_hints(stack, worker, reviewer_answers)
    r = await c.get(url, headers=reviewer.headers)
    assert [(m["author_id"], m["text"]) for m in r.json()["items"]] == [
        (worker.user_id, "Можно ли оставить поле пустым?"), (reviewer.user_id, "Нет")]
    other = await stack.user("worker")
    r = await c.get(url, headers=other.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "chat_not_found"
    r = await c.get("/api/chat", headers=worker.headers)
    assert [t["ref"] for t in r.json()["threads"]] == [assignment_id]

    # rate limit: 5 messages in 10 s per user, then 429 with when to retry
    codes = []
    for i in range(5):
        r = await c.post(f"{url}/messages", headers=worker.headers, json={"text": f"#{i}"})
        codes.append(r.status_code)
    assert codes == [201, 201, 201, 201, 429]         # the worker's question was the first
    body = r.json()["error"]
    assert body["code"] == "chat_rate_limited"
    assert 1 <= body["details"]["retry_after_s"] <= 10
    assert r.headers["Retry-After"] == str(body["details"]["retry_after_s"])

    # the reviewer mutes the worker: refused with chat_muted until the mute ends or is lifted
    r = await c.post("/api/chat/mutes", headers=reviewer.headers,
                     json={"user_id": worker.user_id, "minutes": 30, "reason": "flood"})
    assert r.status_code == 200, r.text
    r = await c.post(f"{url}/messages", headers=worker.headers, json={"text": "ещё"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "chat_muted", r.text
    assert r.json()["error"]["details"]["muted_until"]
    r = await c.post("/api/chat/mutes", headers=worker.headers,
                     json={"user_id": reviewer.user_id, "minutes": 30})
    assert r.status_code == 403                      # workers do not moderate
    # a moderator hides a message in the pool's general chat
    await eventually(lambda: _pool_chat_open(stack, other, pool_id))
    r = await c.post(f"/api/chat/pool/{pool_id}/messages", headers=other.headers,
                     json={"text": "spam spam"})
    assert r.status_code == 201, r.text
    r = await c.delete(f"/api/chat/messages/{r.json()['message_id']}", headers=reviewer.headers)
    assert r.status_code == 200 and r.json()["deleted"], r.text
    r = await c.get(f"/api/chat/pool/{pool_id}", headers=worker.headers)
    assert [m["text"] for m in r.json()["items"]] == [""]
    r = await c.delete(f"/api/chat/mutes/{worker.user_id}", headers=reviewer.headers)
    assert r.status_code == 200 and r.json()["muted_until"] is None


async def _pool_chat_open(stack, user, pool_id: str) -> bool:
    r = await stack.client.get(f"/api/chat/pool/{pool_id}", headers=user.headers)
    return r.status_code == 200
