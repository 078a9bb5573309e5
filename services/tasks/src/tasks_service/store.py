"""All of the tasks service's SQL: statements built once at import, results as contract
models or the small records below.

Take and submit are the hot paths, and the database gives their guarantees: a task row is
claimed by one UPDATE over a ``FOR UPDATE SKIP LOCKED`` pick (concurrent takes never wait
for each other and never exceed a task's overlap), the worker's row is created and locked
by an upsert (one worker's takes run one at a time, so the trust-level limits hold), and
``UNIQUE(task_id, worker_id)`` keeps a task from going twice to one worker.

Bind parameters of UPDATE statements are named unlike any column (``s_now``, not
``submitted_at``): SQLAlchemy adds a parameter named like a column to the SET clause.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    case,
    cast,
    exists,
    extract,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.rpc import tasks as rpc
from servicekit.db import insert, insert_many
from servicekit.outbox import outbox_insert_from
from servicekit.prepared import Prepared
from tasks_service import domain
from tasks_service.db import (
    assignments,
    captcha_challenges,
    outbox,
    pool_pace,
    pool_pace_pending,
    pool_quality,
    pools,
    projects,
    restrictions,
    task_hints,
    tasks,
    trust_limits,
    worker_pool_takes,
    workers,
)
from tasks_service.results_store import ResultsStore

A, T, P, W = assignments.c, tasks.c, pools.c, workers.c


def _param(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


# ----------------------------------------------------------------------- records


@dataclass(frozen=True)
class TakePool:
    """A pool as a take needs it (``instructions`` and ``output_spec`` when read with it)."""

    pool_id: str
    project_id: str
    name: str
    status: str
    priority: int
    skill_filters: list[rpc.SkillFilter]
    captcha_frequency: str
    assignment_timeout_s: int
    instructions: str | None = None
    output_spec: list[dict[str, Any]] | None = None
    # the mixer (results slice): real, golden, training tasks per suite; None = no mixer
    mixer: rpc.PoolQuality | None = None
    sandbox: bool = False  # its project's flag: staff try it, workers never see it


@dataclass(frozen=True)
class TakeContext:
    """The worker taking (profile created and locked), its limits, counts and the pool."""

    worker_id: str
    skills: dict[str, int]
    last_take_at: datetime | None
    limits: rpc.TrustLevelLimits | None  # None only before the startup seed ran
    active: int
    earliest_deadline: datetime | None
    restricted: bool  # some restriction not lifted (maybe over: look at its ``until``)
    pool: TakePool | None  # the pool named by the take, if it exists
    pool_takes: int = 0  # the worker's assignments in the named pool so far (the mixer's)


@dataclass(frozen=True)
class ClaimedTask:
    task_id: str
    pool_id: str
    input: dict[str, Any]
    is_control: bool


@dataclass(frozen=True)
class Decided:
    """What a review decision's statement returns of the assignment and its task: enough
    for the results slice's follow-ups, which read more only when ``quality`` says the pool
    has an exam or dynamic overlap."""

    task_id: str
    pool_id: str
    worker_id: str
    is_control: bool
    overlap: int
    control_answers: dict[str, Any] | None
    quality: bool


@dataclass(frozen=True)
class AssignmentRow:
    """An assignment with its task's input."""

    assignment_id: str
    task_id: str
    pool_id: str
    project_id: str
    worker_id: str
    status: str
    is_control: bool
    input: dict[str, Any]
    answers: dict[str, Any] | None
    comment: str | None
    proof: str | None
    review_comment: str | None
    taken_at: datetime
    deadline_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    sandbox: bool

    def model(self, **changes: Any) -> rpc.Assignment:
        values = {f.name: getattr(self, f.name) for f in fields(AssignmentRow)}
        del values["is_control"]
        return rpc.Assignment(**(values | changes))


@dataclass(frozen=True)
class SubmitRow(AssignmentRow):
    """What a submit checks: the assignment, its task's control answers and overlap, its
    pool's review settings and its project's output spec."""

    control_answers: dict[str, Any] | None
    overlap: int
    review_mode: str
    auto_accept_after_s: int | None
    output_spec: list[dict[str, Any]]


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    worker_id: str
    pool_id: str
    project_id: str
    answer: str
    for_take: int
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class Overdue:
    """An ACTIVE assignment to expire."""

    assignment_id: str
    task_id: str
    pool_id: str
    project_id: str
    worker_id: str
    sandbox: bool = False


@dataclass(frozen=True)
class WorkedPool:
    pool_id: str
    project_id: str
    skill_filters: list[rpc.SkillFilter]


def _filters(raw: list[dict[str, Any]] | None) -> list[rpc.SkillFilter]:
    return [rpc.SkillFilter(**f) for f in raw or []]


def _take_pool(m: Any, prefix: str = "") -> TakePool:
    return TakePool(
        pool_id=m[f"{prefix}pool_id"], project_id=m[f"{prefix}project_id"],
        name=m[f"{prefix}name"], status=m[f"{prefix}status"], priority=m[f"{prefix}priority"],
        skill_filters=_filters(m[f"{prefix}skill_filters"]),
        captcha_frequency=m[f"{prefix}captcha_frequency"],
        assignment_timeout_s=m[f"{prefix}assignment_timeout_s"],
        sandbox=m[f"{prefix}sandbox"],
        instructions=m.get(f"{prefix}instructions"), output_spec=m.get(f"{prefix}output_spec"))


# ------------------------------------------------------------------ take statements

_TAKE_POOL_COLS = (P.pool_id, P.project_id, P.name, P.status, P.priority, P.skill_filters,
                   P.captcha_frequency, P.assignment_timeout_s, P.sandbox)


