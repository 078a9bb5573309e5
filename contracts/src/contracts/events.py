"""Versioned event payloads and their registry.

An event's ``type`` is also its NATS subject. A breaking change to a payload
adds a new model with ``version`` + 1 under the same type; consumers look the
model up by (type, version) from the envelope.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.money import AmountMinor, Currency, PositiveAmountMinor


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore")


@dataclass(frozen=True)
class EventSpec:
    type: str
    version: int
    model: builtins.type[Event]
    description: str

    @property
    def subject(self) -> str:
        return self.type

    @property
    def stream(self) -> str:
        from contracts.streams import stream_for_subject

        return stream_for_subject(self.type).name


_REGISTRY: dict[tuple[str, int], EventSpec] = {}
_BY_MODEL: dict[type[Event], EventSpec] = {}


def event(type_: str, version: int = 1) -> Callable[[type[Event]], type[Event]]:
    """Register a payload model as event ``type_`` at ``version``."""

    def register(model: type[Event]) -> type[Event]:
        spec = EventSpec(type_, version, model, (model.__doc__ or "").strip())
        if (type_, version) in _REGISTRY:
            raise ValueError(f"event {type_} v{version} registered twice")
        _REGISTRY[(type_, version)] = spec
        _BY_MODEL[model] = spec
        return model

    return register


def spec_for_model(model: type[Event]) -> EventSpec:
    return _BY_MODEL[model]


def spec_for(type_: str, version: int = 1) -> EventSpec:
    return _REGISTRY[(type_, version)]


def all_events() -> list[EventSpec]:
    return sorted(_REGISTRY.values(), key=lambda s: (s.type, s.version))


def parse_event(type_: str, version: int, data: dict[str, Any]) -> Event:
    return spec_for(type_, version).model.model_validate(data)


# --------------------------------------------------------------------------- tasks


class _AssignmentRef(Event):
    assignment_id: str
    task_id: str
    pool_id: str
    project_id: str
    worker_id: str
    sandbox: bool = Field(False, description="a sandbox project's assignment (staff trying "
                          "the pool): no money moves, no rule, statistic or skill counts it")


@event("task.taken")
class TaskTaken(_AssignmentRef):
    """A worker took a task from the pool; an assignment is now ACTIVE."""

    taken_at: datetime
    is_control: bool = False


@event("task.submitted")
class TaskSubmitted(_AssignmentRef):
    """A worker submitted answers (and proof/comment) for an active assignment.

    Carries no money: review decides, the ledger knows the pool's price (``task.pool_opened``).
    """

    answers: dict[str, Any]
    comment: str | None = None
    proof: str | None = None
    taken_at: datetime
    submitted_at: datetime
    overlap: int = 1
    is_control: bool = False
    control_correct: bool | None = None
    review_mode: Literal["manual", "auto"] = "manual"
    auto_accept_after_s: int | None = None


@event("task.pool_opened")
class PoolOpened(Event):
    """A pool opened for workers; its price per accepted assignment is frozen from now on.

    The ledger keeps it with the pool's worker share and credits acceptances from it;
    sent again on every re-open (with the same price).
    """

    pool_id: str
    project_id: str
    price_minor: AmountMinor
    currency: Currency
    opened_at: datetime
    sandbox: bool = Field(False, description="a sandbox pool: its acceptances are not paid")


@event("task.pool_closed")
class PoolClosed(Event):
    """A pool closed: no new takes (submitted answers may still be decided). The support
    service tells the webhooks subscribed to ``pool.closed``."""

    pool_id: str
    project_id: str
    closed_at: datetime
    sandbox: bool = False


class FieldResult(BaseModel):
    """One output field's aggregated answer."""

    answer: Any = None
    confidence: float = Field(ge=0, le=1, description="the method's confidence, 0..1")
    answers: int = Field(ge=0, description="answers the field was aggregated from")


