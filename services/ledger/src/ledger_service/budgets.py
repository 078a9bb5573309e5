"""Requester budgets: the owner tops a requester up from the external source account; a
pool linked to the requester reserves its maximum cost before it opens (the gateway asks,
then opens the pool in tasks, and releases again when the open fails); each acceptance and
bonus of the pool spends the budget; closing the pool releases what is left.

Accounts (stored balances, kept >= 0 by the database): ``requester_available`` per
requester, ``pool_reserve`` per pool; ``external_source`` (derived, it goes negative: the
money that came in from outside). Pools without a requester are funded by the platform's
``requester_clearing`` account, as before budgets existed.

Reserve and release lock the pool's link row and compute their amount from the balances,
so a repeated call moves nothing more: they are idempotent without a key.
"""

from __future__ import annotations

from typing import Literal

from contracts.rpc import ledger as rpc
from ledger_service.budget_store import (
    BudgetLink,
    requester_account_id,
    requester_view,
    reserve_account_id,
)
from ledger_service.context import LedgerContext
from ledger_service.domain import (
    Account,
    IdempotencyKeyTaken,
    LedgerRuleError,
    Leg,
    Transfer,
    balanced_legs,
    check_currency,
    new_id,
)
from ledger_service.store import LedgerStore
from servicekit.errors import Conflict, NotFound
from servicekit.router import Router
from servicekit.uow import UnitOfWork

router = Router()


def requester_account(requester_id: str, currency: str) -> Account:
    return Account(requester_account_id(requester_id, check_currency(currency)),
                   "requester_available", currency, None)


def reserve_account(pool_id: str, currency: str) -> Account:
    return Account(reserve_account_id(pool_id, check_currency(currency)), "pool_reserve",
                   currency, None)


def external_account(currency: str) -> Account:
    return Account(f"external_source:{check_currency(currency)}", "external_source", currency)


def move_legs(source: Account, target: Account, amount_minor: int) -> list[Leg]:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise LedgerRuleError("invalid_amount", f"amount must be positive, got {amount_minor!r}")
    return balanced_legs([Leg(source, -amount_minor), Leg(target, amount_minor)])


def reserve_needed(max_cost_minor: int, remaining_minor: int) -> int:
    """What to move into the pool's reserve now: its maximum remaining cost less what it
    already holds (never negative: a reserve above the cost is released on close)."""
    return max(0, max_cost_minor - remaining_minor)


# ------------------------------------------------------------------- spending


async def funded_credit(uow: UnitOfWork[LedgerStore], transfer: Transfer, legs: list[Leg], *,
                        unique_key: Literal["assignment_id", "bonus_id"],
                        prefer: Literal["reserve", "available"],
                        link: BudgetLink | None | Literal["read"] = "read") -> bool:
    """Post a credit of ``transfer.pool_id``: from the requester's budget when the pool has
    one (the ``requester_clearing`` leg is paid from the pool's reserve or the requester's
    available money, ``prefer`` first), else as before. False when already posted.

    A budget too short for the credit dead-letters the event (``budget_insufficient``):
    it is replayed from the dead letters once the owner has topped the requester up.

    ``link``: the pool's budget link when the caller read it already (with the pool's
    terms), else it is read here."""
    if link == "read":
        link = await uow.store.pool_budget_of(transfer.pool_id) if transfer.pool_id else None
    if link is None:
        return await uow.store.post_credit(transfer, legs, unique_key=unique_key)
    price = -sum(leg.amount_minor for leg in legs if leg.account.kind == "requester_clearing")
    source = await _paying_account(uow.store, link, price, prefer)
    paid = [Leg(source, leg.amount_minor) if leg.account.kind == "requester_clearing" else leg
            for leg in legs]
    return await uow.store.post_keyed_transfer(transfer, paid, unique_key=unique_key)


async def _paying_account(store: LedgerStore, link: BudgetLink, amount: int,
                          prefer: Literal["reserve", "available"]) -> Account:
    reserve = reserve_account(link.pool_id, link.currency)
    budget = requester_account(link.requester_id, link.currency)
    order = (reserve, budget) if prefer == "reserve" else (budget, reserve)
    for account in order:
        if await store.balance_of(account.account_id, lock=True) >= amount:
            return account
    raise LedgerRuleError(
        "budget_insufficient",
        f"the budget of requester {link.requester_id} cannot pay {amount} {link.currency} "
        f"for pool {link.pool_id}: top it up, then replay this event")


# ------------------------------------------------------------------ requesters


