"""The catalog: projects, pools (create, change, open/close/archive), task uploads, task
lists, results exports and pool statistics.

HIDDEN SHARE: a pool's price leaves this service only in an ``AdminPool``, the reply of the
admin-only specs. :func:`staff_view` is the one place a pool is shown without it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from contracts.events import PoolClosed, PoolOpened
from contracts.rpc import tasks as rpc
from servicekit.errors import Conflict, Invalid, NotFound
from servicekit.router import Router
from tasks_service import domain
from tasks_service.context import TasksContext
from tasks_service.store import EXPORT_PAGE_ROWS, TasksStore

router = Router()


def staff_view(pool: rpc.AdminPool) -> rpc.Pool:
    """A pool as staff see it, built from the staff view's own fields: the price is never
    copied, so there is nothing to forget to remove."""
    return rpc.Pool.model_validate(pool, from_attributes=True)


def pool_opened(pool: rpc.AdminPool, at: datetime) -> PoolOpened:
    """The event of a pool opening (also a re-open): its frozen price, for the ledger."""
    return PoolOpened(pool_id=pool.pool_id, project_id=pool.project_id,
                      price_minor=pool.price_minor, currency=pool.currency, opened_at=at,
                      sandbox=pool.sandbox)


def pool_not_found(pool_id: str) -> NotFound:
    return NotFound("pool_not_found", f"no pool {pool_id}")


async def existing_pool(store: TasksStore, pool_id: str, *,
                        lock: bool = False) -> rpc.AdminPool:
    pool = await store.pool(pool_id, lock=lock)
    if pool is None:
        raise pool_not_found(pool_id)
    return pool


async def existing_project(store: TasksStore, project_id: str) -> rpc.Project:
    project = await store.project(project_id)
    if project is None:
        raise NotFound("project_not_found", f"no project {project_id}")
    return project


# ----------------------------------------------------------------------- projects


def _check_specs(input_spec: list[rpc.FieldSpec] | None,
                 output_spec: list[rpc.FieldSpec] | None) -> None:
    errors = []
    if input_spec is not None:
        errors += domain.check_spec(input_spec, which="input_spec")
    if output_spec is not None:
        errors += domain.check_spec(output_spec, which="output_spec")
    if errors:
        raise Invalid("invalid_spec", "the field spec has problems", details=errors)


@router.rpc(rpc.CREATE_PROJECT)
async def create_project(req: rpc.ProjectCreate, ctx: TasksContext) -> rpc.Project:
    """Create a project with its input and output field specs (patterns must be RE2)."""
    _check_specs(req.input_spec, req.output_spec)
    now = ctx.clock()
    project = rpc.Project(project_id=str(uuid.uuid4()), name=req.name,
                          instructions=req.instructions, input_spec=req.input_spec,
                          output_spec=req.output_spec, created_at=now, updated_at=now,
                          sandbox=req.sandbox)
    async with ctx.uow() as uow:
        await uow.store.add_project(project)
    return project


@router.rpc(rpc.UPDATE_PROJECT)
async def update_project(req: rpc.ProjectUpdate, ctx: TasksContext) -> rpc.Project:
    """Change a project's name, instructions or specs (new uploads use the new spec)."""
    _check_specs(req.input_spec, req.output_spec)
    values: dict[str, Any] = {"updated_at": ctx.clock()}
    for key in ("name", "instructions", "input_spec", "output_spec"):
        if getattr(req, key) is not None:
            values[key] = req.model_dump(include={key})[key]
    async with ctx.uow() as uow:
        project = await uow.store.update_project(req.project_id, values)
    if project is None:
        raise NotFound("project_not_found", f"no project {req.project_id}")
    return project


@router.rpc(rpc.GET_PROJECT)
async def get_project(req: rpc.ProjectGet, ctx: TasksContext) -> rpc.Project:
    """One project with its specs."""
    async with ctx.read() as r:
        return await existing_project(r.store, req.project_id)


