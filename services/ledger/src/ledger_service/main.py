"""Ledger service: credits accepted work and bonuses, holds and pays payouts.

Workers and managers never receive the share, the gross price or the
platform's part: their responses carry only what was credited to the worker.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from contracts.envelope import Envelope
from contracts.events import (BonusGranted, LedgerCredited, PayoutApproved, PayoutRejected,
                              PayoutRequested, ReviewAccepted)
from contracts.rpc import Actor
from contracts.rpc import ledger as rpc
from ledger_service import handlers as h
from ledger_service.db import accounts, entries, metadata, payouts, share_audit, shares, transfers
from ledger_service.domain import (DEFAULT_SHARE_KEY, WORKER_KINDS, WORKER_VIEW, LedgerRuleError,
                                   assignment_credit_legs, bonus_credit_legs, check_currency,
                                   format_share, parse_share, payout_legs)
from ledger_service.settings import LedgerSettings
from servicekit.errors import Conflict, Forbidden, Invalid, NotFound
from servicekit.service import Service, run

log = logging.getLogger("ledger")


def now_utc() -> datetime:
    return datetime.now(UTC)


def require_admin(actor: Actor, what: str) -> None:
    if actor.role != "admin":
        raise Forbidden("forbidden", f"{what} is for admins only")


def subject_worker(actor: Actor, worker_id: str | None) -> str:
    """Whose money a read is about: one's own; only an admin may name another worker."""
    if worker_id is None or worker_id == actor.user_id:
        return actor.user_id
    require_admin(actor, "looking at another worker's money")
    return worker_id


def pool_key(pool_id: str | None) -> str:
    if pool_id == DEFAULT_SHARE_KEY:
        raise Invalid("invalid_pool_id", f"{DEFAULT_SHARE_KEY!r} is not a pool id: "
                                         "send pool_id null for the default share")
    return DEFAULT_SHARE_KEY if pool_id is None else pool_id


def payout_view(row: Any) -> rpc.Payout:
    return rpc.Payout(**{k: row._mapping[k] for k in rpc.Payout.model_fields})


