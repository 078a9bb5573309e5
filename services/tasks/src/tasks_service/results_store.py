"""SQL of the results slice: pool quality settings, hints, aggregation requests and
aggregated answers, the mixer's and dynamic overlap's reads. Statements built once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, cast, delete, exists, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.rpc import tasks as rpc
from servicekit.db import insert
from tasks_service import domain
from tasks_service.db import (
    assignments,
    pool_aggregations,
    pool_quality,
    pools,
    task_hints,
    task_result_events,
    task_results,
    tasks,
)

A, T, P, Q, G, R = (assignments.c, tasks.c, pools.c, pool_quality.c, pool_aggregations.c,
                    task_results.c)
_QUALITY_COLS = [Q[f] for f in rpc.PoolQuality.model_fields]

_new_quality = insert(pool_quality)
_SET_QUALITY = _new_quality.on_conflict_do_update(
    index_elements=["pool_id"],
    set_={c: _new_quality.excluded[c] for c in [*rpc.PoolQuality.model_fields, "updated_at"]})
_GET_QUALITY = select(*_QUALITY_COLS).where(Q.pool_id == bindparam("pid"))
_new_hint = insert(task_hints)
_SET_HINT = _new_hint.on_conflict_do_update(index_elements=["task_id"],
                                            set_={"hint": _new_hint.excluded.hint})
_new_request = insert(pool_aggregations)
_REQUEST = _new_request.on_conflict_do_update(
    index_elements=["pool_id", "method"],
    set_={"requested_at": _new_request.excluded.requested_at}).returning(*pool_aggregations.c)
# every open pool with overlap gets its majority vote, the default method
_DEFAULT_REQUESTS = _new_request.from_select(
    ["pool_id", "method", "requested_at"],
    select(P.pool_id, literal("majority_vote", pool_aggregations.c.method.type),
           bindparam("now", type_=pool_aggregations.c.requested_at.type))
    .where(P.status == "open", P.overlap > 1),
).on_conflict_do_nothing(index_elements=["pool_id", "method"])
# an answer submitted or decided since the last run (stops at the first one it finds); looked
# at only for runs older than the minimum gap, so a big pool is not scanned every few seconds
_answered_since = exists().where(A.pool_id == G.pool_id,
                                 or_(A.submitted_at > G.computed_at,
                                     A.finished_at > G.computed_at))
_is_due = or_(G.computed_at.is_(None), G.requested_at > G.computed_at,
              and_(G.computed_at < bindparam("stale_before"), _answered_since))
_DUE = (select(G.pool_id, G.method).where(_is_due)
        .order_by(G.requested_at).limit(bindparam("n")))
# the run's own claim: still due, and no other replica on it (held until the run commits)
_CLAIM = (select(G.pool_id).where(G.pool_id == bindparam("pid"), G.method == bindparam("method"),
                                  _is_due)
          .with_for_update(skip_locked=True))
_DONE = (update(pool_aggregations)
         .where(G.pool_id == bindparam("d_pid"), G.method == bindparam("d_method"))
         .values(computed_at=bindparam("d_at"), answers_used=bindparam("d_used"),
                 seconds=bindparam("d_s"), error=bindparam("d_err")))
_STATE = select(pool_aggregations).where(G.pool_id == bindparam("pid"),
                                         G.method == bindparam("method"))
_CLEAR = delete(task_results).where(R.pool_id == bindparam("c_pid"),
                                    R.method == bindparam("c_method"))
_RESULTS = (select(R.task_id, R.field, R.answer, R.confidence, R.answers)
            .where(R.pool_id == bindparam("pid"), R.method == bindparam("method"))
            .order_by(R.task_id, R.field))
# result ready: the next page (by task) of this run's final results, the ones new or whose
# answers differ from the last published get their next revision (upserted here, in the
# run's transaction, so each revision is recorded once); every task of the page comes back,
# with its revision when an event is due
E = task_result_events.c
_answer = cast(R.answer, JSONB)
_final_page = (
    select(R.task_id, R.pool_id, R.method,
           func.jsonb_object_agg(R.field, func.jsonb_build_object(
               "answer", _answer, "confidence", R.confidence, "answers", R.answers), type_=JSONB)
           .label("fields"),
           func.jsonb_object_agg(R.field, _answer).label("answers"),
           func.min(R.confidence).label("confidence"))
    .where(R.pool_id == bindparam("pid"), R.method == bindparam("method"),
           R.task_id > bindparam("after"), R.final)
    .group_by(R.task_id, R.pool_id, R.method).order_by(R.task_id).limit(bindparam("n"))
    .cte("page"))
_changed = (
    select(_final_page.c.task_id, _final_page.c.method, _final_page.c.pool_id,
           (func.coalesce(E.revision, 0) + 1).label("revision"), _final_page.c.answers,
           bindparam("now", type_=task_result_events.c.published_at.type).label("published_at"))
    .select_from(_final_page.outerjoin(task_result_events,
                                       and_(E.task_id == _final_page.c.task_id,
                                            E.method == _final_page.c.method)))
    .where(or_(E.task_id.is_(None), E.answers != _final_page.c.answers)))
_new_event = insert(task_result_events).from_select(
    ["task_id", "method", "pool_id", "revision", "answers", "published_at"], _changed)
_published = _new_event.on_conflict_do_update(
    index_elements=["task_id", "method"],
    set_={c: _new_event.excluded[c] for c in ("revision", "answers", "published_at")},
).returning(E.task_id, E.revision).cte("published")
_READY_PAGE = (select(_final_page.c.task_id, _final_page.c.fields, _final_page.c.confidence,
                      _published.c.revision)
               .select_from(_final_page.outerjoin(_published,
                                                  _published.c.task_id == _final_page.c.task_id))
               .order_by(_final_page.c.task_id))
_COMPUTED_METHODS = (select(G.method).where(G.pool_id == bindparam("pid"),
                                            G.computed_at.is_not(None)).order_by(G.method))
_FOR_TASKS = (select(R.task_id, R.method, R.field, R.answer, R.confidence)
              .where(R.task_id.in_(bindparam("tids", expanding=True))))
_FEEDBACK = (select(A.worker_id, A.status, A.answers, A.pool_id, T.control_answers,
                    task_hints.c.hint)
             .select_from(assignments.join(tasks, T.task_id == A.task_id)
                          .outerjoin(task_hints, task_hints.c.task_id == A.task_id))
             .where(A.assignment_id == bindparam("aid")))
_TASK_ANSWERS = (select(A.answers).where(A.task_id == bindparam("tid"),
                                         A.status == domain.ACCEPTED))
_RAISE_OVERLAP = (update(tasks).where(T.task_id == bindparam("o_tid"),
                                      T.overlap == bindparam("o_was"))
                  .values(overlap=T.overlap + 1))
_CONTROL_DONE = (select(A.answers, T.control_answers)
                 .select_from(assignments.join(tasks, T.task_id == A.task_id))
                 .where(A.pool_id == bindparam("pid"), A.worker_id == bindparam("wid"),
                        T.control_answers.is_not(None),
                        A.status.in_([domain.SUBMITTED, domain.ACCEPTED])))


class ResultsStore:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def quality(self, pool_id: str) -> rpc.PoolQuality:
        row = (await self.conn.execute(_GET_QUALITY, {"pid": pool_id})).first()
        return rpc.PoolQuality.model_validate(dict(row._mapping)) if row else rpc.PoolQuality()

    async def set_quality(self, pool_id: str, q: rpc.PoolQuality, now: datetime) -> None:
        await self.conn.execute(_SET_QUALITY, {"pool_id": pool_id, "updated_at": now,
                                               **q.model_dump()})

    async def set_hints(self, pool_id: str, hints: list[rpc.TaskHint]) -> int:
        ids = [h.task_id for h in hints]
        known: set[str] = set((await self.conn.execute(
            select(T.task_id).where(T.pool_id == pool_id, T.task_id.in_(ids)))).scalars())
        rows = [{"task_id": h.task_id, "hint": h.hint} for h in hints if h.task_id in known]
        if rows:
            await self.conn.execute(_SET_HINT, rows)
        return len(rows)

    async def request(self, pool_id: str, method: str, now: datetime) -> rpc.AggregationState:
        row = (await self.conn.execute(_REQUEST, {"pool_id": pool_id, "method": method,
                                                  "requested_at": now})).one()
        return rpc.AggregationState.model_validate(dict(row._mapping))

    async def add_default_requests(self, now: datetime) -> None:
        await self.conn.execute(_DEFAULT_REQUESTS, {"now": now})

    async def due(self, n: int, stale_before: datetime) -> list[tuple[str, str]]:
        rows = await self.conn.execute(_DUE, {"n": n, "stale_before": stale_before})
        return [(r.pool_id, r.method) for r in rows]

    async def claim(self, pool_id: str, method: str, stale_before: datetime) -> bool:
        """Lock the (pool, method) run until the commit if it is still due and free."""
        row = (await self.conn.execute(_CLAIM, {"pid": pool_id, "method": method,
                                                "stale_before": stale_before})).first()
        return row is not None

    async def replace_results(self, pool_id: str, method: str) -> None:
        await self.conn.execute(_CLEAR, {"c_pid": pool_id, "c_method": method})

    async def add_results(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.conn.execute(task_results.insert(), rows)

    async def done(self, pool_id: str, method: str, at: datetime, used: int,
                   seconds: float | None, error: str | None) -> None:
        await self.conn.execute(_DONE, {"d_pid": pool_id, "d_method": method, "d_at": at,
                                        "d_used": used, "d_s": seconds, "d_err": error})

    async def state(self, pool_id: str, method: str) -> rpc.AggregationState | None:
        row = (await self.conn.execute(_STATE, {"pid": pool_id, "method": method})).first()
        return rpc.AggregationState.model_validate(dict(row._mapping)) if row else None

    async def results(self, pool_id: str, method: str, limit: int,
                      offset: int) -> tuple[list[rpc.TaskResult], int]:
        params = {"pid": pool_id, "method": method}
        total = (await self.conn.execute(select(func.count()).select_from(
            _RESULTS.subquery()), params)).scalar_one()
        rows = await self.conn.execute(_RESULTS.limit(limit).offset(offset), params)
        return [rpc.TaskResult.model_validate(dict(r._mapping)) for r in rows], int(total)

    async def ready_page(self, pool_id: str, method: str, after: str, n: int,
                         now: datetime) -> list[Any]:
        """The next ``n`` tasks (after ``after``) of the pool's final results by ``method``,
        each with ``revision`` set when its result is new or changed (and now recorded as
        published), else None. Empty: no more."""
        return list(await self.conn.execute(_READY_PAGE, {
            "pid": pool_id, "method": method, "after": after, "n": n, "now": now}))

    async def computed_methods(self, pool_id: str) -> list[str]:
        return list((await self.conn.execute(_COMPUTED_METHODS, {"pid": pool_id})).scalars())

    async def for_tasks(self, task_ids: list[str]) -> dict[tuple[str, str, str], tuple[Any, float]]:
        """(task, method, field) -> (answer, confidence) for the export's rows."""
        if not task_ids:
            return {}
        rows = await self.conn.execute(_FOR_TASKS, {"tids": sorted(set(task_ids))})
        return {(r.task_id, r.method, r.field): (r.answer, r.confidence) for r in rows}

    async def feedback_row(self, assignment_id: str) -> Any:
        return (await self.conn.execute(_FEEDBACK, {"aid": assignment_id})).first()

    async def accepted_answers(self, task_id: str) -> list[dict[str, Any]]:
        rows = await self.conn.execute(_TASK_ANSWERS, {"tid": task_id})
        return [r.answers or {} for r in rows]

    async def raise_overlap(self, task_id: str, was: int) -> bool:
        res = await self.conn.execute(_RAISE_OVERLAP, {"o_tid": task_id, "o_was": was})
        return bool(res.rowcount)

    async def control_answers_of(self, pool_id: str,
                                 worker_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        rows = await self.conn.execute(_CONTROL_DONE, {"pid": pool_id, "wid": worker_id})
        return [(r.answers or {}, r.control_answers) for r in rows]
