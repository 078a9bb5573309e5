"""The assignment lifecycle: take, submit, skip, report, the worker's own views, and the
sweeper that expires assignments past their deadline.

Take and submit are the hot paths (see :mod:`tasks_service.store`): a take from a named pool
is BEGIN, one statement that creates and locks the worker's row and reads its limits,
counts and the pool, the prebuilt claim, one statement that writes the assignment, the
worker's last take and ``task.taken``, and COMMIT. A submit is two round trips without
BEGIN/COMMIT: a read, then one statement that moves ACTIVE -> SUBMITTED (owner, status and
deadline re-checked) and writes ``task.submitted``; only when that does not apply (unknown,
not active, late, changed meanwhile) does a locking transaction decide, with its exact error.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import partial
from itertools import groupby
from typing import TypeVar

from prometheus_client import Counter as Metric

from contracts.events import TaskExpired, TaskReported, TaskSkipped, TaskSubmitted, TaskTaken
from contracts.rpc import tasks as rpc
from servicekit.errors import CommitThen, Conflict, Forbidden, Invalid, NotFound, ServiceError
from servicekit.router import Router
from servicekit.uow import UnitOfWork
from tasks_service import captcha, domain, results
from tasks_service.catalog import pool_not_found
from tasks_service.context import TasksContext
from tasks_service.store import (
    AssignmentRow,
    ClaimedTask,
    Overdue,
    SubmitRow,
    TakeContext,
    TakePool,
    TasksStore,
)

router = Router()

TAKES = Metric("tasks_takes_total", "Take attempts by outcome (ok or the refusal code)",
               ["outcome"])
SUBMITS = Metric("tasks_submissions_total", "Submit attempts by outcome", ["outcome"])
EXPIRED_TOTAL = Metric("tasks_assignments_expired_total",
                       "Assignments expired by the sweeper or at a late submit")


def no_tasks() -> NotFound:
    return NotFound("no_tasks_available", "no task is available for you right now")


_REF = ("assignment_id", "task_id", "pool_id", "project_id", "worker_id", "sandbox")


def _ref(row: AssignmentRow | Overdue) -> dict[str, str | bool]:
    """The fields every assignment event carries."""
    return {k: getattr(row, k) for k in _REF}


def refusal_for(pool: TakePool, skills: dict[str, int],
                restrictions: list[domain.ActiveRestriction],
                now: datetime) -> ServiceError | None:
    """Why the worker may not take from this pool (restriction, skill filter), or None."""
    r = domain.blocking_restriction(restrictions, pool_id=pool.pool_id,
                                    project_id=pool.project_id, now=now)
    if r is not None:
        until = r.until.isoformat() if r.until else None
        return Forbidden("restricted",
                         f"you are restricted ({r.scope}) until {until or 'further notice'}",
                         details={"scope": r.scope, "until": until})
    if not domain.skills_pass(pool.skill_filters, skills):
        return Forbidden("skills_mismatch", "your skills do not match this pool's filters")
    return None


# --------------------------------------------------------------------------- take


def _within_limits(c: TakeContext, now: datetime) -> rpc.TrustLevelLimits:
    """The worker's trust-level limits, or the refusal of the first one this take breaks."""
    if c.limits is None:  # only before the startup seed ran
        raise ServiceError("not_ready", "trust limits are not set up yet", status=503)
    refusal = domain.check_take_limits(c.limits, active=c.active,
                                       earliest_deadline=c.earliest_deadline,
                                       last_take_at=c.last_take_at, now=now)
    if refusal is not None:
        raise ServiceError("take_limit", refusal.message(), status=429,
                           details=refusal.details())
    return c.limits


def sandbox_refusal(pool: TakePool | None, pool_id: str | None,
                    role: str) -> ServiceError | None:
    """Who may take where: a worker never from a sandbox pool (404, as for a pool they
    cannot see); staff only from a named sandbox pool, to try it as a worker."""
    if role == "worker":
        return pool_not_found(pool.pool_id) if pool is not None and pool.sandbox else None
    if pool_id is None:
        return Forbidden("sandbox_only", "staff take tasks only from a named sandbox pool")
    if pool is None:
        return pool_not_found(pool_id)
    if not pool.sandbox:
        return Forbidden("not_sandbox", "staff may try only a sandbox project's pools")
    return None


