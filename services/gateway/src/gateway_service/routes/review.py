# mypy: disable-error-code="valid-type"
"""Review: the managers' pending queue, locks and decisions; a worker's own decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from contracts.rpc import Instant, Page
from contracts.rpc import review as review_rpc
from gateway_service.deps import Rpc, StaffActor, WorkerActor
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.common import QueryId, page

router = APIRouter(tags=["review"])

AssignmentId = Annotated[str, Path(min_length=1, max_length=64)]


def _utc(at: datetime | None) -> datetime | None:
    """A query time without a timezone is read as UTC."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


AcceptBody = body_of(review_rpc.Accept, "AcceptBody", without={"assignment_id"})
RejectBody = body_of(review_rpc.Reject, "RejectBody", without={"assignment_id"},
                     doc={"comment": "why the work was rejected: shown to the worker"})
NextBody = body_of(review_rpc.LockNext, "NextBody",
                   doc={"pool_id": "only this pool's submissions"})


@router.get("/review/pending", response_model=review_rpc.Submissions,
            summary="Pending submissions, oldest first (optionally of one pool)")
async def list_pending(actor: StaffActor, rpc: Rpc, p: Annotated[Page, Depends(page)],
                       pool_id: QueryId = None,
                       only_free: Annotated[bool, Query(
                           description="hide submissions another manager holds")] = False,
) -> review_rpc.Submissions:
    return await rpc.call(review_rpc.LIST_PENDING, review_rpc.ListPending(
        actor=actor, pool_id=pool_id, only_free=only_free, page=p))


@router.get("/review/submissions/{assignment_id}", response_model=review_rpc.Submission,
            summary="One submission with its answers, proof and lock")
async def get_submission(actor: StaffActor, rpc: Rpc,
                         assignment_id: AssignmentId) -> review_rpc.Submission:
    return await rpc.call(review_rpc.GET, review_rpc.SubmissionRef(
        actor=actor, assignment_id=assignment_id))


@router.post("/review/next", response_model=review_rpc.Submission,
             summary="Lock the oldest free submission for me and show it (404 no_pending)")
async def lock_next(actor: StaffActor, rpc: Rpc,
                    body: NextBody | None = None) -> review_rpc.Submission:
    return await rpc.call(review_rpc.LOCK_NEXT, request_of(body, review_rpc.LockNext,
                                                           actor=actor))


@router.post("/review/submissions/{assignment_id}/lock", response_model=review_rpc.LockInfo,
             summary="Lock a submission for review (re-locking extends the lock)")
async def lock(actor: StaffActor, rpc: Rpc, assignment_id: AssignmentId) -> review_rpc.LockInfo:
    return await rpc.call(review_rpc.LOCK, review_rpc.SubmissionRef(
        actor=actor, assignment_id=assignment_id))


@router.post("/review/submissions/{assignment_id}/unlock", response_model=review_rpc.LockInfo,
             summary="Release one's own lock")
async def unlock(actor: StaffActor, rpc: Rpc, assignment_id: AssignmentId) -> review_rpc.LockInfo:
    return await rpc.call(review_rpc.UNLOCK, review_rpc.SubmissionRef(
        actor=actor, assignment_id=assignment_id))


@router.post("/review/submissions/{assignment_id}/accept",
             response_model=review_rpc.DecisionResult,
             summary="Accept a locked submission (the worker is credited automatically)")
async def accept(actor: StaffActor, rpc: Rpc, assignment_id: AssignmentId,
                 body: AcceptBody | None = None) -> review_rpc.DecisionResult:
    return await rpc.call(review_rpc.ACCEPT, request_of(
        body, review_rpc.Accept, actor=actor, assignment_id=assignment_id))


@router.post("/review/submissions/{assignment_id}/reject",
             response_model=review_rpc.DecisionResult,
             summary="Reject a locked submission with a comment for the worker")
async def reject(actor: StaffActor, rpc: Rpc, assignment_id: AssignmentId,
                 body: RejectBody) -> review_rpc.DecisionResult:
    return await rpc.call(review_rpc.REJECT, request_of(
        body, review_rpc.Reject, actor=actor, assignment_id=assignment_id))


@router.get("/review/decisions", response_model=review_rpc.Decisions,
            summary="Decision history with filters (pool, worker, status, reviewer, period)")
async def decisions(actor: StaffActor, rpc: Rpc, p: Annotated[Page, Depends(page)],
                    pool_id: QueryId = None, worker_id: QueryId = None,
                    status: Literal["accepted", "rejected"] | None = None,
                    decided_by: QueryId = None, since: Instant | None = None,
                    until: Instant | None = None) -> review_rpc.Decisions:
    return await rpc.call(review_rpc.MY_DECISIONS, review_rpc.DecisionsRequest(
        actor=actor, pool_id=pool_id, worker_id=worker_id, status=status,
        decided_by=decided_by, since=_utc(since), until=_utc(until), page=p))


@router.get("/worker/decisions", response_model=review_rpc.Decisions,
            summary="My review decisions: accepted and rejected work with the comments",
            tags=["worker"])
async def my_decisions(actor: WorkerActor, rpc: Rpc, p: Annotated[Page, Depends(page)],
                       pool_id: QueryId = None,
                       status: Literal["accepted", "rejected"] | None = None,
                       since: Instant | None = None,
                       until: Instant | None = None) -> review_rpc.Decisions:
    return await rpc.call(review_rpc.MY_DECISIONS, review_rpc.DecisionsRequest(
        actor=actor, pool_id=pool_id, status=status, since=_utc(since), until=_utc(until), page=p))
