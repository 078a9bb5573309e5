"""Review service: the pending-review queue, TTL locks, decisions and statistics.

Every decision is one conditional UPDATE (``... WHERE status = 'pending' AND
<the caller may decide>``) plus its event in the outbox, in one transaction:
two managers, the auto-accept sweeper and the rules can race freely and only
one of them ever decides a submission.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import and_, bindparam, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.envelope import Envelope, new_envelope
from contracts.events import (AcceptAllAssignments, RejectAllAssignments, ReviewAccepted,
                              ReviewRejected, TaskSubmitted)
from contracts.rpc import review as rpc
from review_service import domain
from review_service.db import metadata, submissions as s
from review_service.settings import ReviewSettings
from servicekit.db import dialect_insert
from servicekit.errors import Conflict, Forbidden, NotFound, ServiceError
from servicekit.outbox import current_trace_headers
from servicekit.service import Service, run

Clock = Callable[[], datetime]

DECISIONS = Counter("review_decisions_total", "Review decisions",
                    ["decision", "decided_by_kind"])
SUBMISSIONS_RECEIVED = Counter("review_submissions_received_total",
                               "Submissions that entered review", ["review_mode"])

# What a manager may see of a submission: everything but the money.
PUBLIC_COLUMNS = tuple(c for c in s.c if c.name not in ("price_minor", "currency",
                                                       "auto_accept_after_s", "received_at"))
_DATETIME_FIELDS = ("taken_at", "submitted_at", "auto_accept_at", "lock_until", "decided_at")
_DECISION_RETURNING = (s.c.assignment_id, s.c.task_id, s.c.pool_id, s.c.project_id,
                       s.c.worker_id, s.c.price_minor, s.c.currency)


# PostgreSQL: a manager's decision and its outbox row in ONE statement (atomic on its
# own, so no BEGIN/COMMIT): the hot path of every lifecycle. The envelope is built in
# Python as usual; the row's own fields (ids, price) are filled in from the UPDATE.
_PG_DECIDE = text("""
WITH d AS (
    UPDATE submissions
    SET status = :status, decided_by = :me, decided_at = CAST(:now AS TIMESTAMPTZ),
        review_comment = :comment, lock_holder = NULL, lock_until = NULL
    WHERE assignment_id = :assignment_id AND status = 'pending'
      AND lock_holder = :me AND lock_until > CAST(:now AS TIMESTAMPTZ)
    RETURNING task_id, pool_id, project_id, worker_id, price_minor, currency
), o AS (
    INSERT INTO outbox (event_id, subject, payload, headers, created_at)
    SELECT :event_id, :subject,
           CAST(jsonb_set(CAST(:envelope AS JSONB), '{data}',
                          CAST(:data AS JSONB) || jsonb_build_object(
                              'task_id', d.task_id, 'pool_id', d.pool_id,
                              'project_id', d.project_id, 'worker_id', d.worker_id,
                              'price_minor', d.price_minor, 'currency', d.currency))
                AS TEXT),
           :headers, CAST(:now AS TIMESTAMPTZ)
    FROM d
)
SELECT count(*) FROM d
""")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _submission(row: Any) -> rpc.Submission:
    data = dict(row._mapping)
    for f in _DATETIME_FIELDS:
        data[f] = domain.as_utc(data.get(f))
    return rpc.Submission(**data)


def _by_kind(decided_by: str) -> str:
    return decided_by if decided_by in (domain.AUTO, domain.RULES) else "manager"


def create_service(settings: ReviewSettings | None = None, *,
                   clock: Clock = utcnow) -> Service:
    settings = settings or ReviewSettings()
    svc = Service(settings, metadata)
    # A single statement is atomic on its own: reads and lock changes skip
    # BEGIN/COMMIT (two round trips each) on the hot path.
    single = svc.reader

    # --------------------------------------------------------------- helpers

    async def load_state(conn: AsyncConnection, assignment_id: str) -> domain.LockState | None:
        row = (await conn.execute(
            select(s.c.status, s.c.lock_holder, s.c.lock_until, s.c.decided_at)
            .where(s.c.assignment_id == assignment_id))).first()
        return domain.LockState(**row._mapping) if row else None

    async def record_decisions(conn: AsyncConnection, rows: Sequence[Any], *, status: str,
                               decided_by: str, decided_at: datetime, comment: str | None,
                               cause: Envelope | None = None) -> None:
        """The event of each decision, in the decision's transaction."""
        model = ReviewAccepted if status == "accepted" else ReviewRejected
        for r in rows:
            await svc.record(conn, model(
                assignment_id=r.assignment_id, task_id=r.task_id, pool_id=r.pool_id,
                project_id=r.project_id, worker_id=r.worker_id, price_minor=r.price_minor,
                currency=r.currency, decided_by=decided_by, decided_at=decided_at,
                comment=comment), cause=cause)
        if rows:
            DECISIONS.labels(status, _by_kind(decided_by)).inc(len(rows))

    def decided_values(status: str, decided_by: str, now: datetime,
                       comment: str | None) -> dict[str, Any]:
        return dict(status=status, decided_by=decided_by, decided_at=now,
                    review_comment=comment, lock_holder=None, lock_until=None)

    def lock_free(now: Any) -> Any:
        """Nobody holds a live lock (never locked, unlocked or expired) at ``now`` (a time,
        or a bind parameter in a statement built once)."""
        return or_(s.c.lock_holder.is_(None), s.c.lock_until <= now)

    # ------------------------------------------------------------- consumers

    _ENQUEUE: dict[str, Any] = {}

    @svc.consume("task.submitted", name="task-submitted")
    async def on_task_submitted(conn: AsyncConnection, event: TaskSubmitted,
                                env: Envelope) -> None:
        """A submission enters the queue; 'auto' pools accept it at once."""
        now = clock()
        auto = event.review_mode == "auto"
        values = dict(
            assignment_id=event.assignment_id, task_id=event.task_id, pool_id=event.pool_id,
            project_id=event.project_id, worker_id=event.worker_id, answers=event.answers,
            comment=event.comment, proof=event.proof, taken_at=event.taken_at,
            submitted_at=event.submitted_at, price_minor=event.price_minor,
            currency=event.currency, review_mode=event.review_mode,
            auto_accept_after_s=event.auto_accept_after_s,
            auto_accept_at=domain.auto_accept_at(event.submitted_at, event.review_mode,
                                                 event.auto_accept_after_s),
            is_control=event.is_control, control_correct=event.control_correct,
            status="pending", received_at=now,
        )
        if auto:
            values.update(decided_values("accepted", domain.AUTO, now, None))
        stmt = _ENQUEUE.get(conn.dialect.name)
        if stmt is None:  # built once per dialect; the row's values travel as parameters
            stmt = _ENQUEUE[conn.dialect.name] = dialect_insert(conn)(s).on_conflict_do_nothing(
                index_elements=["assignment_id"])
        result = await conn.execute(stmt, values)
        if result.rowcount != 1:
            return  # the same assignment was submitted before (under another event id)
        SUBMISSIONS_RECEIVED.labels(event.review_mode).inc()
        if auto:
            await record_decisions(conn, [event], status="accepted", decided_by=domain.AUTO,
                                   decided_at=now, comment=None, cause=env)

    async def decide_all_of_worker(conn: AsyncConnection, *, worker_id: str, pool_id: str,
                                   status: str, comment: str | None, env: Envelope) -> None:
        now = clock()
        rows = (await conn.execute(
            update(s)
            .where(s.c.worker_id == worker_id, s.c.pool_id == pool_id,
                   s.c.status == "pending", s.c.review_mode == "manual")
            .values(**decided_values(status, domain.RULES, now, comment))
            .returning(*_DECISION_RETURNING))).all()
        await record_decisions(conn, rows, status=status, decided_by=domain.RULES,
                               decided_at=now, comment=comment, cause=env)

    @svc.consume("rules.assignments.accept_all", name="rules-accept-all")
    async def on_accept_all(conn: AsyncConnection, event: AcceptAllAssignments,
                            env: Envelope) -> None:
        """A rule accepts every pending submission of a worker in a pool (locks or not)."""
        await decide_all_of_worker(conn, worker_id=event.worker_id, pool_id=event.pool_id,
                                   status="accepted", comment=None, env=env)

    @svc.consume("rules.assignments.reject_all", name="rules-reject-all")
    async def on_reject_all(conn: AsyncConnection, event: RejectAllAssignments,
                            env: Envelope) -> None:
        """A rule rejects every pending submission of a worker in a pool, with its comment."""
        await decide_all_of_worker(conn, worker_id=event.worker_id, pool_id=event.pool_id,
                                   status="rejected", comment=event.public_comment, env=env)

    # --------------------------------------------------------------- sweeper

    @svc.periodic(settings.auto_accept_sweep_s)
    async def auto_accept_overdue() -> None:
        """Accept manual submissions nobody decided within the pool's delay.

        A submission a manager holds a live lock on waits for that decision
        (or for the lock to expire).
        """
        while True:
            now = clock()
            due = (select(s.c.assignment_id)
                   .where(s.c.status == "pending", s.c.auto_accept_at <= now, lock_free(now))
                   .order_by(s.c.auto_accept_at).limit(settings.auto_accept_batch)
                   .with_for_update(skip_locked=True))
            async with svc.transaction() as conn:
                rows = (await conn.execute(
                    update(s)
                    .where(s.c.assignment_id.in_(due.scalar_subquery()),
                           s.c.status == "pending")
                    .values(**decided_values("accepted", domain.AUTO, now, None))
                    .returning(*_DECISION_RETURNING))).all()
                await record_decisions(conn, rows, status="accepted", decided_by=domain.AUTO,
                                       decided_at=now, comment=None)
            if len(rows) < settings.auto_accept_batch:
                return

    # ---------------------------------------------------------------- queue

    @svc.rpc(rpc.LIST_PENDING)
    async def list_pending(req: rpc.ListPending) -> rpc.Submissions:
        """The queue, oldest submission first; never the price."""
        domain.require_reviewer(req.actor.role)
        cond = [s.c.status == "pending"]
        if req.pool_id:
            cond.append(s.c.pool_id == req.pool_id)
        if req.only_free:
            cond.append(lock_free(clock()))
        async with single.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(s).where(*cond)))\
                .scalar_one()
            rows = (await conn.execute(
                select(*PUBLIC_COLUMNS).where(*cond)
                .order_by(s.c.submitted_at, s.c.assignment_id)
                .limit(req.page.limit).offset(req.page.offset))).all()
        return rpc.Submissions(items=[_submission(r) for r in rows], total=total)

    @svc.rpc(rpc.GET)
    async def get(req: rpc.SubmissionRef) -> rpc.Submission:
        """One submission with its lock and decision; never the price."""
        domain.require_reviewer(req.actor.role)
        async with single.connect() as conn:
            row = (await conn.execute(select(*PUBLIC_COLUMNS)
                                      .where(s.c.assignment_id == req.assignment_id))).first()
        if row is None:
            raise domain.SubmissionNotFound(req.assignment_id)
        return _submission(row)

    # ---------------------------------------------------------------- locks

    async def refused(assignment_id: str, why: Callable[..., ServiceError | None], me: str,
                      now: datetime) -> ServiceError:
        async with single.connect() as conn:
            state = await load_state(conn, assignment_id)
        err = why(assignment_id, state, me, now)
        # None: the state changed between the UPDATE and the look (a lock just expired).
        return err or Conflict("retry", f"submission {assignment_id} changed meanwhile: retry")

    @svc.rpc(rpc.LOCK)
    async def lock(req: rpc.SubmissionRef) -> rpc.LockInfo:
        """Take (or extend) the review lock; refused while another manager holds it."""
        domain.require_reviewer(req.actor.role)
        me, now = req.actor.user_id, clock()
        until = domain.lock_deadline(now, settings.lock_ttl_s)
        async with single.connect() as conn:
            row = (await conn.execute(
                update(s)
                .where(s.c.assignment_id == req.assignment_id, s.c.status == "pending",
                       or_(lock_free(now), s.c.lock_holder == me))
                .values(lock_holder=me, lock_until=until)
                .returning(s.c.assignment_id))).first()
        if row is None:
            raise await refused(req.assignment_id, domain.lock_refusal, me, now)
        return rpc.LockInfo(assignment_id=req.assignment_id, locked=True, lock_holder=me,
                            lock_until=until)

    def _lock_next(by_pool: bool) -> Any:
        """Built once (bind names differ from column names: an UPDATE's parameters named
        like a column would join its SET clause)."""
        me = bindparam("n_me", type_=s.c.lock_holder.type)
        now = bindparam("n_now", type_=s.c.lock_until.type)
        mine_or_free = or_(lock_free(now), s.c.lock_holder == me)
        cond = [s.c.status == "pending", mine_or_free]
        if by_pool:
            cond.append(s.c.pool_id == bindparam("n_pool", type_=s.c.pool_id.type))
        pick = (select(s.c.assignment_id).where(*cond)
                .order_by(s.c.submitted_at, s.c.assignment_id).limit(1)
                .with_for_update(skip_locked=True).scalar_subquery())
        return (update(s).where(s.c.assignment_id == pick, s.c.status == "pending",
                                mine_or_free)
                .values(lock_holder=me,
                        lock_until=bindparam("n_until", type_=s.c.lock_until.type))
                .returning(*PUBLIC_COLUMNS))

    _LOCK_NEXT = {False: _lock_next(False), True: _lock_next(True)}

    @svc.rpc(rpc.LOCK_NEXT)
    async def lock_next(req: rpc.LockNext) -> rpc.Submission:
        """The next submission to review, locked: one statement, no race between managers
        (PostgreSQL skips rows another manager's statement holds)."""
        domain.require_reviewer(req.actor.role)
        me, now = req.actor.user_id, clock()
        until = domain.lock_deadline(now, settings.lock_ttl_s)
        async with single.connect() as conn:
            row = (await conn.execute(_LOCK_NEXT[req.pool_id is not None], {
                "n_me": me, "n_now": now, "n_until": until, "n_pool": req.pool_id})).first()
        if row is None:
            raise NotFound("no_pending", "no submission is waiting for review right now")
        return _submission(row)

    @svc.rpc(rpc.UNLOCK)
    async def unlock(req: rpc.SubmissionRef) -> rpc.LockInfo:
        """Give one's own lock back (a free submission stays free)."""
        domain.require_reviewer(req.actor.role)
        me, now = req.actor.user_id, clock()
        async with single.connect() as conn:
            row = (await conn.execute(
                update(s)
                .where(s.c.assignment_id == req.assignment_id, s.c.status == "pending",
                       or_(lock_free(now), s.c.lock_holder == me))
                .values(lock_holder=None, lock_until=None)
                .returning(s.c.assignment_id))).first()
        if row is None:
            raise await refused(req.assignment_id, domain.unlock_refusal, me, now)
        return rpc.LockInfo(assignment_id=req.assignment_id, locked=False)

    # ------------------------------------------------------------ decisions

    async def decide(req: rpc.SubmissionRef, status: str,
                     comment: str | None) -> rpc.DecisionResult:
        me, now = req.actor.user_id, clock()
        if svc.engine.dialect.name == "postgresql":
            decided = await decide_in_one_statement(req.assignment_id, status, me, now, comment)
        else:
            async with svc.transaction() as conn:
                rows = (await conn.execute(
                    update(s)
                    .where(s.c.assignment_id == req.assignment_id, s.c.status == "pending",
                           s.c.lock_holder == me, s.c.lock_until > now)
                    .values(**decided_values(status, me, now, comment))
                    .returning(*_DECISION_RETURNING))).all()
                await record_decisions(conn, rows, status=status, decided_by=me,
                                       decided_at=now, comment=comment)
            decided = bool(rows)
        if not decided:
            raise await refused(req.assignment_id, domain.decision_refusal, me, now)
        return rpc.DecisionResult(assignment_id=req.assignment_id, status=status,  # type: ignore[arg-type]
                                  decided_by=me, decided_at=now, comment=comment)

    async def decide_in_one_statement(assignment_id: str, status: str, me: str, now: datetime,
                                      comment: str | None) -> bool:
        model = ReviewAccepted if status == "accepted" else ReviewRejected
        # Placeholders for the row's fields; the statement overwrites them.
        env = new_envelope(model(
            assignment_id=assignment_id, task_id="", pool_id="", project_id="", worker_id="",
            price_minor=0, currency="", decided_by=me, decided_at=now, comment=comment),
            producer=svc.name)
        async with single.connect() as conn:
            n = (await conn.execute(_PG_DECIDE, dict(
                status=status, me=me, now=now, comment=comment, assignment_id=assignment_id,
                event_id=env.event_id, subject=env.type,
                envelope=env.model_dump_json(exclude={"data"}), data=json.dumps(env.data),
                headers=json.dumps(current_trace_headers())))).scalar_one()
        if n and svc.relay is not None:
            svc.relay.notify()
        if n:
            DECISIONS.labels(status, _by_kind(me)).inc()
        return bool(n)

    @svc.rpc(rpc.ACCEPT)
    async def accept(req: rpc.Accept) -> rpc.DecisionResult:
        """Accept as the lock holder; review.accepted goes out with the decision."""
        domain.require_reviewer(req.actor.role)
        return await decide(req, "accepted", domain.clean_comment(req.comment))

    @svc.rpc(rpc.REJECT)
    async def reject(req: rpc.Reject) -> rpc.DecisionResult:
        """Reject as the lock holder, telling the worker why; emits review.rejected."""
        domain.require_reviewer(req.actor.role)
        return await decide(req, "rejected", domain.rejection_comment(req.comment))

    # ------------------------------------------------------------- reading

    @svc.rpc(rpc.STATS)
    async def stats(req: rpc.StatsRequest) -> rpc.PoolStats:
        """A pool's queue and decision figures for managers; worker ids, no money."""
        domain.require_reviewer(req.actor.role)
        now = clock()
        since = domain.hour_floor(now) - timedelta(hours=23)
        async with single.connect() as conn:
            counts = dict((await conn.execute(
                select(s.c.status, func.count()).where(s.c.pool_id == req.pool_id)
                .group_by(s.c.status))).all())
            if conn.dialect.name == "postgresql":
                hour = func.date_trunc("hour", func.timezone("UTC", s.c.decided_at))
            else:
                hour = func.strftime("%Y-%m-%d %H:00:00", s.c.decided_at)
            hourly = (await conn.execute(
                select(hour.label("hour"), func.count())
                .where(s.c.pool_id == req.pool_id, s.c.decided_at >= since)
                .group_by(hour))).all()
            top = (await conn.execute(
                select(s.c.worker_id, func.count().label("n"))
                .where(s.c.pool_id == req.pool_id, s.c.status == "accepted")
                .group_by(s.c.worker_id)
                .order_by(func.count().desc(), s.c.worker_id).limit(req.top))).all()
        per_hour = {(h if isinstance(h, datetime) else datetime.fromisoformat(h)): n
                    for h, n in hourly}
        accepted, rejected = counts.get("accepted", 0), counts.get("rejected", 0)
        return rpc.PoolStats(
            pool_id=req.pool_id, pending=counts.get("pending", 0), accepted=accepted,
            rejected=rejected, acceptance_rate=domain.acceptance_rate(accepted, rejected),
            throughput_per_hour=[rpc.HourBucket(hour_start=h, decisions=n)
                                 for h, n in domain.hourly_buckets(per_hour, now)],
            top_workers=[rpc.WorkerCount(worker_id=w, accepted=n) for w, n in top])

    @svc.rpc(rpc.MY_DECISIONS)
    async def my_decisions(req: rpc.DecisionsRequest) -> rpc.Decisions:
        """Decision history: a worker's own, or any filtered for managers and admins."""
        role, me = req.actor.role, req.actor.user_id
        cond = [s.c.status != "pending"]
        if role == "worker":
            if req.worker_id not in (None, me) or req.decided_by is not None:
                raise Forbidden("forbidden",
                                "workers see only their own decisions, without reviewers")
            cond.append(s.c.worker_id == me)
        elif req.worker_id:
            cond.append(s.c.worker_id == req.worker_id)
        if req.decided_by:
            cond.append(s.c.decided_by == req.decided_by)
        if req.pool_id:
            cond.append(s.c.pool_id == req.pool_id)
        if req.status:
            cond.append(s.c.status == req.status)
        if req.since:
            cond.append(s.c.decided_at >= domain.as_utc(req.since))
        if req.until:
            cond.append(s.c.decided_at < domain.as_utc(req.until))
        cols = (s.c.assignment_id, s.c.task_id, s.c.pool_id, s.c.project_id, s.c.worker_id,
                s.c.status, s.c.review_comment, s.c.submitted_at, s.c.decided_at,
                s.c.decided_by)
        async with single.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(s)
                                        .where(and_(*cond)))).scalar_one()
            rows = (await conn.execute(
                select(*cols).where(*cond)
                .order_by(s.c.decided_at.desc(), s.c.assignment_id)
                .limit(req.page.limit).offset(req.page.offset))).all()
        return rpc.Decisions(total=total, items=[
            rpc.Decision(
                assignment_id=r.assignment_id, task_id=r.task_id, pool_id=r.pool_id,
                project_id=r.project_id, worker_id=r.worker_id, status=r.status,
                comment=r.review_comment, submitted_at=domain.as_utc(r.submitted_at),
                decided_at=domain.as_utc(r.decided_at),
                decided_by=None if role == "worker" else r.decided_by)
            for r in rows])

    return svc


def main() -> None:
    run(create_service())


if __name__ == "__main__":
    main()
