"""Dashboards: a manager's per-pool statistics and the owner's task flow and money."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from contracts.rpc import Actor, Page
from contracts.rpc import ledger as ledger_rpc
from contracts.rpc import review as review_rpc
from contracts.rpc import support as support_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.deps import AdminActor, Rpc, StaffActor
from servicekit.errors import RpcCallError
from servicekit.rpc import RpcClient

T = TypeVar("T")

router = APIRouter(tags=["dashboards"])

# The owner's task-flow view asks each pool for its counts; beyond this many live
# pools it shows the highest-priority ones and says so (``pools_truncated``).
MAX_POOLS_IN_FLOW = 100


class PoolDashboard(BaseModel):
    """One pool for a manager: task and assignment counts plus review figures (no price)."""

    pool_id: str
    status: tasks_rpc.PoolStatus
    tasks_total: int
    control_tasks: int
    tasks_open: int = Field(description="tasks with a free overlap slot")
    tasks_completed: int = Field(description="tasks with as many accepted answers as overlap")
    assignments_by_status: dict[str, int]
    pending_review: int
    accepted: int
    rejected: int
    acceptance_rate: float | None = Field(
        None, description="accepted / (accepted + rejected); null before any decision")
    throughput_per_hour: list[review_rpc.HourBucket] = Field(
        description="review decisions per hour over the last 24 h, oldest first")
    top_workers: list[review_rpc.WorkerCount]


@router.get("/pools/{pool_id}/stats", response_model=PoolDashboard,
            summary="A pool's counts by status, acceptance rate, hourly throughput, top workers")
async def pool_stats(actor: StaffActor, rpc: Rpc,
                     pool_id: Annotated[str, Path(min_length=1, max_length=64)],
                     top: Annotated[int, Query(ge=1, le=100)] = 10) -> PoolDashboard:
    t, r = await asyncio.gather(
        rpc.call(tasks_rpc.POOL_STATS, tasks_rpc.PoolStatsRequest(actor=actor, pool_id=pool_id)),
        rpc.call(review_rpc.STATS, review_rpc.StatsRequest(actor=actor, pool_id=pool_id,
                                                           top=top)))
    return PoolDashboard(
        pool_id=pool_id, status=t.status, tasks_total=t.tasks_total,
        control_tasks=t.control_tasks, tasks_open=t.tasks_open,
        tasks_completed=t.tasks_completed, assignments_by_status=t.assignments,
        pending_review=r.pending, accepted=r.accepted, rejected=r.rejected,
        acceptance_rate=r.acceptance_rate, throughput_per_hour=r.throughput_per_hour,
        top_workers=r.top_workers)


class PoolFlow(BaseModel):
    pool_id: str
    project_id: str
    name: str
    status: tasks_rpc.PoolStatus
    tasks_total: int
    tasks_open: int
    tasks_completed: int
    assignments_by_status: dict[str, int]


class TaskFlow(BaseModel):
    pools_by_status: dict[str, int]
    tasks_total: int
    tasks_open: int
    tasks_completed: int
    assignments_by_status: dict[str, int]
    pools: list[PoolFlow]
    pools_truncated: bool


class Money(BaseModel):
    totals: list[ledger_rpc.CurrencyTotals] = Field(
        description="per currency: charged, credited to workers, platform revenue, "
                    "available, on hold for payouts, paid")
    counts: ledger_rpc.DashboardCounts


class Unavailable(BaseModel):
    part: Literal["task_flow", "money", "support"]
    code: str = Field(description="the refusal of the service behind it, e.g. "
                                  "service_unavailable or service_timeout")
    message: str


class OwnerDashboard(BaseModel):
    generated_at: datetime
    task_flow: TaskFlow | None = Field(description="null when the tasks service did not answer")
    money: Money | None = Field(description="null when the ledger did not answer")
    support: support_rpc.SupportStats | None = Field(
        description="tickets open and answered (waiting on the user), closed, and the median "
                    "time from opening to the first staff answer; null when support did not "
                    "answer")
    unavailable: list[Unavailable] = Field(
        default_factory=list, description="the parts a service did not answer for: the "
                                          "others are shown all the same")


async def _task_flow(rpc: RpcClient, actor: Actor) -> TaskFlow:
    listed = await rpc.call(tasks_rpc.LIST_POOLS,
                            tasks_rpc.PoolList(actor=actor, page=Page(limit=500)))
    real = [p for p in listed.items if not p.sandbox]  # staff's tries are not the flow
    by_status = Counter(p.status for p in real)
    live = sorted((p for p in real if p.status != "archived"),
                  key=lambda p: (p.status != "open", -p.priority, p.created_at))
    shown = live[:MAX_POOLS_IN_FLOW]
    stats = await asyncio.gather(*(rpc.call(tasks_rpc.POOL_STATS, tasks_rpc.PoolStatsRequest(
        actor=actor, pool_id=p.pool_id)) for p in shown))
    flows: list[PoolFlow] = []
    totals: Counter[str] = Counter()
    for pool, s in zip(shown, stats, strict=True):
        totals.update(s.assignments)
        flows.append(PoolFlow(pool_id=pool.pool_id, project_id=pool.project_id, name=pool.name,
                              status=s.status, tasks_total=s.tasks_total,
                              tasks_open=s.tasks_open, tasks_completed=s.tasks_completed,
                              assignments_by_status=s.assignments))
    return TaskFlow(pools_by_status=dict(by_status),
                    tasks_total=sum(f.tasks_total for f in flows),
                    tasks_open=sum(f.tasks_open for f in flows),
                    tasks_completed=sum(f.tasks_completed for f in flows),
                    assignments_by_status=dict(totals), pools=flows,
                    pools_truncated=len(live) > len(shown) or listed.total > len(listed.items))


@router.get("/admin/dashboard", response_model=OwnerDashboard, tags=["admin: dashboards"],
            summary="Owner dashboard: task flow across pools, money (revenue, holds, paid) "
                    "and support (open, answered, median first answer)")
async def owner_dashboard(actor: AdminActor, rpc: Rpc) -> OwnerDashboard:
    missing: list[Unavailable] = []

    async def part(name: str, call: Awaitable[T]) -> T | None:
        """One part of the page; a service that is away leaves only its part empty."""
        try:
            return await call
        except RpcCallError as exc:
            if exc.error.status not in (503, 504):
                raise
            missing.append(Unavailable(part=name, code=exc.error.code,
                                       message=exc.error.message))
            return None

    flow, money, support = await asyncio.gather(
        part("task_flow", _task_flow(rpc, actor)),
        part("money", rpc.call(ledger_rpc.OWNER_DASHBOARD,
                               ledger_rpc.DashboardRequest(actor=actor))),
        part("support", rpc.call(support_rpc.SUPPORT_STATS,
                                 support_rpc.SupportStatsRequest(actor=actor))))
    return OwnerDashboard(
        generated_at=datetime.now(UTC), task_flow=flow,
        money=Money(totals=money.totals, counts=money.counts) if money is not None else None,
        support=support, unavailable=sorted(missing, key=lambda u: u.part))
