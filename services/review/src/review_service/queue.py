"""The pending-review queue: list, look at one, lock, lock the next, unlock.

Only managers and admins reach these (the specs' roles); no answer carries money, since
review keeps none. A lock or an unlock is one statement, run without BEGIN/COMMIT.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from contracts.rpc import review as rpc
from review_service import domain
from review_service.context import ReviewContext
from review_service.domain import LockState
from review_service.store import ReviewStore
from servicekit.errors import Conflict, NotFound, ServiceError
from servicekit.router import Router

router = Router()

Refusal = Callable[[str, LockState | None, str, datetime], ServiceError | None]


async def refused(store: ReviewStore, assignment_id: str, why: Refusal, me: str,
                  now: datetime) -> ServiceError:
    """What a caller whose conditional change matched nothing is told (one look at the row)."""
    err = why(assignment_id, await store.lock_state(assignment_id), me, now)
    # None: the state changed between the change and the look (a lock just expired).
    return err or Conflict("retry", f"submission {assignment_id} changed meanwhile: retry")


@router.rpc(rpc.LIST_PENDING)
async def list_pending(req: rpc.ListPending, ctx: ReviewContext) -> rpc.Submissions:
    """The queue, oldest submission first, optionally of one pool or only the free ones."""
    async with ctx.read() as r:
        items, total = await r.store.list_pending(
            pool_id=req.pool_id, only_free=req.only_free, now=ctx.clock(),
            limit=req.page.limit, offset=req.page.offset)
    return rpc.Submissions(items=items, total=total)


@router.rpc(rpc.GET)
async def get(req: rpc.SubmissionRef, ctx: ReviewContext) -> rpc.Submission:
    """One submission with its lock and decision."""
    async with ctx.read() as r:
        found = await r.store.get(req.assignment_id)
    if found is None:
        raise domain.SubmissionNotFound(req.assignment_id)
    return found


@router.rpc(rpc.LOCK)
async def lock(req: rpc.SubmissionRef, ctx: ReviewContext) -> rpc.LockInfo:
    """Take (or extend) the review lock; refused while another manager holds it."""
    me, now = req.actor.user_id, ctx.clock()
    until = domain.lock_deadline(now, ctx.settings.lock_ttl_s)
    async with ctx.statement() as uow:
        if not await uow.store.lock(req.assignment_id, me=me, now=now, until=until):
            raise await refused(uow.store, req.assignment_id, domain.lock_refusal, me, now)
    return rpc.LockInfo(assignment_id=req.assignment_id, locked=True, lock_holder=me,
                        lock_until=until)


@router.rpc(rpc.LOCK_NEXT)
async def lock_next(req: rpc.LockNext, ctx: ReviewContext) -> rpc.Submission:
    """The next submission to review, locked for the caller: one statement, no race between
    managers; 404 ``no_pending`` when nothing waits."""
    me, now = req.actor.user_id, ctx.clock()
    until = domain.lock_deadline(now, ctx.settings.lock_ttl_s)
    async with ctx.statement() as uow:
        found = await uow.store.lock_next(me=me, now=now, until=until, pool_id=req.pool_id)
    if found is None:
        raise NotFound("no_pending", "no submission is waiting for review right now")
    return found


@router.rpc(rpc.UNLOCK)
async def unlock(req: rpc.SubmissionRef, ctx: ReviewContext) -> rpc.LockInfo:
    """Give one's own lock back (a free submission stays free)."""
    me, now = req.actor.user_id, ctx.clock()
    async with ctx.statement() as uow:
        if not await uow.store.unlock(req.assignment_id, me=me, now=now):
            raise await refused(uow.store, req.assignment_id, domain.unlock_refusal, me, now)
    return rpc.LockInfo(assignment_id=req.assignment_id, locked=False)
