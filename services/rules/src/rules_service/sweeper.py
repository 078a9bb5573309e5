"""Restrictions end: when their time is up (the sweeper), or by an admin's hand."""

from __future__ import annotations

from datetime import datetime

from contracts.events import RestrictionLifted
from contracts.rpc import rules as rpc
from rules_service.collectors import new_state
from rules_service.context import RulesContext
from rules_service.runner import decode_state, encode_state
from rules_service.settings import RulesSettings
from rules_service.store import DueRestriction, RulesStore
from servicekit.errors import NotFound
from servicekit.router import Router
from servicekit.uow import UnitOfWork

router = Router()
BATCH = 500


async def lift(uow: UnitOfWork[RulesStore], due: list[DueRestriction], now: datetime) -> None:
    """End these restrictions (``rules.restriction.lifted``); the rule's history of each
    worker starts over, as it does when a temporary restriction runs out."""
    if not due:
        return
    await uow.store.lift_restrictions([r.restriction_id for r in due], now)
    for r in due:
        data = await uow.store.state_row(r.worker_id, r.pool_key)
        if data and decode_state(data.get(r.rule_id)).get("rid") == r.restriction_id:
            await uow.store.put_state_row(
                r.worker_id, r.pool_key, {**data, r.rule_id: encode_state(new_state())}, now)
        uow.record(RestrictionLifted(restriction_id=r.restriction_id, worker_id=r.worker_id,
                                     lifted_at=now))


async def lift_due(ctx: RulesContext, limit: int = BATCH) -> int:
    """End the temporary restrictions whose time is up. Returns how many ended."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        due = await uow.store.due_restrictions(now, limit)
        await lift(uow, due, now)
    return len(due)


def _interval(settings: RulesSettings) -> float:
    return settings.sweep_interval_s


@router.periodic(_interval)
async def lift_restrictions(ctx: RulesContext) -> None:
    """Lift temporary restrictions whose time is up, a batch at a time."""
    while await lift_due(ctx) >= BATCH:
        pass


@router.rpc(rpc.LIFT_RESTRICTION)
async def lift_restriction(req: rpc.LiftRestriction, ctx: RulesContext) -> rpc.Restriction:
    """Lift a restriction before its time (admin); one already lifted stays as it is."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        found = await uow.store.restriction(req.restriction_id, lock=True)
        if found is None:
            raise NotFound("restriction_not_found", f"no restriction {req.restriction_id}")
        shown, due = found
        if shown.lifted_at is None:
            await lift(uow, [due], now)
            shown = shown.model_copy(update={"lifted_at": now})
    return shown