async def _requester(store: LedgerStore, requester_id: str) -> rpc.Requester:
    row = await store.requester_row(requester_id)
    if row is None:
        raise NotFound("requester_not_found", f"no requester {requester_id}")
    available, reserved = await store.requester_money(requester_id, row.currency)
    return requester_view(row, available, reserved)


@router.rpc(rpc.CREATE_REQUESTER)
async def create_requester(req: rpc.CreateRequester, ctx: LedgerContext) -> rpc.Requester:
    """A requester account with an empty budget in one currency."""
    now, rid = ctx.clock(), new_id()
    async with ctx.uow() as uow:
        await uow.store.add_requester({"requester_id": rid, "name": req.name,
                                       "currency": req.currency,
                                       "created_by": req.actor.user_id, "created_at": now})
        return await _requester(uow.store, rid)


@router.rpc(rpc.GET_REQUESTER)
async def get_requester(req: rpc.GetRequester, ctx: LedgerContext) -> rpc.Requester:
    """A requester's available and reserved budget."""
    async with ctx.read() as r:
        return await _requester(r.store, req.requester_id)


@router.rpc(rpc.LIST_REQUESTERS)
async def list_requesters(req: rpc.ListRequesters, ctx: LedgerContext) -> rpc.Requesters:
    """Requesters, newest first, with their budgets."""
    async with ctx.read() as r:
        rows, total = await r.store.requester_rows(limit=req.page.limit, offset=req.page.offset)
        items = [requester_view(row, *await r.store.requester_money(row.requester_id,
                                                                     row.currency))
                 for row in rows]
    return rpc.Requesters(items=items, total=total)


async def _replayed_topup(ctx: LedgerContext, req: rpc.TopUp, key: str) -> rpc.TopUpResult:
    async with ctx.read() as r:
        first = await r.store.topup_by_key(req.requester_id, key)
        if first is None:
            raise Conflict("idempotency_key_reused", "this Idempotency-Key is in use")
        if (first.amount_minor, first.comment) != (req.amount_minor, req.comment):
            raise Conflict("idempotency_key_reused",
                           "this Idempotency-Key was used for a different top-up",
                           details={"topup_id": first.topup_id})
        return rpc.TopUpResult(topup_id=first.topup_id, amount_minor=first.amount_minor,
                               requester=await _requester(r.store, req.requester_id),
                               replayed=True)


@router.rpc(rpc.TOP_UP)
async def top_up(req: rpc.TopUp, ctx: LedgerContext) -> rpc.TopUpResult:
    """external_source -> requester_available, once per Idempotency-Key."""
    key = req.idempotency_key
    if key is not None:
        async with ctx.read() as r:
            if await r.store.topup_by_key(req.requester_id, key) is not None:
                return await _replayed_topup(ctx, req, key)
    now, topup_id = ctx.clock(), new_id()
    try:
        async with ctx.uow() as uow:
            row = await uow.store.requester_row(req.requester_id)
            if row is None:
                raise NotFound("requester_not_found", f"no requester {req.requester_id}")
            transfer = Transfer(transfer_id=new_id(), kind="budget_topup", currency=row.currency,
                                created_by=req.actor.user_id, created_at=now)
            await uow.store.post_keyed_transfer(transfer, move_legs(
                external_account(row.currency), requester_account(row.requester_id,
                                                                  row.currency),
                req.amount_minor), unique_key=None)
            await uow.store.add_topup({
                "topup_id": topup_id, "requester_id": row.requester_id,
                "amount_minor": req.amount_minor, "currency": row.currency,
                "comment": req.comment, "idempotency_key": key,
                "transfer_id": transfer.transfer_id, "created_by": req.actor.user_id,
                "created_at": now})
            requester = await _requester(uow.store, row.requester_id)
    except IdempotencyKeyTaken:  # a concurrent retry with the same key won
        assert key is not None
        return await _replayed_topup(ctx, req, key)
    return rpc.TopUpResult(topup_id=topup_id, requester=requester,
                           amount_minor=req.amount_minor)


# ---------------------------------------------------------------- pool budgets


async def _pool_view(store: LedgerStore, pool_id: str, link: BudgetLink | None,
                     moved: int = 0) -> rpc.PoolBudget:
    if link is None:
        return rpc.PoolBudget(pool_id=pool_id, funded_by="platform")
    f = await store.pool_figures(link)
    return rpc.PoolBudget(
        pool_id=pool_id, funded_by="requester", requester_id=link.requester_id,
        currency=link.currency, reserved_minor=f["reserved"], released_minor=f["released"],
        spent_minor=f["from_reserve"] + f["from_available"],
        spent_from_reserve_minor=f["from_reserve"],
        spent_from_available_minor=f["from_available"],
        remaining_minor=await store.balance_of(reserve_account_id(pool_id, link.currency)),
        worker_credits_minor=f["workers"], platform_credits_minor=f["platform"],
        reserved_now_minor=moved)


