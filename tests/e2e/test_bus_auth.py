"""Forgeries on the bus are refused (issue 11 item 1): the stack's nats-server has a user per
process with the permissions of launcher.busauth, as `make run` and the deployments run it.

Each forgery that once worked on the open bus is tried again: with no credentials, with a
wrong password, and with another service's credentials. nats-server refuses each one
(the client's error callback hears "Permissions Violation"), and the effect it was after
(a credit, an approved payout, a changed share) did not happen.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import nats
import pytest
from nats.errors import NoServersError

from contracts.envelope import new_envelope
from contracts.events import PoolOpened, ReviewAccepted, ReviewRejected
from servicekit.dlq import list_dead_letters


class Heard:
    """The asynchronous errors nats-server sent a client."""

    def __init__(self) -> None:
        self.errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        self.cb = on_error

    async def violation(self, subject: str, timeout_s: float = 3.0) -> bool:
        for _ in range(int(timeout_s / 0.05)):
            if any("permissions violation" in e.lower() and subject.lower() in e.lower()
                   for e in self.errors):
                return True
            await asyncio.sleep(0.05)
        return False


async def test_no_credentials_and_a_wrong_password_are_refused(bus) -> None:
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await bus.connect(None, connect_timeout=2)
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await bus.connect("ledger", password="not-the-password", connect_timeout=2)


async def test_a_review_accepted_from_another_service_is_refused_and_never_credited(
        stack, bus) -> None:
    worker = await stack.user("worker")
    before = await stack.client.get(f"/api/admin/ledger/workers/{worker.user_id}/balance",
                                    headers=stack.admin.headers)
    assert before.status_code == 200, before.text
    pool_id = f"p-forged-{uuid.uuid4().hex[:8]}"
    # the pool's price would be known to the ledger (tasks may publish its own events)...
    tasks = await bus.connect("tasks")
    opened = new_envelope(PoolOpened(pool_id=pool_id, project_id="pr", price_minor=500_000,
                                     currency="EUR", opened_at=datetime.now(UTC)),
                          producer="tasks")
    await tasks.jetstream().publish(opened.type, opened.model_dump_json().encode())
    await tasks.close()
    # ...but an acceptance only the review service may publish: tasks' and rules' users
    # try it, on JetStream and on core NATS
    forged = new_envelope(ReviewAccepted(
        assignment_id=str(uuid.uuid4()), task_id="t", pool_id=pool_id, project_id="pr",
        worker_id=worker.user_id, decided_by="nobody", decided_at=datetime.now(UTC)),
        producer="review")
    for user in ("tasks", "rules", "gateway"):
        heard = Heard()
        nc = await bus.connect(user, error_cb=heard.cb)
        with pytest.raises(nats.errors.Error):
            await nc.jetstream().publish(forged.type, forged.model_dump_json().encode(),
                                         timeout=1.0)
        await nc.publish(forged.type, forged.model_dump_json().encode())
        await nc.flush()
        assert await heard.violation("review.accepted"), (user, heard.errors)
        await nc.close()
    await asyncio.sleep(1.0)  # a credit, had one been made, lands well within this
    after = await stack.client.get(f"/api/admin/ledger/workers/{worker.user_id}/balance",
                                   headers=stack.admin.headers)
    assert after.json() == before.json()


async def test_only_the_gateway_sends_rpcs_so_an_actor_cannot_be_claimed(stack, bus) -> None:
    """A service (or anyone else) asking the ledger to approve a payout or change a share,
    claiming an admin actor, is refused by the bus before the ledger sees it."""
    before = await stack.client.get("/api/admin/worker-share/default",
                                    headers=stack.admin.headers)
    assert before.status_code == 200, before.text
    admin = {"user_id": stack.admin.user_id, "role": "admin"}
    asks = [("rpc.ledger.approve_payout", {"actor": admin, "payout_id": str(uuid.uuid4())}),
            ("rpc.ledger.set_share", {"actor": admin, "pool_id": None, "share": "0.99"})]
    for user in ("tasks", "review", "rules", "support", "ledger"):
        heard = Heard()
        nc = await bus.connect(user, error_cb=heard.cb)
        for subject, body in asks:
            with pytest.raises(nats.errors.Error):  # refused: no reply ever comes
                await nc.request(subject, json.dumps(body).encode(), timeout=0.5)
            assert await heard.violation(subject), (user, subject, heard.errors)
        await nc.close()
    after = await stack.client.get("/api/admin/worker-share/default",
                                   headers=stack.admin.headers)
    assert after.json()["share_bps"] == before.json()["share_bps"]


async def test_nobody_reads_another_process_replies(bus) -> None:
    heard = Heard()
    nc = await bus.connect("tasks", error_cb=heard.cb)
    await nc.subscribe("_INBOX_gateway.>")
    await nc.subscribe("rpc.ledger.>")
    await nc.flush()
    assert await heard.violation("_INBOX_gateway.>"), heard.errors
    assert await heard.violation("rpc.ledger.>"), heard.errors
    await nc.close()


async def test_an_envelope_on_a_subject_its_type_does_not_name_is_dead_lettered(
        stack, bus) -> None:
    """Even the rightful producer cannot get a rejection credited by publishing it on the
    acceptance subject: the consumer compares the envelope's type with the subject and
    dead-letters the message at once."""
    worker = await stack.user("worker")
    before = await stack.client.get(f"/api/admin/ledger/workers/{worker.user_id}/balance",
                                    headers=stack.admin.headers)
    rejected = new_envelope(ReviewRejected(
        assignment_id=str(uuid.uuid4()), task_id="t", pool_id="p-mismatch", project_id="pr",
        worker_id=worker.user_id, decided_by="m", comment="no", decided_at=datetime.now(UTC)),
        producer="review")
    review = await bus.connect("review")
    js = review.jetstream()
    await js.publish("review.accepted", rejected.model_dump_json().encode(),
                     headers={"Nats-Msg-Id": rejected.event_id})
    await review.close()
    ops = await bus.connect("ops")
    found = None
    for _ in range(100):
        for row in await list_dead_letters(ops.jetstream(), limit=10_000):
            msg = await ops.jetstream().get_msg("DLQ", row["seq"])
            if rejected.event_id.encode() in (msg.data or b""):
                found = row["headers"]
        if found:
            break
        await asyncio.sleep(0.1)
    await ops.close()
    assert found is not None, "the mismatched envelope was not dead-lettered"
    assert "review.rejected" in found.get("Dlq-Error-Message", ""), found
    after = await stack.client.get(f"/api/admin/ledger/workers/{worker.user_id}/balance",
                                   headers=stack.admin.headers)
    assert after.json() == before.json()
