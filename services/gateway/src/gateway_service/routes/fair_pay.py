# mypy: disable-error-code="valid-type"
"""Fair pay: a pool's estimated effective hourly earning, the owner's floor per currency,
and the refusal to open a pool below it.

The estimate needs three owners' facts: how long accepted work took (tasks: the median of
take -> submit, no money), the price (tasks, admins only) and the worker share (ledger,
admins only). Only the gateway may combine them (record 23): it reads them as itself and
answers an admin with the whole picture, a worker with their own hourly earning only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from contracts import money
from contracts.rpc import Page
from contracts.rpc import ledger as ledger_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.composed import GATEWAY_ACTOR, worker_credit
from gateway_service.deps import Address, AdminActor, Rpc, Security
from gateway_service.errors import ApiError
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.common import QueryId, page
from servicekit.rpc import RpcClient

router = APIRouter(tags=["admin: money"])

# accepted assignments with a submit time before the measured median replaces the
# requester's declared figure: fewer say more about who took the pool first than about it
MIN_MEASURED = 10
SECONDS_PER_HOUR = 3600

Source = Literal["measured", "declared", "unknown", "unpaid"]
Warning_ = Literal["below_fair_pay_floor", "fair_pay_unknown"]

Id = Annotated[str, Path(min_length=1, max_length=64)]
PageQ = Annotated[Page, Depends(page)]


@dataclass(frozen=True)
class Estimate:
    """A pool's effective hourly earning for its worker, and what it rests on."""

    source: Source
    seconds_per_task: float | None
    hourly_minor: int | None


def hourly_minor(credit_minor: int, seconds_per_task: float) -> int:
    """Credit per task x tasks per hour, rounded down to a whole minor unit (never promise
    a worker more than the figures give). ``seconds_per_task`` is whole or a half (a
    median of whole seconds), so doubling it is exact integer arithmetic."""
    twice = round(seconds_per_task * 2)
    if twice <= 0:
        raise ValueError("seconds per task must be positive")
    return credit_minor * SECONDS_PER_HOUR * 2 // twice


def estimate(*, price_minor: int, credit_minor: int, accepted_timed: int,
             median_seconds: float | None, expected_seconds: int | None,
             min_measured: int = MIN_MEASURED) -> Estimate:
    """The measured median once ``min_measured`` accepted assignments have a submit time,
    else the requester's declared seconds per task, else unknown. A pool that pays nothing
    (training: its price must be 0) has no hourly earning to estimate: ``unpaid``."""
    if price_minor == 0:
        return Estimate("unpaid", None, None)
    if accepted_timed >= min_measured and median_seconds is not None:
        return Estimate("measured", median_seconds, hourly_minor(credit_minor, median_seconds))
    if expected_seconds is not None:
        return Estimate("declared", float(expected_seconds),
                        hourly_minor(credit_minor, expected_seconds))
    return Estimate("unknown", None, None)


def warning_of(est: Estimate, floor_minor: int | None) -> Warning_ | None:
    """Why the pool may not open under the floor (None: it may, or there is no floor)."""
    if floor_minor is None or est.source == "unpaid":
        return None
    if est.hourly_minor is None:
        return "fair_pay_unknown"
    return "below_fair_pay_floor" if est.hourly_minor < floor_minor else None


class PoolFairPay(BaseModel):
    """A pool's fair-pay picture, for admins (it names the worker's credit per task)."""

    pool_id: str
    status: tasks_rpc.PoolStatus
    currency: str
    credit_minor: int = Field(description="what the worker is credited per accepted task")
    accepted_timed: int = Field(description="accepted assignments with a submit time")
    min_measured: int = Field(description="accepted assignments before the median counts")
    measured_seconds: float | None = Field(description="median take -> submit, seconds")
    expected_seconds_per_task: int | None
    source: Source
    seconds_per_task: float | None = Field(description="the figure the estimate uses")
    estimate_minor_per_hour: int | None
    floor_minor_per_hour: int | None = Field(description="the currency's floor; null = off")
    warning: Warning_ | None = Field(
        description="below_fair_pay_floor / fair_pay_unknown: this pool would not open "
                    "now (an open pool stays open: the warning is for the requester)")


