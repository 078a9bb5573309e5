"""Reading money: a worker's balance and history (their own; an admin's of anyone), and
the admins' dashboard, per-worker summary and consistency check.

A worker's views carry only what was credited to the worker, never the share, the gross
price or the platform's part; the rest is admin-only (the specs' roles).
"""

from __future__ import annotations

from contracts.rpc import Actor
from contracts.rpc import ledger as rpc
from ledger_service.context import LedgerContext
from servicekit.errors import Forbidden
from servicekit.router import Router

router = Router()


def subject_worker(actor: Actor, worker_id: str | None) -> str:
    """Whose money a read is about: one's own; only an admin may name another worker."""
    me: str = actor.user_id
    if worker_id is None or worker_id == me:
        return me
    if actor.role != "admin":
        raise Forbidden("forbidden", "looking at another worker's money is for admins only")
    return worker_id


@router.rpc(rpc.BALANCE)
async def balance(req: rpc.BalanceRequest, ctx: LedgerContext) -> rpc.Balance:
    """Available, on-hold and paid amounts per currency."""
    worker_id = subject_worker(req.actor, req.worker_id)
    async with ctx.read() as r:
        by_currency = await r.store.worker_balances(worker_id)
    return rpc.Balance(worker_id=worker_id, balances=[
        rpc.CurrencyBalance(currency=c, available_minor=b["worker_available"],
                            on_hold_minor=b["worker_hold"], paid_minor=b["worker_paid"])
        for c, b in sorted(by_currency.items())])


@router.rpc(rpc.HISTORY)
async def history(req: rpc.HistoryRequest, ctx: LedgerContext) -> rpc.History:
    """The entries of a worker's accounts, newest first."""
    worker_id = subject_worker(req.actor, req.worker_id)
    async with ctx.read() as r:
        items, total = await r.store.history(worker_id, currency=req.currency,
                                             limit=req.page.limit, offset=req.page.offset)
    return rpc.History(items=items, total=total)


@router.rpc(rpc.OWNER_DASHBOARD)
async def owner_dashboard(req: rpc.DashboardRequest, ctx: LedgerContext) -> rpc.Dashboard:
    """Money totals per currency (charged, credited, platform revenue, balances) and counts."""
    async with ctx.read() as r:
        return await r.store.dashboard()


@router.rpc(rpc.WORKER_SUMMARY)
async def worker_summary(req: rpc.WorkerSummaryRequest,
                         ctx: LedgerContext) -> rpc.WorkerSummary:
    """Per worker and currency: balances and what was credited."""
    async with ctx.read() as r:
        items, total = await r.store.worker_summary(worker_id=req.worker_id,
                                                    limit=req.page.limit,
                                                    offset=req.page.offset)
    return rpc.WorkerSummary(items=items, total=total)


@router.rpc(rpc.CHECK_CONSISTENCY)
async def check_consistency(req: rpc.ConsistencyRequest,
                            ctx: LedgerContext) -> rpc.Consistency:
    """Every transfer sums to zero in one currency, and every stored balance equals the sum
    of its entries."""
    async with ctx.read() as r:
        return await r.store.consistency(now=ctx.clock())