def _worker_counts(worker_id: Any) -> tuple[Any, ...]:
    """The worker's active assignments, earliest deadline and whether a restriction is
    recorded, as columns for the take's limit check."""
    mine_active = (A.worker_id == worker_id, A.status == domain.ACTIVE)
    return (select(func.count()).where(*mine_active).scalar_subquery().label("active"),
            select(func.min(A.deadline_at)).where(*mine_active)
            .scalar_subquery().label("earliest"),
            exists().where(restrictions.c.worker_id == worker_id,
                           restrictions.c.lifted_at.is_(None)).label("restricted"))


_MIXER_COLS = ("kind", "mixer_real", "mixer_golden", "mixer_training")


def _mixer(m: Any) -> rpc.PoolQuality | None:
    if m.get("q_kind") is None or not (m["q_mixer_real"] + m["q_mixer_golden"]
                                       + m["q_mixer_training"]):
        return None
    return rpc.PoolQuality(kind=m["q_kind"], mixer_real=m["q_mixer_real"],
                           mixer_golden=m["q_mixer_golden"],
                           mixer_training=m["q_mixer_training"])


def _take_context(with_pool: bool) -> Any:
    """Executed with wid, now (and pid): creates and locks the worker's profile, reads the
    limits of its trust level, its counts and the pool with its project's texts."""
    wid = _param("wid", W.worker_id)
    ins = insert(workers).values(worker_id=wid, trust_level="new", skills={},
                                 created_at=_param("now", W.created_at))
    w = ins.on_conflict_do_update(
        index_elements=["worker_id"], set_={"worker_id": ins.excluded.worker_id}
    ).returning(W.worker_id, W.trust_level, W.skills, W.last_take_at).cte("w")
    src: Any = w.outerjoin(trust_limits, trust_limits.c.level == w.c.trust_level)
    cols = [w.c.worker_id, w.c.skills, w.c.last_take_at, trust_limits.c.level,
            trust_limits.c.max_active, trust_limits.c.min_pause_s,
            trust_limits.c.assignment_timeout_s, *_worker_counts(wid)]
    if with_pool:
        src = src.outerjoin(pools.join(projects, projects.c.project_id == P.project_id),
                            P.pool_id == _param("pid", P.pool_id))
        cols += [c.label(f"p_{c.name}") for c in _TAKE_POOL_COLS]
        cols += [projects.c.instructions.label("p_instructions"),
                 projects.c.output_spec.label("p_output_spec")]
        # the mixer's settings and the worker's place in its suite
        src = src.outerjoin(pool_quality, pool_quality.c.pool_id == P.pool_id)
        cols += [pool_quality.c[c].label(f"q_{c}") for c in _MIXER_COLS]
        # counted only for a pool with a mixer: the count grows with the worker's takes
        q = pool_quality.c
        has_mixer = (q.mixer_real + q.mixer_golden + q.mixer_training) > 0
        cols.append(case((has_mixer, select(func.count())
                          .where(A.worker_id == wid, A.pool_id == P.pool_id)
                          .scalar_subquery()), else_=0).label("pool_takes"))
    return select(*cols).select_from(src)


# The statements of every lifecycle (take, submit, review decision) run prepared on
# asyncpg, past SQLAlchemy's execution layer (servicekit.prepared: about 0.1 ms of CPU
# less per statement); the rest keep conn.execute.
_TAKE_CONTEXT = {False: Prepared(_take_context(False)), True: Prepared(_take_context(True))}


def _claim(in_pools: Any) -> Any:
    """Claim (lock and count) the oldest free task of ``in_pools`` (a condition) that the
    worker ``c_wid`` never had: one UPDATE over a ``FOR UPDATE SKIP LOCKED`` pick."""
    wid = _param("c_wid", A.worker_id)
    mine = exists().where(A.task_id == T.task_id, A.worker_id == wid)
    pick = (select(T.task_id).where(in_pools, T.live_count < T.overlap, ~mine)
            .order_by(T.created_at, T.position).limit(1)
            .with_for_update(skip_locked=True).scalar_subquery())
    return (update(tasks).where(T.task_id == pick).values(live_count=T.live_count + 1)
            .returning(T.task_id, T.pool_id, T.input, T.is_control))


# the common take names its pool: its claim is prebuilt apart from the any-pool one
_CLAIM_IN_POOL = Prepared(_claim(T.pool_id == _param("c_pid", T.pool_id)))
# the mixer's claims: a real task, a golden one (known answer, no hint), a training one
_hinted = exists().where(task_hints.c.task_id == T.task_id)
_CLAIM_SLOT = {
    slot: Prepared(_claim(and_(T.pool_id == _param("c_pid", T.pool_id), kind)))
    for slot, kind in (("real", ~T.is_control), ("golden", and_(T.is_control, ~_hinted)),
                       ("training", and_(T.is_control, _hinted)))}
_CLAIM_IN_POOLS = _claim(T.pool_id.in_(bindparam("c_pids", expanding=True)))
_RELEASE_SLOT = (update(tasks).where(T.task_id == bindparam("r_tid"))
                 .values(live_count=T.live_count - 1))
# the shared pool list: a sandbox pool is never in it (staff take from it by name)
_OPEN_POOLS = select(*_TAKE_POOL_COLS).where(P.status == "open", ~P.sandbox)
_PROJECT_TEXTS = select(projects.c.instructions, projects.c.output_spec).where(
    projects.c.project_id == bindparam("prid"))

TAKE_COLS = ("assignment_id", "task_id", "pool_id", "project_id", "worker_id", "status",
             "is_control", "taken_at", "deadline_at", "sandbox")


