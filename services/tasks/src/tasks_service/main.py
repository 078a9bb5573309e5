"""Tasks service: projects, pools, tasks, the assignment lifecycle and worker limits.

Take and submit are the hot paths: SQLAlchemy Core, few round trips, and the database
gives the guarantees (the task row locked with ``FOR UPDATE SKIP LOCKED``, the worker row
locked by an upsert, ``UNIQUE(task_id, worker_id)``).
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from prometheus_client import Counter as Metric
from sqlalchemy import and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.envelope import Envelope
from contracts.events import (CaptchaAnswered, OverlapChanged, RestrictionApplied,
                              RestrictionLifted, ReviewAccepted, ReviewRejected, SkillSet,
                              TaskAccessRevoked, TaskExpired, TaskReported, TaskSkipped,
                              TaskSubmitted, TaskTaken)
from contracts.rpc import Actor
from contracts.rpc import tasks as rpc
from servicekit.db import dialect_insert
from servicekit.outbox import outbox_insert_from, outbox_params, recorded_events
from servicekit.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from servicekit.service import Service, run
from tasks_service import domain
from tasks_service.db import (assignments, captcha_challenges, metadata, pools, projects,
                              restrictions, tasks, trust_limits, worker_pool_takes, workers)
from tasks_service.settings import TasksSettings

log = logging.getLogger("tasks_service")

TAKES = Metric("tasks_takes_total", "Take attempts by outcome (ok or the refusal code)",
               ["outcome"])
SUBMITS = Metric("tasks_submissions_total", "Submit attempts by outcome", ["outcome"])
EXPIRED_TOTAL = Metric("tasks_assignments_expired_total",
                       "Assignments expired by the sweeper or at a late submit")


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


def require(actor: Actor, *roles: str) -> None:
    if actor.role not in roles:
        raise Forbidden("forbidden", f"this action is for {' or '.join(roles)} only")


_EXPORT_PAGE_ROWS = 2000  # rows read per export page (the page's text is capped apart)


def no_tasks() -> ServiceError:
    return NotFound("no_tasks_available", "no task is available for you right now")


class _CaptchaNeeded(Exception):
    """Raised after the transaction that stored the challenge committed."""

    def __init__(self, challenge_id: str, text: str) -> None:
        self.challenge_id = challenge_id
        self.text = text


class _AfterCommit(Exception):
    """Carries a refusal out of a transaction whose changes must still commit."""

    def __init__(self, error: ServiceError) -> None:
        self.error = error


def render_captcha_png(text: str) -> str:
    from captcha.image import ImageCaptcha

    png = ImageCaptcha(width=160, height=60).generate(text, format="png").getvalue()
    return base64.b64encode(png).decode()


def create_service(settings: TasksSettings | None = None) -> Service:
    settings = settings or TasksSettings()
    svc = Service(settings, metadata)

    # ------------------------------------------------------------------ helpers

    def project_model(r: Any) -> rpc.Project:
        m = r._mapping
        return rpc.Project(project_id=m["project_id"], name=m["name"],
                           instructions=m["instructions"], input_spec=m["input_spec"],
                           output_spec=m["output_spec"], created_at=utc(m["created_at"]),
                           updated_at=utc(m["updated_at"]))

    def pool_out(r: Any, actor: Actor) -> dict[str, Any]:
        """A pool as the actor may see it: price fields for admins only (hidden share)."""
        m = dict(r._mapping)
        m["created_at"], m["updated_at"] = utc(m["created_at"]), utc(m["updated_at"])
        data = rpc.Pool(**m).model_dump(mode="json")
        if actor.role != "admin":
            data.pop("price_minor", None)
            data.pop("currency", None)
        return data

    def assignment_model(m: Any, cls: type[rpc.Assignment] = rpc.Assignment,
                         **extra: Any) -> rpc.Assignment:
        return cls(
            assignment_id=m["assignment_id"], task_id=m["task_id"], pool_id=m["pool_id"],
            project_id=m["project_id"], worker_id=m["worker_id"], status=m["status"],
            input=m["input"], answers=m["answers"], comment=m["comment"], proof=m["proof"],
            review_comment=m["review_comment"], taken_at=utc(m["taken_at"]),
            deadline_at=utc(m["deadline_at"]), submitted_at=utc(m["submitted_at"]),
            finished_at=utc(m["finished_at"]), **extra)

    async def get_project_row(conn: AsyncConnection, project_id: str) -> Any:
        r = (await conn.execute(select(projects).where(projects.c.project_id == project_id))
             ).first()
        if r is None:
            raise NotFound("project_not_found", f"no project {project_id}")
        return r

    async def get_pool_row(conn: AsyncConnection, pool_id: str, *, lock: bool = False) -> Any:
        q = select(pools).where(pools.c.pool_id == pool_id)
        if lock:
            q = q.with_for_update()
        r = (await conn.execute(q)).first()
        if r is None:
            raise NotFound("pool_not_found", f"no pool {pool_id}")
        return r

    async def ensure_worker(conn: AsyncConnection, worker_id: str) -> None:
        ins = dialect_insert(conn)(workers).values(
            worker_id=worker_id, trust_level="new", skills={}, created_at=utcnow())
        await conn.execute(ins.on_conflict_do_nothing(index_elements=["worker_id"]))

    async def lock_worker(conn: AsyncConnection, worker_id: str) -> Any:
        """Create the profile lazily and lock it: one worker's takes run one at a time."""
        ins = dialect_insert(conn)(workers).values(
            worker_id=worker_id, trust_level="new", skills={}, created_at=utcnow())
        ins = ins.on_conflict_do_update(index_elements=["worker_id"],
                                        set_={"worker_id": ins.excluded.worker_id})
        return (await conn.execute(ins.returning(workers))).one()

    async def active_restrictions(conn: AsyncConnection, worker_id: str,
                                  now: datetime) -> list[domain.ActiveRestriction]:
        rows = (await conn.execute(
            select(restrictions.c.restriction_id, restrictions.c.scope, restrictions.c.pool_id,
                   restrictions.c.project_id, restrictions.c.until)
            .where(restrictions.c.worker_id == worker_id, restrictions.c.lifted_at.is_(None),
                   (restrictions.c.until.is_(None)) | (restrictions.c.until > now)))).all()
        return [domain.ActiveRestriction(r.restriction_id, r.scope, r.pool_id, r.project_id,
                                         utc(r.until)) for r in rows]

    def refusal_for(pool: Any, skills: dict[str, int], restr: list[domain.ActiveRestriction],
                    now: datetime) -> ServiceError | None:
        """Why the worker may not take from this pool (restriction, skill filter), or None."""
        r = domain.blocking_restriction(restr, pool_id=pool.pool_id,
                                        project_id=pool.project_id, now=now)
        if r is not None:
            until = r.until.isoformat() if r.until else "further notice"
            return Forbidden("restricted", f"you are restricted ({r.scope}) until {until}",
                             details={"scope": r.scope,
                                      "until": r.until.isoformat() if r.until else None})
        filters = [rpc.SkillFilter(**f) for f in pool.skill_filters or []]
        if not domain.skills_pass(filters, skills or {}):
            return Forbidden("skills_mismatch", "your skills do not match this pool's filters")
        return None

    async def limits_for(conn: AsyncConnection, level: str) -> rpc.TrustLevelLimits:
        r = (await conn.execute(select(trust_limits).where(trust_limits.c.level == level))
             ).first()
        if r is None:
            return next(x for x in domain.DEFAULT_TRUST_LIMITS if x.level == level)
        return rpc.TrustLevelLimits(level=r.level, max_active=r.max_active,
                                    min_pause_s=r.min_pause_s,
                                    assignment_timeout_s=r.assignment_timeout_s)

    async def expire_assignments(conn: AsyncConnection, rows: list[Any], now: datetime) -> None:
        """ACTIVE -> EXPIRED for rows (locked by the caller); their tasks go back to the pool."""
        if not rows:
            return
        ids = [r.assignment_id for r in rows]
        await conn.execute(update(assignments).where(
            assignments.c.assignment_id.in_(ids), assignments.c.status == domain.ACTIVE)
            .values(status=domain.EXPIRED, finished_at=now))
        EXPIRED_TOTAL.inc(len(rows))
        per_task = Counter(r.task_id for r in rows)
        await conn.execute(
            update(tasks).where(tasks.c.task_id == bindparam("tid"))
            .values(live_count=tasks.c.live_count - bindparam("n")),
            # One order for every sweeper replica, so two never deadlock on task rows.
            [{"tid": t, "n": n} for t, n in sorted(per_task.items())])
        for r in rows:
            await svc.record(conn, TaskExpired(
                assignment_id=r.assignment_id, task_id=r.task_id, pool_id=r.pool_id,
                project_id=r.project_id, worker_id=r.worker_id, expired_at=now))

    @svc.on_startup
    async def seed_trust_limits() -> None:
        async with svc.transaction() as conn:
            ins = dialect_insert(conn)(trust_limits)
            await conn.execute(ins.on_conflict_do_nothing(index_elements=["level"]), [
                {**lim.model_dump(), "updated_at": utcnow()}
                for lim in domain.DEFAULT_TRUST_LIMITS])

    # ----------------------------------------------------------------- projects

    def check_specs(input_spec: list[rpc.FieldSpec] | None,
                    output_spec: list[rpc.FieldSpec] | None) -> None:
        errors = []
        if input_spec is not None:
            errors += domain.check_spec(input_spec, which="input_spec")
        if output_spec is not None:
            errors += domain.check_spec(output_spec, which="output_spec")
        if errors:
            raise Invalid("invalid_spec", "the field spec has problems", details=errors)

    @svc.rpc(rpc.CREATE_PROJECT)
    async def create_project(req: rpc.ProjectCreate) -> rpc.Project:
        """Create a project with its input and output field specs."""
        require(req.actor, "admin")
        check_specs(req.input_spec, req.output_spec)
        now = utcnow()
        row = dict(project_id=str(uuid.uuid4()), name=req.name, instructions=req.instructions,
                   input_spec=[f.model_dump() for f in req.input_spec],
                   output_spec=[f.model_dump() for f in req.output_spec],
                   created_at=now, updated_at=now)
        async with svc.transaction() as conn:
            await conn.execute(projects.insert().values(**row))
        return rpc.Project(**row)

    @svc.rpc(rpc.UPDATE_PROJECT)
    async def update_project(req: rpc.ProjectUpdate) -> rpc.Project:
        """Change a project's name, instructions or specs (new uploads use the new spec)."""
        require(req.actor, "admin")
        check_specs(req.input_spec, req.output_spec)
        values: dict[str, Any] = {"updated_at": utcnow()}
        if req.name is not None:
            values["name"] = req.name
        if req.instructions is not None:
            values["instructions"] = req.instructions
        if req.input_spec is not None:
            values["input_spec"] = [f.model_dump() for f in req.input_spec]
        if req.output_spec is not None:
            values["output_spec"] = [f.model_dump() for f in req.output_spec]
        async with svc.transaction() as conn:
            await get_project_row(conn, req.project_id)
            await conn.execute(update(projects).where(projects.c.project_id == req.project_id)
                               .values(**values))
            return project_model(await get_project_row(conn, req.project_id))

    @svc.rpc(rpc.GET_PROJECT)
    async def get_project(req: rpc.ProjectGet) -> rpc.Project:
        require(req.actor, "admin", "manager")
        async with svc.engine.connect() as conn:
            return project_model(await get_project_row(conn, req.project_id))

    @svc.rpc(rpc.LIST_PROJECTS)
    async def list_projects(req: rpc.ProjectList) -> rpc.Projects:
        require(req.actor, "admin", "manager")
        async with svc.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(projects))).scalar()
            rows = (await conn.execute(select(projects).order_by(projects.c.created_at.desc())
                                       .limit(req.page.limit).offset(req.page.offset))).all()
        return rpc.Projects(items=[project_model(r) for r in rows], total=total or 0)

    # -------------------------------------------------------------------- pools

    def check_skill_filters(filters: list[rpc.SkillFilter]) -> None:
        for f in filters:
            if f.op == "gte" and f.value is None:
                raise Invalid("invalid_skill_filter",
                              f"skill filter on {f.skill!r} needs a value for op gte")

    @svc.rpc(rpc.CREATE_POOL)
    async def create_pool(req: rpc.PoolCreate) -> dict[str, Any]:
        """Create a pool in status draft."""
        require(req.actor, "admin")
        check_skill_filters(req.skill_filters)
        now = utcnow()
        row = dict(pool_id=str(uuid.uuid4()), project_id=req.project_id, name=req.name,
                   price_minor=req.price_minor, currency=req.currency.upper(),
                   overlap=req.overlap, assignment_timeout_s=req.assignment_timeout_s,
                   auto_accept_after_s=req.auto_accept_after_s, review_mode=req.review_mode,
                   captcha_frequency=req.captcha_frequency,
                   skill_filters=[f.model_dump() for f in req.skill_filters],
                   priority=req.priority, status="draft", created_at=now, updated_at=now)
        async with svc.transaction() as conn:
            await get_project_row(conn, req.project_id)
            await conn.execute(pools.insert().values(**row))
            return pool_out(await get_pool_row(conn, row["pool_id"]), req.actor)

    @svc.rpc(rpc.UPDATE_POOL)
    async def update_pool(req: rpc.PoolUpdate) -> dict[str, Any]:
        """Change a pool's settings (only the fields sent)."""
        require(req.actor, "admin")
        changes = req.model_dump(exclude_unset=True, exclude={"actor", "pool_id"})
        if "skill_filters" in changes:
            check_skill_filters(req.skill_filters or [])
            changes["skill_filters"] = [f.model_dump() for f in req.skill_filters or []]
        for key in ("name", "price_minor", "currency", "overlap", "assignment_timeout_s",
                    "review_mode", "captcha_frequency", "skill_filters", "priority"):
            if key in changes and changes[key] is None:
                raise Invalid("invalid_value", f"{key} cannot be null")
        if "currency" in changes:
            changes["currency"] = changes["currency"].upper()
        async with svc.transaction() as conn:
            pool = await get_pool_row(conn, req.pool_id, lock=True)
            money = sorted(k for k in ("price_minor", "currency") if k in changes)
            if money and pool.status != "draft":
                raise Conflict("price_fixed", f"the pool is {pool.status}: its price and "
                               "currency are fixed once it opened",
                               details={"fields": money, "status": pool.status})
            if changes:
                await conn.execute(update(pools).where(pools.c.pool_id == req.pool_id)
                                   .values(**changes, updated_at=utcnow()))
            return pool_out(await get_pool_row(conn, req.pool_id), req.actor)

    @svc.rpc(rpc.GET_POOL)
    async def get_pool(req: rpc.PoolGet) -> dict[str, Any]:
        require(req.actor, "admin", "manager")
        async with svc.engine.connect() as conn:
            return pool_out(await get_pool_row(conn, req.pool_id), req.actor)

    @svc.rpc(rpc.LIST_POOLS)
    async def list_pools(req: rpc.PoolList) -> dict[str, Any]:
        require(req.actor, "admin", "manager")
        q = select(pools)
        if req.project_id:
            q = q.where(pools.c.project_id == req.project_id)
        if req.status:
            q = q.where(pools.c.status == req.status)
        async with svc.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar()
            rows = (await conn.execute(q.order_by(pools.c.created_at.desc())
                                       .limit(req.page.limit).offset(req.page.offset))).all()
        return {"items": [pool_out(r, req.actor) for r in rows], "total": total or 0}

    async def transition(req: rpc.PoolTransition, to: str) -> dict[str, Any]:
        require(req.actor, "admin")
        async with svc.transaction() as conn:
            pool = await get_pool_row(conn, req.pool_id, lock=True)
            if pool.status != to:
                if pool.status not in domain.POOL_TRANSITIONS[to]:
                    raise Conflict("invalid_transition",
                                   f"a {pool.status} pool cannot become {to}",
                                   details={"status": pool.status, "to": to})
                await conn.execute(update(pools).where(pools.c.pool_id == req.pool_id)
                                   .values(status=to, updated_at=utcnow()))
            return pool_out(await get_pool_row(conn, req.pool_id), req.actor)

    @svc.rpc(rpc.OPEN_POOL)
    async def open_pool(req: rpc.PoolTransition) -> dict[str, Any]:
        """Open a draft or closed pool: workers may take its tasks."""
        return await transition(req, "open")

    @svc.rpc(rpc.CLOSE_POOL)
    async def close_pool(req: rpc.PoolTransition) -> dict[str, Any]:
        """Close an open pool: no new takes; active assignments may still be submitted."""
        return await transition(req, "closed")

    @svc.rpc(rpc.ARCHIVE_POOL)
    async def archive_pool(req: rpc.PoolTransition) -> dict[str, Any]:
        """Archive a draft or closed pool for good."""
        return await transition(req, "archived")

    # -------------------------------------------------------------------- tasks

    @svc.rpc(rpc.UPLOAD_TASKS)
    async def upload_tasks(req: rpc.TasksUpload) -> rpc.UploadResult:
        """Bulk upload: every row checked against the input spec; bad rows reported by line."""
        require(req.actor, "admin")
        async with svc.transaction() as conn:
            pool = await get_pool_row(conn, req.pool_id)
            if pool.status == "archived":
                raise Conflict("pool_archived", "an archived pool takes no new tasks")
            project = await get_project_row(conn, pool.project_id)
            parsed = domain.parse_upload(
                req.format, req.content,
                [rpc.FieldSpec(**f) for f in project.input_spec],
                [rpc.FieldSpec(**f) for f in project.output_spec],
                max_rows=settings.max_upload_rows)
            errors = [rpc.RowError(**e) for e in parsed.errors]
            if (errors and req.all_or_nothing) or not parsed.rows:
                if not errors:
                    errors.append(rpc.RowError(line=0, error="no rows to upload"))
                return rpc.UploadResult(created=0, control_tasks=0, task_ids=[], errors=errors)
            now = utcnow()
            rows = [dict(task_id=str(uuid.uuid4()), pool_id=pool.pool_id,
                         project_id=pool.project_id, input=r.input, control_answers=r.control,
                         is_control=r.control is not None, overlap=pool.overlap, live_count=0,
                         accepted_count=0, created_at=now, position=i)
                    for i, r in enumerate(parsed.rows)]
            await conn.execute(tasks.insert(), rows)
        return rpc.UploadResult(created=len(rows),
                                control_tasks=sum(1 for r in rows if r["is_control"]),
                                task_ids=[r["task_id"] for r in rows], errors=errors)

    @svc.rpc(rpc.LIST_TASKS)
    async def list_tasks(req: rpc.TaskList) -> rpc.Tasks:
        """Tasks of a pool, oldest first; control answers for admins only."""
        require(req.actor, "admin", "manager")
        q = select(tasks).where(tasks.c.pool_id == req.pool_id)
        async with svc.engine.connect() as conn:
            await get_pool_row(conn, req.pool_id)
            total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar()
            rows = (await conn.execute(q.order_by(tasks.c.created_at, tasks.c.position)
                                       .limit(req.page.limit).offset(req.page.offset))).all()
        admin = req.actor.role == "admin"
        return rpc.Tasks(total=total or 0, items=[rpc.TaskItem(
            task_id=r.task_id, pool_id=r.pool_id, input=r.input, is_control=r.is_control,
            control_answers=r.control_answers if admin else None, overlap=r.overlap,
            live_assignments=r.live_count, created_at=utc(r.created_at)) for r in rows])

    # ---------------------------------------------------------------- take path

    def _claim(in_pools: Any, worker_id: Any) -> Any:
        """Claim (lock and count) the oldest free task of ``in_pools`` (a condition) that
        ``worker_id`` never had: one UPDATE over a ``FOR UPDATE SKIP LOCKED`` pick."""
        mine = exists().where(assignments.c.task_id == tasks.c.task_id,
                              assignments.c.worker_id == worker_id)
        pick = (select(tasks.c.task_id)
                .where(in_pools, tasks.c.live_count < tasks.c.overlap, ~mine)
                .order_by(tasks.c.created_at, tasks.c.position).limit(1)
                .with_for_update(skip_locked=True).scalar_subquery())
        return (update(tasks).where(tasks.c.task_id == pick)
                .values(live_count=tasks.c.live_count + 1)
                .returning(tasks.c.task_id, tasks.c.pool_id, tasks.c.input, tasks.c.is_control))

    # built once for the common take, which names its pool
    _CLAIM_IN_ONE_POOL = _claim(
        tasks.c.pool_id == bindparam("c_pid", type_=tasks.c.pool_id.type),
        bindparam("c_wid", type_=assignments.c.worker_id.type))

    async def claim_task(conn: AsyncConnection, worker_id: str, pool_rows: list[Any]) -> Any:
        """Claim the oldest free task this worker never had, in the highest-priority pools
        first (see :func:`_claim`)."""
        if len(pool_rows) == 1:
            return (await conn.execute(_CLAIM_IN_ONE_POOL, {
                "c_wid": worker_id, "c_pid": pool_rows[0].pool_id})).first()
        by_priority: dict[int, list[str]] = {}
        for p in pool_rows:
            by_priority.setdefault(p.priority, []).append(p.pool_id)
        for prio in sorted(by_priority, reverse=True):
            row = (await conn.execute(
                _claim(tasks.c.pool_id.in_(by_priority[prio]), worker_id))).first()
            if row is not None:
                return row
        return None

    async def captcha_gate(conn: AsyncConnection, worker_id: str, pool: Any,
                           now: datetime) -> _CaptchaNeeded | None:
        """Count the take; every Nth one (per worker and pool) first needs a solved captcha."""
        if domain.CAPTCHA_EVERY.get(pool.captcha_frequency, 0) == 0:
            return None
        ins = dialect_insert(conn)(worker_pool_takes).values(
            worker_id=worker_id, pool_id=pool.pool_id, takes=0, captcha_passed_for=0)
        ins = ins.on_conflict_do_update(index_elements=["worker_id", "pool_id"],
                                        set_={"takes": worker_pool_takes.c.takes})
        counter = (await conn.execute(ins.returning(worker_pool_takes.c.takes,
                                                    worker_pool_takes.c.captcha_passed_for))
                   ).one()
        nxt = counter.takes + 1
        if domain.captcha_due(pool.captcha_frequency, nxt) and counter.captcha_passed_for != nxt:
            text = domain.captcha_text()
            cid = str(uuid.uuid4())
            await conn.execute(captcha_challenges.insert().values(
                challenge_id=cid, worker_id=worker_id, pool_id=pool.pool_id,
                project_id=pool.project_id, answer=text, for_take=nxt, created_at=now,
                expires_at=now + timedelta(seconds=settings.captcha_ttl_s)))
            return _CaptchaNeeded(cid, text)
        await conn.execute(update(worker_pool_takes).where(
            worker_pool_takes.c.worker_id == worker_id,
            worker_pool_takes.c.pool_id == pool.pool_id).values(takes=nxt))
        return None

    @svc.rpc(rpc.TAKE)
    async def take(req: rpc.Take) -> rpc.TakeResult:
        """Give the worker the oldest free task of a pool (or of any pool they may use)."""
        require(req.actor, "worker")
        worker_id = req.actor.user_id
        try:
            async with svc.transaction() as conn:
                result = await _take(conn, worker_id, req.pool_id)
            TAKES.labels("ok").inc()
            return result
        except ServiceError as exc:
            TAKES.labels(exc.code).inc()
            raise
        except _CaptchaNeeded as c:
            TAKES.labels("captcha_required").inc()
            raise ServiceError(
                "captcha_required", "solve the captcha before taking the next task", status=428,
                details={"challenge_id": c.challenge_id,
                         "image_png_base64": render_captcha_png(c.text),
                         "expires_in_s": settings.captcha_ttl_s}) from None

    _POOL_COLS = [c.label(f"p_{c.name}") for c in pools.c] + [
        projects.c.instructions.label("p_instructions"),
        projects.c.output_spec.label("p_output_spec")]

    def _worker_counts(worker_id: Any) -> tuple[Any, ...]:
        """The worker's active assignments, earliest deadline and whether a restriction
        is in force, as columns for the take's limit check."""
        mine_active = (assignments.c.worker_id == worker_id,
                       assignments.c.status == domain.ACTIVE)
        return (select(func.count()).where(*mine_active).scalar_subquery().label("active"),
                select(func.min(assignments.c.deadline_at)).where(*mine_active)
                .scalar_subquery().label("earliest"),
                exists().where(restrictions.c.worker_id == worker_id,
                               restrictions.c.lifted_at.is_(None)).label("restricted"))

    def _pg_take_context(with_pool: bool) -> Any:
        """Built once, executed with wid, now (and pid): creates and locks the worker's
        profile, reads the limits of its trust level, its counts and the pool."""
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        wid = bindparam("wid", type_=workers.c.worker_id.type)
        ins = pg_insert(workers).values(
            worker_id=wid, trust_level="new", skills={},
            created_at=bindparam("now", type_=workers.c.created_at.type))
        w = ins.on_conflict_do_update(
            index_elements=["worker_id"], set_={"worker_id": ins.excluded.worker_id}
        ).returning(workers.c.worker_id, workers.c.trust_level, workers.c.skills,
                    workers.c.last_take_at).cte("w")
        src = w.outerjoin(trust_limits, trust_limits.c.level == w.c.trust_level)
        cols = [w.c.worker_id, w.c.trust_level, w.c.skills, w.c.last_take_at,
                trust_limits.c.level, trust_limits.c.max_active, trust_limits.c.min_pause_s,
                trust_limits.c.assignment_timeout_s, *_worker_counts(wid)]
        if with_pool:
            src = src.outerjoin(pools.join(projects, projects.c.project_id == pools.c.project_id),
                                pools.c.pool_id == bindparam("pid", type_=pools.c.pool_id.type))
            cols += _POOL_COLS
        return select(*cols).select_from(src)

    _PG_TAKE_CONTEXT = {False: _pg_take_context(False), True: _pg_take_context(True)}

    def _pg_take_write() -> Any:
        """Built once: the assignment, the worker's last take and task.taken in one
        statement (the event only if the assignment was inserted)."""
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        a = (pg_insert(assignments).values(
            {c: bindparam(f"a_{c}", type_=assignments.c[c].type) for c in _TAKE_COLS})
            .on_conflict_do_nothing(index_elements=["task_id", "worker_id"])
            .returning(assignments.c.assignment_id).cte("a"))
        mark = (update(workers)
                .where(workers.c.worker_id == bindparam("a_worker_id"),
                       exists(select(a.c.assignment_id)))
                .values(last_take_at=bindparam("a_taken_at"))
                .returning(workers.c.worker_id).cte("mark"))
        rec = (outbox_insert_from(svc.outbox, a).returning(svc.outbox.c.event_id)
               .cte("rec"))
        return select(a.c.assignment_id).add_cte(mark, rec)

    _TAKE_COLS = ("assignment_id", "task_id", "pool_id", "project_id", "worker_id", "status",
                  "is_control", "taken_at", "deadline_at")
    _PG_TAKE_WRITE = _pg_take_write()

    async def take_context(conn: AsyncConnection, worker_id: str, pool_id: str | None,
                           now: datetime) -> tuple[Any, Any, Any]:
        """(worker, limits with the worker's counts, pool or None): on PostgreSQL one
        statement that also creates and locks the worker's profile."""
        if conn.dialect.name != "postgresql":
            worker = await lock_worker(conn, worker_id)
            lim = (await conn.execute(select(trust_limits, *_worker_counts(worker_id)).where(
                trust_limits.c.level == worker.trust_level))).first()
            pool = None
            if pool_id is not None:
                pool = (await conn.execute(
                    select(pools, projects.c.instructions, projects.c.output_spec)
                    .join(projects, projects.c.project_id == pools.c.project_id)
                    .where(pools.c.pool_id == pool_id))).first()
            return worker, lim, pool
        stmt = _PG_TAKE_CONTEXT[pool_id is not None]
        row = (await conn.execute(stmt, {"wid": worker_id, "now": now, "pid": pool_id})).one()
        m = row._mapping
        pool = None
        if pool_id is not None and m["p_pool_id"] is not None:
            pool = SimpleNamespace(**{k[2:]: v for k, v in m.items() if k.startswith("p_")})
        return row, (row if m["level"] is not None else None), pool

    async def _take(conn: AsyncConnection, worker_id: str, pool_id: str | None) -> rpc.TakeResult:
        now = utcnow()
        worker, lim, pool = await take_context(conn, worker_id, pool_id, now)
        if lim is None:  # only before the startup seed ran
            raise ServiceError("not_ready", "trust limits are not set up yet", status=503)
        limits = rpc.TrustLevelLimits(level=lim.level, max_active=lim.max_active,
                                      min_pause_s=lim.min_pause_s,
                                      assignment_timeout_s=lim.assignment_timeout_s)
        refusal = domain.check_take_limits(limits, active=lim.active,
                                           earliest_deadline=utc(lim.earliest),
                                           last_take_at=utc(worker.last_take_at), now=now)
        if refusal is not None:
            raise ServiceError("take_limit", refusal.message(), status=429,
                               details=refusal.details())
        restr = (await active_restrictions(conn, worker_id, now)) if lim.restricted else []
        if pool_id is not None:
            if pool is None:
                raise NotFound("pool_not_found", f"no pool {pool_id}")
            if pool.status != "open":
                raise Conflict("pool_not_open", f"the pool is {pool.status}, not open")
            refused = refusal_for(pool, worker.skills, restr, now)
            if refused is not None:
                raise refused
            candidates = [pool]
        else:
            candidates = [p for p in (await conn.execute(
                select(pools).where(pools.c.status == "open"))).all()
                if refusal_for(p, worker.skills, restr, now) is None]
        if not candidates:
            raise no_tasks()
        task = await claim_task(conn, worker_id, candidates)
        if task is None:
            raise no_tasks()
        pool = next(p for p in candidates if p.pool_id == task.pool_id)
        need = await captcha_gate(conn, worker_id, pool, now)
        if need is not None:
            # Keep only the challenge: give the claimed slot back, commit, then refuse.
            await conn.execute(update(tasks).where(tasks.c.task_id == task.task_id)
                               .values(live_count=tasks.c.live_count - 1))
            await conn.commit()
            raise need
        timeout = domain.assignment_timeout(pool.assignment_timeout_s, limits.assignment_timeout_s)
        row = dict(assignment_id=str(uuid.uuid4()), task_id=task.task_id, pool_id=pool.pool_id,
                   project_id=pool.project_id, worker_id=worker_id, status=domain.ACTIVE,
                   is_control=task.is_control, taken_at=now,
                   deadline_at=now + timedelta(seconds=timeout))
        ins = dialect_insert(conn)(assignments).values(**row).on_conflict_do_nothing(
            index_elements=["task_id", "worker_id"]).returning(assignments.c.assignment_id)
        taken = TaskTaken(
            assignment_id=row["assignment_id"], task_id=task.task_id, pool_id=pool.pool_id,
            project_id=pool.project_id, worker_id=worker_id, taken_at=now,
            is_control=task.is_control)
        if conn.dialect.name == "postgresql":
            # the assignment, the worker's last take and the event: one round trip
            _env, params = outbox_params(conn, taken, producer=svc.name)
            params.update({f"a_{c}": row[c] for c in _TAKE_COLS})
            if (await conn.execute(_PG_TAKE_WRITE, params)).first() is None:
                raise no_tasks()
        else:
            if (await conn.execute(ins)).first() is None:
                raise no_tasks()
            await conn.execute(update(workers).where(workers.c.worker_id == worker_id)
                               .values(last_take_at=now))
            await svc.record(conn, taken)
        project = pool if pool_id is not None else (await conn.execute(
            select(projects.c.instructions, projects.c.output_spec)
            .where(projects.c.project_id == pool.project_id))).one()
        return assignment_model(
            {**row, "input": task.input, "answers": None, "comment": None, "proof": None,
             "review_comment": None, "submitted_at": None, "finished_at": None},
            rpc.TakeResult, pool_name=pool.name, instructions=project.instructions,
            output_spec=project.output_spec)

    @svc.rpc(rpc.CAPTCHA_ANSWER)
    async def captcha_answer(req: rpc.CaptchaAnswer) -> rpc.CaptchaResult:
        """Check a captcha answer (single use, expiring); a right one lets the take proceed."""
        require(req.actor, "worker")
        now = utcnow()
        async with svc.transaction() as conn:
            ch = (await conn.execute(select(captcha_challenges).where(
                captcha_challenges.c.challenge_id == req.challenge_id).with_for_update())).first()
            if ch is None or ch.worker_id != req.actor.user_id:
                raise NotFound("challenge_not_found", "no such captcha challenge")
            if ch.used_at is not None:
                raise Conflict("challenge_used", "this captcha was already answered; take again "
                                                 "for a new one")
            if utc(ch.expires_at) <= now:
                raise Conflict("challenge_expired",
                               "this captcha expired; take again for a new one")
            correct = domain.captcha_matches(ch.answer, req.answer)
            await conn.execute(update(captcha_challenges)
                               .where(captcha_challenges.c.challenge_id == ch.challenge_id)
                               .values(used_at=now))
            if correct:
                await conn.execute(update(worker_pool_takes).where(
                    worker_pool_takes.c.worker_id == ch.worker_id,
                    worker_pool_takes.c.pool_id == ch.pool_id)
                    .values(captcha_passed_for=ch.for_take))
            await svc.record(conn, CaptchaAnswered(
                challenge_id=ch.challenge_id, worker_id=ch.worker_id, pool_id=ch.pool_id,
                project_id=ch.project_id, correct=correct, answered_at=now))
        return rpc.CaptchaResult(correct=correct)

    # ----------------------------------------------------------- submit / skip

    _JOINED = (assignments.join(tasks, tasks.c.task_id == assignments.c.task_id))
    _SUBMIT_READ = (
        select(assignments, tasks.c.input, tasks.c.control_answers, tasks.c.overlap,
               pools.c.price_minor, pools.c.currency, pools.c.review_mode,
               pools.c.auto_accept_after_s, projects.c.output_spec)
        .select_from(_JOINED.join(pools, pools.c.pool_id == assignments.c.pool_id)
                     .join(projects, projects.c.project_id == assignments.c.project_id))
        .where(assignments.c.assignment_id == bindparam("aid")))

    async def lock_own_assignment(conn: AsyncConnection, assignment_id: str, worker_id: str,
                                  *cols: Any) -> Any:
        q = (select(assignments, tasks.c.input, tasks.c.control_answers, tasks.c.overlap, *cols)
             .select_from(_JOINED if not cols else _JOINED.join(
                 pools, pools.c.pool_id == assignments.c.pool_id).join(
                 projects, projects.c.project_id == assignments.c.project_id))
             .where(assignments.c.assignment_id == assignment_id)
             .with_for_update(of=assignments))
        row = (await conn.execute(q)).first()
        if row is None or row.worker_id != worker_id:
            raise NotFound("assignment_not_found", f"you have no assignment {assignment_id}")
        return row

    def require_active(row: Any) -> None:
        if row.status != domain.ACTIVE:
            raise Conflict("assignment_not_active", f"the assignment is {row.status}",
                           details={"status": row.status})

    @svc.rpc(rpc.SUBMIT)
    async def submit(req: rpc.Submit) -> rpc.Assignment:
        """Submit answers checked against the output spec; emits task.submitted."""
        require(req.actor, "worker")
        try:
            if svc.engine.dialect.name == "postgresql":
                fast = await _submit_in_one_statement(req)
                if fast is not None:
                    SUBMITS.labels("ok").inc()
                    return fast
            async with svc.transaction() as conn:
                result = await _submit(conn, req)
            SUBMITS.labels("ok").inc()
            return result
        except ServiceError as exc:
            SUBMITS.labels(exc.code).inc()
            raise
        except _AfterCommit as exc:
            SUBMITS.labels(exc.error.code).inc()
            raise exc.error from None

    def _checked_answers(row: Any, req: rpc.Submit) -> tuple[dict[str, Any], str | None]:
        """The answers converted by the project's output spec (422 per field if they do
        not match) and the proof text."""
        spec = [rpc.FieldSpec(**f) for f in row.output_spec]
        answers, errors = domain.validate_values(spec, req.answers)
        if errors:
            raise Invalid("invalid_answers", "some answers do not match the output spec",
                          details=errors)
        proof = req.proof_url if not req.proof_text else (
            f"{req.proof_url}\n{req.proof_text}" if req.proof_url else req.proof_text)
        return answers, proof

    def _submitted_event(row: Any, answers: dict[str, Any], req: rpc.Submit, proof: str | None,
                         now: datetime) -> TaskSubmitted:
        return TaskSubmitted(
            assignment_id=row.assignment_id, task_id=row.task_id, pool_id=row.pool_id,
            project_id=row.project_id, worker_id=row.worker_id, answers=answers,
            comment=req.comment, proof=proof, taken_at=utc(row.taken_at), submitted_at=now,
            price_minor=row.price_minor, currency=row.currency, overlap=row.overlap,
            is_control=row.is_control,
            control_correct=domain.control_correct(row.control_answers, answers),
            review_mode=row.review_mode, auto_accept_after_s=row.auto_accept_after_s)

    def _pg_submit_write() -> Any:
        """Built once: ACTIVE -> SUBMITTED (owner, status and deadline re-checked) and
        task.submitted, in one statement."""
        a = assignments.c
        moved = (update(assignments)
                 .where(a.assignment_id == bindparam("s_aid"), a.worker_id == bindparam("s_wid"),
                        a.status == domain.ACTIVE,
                        a.deadline_at > bindparam("s_now", type_=a.deadline_at.type))
                 .values(status=domain.SUBMITTED,
                         answers=bindparam("s_answers", type_=a.answers.type),
                         comment=bindparam("s_comment", type_=a.comment.type),
                         proof=bindparam("s_proof", type_=a.proof.type),
                         submitted_at=bindparam("s_now", type_=a.submitted_at.type))
                 .returning(a.assignment_id).cte("moved"))
        return (outbox_insert_from(svc.outbox, moved).returning(svc.outbox.c.event_id)
                .add_cte(moved))

    _PG_SUBMIT_WRITE = _pg_submit_write()

    async def _submit_in_one_statement(req: rpc.Submit) -> rpc.Assignment | None:
        """PostgreSQL, the common case in two round trips and no BEGIN/COMMIT: read and
        check without a lock, then one statement moves ACTIVE -> SUBMITTED (re-checking
        owner, status and deadline) and records task.submitted. None when the assignment
        is not plainly submittable (unknown, not active, past its deadline, changed since
        the read): the transactional path then decides, with its exact error."""
        now = utcnow()
        async with svc.reader.connect() as conn:
            row = (await conn.execute(_SUBMIT_READ, {"aid": req.assignment_id})).first()
            if (row is None or row.worker_id != req.actor.user_id
                    or row.status != domain.ACTIVE or utc(row.deadline_at) <= now):
                return None
            answers, proof = _checked_answers(row, req)
            _env, params = outbox_params(conn, _submitted_event(row, answers, req, proof, now),
                                         producer=svc.name)
            params.update(s_aid=row.assignment_id, s_wid=row.worker_id, s_now=now,
                          s_answers=answers, s_comment=req.comment, s_proof=proof)
            done = (await conn.execute(_PG_SUBMIT_WRITE, params)).first()
            recorded_events(conn)
        if done is None:
            return None
        if svc.relay is not None:
            svc.relay.notify()
        m = dict(row._mapping)
        m.update(status=domain.SUBMITTED, answers=answers, comment=req.comment, proof=proof,
                 submitted_at=now)
        return assignment_model(m)

    async def _submit(conn: AsyncConnection, req: rpc.Submit) -> rpc.Assignment:
        now = utcnow()
        row = await lock_own_assignment(
            conn, req.assignment_id, req.actor.user_id, pools.c.price_minor, pools.c.currency,
            pools.c.review_mode, pools.c.auto_accept_after_s, projects.c.output_spec)
        require_active(row)
        if utc(row.deadline_at) <= now:
            await expire_assignments(conn, [row], now)
            await conn.commit()
            raise _AfterCommit(Conflict("assignment_expired",
                                        "the time for this assignment ran out"))
        answers, proof = _checked_answers(row, req)
        await conn.execute(update(assignments)
                           .where(assignments.c.assignment_id == row.assignment_id)
                           .values(status=domain.SUBMITTED, answers=answers, comment=req.comment,
                                   proof=proof, submitted_at=now))
        await svc.record(conn, _submitted_event(row, answers, req, proof, now))
        m = dict(row._mapping)
        m.update(status=domain.SUBMITTED, answers=answers, comment=req.comment, proof=proof,
                 submitted_at=now)
        return assignment_model(m)

    @svc.rpc(rpc.SKIP)
    async def skip(req: rpc.AssignmentRef) -> rpc.Assignment:
        """Give an active assignment back; the task returns to the pool (not to this worker)."""
        require(req.actor, "worker")
        now = utcnow()
        async with svc.transaction() as conn:
            row = await lock_own_assignment(conn, req.assignment_id, req.actor.user_id)
            require_active(row)
            await conn.execute(update(assignments)
                               .where(assignments.c.assignment_id == row.assignment_id)
                               .values(status=domain.SKIPPED, finished_at=now))
            await conn.execute(update(tasks).where(tasks.c.task_id == row.task_id)
                               .values(live_count=tasks.c.live_count - 1))
            await svc.record(conn, TaskSkipped(
                assignment_id=row.assignment_id, task_id=row.task_id, pool_id=row.pool_id,
                project_id=row.project_id, worker_id=row.worker_id, skipped_at=now))
        m = dict(row._mapping)
        m.update(status=domain.SKIPPED, finished_at=now)
        return assignment_model(m)

    @svc.rpc(rpc.REPORT)
    async def report(req: rpc.Report) -> rpc.ReportResult:
        """Report a problem with the task of one of the worker's assignments."""
        require(req.actor, "worker")
        async with svc.transaction() as conn:
            row = (await conn.execute(select(assignments).where(
                assignments.c.assignment_id == req.assignment_id))).first()
            if row is None or row.worker_id != req.actor.user_id:
                raise NotFound("assignment_not_found",
                               f"you have no assignment {req.assignment_id}")
            await svc.record(conn, TaskReported(
                assignment_id=row.assignment_id, task_id=row.task_id, pool_id=row.pool_id,
                project_id=row.project_id, worker_id=row.worker_id, reason=req.reason,
                text=req.text, reported_at=utcnow()))
        return rpc.ReportResult(reported=True)

    @svc.periodic(settings.expire_sweep_interval_s)
    async def expire_overdue() -> None:
        """Expire ACTIVE assignments past their deadline; their tasks go back to the pool."""
        while True:
            now = utcnow()
            async with svc.transaction() as conn:
                rows = (await conn.execute(
                    select(assignments.c.assignment_id, assignments.c.task_id,
                           assignments.c.pool_id, assignments.c.project_id,
                           assignments.c.worker_id)
                    .where(assignments.c.status == domain.ACTIVE,
                           assignments.c.deadline_at < now)
                    .order_by(assignments.c.deadline_at).limit(settings.expire_batch_size)
                    .with_for_update(skip_locked=True))).all()
                await expire_assignments(conn, rows, now)
            if len(rows) < settings.expire_batch_size:
                return

    # ------------------------------------------------------------- worker views

    @svc.rpc(rpc.MY_ASSIGNMENTS)
    async def my_assignments(req: rpc.MyAssignments) -> rpc.Assignments:
        """The calling worker's assignments, newest first (no prices)."""
        require(req.actor, "worker")
        q = (select(assignments, tasks.c.input).select_from(_JOINED)
             .where(assignments.c.worker_id == req.actor.user_id))
        if req.status:
            q = q.where(assignments.c.status == req.status)
        if req.pool_id:
            q = q.where(assignments.c.pool_id == req.pool_id)
        async with svc.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar()
            rows = (await conn.execute(q.order_by(assignments.c.taken_at.desc())
                                       .limit(req.page.limit).offset(req.page.offset))).all()
        return rpc.Assignments(items=[assignment_model(r._mapping) for r in rows],
                               total=total or 0)

    @svc.rpc(rpc.AVAILABLE_POOLS)
    async def available_pools(req: rpc.AvailablePools) -> rpc.AvailablePoolList:
        """Open pools the worker may take from, with how many tasks are free for them."""
        require(req.actor, "worker")
        wid = req.actor.user_id
        now = utcnow()
        async with svc.engine.connect() as conn:
            w = (await conn.execute(select(workers.c.skills)
                                    .where(workers.c.worker_id == wid))).first()
            skills = (w.skills if w else None) or {}
            restr = await active_restrictions(conn, wid, now)
            open_pools = [p for p in (await conn.execute(
                select(pools.c.pool_id, pools.c.project_id, pools.c.name, pools.c.priority,
                       pools.c.skill_filters, projects.c.instructions)
                .join(projects, projects.c.project_id == pools.c.project_id)
                .where(pools.c.status == "open"))).all()
                if refusal_for(p, skills, restr, now) is None]
            counts: dict[str, int] = {}
            if open_pools:
                mine = exists().where(assignments.c.task_id == tasks.c.task_id,
                                      assignments.c.worker_id == wid)
                counts = dict((await conn.execute(
                    select(tasks.c.pool_id, func.count())
                    .where(tasks.c.pool_id.in_([p.pool_id for p in open_pools]),
                           tasks.c.live_count < tasks.c.overlap, ~mine)
                    .group_by(tasks.c.pool_id))).all())
        items = [rpc.AvailablePool(pool_id=p.pool_id, project_id=p.project_id, name=p.name,
                                   instructions=p.instructions, priority=p.priority,
                                   available_tasks=counts.get(p.pool_id, 0))
                 for p in open_pools]
        items.sort(key=lambda i: (-i.priority, i.name))
        start = req.page.offset
        return rpc.AvailablePoolList(items=items[start:start + req.page.limit])

    # ------------------------------------------------------------ results, stats

    @svc.rpc(rpc.EXPORT_RESULTS)
    async def export_results(req: rpc.ExportResults) -> rpc.ExportedResults:
        """A pool's results as CSV, TSV or JSON text: worker, status, answers, UTC times."""
        require(req.actor, "admin")
        a = assignments.c
        cond = [a.pool_id == req.pool_id]
        if req.status:
            cond.append(a.status == req.status)
        q = (select(a.assignment_id, a.task_id, a.worker_id, a.status, tasks.c.input, a.answers,
                    a.comment, a.proof, a.taken_at.label("started_at"), a.submitted_at)
             .select_from(_JOINED).where(*cond))
        if req.cursor is not None:  # keyset: after the last row of the previous page
            after_at, after_id = _export_cursor(req.cursor)
            q = q.where(or_(a.taken_at > after_at,
                            and_(a.taken_at == after_at, a.assignment_id > after_id)))
        async with svc.engine.connect() as conn:
            pool = await get_pool_row(conn, req.pool_id)
            project = await get_project_row(conn, pool.project_id)
            total = None
            if req.cursor is None:
                total = (await conn.execute(select(func.count()).select_from(assignments)
                                            .where(*cond))).scalar_one()
            rows = [dict(r._mapping) for r in (await conn.execute(
                q.order_by(a.taken_at, a.assignment_id).limit(_EXPORT_PAGE_ROWS))).all()]
        for r in rows:
            r["started_at"], r["submitted_at"] = utc(r["started_at"]), utc(r["submitted_at"])
        kw = {"input_fields": [f["name"] for f in project.input_spec],
              "output_fields": [f["name"] for f in project.output_spec]}
        head = domain.results_header(req.format, **kw) if req.cursor is None else ""
        size, taken = len(head), []
        for line in domain.result_rows(rows, req.format, **kw):
            if taken and size + len(line) + 2 > req.max_bytes:
                break  # the rest goes in the next page
            taken.append(line)
            size += len(line) + 2
        more = len(taken) < len(rows) or len(rows) == _EXPORT_PAGE_ROWS
        last = rows[len(taken) - 1] if taken else None
        content = ("[" + ", ".join(taken) + "]") if req.format == "json" else \
            head + "".join(taken)
        return rpc.ExportedResults(
            content_type=domain.CONTENT_TYPES[req.format],
            filename=f"results_{req.pool_id}.{req.format}", rows=len(taken), content=content,
            total_rows=total,
            next_cursor=(f"{last['started_at'].isoformat()}|{last['assignment_id']}"
                         if more and last is not None else None))

    def _export_cursor(cursor: str) -> tuple[datetime, str]:
        at, _, aid = cursor.rpartition("|")
        try:
            parsed = datetime.fromisoformat(at)
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None or not aid:
            raise Invalid("invalid_cursor", "the cursor is not one a previous page returned")
        return parsed, aid

    @svc.rpc(rpc.POOL_STATS)
    async def pool_stats(req: rpc.PoolStatsRequest) -> rpc.PoolStats:
        """Counts of a pool's tasks and of its assignments by status."""
        require(req.actor, "admin", "manager")
        async with svc.engine.connect() as conn:
            pool = await get_pool_row(conn, req.pool_id)
            t = (await conn.execute(select(
                func.count(),
                func.coalesce(func.sum(case((tasks.c.is_control, 1), else_=0)), 0),
                func.coalesce(func.sum(case((tasks.c.live_count < tasks.c.overlap, 1),
                                            else_=0)), 0),
                func.coalesce(func.sum(case((tasks.c.accepted_count >= tasks.c.overlap, 1),
                                            else_=0)), 0),
            ).where(tasks.c.pool_id == req.pool_id))).one()
            by_status = dict((await conn.execute(
                select(assignments.c.status, func.count())
                .where(assignments.c.pool_id == req.pool_id)
                .group_by(assignments.c.status))).all())
        return rpc.PoolStats(
            pool_id=pool.pool_id, status=pool.status, tasks_total=t[0], control_tasks=t[1],
            tasks_open=t[2], tasks_completed=t[3],
            assignments={s: int(by_status.get(s, 0)) for s in domain.ASSIGNMENT_STATUSES})

    # ------------------------------------------------------------ trust, workers

    async def all_limits(conn: AsyncConnection) -> rpc.TrustLimits:
        order = {lim.level: i for i, lim in enumerate(domain.DEFAULT_TRUST_LIMITS)}
        return rpc.TrustLimits(levels=sorted(
            [await limits_for(conn, lvl) for lvl in order], key=lambda x: order[x.level]))

    @svc.rpc(rpc.GET_TRUST_LIMITS)
    async def get_trust_limits(req: rpc.TrustLimitsGet) -> rpc.TrustLimits:
        require(req.actor, "admin")
        async with svc.engine.connect() as conn:
            return await all_limits(conn)

    @svc.rpc(rpc.SET_TRUST_LIMITS)
    async def set_trust_limits(req: rpc.TrustLimitsSet) -> rpc.TrustLimits:
        """Set one trust level's limits (max active, pause between takes, timeout)."""
        require(req.actor, "admin")
        values = {**req.limits.model_dump(), "updated_at": utcnow()}
        async with svc.transaction() as conn:
            ins = dialect_insert(conn)(trust_limits).values(**values)
            await conn.execute(ins.on_conflict_do_update(
                index_elements=["level"],
                set_={k: v for k, v in values.items() if k != "level"}))
            return await all_limits(conn)

    async def profile(conn: AsyncConnection, worker_id: str) -> rpc.WorkerProfile:
        now = utcnow()
        w = (await conn.execute(select(workers).where(workers.c.worker_id == worker_id))).one()
        active = (await conn.execute(select(func.count()).where(
            assignments.c.worker_id == worker_id,
            assignments.c.status == domain.ACTIVE))).scalar()
        restr = await active_restrictions(conn, worker_id, now)
        return rpc.WorkerProfile(
            worker_id=w.worker_id, trust_level=w.trust_level, skills=w.skills or {},
            restrictions=[rpc.Restriction(restriction_id=r.restriction_id, scope=r.scope,
                                          pool_id=r.pool_id, project_id=r.project_id,
                                          until=r.until) for r in restr],
            active_assignments=active or 0, last_take_at=utc(w.last_take_at),
            created_at=utc(w.created_at))

    @svc.rpc(rpc.GET_WORKER_PROFILE)
    async def get_worker_profile(req: rpc.WorkerProfileGet) -> rpc.WorkerProfile:
        """A worker's trust level, skills and restrictions in force (created lazily)."""
        if not (req.actor.role == "admin" or (req.actor.role == "worker"
                                              and req.actor.user_id == req.worker_id)):
            raise Forbidden("forbidden", "only admins may read other workers' profiles")
        async with svc.transaction() as conn:
            await ensure_worker(conn, req.worker_id)
            return await profile(conn, req.worker_id)

    @svc.rpc(rpc.SET_TRUST_LEVEL)
    async def set_trust_level(req: rpc.SetTrustLevel) -> rpc.WorkerProfile:
        """Set a worker's trust level (the gateway audits the change)."""
        require(req.actor, "admin")
        async with svc.transaction() as conn:
            await ensure_worker(conn, req.worker_id)
            await conn.execute(update(workers).where(workers.c.worker_id == req.worker_id)
                               .values(trust_level=req.trust_level))
            return await profile(conn, req.worker_id)

    # ---------------------------------------------------------------- consumers

    async def finish_submitted(conn: AsyncConnection, event: ReviewAccepted | ReviewRejected,
                               status: str) -> str | None:
        """SUBMITTED -> ``status`` with the review's time and comment; the task id, or None
        (logged) when the assignment is not a submitted one."""
        r = (await conn.execute(
            update(assignments).where(assignments.c.assignment_id == event.assignment_id,
                                      assignments.c.status == domain.SUBMITTED)
            .values(status=status, finished_at=event.decided_at, review_comment=event.comment)
            .returning(assignments.c.task_id))).first()
        if r is None:
            log.warning("%s for %s: not a submitted assignment, ignored", status.lower(),
                        event.assignment_id)
            return None
        return r.task_id

    def _pg_accept() -> Any:
        """Built once: SUBMITTED -> ACCEPTED and the task's accepted count, one statement."""
        a = assignments.c
        done = (update(assignments)
                .where(a.assignment_id == bindparam("r_aid"), a.status == domain.SUBMITTED)
                .values(status=domain.ACCEPTED,
                        finished_at=bindparam("r_at", type_=a.finished_at.type),
                        review_comment=bindparam("r_comment", type_=a.review_comment.type))
                .returning(a.task_id).cte("done"))
        return (update(tasks).where(tasks.c.task_id == done.c.task_id)
                .values(accepted_count=tasks.c.accepted_count + 1)
                .returning(tasks.c.task_id))

    _PG_ACCEPT = _pg_accept()

    @svc.consume("review.accepted", name="review-accepted")
    async def on_review_accepted(conn: AsyncConnection, event: ReviewAccepted,
                                 env: Envelope) -> None:
        """SUBMITTED -> ACCEPTED; the task counts one more accepted answer."""
        if conn.dialect.name == "postgresql":
            # (bind names differ from column names: an UPDATE's parameters named like a
            # column would be added to its SET clause)
            if (await conn.execute(_PG_ACCEPT, {"r_aid": event.assignment_id,
                                                "r_at": event.decided_at,
                                                "r_comment": event.comment})).first() is None:
                log.warning("accepted for %s: not a submitted assignment, ignored",
                            event.assignment_id)
            return
        task_id = await finish_submitted(conn, event, domain.ACCEPTED)
        if task_id is not None:
            await conn.execute(update(tasks).where(tasks.c.task_id == task_id)
                               .values(accepted_count=tasks.c.accepted_count + 1))

    @svc.consume("review.rejected", name="review-rejected")
    async def on_review_rejected(conn: AsyncConnection, event: ReviewRejected,
                                 env: Envelope) -> None:
        """SUBMITTED -> REJECTED; the overlap slot frees, so the task returns to the pool."""
        task_id = await finish_submitted(conn, event, domain.REJECTED)
        if task_id is not None:
            await conn.execute(update(tasks).where(tasks.c.task_id == task_id)
                               .values(live_count=tasks.c.live_count - 1))

    @svc.consume("rules.restriction.applied", name="restriction-applied")
    async def on_restriction_applied(conn: AsyncConnection, event: RestrictionApplied,
                                     env: Envelope) -> None:
        """Keep the restriction; takes check it (expired ones are ignored by their ``until``)."""
        ins = dialect_insert(conn)(restrictions).values(
            restriction_id=event.restriction_id, worker_id=event.worker_id, scope=event.scope,
            pool_id=event.pool_id, project_id=event.project_id, until=event.until,
            created_at=utcnow())
        await conn.execute(ins.on_conflict_do_nothing(index_elements=["restriction_id"]))

    @svc.consume("rules.restriction.lifted", name="restriction-lifted")
    async def on_restriction_lifted(conn: AsyncConnection, event: RestrictionLifted,
                                    env: Envelope) -> None:
        await conn.execute(update(restrictions).where(
            restrictions.c.restriction_id == event.restriction_id,
            restrictions.c.lifted_at.is_(None)).values(lifted_at=event.lifted_at))

    @svc.consume("rules.skill.set", name="skill-set")
    async def on_skill_set(conn: AsyncConnection, event: SkillSet, env: Envelope) -> None:
        """Set one skill of the worker (pools' skill filters read it).

        Where the change shuts the worker out of a pool they have worked in (its skill
        filters passed before and fail now), ``task.access_revoked`` tells the rules
        service: re-execution rules (access revoked by a skill change) react to it.
        """
        w = await lock_worker(conn, event.worker_id)
        before = dict(w.skills or {})
        skills = {**before, event.skill: event.value}
        await conn.execute(update(workers).where(workers.c.worker_id == event.worker_id)
                           .values(skills=skills))
        if before.get(event.skill) == event.value:
            return
        worked_in = select(assignments.c.pool_id).where(
            assignments.c.worker_id == event.worker_id).distinct().scalar_subquery()
        rows = (await conn.execute(
            select(pools.c.pool_id, pools.c.project_id, pools.c.skill_filters)
            .where(pools.c.pool_id.in_(worked_in), pools.c.status != "archived")
            .order_by(pools.c.pool_id))).all()
        now = utcnow()
        for p in rows:
            filters = [rpc.SkillFilter(**f) for f in p.skill_filters or []]
            if not any(f.skill == event.skill for f in filters):
                continue
            if domain.skills_pass(filters, before) and not domain.skills_pass(filters, skills):
                await svc.record(conn, TaskAccessRevoked(
                    worker_id=event.worker_id, pool_id=p.pool_id, project_id=p.project_id,
                    skill=event.skill, revoked_at=now), cause=env)

    @svc.consume("rules.overlap.changed", name="overlap-changed")
    async def on_overlap_changed(conn: AsyncConnection, event: OverlapChanged,
                                 env: Envelope) -> None:
        """Add to the overlap of the listed tasks and re-open the pool if it was closed."""
        if event.task_ids:
            await conn.execute(update(tasks).where(
                and_(tasks.c.pool_id == event.pool_id, tasks.c.task_id.in_(event.task_ids)))
                .values(overlap=tasks.c.overlap + event.add))
        await conn.execute(update(pools).where(pools.c.pool_id == event.pool_id,
                                               pools.c.status == "closed")
                           .values(status="open", updated_at=utcnow()))

    return svc


def main() -> None:
    run(create_service())


if __name__ == "__main__":
    main()
