"""Dead letters over HTTP: paged, replayed to the one consumer that dead-lettered them (so
twice changes nothing), discarded, audited; workers never see them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from contracts.envelope import new_envelope
from contracts.events import PoolOpened
from servicekit.consumer import dlq_headers


async def dead_letter(bus, consumer: str, subject: str, data: bytes) -> int:
    """A letter in the DLQ as a consumer writes one (published by the ops user)."""
    ops = await bus.connect("ops")
    try:
        service = consumer.split("__")[0]
        ack = await ops.jetstream().publish(
            f"dlq.{service}.{consumer}", data,
            headers=dlq_headers(reason="handler_error", error_type="RuntimeError",
                                error_message="the test put it here", consumer=consumer,
                                stream="TASK", subject=subject, seq=uuid.uuid4().int % 10**9,
                                deliveries=8))
        return int(ack.seq)
    finally:
        await ops.close()


async def ledger_knows(stack, pool_id: str) -> bool:
    async with stack.services["ledger"].engine.connect() as conn:
        row = (await conn.execute(text("SELECT price_minor FROM pools WHERE pool_id = :p"),
                                  {"p": pool_id})).first()
    return row is not None and row[0] == 700


async def test_a_dead_letter_is_replayed_to_its_consumer_once_and_audited(stack, bus) -> None:
    c, admin = stack.client, stack.admin.headers
    pool_id = f"p-dlq-{uuid.uuid4().hex[:8]}"
    env = new_envelope(PoolOpened(pool_id=pool_id, project_id="pr", price_minor=700,
                                  currency="EUR", opened_at=datetime.now(UTC)), producer="tasks")
    data = env.model_dump_json().encode()
    seq = await dead_letter(bus, "ledger__pool-opened", "task.pool_opened", data)
    assert not await ledger_knows(stack, pool_id)

    worker = await stack.user("worker")
    r = await c.get("/api/admin/dead-letters", headers=worker.headers)
    assert r.status_code == 403
    r = await c.get("/api/admin/dead-letters", headers=admin, params={"after_seq": seq - 1})
    assert r.status_code == 200, r.text
    [mine] = [i for i in r.json()["items"] if i["seq"] == seq]
    assert (mine["service"], mine["consumer"], mine["subject"], mine["deliveries"]) == (
        "ledger", "ledger__pool-opened", "task.pool_opened", 8)

    r = await c.post(f"/api/admin/dead-letters/{seq}/replay", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "applied"
    assert await ledger_knows(stack, pool_id)
    r = await c.post(f"/api/admin/dead-letters/{seq}/replay", headers=admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "dead_letter_not_found"

    # the same event dead-lettered again: the consumer's inbox knows it, nothing changes
    again = await dead_letter(bus, "ledger__pool-opened", "task.pool_opened", data)
    r = await c.post(f"/api/admin/dead-letters/{again}/replay", headers=admin)
    assert r.status_code == 200 and r.json()["outcome"] == "duplicate", r.text

    r = await c.get("/api/admin/audit", headers=admin,
                    params={"kind": "dead_letter.replayed", "limit": 10})
    assert r.status_code == 200, r.text
    targets = {i["target"] for i in r.json()["items"]}
    assert {str(seq), str(again)} <= targets


async def test_an_unprocessable_letter_is_refused_and_can_be_discarded_and_pages(
        stack, bus) -> None:
    c, admin = stack.client, stack.admin.headers
    bad = await dead_letter(bus, "ledger__pool-opened", "task.pool_opened", b"not json")
    foreign = await dead_letter(bus, "nobody__x", "task.pool_opened",
                                json.dumps({"x": 1}).encode())
    third = await dead_letter(bus, "ledger__pool-opened", "task.pool_opened", b"{}")
    r = await c.post(f"/api/admin/dead-letters/{bad}/replay", headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "dead_letter_unprocessable"
    r = await c.post(f"/api/admin/dead-letters/{foreign}/replay", headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "dead_letter_not_replayable"

    page = await c.get("/api/admin/dead-letters", headers=admin,
                       params={"after_seq": bad - 1, "limit": 2})
    assert page.status_code == 200, page.text
    assert [i["seq"] for i in page.json()["items"]] == [bad, foreign]
    assert page.json()["next_after_seq"] == foreign
    rest = await c.get("/api/admin/dead-letters", headers=admin,
                       params={"after_seq": foreign, "limit": 2})
    assert third in [i["seq"] for i in rest.json()["items"]]

    filtered = await c.get("/api/admin/dead-letters", headers=admin,
                           params={"after_seq": bad - 1, "consumer": "nobody__x"})
    assert [i["seq"] for i in filtered.json()["items"]] == [foreign], filtered.text
    shown = await c.get(f"/api/admin/dead-letters/{foreign}", headers=admin)
    assert shown.status_code == 200, shown.text
    assert shown.json()["payload_json"] == {"x": 1}
    assert shown.json()["headers"]["Dlq-Consumer"] == "nobody__x"
    assert (await c.get("/api/admin/dead-letters/999999999", headers=admin)).status_code == 404

    r = await c.post(f"/api/admin/dead-letters/{bad}/discard", headers=admin, json={})
    assert r.status_code == 422  # a discard says why
    for seq in (bad, foreign, third):
        r = await c.post(f"/api/admin/dead-letters/{seq}/discard", headers=admin,
                         json={"reason": "test letter"})
        assert r.status_code == 200, r.text
    r = await c.get("/api/admin/dead-letters", headers=admin, params={"after_seq": bad - 1})
    assert not {bad, foreign, third} & {i["seq"] for i in r.json()["items"]}
    r = await c.get("/api/admin/audit", headers=admin,
                    params={"kind": "dead_letter.discarded", "limit": 10})
    assert {str(bad), str(foreign), str(third)} <= {i["target"] for i in r.json()["items"]}