async def _candidates(store: TasksStore, c: TakeContext, pool_id: str | None,
                      now: datetime) -> list[TakePool]:
    """The pools this take may claim from: the one named (or an error saying why not),
    or every open pool the worker may use."""
    restr = await store.active_restrictions(c.worker_id, now) if c.restricted else []
    if pool_id is None:
        return [p for p in await store.open_pools()
                if refusal_for(p, c.skills, restr, now) is None]
    if c.pool is None:
        raise pool_not_found(pool_id)
    if c.pool.sandbox:  # staff trying it: no restriction or skill filter stands in the way
        if c.pool.status != "open":
            raise Conflict("pool_not_open", f"the pool is {c.pool.status}, not open")
        return [c.pool]
    if c.pool.status != "open":
        raise Conflict("pool_not_open", f"the pool is {c.pool.status}, not open")
    refused = refusal_for(c.pool, c.skills, restr, now)
    if refused is not None:
        raise refused
    return [c.pool]


async def _claim(store: TasksStore, worker_id: str, candidates: list[TakePool],
                 slot: str | None = None) -> tuple[ClaimedTask, TakePool]:
    """The oldest free task this worker never had, in the highest-priority pools first; with
    a mixer ``slot``, one of that kind first (any kind when none of it is left)."""
    if slot is not None and len(candidates) == 1:
        task = await store.claim_task(worker_id, [candidates[0].pool_id], slot)
        if task is not None:
            return task, candidates[0]
    ordered = sorted(candidates, key=lambda p: -p.priority)
    for _, same in groupby(ordered, key=lambda p: p.priority):
        group = {p.pool_id: p for p in same}
        task = await store.claim_task(worker_id, list(group))
        if task is not None:
            return task, group[task.pool_id]
    raise no_tasks()


async def _take(uow: UnitOfWork[TasksStore], ctx: TasksContext, worker_id: str,
                pool_id: str | None, role: str = "worker") -> rpc.TakeResult:
    now = ctx.clock()
    c = await uow.store.take_context(worker_id, pool_id, now)
    refused = sandbox_refusal(c.pool, pool_id, role)
    if refused is not None:
        raise refused
    sandbox = c.pool is not None and c.pool.sandbox
    # a sandbox take is staff trying the pool: trust limits, pauses and captchas stay out
    limit_s = None if sandbox else _within_limits(c, now).assignment_timeout_s
    slot = (results.mixer_slot(c.pool.mixer, c.pool_takes)
            if c.pool is not None and c.pool.mixer is not None else None)
    task, pool = await _claim(uow.store, worker_id, await _candidates(uow.store, c, pool_id, now),
                              slot)
    need = None if sandbox else await captcha.challenge_for_take(
        uow, ctx, worker_id=worker_id, pool_id=pool.pool_id, project_id=pool.project_id,
        frequency=pool.captcha_frequency, now=now)
    if need is not None:
        await uow.store.release_slot(task.task_id)  # keep only the challenge
        raise CommitThen(need)
    timeout = domain.assignment_timeout(pool.assignment_timeout_s, limit_s)
    row = {"assignment_id": str(uuid.uuid4()), "task_id": task.task_id,
           "pool_id": pool.pool_id, "project_id": pool.project_id, "worker_id": worker_id,
           "status": domain.ACTIVE, "is_control": task.is_control, "taken_at": now,
           "deadline_at": now + timedelta(seconds=timeout), "sandbox": sandbox}
    _env, params = uow.outbox_params(TaskTaken(
        assignment_id=row["assignment_id"], task_id=task.task_id, pool_id=pool.pool_id,
        project_id=pool.project_id, worker_id=worker_id, taken_at=now,
        is_control=task.is_control, sandbox=sandbox))
    if not await uow.store.write_take(row, params):
        raise no_tasks()
    if pool.instructions is None or pool.output_spec is None:  # a take from any pool
        instructions, output_spec = await uow.store.project_texts(pool.project_id)
    else:
        instructions, output_spec = pool.instructions, pool.output_spec
    return rpc.TakeResult(
        assignment_id=row["assignment_id"], task_id=task.task_id, pool_id=pool.pool_id,
        project_id=pool.project_id, worker_id=worker_id, status=domain.ACTIVE,
        input=task.input, taken_at=now, deadline_at=row["deadline_at"], pool_name=pool.name,
        instructions=instructions, sandbox=sandbox,
        output_spec=[rpc.FieldSpec.model_validate(f) for f in output_spec])


