"""What the worker's screens need in one answer, composed from the services' RPCs.

No service alone knows what a worker earns per task (tasks owns the price, ledger the
share) or why a take would be refused right now (tasks owns the limits, which only an
admin may read). The gateway, the one place that may combine them, reads them as itself
(``GATEWAY_ACTOR``) and answers the worker with the result only: the credit per task,
never the price or the share; the limits that apply to the worker, never anyone else's.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from contracts.rpc import Actor, Page
from contracts.rpc import ledger as ledger_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.composed import GATEWAY_ACTOR, worker_credit
from gateway_service.deps import Rpc, WorkerActor
from gateway_service.routes import fair_pay
from servicekit.rpc import RpcClient

router = APIRouter(tags=["worker"])

class PoolOffer(BaseModel):
    """An open pool as its worker sees it: free tasks and what one accepted task earns."""

    pool_id: str
    project_id: str
    name: str
    instructions: str
    priority: int
    available_tasks: int
    credit_minor: int | None = Field(description="credited per accepted task (minor units)")
    currency: str | None
    hourly_minor: int | None = Field(
        None, description="my estimated earning per hour of work here, minor units "
                          "(null: not known yet)")
    hourly_source: Literal["measured", "declared"] | None = Field(
        None, description="measured: the median time of accepted work here; declared: the "
                          "requester's expected time per task")


class TakeState(BaseModel):
    """Whether a take would pass the trust level's limits now, and when it will."""

    can_take: bool
    blocked_by: Literal["max_active", "min_pause"] | None = None
    trust_level: tasks_rpc.TrustLevel
    active: int
    max_active: int
    min_pause_s: float
    pause_left_s: float = Field(0, description="seconds until the pause between takes ends")
    frees_at: datetime | None = None


class RestrictionView(BaseModel):
    """A restriction in force on the worker, named by where it applies."""

    scope: Literal["pool", "project", "all"]
    pool_id: str | None
    project_id: str | None
    name: str | None = Field(None, description="the pool's or project's name")
    until: datetime | None = Field(description="null: until lifted")


class WorkerOverview(BaseModel):
    pools: list[PoolOffer]
    take: TakeState
    restrictions: list[RestrictionView]


class ActiveAssignments(BaseModel):
    items: list[tasks_rpc.TakeResult]


async def _open_pool_prices(rpc: RpcClient) -> dict[str, tasks_rpc.AdminPool]:
    listed = await rpc.call(tasks_rpc.ADMIN_LIST_POOLS, tasks_rpc.PoolList(
        actor=GATEWAY_ACTOR, status="open", page=Page(limit=500)))
    return {p.pool_id: p for p in listed.items}


def take_state(profile: tasks_rpc.WorkerProfile, limits: tasks_rpc.TrustLimits,
               now: datetime) -> TakeState:
    """The same checks as the take (tasks' ``check_take_limits``), for display."""
    lim = next((x for x in limits.levels if x.level == profile.trust_level), None)
    max_active = lim.max_active if lim else 0
    min_pause = lim.min_pause_s if lim else 0.0
    state = TakeState(can_take=True, trust_level=profile.trust_level,
                      active=profile.active_assignments, max_active=max_active,
                      min_pause_s=min_pause)
    if profile.active_assignments >= max_active:
        state.can_take, state.blocked_by = False, "max_active"
    elif profile.last_take_at is not None and min_pause > 0:
        since = (now - profile.last_take_at).total_seconds()
        if since < min_pause:
            state.can_take, state.blocked_by = False, "min_pause"
            state.pause_left_s = round(min_pause - since, 3)
    return state


async def _named_restrictions(rpc: RpcClient, found: list[tasks_rpc.Restriction],
                              pools: dict[str, tasks_rpc.AdminPool]) -> list[RestrictionView]:
    names = {p.pool_id: p.name for p in pools.values()}
    if any(r.scope == "project" for r in found):
        projects = await rpc.call(tasks_rpc.LIST_PROJECTS, tasks_rpc.ProjectList(
            actor=GATEWAY_ACTOR, page=Page(limit=500)))
        names.update({p.project_id: p.name for p in projects.items})
    return [RestrictionView(scope=r.scope, pool_id=r.pool_id, project_id=r.project_id,
                            name=names.get((r.pool_id if r.scope == "pool" else
                                            r.project_id) or ""), until=r.until)
            for r in found]


