"""The worker share (admins only, by the specs' roles): per pool, kept with the pool's
frozen price, and a platform-wide default; every change audited."""

from __future__ import annotations

from contracts.rpc import ledger as rpc
from ledger_service.context import LedgerContext
from ledger_service.domain import (
    DEFAULT_SHARE_KEY,
    LedgerRuleError,
    ShareSetting,
    effective_share,
    format_share,
    parse_share,
)
from servicekit.errors import Invalid
from servicekit.router import Router

router = Router()


def _check_pool_id(pool_id: str | None) -> None:
    if pool_id == DEFAULT_SHARE_KEY:
        raise Invalid("invalid_pool_id", f"{DEFAULT_SHARE_KEY!r} is not a pool id: "
                                         "send pool_id null for the default share")


def _view(pool_id: str | None, s: ShareSetting) -> rpc.ShareView:
    return rpc.ShareView(pool_id=pool_id, share=format_share(s.share_bps), share_bps=s.share_bps,
                         source=s.source, updated_at=s.updated_at, updated_by=s.updated_by)


@router.rpc(rpc.GET_SHARE)
async def get_share(req: rpc.GetShare, ctx: LedgerContext) -> rpc.ShareView:
    """The share a pool's acceptances are credited with (its own, or the default it falls
    back to), or the default's."""
    _check_pool_id(req.pool_id)
    async with ctx.read() as r:
        own, default = await r.store.shares_of(req.pool_id)
    return _view(req.pool_id, effective_share(own, default, ctx.settings.default_share_bps))


@router.rpc(rpc.SET_SHARE)
async def set_share(req: rpc.SetShare, ctx: LedgerContext) -> rpc.ShareView:
    """Set a pool's share (the gateway checked the pool exists; it may still be a draft)
    or the default; the change is audited with its old value."""
    _check_pool_id(req.pool_id)
    try:
        bps = parse_share(req.share)
    except LedgerRuleError as exc:
        raise Invalid(exc.code, exc.message, details={"share": str(req.share)}) from None
    by, now = req.actor.user_id, ctx.clock()
    async with ctx.uow() as uow:
        if req.pool_id is None:
            await uow.store.set_default_share(bps, by=by, now=now)
        else:
            await uow.store.set_pool_share(req.pool_id, bps, by=by, now=now)
    return _view(req.pool_id, ShareSetting(bps, "default" if req.pool_id is None else "pool",
                                           now, by))


@router.rpc(rpc.LIST_SHARES)
async def list_shares(req: rpc.ListShares, ctx: LedgerContext) -> rpc.Shares:
    """The default share and every pool that has its own."""
    async with ctx.read() as r:
        _, default = await r.store.shares_of(None)
        own = await r.store.own_shares()
    return rpc.Shares(default=_view(None, effective_share(None, default,
                                                          ctx.settings.default_share_bps)),
                      pools=[_view(pool_id, s) for pool_id, s in own])


@router.rpc(rpc.SHARE_AUDIT)
async def share_audit(req: rpc.ShareAuditRequest, ctx: LedgerContext) -> rpc.ShareAudit:
    """Every change of a share, newest first: who, when, old and new."""
    async with ctx.read() as r:
        items, total = await r.store.share_audit(req.pool_id, limit=req.page.limit,
                                                 offset=req.page.offset)
    return rpc.ShareAudit(items=items, total=total)