@event("task.result_ready")
class ResultReady(Event):
    """A task's aggregated result by one method is final: the task needs no more answers
    (its accepted answers reached its overlap, dynamic overlap included). Recorded by the
    aggregation run that first computed it, once per (task, method, revision): a later run
    whose answer differs in some field records it again with ``revision`` + 1 (a changed
    confidence alone does not). The support service tells the webhooks subscribed to
    ``result.ready``."""

    pool_id: str
    project_id: str
    task_id: str
    method: str = Field(description="the aggregation method, as in the results API")
    revision: int = Field(ge=1, description="1 for the first final result, then +1 per change")
    fields: dict[str, FieldResult] = Field(description="output field -> its result")
    confidence: float = Field(ge=0, le=1, description="the lowest of the fields' confidences")
    computed_at: datetime


@event("task.skipped")
class TaskSkipped(_AssignmentRef):
    """A worker gave an active assignment back without answering."""

    skipped_at: datetime


@event("task.expired")
class TaskExpired(_AssignmentRef):
    """An active assignment timed out; its task went back to the pool."""

    expired_at: datetime


@event("task.reported")
class TaskReported(_AssignmentRef):
    """A worker reported a problem with a task."""

    reason: str
    text: str
    reported_at: datetime


@event("task.access_revoked")
class TaskAccessRevoked(Event):
    """A skill change made the worker fail the skill filters of a pool they had worked in
    (Toloka's "access revoked" trigger for re-execution rules)."""

    worker_id: str
    pool_id: str
    project_id: str | None = None
    reason: Literal["skill_change"] = "skill_change"
    skill: str
    revoked_at: datetime


@event("task.captcha_answered")
class CaptchaAnswered(Event):
    """A worker answered a captcha shown at take time."""

    challenge_id: str
    worker_id: str
    pool_id: str
    project_id: str
    correct: bool
    answered_at: datetime


# -------------------------------------------------------------------------- review


class _Decision(_AssignmentRef):
    decided_by: str = Field(description="user id of the manager, 'auto' or 'rules'")
    decided_at: datetime
    comment: str | None = None


@event("review.accepted")
class ReviewAccepted(_Decision):
    """A submission was accepted (by a manager, by auto-accept or by a rule)."""


@event("review.rejected")
class ReviewRejected(_Decision):
    """A submission was rejected; ``comment`` is shown to the worker."""


@event("review.appeal.decided")
class AppealDecided(Event):
    """A manager decided a worker's appeal. An upheld appeal of a rejection is paid through
    the ``review.accepted`` recorded with it; an upheld appeal of a restriction is lifted
    by the rules service, which owns restrictions."""

    appeal_id: str
    worker_id: str
    kind: Literal["rejection", "restriction"]
    subject_id: str = Field(description="the assignment or restriction appealed")
    outcome: Literal["upheld", "denied"]
    decided_by: str
    decided_at: datetime


# -------------------------------------------------------------------------- ledger


@event("ledger.credited")
class LedgerCredited(Event):
    """A worker's balance was credited (assignment share or bonus)."""

    transfer_id: str
    worker_id: str
    pool_id: str
    project_id: str | None = None
    assignment_id: str | None = None
    kind: Literal["assignment", "bonus"] = "assignment"
    amount_minor: AmountMinor = Field(description="the worker's part only (never the price)")
    currency: Currency
    credited_at: datetime


class _Payout(Event):
    payout_id: str
    worker_id: str
    amount_minor: PositiveAmountMinor
    currency: Currency
    at: datetime


@event("ledger.payout.requested")
class PayoutRequested(_Payout):
    """A worker asked for a payout; the amount is on hold."""


@event("ledger.payout.approved")
class PayoutApproved(_Payout):
    """The owner approved a payout; the held amount is paid."""

    decided_by: str


@event("ledger.payout.rejected")
class PayoutRejected(_Payout):
    """The owner rejected a payout; the hold is released."""

    decided_by: str
    comment: str | None = None


# --------------------------------------------------------------------------- rules