def _take_write() -> Any:
    """The assignment, the worker's last take and task.taken in one statement (the event
    only if the assignment was inserted)."""
    a = (insert(assignments).values({c: _param(f"a_{c}", assignments.c[c]) for c in TAKE_COLS})
         .on_conflict_do_nothing(index_elements=["task_id", "worker_id"])
         .returning(A.assignment_id).cte("a"))
    mark = (update(workers)
            .where(W.worker_id == bindparam("a_worker_id"), exists(select(a.c.assignment_id)))
            .values(last_take_at=bindparam("a_taken_at"))
            .returning(W.worker_id).cte("mark"))
    rec = outbox_insert_from(outbox, a).returning(outbox.c.event_id).cte("rec")
    return select(a.c.assignment_id).add_cte(mark, rec)


_TAKE_WRITE = Prepared(_take_write())

# ---------------------------------------------------------------- captcha statements

_new_counter = insert(worker_pool_takes).values(
    worker_id=bindparam("wid"), pool_id=bindparam("pid"), takes=0, captcha_passed_for=0)
_COUNT_TAKE = _new_counter.on_conflict_do_update(
    index_elements=["worker_id", "pool_id"], set_={"takes": worker_pool_takes.c.takes},
).returning(worker_pool_takes.c.takes, worker_pool_takes.c.captcha_passed_for)
_WPT_KEY = (worker_pool_takes.c.worker_id == bindparam("wid"),
            worker_pool_takes.c.pool_id == bindparam("pid"))
_SET_TAKES = update(worker_pool_takes).where(*_WPT_KEY).values(takes=bindparam("n"))
_PASS_CAPTCHA = (update(worker_pool_takes).where(*_WPT_KEY)
                 .values(captcha_passed_for=bindparam("n")))
_LOCK_CHALLENGE = (select(*[captcha_challenges.c[f.name] for f in fields(Challenge)])
                   .where(captcha_challenges.c.challenge_id == bindparam("cid"))
                   .with_for_update())
_USE_CHALLENGE = (update(captcha_challenges)
                  .where(captcha_challenges.c.challenge_id == bindparam("cid"))
                  .values(used_at=bindparam("u_at")))

# ------------------------------------------------------------ assignment statements

_JOINED = assignments.join(tasks, T.task_id == A.task_id)
_ASSIGNMENT_COLS = [assignments.c[f.name] for f in fields(AssignmentRow) if f.name != "input"]
_WITH_INPUT = select(*_ASSIGNMENT_COLS, T.input).select_from(_JOINED)
_submit_read = (
    select(*_ASSIGNMENT_COLS, T.input, T.control_answers, T.overlap, P.review_mode,
           P.auto_accept_after_s, projects.c.output_spec)
    .select_from(_JOINED.join(pools, P.pool_id == A.pool_id)
                 .join(projects, projects.c.project_id == A.project_id))
    .where(A.assignment_id == bindparam("aid")))
_SUBMIT_READ = Prepared(_submit_read)
_LOCK_FOR_SUBMIT = Prepared(_submit_read.with_for_update(of=assignments))
_LOCK_ASSIGNMENT = (_WITH_INPUT.where(A.assignment_id == bindparam("aid"))
                    .with_for_update(of=assignments))
_GET_ASSIGNMENT = _WITH_INPUT.where(A.assignment_id == bindparam("aid"))


def _submit_write() -> Any:
    """ACTIVE -> SUBMITTED (owner, status and deadline re-checked) and task.submitted, in
    one statement."""
    moved = (update(assignments)
             .where(A.assignment_id == bindparam("s_aid"), A.worker_id == bindparam("s_wid"),
                    A.status == domain.ACTIVE, A.deadline_at > _param("s_now", A.deadline_at))
             .values(status=domain.SUBMITTED, answers=_param("s_answers", A.answers),
                     comment=_param("s_comment", A.comment), proof=_param("s_proof", A.proof),
                     submitted_at=_param("s_now", A.submitted_at))
             .returning(A.assignment_id).cte("moved"))
    return outbox_insert_from(outbox, moved).returning(outbox.c.event_id).add_cte(moved)


_SUBMIT_WRITE = Prepared(_submit_write())
_SKIP = (update(assignments).where(A.assignment_id == bindparam("k_aid"))
         .values(status=domain.SKIPPED, finished_at=bindparam("k_at")))
_OVERDUE = (select(*[assignments.c[f.name] for f in fields(Overdue)])
            .where(A.status == domain.ACTIVE, A.deadline_at < bindparam("now"))
            .order_by(A.deadline_at).limit(bindparam("n")).with_for_update(skip_locked=True))
_EXPIRE = (update(assignments)
           .where(A.assignment_id.in_(bindparam("e_ids", expanding=True)),
                  A.status == domain.ACTIVE)
           .values(status=domain.EXPIRED, finished_at=bindparam("e_at")))
_SLOTS_BACK = (update(tasks).where(T.task_id == bindparam("tid"))
               .values(live_count=T.live_count - bindparam("n")))

# ---------------------------------------------------------------- review statements


# ----------------------------------------------------------- fair pay: the pace

PP = pool_pace.c


def _seconds(submitted_at: Any, taken_at: Any) -> Any:
    """take -> submit to the nearest second (PostgreSQL's round: a half goes up), at least 1"""
    return cast(func.greatest(1, func.round(extract("epoch", submitted_at - taken_at))),
                Integer)


