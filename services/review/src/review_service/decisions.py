"""Decisions: a manager's accept and reject, submissions entering review (auto-review
pools accept at once), the rules' accept-all and reject-all, and the auto-accept sweeper.

Review decides; it never carries a price: the ledger credits ``review.accepted`` from the
price it learnt when the pool opened.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from prometheus_client import Counter

from contracts.envelope import Envelope
from contracts.events import (
    AcceptAllAssignments,
    RejectAllAssignments,
    ReviewAccepted,
    ReviewRejected,
    TaskSubmitted,
)
from contracts.rpc import review as rpc
from review_service import domain
from review_service.context import ReviewContext
from review_service.queue import refused
from review_service.store import Decided, ReviewStore
from servicekit.router import Router
from servicekit.uow import UnitOfWork

router = Router()

DECISIONS = Counter("review_decisions_total", "Review decisions",
                    ["decision", "decided_by_kind"])
SUBMISSIONS_RECEIVED = Counter("review_submissions_received_total",
                               "Submissions that entered review", ["review_mode"])

Status = Literal["accepted", "rejected"]


_EVENT_MODEL: dict[Status, type[ReviewAccepted] | type[ReviewRejected]] = {
    "accepted": ReviewAccepted, "rejected": ReviewRejected}


def record_decisions(uow: UnitOfWork[ReviewStore], rows: Sequence[Decided], *, status: Status,
                     decided_by: str, decided_at: datetime, comment: str | None,
                     cause: Envelope | None = None) -> None:
    """The event of each decision, in the decision's transaction (``decided_by``: 'auto' or
    'rules', a metric label)."""
    model = _EVENT_MODEL[status]
    for r in rows:
        uow.record(model(assignment_id=r.assignment_id, task_id=r.task_id, pool_id=r.pool_id,
                         project_id=r.project_id, worker_id=r.worker_id, sandbox=r.sandbox,
                         decided_by=decided_by, decided_at=decided_at, comment=comment),
                   cause=cause)
    if rows:
        n = len(rows)
        uow.after_commit(lambda: DECISIONS.labels(status, decided_by).inc(n))


def _submission_row(event: TaskSubmitted, now: datetime) -> dict[str, Any]:
    """The queue row of a submission; an 'auto' pool's is decided already."""
    auto = event.review_mode == "auto"
    return {
        "assignment_id": event.assignment_id, "task_id": event.task_id, "pool_id": event.pool_id,
        "project_id": event.project_id, "worker_id": event.worker_id, "answers": event.answers,
        "comment": event.comment, "proof": event.proof, "taken_at": event.taken_at,
        "submitted_at": event.submitted_at, "review_mode": event.review_mode,
        "auto_accept_at": domain.auto_accept_at(event.submitted_at, event.review_mode,
                                                event.auto_accept_after_s),
        "is_control": event.is_control, "control_correct": event.control_correct,
        "status": "accepted" if auto else "pending", "lock_holder": None, "lock_until": None,
        "decided_by": domain.AUTO if auto else None, "decided_at": now if auto else None,
        "review_comment": None, "received_at": now, "sandbox": event.sandbox}


@router.consume_batch("task.submitted", name="task-submitted")
async def on_task_submitted(items: list[tuple[TaskSubmitted, Envelope]],
                            uow: UnitOfWork[ReviewStore], ctx: ReviewContext) -> None:
    """A submission enters the queue once per assignment; 'auto' pools accept it at once.
    A batch enters in one statement."""
    now = ctx.clock()
    new = await uow.store.enqueue_many(list({
        e.assignment_id: _submission_row(e, now) for e, _ in reversed(items)}.values()))
    received: collections.Counter[str] = collections.Counter()
    for event, env in items:
        if event.assignment_id not in new:
            continue  # submitted before (under another event id), or twice in this batch
        new.discard(event.assignment_id)
        received[event.review_mode] += 1
        if event.review_mode == "auto":
            record_decisions(uow, [Decided(event.assignment_id, event.task_id, event.pool_id,
                                           event.project_id, event.worker_id, event.sandbox)],
                             status="accepted", decided_by=domain.AUTO, decided_at=now,
                             comment=None, cause=env)
    if received:
        def count() -> None:
            for mode, n in received.items():
                SUBMISSIONS_RECEIVED.labels(mode).inc(n)
        uow.after_commit(count)