class _RuleAction(Event):
    rule_id: str
    firing_id: str
    worker_id: str


@event("rules.restriction.applied")
class RestrictionApplied(_RuleAction):
    """A rule restricted a worker: pool (suspend), project, or all projects (block)."""

    restriction_id: str
    scope: Literal["pool", "project", "all"]
    pool_id: str | None = None
    project_id: str | None = None
    until: datetime | None = Field(None, description="None = permanent")
    private_comment: str


@event("rules.restriction.lifted")
class RestrictionLifted(Event):
    """A temporary restriction ended (or an admin lifted it)."""

    restriction_id: str
    worker_id: str
    lifted_at: datetime


@event("rules.skill.set")
class SkillSet(_RuleAction):
    """A rule set a worker's skill value."""

    skill: str
    value: int


@event("rules.skill.removed")
class SkillRemoved(_RuleAction):
    """A manager removed a worker's skill by hand (``rule_id`` is ``manual``)."""

    skill: str


@event("rules.assignments.accept_all")
class AcceptAllAssignments(_RuleAction):
    """Accept every pending submission of the worker in the pool."""

    pool_id: str


@event("rules.assignments.reject_all")
class RejectAllAssignments(_RuleAction):
    """Reject every pending submission of the worker in the pool."""

    pool_id: str
    public_comment: str


@event("rules.overlap.changed")
class OverlapChanged(_RuleAction):
    """Add ``add`` to the overlap of the listed tasks and re-open the pool."""

    pool_id: str
    task_ids: list[str]
    add: int


@event("rules.bonus.granted")
class BonusGranted(_RuleAction):
    """A rule granted a fixed bonus; the ledger credits it once per bonus_id."""

    bonus_id: str
    pool_id: str
    amount_minor: PositiveAmountMinor
    currency: Currency


# ------------------------------------------------------------------ support/gateway


@event("support.ticket.created")
class TicketCreated(Event):
    """A support ticket was opened (by a user or from a task report)."""

    ticket_id: str
    user_id: str
    kind: str
    subject: str


class _TicketChange(Event):
    ticket_id: str
    user_id: str = Field(description="the ticket's owner")
    by_user_id: str
    at: datetime


@event("support.ticket.answered")
class TicketAnswered(_TicketChange):
    """Staff answered a ticket; its owner is told."""


@event("support.ticket.closed")
class TicketClosed(_TicketChange):
    """A ticket was closed (by staff or by its owner)."""


@event("support.ticket.reopened")
class TicketReopened(_TicketChange):
    """The owner wrote to an answered or closed ticket, which is open again."""


@event("support.ticket.assigned")
class TicketAssigned(_TicketChange):
    """A manager was put in charge of a ticket (or nobody, ``assignee_id`` None)."""

    assignee_id: str | None = None


class _ChatRef(Event):
    message_id: str
    kind: Literal["assignment", "pool"]
    ref: str = Field(description="the assignment id or the pool id")
    worker_id: str | None = Field(None, description="task chat: the assignment's worker")


@event("support.chat.posted")
class ChatPosted(_ChatRef):
    """A chat message was posted; the text stays in support (the gateway only hints)."""

    author_id: str
    at: datetime


@event("support.chat.deleted")
class ChatDeleted(_ChatRef):
    """A moderator hid a chat message."""

    by_user_id: str
    at: datetime


@event("support.chat.muted")
class ChatMuted(Event):
    """A moderator muted a user in every chat until ``until`` (None: the mute was lifted)."""

    user_id: str
    by_user_id: str
    until: datetime | None
    reason: str = ""


@event("gateway.user.created")
class UserCreated(Event):
    """An account was created."""

    user_id: str
    login: str
    role: Literal["worker", "manager", "admin"]


@event("gateway.emergency.changed")
class EmergencyChanged(Event):
    """Emergency read-only mode was switched."""

    enabled: bool
    reason: str
    by_user_id: str