def _record_pace(source: Any) -> Any:
    """One more accepted duration of the pool, for each row of ``source`` (the accepted
    assignments' pool_id, submitted_at, taken_at): appended to ``pool_pace_pending``, a new
    row each, so concurrent acceptances of one pool never wait for each other."""
    return insert(pool_pace_pending).from_select(
        ["pool_id", "seconds"],
        select(source.c.pool_id, _seconds(source.c.submitted_at, source.c.taken_at))
        .where(source.c.submitted_at.is_not(None)))


# The pending durations moved into the histogram. Two replicas folding at once take each
# row once: a DELETE that finds a row deleted by a committed transaction skips it.
_FOLD_PACE = text(
    "WITH moved AS (DELETE FROM pool_pace_pending RETURNING pool_id, seconds) "
    "INSERT INTO pool_pace (pool_id, seconds, accepted) "
    "SELECT pool_id, seconds, count(*) FROM moved GROUP BY pool_id, seconds "
    "ORDER BY pool_id, seconds "
    "ON CONFLICT (pool_id, seconds) DO UPDATE "
    "SET accepted = pool_pace.accepted + EXCLUDED.accepted")


def _decided(status: str, task_change: dict[str, Any], was: str = domain.SUBMITTED) -> Any:
    """``was`` (SUBMITTED) -> ``status`` with the review's time, comment and reviewer, and the
    task's count changed, in one statement; an acceptance also counts its take -> submit in
    the pool's pace (fair pay). Returns the :class:`Decided` columns (no row: not in state
    ``was``)."""
    done = (update(assignments)
            .where(A.assignment_id == bindparam("r_aid"), A.status == was)
            .values(status=status, finished_at=_param("r_at", A.finished_at),
                    review_comment=_param("r_comment", A.review_comment),
                    decided_by=_param("r_by", A.decided_by))
            .returning(A.task_id, A.pool_id, A.worker_id, A.is_control, A.submitted_at,
                       A.taken_at).cte("done"))
    q = pool_quality.c
    follow_up = (exists().where(q.pool_id == done.c.pool_id,
                                or_(q.kind == "exam", q.dynamic_max_overlap.is_not(None)))
                 .correlate(done).label("quality"))
    stmt = (update(tasks).where(T.task_id == done.c.task_id).values(**task_change)
            .returning(T.task_id, done.c.pool_id, done.c.worker_id, done.c.is_control,
                       T.overlap, T.control_answers, follow_up))
    if status == domain.ACCEPTED:
        stmt = stmt.add_cte(_record_pace(done).cte("pace"))
    return stmt


_ACCEPT = Prepared(_decided(domain.ACCEPTED, {"accepted_count": T.accepted_count + 1}))
_REJECT = Prepared(_decided(domain.REJECTED, {"live_count": T.live_count - 1}))  # slot frees
# an upheld appeal turns a rejection into an acceptance: the answer counts, and it holds
# its slot again (if the freed slot was taken meanwhile, the task has one answer more)
_ACCEPT_REJECTED = Prepared(_decided(domain.ACCEPTED, {"accepted_count": T.accepted_count + 1,
                                                       "live_count": T.live_count + 1},
                                     was=domain.REJECTED))


# the histogram with the durations not folded into it yet
_PENDING = pool_pace_pending.c
_ALL_PACES = union_all(
    select(PP.pool_id, PP.seconds, PP.accepted)
    .where(PP.pool_id.in_(bindparam("pids", expanding=True))),
    select(_PENDING.pool_id, _PENDING.seconds, literal(1).label("accepted"))
    .where(_PENDING.pool_id.in_(bindparam("pids", expanding=True)))).subquery("paces")
_PACES = (select(_ALL_PACES.c.pool_id, _ALL_PACES.c.seconds,
                 func.sum(_ALL_PACES.c.accepted).label("accepted"))
          .group_by(_ALL_PACES.c.pool_id, _ALL_PACES.c.seconds))
_DECLARED = (select(P.pool_id, P.expected_seconds_per_task)
             .where(P.pool_id.in_(bindparam("pids", expanding=True))).order_by(P.pool_id))

# ------------------------------------------------------------------ worker statements

_RESTRICTIONS = (
    select(restrictions.c.restriction_id, restrictions.c.scope, restrictions.c.pool_id,
           restrictions.c.project_id, restrictions.c.until)
    .where(restrictions.c.worker_id == bindparam("wid"), restrictions.c.lifted_at.is_(None),
           or_(restrictions.c.until.is_(None), restrictions.c.until > bindparam("now"))))
_new_worker = insert(workers).values(worker_id=bindparam("wid"), trust_level="new", skills={},
                                    created_at=bindparam("now"))
_ENSURE_WORKER = _new_worker.on_conflict_do_nothing(index_elements=["worker_id"])
_LOCK_WORKER = _new_worker.on_conflict_do_update(
    index_elements=["worker_id"], set_={"worker_id": _new_worker.excluded.worker_id},
).returning(W.skills)
_WORKER = select(W.worker_id, W.trust_level, W.skills, W.last_take_at, W.created_at,
                 _worker_counts(bindparam("wid"))[0]).where(W.worker_id == bindparam("wid"))
_SET_SKILLS = (update(workers).where(W.worker_id == bindparam("k_wid"))
               .values(skills=_param("k_skills", W.skills)))
_SET_TRUST_LEVEL = (update(workers).where(W.worker_id == bindparam("k_wid"))
                    .values(trust_level=bindparam("k_level")))
_WORKED_IN = (select(P.pool_id, P.project_id, P.skill_filters)
              .where(P.pool_id.in_(select(A.pool_id).where(A.worker_id == bindparam("wid"))
                                   .distinct().scalar_subquery()),
                     P.status != "archived").order_by(P.pool_id))
