"""Worker handlers and event consumers on the fake store: trust limits, profiles, what the
rules service applies (restrictions, skills, overlap) and review outcomes."""

from __future__ import annotations

from datetime import timedelta

from contracts.envelope import new_envelope
from contracts.events import (
    OverlapChanged,
    RestrictionApplied,
    RestrictionLifted,
    ReviewAccepted,
    ReviewRejected,
    SkillSet,
)
from contracts.rpc import tasks as rpc
from tasks_service import assignments, catalog, consumers, domain, workers


async def consume(call, handler, event) -> str:
    """Run a consumer the way the kit does (one unit of work); the envelope's id."""
    env = new_envelope(event, producer="test")
    async with call.ctx.db.consumer_unit() as uow:
        await handler(event, env, uow, call.ctx)
    return env.event_id


async def test_trust_limits_are_seeded_read_and_set(call, store) -> None:
    store.limits.clear()
    await workers.seed_trust_limits(call.ctx)
    await workers.seed_trust_limits(call.ctx)  # a restart keeps what is there
    got = await call(rpc.GET_TRUST_LIMITS, workers.get_trust_limits,
                     rpc.TrustLimitsGet(actor=call.admin))
    assert got.levels == list(domain.DEFAULT_TRUST_LIMITS)
    strict = rpc.TrustLevelLimits(level="verified", max_active=2, min_pause_s=5,
                                  assignment_timeout_s=120)
    after = await call(rpc.SET_TRUST_LIMITS, workers.set_trust_limits,
                       rpc.TrustLimitsSet(actor=call.admin, limits=strict))
    assert [lv.level for lv in after.levels] == ["new", "verified", "trusted"]
    assert after.levels[1] == strict
    denied = await call.error(rpc.SET_TRUST_LIMITS, workers.set_trust_limits,
                              rpc.TrustLimitsSet(actor=call.manager, limits=strict))
    assert denied.status == 403
    assert call.events == []


async def test_profiles_are_made_lazily_and_read_by_admins_or_their_worker(call, clock) -> None:
    own = await call(rpc.GET_WORKER_PROFILE, workers.get_worker_profile,
                     rpc.WorkerProfileGet(actor=call.worker("w1"), worker_id="w1"))
    assert (own.trust_level, own.skills, own.active_assignments, own.created_at) == (
        "new", {}, 0, clock.now)
    other = await call.error(rpc.GET_WORKER_PROFILE, workers.get_worker_profile,
                             rpc.WorkerProfileGet(actor=call.worker("w2"), worker_id="w1"))
    assert (other.status, other.code) == (403, "forbidden")
    manager = await call.error(rpc.GET_WORKER_PROFILE, workers.get_worker_profile,
                               rpc.WorkerProfileGet(actor=call.manager, worker_id="w1"))
    assert manager.status == 403
    trusted = await call(rpc.SET_TRUST_LEVEL, workers.set_trust_level, rpc.SetTrustLevel(
        actor=call.admin, worker_id="w9", trust_level="trusted"))
    assert (trusted.worker_id, trusted.trust_level) == ("w9", "trusted")
    assert (await call.error(rpc.SET_TRUST_LEVEL, workers.set_trust_level, rpc.SetTrustLevel(
        actor=call.manager, worker_id="w9", trust_level="new"))).status == 403


async def test_restrictions_from_rules_are_kept_and_lifted(call, clock) -> None:
    until = clock.now + timedelta(hours=1)
    applied = RestrictionApplied(rule_id="r", firing_id="f", worker_id="w1",
                                 restriction_id="res-1", scope="pool", pool_id="p1",
                                 until=until, private_comment="too fast")
    await consume(call, workers.on_restriction_applied, applied)
    await consume(call, workers.on_restriction_applied, applied.model_copy(
        update={"until": None}))  # the same restriction again: the first copy stays
    await consume(call, workers.on_restriction_applied, applied.model_copy(update={
        "restriction_id": "res-old", "until": clock.now - timedelta(minutes=1)}))
    profile = await call(rpc.GET_WORKER_PROFILE, workers.get_worker_profile,
                         rpc.WorkerProfileGet(actor=call.admin, worker_id="w1"))
    assert [(r.restriction_id, r.until) for r in profile.restrictions] == [("res-1", until)]
    await consume(call, workers.on_restriction_lifted, RestrictionLifted(
        restriction_id="res-1", worker_id="w1", lifted_at=clock.now))
    profile = await call(rpc.GET_WORKER_PROFILE, workers.get_worker_profile,
                         rpc.WorkerProfileGet(actor=call.admin, worker_id="w1"))
    assert profile.restrictions == []
    assert call.events == []


