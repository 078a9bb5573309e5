"""Appeals: a worker contests a rejection or a restriction once, a manager decides.

Review owns appeals: it owns the rejection being contested, and an upheld appeal of a
rejection turns it into an acceptance in the same transaction that records
``review.accepted``, so the ledger pays it the normal way (once per assignment). An
upheld appeal of a restriction is carried by ``review.appeal.decided`` to the rules
service, which owns restrictions and lifts it. A decision sent twice changes nothing
the second time (the appeal row is locked and read first): no second event, no second
credit.
"""

from __future__ import annotations

import uuid

from contracts.events import AppealDecided, ReviewAccepted
from contracts.rpc import review as rpc
from review_service.context import ReviewContext
from servicekit.errors import Conflict, Forbidden, NotFound
from servicekit.router import Router

router = Router()


def _shown(appeal: rpc.Appeal, role: str) -> rpc.Appeal:
    """A worker's view hides which manager decided (as decisions do)."""
    return appeal.model_copy(update={"decided_by": None}) if role == "worker" else appeal


@router.rpc(rpc.FILE_APPEAL)
async def file_appeal(req: rpc.FileAppeal, ctx: ReviewContext) -> rpc.Appeal:
    """File an appeal once per subject. A rejection must be the caller's and rejected; a
    restriction is checked by the gateway (the rules service owns restrictions)."""
    me, now = req.actor.user_id, ctx.clock()
    pool_id = req.pool_id
    async with ctx.uow() as uow:
        if req.kind == "rejection":
            sub = await uow.store.get(req.subject_id)
            if sub is None or sub.worker_id != me:
                raise NotFound("appeal_subject_not_found",
                               f"you have no submission {req.subject_id}")
            if sub.status != "rejected":
                raise Conflict("not_rejected", "only a rejected submission can be appealed")
            pool_id = sub.pool_id
        row = {"appeal_id": str(uuid.uuid4()), "worker_id": me, "kind": req.kind,
               "subject_id": req.subject_id, "pool_id": pool_id, "message": req.message,
               "status": "pending", "reply": None, "filed_at": now, "decided_by": None,
               "decided_at": None}
        if not await uow.store.add_appeal(row):
            raise Conflict("appeal_exists", f"you have appealed this {req.kind} already")
    return _shown(rpc.Appeal(**row), req.actor.role)


@router.rpc(rpc.LIST_APPEALS)
async def list_appeals(req: rpc.ListAppeals, ctx: ReviewContext) -> rpc.Appeals:
    """Appeals, newest first: a worker's own (without who decided), or any for staff."""
    worker = req.worker_id
    if req.actor.role == "worker":
        if worker not in (None, req.actor.user_id):
            raise Forbidden("forbidden", "a worker sees only their own appeals")
        worker = req.actor.user_id
    async with ctx.read() as r:
        items, total = await r.store.list_appeals(worker_id=worker, status=req.status,
                                                  limit=req.page.limit,
                                                  offset=req.page.offset)
    return rpc.Appeals(items=[_shown(a, req.actor.role) for a in items], total=total)


@router.rpc(rpc.GET_APPEAL)
async def get_appeal(req: rpc.AppealRef, ctx: ReviewContext) -> rpc.Appeal:
    async with ctx.read() as r:
        appeal = await r.store.appeal(req.appeal_id)
    if appeal is None:
        raise NotFound("appeal_not_found", f"no appeal {req.appeal_id}")
    return appeal


@router.rpc(rpc.DECIDE_APPEAL)
async def decide_appeal(req: rpc.DecideAppeal, ctx: ReviewContext) -> rpc.Appeal:
    """Uphold or deny. Upholding a rejection accepts the submission (``review.accepted``,
    which the ledger credits); upholding a restriction lifts it (``review.appeal.decided``
    to the rules service). The same decision again returns the appeal as it is; the
    other decision after one is refused (``appeal_decided``)."""
    me, now = req.actor.user_id, ctx.clock()
    async with ctx.uow() as uow:
        appeal = await uow.store.appeal(req.appeal_id, lock=True)
        if appeal is None:
            raise NotFound("appeal_not_found", f"no appeal {req.appeal_id}")
        if appeal.status != "pending":
            if appeal.status == req.outcome:
                return appeal
            raise Conflict("appeal_decided", f"the appeal was {appeal.status} already")
        await uow.store.decide_appeal(req.appeal_id, status=req.outcome, reply=req.reply,
                                      me=me, now=now)
        if appeal.kind == "rejection" and req.outcome == "upheld":
            row = await uow.store.reaccept(appeal.subject_id, me=me, now=now,
                                           comment=req.reply)
            if row is not None:
                uow.record(ReviewAccepted(
                    assignment_id=row.assignment_id, task_id=row.task_id,
                    pool_id=row.pool_id, project_id=row.project_id, worker_id=row.worker_id,
                    sandbox=row.sandbox, decided_by=me, decided_at=now, comment=req.reply))
        uow.record(AppealDecided(appeal_id=appeal.appeal_id, worker_id=appeal.worker_id,
                                 kind=appeal.kind, subject_id=appeal.subject_id,
                                 outcome=req.outcome, decided_by=me, decided_at=now))
    return appeal.model_copy(update={"status": req.outcome, "reply": req.reply,
                                     "decided_by": me, "decided_at": now})
