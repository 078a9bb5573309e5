"""Pure review rules: locks, refusals, auto-accept deadlines, statistics. No I/O.

The database enforces the same rules with conditional UPDATEs (so two managers
can never both decide); these functions decide what a refused caller is told,
and are what the unit tests pin down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import overload

from servicekit.errors import Conflict, Invalid, NotFound, ServiceError

AUTO = "auto"
RULES = "rules"


def decision_cause(decided_by: str | None) -> str:
    """Who decided, as a worker may be told: auto-accept, a quality rule or a manager."""
    return decided_by if decided_by in (AUTO, RULES) else "manager"


@overload
def as_utc(dt: datetime) -> datetime: ...
@overload
def as_utc(dt: None) -> None: ...


def as_utc(dt: datetime | None) -> datetime | None:
    """Timezone-aware UTC; a time without a timezone (as a query string or an event may
    carry it) is taken as UTC."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


@dataclass(frozen=True)
class LockState:
    """What the refusal logic needs to know about one submission."""

    status: str
    lock_holder: str | None
    lock_until: datetime | None
    decided_at: datetime | None = None


# ------------------------------------------------------------------------ errors


class SubmissionNotFound(NotFound):
    def __init__(self, assignment_id: str) -> None:
        super().__init__("submission_not_found",
                         f"no submission for assignment {assignment_id}")


class AlreadyDecided(Conflict):
    def __init__(self, assignment_id: str, state: LockState) -> None:
        decided_at = as_utc(state.decided_at)
        super().__init__(
            "already_decided",
            f"submission {assignment_id} was already {state.status}",
            details={"status": state.status,
                     "decided_at": decided_at.isoformat() if decided_at else None})


class LockedByOther(Conflict):
    def __init__(self, assignment_id: str, holder: str, until: datetime) -> None:
        until = as_utc(until) or until
        super().__init__(
            "locked_by_other",
            f"submission {assignment_id} is locked by {holder} until {until.isoformat()}",
            details={"holder": holder, "until": until.isoformat()})


class LockRequired(Conflict):
    def __init__(self, assignment_id: str, expired_at: datetime | None = None) -> None:
        msg = (f"your lock on submission {assignment_id} expired at "
               f"{expired_at.isoformat()}: lock it again before deciding"
               if expired_at else
               f"lock submission {assignment_id} before deciding on it")
        super().__init__("lock_required", msg,
                         details={"expired_at": expired_at.isoformat() if expired_at else None})


class CommentRequired(Invalid):
    def __init__(self) -> None:
        super().__init__("comment_required",
                         "a rejection needs a comment telling the worker what was wrong")


# ------------------------------------------------------------------------- rules


def lock_is_live(holder: str | None, until: datetime | None, now: datetime) -> bool:
    """A lock holds while its deadline is in the future; an expired lock frees the item."""
    return holder is not None and until is not None and as_utc(until) > now


def lock_deadline(now: datetime, ttl_s: float) -> datetime:
    return now + timedelta(seconds=ttl_s)


def can_lock(state: LockState, me: str, now: datetime) -> bool:
    """Pending, and free (never locked, expired) or already mine (re-locking extends)."""
    return state.status == "pending" and (
        not lock_is_live(state.lock_holder, state.lock_until, now) or state.lock_holder == me)


def can_decide(state: LockState, me: str, now: datetime) -> bool:
    """Only the holder of a live lock decides a pending submission."""
    return (state.status == "pending" and state.lock_holder == me
            and lock_is_live(state.lock_holder, state.lock_until, now))


def _gone(assignment_id: str, state: LockState | None) -> ServiceError:
    """The refusal for a submission that does not exist or is no longer pending."""
    return SubmissionNotFound(assignment_id) if state is None else AlreadyDecided(
        assignment_id, state)


def _held(assignment_id: str, state: LockState) -> ServiceError:
    assert state.lock_holder is not None and state.lock_until is not None
    return LockedByOther(assignment_id, state.lock_holder, state.lock_until)


def lock_refusal(assignment_id: str, state: LockState | None, me: str,
                 now: datetime) -> ServiceError | None:
    """Why ``me`` may not lock (None: they may)."""
    if state is None or state.status != "pending":
        return _gone(assignment_id, state)
    return None if can_lock(state, me, now) else _held(assignment_id, state)


def decision_refusal(assignment_id: str, state: LockState | None, me: str,
                     now: datetime) -> ServiceError | None:
    """Why ``me`` may not decide (None: they may)."""
    if state is None or state.status != "pending":
        return _gone(assignment_id, state)
    if can_decide(state, me, now):
        return None
    if lock_is_live(state.lock_holder, state.lock_until, now):
        return _held(assignment_id, state)
    if state.lock_holder == me:
        return LockRequired(assignment_id, as_utc(state.lock_until))
    return LockRequired(assignment_id)


def unlock_refusal(assignment_id: str, state: LockState | None, me: str,
                   now: datetime) -> ServiceError | None:
    """Why ``me`` may not unlock (None: they may; unlocking a free item changes nothing)."""
    if state is None or state.status != "pending":
        return _gone(assignment_id, state)
    return None if can_lock(state, me, now) else _held(assignment_id, state)


def rejection_comment(comment: str | None) -> str:
    """The worker must be told why: a rejection without a real comment is refused."""
    text = (comment or "").strip()
    if not text:
        raise CommentRequired()
    return text


def clean_comment(comment: str | None) -> str | None:
    text = (comment or "").strip()
    return text or None


def auto_accept_at(submitted_at: datetime, review_mode: str,
                   delay_s: int | None) -> datetime | None:
    """When a manual submission nobody decided is accepted automatically (None: never)."""
    if review_mode != "manual" or delay_s is None or delay_s < 0:
        return None
    return as_utc(submitted_at) + timedelta(seconds=delay_s)


# --------------------------------------------------------------------- statistics


def acceptance_rate(accepted: int, rejected: int) -> float | None:
    decided = accepted + rejected
    return round(accepted / decided, 4) if decided else None


def hour_floor(dt: datetime) -> datetime:
    dt = as_utc(dt)
    return dt.replace(minute=0, second=0, microsecond=0)


def hourly_buckets(counts: Mapping[datetime, int], now: datetime,
                   hours: int = 24) -> list[tuple[datetime, int]]:
    """``hours`` consecutive hour buckets ending with the current hour, oldest first.

    ``counts`` maps an hour's start to its number of decisions; hours without
    decisions are zero.
    """
    by_hour: dict[datetime, int] = {}
    for start, n in counts.items():
        key = hour_floor(start)
        by_hour[key] = by_hour.get(key, 0) + n
    last = hour_floor(now)
    starts = [last - timedelta(hours=i) for i in range(hours - 1, -1, -1)]
    return [(s, by_hour.get(s, 0)) for s in starts]
