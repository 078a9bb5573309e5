"""The store's SQL on a real PostgreSQL, through the handlers (no bus)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from contracts.envelope import new_envelope
from contracts.events import CaptchaAnswered
from contracts.rpc import Actor
from contracts.rpc import rules as rpc
from rules_service import explain, facts, rules_api
from rules_service.context import RulesContext
from rules_service.db import collector_state, firings, recorded_facts, task_votes
from rules_service.main import create_service
from rules_service.settings import RulesSettings
from servicekit.errors import NotFound
from servicekit.migrations import upgrade
from servicekit.service import Service

SERVICE_DIR = Path(__file__).parents[1]
ADMIN = Actor(user_id="admin-1", role="admin")
MANAGER = Actor(user_id="manager-1", role="manager")


@pytest.fixture
async def svc(database_url: str) -> AsyncIterator[Service]:
    upgrade(SERVICE_DIR, database_url)
    service = create_service(RulesSettings(database_url=database_url, environment="test"))
    yield service
    await service.engine.dispose()


def draft(**kw: object) -> rpc.RuleDraft:
    return rpc.RuleDraft(**{
        "scope": "project", "project_id": "pr1", "collector": {"kind": "captcha"},
        "conditions": [{"field": "fail_rate", "operator": ">=", "value": 100}],
        "action": {"type": "set_skill", "skill": "robot", "value": 1}, **kw})


async def test_rules_are_changed_by_one_statement_and_refused_once_deleted(
        svc: Service) -> None:
    ctx = svc.ctx
    rule = await rules_api.create_rule(rpc.CreateRule(actor=ADMIN, rule=draft()), ctx)
    got = await rules_api.get_rule(rpc.RuleRef(actor=MANAGER, rule_id=rule.rule_id), ctx)
    assert got.model_dump() == rule.model_dump()
    off = await rules_api.update_rule(rpc.UpdateRule(actor=ADMIN, rule_id=rule.rule_id,
                                                     enabled=False), ctx)
    assert off.enabled is False and off.updated_at >= rule.updated_at
    await rules_api.delete_rule(rpc.RuleRef(actor=ADMIN, rule_id=rule.rule_id), ctx)
    with pytest.raises(NotFound, match="was deleted"):
        await rules_api.update_rule(rpc.UpdateRule(actor=ADMIN, rule_id=rule.rule_id,
                                                   enabled=True), ctx)
    with pytest.raises(NotFound, match="no rule"):
        await rules_api.delete_rule(rpc.RuleRef(actor=ADMIN, rule_id=str(uuid.uuid4())), ctx)
    listed = await rules_api.list_rules(rpc.ListRules(actor=MANAGER, include_deleted=True), ctx)
    assert [(r.rule_id, r.deleted) for r in listed.items] == [(rule.rule_id, True)]


async def test_a_batch_keeps_its_state_in_one_row_per_worker_and_pool(svc: Service) -> None:
    ctx = svc.ctx
    assert isinstance(ctx, RulesContext)
    await rules_api.create_rule(rpc.CreateRule(actor=ADMIN, rule=draft()), ctx)
    now = datetime.now(UTC)

    def answer(worker: str, pool: str, correct: bool) -> CaptchaAnswered:
        return CaptchaAnswered(challenge_id=str(uuid.uuid4()), worker_id=worker, pool_id=pool,
                               project_id="pr1", correct=correct, answered_at=now)

    async def feed(*events: CaptchaAnswered) -> None:
        async with svc.db.consumer_unit() as uow:
            await facts.evaluate_events([(e, new_envelope(e, producer="t")) for e in events],
                                        uow, ctx)

    await feed(answer("w1", "p1", False), answer("w1", "p2", True), answer("w2", "p1", False))
    await feed(answer("w1", "p1", False))  # the state read back: no second crossing
    async with svc.engine.connect() as conn:
        rows = (await conn.execute(select(collector_state.c.worker_id,
                                          collector_state.c.pool_key)
                                   .order_by(collector_state.c.worker_id,
                                             collector_state.c.pool_key))).all()
        fired = (await conn.execute(select(firings.c.worker_id, firings.c.pool_id)
                                    .order_by(firings.c.worker_id))).all()
        recorded = (await conn.execute(select(func.count()).select_from(recorded_facts))
                    ).scalar_one()
    assert [tuple(r) for r in rows] == [("w1", "p1"), ("w1", "p2"), ("w2", "p1")]
    assert [tuple(r) for r in fired] == [("w1", "p1"), ("w2", "p1")]
    assert recorded == 4
    # a project rule's backtest replays the project's recorded facts
    result = await explain.backtest(rpc.Backtest(actor=MANAGER, rule=draft()), ctx)
    assert (result.events_scanned, result.workers) == (4, ["w1", "w2"])


async def lock_rows(uow: Any, task_ids: list[str], keys: list[tuple[str, str]],
                    now: datetime) -> tuple[list[Any], list[Any]]:
    """A batch's locks as the runner takes them: its vote rows, then its state rows."""
    votes = await uow.store.lock_votes(task_ids) if task_ids else []
    states = await uow.store.lock_states(keys, now) if keys else []
    return sorted(votes), sorted(states)


