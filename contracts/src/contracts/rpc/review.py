"""Review service RPCs: the pending-review queue, locks, decisions and statistics.

No response of this service carries a price or a currency: the gross price of a
task would reveal the hidden worker share. Review keeps none: it decides, and the
ledger credits ``review.accepted`` from the price it learnt when the pool opened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from contracts.rpc import ROLES, STAFF, WORKER, Instant, Page, RpcRequest, rpc

SubmissionStatus = Literal["pending", "accepted", "rejected"]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value

# --------------------------------------------------------------------- requests


class ListPending(RpcRequest):
    """Pending submissions, oldest first (manager/admin)."""

    pool_id: str | None = None
    only_free: bool = Field(False, description="hide submissions another manager holds")
    page: Page = Page()


class LockNext(RpcRequest):
    """Lock the oldest free pending submission (of one pool) for the caller (manager/admin)."""

    pool_id: str | None = Field(None, min_length=1, max_length=64)


class SubmissionRef(RpcRequest):
    """One submission by its assignment id (get, lock, unlock, accept)."""

    assignment_id: str = Field(min_length=1, max_length=64)


class Accept(SubmissionRef):
    comment: str | None = Field(None, max_length=2000)


class Reject(SubmissionRef):
    comment: str | None = Field(None, max_length=2000,
                                description="required: shown to the worker")


class StatsRequest(RpcRequest):
    pool_id: str = Field(min_length=1, max_length=64)
    top: int = Field(10, ge=1, le=100)


class DecisionsRequest(RpcRequest):
    """Decided submissions, newest first.

    A worker always sees only their own (the filters ``worker_id`` and
    ``decided_by`` are refused for workers); managers and admins may filter.
    """

    pool_id: str | None = None
    worker_id: str | None = None
    status: Literal["accepted", "rejected"] | None = None
    decided_by: str | None = None
    # decided_at >= since and < until; a time without a timezone is taken as UTC.
    since: Instant | None = None
    until: Instant | None = None
    page: Page = Page()


# -------------------------------------------------------------------- responses


class Submission(BaseModel):
    """A submission as a manager sees it (no price)."""

    assignment_id: str
    task_id: str
    pool_id: str
    project_id: str
    worker_id: str
    answers: dict[str, Any]
    comment: str | None = None
    proof: str | None = None
    taken_at: datetime
    submitted_at: datetime
    review_mode: Literal["manual", "auto"]
    auto_accept_at: datetime | None = None
    is_control: bool = False
    control_correct: bool | None = None
    status: SubmissionStatus
    lock_holder: str | None = None
    lock_until: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    review_comment: str | None = None
    sandbox: bool = Field(False, description="staff trying a sandbox pool: decided as usual, "
                          "never paid or counted")


class Submissions(BaseModel):
    items: list[Submission]
    total: int


class LockInfo(BaseModel):
    assignment_id: str
    locked: bool
    lock_holder: str | None = None
    lock_until: datetime | None = None


class DecisionResult(BaseModel):
    assignment_id: str
    status: Literal["accepted", "rejected"]
    decided_by: str
    decided_at: datetime
    comment: str | None = None


class Decision(BaseModel):
    """A decided submission. ``decided_by`` is hidden (None) from workers."""

    assignment_id: str
    task_id: str
    pool_id: str
    project_id: str
    worker_id: str
    status: Literal["accepted", "rejected"]
    comment: str | None = Field(None, description="the reviewer's comment to the worker")
    submitted_at: datetime
    decided_at: datetime
    decided_by: str | None = None
    cause: Literal["manager", "auto", "rules"] | None = Field(
        None, description="who decided: a manager, auto-accept or a quality rule")
    sandbox: bool = Field(False, description="a sandbox pool's (never paid or counted)")


class Decisions(BaseModel):
    items: list[Decision]
    total: int


class HourBucket(BaseModel):
    hour_start: datetime
    decisions: int


class WorkerCount(BaseModel):
    worker_id: str
    accepted: int


class PoolStats(BaseModel):
    pool_id: str
    pending: int
    accepted: int
    rejected: int
    acceptance_rate: float | None = Field(
        None, description="accepted / (accepted + rejected); None before any decision")
    throughput_per_hour: list[HourBucket] = Field(
        description="decisions per hour over the last 24 h, oldest hour first (24 buckets)")
    top_workers: list[WorkerCount]


# ------------------------------------------------------------------------- rpcs

LIST_PENDING = rpc("review", "list_pending", ListPending, Submissions,
                   "Pending submissions, oldest first, optionally of one pool (manager/admin)",
    roles=STAFF)
GET = rpc("review", "get", SubmissionRef, Submission, "One submission (manager/admin)",
    roles=STAFF)
LOCK = rpc("review", "lock", SubmissionRef, LockInfo,
           "Lock a pending submission for review for the lock TTL (re-locking extends it)",
    roles=STAFF)
LOCK_NEXT = rpc("review", "lock_next", LockNext, Submission,
                "Lock the oldest free pending submission for the caller; 404 no_pending when "
                "there is none (a manager's own live lock is handed back again)",
    roles=STAFF)
UNLOCK = rpc("review", "unlock", SubmissionRef, LockInfo, "Release one's own lock",
    roles=STAFF)
ACCEPT = rpc("review", "accept", Accept, DecisionResult,
             "Accept a submission one holds the lock of; emits review.accepted",
    roles=STAFF)
REJECT = rpc("review", "reject", Reject, DecisionResult,
             "Reject a submission one holds the lock of, with a comment for the worker; "
             "emits review.rejected",
    roles=STAFF)
STATS = rpc("review", "stats", StatsRequest, PoolStats,
            "Per-pool counts, acceptance rate, hourly throughput and top workers "
            "(manager/admin)",
    roles=STAFF)
MY_DECISIONS = rpc("review", "my_decisions", DecisionsRequest, Decisions,
                   "Decision history: a worker's own decisions, or filtered for managers",
    roles=ROLES)


# ------------------------------------------------------------------------ appeals

AppealKind = Literal["rejection", "restriction"]
AppealStatus = Literal["pending", "upheld", "denied"]
AppealText = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_no_nul)]


class FileAppeal(RpcRequest):
    """Contest a rejection (``subject_id`` = the assignment) or a restriction (the
    restriction, which the gateway checks is the caller's and in force) once (a worker)."""

    kind: AppealKind
    subject_id: str = Field(min_length=1, max_length=64)
    message: AppealText
    pool_id: str | None = Field(None, max_length=64,
                                description="a restriction's pool, set by the gateway")


class ListAppeals(RpcRequest):
    """Appeals, newest first: a worker's own, or any for managers (by status, worker)."""

    status: AppealStatus | None = None
    worker_id: str | None = Field(None, max_length=64)
    page: Page = Page()


class AppealRef(RpcRequest):
    appeal_id: str = Field(min_length=1, max_length=64)


class DecideAppeal(AppealRef):
    """Uphold (the rejection becomes an acceptance and is paid, the restriction is lifted)
    or deny, with a reply to the worker. Sending the same decision again changes nothing."""

    outcome: Literal["upheld", "denied"]
    reply: AppealText


class Appeal(BaseModel):
    appeal_id: str
    worker_id: str
    kind: AppealKind
    subject_id: str
    pool_id: str | None = None
    message: str
    status: AppealStatus
    reply: str | None = None
    filed_at: datetime
    decided_by: str | None = Field(None, description="hidden (None) from workers")
    decided_at: datetime | None = None


class Appeals(BaseModel):
    items: list[Appeal]
    total: int


FILE_APPEAL = rpc("review", "file_appeal", FileAppeal, Appeal,
                  "Contest a rejection or a restriction once, with a message (worker)",
                  roles=WORKER)
LIST_APPEALS = rpc("review", "list_appeals", ListAppeals, Appeals,
                   "Appeals: a worker's own, or all for managers", roles=ROLES)
GET_APPEAL = rpc("review", "get_appeal", AppealRef, Appeal, "One appeal (manager/admin)",
                 roles=STAFF)
DECIDE_APPEAL = rpc("review", "decide_appeal", DecideAppeal, Appeal,
                    "Uphold or deny an appeal (manager/admin); emits review.appeal.decided "
                    "(and review.accepted for an upheld rejection)", roles=STAFF)
