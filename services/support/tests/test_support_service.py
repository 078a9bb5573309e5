"""Support service against a real nats-server and database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import nats
from sqlalchemy import select

from contracts.events import TaskReported
from contracts.rpc import Actor
from contracts.rpc import support as rpc
from servicekit.migrations import upgrade
from servicekit.rpc import RpcClient
from support_service.db import tickets
from support_service.kb import knowledge_base
from support_service.main import create_service
from support_service.settings import SupportSettings

SERVICE_DIR = Path(__file__).parents[1]


def test_assistant_matches_frequent_question() -> None:
    m = knowledge_base().search("how can I withdraw my money?")
    assert m is not None and m.article.id == "payouts"
    assert knowledge_base().search("zebra quantum marmalade") is None


async def test_task_report_becomes_ticket_and_rpc_lists_it(nats_server, database_url) -> None:
    upgrade(SERVICE_DIR, database_url)
    svc = create_service(SupportSettings(database_url=database_url, nats_url=nats_server.url,
                                         environment="test"))
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        worker = f"w-{uuid.uuid4().hex[:6]}"
        # Publish a task.reported the way the tasks service does: via an outbox row.
        async with svc.db.unit_of_work() as uow:
            uow.record(TaskReported(
                assignment_id=str(uuid.uuid4()), task_id="t1", pool_id="p1", project_id="pr1",
                worker_id=worker, reason="broken_link", text="the image does not load",
                reported_at=datetime.now(UTC)))
        client = RpcClient(nc)
        for _ in range(100):
            data = await client.call(rpc.LIST_TICKETS, rpc.TicketList(
                actor=Actor(user_id=worker, role="worker")))
            if data.total:
                break
            await asyncio.sleep(0.05)
        assert data.total == 1
        assert data.items[0].kind == "task_report:broken_link"
        other = await client.call(rpc.LIST_TICKETS, rpc.TicketList(
            actor=Actor(user_id="someone-else", role="worker")))
        assert other.total == 0
        async with svc.engine.connect() as conn:
            assert len((await conn.execute(select(tickets))).all()) == 1
    finally:
        await nc.close()
        await svc.stop()