def create_service(settings: LedgerSettings | None = None) -> Service:
    settings = settings or LedgerSettings()
    svc = Service(settings, metadata)
    built_in_bps = settings.default_share_bps

    # ------------------------------------------------------------------ credits

    @svc.consume("review.accepted", name="credit-accepted")
    async def credit_accepted_assignment(conn, event: ReviewAccepted, env: Envelope) -> None:
        """Credit the worker's share of an accepted assignment, once per assignment."""
        share = await h.share_for_pool(conn, event.pool_id, built_in_bps)
        legs, worker_minor = assignment_credit_legs(
            worker_id=event.worker_id, currency=check_currency(event.currency),
            price_minor=event.price_minor, share_bps=share.share_bps)
        now = now_utc()
        transfer_id = h.new_id()
        fresh = await h.post_credit(conn, dict(
            transfer_id=transfer_id, kind="assignment", currency=event.currency,
            worker_id=event.worker_id, pool_id=event.pool_id, project_id=event.project_id,
            assignment_id=event.assignment_id, cause_event_id=env.event_id,
            created_by=event.decided_by, created_at=now), legs, unique_key="assignment_id",
            now=now)
        if not fresh:
            log.info("assignment %s already credited; event %s ignored", event.assignment_id,
                     env.event_id)
            return
        await svc.record(conn, LedgerCredited(
            transfer_id=transfer_id, worker_id=event.worker_id, pool_id=event.pool_id,
            project_id=event.project_id, assignment_id=event.assignment_id, kind="assignment",
            amount_minor=worker_minor, currency=event.currency, credited_at=now), cause=env)

    @svc.consume("rules.bonus.granted", name="credit-bonus")
    async def credit_bonus(conn, event: BonusGranted, env: Envelope) -> None:
        """Credit a rule's bonus in full, once per bonus id."""
        legs = bonus_credit_legs(worker_id=event.worker_id,
                                 currency=check_currency(event.currency),
                                 amount_minor=event.amount_minor)
        now = now_utc()
        transfer_id = h.new_id()
        fresh = await h.post_credit(conn, dict(
            transfer_id=transfer_id, kind="bonus", currency=event.currency,
            worker_id=event.worker_id, pool_id=event.pool_id, bonus_id=event.bonus_id,
            cause_event_id=env.event_id, created_by=f"rule:{event.rule_id}", created_at=now),
            legs, unique_key="bonus_id", now=now)
        if not fresh:
            log.info("bonus %s already credited; event %s ignored", event.bonus_id, env.event_id)
            return
        await svc.record(conn, LedgerCredited(
            transfer_id=transfer_id, worker_id=event.worker_id, pool_id=event.pool_id,
            kind="bonus", amount_minor=event.amount_minor, currency=event.currency,
            credited_at=now), cause=env)

    # ----------------------------------------------------------------- balances

    @svc.rpc(rpc.BALANCE)
    async def balance(req: rpc.BalanceRequest) -> rpc.Balance:
        worker_id = subject_worker(req.actor, req.worker_id)
        async with svc.engine.connect() as conn:
            by_currency = await h.worker_balances(conn, worker_id)
        return rpc.Balance(worker_id=worker_id, balances=[
            rpc.CurrencyBalance(currency=c, available_minor=b["worker_available"],
                                on_hold_minor=b["worker_hold"], paid_minor=b["worker_paid"])
            for c, b in sorted(by_currency.items())])

    @svc.rpc(rpc.HISTORY)
    async def history(req: rpc.HistoryRequest) -> rpc.History:
        worker_id = subject_worker(req.actor, req.worker_id)
        q = (select(entries.c.entry_id, entries.c.transfer_id, transfers.c.kind,
                    accounts.c.kind.label("account_kind"), entries.c.amount_minor,
                    entries.c.currency, transfers.c.assignment_id, transfers.c.bonus_id,
                    transfers.c.payout_id, transfers.c.pool_id, entries.c.created_at)
             .select_from(entries.join(accounts, accounts.c.account_id == entries.c.account_id)
                          .join(transfers, transfers.c.transfer_id == entries.c.transfer_id))
             .where(accounts.c.owner_id == worker_id, accounts.c.kind.in_(WORKER_KINDS)))
        if req.currency:
            q = q.where(entries.c.currency == req.currency)
        async with svc.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar()
            rows = (await conn.execute(q.order_by(entries.c.entry_id.desc())
                                       .limit(req.page.limit).offset(req.page.offset))).all()
        return rpc.History(total=total or 0, items=[
            rpc.HistoryEntry(entry_id=r.entry_id, transfer_id=r.transfer_id, kind=r.kind,
                             account=WORKER_VIEW[r.account_kind], amount_minor=r.amount_minor,
                             currency=r.currency, assignment_id=r.assignment_id,
                             bonus_id=r.bonus_id, payout_id=r.payout_id, pool_id=r.pool_id,
                             at=r.created_at) for r in rows])

    # ------------------------------------------------------------------ payouts

    async def payout_currency(worker_id: str, currency: str | None) -> str:
        if currency is not None:
            return currency
        async with svc.engine.connect() as conn:
            found = sorted((await h.worker_balances(conn, worker_id)).keys())
        if len(found) == 1:
            return found[0]
        if not found:
            raise Conflict("insufficient_funds", "there is nothing to pay out yet",
                           details={"available_minor": 0, "currency": None})
        raise Invalid("currency_required",
                      f"you have balances in {', '.join(found)}: say which currency to pay out",
                      details={"currencies": found})

    async def payout_by_key(worker_id: str, key: str) -> Any:
        async with svc.reader.connect() as conn:
            return (await conn.execute(select(payouts).where(
                payouts.c.worker_id == worker_id, payouts.c.idempotency_key == key))).first()

    def replayed(first: Any, req: rpc.RequestPayout) -> rpc.Payout:
        """The payout a key already made, if the retry asks for the same thing."""
        same = (first.amount_minor == req.amount_minor and first.comment == req.comment
                and req.currency in (None, first.currency))
        if not same:
            raise Conflict("idempotency_key_reused",
                           "this Idempotency-Key was used for a different payout request",
                           details={"payout_id": first.payout_id})
        return payout_view(first)

    @svc.rpc(rpc.REQUEST_PAYOUT)
    async def request_payout(req: rpc.RequestPayout) -> rpc.Payout:
        """Put the amount on hold (available -> on hold); the database refuses overdrafts."""
        if req.actor.role != "worker":
            raise Forbidden("forbidden", "only workers request payouts")
        worker_id = req.actor.user_id
        key = req.idempotency_key
        if key is not None and (first := await payout_by_key(worker_id, key)) is not None:
            return replayed(first, req)
        currency = await payout_currency(worker_id, req.currency)
        now = now_utc()
        payout_id = h.new_id()
        row = dict(payout_id=payout_id, worker_id=worker_id, amount_minor=req.amount_minor,
                   currency=currency, comment=req.comment, status="pending", requested_at=now)
        try:
            async with svc.transaction() as conn:
                await conn.execute(payouts.insert().values(**row, idempotency_key=key))
                transfer_id = h.new_id()
                await h.insert_transfer(conn, dict(
                    transfer_id=transfer_id, kind="payout_hold", currency=currency,
                    worker_id=worker_id, payout_id=payout_id, created_by=worker_id,
                    created_at=now))
                await h.post_legs(conn, transfer_id, payout_legs(
                    worker_id=worker_id, currency=currency, amount_minor=req.amount_minor,
                    step="hold"), now)
                await svc.record(conn, PayoutRequested(
                    payout_id=payout_id, worker_id=worker_id, amount_minor=req.amount_minor,
                    currency=currency, at=now))
        except (IntegrityError, h.InsufficientFunds) as exc:
            if not h.is_insufficient_funds(exc):
                # a concurrent request with the same key won the unique index
                if key is not None and (first := await payout_by_key(worker_id, key)):
                    return replayed(first, req)
                raise
            async with svc.engine.connect() as conn:
                available = await h.available_minor(conn, worker_id, currency)
            raise Conflict(
                "insufficient_funds",
                f"not enough money: {available} {currency} (minor units) available, "
                f"{req.amount_minor} requested",
                details={"available_minor": available, "requested_minor": req.amount_minor,
                         "currency": currency}) from None
        return rpc.Payout(**row)

    async def decide(req: rpc.DecidePayout, status: str) -> rpc.Payout:
        require_admin(req.actor, "deciding payouts")
        now = now_utc()
        async with svc.transaction() as conn:
            # The status guard makes concurrent decisions of one payout serialize:
            # the second waits for the row lock, then finds it no longer pending.
            row = (await conn.execute(
                update(payouts)
                .where(payouts.c.payout_id == req.payout_id, payouts.c.status == "pending")
                .values(status=status, decided_at=now, decided_by=req.actor.user_id,
                        decision_comment=req.comment)
                .returning(*payouts.c))).first()
            if row is None:
                current = (await conn.execute(select(payouts.c.status).where(
                    payouts.c.payout_id == req.payout_id))).scalar()
                if current is None:
                    raise NotFound("payout_not_found", f"no payout {req.payout_id}")
                raise Conflict("payout_not_pending",
                               f"payout {req.payout_id} is already {current}; only a pending "
                               "payout can be decided", details={"status": current})
            transfer_id = h.new_id()
            await h.insert_transfer(conn, dict(
                transfer_id=transfer_id,
                kind="payout_paid" if status == "approved" else "payout_release",
                currency=row.currency, worker_id=row.worker_id, payout_id=row.payout_id,
                created_by=req.actor.user_id, created_at=now))
            await h.post_legs(conn, transfer_id, payout_legs(
                worker_id=row.worker_id, currency=row.currency, amount_minor=row.amount_minor,
                step="pay" if status == "approved" else "release"), now)
            common = dict(payout_id=row.payout_id, worker_id=row.worker_id,
                          amount_minor=row.amount_minor, currency=row.currency, at=now,
                          decided_by=req.actor.user_id)
            if status == "approved":
                await svc.record(conn, PayoutApproved(**common))
            else:
                await svc.record(conn, PayoutRejected(**common, comment=req.comment))
        return payout_view(row)

    @svc.rpc(rpc.APPROVE_PAYOUT)
    async def approve_payout(req: rpc.DecidePayout) -> rpc.Payout:
        """Pay a pending payout: on hold -> paid."""
        return await decide(req, "approved")

    @svc.rpc(rpc.REJECT_PAYOUT)
    async def reject_payout(req: rpc.DecidePayout) -> rpc.Payout:
        """Reject a pending payout: the hold goes back to available."""
        return await decide(req, "rejected")

    async def list_payout_rows(*, worker_id: str | None, status: str | None, limit: int,
                               offset: int) -> rpc.Payouts:
        q = select(payouts)
        if worker_id is not None:
            q = q.where(payouts.c.worker_id == worker_id)
        if status is not None:
            q = q.where(payouts.c.status == status)
        async with svc.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar()
            rows = (await conn.execute(q.order_by(payouts.c.requested_at.desc(),
                                                  payouts.c.payout_id)
                                       .limit(limit).offset(offset))).all()
        return rpc.Payouts(items=[payout_view(r) for r in rows], total=total or 0)

    @svc.rpc(rpc.LIST_PAYOUTS)
    async def list_payouts(req: rpc.ListPayouts) -> rpc.Payouts:
        require_admin(req.actor, "the payout list")
        return await list_payout_rows(worker_id=req.worker_id, status=req.status,
                                      limit=req.page.limit, offset=req.page.offset)

    @svc.rpc(rpc.MY_PAYOUTS)
    async def my_payouts(req: rpc.MyPayouts) -> rpc.Payouts:
        return await list_payout_rows(worker_id=req.actor.user_id, status=req.status,
                                      limit=req.page.limit, offset=req.page.offset)

    # ------------------------------------------------------------------- shares

    def share_view(pool_id: str | None, s: h.ShareSetting) -> rpc.ShareView:
        return rpc.ShareView(pool_id=pool_id, share=format_share(s.share_bps),
                             share_bps=s.share_bps, source=s.source, updated_at=s.updated_at,
                             updated_by=s.updated_by)

    @svc.rpc(rpc.GET_SHARE)
    async def get_share(req: rpc.GetShare) -> rpc.ShareView:
        require_admin(req.actor, "the worker share")
        pool_key(req.pool_id)
        async with svc.engine.connect() as conn:
            s = await h.share_for_pool(conn, req.pool_id, built_in_bps)
        return share_view(req.pool_id, s)

    @svc.rpc(rpc.SET_SHARE)
    async def set_share(req: rpc.SetShare) -> rpc.ShareView:
        require_admin(req.actor, "the worker share")
        key = pool_key(req.pool_id)
        try:
            bps = parse_share(req.share)
        except LedgerRuleError as exc:
            raise Invalid(exc.code, exc.message, details={"share": str(req.share)}) from None
        now = now_utc()
        async with svc.transaction() as conn:
            await h.set_share(conn, pool_key=key, share_bps=bps, by=req.actor.user_id, now=now)
        return rpc.ShareView(pool_id=req.pool_id, share=format_share(bps), share_bps=bps,
                             source="default" if req.pool_id is None else "pool",
                             updated_at=now, updated_by=req.actor.user_id)

    @svc.rpc(rpc.LIST_SHARES)
    async def list_shares(req: rpc.ListShares) -> rpc.Shares:
        require_admin(req.actor, "the worker share")
        async with svc.engine.connect() as conn:
            default = await h.share_for_pool(conn, None, built_in_bps)
            rows = (await conn.execute(select(shares).where(
                shares.c.pool_key != DEFAULT_SHARE_KEY).order_by(shares.c.pool_key))).all()
        return rpc.Shares(default=share_view(None, default), pools=[
            share_view(r.pool_key, h.ShareSetting(r.pool_key, r.share_bps, "pool", r.updated_at,
                                                  r.updated_by)) for r in rows])

    @svc.rpc(rpc.SHARE_AUDIT)
    async def get_share_audit(req: rpc.ShareAuditRequest) -> rpc.ShareAudit:
        require_admin(req.actor, "the share audit")
        q = select(share_audit)
        if req.pool_id is not None:
            q = q.where(share_audit.c.pool_key == req.pool_id)
        async with svc.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar()
            rows = (await conn.execute(q.order_by(share_audit.c.audit_id.desc())
                                       .limit(req.page.limit).offset(req.page.offset))).all()
        return rpc.ShareAudit(total=total or 0, items=[rpc.ShareChange(
            audit_id=r.audit_id,
            pool_id=None if r.pool_key == DEFAULT_SHARE_KEY else r.pool_key,
            old_share=None if r.old_bps is None else format_share(r.old_bps),
            old_share_bps=r.old_bps, new_share=format_share(r.new_bps), new_share_bps=r.new_bps,
            changed_by=r.changed_by, changed_at=r.changed_at) for r in rows])

    # ------------------------------------------------------------------- owner

    @svc.rpc(rpc.OWNER_DASHBOARD)
    async def owner_dashboard(req: rpc.DashboardRequest) -> rpc.Dashboard:
        require_admin(req.actor, "the owner dashboard")
        async with svc.engine.connect() as conn:
            return rpc.Dashboard(**await h.dashboard(conn))

    @svc.rpc(rpc.WORKER_SUMMARY)
    async def worker_summary(req: rpc.WorkerSummaryRequest) -> rpc.WorkerSummary:
        require_admin(req.actor, "the worker summary")
        async with svc.engine.connect() as conn:
            items, total = await h.worker_summary(conn, worker_id=req.worker_id,
                                                  limit=req.page.limit, offset=req.page.offset)
        return rpc.WorkerSummary(items=items, total=total)

    @svc.rpc(rpc.CHECK_CONSISTENCY)
    async def check_consistency(req: rpc.ConsistencyRequest) -> rpc.Consistency:
        require_admin(req.actor, "the consistency check")
        async with svc.engine.connect() as conn:
            result = await h.consistency(conn)
        return rpc.Consistency(**result, checked_at=now_utc())

    return svc


def main() -> None:
    run(create_service())


if __name__ == "__main__":
    main()