_ADD_RESTRICTION = insert(restrictions).on_conflict_do_nothing(index_elements=["restriction_id"])
_LIFT_RESTRICTION = (update(restrictions)
                     .where(restrictions.c.restriction_id == bindparam("l_rid"),
                            restrictions.c.lifted_at.is_(None))
                     .values(lifted_at=bindparam("l_at")))
_TRUST_LIMITS = select(trust_limits.c.level, trust_limits.c.max_active,
                       trust_limits.c.min_pause_s, trust_limits.c.assignment_timeout_s)
_SEED_LIMITS = insert(trust_limits).on_conflict_do_nothing(index_elements=["level"])
_new_limits = insert(trust_limits)
_SET_LIMITS = _new_limits.on_conflict_do_update(
    index_elements=["level"], set_={c: _new_limits.excluded[c] for c in (
        "max_active", "min_pause_s", "assignment_timeout_s", "updated_at")})

# ----------------------------------------------------------------- catalog statements

_PROJECT_BY_ID = select(projects).where(projects.c.project_id == bindparam("prid"))
_UPDATE_PROJECT = update(projects).where(projects.c.project_id == bindparam("u_prid")
                                         ).returning(*projects.c)
_POOL_BY_ID = select(pools).where(P.pool_id == bindparam("pid"))
_LOCK_POOL = _POOL_BY_ID.with_for_update()
_UPDATE_POOL = update(pools).where(P.pool_id == bindparam("u_pid")).returning(*pools.c)
_REOPEN_CLOSED = (update(pools).where(P.pool_id == bindparam("u_pid"), P.status == "closed")
                  .values(status="open", updated_at=bindparam("u_at")).returning(*pools.c))
_ADD_OVERLAP = (update(tasks)
                .where(T.pool_id == bindparam("o_pid"),
                       T.task_id.in_(bindparam("o_tids", expanding=True)))
                .values(overlap=T.overlap + bindparam("o_add")))
_POOL_TASK_COUNTS = select(
    func.count(),
    func.coalesce(func.sum(case((T.is_control, 1), else_=0)), 0),
    func.coalesce(func.sum(case((T.live_count < T.overlap, 1), else_=0)), 0),
    func.coalesce(func.sum(case((T.accepted_count >= T.overlap, 1), else_=0)), 0),
).where(T.pool_id == bindparam("pid"))
_POOL_ASSIGNMENT_COUNTS = (select(A.status, func.count()).where(A.pool_id == bindparam("pid"))
                           .group_by(A.status))
_EXPORT_COLS = (A.assignment_id, A.task_id, A.worker_id, A.status, T.input, A.answers,
                A.comment, A.proof, A.taken_at.label("started_at"), A.submitted_at,
                A.is_control.label("golden"), A.finished_at.label("decided_at"),
                A.decided_by.label("reviewer"))

EXPORT_PAGE_ROWS = 2000  # rows read per export page (the page's text is capped apart)


@dataclass(frozen=True)
class PoolTaskCounts:
    total: int
    control: int
    open: int
    completed: int
    by_status: dict[str, int]


def _project(row: Any) -> rpc.Project:
    return rpc.Project.model_validate(dict(row._mapping))


def _pool(row: Any) -> rpc.AdminPool:
    """A pool as stored: with its price (callers choose the view)."""
    return rpc.AdminPool.model_validate(dict(row._mapping))


