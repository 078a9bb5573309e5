"""Payouts: a worker puts money on hold (at most once per Idempotency-Key), an admin pays
or rejects it; the database refuses any overdraft."""

from __future__ import annotations

from typing import Literal

from prometheus_client import Counter

from contracts.events import PayoutApproved, PayoutRejected, PayoutRequested
from contracts.rpc import ledger as rpc
from ledger_service.context import LedgerContext
from ledger_service.domain import (
    IdempotencyKeyTaken,
    InsufficientFunds,
    Transfer,
    new_id,
    payout_legs,
)
from servicekit.errors import Conflict, Invalid, NotFound
from servicekit.router import Router

router = Router()

# Payouts by outcome, counted once committed (a replayed request is not counted again)
PAYOUTS = Counter("ledger_payouts_total", "Payouts requested, approved and rejected",
                  ["outcome"])
for _outcome in ("requested", "approved", "rejected"):
    PAYOUTS.labels(_outcome)


def mask_details(details: str) -> str:
    """All but the last four characters hidden ("•••• 4242"); short values entirely."""
    tail = details.replace(" ", "")[-4:]
    return "••••" if len(details.replace(" ", "")) <= 6 else f"•••• {tail}"


def masked(payout: rpc.Payout) -> rpc.Payout:
    """The payout as anyone but the owner who approves it sees it: destination masked.
    (The owner's views, ``list_payouts`` and the decisions, return it in full.)"""
    if payout.destination_details is None:
        return payout
    return payout.model_copy(update={"destination_details": mask_details(
        payout.destination_details), "destination_masked": True})


def _replayed(first: rpc.Payout, req: rpc.RequestPayout) -> rpc.Payout:
    """The payout a key already made, if the retry asks for the same thing."""
    if (first.amount_minor, first.comment, first.destination_method,
            first.destination_details) != (req.amount_minor, req.comment,
                                           req.destination_method,
                                           req.destination_details) or \
            req.currency not in (None, first.currency):
        raise Conflict("idempotency_key_reused",
                       "this Idempotency-Key was used for a different payout request",
                       details={"payout_id": first.payout_id})
    return masked(first)


async def _only_currency(ctx: LedgerContext, worker_id: str) -> str:
    """The currency of a worker who earns in one; refused when none or several."""
    async with ctx.read() as r:
        found = sorted(await r.store.worker_balances(worker_id))
    if len(found) == 1:
        return found[0]
    if not found:
        raise Conflict("insufficient_funds", "there is nothing to pay out yet",
                       details={"available_minor": 0, "currency": None})
    raise Invalid("currency_required",
                  f"you have balances in {', '.join(found)}: say which currency to pay out",
                  details={"currencies": found})


async def _first_by_key(ctx: LedgerContext, worker_id: str, key: str) -> rpc.Payout | None:
    async with ctx.read() as r:
        return await r.store.payout_by_key(worker_id, key)


@router.rpc(rpc.REQUEST_PAYOUT)
async def request_payout(req: rpc.RequestPayout, ctx: LedgerContext) -> rpc.Payout:
    """Put the amount on hold (available -> on hold); the same Idempotency-Key again returns
    the first payout; 409 ``insufficient_funds`` with what is available."""
    worker_id, key = req.actor.user_id, req.idempotency_key
    if key is not None and (first := await _first_by_key(ctx, worker_id, key)):
        return _replayed(first, req)
    currency = req.currency or await _only_currency(ctx, worker_id)
    now = ctx.clock()
    payout = rpc.Payout(payout_id=new_id(), worker_id=worker_id, amount_minor=req.amount_minor,
                        currency=currency, comment=req.comment, status="pending",
                        requested_at=now, destination_method=req.destination_method,
                        destination_details=req.destination_details)
    try:
        async with ctx.uow() as uow:
            await uow.store.add_payout(payout, idempotency_key=key)
            await uow.store.post_transfer(Transfer(
                transfer_id=new_id(), kind="payout_hold", currency=currency,
                worker_id=worker_id, payout_id=payout.payout_id, created_by=worker_id,
                created_at=now), payout_legs(worker_id=worker_id, currency=currency,
                                             amount_minor=req.amount_minor, step="hold"))
            uow.record(PayoutRequested(payout_id=payout.payout_id, worker_id=worker_id,
                                       amount_minor=req.amount_minor, currency=currency,
                                       at=now))
            uow.after_commit(PAYOUTS.labels("requested").inc)
    except IdempotencyKeyTaken:  # a concurrent retry with the same key won
        assert key is not None
        won = await _first_by_key(ctx, worker_id, key)
        assert won is not None
        return _replayed(won, req)
    except InsufficientFunds:
        async with ctx.read() as r:
            available = await r.store.available_minor(worker_id, currency)
        raise Conflict(
            "insufficient_funds",
            f"not enough money: {available} {currency} (minor units) available, "
            f"{req.amount_minor} requested",
            details={"available_minor": available, "requested_minor": req.amount_minor,
                     "currency": currency}) from None
    return masked(payout)


