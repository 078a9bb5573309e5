"""``task.result_ready`` from the aggregation runs (PostgreSQL, nats-server): once per task
and method when the task needs no more answers, nothing while it still does, and a new
revision when a later run changes the answer (decision 40)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contracts.events import OverlapChanged, ReviewAccepted
from contracts.rpc import tasks as rpc

sys.path.insert(0, str(Path(__file__).parent))
from test_tasks_service import ADMIN, Env, running, worker


@pytest.fixture
async def env(module_nats, database_url) -> AsyncIterator[Env]:
    async with running(module_nats.url, database_url, aggregate_interval_s=0.2,
                       aggregate_min_gap_s=0) as e:
        yield e


async def _accept(env: Env, pool: dict, a: dict, who: str) -> None:
    await env.publish(ReviewAccepted(
        assignment_id=a["assignment_id"], task_id=a["task_id"], pool_id=pool["pool_id"],
        project_id=pool["project_id"], worker_id=who, decided_by="m1",
        decided_at=datetime.now(UTC)))


async def _run_over(env: Env, pool_id: str, answers: int) -> None:
    """Ask for a majority-vote run and wait until one that started after the request read
    ``answers`` answers has committed (with the events it recorded)."""
    asked = await env.call(rpc.REQUEST_AGGREGATION, rpc.AggregationRequest, actor=ADMIN,
                           pool_id=pool_id, method="majority_vote")

    async def ran() -> Any:
        got = await env.call(rpc.POOL_RESULTS, rpc.PoolResultsRequest, actor=ADMIN,
                             pool_id=pool_id, method="majority_vote")
        s = got["state"]
        return (s and s["computed_at"] and s["computed_at"] > asked["requested_at"]
                and s["answers_used"] == answers)
    await env.eventually(ran, timeout_s=30)


async def _accepted(env: Env, pool_id: str, n: int) -> bool:
    from sqlalchemy import func, select

    from tasks_service.db import assignments

    async with env.svc.engine.connect() as conn:
        got = (await conn.execute(select(func.count()).where(
            assignments.c.pool_id == pool_id, assignments.c.status == "ACCEPTED"))).scalar()
    return got == n


async def _ready(env: Env, pool_id: str) -> list[dict]:
    return sorted((e for e in await env.outbox_events("task.result_ready")
                   if e["pool_id"] == pool_id), key=lambda e: (e["task_id"], e["revision"]))


async def test_result_ready_once_per_task_when_final_and_again_when_changed(env: Env) -> None:
    pool = await env.pool(n=2, overlap=3)
    pid = pool["pool_id"]
    ws = [worker() for _ in range(3)]
    done: dict[str, list[tuple[dict, str]]] = {}
    for w, labels in zip(ws, (("cat", "cat"), ("cat", "dog"), ("dog", "dog")), strict=True):
        for label in labels:
            a = await env.take(w, pid)
            await env.submit(w, a["assignment_id"], label=label)
            done.setdefault(a["task_id"], []).append((a, w.user_id))
    t1, t2 = pool["task_ids"]
    assert [len(done[t]) for t in (t1, t2)] == [3, 3]
    # t1 (cat, cat, dog): all three accepted; t2 (cat, dog, dog): two of three
    for a, who in done[t1] + done[t2][:2]:
        await _accept(env, pool, a, who)
    await env.eventually(lambda: _accepted(env, pid, 5), timeout_s=20)
    await _run_over(env, pid, 6)
    ready = await _ready(env, pid)
    assert [(e["task_id"], e["revision"]) for e in ready] == [(t1, 1)], ready
    e = ready[0]
    assert e["method"] == "majority_vote" and e["project_id"] == pool["project_id"]
    assert e["fields"]["label"]["answer"] == "cat" and e["fields"]["label"]["answers"] == 3
    assert e["confidence"] == pytest.approx(2 / 3, abs=1e-5)

    # t2's last answer accepted: its event, and t1's is not sent again
    a, who = done[t2][2]
    await _accept(env, pool, a, who)
    await env.eventually(lambda: _accepted(env, pid, 6), timeout_s=20)
    await _run_over(env, pid, 6)
    ready = await _ready(env, pid)
    assert [(e["task_id"], e["revision"]) for e in ready] == sorted([(t1, 1), (t2, 1)]), ready
    assert next(e for e in ready if e["task_id"] == t2)["fields"]["label"]["answer"] == "dog"

    # a rule asks t1 for two more answers, both "dog": not final until they are accepted,
    # then revision 2 with the new answer (cat, cat, dog, dog, dog)
    await env.publish(OverlapChanged(rule_id="r", firing_id="f", worker_id=ws[0].user_id,
                                     pool_id=pid, task_ids=[t1], add=2))
    extra = []
    for w in (worker(), worker()):
        a = await env.eventually(lambda w=w: env.take(w, pid))
        assert a["task_id"] == t1
        await env.submit(w, a["assignment_id"], label="dog")
        extra.append((a, w.user_id))
    await _run_over(env, pid, 8)
    assert len(await _ready(env, pid)) == 2  # submitted, not accepted: still not final
    for a, who in extra:
        await _accept(env, pool, a, who)
    await env.eventually(lambda: _accepted(env, pid, 8), timeout_s=20)
    await _run_over(env, pid, 8)
    ready = await _ready(env, pid)
    assert [(e["task_id"], e["revision"]) for e in ready] == sorted([(t1, 1), (t1, 2), (t2, 1)])
    again = next(e for e in ready if (e["task_id"], e["revision"]) == (t1, 2))
    assert again["fields"]["label"] == {"answer": "dog", "confidence": 0.6, "answers": 5}

