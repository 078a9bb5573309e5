"""Results and quality: aggregated answers per task (a batch job, off the request path),
pool kinds (training, exam), the mixer's settings, hints, and dynamic overlap.

The aggregation of a pool runs in a short-lived process (:mod:`tasks_service.aggregate_job`)
that holds numpy and the pool's answers; this process only streams its output lines into
``task_results`` through a unit of work, so its memory does not grow with the pool. In the
same transaction every final result (the task needs no more answers) that is new or changed
is recorded as ``task.result_ready`` (decision 40), page by page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from contracts.envelope import Envelope
from contracts.events import FieldResult, ResultReady, ReviewAccepted
from contracts.rpc import tasks as rpc
from servicekit.errors import Conflict, Invalid, NotFound
from servicekit.router import Router
from servicekit.uow import UnitOfWork
from tasks_service import domain, workers
from tasks_service.catalog import existing_pool
from tasks_service.context import TasksContext
from tasks_service.results_store import ResultsStore
from tasks_service.store import Decided, TasksStore

log = logging.getLogger("tasks_service.results")

router = Router()

WRITE_BATCH = 2000  # result rows per INSERT
READY_PAGE = 2000  # tasks per page of result-ready events
DUE_PER_RUN = 4  # aggregations per run of the batch job


def _rs(conn_holder: Any) -> ResultsStore:
    """The results slice's statements on the unit of work's (or reader's) connection."""
    return conn_holder.store.quality


# --------------------------------------------------------------------- pure rules


def vote_confidence(answers: list[dict[str, Any]], fields: list[str]) -> float:
    """The majority vote's confidence of a task: for each field the top answer's share of
    the answers, and the lowest of the fields (0 when there is no answer)."""
    if not answers:
        return 0.0
    worst = 1.0
    for f in fields:
        votes = Counter(json.dumps(a.get(f), sort_keys=True) for a in answers
                        if a.get(f) is not None)
        total = sum(votes.values())
        if total:
            worst = min(worst, votes.most_common(1)[0][1] / total)
    return worst


def needs_more(q: rpc.PoolQuality, *, overlap: int, accepted: int, confidence: float) -> bool:
    """Dynamic overlap: one more answer while the task's overlap is full, its confidence is
    under the threshold and the maximum is not reached."""
    if q.dynamic_max_overlap is None or q.dynamic_confidence is None:
        return False
    return (accepted >= overlap and overlap < q.dynamic_max_overlap
            and confidence < q.dynamic_confidence)


def exam_score(done: list[tuple[dict[str, Any], dict[str, Any]]]) -> int:
    """The share of correct known-answer answers, 0..100 (rounded down)."""
    if not done:
        return 0
    right = sum(1 for answers, known in done if domain.control_correct(known, answers))
    return right * 100 // len(done)


def mixer_slot(q: rpc.PoolQuality, taken_before: int) -> str | None:
    """Which kind of task the worker's next take in the pool serves: ``real``, ``golden`` or
    ``training`` by its place in the suite; None: no mixer."""
    size = q.mixer_real + q.mixer_golden + q.mixer_training
    if q.kind != "real" or size == 0:
        return None
    place = taken_before % size
    if place < q.mixer_real:
        return "real"
    return "golden" if place < q.mixer_real + q.mixer_golden else "training"


# ------------------------------------------------------------------- settings


@router.rpc(rpc.GET_POOL_QUALITY)
async def get_pool_quality(req: rpc.PoolGet, ctx: TasksContext) -> rpc.PoolQualityView:
    async with ctx.read() as r:
        await existing_pool(r.store, req.pool_id)
        q = await _rs(r).quality(req.pool_id)
    return rpc.PoolQualityView(pool_id=req.pool_id, **q.model_dump())


def _check_quality(q: rpc.PoolQuality, pool: rpc.AdminPool) -> None:
    if q.kind == "exam" and not q.exam_skill:
        raise Invalid("exam_needs_skill", "an exam pool needs exam_skill, the skill it sets")
    if q.kind == "training" and pool.price_minor != 0:
        raise Conflict("training_is_unpaid", "a training pool pays nothing: set its price to 0")
    if (q.dynamic_max_overlap is None) != (q.dynamic_confidence is None):
        raise Invalid("dynamic_overlap_incomplete",
                      "dynamic overlap needs both dynamic_max_overlap and dynamic_confidence")


@router.rpc(rpc.SET_POOL_QUALITY)
async def set_pool_quality(req: rpc.PoolQualitySet, ctx: TasksContext) -> rpc.PoolQualityView:
    """Set a pool's kind, exam skill, mixer and dynamic overlap."""
    q = rpc.PoolQuality.model_validate(req.model_dump(include=set(rpc.PoolQuality.model_fields)))
    async with ctx.uow() as uow:
        pool = await existing_pool(uow.store, req.pool_id, lock=True)
        _check_quality(q, pool)
        await _rs(uow).set_quality(req.pool_id, q, ctx.clock())
    return rpc.PoolQualityView(pool_id=req.pool_id, **q.model_dump())


@router.rpc(rpc.SET_TASK_HINTS)
async def set_task_hints(req: rpc.TaskHintsSet, ctx: TasksContext) -> rpc.TaskHintsSaved:
    """Hints for tasks of the pool (other task ids are ignored)."""
    async with ctx.uow() as uow:
        await existing_pool(uow.store, req.pool_id)
        saved = await _rs(uow).set_hints(req.pool_id, req.hints)
    return rpc.TaskHintsSaved(saved=saved)


# --------------------------------------------------------------------- results


@router.rpc(rpc.REQUEST_AGGREGATION)
async def request_aggregation(req: rpc.AggregationRequest,
                              ctx: TasksContext) -> rpc.AggregationState:
    """Record the request; the batch job computes it soon after, off this request."""
    async with ctx.uow() as uow:
        await existing_pool(uow.store, req.pool_id)
        return await _rs(uow).request(req.pool_id, req.method, ctx.clock())


@router.rpc(rpc.POOL_RESULTS)
async def pool_results(req: rpc.PoolResultsRequest, ctx: TasksContext) -> rpc.PoolResults:
    """A page of a pool's aggregated answers (task, field) by one method."""
    async with ctx.read() as r:
        await existing_pool(r.store, req.pool_id)
        rs = _rs(r)
        state = await rs.state(req.pool_id, req.method)
        items, total = await rs.results(req.pool_id, req.method, req.page.limit,
                                        req.page.offset)
    return rpc.PoolResults(state=state, items=items, total=total)


@router.rpc(rpc.TRAINING_FEEDBACK)
async def training_feedback(req: rpc.AssignmentRef, ctx: TasksContext) -> rpc.TrainingFeedback:
    """After a training answer: right or wrong, the known answer and the hint. Other pools'
    known answers stay secret (golden tasks must not leak)."""
    async with ctx.read() as r:
        row = await _rs(r).feedback_row(req.assignment_id)
        if row is None or row.worker_id != req.actor.user_id:
            raise NotFound("assignment_not_found", f"you have no assignment {req.assignment_id}")
        q = await _rs(r).quality(row.pool_id)
    if row.status == domain.ACTIVE:
        raise Conflict("assignment_not_submitted", "submit the answer first")
    if q.kind != "training" or not row.control_answers:
        return rpc.TrainingFeedback(assignment_id=req.assignment_id, correct=None,
                                    known_answers=None, hint=None)
    return rpc.TrainingFeedback(
        assignment_id=req.assignment_id, known_answers=row.control_answers, hint=row.hint,
        correct=domain.control_correct(row.control_answers, row.answers or {}))


# ------------------------------------------------------ after a review decision


async def after_acceptance(uow: UnitOfWork[TasksStore], event: ReviewAccepted, env: Envelope,
                           row: Decided) -> None:
    """Dynamic overlap and an exam's skill, for a pool that has either (``row.quality``).
    Runs in the decision consumer's unit of work, after the acceptance was applied (with
    who decided, for the export)."""
    if not row.quality:
        return
    rs = _rs(uow)
    q = await rs.quality(row.pool_id)
    # a sandbox answer (staff trying the pool) never gives anyone a skill
    if q.kind == "exam" and q.exam_skill and row.control_answers and not event.sandbox:
        score = exam_score(await rs.control_answers_of(row.pool_id, row.worker_id))
        await workers.set_skill(uow, row.worker_id, q.exam_skill, score, event.decided_at, env)
    if q.dynamic_max_overlap is not None and not row.is_control:
        answers = await rs.accepted_answers(row.task_id)
        fields = sorted({k for a in answers for k in a})
        if needs_more(q, overlap=row.overlap, accepted=len(answers),
                      confidence=vote_confidence(answers, fields)):
            await rs.raise_overlap(row.task_id, row.overlap)


# ------------------------------------------------------------------ batch job


def _stale_before(ctx: TasksContext) -> datetime:
    return ctx.clock() - timedelta(seconds=ctx.settings.aggregate_min_gap_s)


async def _stream(rs: ResultsStore, proc: asyncio.subprocess.Process, pool_id: str,
                  method: str, now: datetime) -> dict[str, Any]:
    """The job's result lines into ``task_results`` in batches; its summary line."""
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.ensure_future(proc.stderr.read())  # drained apart: a full pipe would stall
    summary: dict[str, Any] = {}
    batch: list[dict[str, Any]] = []
    async for line in proc.stdout:
        item = json.loads(line)
        if item.get("done"):
            summary = item
            continue
        batch.append({**item, "pool_id": pool_id, "method": method, "computed_at": now})
        if len(batch) >= WRITE_BATCH:
            await rs.add_results(batch)
            batch = []
    await rs.add_results(batch)
    err = (await errors).decode(errors="replace")[-2000:]
    code = await proc.wait()
    if code != 0 or not summary:
        raise RuntimeError(f"aggregation of {pool_id} by {method} failed ({code}): {err}")
    return summary


async def _record_ready(uow: UnitOfWork[TasksStore], pool_id: str, method: str,
                        now: datetime) -> int:
    """A ``task.result_ready`` for each final result of this run that is new or whose answers
    changed since the last one published (its revision + 1), written to the outbox a page at
    a time so that a pool of 200,000 tasks does not hold 200,000 events in memory."""
    rs = _rs(uow)
    pool = await existing_pool(uow.store, pool_id)
    after, recorded = "", 0
    while page := await rs.ready_page(pool_id, method, after, READY_PAGE, now):
        for row in page:
            if row.revision is None:
                continue
            fields = {f: FieldResult.model_validate(v) for f, v in row.fields.items()}
            uow.record(ResultReady(pool_id=pool_id, project_id=pool.project_id,
                                   task_id=row.task_id, method=method, revision=row.revision,
                                   fields=fields, confidence=row.confidence, computed_at=now))
            recorded += 1
        await uow.flush()
        after = page[-1].task_id
    return recorded


async def _run_job(ctx: TasksContext, pool_id: str, method: str) -> None:
    """One aggregation, claimed (another replica skips it): the job's lines written as they
    come, all in one transaction (readers see the old results until it commits)."""
    async with ctx.uow() as uow:
        rs = _rs(uow)
        if not await rs.claim(pool_id, method, _stale_before(ctx)):
            return
        now = ctx.clock()  # answers after this are left for the next run
        await rs.replace_results(pool_id, method)
        env = {**os.environ, "TASKS_DATABASE_URL": ctx.settings.database_url}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tasks_service.aggregate_job", pool_id, method, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=1 << 20)
        try:
            summary = await _stream(rs, proc, pool_id, method, now)
        finally:
            if proc.returncode is None:  # failed half-way: the job must not outlive the run
                proc.kill()
                await proc.wait()
        ready = await _record_ready(uow, pool_id, method, now)
        await rs.done(pool_id, method, now, int(summary["answers_used"]),
                      float(summary["seconds"]), None)
    summary["result_ready"] = ready
    log.info("aggregated %s by %s: %s", pool_id, method, summary)


@router.periodic(lambda s: s.aggregate_interval_s, changes_state=True)
async def refresh_aggregations(ctx: TasksContext) -> None:
    """Majority vote for every open pool with overlap; then each requested aggregation
    never computed, asked for again, or whose pool got answers since it was computed (at most
    once per ``aggregate_min_gap_s``)."""
    async with ctx.uow() as uow:
        await _rs(uow).add_default_requests(ctx.clock())
        due = await _rs(uow).due(DUE_PER_RUN, _stale_before(ctx))
    for pool_id, method in due:
        try:
            await _run_job(ctx, pool_id, method)
        except Exception as exc:
            log.exception("aggregation of %s by %s failed", pool_id, method)
            async with ctx.uow() as uow:
                await _rs(uow).done(pool_id, method, ctx.clock(), 0, None, str(exc)[:2000])
