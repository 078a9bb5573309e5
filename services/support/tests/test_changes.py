"""Configuration changes on a real PostgreSQL: who may propose what, a change decided only
once, a rejection needs a reason, reverts (one open at a time, marking what they undid),
and managers never see a money setting."""

from __future__ import annotations

import pytest

from contracts.rpc import Actor
from contracts.rpc import support as rpc
from servicekit.errors import ServiceError
from support_service import changes

ADMIN = Actor(user_id="admin-1", role="admin")
MANAGER = Actor(user_id="manager-1", role="manager")


def overlap(value: int, pool_id: str = "p1") -> rpc.PoolOverlapSetting:
    return rpc.PoolOverlapSetting(kind="pool.overlap", pool_id=pool_id, value=value)


async def propose(ctx, setting, before, actor: Actor = ADMIN, **kw) -> rpc.Change:
    return await changes.propose_change(rpc.ProposeChange(
        actor=actor, setting=setting, before=before, **kw), ctx)


async def decide(ctx, change_id: str, outcome: str, **kw) -> rpc.Change:
    return await changes.decide_change(rpc.DecideChange(
        actor=ADMIN, change_id=change_id, outcome=outcome, **kw), ctx)


async def refused(coro) -> ServiceError:
    with pytest.raises(ServiceError) as exc:
        await coro
    return exc.value


async def test_who_may_propose_and_what_is_refused(pg_ctx) -> None:
    c = await propose(pg_ctx, overlap(3), 1, MANAGER, reason="  more answers  ")
    assert (c.state, c.before, c.after, c.target, c.money, c.reason) == (
        "proposed", 1, 3, "p1", False, "more answers")
    e = await refused(propose(pg_ctx, overlap(3), 1, MANAGER, patch=True))
    assert (e.status, e.code) == (403, "forbidden")
    share = rpc.WorkerShareSetting(kind="worker_share", pool_id=None, value=6000)
    e = await refused(propose(pg_ctx, share, 7000, MANAGER))
    assert (e.status, e.code) == (403, "forbidden")
    e = await refused(propose(pg_ctx, overlap(1), 1))
    assert (e.status, e.code) == (422, "change_no_op")
    money = await propose(pg_ctx, share, 7000)
    assert money.money is True and money.target is None

    # a manager's list and look-up leave the money setting out
    seen = await changes.list_changes(rpc.ChangeList(actor=MANAGER), pg_ctx)
    assert c.change_id in {x.change_id for x in seen.items}
    assert money.change_id not in {x.change_id for x in seen.items}
    e = await refused(changes.get_change(rpc.ChangeRef(actor=MANAGER,
                                                       change_id=money.change_id), pg_ctx))
    assert e.code == "change_not_found"
    mine = await changes.list_changes(rpc.ChangeList(actor=ADMIN, kind="worker_share"), pg_ctx)
    assert money.change_id in {x.change_id for x in mine.items}


async def test_a_change_is_decided_once_and_a_rejection_says_why(pg_ctx) -> None:
    c = await propose(pg_ctx, overlap(4, "p2"), 2)
    e = await refused(decide(pg_ctx, c.change_id, "rejected", reason="  "))
    assert (e.status, e.code) == (422, "reason_required")
    done = await decide(pg_ctx, c.change_id, "rejected", reason="not now")
    assert (done.state, done.decided_by, done.decision_reason) == ("rejected", "admin-1",
                                                                   "not now")
    e = await refused(decide(pg_ctx, c.change_id, "applied"))
    assert (e.status, e.code, e.details) == (409, "change_not_proposed", {"state": "rejected"})
    e = await refused(decide(pg_ctx, "missing", "applied"))
    assert e.code == "change_not_found"

    stale = await propose(pg_ctx, overlap(5, "p2"), 2)
    stale = await decide(pg_ctx, stale.change_id, "stale", current=3)
    assert (stale.state, stale.current, stale.error) == ("stale", 3, None)
    failed = await propose(pg_ctx, overlap(6, "p2"), 2)
    failed = await decide(pg_ctx, failed.change_id, "failed",
                          error={"code": "pool_not_found", "message": "no such pool"})
    assert failed.state == "failed" and failed.error["code"] == "pool_not_found"


async def test_reverts_one_at_a_time_and_marking_what_they_undid(pg_ctx) -> None:
    c = await propose(pg_ctx, overlap(3, "p3"), 1)
    e = await refused(propose(pg_ctx, overlap(1, "p3"), 3, reverts=c.change_id))
    assert (e.status, e.code) == (409, "change_not_revertible")   # not applied yet
    await decide(pg_ctx, c.change_id, "applied")
    revert = await propose(pg_ctx, overlap(1, "p3"), 3, MANAGER, reverts=c.change_id)
    e = await refused(propose(pg_ctx, overlap(1, "p3"), 3, reverts=c.change_id))
    assert (e.code, e.details) == ("revert_pending", {"change_id": revert.change_id})
    await decide(pg_ctx, revert.change_id, "applied")
    undone = await changes.get_change(rpc.ChangeRef(actor=ADMIN, change_id=c.change_id),
                                      pg_ctx)
    assert undone.reverted_by == revert.change_id
    e = await refused(propose(pg_ctx, overlap(1, "p3"), 3, reverts=c.change_id))
    assert e.code == "change_not_revertible"