@router.rpc(rpc.LIST_PROJECTS)
async def list_projects(req: rpc.ProjectList, ctx: TasksContext) -> rpc.Projects:
    """Projects, newest first."""
    async with ctx.read() as r:
        items, total = await r.store.list_projects(req.page.limit, req.page.offset)
    return rpc.Projects(items=items, total=total)


# -------------------------------------------------------------------------- pools


def _check_skill_filters(filters: list[rpc.SkillFilter]) -> None:
    for f in filters:
        if f.op == "gte" and f.value is None:
            raise Invalid("invalid_skill_filter",
                          f"skill filter on {f.skill!r} needs a value for op gte")


@router.rpc(rpc.CREATE_POOL)
async def create_pool(req: rpc.PoolCreate, ctx: TasksContext) -> rpc.AdminPool:
    """Create a pool in status draft, with its price; a sandbox project's pool is a sandbox
    pool (the flag is copied: a project's never changes)."""
    _check_skill_filters(req.skill_filters)
    now = ctx.clock()
    async with ctx.read() as r:
        project = await existing_project(r.store, req.project_id)
    pool = rpc.AdminPool(
        pool_id=str(uuid.uuid4()), project_id=req.project_id, name=req.name,
        price_minor=req.price_minor, currency=req.currency, overlap=req.overlap,
        assignment_timeout_s=req.assignment_timeout_s,
        auto_accept_after_s=req.auto_accept_after_s, review_mode=req.review_mode,
        captcha_frequency=req.captcha_frequency, skill_filters=req.skill_filters,
        priority=req.priority, expected_seconds_per_task=req.expected_seconds_per_task,
        status="draft", created_at=now, updated_at=now, sandbox=project.sandbox)
    async with ctx.uow() as uow:
        await uow.store.add_pool(pool)
    return pool


_NOT_NULL = ("name", "price_minor", "currency", "overlap", "assignment_timeout_s",
             "review_mode", "captcha_frequency", "skill_filters", "priority")
_MONEY = ("currency", "price_minor")


@router.rpc(rpc.UPDATE_POOL)
async def update_pool(req: rpc.PoolUpdate, ctx: TasksContext) -> rpc.AdminPool:
    """Change a pool's settings (only the fields sent); its price only while a draft."""
    changes = req.model_dump(exclude_unset=True, exclude={"actor", "pool_id"})
    for key in _NOT_NULL:
        if key in changes and changes[key] is None:
            raise Invalid("invalid_value", f"{key} cannot be null")
    if "skill_filters" in changes:
        _check_skill_filters(req.skill_filters or [])
    async with ctx.uow() as uow:
        pool = await existing_pool(uow.store, req.pool_id, lock=True)
        money = [k for k in _MONEY if k in changes]
        if money and pool.status != "draft":
            raise Conflict("price_fixed", f"the pool is {pool.status}: its price and "
                           "currency are fixed once it opened",
                           details={"fields": money, "status": pool.status})
        if not changes:
            return pool
        return await uow.store.update_pool(req.pool_id, changes | {"updated_at": ctx.clock()})


@router.rpc(rpc.GET_POOL)
async def get_pool(req: rpc.PoolGet, ctx: TasksContext) -> rpc.Pool:
    """One pool without its price (staff)."""
    async with ctx.read() as r:
        return staff_view(await existing_pool(r.store, req.pool_id))


@router.rpc(rpc.ADMIN_GET_POOL)
async def admin_get_pool(req: rpc.PoolGet, ctx: TasksContext) -> rpc.AdminPool:
    """One pool with its price (admins)."""
    async with ctx.read() as r:
        return await existing_pool(r.store, req.pool_id)


async def _list_pools(req: rpc.PoolList, ctx: TasksContext) -> tuple[list[rpc.AdminPool], int]:
    async with ctx.read() as r:
        return await r.store.list_pools(project_id=req.project_id, status=req.status,
                                        limit=req.page.limit, offset=req.page.offset)


