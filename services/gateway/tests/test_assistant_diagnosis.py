"""The take diagnosis as a pure function: the first blocker in the take's order, for one
pool or for every open pool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.rpc import tasks as tasks_rpc
from gateway_service.routes.assistant import diagnose

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LIMITS = tasks_rpc.TrustLimits(levels=[
    tasks_rpc.TrustLevelLimits(level="new", max_active=3, min_pause_s=1.0)])


def profile(**kw) -> tasks_rpc.WorkerProfile:
    base = {"worker_id": "w", "trust_level": "new", "skills": {}, "restrictions": [],
            "active_assignments": 0, "last_take_at": None, "created_at": NOW}
    return tasks_rpc.WorkerProfile(**(base | kw))


def pool(pool_id: str, status: str = "open", **kw) -> tasks_rpc.Pool:
    base = {"pool_id": pool_id, "project_id": f"prj-{pool_id}", "name": pool_id, "overlap": 1,
            "assignment_timeout_s": 600, "auto_accept_after_s": None, "review_mode": "manual",
            "captcha_frequency": "none", "skill_filters": [], "priority": 0, "status": status,
            "created_at": NOW, "updated_at": NOW}
    return tasks_rpc.Pool(**(base | kw))


def restriction(scope: str, pool_id: str | None = None, until=None) -> tasks_rpc.Restriction:
    return tasks_rpc.Restriction(restriction_id="r", scope=scope, pool_id=pool_id,
                                 project_id=None, until=until)


def test_limits_come_before_the_pool() -> None:
    d = diagnose(profile(active_assignments=3), LIMITS, [pool("a", "closed")], {}, NOW, "en",
                 pool_id="a")
    assert d.blocker.kind == "active_limit" and "3" in d.blocker.message
    d = diagnose(profile(last_take_at=NOW - timedelta(seconds=0.4)), LIMITS, [pool("a")],
                 {"a": 5}, NOW, "ru", pool_id="a")
    assert d.blocker.kind == "pause" and d.blocker.pause_left_s == 0.6


def test_a_pool_is_closed_restricted_or_needs_a_skill_in_that_order() -> None:
    skilled = [tasks_rpc.SkillFilter(skill="english", op="gte", value=50)]
    later = NOW + timedelta(days=1)
    d = diagnose(profile(restrictions=[restriction("pool", "a")]), LIMITS,
                 [pool("a", "draft", skill_filters=skilled)], {}, NOW, "en", pool_id="a")
    assert d.blocker.kind == "closed_pool"
    d = diagnose(profile(restrictions=[restriction("pool", "a", later)]), LIMITS,
                 [pool("a", skill_filters=skilled)], {"a": 1}, NOW, "en", pool_id="a")
    assert d.blocker.kind == "restriction" and d.blocker.until == later
    d = diagnose(profile(skills={"english": 40}), LIMITS, [pool("a", skill_filters=skilled)],
                 {"a": 1}, NOW, "en", pool_id="a")
    assert d.blocker.kind == "missing_skill" and d.blocker.skill == "english"
    d = diagnose(profile(skills={"english": 60}), LIMITS, [pool("a", skill_filters=skilled)],
                 {"a": 1}, NOW, "en", pool_id="a")
    assert d.can_take and d.blocker is None
    # an expired restriction no longer counts
    d = diagnose(profile(restrictions=[restriction("all", until=NOW)]), LIMITS, [pool("a")],
                 {"a": 1}, NOW, "en", pool_id="a")
    assert d.can_take


def test_without_a_pool_every_open_pool_is_checked() -> None:
    d = diagnose(profile(), LIMITS, [], {}, NOW, "en", pool_id=None)
    assert not d.can_take and d.blocker.kind == "closed_pool" and d.blocker.pool_id is None
    pools = [pool("a"), pool("b", skill_filters=[
        tasks_rpc.SkillFilter(skill="x", op="gte", value=1)])]
    d = diagnose(profile(), LIMITS, pools, {"a": 0, "b": 3}, NOW, "en", pool_id=None)
    assert [b.kind for b in d.per_pool] == ["no_free_tasks", "missing_skill"]
    assert d.blocker == d.per_pool[0]
    d = diagnose(profile(), LIMITS, pools, {"a": 2}, NOW, "en", pool_id=None)
    assert d.can_take and d.per_pool == []
    d = diagnose(profile(restrictions=[restriction("all")]), LIMITS, pools, {"a": 2}, NOW,
                 "ru", pool_id=None)
    assert d.blocker.kind == "restriction" and d.blocker.pool_id is None
    assert "снятия" in d.blocker.message
