"""Postings: the ledger learns each pool's frozen price when it opens, credits the worker's
share of it when an assignment is accepted, and credits rules' bonuses.

Exactly once: each consumer's inbox, plus a UNIQUE business key in the database (one
credit per assignment, one per bonus id).
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from contracts.envelope import Envelope
from contracts.events import BonusGranted, LedgerCredited, PoolOpened, ReviewAccepted
from contracts.money import CURRENCIES
from ledger_service.budgets import funded_credit
from ledger_service.context import LedgerContext
from ledger_service.domain import (
    Transfer,
    assignment_credit_legs,
    bonus_credit_legs,
    check_currency,
    effective_share,
    new_id,
)
from ledger_service.store import LedgerStore
from servicekit.errors import NotReady, UnprocessableEvent
from servicekit.router import Router
from servicekit.uow import UnitOfWork

log = logging.getLogger("ledger.postings")

router = Router()

# Money credited (minor units), counted once the transfer is committed: the worker's part
# and the platform's (platform overview "Money")
CREDITED = Counter("ledger_credited_minor_total", "Money credited, in minor units",
                   ["currency", "party"])
for _currency in CURRENCIES:  # at 0 from the start: a dashboard shows 0, not "no data"
    for _party in ("worker", "platform"):
        CREDITED.labels(_currency, _party)


def count_credit(uow: UnitOfWork[LedgerStore], currency: str, *, worker: int,
                 platform: int = 0) -> None:
    def count() -> None:
        CREDITED.labels(currency, "worker").inc(worker)
        if platform:
            CREDITED.labels(currency, "platform").inc(platform)

    uow.after_commit(count)


@router.consume("task.pool_opened", name="pool-opened")
async def on_pool_opened(event: PoolOpened, env: Envelope, uow: UnitOfWork[LedgerStore],
                         ctx: LedgerContext) -> None:
    """Keep a pool's price, frozen when it opened (sent again on every re-open, with the
    same price); a re-open with another price is refused (dead-lettered) and the first
    price stays. A sandbox pool's price is not kept: nothing of it is ever paid."""
    if event.sandbox:
        return
    kept = await uow.store.open_pool(pool_id=event.pool_id, project_id=event.project_id,
                                     price_minor=event.price_minor,
                                     currency=check_currency(event.currency),
                                     opened_at=event.opened_at)
    if kept != (event.price_minor, event.currency):
        raise UnprocessableEvent(
            f"pool {event.pool_id} opened again at {event.price_minor} {event.currency}, "
            f"but its price is frozen at {kept[0]} {kept[1]}")


@router.consume("review.accepted", name="credit-accepted")
async def credit_accepted_assignment(event: ReviewAccepted, env: Envelope,
                                     uow: UnitOfWork[LedgerStore], ctx: LedgerContext) -> None:
    """Credit the worker's share of the pool's frozen price, once per assignment; the
    platform keeps the rest. Waits (retried in place, never dead-lettered) while the
    ledger does not know the pool's price yet. A sandbox acceptance (staff trying a sandbox
    pool) moves no money: only the inbox records that it came."""
    if event.sandbox:
        log.info("sandbox acceptance %s: nothing credited", event.assignment_id)
        return
    terms = await uow.store.pool_terms(event.pool_id)
    if terms is None:
        raise NotReady(f"the price of pool {event.pool_id} is not known yet "
                       "(its task.pool_opened has not arrived)")
    share = effective_share(terms.pool_share, terms.default_share,
                            ctx.settings.default_share_bps)
    legs, worker_minor = assignment_credit_legs(
        worker_id=event.worker_id, currency=terms.currency, price_minor=terms.price_minor,
        share_bps=share.share_bps)
    now = ctx.clock()
    transfer = Transfer(
        transfer_id=new_id(), kind="assignment", currency=terms.currency,
        worker_id=event.worker_id, pool_id=event.pool_id, project_id=event.project_id,
        assignment_id=event.assignment_id, cause_event_id=env.event_id,
        created_by=event.decided_by, created_at=now)
    if not await funded_credit(uow, transfer, legs, unique_key="assignment_id",
                               prefer="reserve", link=terms.budget):
        log.info("assignment %s already credited; event %s ignored", event.assignment_id,
                 env.event_id)
        return
    count_credit(uow, terms.currency, worker=worker_minor,
                 platform=terms.price_minor - worker_minor)
    uow.record(LedgerCredited(
        transfer_id=transfer.transfer_id, worker_id=event.worker_id, pool_id=event.pool_id,
        project_id=event.project_id, assignment_id=event.assignment_id, kind="assignment",
        amount_minor=worker_minor, currency=terms.currency, credited_at=now), cause=env)


@router.consume("rules.bonus.granted", name="credit-bonus")
async def credit_bonus(event: BonusGranted, env: Envelope, uow: UnitOfWork[LedgerStore],
                       ctx: LedgerContext) -> None:
    """Credit a rule's bonus in full, once per bonus id."""
    legs = bonus_credit_legs(worker_id=event.worker_id, currency=event.currency,
                             amount_minor=event.amount_minor)
    now = ctx.clock()
    transfer = Transfer(
        transfer_id=new_id(), kind="bonus", currency=event.currency, worker_id=event.worker_id,
        pool_id=event.pool_id, bonus_id=event.bonus_id, cause_event_id=env.event_id,
        created_by=f"rule:{event.rule_id}", created_at=now)
    if not await funded_credit(uow, transfer, legs, unique_key="bonus_id", prefer="available"):
        log.info("bonus %s already credited; event %s ignored", event.bonus_id, env.event_id)
        return
    count_credit(uow, event.currency, worker=event.amount_minor)
    uow.record(LedgerCredited(
        transfer_id=transfer.transfer_id, worker_id=event.worker_id, pool_id=event.pool_id,
        kind="bonus", amount_minor=event.amount_minor, currency=event.currency,
        credited_at=now), cause=env)