async def _decide(req: rpc.DecidePayout, ctx: LedgerContext,
                  status: Literal["approved", "rejected"]) -> rpc.Payout:
    by, now = req.actor.user_id, ctx.clock()
    async with ctx.uow() as uow:
        payout = await uow.store.decide_payout(req.payout_id, status=status, by=by, now=now,
                                               comment=req.comment)
        if payout is None:
            current = await uow.store.payout_status(req.payout_id)
            if current is None:
                raise NotFound("payout_not_found", f"no payout {req.payout_id}")
            raise Conflict("payout_not_pending",
                           f"payout {req.payout_id} is already {current}; only a pending "
                           "payout can be decided", details={"status": current})
        approved = status == "approved"
        await uow.store.post_transfer(Transfer(
            transfer_id=new_id(), kind="payout_paid" if approved else "payout_release",
            currency=payout.currency, worker_id=payout.worker_id, payout_id=payout.payout_id,
            created_by=by, created_at=now), payout_legs(
                worker_id=payout.worker_id, currency=payout.currency,
                amount_minor=payout.amount_minor, step="pay" if approved else "release"))
        common = {"payout_id": payout.payout_id, "worker_id": payout.worker_id,
                  "amount_minor": payout.amount_minor, "currency": payout.currency, "at": now,
                  "decided_by": by}
        uow.record(PayoutApproved(**common) if approved
                   else PayoutRejected(**common, comment=req.comment))
        uow.after_commit(PAYOUTS.labels(status).inc)
    return payout


@router.rpc(rpc.APPROVE_PAYOUT)
async def approve_payout(req: rpc.DecidePayout, ctx: LedgerContext) -> rpc.Payout:
    """Pay a pending payout: on hold -> paid (the gateway asks the admin for MFA first)."""
    return await _decide(req, ctx, "approved")


@router.rpc(rpc.REJECT_PAYOUT)
async def reject_payout(req: rpc.DecidePayout, ctx: LedgerContext) -> rpc.Payout:
    """Reject a pending payout: the hold goes back to available."""
    return await _decide(req, ctx, "rejected")


@router.rpc(rpc.LIST_PAYOUTS)
async def list_payouts(req: rpc.ListPayouts, ctx: LedgerContext) -> rpc.Payouts:
    """Payouts, newest first, filtered by status and worker (admins)."""
    async with ctx.read() as r:
        items, total = await r.store.list_payouts(worker_id=req.worker_id, status=req.status,
                                                  limit=req.page.limit, offset=req.page.offset)
    return rpc.Payouts(items=items, total=total)


@router.rpc(rpc.MY_PAYOUTS)
async def my_payouts(req: rpc.MyPayouts, ctx: LedgerContext) -> rpc.Payouts:
    """The caller's own payouts, newest first."""
    async with ctx.read() as r:
        items, total = await r.store.list_payouts(worker_id=req.actor.user_id,
                                                  status=req.status, limit=req.page.limit,
                                                  offset=req.page.offset)
    return rpc.Payouts(items=[masked(p) for p in items], total=total)