@router.rpc(rpc.LINK_POOL_BUDGET)
async def link_pool_budget(req: rpc.LinkPoolBudget, ctx: LedgerContext) -> rpc.PoolBudget:
    """Fund a pool from a requester's budget; set once (409 when linked elsewhere)."""
    async with ctx.uow() as uow:
        row = await uow.store.requester_row(req.requester_id)
        if row is None:
            raise NotFound("requester_not_found", f"no requester {req.requester_id}")
        if row.currency != req.currency:
            raise Conflict("currency_mismatch",
                           f"the pool is priced in {req.currency}, the requester's budget "
                           f"is in {row.currency}",
                           details={"pool_currency": req.currency,
                                    "budget_currency": row.currency})
        link = await uow.store.link_pool(pool_id=req.pool_id, requester_id=req.requester_id,
                                         currency=req.currency, by=req.actor.user_id,
                                         now=ctx.clock())
        if link.requester_id != req.requester_id:
            raise Conflict("pool_budget_linked",
                           f"pool {req.pool_id} is already funded by requester "
                           f"{link.requester_id}", details={"requester_id": link.requester_id})
        return await _pool_view(uow.store, req.pool_id, link)


@router.rpc(rpc.GET_POOL_BUDGET)
async def get_pool_budget(req: rpc.PoolBudgetRequest, ctx: LedgerContext) -> rpc.PoolBudget:
    """Reserved, spent, released and remaining money of a pool (platform-funded: zeros)."""
    async with ctx.read() as r:
        return await _pool_view(r.store, req.pool_id, await r.store.pool_budget_of(req.pool_id))


@router.rpc(rpc.RESERVE_POOL_BUDGET)
async def reserve_pool_budget(req: rpc.ReservePoolBudget,
                              ctx: LedgerContext) -> rpc.PoolBudget:
    """Move what the pool may still cost (less what it holds) from the requester's budget
    to the pool's reserve; 409 ``budget_insufficient`` with the amounts when short. A pool
    without a requester is funded by the platform: nothing moves."""
    async with ctx.uow() as uow:
        link = await uow.store.pool_budget_of(req.pool_id, lock=True)
        if link is None:
            return await _pool_view(uow.store, req.pool_id, None)
        if link.currency != req.currency:
            raise Conflict("currency_mismatch", f"pool {req.pool_id} is priced in "
                                                f"{req.currency}, its budget is {link.currency}")
        reserve = reserve_account(link.pool_id, link.currency)
        budget = requester_account(link.requester_id, link.currency)
        need = reserve_needed(req.max_cost_minor,
                              await uow.store.balance_of(reserve.account_id, lock=True))
        available = await uow.store.balance_of(budget.account_id, lock=True)
        if need > available:
            raise Conflict(
                "budget_insufficient",
                f"the pool needs {need} {link.currency} (minor units) more reserved, the "
                f"requester has {available} available",
                details={"required_minor": need, "available_minor": available,
                         "max_cost_minor": req.max_cost_minor, "currency": link.currency,
                         "requester_id": link.requester_id})
        if need:
            await uow.store.post_keyed_transfer(Transfer(
                transfer_id=new_id(), kind="budget_reserve", currency=link.currency,
                pool_id=link.pool_id, created_by=req.actor.user_id, created_at=ctx.clock()),
                move_legs(budget, reserve, need), unique_key=None)
        return await _pool_view(uow.store, req.pool_id, link, need)


@router.rpc(rpc.RELEASE_POOL_BUDGET)
async def release_pool_budget(req: rpc.PoolBudgetRequest,
                              ctx: LedgerContext) -> rpc.PoolBudget:
    """Give everything the pool still holds back to the requester's budget."""
    async with ctx.uow() as uow:
        link = await uow.store.pool_budget_of(req.pool_id, lock=True)
        if link is None:
            return await _pool_view(uow.store, req.pool_id, None)
        reserve = reserve_account(link.pool_id, link.currency)
        left = await uow.store.balance_of(reserve.account_id, lock=True)
        if left:
            await uow.store.post_keyed_transfer(Transfer(
                transfer_id=new_id(), kind="budget_release", currency=link.currency,
                pool_id=link.pool_id, created_by=req.actor.user_id, created_at=ctx.clock()),
                move_legs(reserve, requester_account(link.requester_id, link.currency), left),
                unique_key=None)
        return await _pool_view(uow.store, req.pool_id, link, -left)
