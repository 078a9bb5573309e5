"""The facts slice: events from tasks, review and the ledger become facts, evaluated a
fetched batch at a time.

A batch is one unit: one read and one write of each state row it touches, one insert
of its recorded facts, one outbox insert of the events its rules emit (as the
benchmark measures). Earnings come from ``ledger.credited`` only: submissions and
review decisions carry no money.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.envelope import Envelope
from contracts.events import (
    CaptchaAnswered,
    Event,
    LedgerCredited,
    ReviewAccepted,
    ReviewRejected,
    TaskAccessRevoked,
    TaskSkipped,
    TaskSubmitted,
    spec_for_model,
)
from rules_service import domain, runner
from rules_service.context import RulesContext
from rules_service.domain import Fact, Hit
from rules_service.store import RulesStore
from servicekit.router import Router
from servicekit.uow import UnitOfWork

router = Router()


def _submitted(e: TaskSubmitted, eid: str) -> Fact:
    return Fact(eid, "submitted", e.submitted_at, e.worker_id, e.pool_id, e.project_id,
                e.task_id, {"is_control": e.is_control, "control_correct": e.control_correct,
                            "answer_key": domain.answer_key(e.answers), "overlap": e.overlap,
                            "duration_s": round((e.submitted_at - e.taken_at).total_seconds(),
                                                3)})


def _skipped(e: TaskSkipped, eid: str) -> Fact:
    return Fact(eid, "skipped", e.skipped_at, e.worker_id, e.pool_id, e.project_id, e.task_id)


def _access_revoked(e: TaskAccessRevoked, eid: str) -> Fact:
    return Fact(eid, "access_revoked", e.revoked_at, e.worker_id, e.pool_id, e.project_id,
                None, {"reason": e.reason})


def _captcha(e: CaptchaAnswered, eid: str) -> Fact:
    return Fact(eid, "captcha", e.answered_at, e.worker_id, e.pool_id, e.project_id, None,
                {"correct": e.correct})


def _credited(e: LedgerCredited, eid: str) -> Fact:
    return Fact(eid, "credited", e.credited_at, e.worker_id, e.pool_id, e.project_id, None,
                {"amount_minor": e.amount_minor, "credit_kind": e.kind})


# The fact each event makes on its own; a review decision also needs the submission's
# previous status (see _review_facts).
FACT_OF: dict[type[Event], Callable[[Any, str], Fact]] = {
    TaskSubmitted: _submitted, TaskSkipped: _skipped, TaskAccessRevoked: _access_revoked,
    CaptchaAnswered: _captcha, LedgerCredited: _credited}
REVIEWED: dict[type[Event], str] = {ReviewAccepted: "accepted", ReviewRejected: "rejected"}


def subjects(stream_prefix: str) -> tuple[str, ...]:
    """The subjects of one stream whose events make facts: each consumer's durable filters
    on exactly these, so the server delivers no other (``task.taken``, one per take, never
    reaches this service)."""
    return tuple(sorted(t for t in (spec_for_model(m).type for m in [*FACT_OF, *REVIEWED])
                        if t.startswith(stream_prefix)))


def is_sandbox(event: Event) -> bool:
    """Whether the event is of a sandbox pool (only assignment and pool events say so)."""
    return bool(getattr(event, "sandbox", False))


def _submission(e: TaskSubmitted) -> dict[str, Any]:
    return {"assignment_id": e.assignment_id, "task_id": e.task_id, "pool_id": e.pool_id,
            "project_id": e.project_id, "worker_id": e.worker_id, "status": "pending",
            "review_mode": e.review_mode, "submitted_at": e.submitted_at}


async def facts_for(items: list[tuple[Event, Envelope]], store: RulesStore) -> list[Fact]:
    """The facts some events contribute, with the bookkeeping of submissions.

    Batched: one insert for new submissions, one read and at most two updates for the
    review decisions, however many events. A sandbox event (staff trying a sandbox pool)
    contributes nothing: no fact, no submission, so no rule state, firing or action.
    """
    facts: list[Fact | None] = []
    new_subs: list[dict[str, Any]] = []
    reviews: list[tuple[int, ReviewAccepted | ReviewRejected, str, str]] = []
    for event, env in items:
        if is_sandbox(event):
            continue
        if isinstance(event, ReviewAccepted | ReviewRejected):
            reviews.append((len(facts), event, env.event_id, REVIEWED[type(event)]))
            facts.append(None)
            continue
        if isinstance(event, TaskSubmitted):
            new_subs.append(_submission(event))
        make = FACT_OF.get(type(event))
        facts.append(make(event, env.event_id) if make is not None else None)
    if new_subs or reviews:
        ids = list({e.assignment_id for _, e, _, _ in reviews})
        status = await store.add_submissions(new_subs, ids)
        if reviews:
            await _review_facts(reviews, facts, status, store)
    return [f for f in facts if f is not None]


async def _review_facts(reviews: list[tuple[int, ReviewAccepted | ReviewRejected, str, str]],
                        facts: list[Fact | None], status: dict[str, str],
                        store: RulesStore) -> None:
    """Fill in the review decisions' facts (with the submission's previous ``status``) and
    store the submissions' new status."""
    changed: dict[str, str] = {}
    for i, e, eid, new in reviews:
        prev = status.get(e.assignment_id)
        facts[i] = Fact(eid, new, e.decided_at, e.worker_id, e.pool_id, e.project_id,
                        e.task_id, {"prev_status": prev})
        if prev is not None:
            status[e.assignment_id] = changed[e.assignment_id] = new
    if changed:
        await store.set_submission_statuses(changed)


async def evaluate_events(items: list[tuple[Event, Envelope]], uow: UnitOfWork[RulesStore],
                          ctx: RulesContext) -> list[Hit]:
    """A batch of events through the rules, in ``uow``: what the consumers do."""
    facts = await facts_for(items, uow.store)
    return await runner.process(facts, uow, rules=ctx.rules,
                                ttl_s=ctx.settings.rules_cache_ttl_s, now=ctx.clock(),
                                causes={env.event_id: env for _, env in items})


@router.consume_batch(subjects("task."), name="task-events")
@router.consume_batch(subjects("review."), name="review-events")
@router.consume_batch(subjects("ledger."), name="ledger-credited")
async def on_events(items: list[tuple[Event, Envelope]], uow: UnitOfWork[RulesStore],
                    ctx: RulesContext) -> None:
    """Submissions, skips, captcha answers and lost access (task.*), acceptances and
    rejections (review.*) and credits (ledger.credited), and no other event, feed the
    collectors; the rules they make fire act through rules.* events."""
    await evaluate_events(items, uow, ctx)