@router.rpc(rpc.TAKE)
async def take(req: rpc.Take, ctx: TasksContext) -> rpc.TakeResult:
    """Give the worker the oldest free task of a pool (or of any pool they may use), within
    their trust level's limits; a captcha first when one is due."""
    try:
        async with ctx.uow() as uow:
            result = await _take(uow, ctx, req.actor.user_id, req.pool_id, req.actor.role)
    except captcha.CaptchaRequired as need:  # raised after the challenge was committed
        TAKES.labels(need.code).inc()
        raise need.with_image() from None
    except ServiceError as exc:
        TAKES.labels(exc.code).inc()
        raise
    TAKES.labels("ok").inc()
    return result


# ------------------------------------------------------------------------- submit


RowT = TypeVar("RowT", bound=AssignmentRow)


def _own(row: RowT | None, req: rpc.AssignmentRef | rpc.Submit | rpc.Report) -> RowT:
    if row is None or row.worker_id != req.actor.user_id:
        raise NotFound("assignment_not_found", f"you have no assignment {req.assignment_id}")
    return row


def _require_active(row: AssignmentRow) -> None:
    if row.status != domain.ACTIVE:
        raise Conflict("assignment_not_active", f"the assignment is {row.status}",
                       details={"status": row.status})


def _checked_answers(row: SubmitRow, req: rpc.Submit) -> dict[str, object]:
    """The answers converted by the project's output spec (422 per field if they do not
    match)."""
    spec = [rpc.FieldSpec.model_validate(f) for f in row.output_spec]
    answers, errors = domain.validate_values(spec, req.answers)
    if errors:
        raise Invalid("invalid_answers", "some answers do not match the output spec",
                      details=errors)
    return answers


def _submitted(row: SubmitRow, answers: dict[str, object], req: rpc.Submit,
               proof: str | None, now: datetime) -> TaskSubmitted:
    return TaskSubmitted(
        **_ref(row), answers=answers, comment=req.comment, proof=proof, taken_at=row.taken_at,
        submitted_at=now, overlap=row.overlap, is_control=row.is_control,
        control_correct=domain.control_correct(row.control_answers, answers),
        review_mode=row.review_mode, auto_accept_after_s=row.auto_accept_after_s)


def _expired(row: AssignmentRow | Overdue, now: datetime) -> TaskExpired:
    return TaskExpired(**_ref(row), expired_at=now)


async def _submit_at_once(req: rpc.Submit, ctx: TasksContext,
                          now: datetime) -> rpc.Assignment | None:
    """The common case, two statements that commit on their own; None when the assignment
    is not plainly submittable (the locking path then decides)."""
    async with ctx.statement() as uow:
        row = await uow.store.submit_row(req.assignment_id)
        if (row is None or row.worker_id != req.actor.user_id or row.status != domain.ACTIVE
                or row.deadline_at <= now):
            return None
        answers = _checked_answers(row, req)
        proof = domain.proof_of(req.proof_url, req.proof_text)
        env, params = uow.outbox_params(_submitted(row, answers, req, proof, now))
        if not await uow.store.write_submit(row, answers=answers, comment=req.comment,
                                            proof=proof, now=now, outbox_params=params):
            uow.recorded.remove(env)  # changed since the read: the statement wrote nothing
            return None
    return row.model(status=domain.SUBMITTED, answers=answers, comment=req.comment,
                     proof=proof, submitted_at=now)


async def _submit_locked(req: rpc.Submit, ctx: TasksContext, now: datetime) -> rpc.Assignment:
    """The assignment locked, every refusal exact; a late submit expires the assignment and
    records task.expired, then refuses."""
    async with ctx.uow() as uow:
        row = _own(await uow.store.submit_row(req.assignment_id, lock=True), req)
        _require_active(row)
        if row.deadline_at <= now:
            await uow.store.expire([row], now)
            uow.record(_expired(row, now))
            uow.after_commit(EXPIRED_TOTAL.inc)
            raise CommitThen(Conflict("assignment_expired",
                                      "the time for this assignment ran out"))
        answers = _checked_answers(row, req)
        proof = domain.proof_of(req.proof_url, req.proof_text)
        _env, params = uow.outbox_params(_submitted(row, answers, req, proof, now))
        await uow.store.write_submit(row, answers=answers, comment=req.comment, proof=proof,
                                     now=now, outbox_params=params)
    return row.model(status=domain.SUBMITTED, answers=answers, comment=req.comment,
                     proof=proof, submitted_at=now)