async def _lock_timeout(uow: object, ms: int) -> None:
    await uow.conn.execute(text(f"SET LOCAL lock_timeout = '{ms}ms'"))  # type: ignore[attr-defined]


async def test_a_batch_locks_its_vote_and_state_rows_whether_new_or_old(svc: Service) -> None:
    """The vote rows of a batch, the missing ones created by the locking statement, and
    its state rows are all locked until it commits; another batch on the same task or worker
    waits (here: gives up at its lock timeout)."""
    now = datetime.now(UTC)
    async with svc.db.consumer_unit() as uow:
        assert await lock_rows(uow, ["t1"], [("w1", "p1")], now) == (
            [(("t1",), {})], [(("w1", "p1"), {})])
        await uow.store.save([(("w1", "p1"), {"r1": '{"c":{"s":1}}'})],
                             [("t1", {"r1": {"a": {"w1": "x"}, "m": None}})], [], now)
    async with svc.db.consumer_unit() as first:
        # t1 and (w1, p1) stored, t2 and (w2, p1) new: one call locks them all
        votes, states = await lock_rows(first, ["t1", "t2"], [("w1", "p1"), ("w2", "p1")],
                                                    now)
        assert votes == [(("t1",), {"r1": {"a": {"w1": "x"}, "m": None}}), (("t2",), {})]
        assert sorted(states) == [(("w1", "p1"), {"r1": '{"c":{"s":1}}'}), (("w2", "p1"), {})]
        for task in ("t1", "t2"):
            with pytest.raises(DBAPIError) as waited:
                async with svc.db.consumer_unit() as second:
                    await _lock_timeout(second, 100)
                    await lock_rows(second, [task], [], now)
            assert "lock" in str(waited.value)
        for key in (("w1", "p1"), ("w2", "p1")):
            with pytest.raises(DBAPIError):
                async with svc.db.consumer_unit() as second:
                    await _lock_timeout(second, 100)
                    await lock_rows(second, [], [key], now)


async def test_a_vote_row_created_by_a_concurrent_batch_is_read_after_it_commits(
        svc: Service) -> None:
    """The batch that waited on another's new vote row gets that row as committed (the
    read after the lock, a new snapshot), not an empty one that would overwrite its votes."""
    now = datetime.now(UTC)
    started = asyncio.Event()

    async def second() -> list[Any]:
        async with svc.db.consumer_unit() as uow:
            started.set()
            return (await lock_rows(uow, ["t9", "t8"], [], now))[0]

    async with svc.db.consumer_unit() as first:
        assert await lock_rows(first, ["t9"], [], now) == ([(("t9",), {})], [])
        waiting = asyncio.create_task(second())
        await started.wait()
        await asyncio.sleep(0.3)
        assert not waiting.done()  # it waits on the uncommitted row
        await first.store.save([], [("t9", {"r1": {"a": {"w1": "y"}, "m": None}})], [], now)
    assert sorted(await waiting) == [(("t8",), {}),
                                     (("t9",), {"r1": {"a": {"w1": "y"}, "m": None}})]