@router.rpc(rpc.LIST_POOLS)
async def list_pools(req: rpc.PoolList, ctx: TasksContext) -> rpc.Pools:
    """Pools without their prices (staff), newest first."""
    items, total = await _list_pools(req, ctx)
    return rpc.Pools(items=[staff_view(p) for p in items], total=total)


@router.rpc(rpc.ADMIN_LIST_POOLS)
async def admin_list_pools(req: rpc.PoolList, ctx: TasksContext) -> rpc.AdminPools:
    """Pools with their prices (admins), newest first."""
    items, total = await _list_pools(req, ctx)
    return rpc.AdminPools(items=items, total=total)


async def _transition(req: rpc.PoolTransition, ctx: TasksContext, to: str) -> rpc.AdminPool:
    async with ctx.uow() as uow:
        pool = await existing_pool(uow.store, req.pool_id, lock=True)
        if pool.status == to:
            return pool
        if pool.status not in domain.POOL_TRANSITIONS[to]:
            raise Conflict("invalid_transition", f"a {pool.status} pool cannot become {to}",
                           details={"status": pool.status, "to": to})
        now = ctx.clock()
        pool = await uow.store.update_pool(pool.pool_id, {"status": to, "updated_at": now})
        if to == "open":
            uow.record(pool_opened(pool, now))
        elif to == "closed":
            uow.record(PoolClosed(pool_id=pool.pool_id, project_id=pool.project_id,
                                  closed_at=now, sandbox=pool.sandbox))
        return pool


@router.rpc(rpc.OPEN_POOL)
async def open_pool(req: rpc.PoolTransition, ctx: TasksContext) -> rpc.AdminPool:
    """Open a draft or closed pool: workers may take its tasks; task.pool_opened tells the
    ledger its price."""
    return await _transition(req, ctx, "open")


@router.rpc(rpc.CLOSE_POOL)
async def close_pool(req: rpc.PoolTransition, ctx: TasksContext) -> rpc.AdminPool:
    """Close an open pool: no new takes; active assignments may still be submitted."""
    return await _transition(req, ctx, "closed")


@router.rpc(rpc.ARCHIVE_POOL)
async def archive_pool(req: rpc.PoolTransition, ctx: TasksContext) -> rpc.AdminPool:
    """Archive a draft or closed pool for good."""
    return await _transition(req, ctx, "archived")


# -------------------------------------------------------------------------- tasks


UPLOAD_SLICE_ROWS = 2000


@router.rpc(rpc.UPLOAD_TASKS)
async def upload_tasks(req: rpc.TasksUpload, ctx: TasksContext) -> rpc.UploadResult:
    """Bulk upload: every row checked against the input spec; bad rows reported by line."""
    async with ctx.uow() as uow:
        pool = await existing_pool(uow.store, req.pool_id)
        if pool.status == "archived":
            raise Conflict("pool_archived", "an archived pool takes no new tasks")
        project = await existing_project(uow.store, pool.project_id)
        parsed = domain.parse_upload(req.format, req.content, project.input_spec,
                                     project.output_spec,
                                     max_rows=ctx.settings.max_upload_rows)
        errors = [rpc.RowError(**e) for e in parsed.errors]
        if (errors and req.all_or_nothing) or not parsed.rows:
            if not errors:
                errors.append(rpc.RowError(line=0, error="no rows to upload"))
            return rpc.UploadResult(created=0, control_tasks=0, task_ids=[], errors=errors)
        now = ctx.clock()
        task_ids = [str(uuid.uuid4()) for _ in parsed.rows]
        # in slices, one transaction: with a 20,000-row upload's row dicts and COPY
        # records held at once, the process kept 23 MB more after a 1 M upload (bench)
        for start in range(0, len(parsed.rows), UPLOAD_SLICE_ROWS):
            await uow.store.add_tasks([
                {"task_id": task_ids[i], "pool_id": pool.pool_id,
                 "project_id": pool.project_id, "input": r.input, "control_answers": r.control,
                 "is_control": r.control is not None, "overlap": pool.overlap,
                 "live_count": 0, "accepted_count": 0, "created_at": now, "position": i}
                for i, r in enumerate(parsed.rows[start:start + UPLOAD_SLICE_ROWS],
                                      start=start)])
    return rpc.UploadResult(created=len(task_ids),
                            control_tasks=sum(1 for r in parsed.rows if r.control is not None),
                            task_ids=task_ids, errors=errors)


