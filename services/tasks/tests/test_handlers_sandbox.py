"""Sandbox pools on the fake store: staff try them as workers (no limits, no captcha),
workers never see or take them, and every event of them says ``sandbox``."""

from __future__ import annotations

from contracts.rpc import tasks as rpc
from tasks_service import assignments, catalog


async def test_a_sandbox_projects_pools_are_sandbox_pools(call) -> None:
    pool, _ = await call.pool(n=2, sandbox=True)
    assert pool.sandbox and call.payloads("task.pool_opened")[0]["sandbox"] is True
    staff = await call(rpc.GET_POOL, catalog.get_pool,
                       rpc.PoolGet(actor=call.manager, pool_id=pool.pool_id))
    assert staff.sandbox
    project = await call(rpc.GET_PROJECT, catalog.get_project,
                         rpc.ProjectGet(actor=call.admin, project_id=pool.project_id))
    assert project.sandbox


async def test_workers_never_see_or_take_a_sandbox_pool(call) -> None:
    sandbox, _ = await call.pool(n=2, sandbox=True)
    real, real_tasks = await call.pool(n=1)
    listed = await call(rpc.AVAILABLE_POOLS, assignments.available_pools,
                        rpc.AvailablePools(actor=call.worker()))
    assert [p.pool_id for p in listed.items] == [real.pool_id]
    refused = await call.error(rpc.TAKE, assignments.take,
                               rpc.Take(actor=call.worker(), pool_id=sandbox.pool_id))
    assert (refused.status, refused.code) == (404, "pool_not_found")
    # a take from any pool never lands in the sandbox
    first = await call(rpc.TAKE, assignments.take, rpc.Take(actor=call.worker()))
    assert (first.task_id, first.sandbox) == (real_tasks[0], False)
    none = await call.error(rpc.TAKE, assignments.take, rpc.Take(actor=call.worker()))
    assert none.code == "no_tasks_available"


async def test_staff_try_a_sandbox_pool_without_limits_and_it_is_marked(call, store) -> None:
    pool, task_ids = await call.pool(n=3, sandbox=True, captcha_frequency="high",
                                     skill_filters=[rpc.SkillFilter(skill="en", value=90)])
    store.limits["new"] = rpc.TrustLevelLimits(level="new", max_active=1, min_pause_s=3600,
                                               assignment_timeout_s=None)
    takes = [await call(rpc.TAKE, assignments.take,
                        rpc.Take(actor=who, pool_id=pool.pool_id))
             for who in (call.admin, call.admin, call.manager)]  # past max_active and pause
    assert [a.task_id for a in takes] == task_ids  # overlap 1: one try per task
    assert all(a.sandbox for a in takes) and "captcha" not in " ".join(call.events)
    done = await call(rpc.SUBMIT, assignments.submit, rpc.Submit(
        actor=call.admin, assignment_id=takes[0].assignment_id, answers={"label": "cat"},
        comment="looks fine", proof_url="https://example.org/shot.png"))
    assert (done.status, done.sandbox) == ("SUBMITTED", True)
    [submitted] = call.payloads("task.submitted")
    assert submitted["sandbox"] is True and submitted["worker_id"] == call.admin.user_id
    assert all(p["sandbox"] for p in call.payloads("task.taken"))
    skipped = await call(rpc.SKIP, assignments.skip, rpc.AssignmentRef(
        actor=call.admin, assignment_id=takes[1].assignment_id))
    assert skipped.status == "SKIPPED" and call.payloads("task.skipped")[0]["sandbox"]
    mine = await call(rpc.MY_ASSIGNMENTS, assignments.my_assignments,
                      rpc.MyAssignments(actor=call.admin))
    assert mine.total == 2 and all(a.sandbox for a in mine.items)


async def test_staff_take_only_from_a_named_sandbox_pool(call) -> None:
    real, _ = await call.pool(n=1)
    not_sandbox = await call.error(rpc.TAKE, assignments.take,
                                   rpc.Take(actor=call.admin, pool_id=real.pool_id))
    assert (not_sandbox.status, not_sandbox.code) == (403, "not_sandbox")
    anywhere = await call.error(rpc.TAKE, assignments.take, rpc.Take(actor=call.manager))
    assert (anywhere.status, anywhere.code) == (403, "sandbox_only")
    unknown = await call.error(rpc.TAKE, assignments.take,
                               rpc.Take(actor=call.admin, pool_id="nope"))
    assert (unknown.status, unknown.code) == (404, "pool_not_found")
    draft, _ = await call.pool(n=1, sandbox=True, open_=False)
    closed = await call.error(rpc.TAKE, assignments.take,
                              rpc.Take(actor=call.admin, pool_id=draft.pool_id))
    assert (closed.status, closed.code) == (409, "pool_not_open")
