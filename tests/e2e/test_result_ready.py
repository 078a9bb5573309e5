"""A task's result ready, through the gateway and the bus: in a pool of overlap 3 each task's
``result.ready`` webhook arrives, signed, once its third answer is accepted, and only once
(another aggregation run with the same answers sends nothing more)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from servicekit.testing import eventually
from servicekit.testing.receiver import Receiver
from support_service.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


def _ready(receiver: Receiver, secret: str, pool_id: str) -> list[dict[str, Any]]:
    """The signed ``result.ready`` bodies the receiver got for the pool (each verified)."""
    out = []
    for r in receiver.seen:
        h = r["headers"]
        assert verify(secret, h[TIMESTAMP_HEADER], r["body"], h[SIGNATURE_HEADER])
        body = json.loads(r["body"])
        if body["data"]["pool_id"] == pool_id:
            assert body["kind"] == "result.ready" and body["type"] == "task.result_ready"
            out.append(body["data"])
    return out


async def test_result_ready_reaches_a_webhook_once_per_task(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    receiver = Receiver(status=200)
    await receiver.start()
    r = await c.post("/api/admin/webhooks", headers=admin,
                     json={"url": receiver.url, "kinds": ["result.ready"]})
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]

    pool_id = await stack.pool(
        input_spec=[{"name": "n", "type": "integer"}],
        output_spec=[{"name": "label", "type": "string", "allowed_values": ["yes", "no"]}],
        rows=[{"n": 1}, {"n": 2}], name=f"ready-{uuid.uuid4().hex[:4]}", price_minor=0,
        overlap=3, review_mode="auto", auto_accept_after_s=0)
    workers = []
    for _ in range(3):
        w = await stack.user("worker")
        r = await c.post(f"/api/admin/users/{w.user_id}/trust-level", headers=admin,
                         json={"level": "trusted"})
        assert r.status_code == 200, r.text
        workers.append(w)

    async def answer(worker, label: str | dict[str, str]) -> str:
        """The worker takes a task and answers ``label`` (by the task taken, when a dict:
        which of two tasks a take gets first is the pool's choice)."""
        a = await stack.take(worker, pool_id, wait_for_a_task=True)
        text = label if isinstance(label, str) else label[a["task_id"]]
        r = await c.post(f"/api/worker/assignments/{a['assignment_id']}/submit",
                         headers=worker.headers, json={"answers": {"label": text}})
        assert r.status_code == 200, r.text
        return a["task_id"]

    # the first two workers answer both tasks, the third only one of them: that one is final
    first = await answer(workers[0], "yes")
    second = await answer(workers[0], "no")
    # which of the two a take gets is the pool's choice (the oldest free one, skipping a row
    # another transaction holds), so every answer is chosen by its task: each task ends 2
    # to 1, "yes" for the first, "no" for the second, whichever the third worker takes first
    want = {first: "yes", second: "no"}
    assert {await answer(workers[1], want), await answer(workers[1], want)} == {first, second}
    third = {first: "no", second: "yes"}
    final = await answer(workers[2], third)
    other = second if final == first else first

    async def ready_for(tasks: set[str]) -> list[dict[str, Any]] | None:
        got = _ready(receiver, secret, pool_id)
        return got if {d["task_id"] for d in got} == tasks else None

    got = await eventually(lambda: ready_for({final}), timeout_s=90)
    assert len(got) == 1
    d = got[0]
    assert d["method"] == "majority_vote" and d["revision"] == 1
    assert d["fields"]["label"]["answer"] == want[final] and d["fields"]["label"]["answers"] == 3
    assert abs(d["confidence"] - 2 / 3) < 1e-5

    # the other task's last answer: its event comes; the final one's does not come again
    assert await answer(workers[2], third) == other
    got = await eventually(lambda: ready_for({first, second}), timeout_s=90)
    by_task = {d["task_id"]: d for d in got}
    label = by_task[other]["fields"]["label"]
    assert (label["answer"], label["answers"]) == (want[other], 3)
    assert abs(label["confidence"] - 2 / 3) < 1e-5

    # another run over the same answers sends nothing new
    r = await c.post(f"/api/admin/pools/{pool_id}/aggregations", headers=admin,
                     json={"method": "majority_vote"})
    assert r.status_code == 200, r.text
    asked = r.json()["requested_at"]

    async def rerun() -> bool:
        r = await c.get(f"/api/pools/{pool_id}/results?method=majority_vote", headers=admin)
        state = r.json()["state"]
        return bool(state["computed_at"] and state["computed_at"] > asked
                    and state["answers_used"] == 6)

    await eventually(rerun, timeout_s=60)
    await asyncio.sleep(2)  # what that run recorded, had it recorded anything, is sent by now
    got = _ready(receiver, secret, pool_id)
    assert sorted(d["task_id"] for d in got) == sorted([first, second])
    await receiver.stop()