class FairPayPools(BaseModel):
    items: list[PoolFairPay]
    total: int


@dataclass(frozen=True)
class _Facts:
    paces: dict[str, tasks_rpc.PoolPace]
    shares: ledger_rpc.Shares


async def _facts(rpc: RpcClient, pool_ids: list[str]) -> _Facts:
    paces, shares = await asyncio.gather(
        _paces(rpc, pool_ids),
        rpc.call(ledger_rpc.LIST_SHARES, ledger_rpc.ListShares(actor=GATEWAY_ACTOR)))
    return _Facts(paces, shares)


def share_of(shares: ledger_rpc.Shares, pool_id: str) -> int:
    """The pool's effective share: its own, or the default (the ledger's fallback)."""
    own = {s.pool_id: s.share_bps for s in shares.pools}
    return own.get(pool_id, shares.default.share_bps)


def pool_estimate(pool: tasks_rpc.AdminPool, pace: tasks_rpc.PoolPace | None,
                  shares: ledger_rpc.Shares) -> tuple[int, Estimate]:
    """(credit per task, estimate) of one pool; no pace = nothing accepted yet. A sandbox
    pool pays nothing whatever its price (its tries move no money): ``unpaid``, as a
    training pool, so it has no estimate and no floor warning."""
    credit = worker_credit(pool.price_minor, share_of(shares, pool.pool_id))
    return credit, estimate(
        price_minor=0 if pool.sandbox else pool.price_minor, credit_minor=credit,
        accepted_timed=pace.accepted_timed if pace else 0,
        median_seconds=pace.median_seconds if pace else None,
        expected_seconds=pool.expected_seconds_per_task)


async def _paces(rpc: RpcClient, pool_ids: list[str]) -> dict[str, tasks_rpc.PoolPace]:
    paces = await rpc.call(tasks_rpc.POOL_PACE, tasks_rpc.PoolPaceRequest(
        actor=GATEWAY_ACTOR, pool_ids=pool_ids[:500]))
    return {p.pool_id: p for p in paces.items}


async def estimates(rpc: RpcClient, pools: list[tasks_rpc.AdminPool],
                    shares: ledger_rpc.Shares) -> dict[str, Estimate]:
    """Every listed pool's estimate, with the shares the caller read already (the
    worker's overview: one more request, for the paces)."""
    if not pools:
        return {}
    paces = await _paces(rpc, [p.pool_id for p in pools])
    return {p.pool_id: pool_estimate(p, paces.get(p.pool_id), shares)[1] for p in pools}


async def _floors(rpc: RpcClient) -> dict[str, int]:
    found = await rpc.call(ledger_rpc.LIST_FAIR_PAY_FLOORS,
                           ledger_rpc.ListFairPayFloors(actor=GATEWAY_ACTOR))
    return {f.currency: f.floor_minor_per_hour for f in found.items}


def _view(pool: tasks_rpc.AdminPool, facts: _Facts, floors: dict[str, int]) -> PoolFairPay:
    pace = facts.paces.get(pool.pool_id)
    credit, est = pool_estimate(pool, pace, facts.shares)
    floor = floors.get(pool.currency)
    return PoolFairPay(
        pool_id=pool.pool_id, status=pool.status, currency=pool.currency, credit_minor=credit,
        accepted_timed=pace.accepted_timed if pace else 0, min_measured=MIN_MEASURED,
        measured_seconds=pace.median_seconds if pace else None,
        expected_seconds_per_task=pool.expected_seconds_per_task, source=est.source,
        seconds_per_task=est.seconds_per_task, estimate_minor_per_hour=est.hourly_minor,
        floor_minor_per_hour=floor, warning=warning_of(est, floor))


async def fair_pay_of(rpc: RpcClient, pools: list[tasks_rpc.AdminPool]) -> list[PoolFairPay]:
    if not pools:
        return []
    facts, floors = await asyncio.gather(_facts(rpc, [p.pool_id for p in pools]), _floors(rpc))
    return [_view(p, facts, floors) for p in pools]