async def test_batches_overlapping_on_tasks_and_workers_never_wait_crosswise(
        svc: Service) -> None:
    """A row another batch created after a batch's snapshot is locked in its place in the
    order, before any state row. Here batch A waits on t0 (held by D) while t1 is created
    (C) and locked by B; then A needs t1 and B needs A's state row: A must not hold that
    state row yet (a locking read taking t1 after it deadlocked so, two replicas hit it)."""
    now = datetime.now(UTC)
    key = ("w1", "p1")
    d_holds, d_done, b_holds, b_done = (asyncio.Event() for _ in range(4))

    async def d() -> None:
        async with svc.db.consumer_unit() as uow:
            await lock_rows(uow, ["t0"], [], now)
            d_holds.set()
            await d_done.wait()

    async def a() -> tuple[Any, Any]:
        async with svc.db.consumer_unit() as uow:
            return await lock_rows(uow, ["t0", "t1"], [key], now)

    async def b() -> tuple[Any, Any]:
        async with svc.db.consumer_unit() as uow:
            await lock_rows(uow, ["t1"], [], now)
            b_holds.set()
            await b_done.wait()
            return await lock_rows(uow, [], [key], now)

    async with svc.db.consumer_unit() as uow:  # the state row is there before
        await lock_rows(uow, [], [key], now)
    holder = asyncio.create_task(d())
    await d_holds.wait()
    first = asyncio.create_task(a())
    await asyncio.sleep(0.3)
    assert not first.done()  # A waits on t0
    async with svc.db.consumer_unit() as c:  # t1 comes to be after A's snapshot
        await lock_rows(c, ["t1"], [], now)
    second = asyncio.create_task(b())
    await b_holds.wait()
    d_done.set()
    await holder
    await asyncio.sleep(0.3)  # A goes on to t1, held by B
    b_done.set()
    got_b = await asyncio.wait_for(second, 10)
    got_a = await asyncio.wait_for(first, 10)  # after B commits
    assert got_b == ([], [(key, {})])
    assert got_a == ([(("t0",), {}), (("t1",), {})], [(key, {})])


async def test_new_submissions_and_reviewed_statuses_come_from_one_statement(
        svc: Service) -> None:
    """A reviewed submission's status comes back whether it was stored before or by the
    same statement; a submission stored twice keeps its first row; statuses change in
    one update."""
    now = datetime.now(UTC)

    def sub(aid: str, status: str = "submitted") -> dict[str, Any]:
        return {"assignment_id": aid, "task_id": "t1", "pool_id": "p1", "project_id": None,
                "worker_id": "w1", "status": status, "review_mode": "manual",
                "submitted_at": now}

    async with svc.db.consumer_unit() as uow:
        assert await uow.store.add_submissions([sub("a1")], []) == {}
    async with svc.db.consumer_unit() as uow:
        got = await uow.store.add_submissions([sub("a2"), sub("a1", "accepted")],
                                              ["a1", "a2", "a3"])
        assert got == {"a1": "submitted", "a2": "submitted"}  # a3: never submitted
        await uow.store.set_submission_statuses({"a2": "rejected", "a1": "accepted"})
    async with svc.db.consumer_unit() as uow:
        assert await uow.store.add_submissions([], ["a1", "a2"]) == {
            "a1": "accepted", "a2": "rejected"}


async def test_a_batch_writes_states_votes_and_firings_in_one_statement(svc: Service) -> None:
    now = datetime.now(UTC)
    firing = {"firing_id": str(uuid.uuid4()), "rule_id": "r1", "worker_id": "w1",
              "pool_id": "p1", "project_id": None, "fired_at": now,
              "action": {"type": "set_skill", "skill": "s", "value": 1}, "outcome": "rules.x",
              "facts": {"values": {"rate": 12.5}, "trigger_seq": 3}, "rule_version": 2}
    async with svc.db.consumer_unit() as uow:
        await uow.store.save([(("w1", "p1"), {"r1": "{}"})], [("t1", {"r1": {"m": "a"}})],
                             [firing, dict(firing)], now)  # the same firing twice: once
        await uow.store.save([], [], [dict(firing, outcome="again")], now)
    async with svc.engine.connect() as conn:
        rows = (await conn.execute(select(firings))).mappings().all()
        state = (await conn.execute(select(collector_state.c.data))).scalar_one()
        vote = (await conn.execute(select(task_votes.c.data))).scalar_one()
    assert [dict(r) for r in rows] == [firing]
    assert state == {"r1": "{}"} and vote == {"r1": {"m": "a"}}