async def test_a_skill_change_that_shuts_a_worker_out_revokes_access(call, store) -> None:
    gated, _ = await call.pool(n=2, skill_filters=[rpc.SkillFilter(skill="en", value=50)])
    other, _ = await call.pool(n=1, skill_filters=[rpc.SkillFilter(skill="math", value=1)])
    store.workers["w1"] = {"trust_level": "new", "skills": {"math": 5}, "last_take_at": None,
                           "created_at": None}

    def skill(value: int, name: str = "en") -> SkillSet:
        return SkillSet(rule_id="r", firing_id="f", worker_id="w1", skill=name, value=value)

    await consume(call, workers.on_skill_set, skill(80))
    await call(rpc.TAKE, assignments.take, rpc.Take(actor=call.worker(), pool_id=gated.pool_id))
    await call(rpc.TAKE, assignments.take, rpc.Take(actor=call.worker(), pool_id=other.pool_id))
    before = len(call.events)
    await consume(call, workers.on_skill_set, skill(70))  # still passes
    await consume(call, workers.on_skill_set, skill(70))  # unchanged
    await consume(call, workers.on_skill_set, skill(9, "other"))  # no pool filters on it
    assert len(call.events) == before
    cause = await consume(call, workers.on_skill_set, skill(10))
    assert store.workers["w1"]["skills"] == {"math": 5, "en": 10, "other": 9}
    assert call.events[before:] == ["task.access_revoked"]
    revoked = call.ctx.db.events[-1]
    assert (revoked.data["pool_id"], revoked.data["skill"], revoked.causation_id) == (
        gated.pool_id, "en", cause)


async def test_review_outcomes_move_submitted_assignments_only(call, store, clock) -> None:
    pool, task_ids = await call.pool(n=2)
    made = []
    for tid in task_ids:
        a = await call(rpc.TAKE, assignments.take,
                       rpc.Take(actor=call.worker(), pool_id=pool.pool_id))
        assert a.task_id == tid
        made.append(a)
    await call(rpc.SUBMIT, assignments.submit, rpc.Submit(
        actor=call.worker(), assignment_id=made[0].assignment_id, answers={"label": "cat"}))
    await call(rpc.SUBMIT, assignments.submit, rpc.Submit(
        actor=call.worker(), assignment_id=made[1].assignment_id, answers={"label": "dog"}))
    before = len(call.events)

    def decided(cls, a, comment=None):
        return cls(assignment_id=a.assignment_id, task_id=a.task_id, pool_id=a.pool_id,
                   project_id=a.project_id, worker_id=a.worker_id, decided_by="m1",
                   decided_at=clock.now, comment=comment)

    await consume(call, consumers.on_review_accepted, decided(ReviewAccepted, made[0]))
    await consume(call, consumers.on_review_accepted, decided(ReviewAccepted, made[0]))
    await consume(call, consumers.on_review_rejected, decided(ReviewRejected, made[1], "no"))
    await consume(call, consumers.on_review_rejected, decided(ReviewRejected, made[0]))
    first, second = (store.assignments[a.assignment_id] for a in made)
    assert (first["status"], first["finished_at"]) == ("ACCEPTED", clock.now)
    assert (second["status"], second["review_comment"]) == ("REJECTED", "no")
    # counted once each: one accepted answer, and the rejected task's slot is free again
    assert store.tasks[task_ids[0]]["accepted_count"] == 1
    assert store.tasks[task_ids[0]]["live_count"] == 1
    assert store.tasks[task_ids[1]]["live_count"] == 0
    assert len(call.events) == before


async def test_an_overlap_change_reopens_a_closed_pool_with_its_price(call, store) -> None:
    pool, task_ids = await call.pool(n=2)
    change = OverlapChanged(rule_id="r", firing_id="f", worker_id="w1", pool_id=pool.pool_id,
                            task_ids=[task_ids[0], "elsewhere"], add=2)
    await consume(call, consumers.on_overlap_changed, change)  # open: nothing to reopen
    assert [store.tasks[t]["overlap"] for t in task_ids] == [3, 1]
    assert call.events == ["task.pool_opened"]  # the admin's opening only
    await call(rpc.CLOSE_POOL, catalog.close_pool,
               rpc.PoolTransition(actor=call.admin, pool_id=pool.pool_id))
    cause = await consume(call, consumers.on_overlap_changed,
                          change.model_copy(update={"task_ids": []}))
    assert store.pools[pool.pool_id].status == "open"
    assert call.events == ["task.pool_opened", "task.pool_closed", "task.pool_opened"]
    reopened = call.ctx.db.events[-1]
    assert (reopened.data["price_minor"], reopened.data["currency"], reopened.causation_id) == (
        call.price, "RUB", cause)