async def _decide_all_of_worker(uow: UnitOfWork[ReviewStore], ctx: ReviewContext, *,
                                worker_id: str, pool_id: str, status: Status,
                                comment: str | None, env: Envelope) -> None:
    now = ctx.clock()
    rows = await uow.store.decide_all_of_worker(worker_id=worker_id, pool_id=pool_id,
                                                status=status, decided_by=domain.RULES,
                                                now=now, comment=comment)
    record_decisions(uow, rows, status=status, decided_by=domain.RULES, decided_at=now,
                     comment=comment, cause=env)


@router.consume("rules.assignments.accept_all", name="rules-accept-all")
async def on_accept_all(event: AcceptAllAssignments, env: Envelope,
                        uow: UnitOfWork[ReviewStore], ctx: ReviewContext) -> None:
    """A rule accepts every pending submission of a worker in a pool (locks or not)."""
    await _decide_all_of_worker(uow, ctx, worker_id=event.worker_id, pool_id=event.pool_id,
                                status="accepted", comment=None, env=env)


@router.consume("rules.assignments.reject_all", name="rules-reject-all")
async def on_reject_all(event: RejectAllAssignments, env: Envelope,
                        uow: UnitOfWork[ReviewStore], ctx: ReviewContext) -> None:
    """A rule rejects every pending submission of a worker in a pool, with its comment."""
    await _decide_all_of_worker(uow, ctx, worker_id=event.worker_id, pool_id=event.pool_id,
                                status="rejected", comment=event.public_comment, env=env)


@router.periodic(lambda s: s.auto_accept_sweep_s, changes_state=True)
async def auto_accept_overdue(ctx: ReviewContext) -> None:
    """Accept manual submissions nobody decided within the pool's delay, a batch per
    transaction; paused while the platform is in emergency read-only mode.

    A submission a manager holds a live lock on waits for that decision (or for the lock
    to expire).
    """
    batch = ctx.settings.auto_accept_batch
    while not ctx.read_only.enabled:
        now = ctx.clock()
        async with ctx.uow() as uow:
            rows = await uow.store.accept_overdue(now=now, decided_by=domain.AUTO, limit=batch)
            record_decisions(uow, rows, status="accepted", decided_by=domain.AUTO,
                             decided_at=now, comment=None)
        if len(rows) < batch:
            return


async def _decide(req: rpc.SubmissionRef, ctx: ReviewContext, status: Status,
                  comment: str | None) -> rpc.DecisionResult:
    me, now = req.actor.user_id, ctx.clock()
    async with ctx.statement() as uow:
        # The row's ids are not known here: the statement fills them into the event.
        env, outbox = uow.outbox_params(_EVENT_MODEL[status](
            assignment_id=req.assignment_id, task_id="", pool_id="", project_id="",
            worker_id="", decided_by=me, decided_at=now, comment=comment))
        if not await uow.store.decide(assignment_id=req.assignment_id, status=status, me=me,
                                      now=now, comment=comment, outbox=outbox):
            uow.recorded.remove(env)  # the statement matched nothing: no event was written
            raise await refused(uow.store, req.assignment_id, domain.decision_refusal, me, now)
    DECISIONS.labels(status, "manager").inc()
    return rpc.DecisionResult(assignment_id=req.assignment_id, status=status, decided_by=me,
                              decided_at=now, comment=comment)


@router.rpc(rpc.ACCEPT)
async def accept(req: rpc.Accept, ctx: ReviewContext) -> rpc.DecisionResult:
    """Accept as the lock holder; review.accepted goes out with the decision."""
    return await _decide(req, ctx, "accepted", domain.clean_comment(req.comment))


@router.rpc(rpc.REJECT)
async def reject(req: rpc.Reject, ctx: ReviewContext) -> rpc.DecisionResult:
    """Reject as the lock holder, telling the worker why; emits review.rejected."""
    return await _decide(req, ctx, "rejected", domain.rejection_comment(req.comment))
