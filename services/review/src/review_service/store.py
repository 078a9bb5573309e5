"""All of the review service's SQL: statements built once at import, results as contract
models or small dataclasses.

Every decision is one conditional UPDATE (``... WHERE status = 'pending' AND <the caller
may decide>``): two managers, the auto-accept sweeper and the rules race freely and only
one of them ever decides a submission. Bind parameters of an UPDATE are named unlike any
column (a parameter named like a column would join its SET clause).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

import contracts.rpc.review as rpc
from review_service.db import appeals
from review_service.db import submissions as s
from review_service.domain import LockState
from servicekit.db import insert
from servicekit.prepared import Prepared

# What a manager sees of a submission: all but when it reached review.
PUBLIC_COLUMNS = tuple(c for c in s.c if c.name != "received_at")
_DECIDED = (s.c.assignment_id, s.c.task_id, s.c.pool_id, s.c.project_id, s.c.worker_id,
            s.c.sandbox)

_AID = bindparam("q_assignment_id", type_=s.c.assignment_id.type)
_ME = bindparam("q_me", type_=s.c.lock_holder.type)
_NOW = bindparam("q_now", type_=s.c.lock_until.type)
_UNTIL = bindparam("q_until", type_=s.c.lock_until.type)
_POOL = bindparam("q_pool", type_=s.c.pool_id.type)
_LIMIT = bindparam("q_limit", type_=Integer)
_OFFSET = bindparam("q_offset", type_=Integer)


def lock_free(now: Any) -> Any:
    """Nobody holds a live lock (never locked, unlocked or expired) at ``now`` (a time, or
    a bind parameter in a statement built once)."""
    return or_(s.c.lock_holder.is_(None), s.c.lock_until <= now)


@dataclass(frozen=True)
class Decided:
    """A submission a statement just decided: what its event needs."""

    assignment_id: str
    task_id: str
    pool_id: str
    project_id: str
    worker_id: str
    sandbox: bool = False


# The SET clause of a bulk decision (the rules' and the sweeper's).
_DECIDED_SET = {"status": bindparam("x_status", type_=s.c.status.type),
                "decided_by": bindparam("x_by", type_=s.c.decided_by.type),
                "decided_at": bindparam("x_at", type_=s.c.decided_at.type),
                "review_comment": bindparam("x_comment", type_=s.c.review_comment.type),
                "lock_holder": None, "lock_until": None}


def _lock_next(by_pool: bool) -> Any:
    mine_or_free = or_(lock_free(_NOW), s.c.lock_holder == _ME)
    cond = [s.c.status == "pending", mine_or_free]
    if by_pool:
        cond.append(s.c.pool_id == _POOL)
    pick = (select(s.c.assignment_id).where(*cond)
            .order_by(s.c.submitted_at, s.c.assignment_id).limit(1)
            .with_for_update(skip_locked=True).scalar_subquery())
    return (update(s).where(s.c.assignment_id == pick, s.c.status == "pending", mine_or_free)
            .values(lock_holder=_ME, lock_until=_UNTIL).returning(*PUBLIC_COLUMNS))


def _pending(by_pool: bool, only_free: bool) -> tuple[Any, Any]:
    """(count, page) of the queue with its filters."""
    cond = [s.c.status == "pending"]
    if by_pool:
        cond.append(s.c.pool_id == _POOL)
    if only_free:
        cond.append(lock_free(_NOW))
    return (select(func.count()).select_from(s).where(*cond),
            select(*PUBLIC_COLUMNS).where(*cond).order_by(s.c.submitted_at, s.c.assignment_id)
            .limit(_LIMIT).offset(_OFFSET))


def _is_json(column: Any) -> bool:
    return column.type.__visit_name__ == "JSON"


def _enqueue_many() -> Prepared:
    """A batch of task.submitted enters the queue in one execution over arrays, one array
    per column (an insert per submission cost a round trip each); known assignments stay.
    JSON travels as text."""
    array_of = {"string": "text", "text": "text", "boolean": "boolean", "JSON": "text",
                "datetime": "timestamptz"}
    names = [c.name for c in s.c]
    values = [f"{c.name}::json" if _is_json(c) else c.name for c in s.c]
    arrays = [f"CAST(:{c.name} AS {array_of[c.type.__visit_name__]}[])" for c in s.c]
    return Prepared(text(
        f"INSERT INTO submissions ({', '.join(names)}) SELECT {', '.join(values)} "
        f"FROM unnest({', '.join(arrays)}) AS u({', '.join(names)}) "
        "ON CONFLICT (assignment_id) DO NOTHING RETURNING assignment_id"))


# every submission enters the queue through this one (prepared on asyncpg)
_ENQUEUE_MANY = _enqueue_many()
_GET = select(*PUBLIC_COLUMNS).where(s.c.assignment_id == _AID)
_STATE = (select(s.c.status, s.c.lock_holder, s.c.lock_until, s.c.decided_at)
          .where(s.c.assignment_id == _AID))
_MINE_OR_FREE = [s.c.assignment_id == _AID, s.c.status == "pending",
                 or_(lock_free(_NOW), s.c.lock_holder == _ME)]
_LOCK = (update(s).where(*_MINE_OR_FREE).values(lock_holder=_ME, lock_until=_UNTIL)
         .returning(s.c.assignment_id))
_UNLOCK = (update(s).where(*_MINE_OR_FREE).values(lock_holder=None, lock_until=None)
           .returning(s.c.assignment_id))
# a manager's next submission and the decision, every lifecycle: prepared on asyncpg,
# past SQLAlchemy's execution layer (servicekit.prepared)
_LOCK_NEXT = {False: Prepared(_lock_next(False)), True: Prepared(_lock_next(True))}
_PENDING = {(p, f): _pending(p, f) for p in (False, True) for f in (False, True)}
_DECIDE_ALL_OF_WORKER = (
    update(s).where(s.c.worker_id == bindparam("w_worker", type_=s.c.worker_id.type),
                    s.c.pool_id == bindparam("w_pool", type_=s.c.pool_id.type),
                    s.c.status == "pending", s.c.review_mode == "manual")
    .values(**_DECIDED_SET).returning(*_DECIDED))
_ACCEPT_OVERDUE = (
    update(s).where(
        s.c.assignment_id.in_(
            select(s.c.assignment_id)
            .where(s.c.status == "pending", s.c.auto_accept_at <= _NOW, lock_free(_NOW))
            .order_by(s.c.auto_accept_at).limit(_LIMIT)
            .with_for_update(skip_locked=True).scalar_subquery()),
        s.c.status == "pending")
    .values(**_DECIDED_SET).returning(*_DECIDED))

# A manager's decision and its outbox row in ONE statement (atomic on its own, so no
# BEGIN/COMMIT): the hot path of every lifecycle. The envelope is built in Python as for
# every event (``UnitOfWork.outbox_params``); the row's own ids, which the caller does not
# know, are merged into its data by the statement.
_DECIDE = Prepared(text("""
WITH d AS (
    UPDATE submissions
    SET status = :d_status, decided_by = :d_me, decided_at = CAST(:d_now AS TIMESTAMPTZ),
        review_comment = :d_comment, lock_holder = NULL, lock_until = NULL
    WHERE assignment_id = :d_assignment_id AND status = 'pending'
      AND lock_holder = :d_me AND lock_until > CAST(:d_now AS TIMESTAMPTZ)
    RETURNING task_id, pool_id, project_id, worker_id, sandbox
), o AS (
    INSERT INTO outbox (event_id, subject, payload, headers, created_at)
    SELECT :ob_event_id, :ob_subject,
           CAST(jsonb_set(CAST(:ob_payload AS JSONB), '{data}',
                          (CAST(:ob_payload AS JSONB) -> 'data') || jsonb_build_object(
                              'task_id', d.task_id, 'pool_id', d.pool_id,
                              'project_id', d.project_id, 'worker_id', d.worker_id,
                              'sandbox', d.sandbox))
                AS TEXT),
           :ob_headers, CAST(:ob_created_at AS TIMESTAMPTZ)
    FROM d
)
SELECT count(*) FROM d
"""))

_HOUR = func.date_trunc("hour", s.c.decided_at, "UTC")
# the statistics never count a sandbox submission (staff trying a sandbox pool)
_POOL_COUNTS = (select(s.c.status, func.count().label("n"))
                .where(s.c.pool_id == _POOL, ~s.c.sandbox).group_by(s.c.status))
_POOL_HOURLY = (select(_HOUR.label("hour"), func.count().label("n"))
                .where(s.c.pool_id == _POOL, s.c.decided_at >= _NOW, ~s.c.sandbox)
                .group_by(_HOUR))
_POOL_TOP = (select(s.c.worker_id, func.count().label("n"))
             .where(s.c.pool_id == _POOL, s.c.status == "accepted", ~s.c.sandbox)
             .group_by(s.c.worker_id).order_by(func.count().desc(), s.c.worker_id)
             .limit(_LIMIT))
_DECISION_COLS = (s.c.assignment_id, s.c.task_id, s.c.pool_id, s.c.project_id, s.c.worker_id,
                  s.c.status, s.c.review_comment.label("comment"), s.c.submitted_at,
                  s.c.decided_at, s.c.decided_by, s.c.sandbox)


@dataclass(frozen=True)
class DecisionFilter:
    """Which decided submissions a history asks for (None: any)."""

    pool_id: str | None = None
    worker_id: str | None = None
    status: str | None = None
    decided_by: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[Any]:
        cond = [s.c.status != "pending"]
        for col, value in ((s.c.pool_id, self.pool_id), (s.c.worker_id, self.worker_id),
                           (s.c.status, self.status), (s.c.decided_by, self.decided_by)):
            if value:
                cond.append(col == value)
        if self.since:
            cond.append(s.c.decided_at >= self.since)
        if self.until:
            cond.append(s.c.decided_at < self.until)
        return cond


@dataclass(frozen=True)
class PoolFigures:
    counts: dict[str, int]
    hourly: dict[datetime, int]
    top: list[tuple[str, int]]


def _submission(row: Any) -> rpc.Submission:
    return rpc.Submission.model_validate(dict(row._mapping))


class ReviewStore:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    # ------------------------------------------------------------------ queue

    async def enqueue_many(self, rows: list[dict[str, Any]]) -> set[str]:
        """Store submissions (in assignment order); the assignment ids that were new (an
        assignment already there was submitted before, under another event id)."""
        rows = sorted(rows, key=lambda r: r["assignment_id"])
        params = {c.name: [json.dumps(r[c.name]) if _is_json(c) else r[c.name] for r in rows]
                  for c in s.c}
        return {r[0] for r in await _ENQUEUE_MANY.all(self.conn, params)}

    async def list_pending(self, *, pool_id: str | None, only_free: bool, now: datetime,
                           limit: int, offset: int) -> tuple[list[rpc.Submission], int]:
        count, page = _PENDING[(pool_id is not None, only_free)]
        params = {"q_pool": pool_id, "q_now": now, "q_limit": limit, "q_offset": offset}
        total: int = (await self.conn.execute(count, params)).scalar_one()
        rows = (await self.conn.execute(page, params)).all()
        return [_submission(r) for r in rows], total

    async def get(self, assignment_id: str) -> rpc.Submission | None:
        row = (await self.conn.execute(_GET, {"q_assignment_id": assignment_id})).first()
        return _submission(row) if row else None

    async def lock_state(self, assignment_id: str) -> LockState | None:
        row = (await self.conn.execute(_STATE, {"q_assignment_id": assignment_id})).first()
        return LockState(**row._mapping) if row else None

    async def lock(self, assignment_id: str, *, me: str, now: datetime,
                   until: datetime) -> bool:
        """Take or extend the lock; False when refused (decided, held by another, absent)."""
        return (await self.conn.execute(_LOCK, {
            "q_assignment_id": assignment_id, "q_me": me, "q_now": now,
            "q_until": until})).first() is not None

    async def unlock(self, assignment_id: str, *, me: str, now: datetime) -> bool:
        return (await self.conn.execute(_UNLOCK, {
            "q_assignment_id": assignment_id, "q_me": me, "q_now": now})).first() is not None

    async def lock_next(self, *, me: str, now: datetime, until: datetime,
                        pool_id: str | None) -> rpc.Submission | None:
        """Lock the oldest free pending submission (one's own live lock comes back first in
        its turn): one statement, and PostgreSQL skips rows another manager's holds."""
        row = await _LOCK_NEXT[pool_id is not None].first(self.conn, {
            "q_me": me, "q_now": now, "q_until": until, "q_pool": pool_id})
        return _submission(row) if row else None

    # -------------------------------------------------------------- decisions

    async def decide(self, *, assignment_id: str, status: str, me: str, now: datetime,
                     comment: str | None, outbox: dict[str, Any]) -> bool:
        """Decide as the holder of a live lock, writing the event (``outbox``: the params of
        ``UnitOfWork.outbox_params``) in the same statement; False when refused."""
        n: int = (await _DECIDE.one(self.conn, {
            "d_status": status, "d_me": me, "d_now": now, "d_comment": comment,
            "d_assignment_id": assignment_id, **outbox}))[0]
        return bool(n)

    async def decide_all_of_worker(self, *, worker_id: str, pool_id: str, status: str,
                                   decided_by: str, now: datetime,
                                   comment: str | None) -> list[Decided]:
        """Decide every pending manual submission of a worker in a pool, locked or not."""
        rows = (await self.conn.execute(_DECIDE_ALL_OF_WORKER, {
            "w_worker": worker_id, "w_pool": pool_id, "x_status": status, "x_by": decided_by,
            "x_at": now, "x_comment": comment})).all()
        return [Decided(**r._mapping) for r in rows]

    async def accept_overdue(self, *, now: datetime, decided_by: str,
                             limit: int) -> list[Decided]:
        """Accept up to ``limit`` submissions whose auto-accept time has come and that
        nobody holds a live lock on (rows another sweeper holds are skipped)."""
        rows = (await self.conn.execute(_ACCEPT_OVERDUE, {
            "q_now": now, "q_limit": limit, "x_status": "accepted", "x_by": decided_by,
            "x_at": now, "x_comment": None})).all()
        return [Decided(**r._mapping) for r in rows]

    # ---------------------------------------------------------------- reading

    async def pool_figures(self, pool_id: str, *, since: datetime, top: int) -> PoolFigures:
        """Counts by status, decisions per hour since ``since``, the most accepted workers."""
        params = {"q_pool": pool_id, "q_now": since, "q_limit": top}
        counts = {r.status: r.n for r in (await self.conn.execute(_POOL_COUNTS, params))}
        hourly = {r.hour: r.n for r in (await self.conn.execute(_POOL_HOURLY, params))}
        best = [(r.worker_id, r.n) for r in (await self.conn.execute(_POOL_TOP, params))]
        return PoolFigures(counts, hourly, best)

    async def decisions(self, f: DecisionFilter, *, limit: int,
                        offset: int) -> tuple[list[dict[str, Any]], int]:
        """Decided submissions, newest first (rows as dicts of ``rpc.Decision`` fields)."""
        cond = f.conditions()
        total: int = (await self.conn.execute(
            select(func.count()).select_from(s).where(*cond))).scalar_one()
        rows = (await self.conn.execute(
            select(*_DECISION_COLS).where(*cond)
            .order_by(s.c.decided_at.desc(), s.c.assignment_id)
            .limit(limit).offset(offset))).all()
        return [dict(r._mapping) for r in rows], total

    # ---------------------------------------------------------------- appeals

    async def add_appeal(self, row: dict[str, Any]) -> bool:
        """File an appeal; False if the worker appealed this subject before."""
        q = insert(appeals).on_conflict_do_nothing(constraint="uq_appeals_once")
        return (await self.conn.execute(q, row)).rowcount == 1

    async def appeal(self, appeal_id: str, *, lock: bool = False) -> rpc.Appeal | None:
        q = select(appeals).where(appeals.c.appeal_id == appeal_id)
        row = (await self.conn.execute(q.with_for_update() if lock else q)).first()
        return rpc.Appeal.model_validate(dict(row._mapping)) if row else None

    async def decide_appeal(self, appeal_id: str, *, status: str, reply: str, me: str,
                            now: datetime) -> None:
        await self.conn.execute(update(appeals).where(appeals.c.appeal_id == appeal_id).values(
            status=status, reply=reply, decided_by=me, decided_at=now))

    async def reaccept(self, assignment_id: str, *, me: str, now: datetime,
                       comment: str) -> Decided | None:
        """A rejected submission becomes accepted (an upheld appeal); None if it is not
        rejected (any more)."""
        row = (await self.conn.execute(
            update(s).where(s.c.assignment_id == assignment_id, s.c.status == "rejected")
            .values(status="accepted", decided_by=me, decided_at=now, review_comment=comment)
            .returning(*_DECIDED))).first()
        return Decided(**row._mapping) if row else None

    async def list_appeals(self, *, worker_id: str | None, status: str | None, limit: int,
                           offset: int) -> tuple[list[rpc.Appeal], int]:
        q = select(appeals)
        if worker_id is not None:
            q = q.where(appeals.c.worker_id == worker_id)
        if status is not None:
            q = q.where(appeals.c.status == status)
        total = (await self.conn.execute(
            select(func.count()).select_from(q.subquery()))).scalar_one()
        rows = await self.conn.execute(
            q.order_by(appeals.c.filed_at.desc(), appeals.c.appeal_id).limit(limit)
            .offset(offset))
        return [rpc.Appeal.model_validate(dict(r._mapping)) for r in rows], int(total)
