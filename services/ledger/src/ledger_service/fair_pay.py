"""The owner's fair-pay floor per currency (admins only, by the specs' roles): minor units
per hour a worker should earn at least. The ledger only keeps it; the gateway compares a
pool's estimate with it when the pool opens (it alone may combine price, share and pace)."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert

from contracts.rpc import ledger as rpc
from ledger_service.context import LedgerContext
from ledger_service.db import fair_pay_floors
from servicekit.router import Router

router = Router()

F = fair_pay_floors.c
_ALL = select(F.currency, F.floor_minor_per_hour, F.updated_by, F.updated_at).order_by(F.currency)
_LOCK = select(F.floor_minor_per_hour).where(F.currency == bindparam("cur")).with_for_update()
_new = insert(fair_pay_floors)
_SET = _new.on_conflict_do_update(index_elements=["currency"], set_={
    c: _new.excluded[c] for c in ("floor_minor_per_hour", "updated_by", "updated_at")})
_OFF = delete(fair_pay_floors).where(F.currency == bindparam("cur"))


@router.rpc(rpc.LIST_FAIR_PAY_FLOORS)
async def list_floors(req: rpc.ListFairPayFloors, ctx: LedgerContext) -> rpc.FairPayFloors:
    """Every currency's floor; a currency without one has the floor off."""
    async with ctx.read() as r:
        rows = (await r.store.conn.execute(_ALL)).all()
    return rpc.FairPayFloors(items=[rpc.FairPayFloor.model_validate(dict(row._mapping))
                                    for row in rows])


@router.rpc(rpc.SET_FAIR_PAY_FLOOR)
async def set_floor(req: rpc.SetFairPayFloor, ctx: LedgerContext) -> rpc.FairPayFloorChange:
    """Set (or, with null, turn off) a currency's floor; answers the old and new values
    for the gateway's audit record."""
    async with ctx.uow() as uow:
        conn = uow.store.conn
        old = (await conn.execute(_LOCK, {"cur": req.currency})).scalar_one_or_none()
        if req.floor_minor_per_hour is None:
            await conn.execute(_OFF, {"cur": req.currency})
        else:
            await conn.execute(_SET, {"currency": req.currency,
                                      "floor_minor_per_hour": req.floor_minor_per_hour,
                                      "updated_by": req.actor.user_id,
                                      "updated_at": ctx.clock()})
    return rpc.FairPayFloorChange(currency=req.currency, old_minor_per_hour=old,
                                  new_minor_per_hour=req.floor_minor_per_hour)
