"""Emergency read-only mode across the whole stack: the door closes for writes, the bus
keeps working, so an acceptance already on its way is still credited."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from contracts.envelope import new_envelope
from contracts.events import PoolOpened, ReviewAccepted


async def test_read_only_blocks_writes_but_queued_acceptance_is_credited(stack, bus) -> None:
    c, admin = stack.client, stack.admin.headers
    worker = await stack.user("worker")
    # (the switch's MFA requirement is tested in the gateway's own suite; this shared
    # admin session may already be elevated by an earlier test)
    await stack.admin_step_up()
    r = await c.post("/api/admin/emergency", headers=admin,
                     json={"enabled": True, "reason": "drill"})
    try:
        assert r.status_code == 200, r.text
        r = await c.post("/api/worker/payouts", headers=worker.headers,
                         json={"amount_minor": 1, "comment": "x"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "read_only"
        assert "retry-after" in r.headers and r.headers.get("x-read-only") == "on"
        r = await c.get("/api/status")
        assert r.status_code == 200 and r.json()["read_only"] is True
        r = await c.post("/api/auth/login", json={"login": worker.login,
                                                  "password": worker.password})
        assert r.status_code == 200, r.text

        # a pool opened and an acceptance decided before the switch are still on the bus
        opened = PoolOpened(pool_id="p-ro", project_id="pr", price_minor=300, currency="DKK",
                            opened_at=datetime.now(UTC))
        ev = ReviewAccepted(assignment_id=str(uuid.uuid4()), task_id="t", pool_id="p-ro",
                            project_id="pr", worker_id=worker.user_id, decided_by="m",
                            decided_at=datetime.now(UTC))
        for event, producer in ((opened, "tasks"), (ev, "review")):
            # each as the service that owns the subject (nobody else may publish it)
            nc = await bus.connect(producer)
            env = new_envelope(event, producer=producer)
            await nc.jetstream().publish(env.type, env.model_dump_json().encode(),
                                         headers={"Nats-Msg-Id": env.event_id})
            await nc.close()

        for _ in range(200):
            r = await c.get("/api/worker/balance", headers=worker.headers)
            assert r.status_code == 200  # reads keep working
            dkk = {b["currency"]: b for b in r.json()["balances"]}.get("DKK")
            if dkk and dkk["available_minor"]:
                break
            await asyncio.sleep(0.1)
        assert dkk["available_minor"] == 150  # default share 50%
    finally:
        r = await c.post("/api/admin/emergency", headers=admin,
                         json={"enabled": False, "reason": "drill over"})
        assert r.status_code == 200, r.text
    r = await c.get("/api/status")
    assert r.json()["read_only"] is False