@router.rpc(rpc.SUBMIT)
async def submit(req: rpc.Submit, ctx: TasksContext) -> rpc.Assignment:
    """Submit answers checked against the output spec; records task.submitted."""
    now = ctx.clock()
    try:
        result = (await _submit_at_once(req, ctx, now)
                  or await _submit_locked(req, ctx, now))
    except ServiceError as exc:
        SUBMITS.labels(exc.code).inc()
        raise
    SUBMITS.labels("ok").inc()
    return result


# ----------------------------------------------------------------- skip, report


@router.rpc(rpc.SKIP)
async def skip(req: rpc.AssignmentRef, ctx: TasksContext) -> rpc.Assignment:
    """Give an active assignment back; the task returns to the pool (not to this worker)."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        row = _own(await uow.store.assignment(req.assignment_id, lock=True), req)
        _require_active(row)
        await uow.store.skip(row, now)
        uow.record(TaskSkipped(**_ref(row), skipped_at=now))
    return row.model(status=domain.SKIPPED, finished_at=now)


@router.rpc(rpc.REPORT)
async def report(req: rpc.Report, ctx: TasksContext) -> rpc.ReportResult:
    """Report a problem with the task of one of the worker's assignments."""
    async with ctx.uow() as uow:
        row = _own(await uow.store.assignment(req.assignment_id), req)
        uow.record(TaskReported(**_ref(row), reason=req.reason, text=req.text,
                                reported_at=ctx.clock()))
    return rpc.ReportResult(reported=True)


# ------------------------------------------------------------------- worker views


@router.rpc(rpc.MY_ASSIGNMENTS)
async def my_assignments(req: rpc.MyAssignments, ctx: TasksContext) -> rpc.Assignments:
    """The calling worker's assignments, newest first (no prices)."""
    async with ctx.read() as r:
        items, total = await r.store.my_assignments(
            req.actor.user_id, status=req.status, pool_id=req.pool_id, limit=req.page.limit,
            offset=req.page.offset)
    return rpc.Assignments(items=items, total=total)


@router.rpc(rpc.ASSIGNMENT_OWNER)
async def assignment_owner(req: rpc.AssignmentRef, ctx: TasksContext) -> rpc.AssignmentOwner:
    """Whose an assignment is, for its task chat: any assignment for staff, a worker's own
    only (another's is "not found", as one that does not exist)."""
    async with ctx.read() as r:
        row = await r.store.assignment(req.assignment_id)
    if row is None or (req.actor.role == "worker" and row.worker_id != req.actor.user_id):
        raise NotFound("assignment_not_found", f"no assignment {req.assignment_id}")
    return rpc.AssignmentOwner(assignment_id=row.assignment_id, worker_id=row.worker_id,
                               pool_id=row.pool_id, task_id=row.task_id,
                               taken_at=row.taken_at)


@router.rpc(rpc.AVAILABLE_POOLS)
async def available_pools(req: rpc.AvailablePools, ctx: TasksContext) -> rpc.AvailablePoolList:
    """Open pools the worker may take from, with how many tasks are free for them (never a
    price)."""
    wid = req.actor.user_id
    now = ctx.clock()
    async with ctx.read() as r:
        skills = await r.store.worker_skills(wid)
        restr = await r.store.active_restrictions(wid, now)
        usable = [p for p in await r.store.open_pools_with_texts()
                  if refusal_for(p, skills, restr, now) is None]
        counts = await r.store.free_task_counts(wid, [p.pool_id for p in usable])
    items = sorted((rpc.AvailablePool(pool_id=p.pool_id, project_id=p.project_id, name=p.name,
                                      instructions=p.instructions or "", priority=p.priority,
                                      available_tasks=counts.get(p.pool_id, 0))
                    for p in usable), key=lambda i: (-i.priority, i.name))
    start = req.page.offset
    return rpc.AvailablePoolList(items=items[start:start + req.page.limit])


# ------------------------------------------------------------------------ sweeper


@router.periodic(lambda s: s.expire_sweep_interval_s, changes_state=True)
async def expire_overdue(ctx: TasksContext) -> None:
    """Expire ACTIVE assignments past their deadline, a batch per transaction; their tasks
    go back to the pool and task.expired tells the rules service."""
    batch = ctx.settings.expire_batch_size
    while True:
        now = ctx.clock()
        async with ctx.uow() as uow:
            rows = await uow.store.overdue(now, batch)
            await uow.store.expire(rows, now)
            for r in rows:
                uow.record(_expired(r, now))
            uow.after_commit(partial(EXPIRED_TOTAL.inc, len(rows)))
        if len(rows) < batch:
            return