async def check_floor(rpc: RpcClient, pool: tasks_rpc.AdminPool) -> None:
    """Refuse to open (or re-open) a pool estimated below its currency's floor (409
    ``below_fair_pay_floor``), or one with no estimate at all while a floor is set (409
    ``fair_pay_unknown``: declare the expected seconds per task). An open pool is left
    alone: opening it again changes nothing, and its warning says what it earns."""
    if pool.status == "open":
        return
    floors = await _floors(rpc)
    if pool.currency not in floors:
        return
    view = _view(pool, await _facts(rpc, [pool.pool_id]), floors)
    details = {"pool_id": pool.pool_id, "currency": pool.currency,
               "estimate_minor_per_hour": view.estimate_minor_per_hour,
               "floor_minor_per_hour": view.floor_minor_per_hour, "source": view.source,
               "seconds_per_task": view.seconds_per_task,
               "accepted_timed": view.accepted_timed, "min_measured": MIN_MEASURED}
    if view.warning == "fair_pay_unknown":
        raise ApiError(409, "fair_pay_unknown",
                       "a fair-pay floor is set for this currency and the pool's hourly "
                       "earning cannot be estimated yet: set its expected seconds per task",
                       details=details)
    if view.warning == "below_fair_pay_floor":
        raise ApiError(409, "below_fair_pay_floor",
                       f"the pool's estimated earning, {view.estimate_minor_per_hour} minor "
                       f"units per hour, is below the fair-pay floor of "
                       f"{view.floor_minor_per_hour}: raise the price or the share, or "
                       f"correct the expected seconds per task", details=details)


# ------------------------------------------------------------------ routes

FloorBody = body_of(ledger_rpc.SetFairPayFloor, "FairPayFloorBody", without={"currency"}, doc={
    "floor_minor_per_hour": "the least a worker should earn per hour, minor units; "
                            "null turns the floor off"})
CurrencyP = Annotated[money.Currency, Path(description="an ISO 4217 code the ledger books")]


@router.get("/admin/fair-pay/floors", response_model=ledger_rpc.FairPayFloors,
            summary="The fair-pay floor of every currency that has one (none: off)")
async def list_floors(actor: AdminActor, rpc: Rpc) -> ledger_rpc.FairPayFloors:
    return await rpc.call(ledger_rpc.LIST_FAIR_PAY_FLOORS,
                          ledger_rpc.ListFairPayFloors(actor=actor))


@router.put("/admin/fair-pay/floors/{currency}", response_model=ledger_rpc.FairPayFloorChange,
            summary="Set or turn off a currency's fair-pay floor (audited)")
async def set_floor(actor: AdminActor, rpc: Rpc, currency: CurrencyP, body: FloorBody,
                    security: Security, address: Address) -> ledger_rpc.FairPayFloorChange:
    change = await rpc.call(ledger_rpc.SET_FAIR_PAY_FLOOR, request_of(
        body, ledger_rpc.SetFairPayFloor, actor=actor, currency=currency))
    await security.audit.record("fair_pay_floor.changed", actor.user_id, currency, {
        "currency": currency, "old_minor_per_hour": change.old_minor_per_hour,
        "new_minor_per_hour": change.new_minor_per_hour}, address=address)
    return change


@router.get("/admin/fair-pay/pools", response_model=FairPayPools,
            summary="Pools' estimated hourly earning and fair-pay warnings")
async def list_pools(actor: AdminActor, rpc: Rpc, p: PageQ, project_id: QueryId = None,
                     status_: Annotated[tasks_rpc.PoolStatus | None,
                                        Query(alias="status")] = None) -> FairPayPools:
    listed = await rpc.call(tasks_rpc.ADMIN_LIST_POOLS, tasks_rpc.PoolList(
        actor=actor, project_id=project_id, status=status_, page=p))
    return FairPayPools(items=await fair_pay_of(rpc, listed.items), total=listed.total)


@router.get("/admin/pools/{pool_id}/fair-pay", response_model=PoolFairPay,
            summary="A pool's estimated hourly earning, what it rests on, and its warning")
async def get_pool(actor: AdminActor, rpc: Rpc, pool_id: Id) -> PoolFairPay:
    pool = await rpc.call(tasks_rpc.ADMIN_GET_POOL, tasks_rpc.PoolGet(actor=actor, pool_id=pool_id))
    [view] = await fair_pay_of(rpc, [pool])
    return view