@router.rpc(rpc.LIST_TASKS)
async def list_tasks(req: rpc.TaskList, ctx: TasksContext) -> rpc.Tasks:
    """Tasks of a pool, oldest first; control answers and hints for admins only."""
    async with ctx.read() as r:
        await existing_pool(r.store, req.pool_id)
        items, total = await r.store.list_tasks(req.pool_id, req.page.limit, req.page.offset)
    if req.actor.role != "admin":
        items = [t.model_copy(update={"control_answers": None, "hint": None}) for t in items]
    return rpc.Tasks(items=items, total=total)


# ----------------------------------------------------------------- results, stats


def _export_cursor(cursor: str) -> tuple[datetime, str]:
    at, _, aid = cursor.rpartition("|")
    try:
        parsed: datetime | None = datetime.fromisoformat(at)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or not aid:
        raise Invalid("invalid_cursor", "the cursor is not one a previous page returned")
    return parsed, aid


@router.rpc(rpc.EXPORT_RESULTS)
async def export_results(req: rpc.ExportResults, ctx: TasksContext) -> rpc.ExportedResults:
    """A page of a pool's results as CSV, TSV or JSON text: worker, status, answers, UTC
    times; ``next_cursor`` asks for the next page."""
    after = _export_cursor(req.cursor) if req.cursor is not None else None
    async with ctx.read() as r:
        pool = await existing_pool(r.store, req.pool_id)
        project = await existing_project(r.store, pool.project_id)
        total = await r.store.count_results(req.pool_id, req.status) if after is None else None
        rows = await r.store.results(req.pool_id, req.status, after)
        rs = r.store.quality
        methods = tuple(await rs.computed_methods(req.pool_id))
        aggregates = await rs.for_tasks([row["task_id"] for row in rows]) if methods else {}
    inputs = [f.name for f in project.input_spec]
    outputs = [f.name for f in project.output_spec]
    head = (domain.results_header(req.format, input_fields=inputs, output_fields=outputs,
                                  methods=methods) if after is None else "")
    lines = domain.result_rows(rows, req.format, input_fields=inputs, output_fields=outputs,
                               methods=methods, aggregates=aggregates)
    content, taken = domain.results_page(head, lines, req.format, max_bytes=req.max_bytes)
    more = taken < len(rows) or len(rows) == EXPORT_PAGE_ROWS
    last = rows[taken - 1] if taken else None
    return rpc.ExportedResults(
        content_type=domain.CONTENT_TYPES[req.format],
        # a sandbox pool's file says so in its name: its answers are staff's tries
        filename=f"{'sandbox_' if pool.sandbox else ''}results_{req.pool_id}.{req.format}",
        rows=taken, content=content,
        total_rows=total,
        next_cursor=(f"{last['started_at'].isoformat()}|{last['assignment_id']}"
                     if more and last is not None else None))


@router.rpc(rpc.POOL_STATS)
async def pool_stats(req: rpc.PoolStatsRequest, ctx: TasksContext) -> rpc.PoolStats:
    """Counts of a pool's tasks and of its assignments by status."""
    async with ctx.read() as r:
        pool = await existing_pool(r.store, req.pool_id)
        c = await r.store.pool_counts(req.pool_id)
    return rpc.PoolStats(
        pool_id=pool.pool_id, status=pool.status, tasks_total=c.total, control_tasks=c.control,
        tasks_open=c.open, tasks_completed=c.completed,
        assignments={s: c.by_status.get(s, 0) for s in domain.ASSIGNMENT_STATUSES})
