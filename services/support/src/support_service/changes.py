"""Configuration changes ("safe mode"): proposals kept until an admin confirms or rejects
them, manual patches and reverts.

Support keeps each change with the value its setting had when proposed (``before``) and
the proposed one (``after``). It never reads or writes the settings themselves: their
owners (tasks, rules, ledger) are called by the gateway, the only process that calls
services, which then records here what became of the change: applied, rejected (who and
why), failed (the owner's refusal) or stale (the value had changed since the proposal).
Only a proposed change can be decided, once: the decision is a conditional UPDATE, so two
confirmations cannot both be recorded.
"""

from __future__ import annotations

import uuid
from typing import Any

from contracts.rpc import support as rpc
from servicekit.errors import Conflict, Forbidden, Invalid, NotFound
from servicekit.router import Router
from support_service.context import SupportContext

router = Router()


def _value(setting: Any) -> Any:
    return setting.model_dump(mode="json")["value"]


def _money_filter(role: str) -> bool | None:
    """None: every change; False: none of the money settings (what a manager may see)."""
    return None if role == "admin" else False


@router.rpc(rpc.PROPOSE_CHANGE)
async def propose_change(req: rpc.ProposeChange, ctx: SupportContext) -> rpc.Change:
    """Store a proposed change (staff; a manual patch only by an admin). A change that
    would leave the value as it is, or a revert of a change that is not applied or was
    already reverted, is refused."""
    if req.patch and req.actor.role != "admin":
        raise Forbidden("forbidden", "only an admin applies a manual patch")
    if req.setting.kind in rpc.MONEY_KINDS and req.actor.role != "admin":
        raise Forbidden("forbidden", "only an admin proposes a money setting")
    after = _value(req.setting)
    if after == req.before:
        raise Invalid("change_no_op", "the proposed value is the current value",
                      details={"value": after})
    now = ctx.clock()
    change = rpc.Change(
        change_id=str(uuid.uuid4()), kind=req.setting.kind, target=rpc.setting_target(req.setting),
        before=req.before, after=after, money=req.setting.kind in rpc.MONEY_KINDS,
        state="proposed", source=req.source, patch=req.patch, reason=req.reason.strip(),
        reverts=req.reverts, proposed_by=req.actor.user_id, proposed_role=req.actor.role,
        created_at=now)
    async with ctx.uow() as uow:
        if req.reverts is not None:
            undone = await uow.store.get_change(req.reverts, lock=True)
            if undone is None:
                raise NotFound("change_not_found", f"no change {req.reverts}")
            if undone.state != "applied" or undone.reverted_by is not None:
                raise Conflict("change_not_revertible",
                               "only an applied change that was not reverted yet can be "
                               "reverted", details={"state": undone.state,
                                                    "reverted_by": undone.reverted_by})
        if not await uow.store.add_change(change.model_dump()):
            pending = await uow.store.open_revert_of(req.reverts or "")
            raise Conflict("revert_pending", "a revert of this change is already proposed",
                           details={"change_id": pending})
    return change


@router.rpc(rpc.LIST_CHANGES)
async def list_changes(req: rpc.ChangeList, ctx: SupportContext) -> rpc.Changes:
    """Changes, newest first, optionally of one state and kind (staff; a manager never
    sees a money setting: the worker share is for admins only)."""
    async with ctx.read() as r:
        items, total = await r.store.list_changes(state=req.state, kind=req.kind,
                                                  money=_money_filter(req.actor.role),
                                                  limit=req.page.limit, offset=req.page.offset)
    return rpc.Changes(items=items, total=total)


@router.rpc(rpc.GET_CHANGE)
async def get_change(req: rpc.ChangeRef, ctx: SupportContext) -> rpc.Change:
    """One change with its diff (staff)."""
    async with ctx.read() as r:
        change = await r.store.get_change(req.change_id)
    if change is None or (change.money and _money_filter(req.actor.role) is False):
        raise NotFound("change_not_found", f"no change {req.change_id}")
    return change


@router.rpc(rpc.DECIDE_CHANGE)
async def decide_change(req: rpc.DecideChange, ctx: SupportContext) -> rpc.Change:
    """Record what became of a proposed change (admin; the gateway calls this after the
    owning service answered). A rejection needs a reason; an applied revert marks the
    change it undid."""
    reason = req.reason.strip()
    if req.outcome == "rejected" and not reason:
        raise Invalid("reason_required", "say why the change is rejected")
    values: dict[str, Any] = {
        "state": req.outcome, "decided_by": req.actor.user_id, "decided_at": ctx.clock(),
        "decision_reason": reason or None,
        "current": req.current if req.outcome == "stale" else None,
        "error": req.error if req.outcome == "failed" else None}
    async with ctx.uow() as uow:
        change = await uow.store.decide_change(req.change_id, values)
        if change is None:
            found = await uow.store.get_change(req.change_id)
            if found is None:
                raise NotFound("change_not_found", f"no change {req.change_id}")
            raise Conflict("change_not_proposed", f"the change is already {found.state}",
                           details={"state": found.state})
        if change.state == "applied" and change.reverts is not None:
            await uow.store.mark_reverted(change.reverts, change.change_id)
    return change
