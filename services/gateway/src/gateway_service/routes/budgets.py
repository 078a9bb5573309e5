# mypy: disable-error-code="valid-type"
"""Requester budgets (admin; the admin acts for the requester): requester accounts, the
owner's top-ups, which requester funds a pool, and a pool's reserved/spent/released money.

Opening a pool funded by a requester goes through :func:`open_funded_pool`: tasks counts
the pool's maximum remaining cost, the ledger reserves it (409 ``budget_insufficient``
when short), then tasks opens the pool; if the open fails, the reservation is released.
Closing a pool releases what it did not spend (:func:`close_funded_pool`). Uploading
tasks into an open pool, or raising its dynamic overlap, first reserves the higher cost
(:func:`reserve_for_change`), so every acceptance of a funded pool is paid from money set
aside before the work was offered.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, status

from contracts.rpc import Actor, Page
from contracts.rpc import ledger as ledger_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.deps import Address, AdminActor, Rpc, Security
from gateway_service.errors import ApiError
from gateway_service.routes import fair_pay
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.common import page
from servicekit.rpc import RpcClient

router = APIRouter()

Id = Annotated[str, Path(min_length=1, max_length=64)]
RequesterIdP = Annotated[str, Path(min_length=1, max_length=36)]
PageQ = Annotated[Page, Depends(page)]

RequesterBody = body_of(ledger_rpc.CreateRequester, "RequesterBody", doc={
    "name": "who pays for the pools (a customer, a team)",
    "currency": "the budget's currency: it funds pools priced in it"})
TopUpBody = body_of(ledger_rpc.TopUp, "TopUpBody", without={"requester_id", "idempotency_key"},
                    doc={"amount_minor": "money received from the requester, minor units",
                         "comment": "where it came from (invoice, transfer reference)"})
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$",
    description="retry-safe: the same key returns the first top-up instead of adding twice")]


PoolBudgetBody = body_of(ledger_rpc.LinkPoolBudget, "PoolBudgetBody",
                         without={"pool_id", "currency"},
                         doc={"requester_id": "the requester whose budget funds the pool "
                                              "(in the pool's currency)"})


# ------------------------------------------------------------------ opening and closing


async def open_funded_pool(actor: Actor, rpc: RpcClient, pool_id: str) -> tasks_rpc.AdminPool:
    """Refuse a pool below the fair-pay floor, reserve the pool's maximum cost
    (requester-funded pools only), then open it; a failed open gives a new reservation
    back. A sandbox pool opens with no reserve and no floor: its acceptances are never
    paid."""
    cost = await rpc.call(tasks_rpc.POOL_COST, tasks_rpc.PoolCostRequest(actor=actor,
                                                                         pool_id=pool_id))
    if cost.sandbox:
        return await rpc.call(tasks_rpc.OPEN_POOL, tasks_rpc.PoolTransition(
            actor=actor, pool_id=pool_id))
    await fair_pay.check_floor(rpc, await rpc.call(tasks_rpc.ADMIN_GET_POOL, tasks_rpc.PoolGet(
        actor=actor, pool_id=pool_id)))
    reserved = await rpc.call(ledger_rpc.RESERVE_POOL_BUDGET, ledger_rpc.ReservePoolBudget(
        actor=actor, pool_id=pool_id, max_cost_minor=cost.max_cost_minor,
        currency=cost.currency))
    try:
        return await rpc.call(tasks_rpc.OPEN_POOL, tasks_rpc.PoolTransition(
            actor=actor, pool_id=pool_id))
    except Exception:
        # an open pool keeps what it holds; a pool that did not open gives it back
        if reserved.funded_by == "requester" and cost.status != "open":
            await rpc.call(ledger_rpc.RELEASE_POOL_BUDGET, ledger_rpc.PoolBudgetRequest(
                actor=actor, pool_id=pool_id))
        raise


async def reserve_for_change(actor: Actor, rpc: RpcClient, pool_id: str, *, extra_tasks: int = 0,
                             dynamic_max_overlap: int | None = None) -> None:
    """Before a change that raises an open pool's maximum cost (tasks uploaded into it, a
    higher dynamic overlap), reserve the cost it will have: 409 ``budget_insufficient`` and
    no change when the requester's budget is short. A draft reserves when it opens; a pool
    the platform funds moves nothing. What a change did not use is released on close."""
    funding = await rpc.call(ledger_rpc.GET_POOL_BUDGET, ledger_rpc.PoolBudgetRequest(
        actor=actor, pool_id=pool_id))
    if funding.funded_by != "requester":  # one key lookup; no count over the pool's tasks
        return
    cost = await rpc.call(tasks_rpc.POOL_COST, tasks_rpc.PoolCostRequest(
        actor=actor, pool_id=pool_id, extra_tasks=extra_tasks,
        dynamic_max_overlap=dynamic_max_overlap))
    if cost.status != "open" or cost.sandbox:
        return
    await rpc.call(ledger_rpc.RESERVE_POOL_BUDGET, ledger_rpc.ReservePoolBudget(
        actor=actor, pool_id=pool_id, max_cost_minor=cost.max_cost_minor,
        currency=cost.currency))


async def close_funded_pool(actor: Actor, rpc: RpcClient, pool_id: str) -> tasks_rpc.AdminPool:
    """Close the pool, then release what it did not spend (again on a repeated close)."""
    pool = await rpc.call(tasks_rpc.CLOSE_POOL, tasks_rpc.PoolTransition(
        actor=actor, pool_id=pool_id))
    await rpc.call(ledger_rpc.RELEASE_POOL_BUDGET, ledger_rpc.PoolBudgetRequest(
        actor=actor, pool_id=pool_id))
    return pool


# ------------------------------------------------------------------ requesters


@router.post("/admin/requesters", response_model=ledger_rpc.Requester,
             status_code=status.HTTP_201_CREATED, tags=["admin: budgets"],
             summary="Create a requester account (an empty budget in one currency)")
async def create_requester(actor: AdminActor, rpc: Rpc, security: Security, address: Address,
                           body: RequesterBody) -> ledger_rpc.Requester:
    requester = await rpc.call(ledger_rpc.CREATE_REQUESTER,
                               request_of(body, ledger_rpc.CreateRequester, actor=actor))
    await security.audit.record("requester.created", actor.user_id, requester.requester_id,
                                {"name": requester.name, "currency": requester.currency},
                                address=address)
    return requester


@router.get("/admin/requesters", response_model=ledger_rpc.Requesters, tags=["admin: budgets"],
            summary="Requester accounts with their available and reserved budget")
async def list_requesters(actor: AdminActor, rpc: Rpc, p: PageQ) -> ledger_rpc.Requesters:
    return await rpc.call(ledger_rpc.LIST_REQUESTERS,
                          ledger_rpc.ListRequesters(actor=actor, page=p))


@router.get("/admin/requesters/{requester_id}", response_model=ledger_rpc.Requester,
            tags=["admin: budgets"], summary="One requester's budget")
async def get_requester(actor: AdminActor, rpc: Rpc,
                        requester_id: RequesterIdP) -> ledger_rpc.Requester:
    return await rpc.call(ledger_rpc.GET_REQUESTER, ledger_rpc.GetRequester(
        actor=actor, requester_id=requester_id))


@router.post("/admin/requesters/{requester_id}/top-ups", response_model=ledger_rpc.TopUpResult,
             status_code=status.HTTP_201_CREATED, tags=["admin: budgets"],
             summary="Top a requester's budget up (money received from outside; audited)")
async def top_up(actor: AdminActor, rpc: Rpc, security: Security, address: Address,
                 requester_id: RequesterIdP, body: TopUpBody,
                 idempotency_key: IdempotencyKey = None) -> ledger_rpc.TopUpResult:
    result = await rpc.call(ledger_rpc.TOP_UP, request_of(
        body, ledger_rpc.TopUp, actor=actor, requester_id=requester_id,
        idempotency_key=idempotency_key))
    if not result.replayed:
        await security.audit.record("requester.topped_up", actor.user_id, requester_id, {
            "topup_id": result.topup_id, "amount_minor": result.amount_minor,
            "currency": result.requester.currency}, address=address)
    return result


# ------------------------------------------------------------------ pools


@router.put("/admin/pools/{pool_id}/budget", response_model=ledger_rpc.PoolBudget,
            tags=["admin: budgets"],
            summary="Fund a draft pool from a requester's budget (set once; audited)")
async def link_pool_budget(actor: AdminActor, rpc: Rpc, security: Security, address: Address,
                           pool_id: Id, body: PoolBudgetBody) -> ledger_rpc.PoolBudget:
    pool = await rpc.call(tasks_rpc.ADMIN_GET_POOL, tasks_rpc.PoolGet(actor=actor,
                                                                      pool_id=pool_id))
    if pool.status != "draft":  # its money so far came from the platform: keep one payer
        raise ApiError(409, "pool_not_draft", "only a draft pool can be given a requester's "
                                              "budget", details={"status": pool.status})
    budget = await rpc.call(ledger_rpc.LINK_POOL_BUDGET, request_of(
        body, ledger_rpc.LinkPoolBudget, actor=actor, pool_id=pool.pool_id,
        currency=pool.currency))
    await security.audit.record("pool.budget_linked", actor.user_id, pool_id,
                                {"requester_id": budget.requester_id}, address=address)
    return budget


@router.get("/admin/pools/{pool_id}/budget", response_model=ledger_rpc.PoolBudget,
            tags=["admin: budgets"],
            summary="A pool's money: reserved, spent (worker and platform parts), released")
async def get_pool_budget(actor: AdminActor, rpc: Rpc, pool_id: Id) -> ledger_rpc.PoolBudget:
    return await rpc.call(ledger_rpc.GET_POOL_BUDGET, ledger_rpc.PoolBudgetRequest(
        actor=actor, pool_id=pool_id))
