"""Webhooks through the gateway and the bus: a receiver on loopback gets each subscribed
event (and only those), signed; while it is down, what it misses arrives after it comes
back; a delivery can be sent again by hand."""

from __future__ import annotations

import json
import uuid
from typing import Any

from servicekit.testing import eventually
from servicekit.testing.receiver import Receiver as BaseReceiver
from support_service.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


class Receiver(BaseReceiver):
    """The kit's receiver, answering 200, that reads back the signed bodies of a pool."""

    def __init__(self) -> None:
        super().__init__(status=200)

    def bodies(self, secret: str, pool_id: str) -> list[dict[str, Any]]:
        out = []
        for r in self.seen:
            h = r["headers"]
            assert verify(secret, h[TIMESTAMP_HEADER], r["body"], h[SIGNATURE_HEADER])
            body = json.loads(r["body"])
            if body["data"].get("pool_id") == pool_id:
                out.append(body)
        return out


async def test_a_receiver_gets_each_event_signed_and_catches_up(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    worker, manager = await stack.user("worker"), await stack.user("manager")
    r = await c.post("/api/admin/webhooks", headers=admin,
                     json={"url": "ftp://example.com/x", "kinds": ["pool.closed"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "webhook_url_invalid", r.text

    receiver = Receiver()
    await receiver.start()
    r = await c.post("/api/admin/webhooks", headers=admin, json={
        "url": f"http://127.0.0.1:{receiver.port}/hook",
        "kinds": ["task.accepted", "pool.closed"]})
    assert r.status_code == 201, r.text
    sid, secret = r.json()["subscription_id"], r.json()["secret"]
    r = await c.get("/api/admin/webhooks", headers=admin)
    assert secret not in r.text
    r = await c.get("/api/admin/webhooks", headers=manager.headers)
    assert r.status_code == 403

    pool_id = await stack.pool(input_spec=[{"name": "n", "type": "integer"}],
                               output_spec=[{"name": "ok", "type": "boolean"}],
                               rows=[{"n": 1}, {"n": 2}], name=f"hooks-{uuid.uuid4().hex[:4]}",
                               price_minor=100)
    aids = []
    for _ in range(2):
        async def take():
            r = await c.post("/api/worker/tasks/take", headers=worker.headers,
                             json={"pool_id": pool_id})
            return r if r.status_code == 200 else None

        r = await eventually(take)
        aid = r.json()["assignment_id"]
        r = await c.post(f"/api/worker/assignments/{aid}/submit", headers=worker.headers,
                         json={"answers": {"ok": True}})
        assert r.status_code == 200, r.text
        aids.append(aid)

    async def pending():
        r = await c.get("/api/review/pending", headers=manager.headers,
                        params={"pool_id": pool_id})
        return set(aids) <= {i["assignment_id"] for i in r.json()["items"]}

    await eventually(pending)
    for aid, verdict in zip(aids, ("accept", "reject"), strict=True):  # rejected: not subscribed
        assert (await c.post(f"/api/review/submissions/{aid}/lock",
                             headers=manager.headers)).status_code == 200
        r = await c.post(f"/api/review/submissions/{aid}/{verdict}", headers=manager.headers,
                         json={"comment": "seen"})
        assert r.status_code == 200, r.text

    async def got_accepted():
        kinds = [b["kind"] for b in receiver.bodies(secret, pool_id)]
        return kinds if kinds == ["task.accepted"] else None

    await eventually(got_accepted)

    # down while the pool closes; the close arrives once it is back
    await receiver.stop()
    r = await c.post(f"/api/admin/pools/{pool_id}/close", headers=admin)
    assert r.status_code == 200, r.text

    async def failed_once():
        r = await c.get(f"/api/admin/webhooks/{sid}/deliveries", headers=admin)
        closed = [d for d in r.json()["items"] if d["kind"] == "pool.closed"]
        return closed[0] if closed and closed[0]["attempts"] >= 1 else None

    missed = await eventually(failed_once)
    assert missed["status"] == "pending" and missed["log"][0]["error"]
    await receiver.start()

    async def caught_up():
        kinds = [b["kind"] for b in receiver.bodies(secret, pool_id)]
        return kinds if kinds == ["task.accepted", "pool.closed"] else None

    await eventually(caught_up)

    async def both_recorded():
        # the sender records a delivery after the receiver answered: a moment after the
        # receiver has the body
        r = await c.get(f"/api/admin/webhooks/{sid}/deliveries", headers=admin,
                        params={"status": "delivered"})
        found = {d["kind"]: d for d in r.json()["items"]}
        return found if set(found) == {"task.accepted", "pool.closed"} else None

    delivered = await eventually(both_recorded)
    assert delivered["pool.closed"]["log"][-1]["status_code"] == 200

    # sent again by hand: the receiver sees it a second time, freshly signed
    did = delivered["task.accepted"]["delivery_id"]
    r = await c.post(f"/api/admin/webhook-deliveries/{did}/redeliver", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text

    async def twice():
        kinds = [b["kind"] for b in receiver.bodies(secret, pool_id)]
        return kinds if kinds.count("task.accepted") == 2 else None

    await eventually(twice)
    await receiver.stop()