@router.get("/worker/overview", response_model=WorkerOverview,
            summary="Open pools with my credit per task, whether I may take now, my restrictions")
async def overview(actor: WorkerActor, rpc: Rpc) -> WorkerOverview:
    available, prices, shares, profile, limits = await asyncio.gather(
        rpc.call(tasks_rpc.AVAILABLE_POOLS, tasks_rpc.AvailablePools(
            actor=actor, page=Page(limit=500))),
        _open_pool_prices(rpc),
        rpc.call(ledger_rpc.LIST_SHARES, ledger_rpc.ListShares(actor=GATEWAY_ACTOR)),
        rpc.call(tasks_rpc.GET_WORKER_PROFILE, tasks_rpc.WorkerProfileGet(
            actor=actor, worker_id=actor.user_id)),
        rpc.call(tasks_rpc.GET_TRUST_LIMITS, tasks_rpc.TrustLimitsGet(actor=GATEWAY_ACTOR)))
    pools = available.items
    priced_offers = [prices[p.pool_id] for p in pools if p.pool_id in prices]
    estimated = await fair_pay.estimates(rpc, priced_offers, shares)
    offers: list[PoolOffer] = []
    for p in pools:
        priced = prices.get(p.pool_id)
        credit = est = None
        if priced is not None:
            credit = worker_credit(priced.price_minor, fair_pay.share_of(shares, p.pool_id))
            est = estimated.get(p.pool_id)
        shown = est is not None and est.source in ("measured", "declared")
        offers.append(PoolOffer(**p.model_dump(), credit_minor=credit,
                                currency=priced.currency if priced else None,
                                hourly_minor=est.hourly_minor if est and shown else None,
                                hourly_source=est.source if est and shown else None))
    restrictions = await _named_restrictions(rpc, profile.restrictions, prices)
    return WorkerOverview(pools=offers, take=take_state(profile, limits, datetime.now(UTC)),
                          restrictions=restrictions)


@router.get("/worker/active", response_model=ActiveAssignments,
            summary="My active assignments with their instructions and answer form "
                    "(to carry on after a reload or a new login)")
async def active(actor: WorkerActor, rpc: Rpc) -> ActiveAssignments:
    return await active_of(actor, rpc)


async def active_of(actor: Actor, rpc: RpcClient) -> ActiveAssignments:
    """The caller's active assignments with their pools' names and projects' texts (a
    worker's, or staff's in sandbox pools)."""
    mine = await rpc.call(tasks_rpc.MY_ASSIGNMENTS, tasks_rpc.MyAssignments(
        actor=actor, status="ACTIVE", page=Page(limit=500)))
    project_ids = sorted({a.project_id for a in mine.items})
    pool_ids = sorted({a.pool_id for a in mine.items})
    projects = await asyncio.gather(*(rpc.call(tasks_rpc.GET_PROJECT, tasks_rpc.ProjectGet(
        actor=GATEWAY_ACTOR, project_id=pid)) for pid in project_ids))
    pools = await asyncio.gather(*(rpc.call(tasks_rpc.GET_POOL, tasks_rpc.PoolGet(
        actor=GATEWAY_ACTOR, pool_id=pid)) for pid in pool_ids))
    project_of = {p.project_id: p for p in projects}
    pool_name = {p.pool_id: p.name for p in pools}
    items = [tasks_rpc.TakeResult(**a.model_dump(), pool_name=pool_name.get(a.pool_id, ""),
                                  instructions=project_of[a.project_id].instructions,
                                  output_spec=project_of[a.project_id].output_spec)
             for a in sorted(mine.items, key=lambda a: a.deadline_at)]
    return ActiveAssignments(items=items)
