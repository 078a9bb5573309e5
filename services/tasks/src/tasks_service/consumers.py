"""What other services decided about tasks: review outcomes (``review.accepted`` /
``review.rejected``) and the rules' overlap changes (``rules.overlap.changed``).

Rules' actions on workers (restrictions, skills) are applied in :mod:`tasks_service.workers`.
"""

from __future__ import annotations

import logging

from contracts.envelope import Envelope
from contracts.events import OverlapChanged, ReviewAccepted, ReviewRejected
from servicekit.router import Router
from servicekit.uow import UnitOfWork
from tasks_service import results
from tasks_service.catalog import pool_opened
from tasks_service.context import TasksContext
from tasks_service.store import TasksStore

log = logging.getLogger("tasks_service")

router = Router()


def _not_submitted(decision: str, assignment_id: str) -> None:
    log.warning("%s for %s: not a submitted assignment, ignored", decision, assignment_id)


@router.consume("review.accepted", name="review-accepted")
async def on_review_accepted(event: ReviewAccepted, env: Envelope, uow: UnitOfWork[TasksStore],
                             ctx: TasksContext) -> None:
    """SUBMITTED -> ACCEPTED (or REJECTED -> ACCEPTED: an upheld appeal) with the reviewer;
    the task counts one more accepted answer and the pool's pace one more duration (fair
    pay), in one statement; the results slice reads more only for a pool with an exam or
    dynamic overlap."""
    decided = await uow.store.accept(event.assignment_id, event.decided_at, event.comment,
                                     event.decided_by)
    if decided is None:
        _not_submitted("accepted", event.assignment_id)
        return
    await results.after_acceptance(uow, event, env, decided)


@router.consume("review.rejected", name="review-rejected")
async def on_review_rejected(event: ReviewRejected, env: Envelope, uow: UnitOfWork[TasksStore],
                             ctx: TasksContext) -> None:
    """SUBMITTED -> REJECTED with the reviewer; the overlap slot frees, so the task returns
    to the pool (one statement)."""
    if not await uow.store.reject(event.assignment_id, event.decided_at, event.comment,
                                  event.decided_by):
        _not_submitted("rejected", event.assignment_id)


@router.consume("rules.overlap.changed", name="overlap-changed")
async def on_overlap_changed(event: OverlapChanged, env: Envelope, uow: UnitOfWork[TasksStore],
                             ctx: TasksContext) -> None:
    """Add to the overlap of the listed tasks and re-open the pool if it was closed (a
    re-open records task.pool_opened, like an admin's)."""
    await uow.store.add_overlap(event.pool_id, event.task_ids, event.add)
    now = ctx.clock()
    reopened = await uow.store.reopen_if_closed(event.pool_id, now)
    if reopened is not None:
        uow.record(pool_opened(reopened, now), cause=env)
