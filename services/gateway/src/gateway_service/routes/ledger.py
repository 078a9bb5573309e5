# mypy: disable-error-code="valid-type"
"""Ledger: a worker's balance, history and payouts; admin payouts and the worker share.

The worker share and anything derived from the gross price are served under
``/admin/...`` only; the worker views use ledger models that carry only what was
credited to the worker.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, status
from pydantic import BaseModel

from contracts import money
from contracts.rpc import Actor, Page
from contracts.rpc import ledger as ledger_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.deps import Address, AdminActor, MfaAdmin, Rpc, Security, WorkerActor
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.common import QueryId, page
from gateway_service.security import SecurityLayer
from servicekit.rpc import RpcClient

router = APIRouter()

Id = Annotated[str, Path(min_length=1, max_length=64)]
PageQ = Annotated[Page, Depends(page)]
Currency = Annotated[money.Currency | None, Query(description="an ISO 4217 code the ledger "
                                                               "books")]


PayoutBody = body_of(ledger_rpc.RequestPayout, "PayoutBody", without={"idempotency_key"}, doc={
    "amount_minor": "amount to withdraw, minor units",
    "currency": "may be omitted when I earn in one currency",
    "comment": "where to pay: wallet, card or account details"})
DecisionBody = body_of(ledger_rpc.DecidePayout, "DecisionBody", without={"payout_id"})
ShareBody = body_of(ledger_rpc.SetShare, "ShareBody", without={"pool_id"}, doc={
    "share": "0..1 as a number or decimal string, e.g. 0.7 or '0.7000' (at most 4 decimals)"})


# ------------------------------------------------------------------ worker


@router.get("/worker/balance", response_model=ledger_rpc.Balance, tags=["worker"],
            summary="My balance: available, on hold for payouts, and paid out")
async def balance(actor: WorkerActor, rpc: Rpc) -> ledger_rpc.Balance:
    return await rpc.call(ledger_rpc.BALANCE, ledger_rpc.BalanceRequest(actor=actor))


@router.get("/worker/ledger", response_model=ledger_rpc.History, tags=["worker"],
            summary="My earnings and payout history, newest first")
async def history(actor: WorkerActor, rpc: Rpc, p: PageQ,
                  currency: Currency = None) -> ledger_rpc.History:
    return await rpc.call(ledger_rpc.HISTORY, ledger_rpc.HistoryRequest(
        actor=actor, currency=currency, page=p))


@router.post("/worker/payouts", response_model=ledger_rpc.Payout, tags=["worker"],
             status_code=status.HTTP_201_CREATED,
             summary="Request a payout (the amount is put on hold until an admin decides)")
async def request_payout(
        actor: WorkerActor, rpc: Rpc, body: PayoutBody,
        idempotency_key: Annotated[str | None, Header(
            alias="Idempotency-Key", min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$",
            description="retry-safe requests: the same key returns the first payout instead "
                        "of holding the money twice")] = None,
) -> ledger_rpc.Payout:
    return await rpc.call(ledger_rpc.REQUEST_PAYOUT, request_of(
        body, ledger_rpc.RequestPayout, actor=actor, idempotency_key=idempotency_key))


@router.get("/worker/payouts", response_model=ledger_rpc.Payouts, tags=["worker"],
            summary="My payout requests and their status")
async def my_payouts(actor: WorkerActor, rpc: Rpc, p: PageQ,
                     status_: Annotated[ledger_rpc.PayoutStatus | None,
                                        Query(alias="status")] = None,
) -> ledger_rpc.Payouts:
    return await rpc.call(ledger_rpc.MY_PAYOUTS, ledger_rpc.MyPayouts(
        actor=actor, status=status_, page=p))


# ------------------------------------------------------------------ admin: payouts


@router.get("/admin/payouts", response_model=ledger_rpc.Payouts, tags=["admin: money"],
            summary="Payout requests, filtered by status and worker")
async def list_payouts(actor: AdminActor, rpc: Rpc, p: PageQ, worker_id: QueryId = None,
                       status_: Annotated[ledger_rpc.PayoutStatus | None,
                                          Query(alias="status")] = None,
) -> ledger_rpc.Payouts:
    return await rpc.call(ledger_rpc.LIST_PAYOUTS, ledger_rpc.ListPayouts(
        actor=actor, status=status_, worker_id=worker_id, page=p))


@router.post("/admin/payouts/{payout_id}/approve", response_model=ledger_rpc.Payout,
             tags=["admin: money"],
             summary="Approve (pay) a pending payout; needs a fresh MFA step-up")
async def approve_payout(session: MfaAdmin, rpc: Rpc, payout_id: Id, security: Security,
                         address: Address, body: DecisionBody | None = None) -> ledger_rpc.Payout:
    actor = session.actor
    payout = await rpc.call(ledger_rpc.APPROVE_PAYOUT, request_of(
        body, ledger_rpc.DecidePayout, actor=actor, payout_id=payout_id))
    await _audit_decision(security, "payout.approved", actor, payout, address)
    return payout


@router.post("/admin/payouts/{payout_id}/reject", response_model=ledger_rpc.Payout,
             tags=["admin: money"], summary="Reject a pending payout, releasing the hold")
async def reject_payout(actor: AdminActor, rpc: Rpc, payout_id: Id, security: Security,
                        address: Address, body: DecisionBody | None = None) -> ledger_rpc.Payout:
    payout = await rpc.call(ledger_rpc.REJECT_PAYOUT, request_of(
        body, ledger_rpc.DecidePayout, actor=actor, payout_id=payout_id))
    await _audit_decision(security, "payout.rejected", actor, payout, address)
    return payout


async def _audit_decision(security: SecurityLayer, kind: str, actor: Actor,
                          payout: ledger_rpc.Payout, address: str | None) -> None:
    await security.audit.record(kind, actor.user_id, payout.payout_id, {
        "worker_id": payout.worker_id, "amount_minor": payout.amount_minor,
        "currency": payout.currency}, address=address)


# ------------------------------------------------------------------ admin: worker share


@router.get("/admin/worker-share", response_model=ledger_rpc.Shares, tags=["admin: money"],
            summary="The default worker share and every pool's own share")
async def list_shares(actor: AdminActor, rpc: Rpc) -> ledger_rpc.Shares:
    return await rpc.call(ledger_rpc.LIST_SHARES, ledger_rpc.ListShares(actor=actor))


@router.get("/admin/worker-share/audit", response_model=ledger_rpc.ShareAudit,
            tags=["admin: money"], summary="Every change of a share: who, when, old and new")
async def share_audit(actor: AdminActor, rpc: Rpc, p: PageQ,
                      pool_id: Annotated[str | None, Query(
                          min_length=1, max_length=64,
                          description="only this pool; '*' = the default's changes")] = None,
) -> ledger_rpc.ShareAudit:
    return await rpc.call(ledger_rpc.SHARE_AUDIT, ledger_rpc.ShareAuditRequest(
        actor=actor, pool_id=pool_id, page=p))


async def _get_share(rpc: RpcClient, actor: Actor, pool_id: str | None) -> ledger_rpc.ShareView:
    return await rpc.call(ledger_rpc.GET_SHARE, ledger_rpc.GetShare(actor=actor, pool_id=pool_id))


async def _set_share(rpc: RpcClient, actor: Actor, security: SecurityLayer, address: str | None,
                     pool_id: str | None, body: BaseModel) -> ledger_rpc.ShareView:
    if pool_id is not None:  # the pool must exist (404 pool_not_found); it may be a draft
        await rpc.call(tasks_rpc.ADMIN_GET_POOL, tasks_rpc.PoolGet(actor=actor, pool_id=pool_id))
    before = await _get_share(rpc, actor, pool_id)
    after = await rpc.call(ledger_rpc.SET_SHARE, request_of(
        body, ledger_rpc.SetShare, actor=actor, pool_id=pool_id))
    await security.audit.record("worker_share.changed", actor.user_id, pool_id or "default", {
        "pool_id": pool_id, "old_share_bps": before.share_bps, "old_source": before.source,
        "new_share_bps": after.share_bps}, address=address)
    return after


@router.get("/admin/worker-share/default", response_model=ledger_rpc.ShareView,
            tags=["admin: money"], summary="The default worker share")
async def get_default_share(actor: AdminActor, rpc: Rpc) -> ledger_rpc.ShareView:
    return await _get_share(rpc, actor, None)


@router.put("/admin/worker-share/default", response_model=ledger_rpc.ShareView,
            tags=["admin: money"], summary="Set the default worker share (audited)")
async def set_default_share(actor: AdminActor, rpc: Rpc, body: ShareBody, security: Security,
                            address: Address) -> ledger_rpc.ShareView:
    return await _set_share(rpc, actor, security, address, None, body)


@router.get("/admin/pools/{pool_id}/worker-share", response_model=ledger_rpc.ShareView,
            tags=["admin: money"], summary="A pool's worker share (or the default it uses)")
async def get_pool_share(actor: AdminActor, rpc: Rpc, pool_id: Id) -> ledger_rpc.ShareView:
    return await _get_share(rpc, actor, pool_id)


@router.put("/admin/pools/{pool_id}/worker-share", response_model=ledger_rpc.ShareView,
            tags=["admin: money"], summary="Set a pool's worker share (audited)")
async def set_pool_share(actor: AdminActor, rpc: Rpc, pool_id: Id, body: ShareBody,
                         security: Security, address: Address) -> ledger_rpc.ShareView:
    return await _set_share(rpc, actor, security, address, pool_id, body)


# ------------------------------------------------------------------ admin: workers' money


@router.get("/admin/ledger/workers", response_model=ledger_rpc.WorkerSummary,
            tags=["admin: money"], summary="Per-worker balances and credit totals")
async def worker_summary(actor: AdminActor, rpc: Rpc, p: PageQ,
                         worker_id: QueryId = None) -> ledger_rpc.WorkerSummary:
    return await rpc.call(ledger_rpc.WORKER_SUMMARY, ledger_rpc.WorkerSummaryRequest(
        actor=actor, worker_id=worker_id, page=p))


@router.get("/admin/ledger/workers/{worker_id}/balance", response_model=ledger_rpc.Balance,
            tags=["admin: money"], summary="A worker's balance")
async def worker_balance(actor: AdminActor, rpc: Rpc, worker_id: Id) -> ledger_rpc.Balance:
    return await rpc.call(ledger_rpc.BALANCE, ledger_rpc.BalanceRequest(
        actor=actor, worker_id=worker_id))


@router.get("/admin/ledger/workers/{worker_id}/history", response_model=ledger_rpc.History,
            tags=["admin: money"], summary="A worker's ledger entries, newest first")
async def worker_history(actor: AdminActor, rpc: Rpc, worker_id: Id, p: PageQ,
                         currency: Currency = None) -> ledger_rpc.History:
    return await rpc.call(ledger_rpc.HISTORY, ledger_rpc.HistoryRequest(
        actor=actor, worker_id=worker_id, currency=currency, page=p))


@router.get("/admin/ledger/consistency", response_model=ledger_rpc.Consistency,
            tags=["admin: money"],
            summary="Check that every transfer sums to zero and balances match the entries")
async def consistency(actor: AdminActor, rpc: Rpc) -> ledger_rpc.Consistency:
    return await rpc.call(ledger_rpc.CHECK_CONSISTENCY,
                          ledger_rpc.ConsistencyRequest(actor=actor), timeout_s=120)