class TasksStore:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.quality = ResultsStore(conn)  # the results slice's statements

    async def _first(self, stmt: Any, params: dict[str, Any] | None = None) -> Any:
        if isinstance(stmt, Prepared):
            return await stmt.first(self.conn, params)
        return (await self.conn.execute(stmt, params or {})).first()

    async def _page(self, q: Any, order: Any, limit: int, offset: int) -> tuple[list[Any], int]:
        total = (await self.conn.execute(select(func.count()).select_from(q.subquery()))
                 ).scalar_one()
        rows = (await self.conn.execute(q.order_by(*order).limit(limit).offset(offset))).all()
        return list(rows), int(total)

    # ------------------------------------------------------------------------ take

    async def take_context(self, worker_id: str, pool_id: str | None,
                           now: datetime) -> TakeContext:
        """One statement: creates and locks the worker's profile, reads its limits and
        counts (and the pool with its project's texts, when named)."""
        m = (await _TAKE_CONTEXT[pool_id is not None].one(
            self.conn, {"wid": worker_id, "now": now, "pid": pool_id}))._mapping
        limits = None
        if m["level"] is not None:
            limits = rpc.TrustLevelLimits(level=m["level"], max_active=m["max_active"],
                                          min_pause_s=m["min_pause_s"],
                                          assignment_timeout_s=m["assignment_timeout_s"])
        pool = None
        if pool_id is not None and m["p_pool_id"]:
            pool = replace(_take_pool(m, "p_"), mixer=_mixer(m))
        return TakeContext(worker_id=m["worker_id"], skills=m["skills"] or {},
                           last_take_at=m["last_take_at"], limits=limits, active=m["active"],
                           earliest_deadline=m["earliest"], restricted=m["restricted"],
                           pool=pool, pool_takes=m.get("pool_takes") or 0)

    async def active_restrictions(self, worker_id: str,
                                  now: datetime) -> list[domain.ActiveRestriction]:
        rows = (await self.conn.execute(_RESTRICTIONS, {"wid": worker_id, "now": now})).all()
        return [domain.ActiveRestriction(**r._mapping) for r in rows]

    async def open_pools(self) -> list[TakePool]:
        return [_take_pool(r._mapping) for r in (await self.conn.execute(_OPEN_POOLS)).all()]

    async def claim_task(self, worker_id: str, pool_ids: list[str],
                         slot: str | None = None) -> ClaimedTask | None:
        """Claim the oldest free task of the pools this worker never had (one statement);
        ``slot``: only of that kind (the mixer's real, golden or training) in the one pool."""
        if slot is not None and len(pool_ids) == 1:
            row = await self._first(_CLAIM_SLOT[slot], {"c_wid": worker_id,
                                                        "c_pid": pool_ids[0]})
        elif len(pool_ids) == 1:
            row = await self._first(_CLAIM_IN_POOL, {"c_wid": worker_id, "c_pid": pool_ids[0]})
        else:
            row = await self._first(_CLAIM_IN_POOLS, {"c_wid": worker_id, "c_pids": pool_ids})
        return ClaimedTask(**row._mapping) if row is not None else None

    async def release_slot(self, task_id: str) -> None:
        await self.conn.execute(_RELEASE_SLOT, {"r_tid": task_id})

    async def write_take(self, assignment: dict[str, Any], outbox_params: dict[str, Any]) -> bool:
        """Insert the assignment, mark the worker's last take and write task.taken, in one
        statement; False when the worker already had this task."""
        params = outbox_params | {f"a_{c}": assignment[c] for c in TAKE_COLS}
        return await self._first(_TAKE_WRITE, params) is not None

    async def project_texts(self, project_id: str) -> tuple[str, list[dict[str, Any]]]:
        r = (await self.conn.execute(_PROJECT_TEXTS, {"prid": project_id})).one()
        return r.instructions, r.output_spec

    # --------------------------------------------------------------------- captcha

    async def count_take(self, worker_id: str, pool_id: str) -> tuple[int, int]:
        """(takes so far, the take number a solved captcha let through) of the worker in
        the pool, the counter row created on the first take."""
        r = (await self.conn.execute(_COUNT_TAKE, {"wid": worker_id, "pid": pool_id})).one()
        return r.takes, r.captcha_passed_for

    async def set_takes(self, worker_id: str, pool_id: str, takes: int) -> None:
        await self.conn.execute(_SET_TAKES, {"wid": worker_id, "pid": pool_id, "n": takes})

    async def add_challenge(self, challenge: Challenge, created_at: datetime) -> None:
        values = {f.name: getattr(challenge, f.name) for f in fields(Challenge)}
        await self.conn.execute(captcha_challenges.insert(),
                                values | {"created_at": created_at})

    async def lock_challenge(self, challenge_id: str) -> Challenge | None:
        row = await self._first(_LOCK_CHALLENGE, {"cid": challenge_id})
        return Challenge(**row._mapping) if row is not None else None

    async def use_challenge(self, challenge_id: str, at: datetime) -> None:
        await self.conn.execute(_USE_CHALLENGE, {"cid": challenge_id, "u_at": at})

    async def pass_captcha(self, worker_id: str, pool_id: str, for_take: int) -> None:
        await self.conn.execute(_PASS_CAPTCHA, {"wid": worker_id, "pid": pool_id,
                                                "n": for_take})

    # ------------------------------------------------------------------ assignments

    async def submit_row(self, assignment_id: str, *, lock: bool = False) -> SubmitRow | None:
        row = await self._first(_LOCK_FOR_SUBMIT if lock else _SUBMIT_READ,
                                {"aid": assignment_id})
        return SubmitRow(**row._mapping) if row is not None else None

    async def write_submit(self, row: SubmitRow, *, answers: dict[str, Any],
                           comment: str | None, proof: str | None, now: datetime,
                           outbox_params: dict[str, Any]) -> bool:
        """ACTIVE -> SUBMITTED and task.submitted in one statement; False when the
        assignment is no longer the worker's active one within its deadline."""
        params = outbox_params | {"s_aid": row.assignment_id, "s_wid": row.worker_id,
                                  "s_now": now, "s_answers": answers, "s_comment": comment,
                                  "s_proof": proof}
        return await self._first(_SUBMIT_WRITE, params) is not None

    async def assignment(self, assignment_id: str, *,
                         lock: bool = False) -> AssignmentRow | None:
        row = await self._first(_LOCK_ASSIGNMENT if lock else _GET_ASSIGNMENT,
                                {"aid": assignment_id})
        return AssignmentRow(**row._mapping) if row is not None else None

    async def skip(self, row: AssignmentRow, now: datetime) -> None:
        """ACTIVE -> SKIPPED (locked by the caller); the task's slot frees."""
        await self.conn.execute(_SKIP, {"k_aid": row.assignment_id, "k_at": now})
        await self.conn.execute(_RELEASE_SLOT, {"r_tid": row.task_id})

    async def overdue(self, now: datetime, limit: int) -> list[Overdue]:
        """ACTIVE assignments past their deadline, locked (those another sweeper holds are
        skipped), earliest first."""
        rows = (await self.conn.execute(_OVERDUE, {"now": now, "n": limit})).all()
        return [Overdue(**r._mapping) for r in rows]

    async def expire(self, rows: Sequence[Overdue | AssignmentRow], now: datetime) -> None:
        """ACTIVE -> EXPIRED for ``rows`` (locked by the caller); their tasks' slots free."""
        if not rows:
            return
        await self.conn.execute(_EXPIRE, {"e_ids": [r.assignment_id for r in rows], "e_at": now})
        per_task = Counter(r.task_id for r in rows)
        # One order for every sweeper replica, so two never deadlock on task rows.
        await self.conn.execute(_SLOTS_BACK, [{"tid": t, "n": n}
                                              for t, n in sorted(per_task.items())])

    async def my_assignments(self, worker_id: str, *, status: str | None, pool_id: str | None,
                             limit: int, offset: int) -> tuple[list[rpc.Assignment], int]:
        q = _WITH_INPUT.where(A.worker_id == worker_id)
        if status:
            q = q.where(A.status == status)
        if pool_id:
            q = q.where(A.pool_id == pool_id)
        rows, total = await self._page(q, [A.taken_at.desc()], limit, offset)
        return [AssignmentRow(**r._mapping).model() for r in rows], total

    async def worker_skills(self, worker_id: str) -> dict[str, int]:
        row = await self._first(select(W.skills).where(W.worker_id == worker_id))
        return (row.skills if row is not None else None) or {}

    async def open_pools_with_texts(self) -> list[TakePool]:
        q = (select(*_TAKE_POOL_COLS, projects.c.instructions)
             .join(projects, projects.c.project_id == P.project_id)
             .where(P.status == "open", ~P.sandbox))
        return [_take_pool(r._mapping) for r in (await self.conn.execute(q)).all()]

    async def free_task_counts(self, worker_id: str, pool_ids: list[str]) -> dict[str, int]:
        """Per pool, the tasks with a free slot that the worker never had."""
        if not pool_ids:
            return {}
        mine = exists().where(A.task_id == T.task_id, A.worker_id == worker_id)
        rows = (await self.conn.execute(
            select(T.pool_id, func.count())
            .where(T.pool_id.in_(pool_ids), T.live_count < T.overlap, ~mine)
            .group_by(T.pool_id))).all()
        return {r[0]: int(r[1]) for r in rows}

    # ---------------------------------------------------------------------- reviews

    async def accept(self, assignment_id: str, at: datetime, comment: str | None,
                     by: str) -> Decided | None:
        """SUBMITTED -> ACCEPTED, or REJECTED -> ACCEPTED after an upheld appeal; the task
        counts one more accepted answer and the pool's pace one more duration. None when it
        is neither (e.g. accepted already)."""
        args = {"r_aid": assignment_id, "r_at": at, "r_comment": comment, "r_by": by}
        row = (await self._first(_ACCEPT, args)
               or await self._first(_ACCEPT_REJECTED, args))
        return Decided(**row._mapping) if row is not None else None

    async def pool_paces(self, pool_ids: list[str]
                         ) -> list[tuple[str, int | None, list[tuple[int, int]]]]:
        """(pool, declared seconds per task, [(seconds, accepted)]) of each existing pool."""
        declared = (await self.conn.execute(_DECLARED, {"pids": pool_ids})).all()
        counts: dict[str, list[tuple[int, int]]] = {}
        for row in (await self.conn.execute(_PACES, {"pids": pool_ids})).all():
            counts.setdefault(row.pool_id, []).append((row.seconds, int(row.accepted)))
        return [(row.pool_id, row.expected_seconds_per_task, counts.get(row.pool_id, []))
                for row in declared]

    async def fold_pace(self) -> None:
        """Move the pending accepted durations into the pools' histograms."""
        await self.conn.execute(_FOLD_PACE)

    async def reject(self, assignment_id: str, at: datetime, comment: str | None,
                     by: str) -> bool:
        """SUBMITTED -> REJECTED; the task's slot frees. False when it is not a submitted
        assignment."""
        return await self._first(_REJECT, {"r_aid": assignment_id, "r_at": at,
                                           "r_comment": comment, "r_by": by}) is not None

    async def add_overlap(self, pool_id: str, task_ids: list[str], add: int) -> None:
        if task_ids:
            await self.conn.execute(_ADD_OVERLAP, {"o_pid": pool_id, "o_tids": task_ids,
                                                   "o_add": add})

    async def reopen_if_closed(self, pool_id: str, now: datetime) -> rpc.AdminPool | None:
        """closed -> open; the pool when it was reopened."""
        row = await self._first(_REOPEN_CLOSED, {"u_pid": pool_id, "u_at": now})
        return _pool(row) if row is not None else None

    # ---------------------------------------------------------------------- workers

    async def seed_trust_limits(self, limits: tuple[rpc.TrustLevelLimits, ...],
                                now: datetime) -> None:
        await self.conn.execute(_SEED_LIMITS, [lim.model_dump() | {"updated_at": now}
                                               for lim in limits])

    async def trust_limits(self) -> list[rpc.TrustLevelLimits]:
        rows = (await self.conn.execute(_TRUST_LIMITS)).all()
        return [rpc.TrustLevelLimits.model_validate(dict(r._mapping)) for r in rows]

    async def set_trust_limits(self, limits: rpc.TrustLevelLimits, now: datetime) -> None:
        await self.conn.execute(_SET_LIMITS, limits.model_dump() | {"updated_at": now})

    async def ensure_worker(self, worker_id: str, now: datetime) -> None:
        await self.conn.execute(_ENSURE_WORKER, {"wid": worker_id, "now": now})

    async def set_trust_level(self, worker_id: str, level: str) -> None:
        await self.conn.execute(_SET_TRUST_LEVEL, {"k_wid": worker_id, "k_level": level})

    async def worker_profile(self, worker_id: str, now: datetime) -> rpc.WorkerProfile | None:
        w = await self._first(_WORKER, {"wid": worker_id})
        if w is None:
            return None
        restr = await self.active_restrictions(worker_id, now)
        return rpc.WorkerProfile(
            worker_id=w.worker_id, trust_level=w.trust_level, skills=w.skills or {},
            restrictions=[rpc.Restriction(restriction_id=r.restriction_id, scope=r.scope,
                                          pool_id=r.pool_id, project_id=r.project_id,
                                          until=r.until) for r in restr],
            active_assignments=w.active, last_take_at=w.last_take_at, created_at=w.created_at)

    async def lock_worker_skills(self, worker_id: str, now: datetime) -> dict[str, int]:
        """The worker's skills, the profile created if new and locked until the commit."""
        r = (await self.conn.execute(_LOCK_WORKER, {"wid": worker_id, "now": now})).one()
        return dict(r.skills or {})

    async def set_skills(self, worker_id: str, skills: dict[str, int]) -> None:
        await self.conn.execute(_SET_SKILLS, {"k_wid": worker_id, "k_skills": skills})

    async def pools_worked_in(self, worker_id: str) -> list[WorkedPool]:
        """The pools (not archived) where the worker ever had an assignment."""
        rows = (await self.conn.execute(_WORKED_IN, {"wid": worker_id})).all()
        return [WorkedPool(r.pool_id, r.project_id, _filters(r.skill_filters)) for r in rows]

    async def add_restriction(self, values: dict[str, Any]) -> None:
        """Keep a restriction (a second copy of the same id changes nothing)."""
        await self.conn.execute(_ADD_RESTRICTION, values)

    async def lift_restriction(self, restriction_id: str, at: datetime) -> None:
        await self.conn.execute(_LIFT_RESTRICTION, {"l_rid": restriction_id, "l_at": at})

    # ---------------------------------------------------------------------- catalog

    async def add_project(self, project: rpc.Project) -> None:
        await self.conn.execute(projects.insert(), project.model_dump(mode="python"))

    async def project(self, project_id: str) -> rpc.Project | None:
        row = await self._first(_PROJECT_BY_ID, {"prid": project_id})
        return _project(row) if row is not None else None

    async def update_project(self, project_id: str,
                             values: dict[str, Any]) -> rpc.Project | None:
        row = await self._first(_UPDATE_PROJECT.values(**values), {"u_prid": project_id})
        return _project(row) if row is not None else None

    async def list_projects(self, limit: int, offset: int) -> tuple[list[rpc.Project], int]:
        rows, total = await self._page(select(projects), [projects.c.created_at.desc()],
                                       limit, offset)
        return [_project(r) for r in rows], total

    async def add_pool(self, pool: rpc.AdminPool) -> None:
        await self.conn.execute(pools.insert(), pool.model_dump(mode="python"))

    async def pool(self, pool_id: str, *, lock: bool = False) -> rpc.AdminPool | None:
        row = await self._first(_LOCK_POOL if lock else _POOL_BY_ID, {"pid": pool_id})
        return _pool(row) if row is not None else None

    async def update_pool(self, pool_id: str, values: dict[str, Any]) -> rpc.AdminPool:
        return _pool(await self._first(_UPDATE_POOL.values(**values), {"u_pid": pool_id}))

    async def list_pools(self, *, project_id: str | None, status: str | None, limit: int,
                         offset: int) -> tuple[list[rpc.AdminPool], int]:
        q = select(pools)
        if project_id:
            q = q.where(P.project_id == project_id)
        if status:
            q = q.where(P.status == status)
        rows, total = await self._page(q, [P.created_at.desc()], limit, offset)
        return [_pool(r) for r in rows], total

    async def add_tasks(self, rows: list[dict[str, Any]]) -> None:
        await insert_many(self.conn, tasks, rows)  # COPY for a large upload

    async def list_tasks(self, pool_id: str, limit: int,
                         offset: int) -> tuple[list[rpc.TaskItem], int]:
        """A pool's tasks, oldest first, with their control answers and hints."""
        q = (select(tasks, task_hints.c.hint)
             .select_from(tasks.outerjoin(task_hints, task_hints.c.task_id == T.task_id))
             .where(T.pool_id == pool_id))
        rows, total = await self._page(q, [T.created_at, T.position], limit, offset)
        return [rpc.TaskItem(task_id=r.task_id, pool_id=r.pool_id, input=r.input,
                             is_control=r.is_control, control_answers=r.control_answers,
                             hint=r.hint, overlap=r.overlap, live_assignments=r.live_count,
                             created_at=r.created_at) for r in rows], total

    async def count_results(self, pool_id: str, status: str | None) -> int:
        cond = [A.pool_id == pool_id] + ([A.status == status] if status else [])
        return int((await self.conn.execute(select(func.count()).select_from(assignments)
                                            .where(*cond))).scalar_one())

    async def results(self, pool_id: str, status: str | None,
                      after: tuple[datetime, str] | None) -> list[dict[str, Any]]:
        """Up to ``EXPORT_PAGE_ROWS`` result rows in (taken_at, assignment_id) order, after
        the key ``after`` (the last row of the previous page)."""
        q = select(*_EXPORT_COLS).select_from(_JOINED).where(A.pool_id == pool_id)
        if status:
            q = q.where(A.status == status)
        if after is not None:
            at, aid = after
            q = q.where(or_(A.taken_at > at, and_(A.taken_at == at, A.assignment_id > aid)))
        rows = (await self.conn.execute(q.order_by(A.taken_at, A.assignment_id)
                                        .limit(EXPORT_PAGE_ROWS))).all()
        return [dict(r._mapping) for r in rows]

    async def pool_counts(self, pool_id: str) -> PoolTaskCounts:
        t = (await self.conn.execute(_POOL_TASK_COUNTS, {"pid": pool_id})).one()
        by_status = (await self.conn.execute(_POOL_ASSIGNMENT_COUNTS, {"pid": pool_id})).all()
        return PoolTaskCounts(total=int(t[0]), control=int(t[1]), open=int(t[2]),
                              completed=int(t[3]),
                              by_status={r[0]: int(r[1]) for r in by_status})
