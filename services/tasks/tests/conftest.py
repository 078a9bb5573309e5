"""A fake TasksStore (in memory) and a handler context around it: the handler tests need no
database and no bus, and run in milliseconds. Calls go through the RPC server's own
dispatch, so the spec's roles, its request validation and its response type are checked
as in the service."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.rpc import Actor, RpcReply, RpcSpec
from contracts.rpc import tasks as rpc
from servicekit.errors import RpcCallError
from servicekit.rpc import dispatch
from servicekit.testing.fakes import fake_context
from tasks_service import catalog, domain
from tasks_service import store as real
from tasks_service.settings import TasksSettings

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _take_pool(pool: rpc.AdminPool, project: rpc.Project | None = None) -> real.TakePool:
    return real.TakePool(pool_id=pool.pool_id, project_id=pool.project_id, name=pool.name,
                    status=pool.status, priority=pool.priority, skill_filters=pool.skill_filters,
                    captcha_frequency=pool.captcha_frequency,
                    assignment_timeout_s=pool.assignment_timeout_s, sandbox=pool.sandbox,
                    instructions=project.instructions if project else None,
                    output_spec=[f.model_dump() for f in project.output_spec] if project else None)


class FakeResultsStore:
    """The results slice's store as the catalog uses it: no aggregation computed, no pool
    quality settings."""

    async def computed_methods(self, pool_id: str) -> list[str]:
        return []

    async def for_tasks(self, task_ids: list[str]) -> dict:
        return {}


class FakeTasksStore:
    """The methods of :class:`tasks_service.store.TasksStore`, on dicts."""

    def __init__(self) -> None:
        self.projects: dict[str, rpc.Project] = {}
        self.pools: dict[str, rpc.AdminPool] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, dict[str, Any]] = {}
        self.workers: dict[str, dict[str, Any]] = {}
        self.limits: dict[str, rpc.TrustLevelLimits] = {}
        self.restrictions: dict[str, dict[str, Any]] = {}
        self.takes: dict[tuple[str, str], list[int]] = {}
        self.challenges: dict[str, real.Challenge] = {}
        self.quality = FakeResultsStore()
        self.pace: dict[tuple[str, int], int] = {}  # (pool, seconds) -> accepted

    # ------------------------------------------------------------------ take

    def _worker(self, worker_id: str, now: datetime) -> dict[str, Any]:
        return self.workers.setdefault(worker_id, {"trust_level": "new", "skills": {},
                                                   "last_take_at": None, "created_at": now})

    def _active(self, worker_id: str) -> list[dict[str, Any]]:
        return [a for a in self.assignments.values()
                if a["worker_id"] == worker_id and a["status"] == domain.ACTIVE]

    async def take_context(self, worker_id, pool_id, now) -> real.TakeContext:
        w = self._worker(worker_id, now)
        active = self._active(worker_id)
        pool = self.pools.get(pool_id) if pool_id else None
        return real.TakeContext(
            worker_id=worker_id, skills=dict(w["skills"]), last_take_at=w["last_take_at"],
            limits=self.limits.get(w["trust_level"]), active=len(active),
            earliest_deadline=min((a["deadline_at"] for a in active), default=None),
            restricted=any(r["worker_id"] == worker_id and r["lifted_at"] is None
                           for r in self.restrictions.values()),
            pool=_take_pool(pool, self.projects[pool.project_id]) if pool else None)

    async def active_restrictions(self, worker_id, now):
        return [domain.ActiveRestriction(r["restriction_id"], r["scope"], r["pool_id"],
                                         r["project_id"], r["until"])
                for r in self.restrictions.values()
                if r["worker_id"] == worker_id and r["lifted_at"] is None
                and (r["until"] is None or r["until"] > now)]

    async def open_pools(self):
        return [_take_pool(p) for p in self.pools.values()
                if p.status == "open" and not p.sandbox]

    async def claim_task(self, worker_id, pool_ids) -> real.ClaimedTask | None:
        had = {a["task_id"] for a in self.assignments.values() if a["worker_id"] == worker_id}
        free = sorted((t for t in self.tasks.values() if t["pool_id"] in pool_ids
                       and t["live_count"] < t["overlap"] and t["task_id"] not in had),
                      key=lambda t: (t["created_at"], t["position"]))
        if not free:
            return None
        t = free[0]
        t["live_count"] += 1
        return real.ClaimedTask(t["task_id"], t["pool_id"], t["input"], t["is_control"])

    async def release_slot(self, task_id):
        self.tasks[task_id]["live_count"] -= 1

    async def write_take(self, assignment, outbox_params) -> bool:
        if any(a["task_id"] == assignment["task_id"] and a["worker_id"] == assignment["worker_id"]
               for a in self.assignments.values()):
            return False
        self.assignments[assignment["assignment_id"]] = assignment | {
            "answers": None, "comment": None, "proof": None, "review_comment": None,
            "submitted_at": None, "finished_at": None}
        self.workers[assignment["worker_id"]]["last_take_at"] = assignment["taken_at"]
        return True

    async def project_texts(self, project_id):
        p = self.projects[project_id]
        return p.instructions, [f.model_dump() for f in p.output_spec]

    # --------------------------------------------------------------- captcha

    async def count_take(self, worker_id, pool_id):
        takes, passed = self.takes.setdefault((worker_id, pool_id), [0, 0])
        return takes, passed

    async def set_takes(self, worker_id, pool_id, takes):
        self.takes[(worker_id, pool_id)][0] = takes

    async def add_challenge(self, challenge, created_at):
        self.challenges[challenge.challenge_id] = challenge

    async def lock_challenge(self, challenge_id):
        return self.challenges.get(challenge_id)

    async def use_challenge(self, challenge_id, at):
        ch = self.challenges[challenge_id]
        self.challenges[challenge_id] = real.Challenge(**{**ch.__dict__, "used_at": at})

    async def pass_captcha(self, worker_id, pool_id, for_take):
        self.takes[(worker_id, pool_id)][1] = for_take

    # ----------------------------------------------------------- assignments

    def _row(self, assignment_id, cls=real.AssignmentRow):
        a = self.assignments.get(assignment_id)
        if a is None:
            return None
        t = self.tasks[a["task_id"]]
        extra = {"input": t["input"]}
        if cls is real.SubmitRow:
            pool = self.pools[a["pool_id"]]
            extra |= {"control_answers": t["control_answers"], "overlap": t["overlap"],
                      "review_mode": pool.review_mode,
                      "auto_accept_after_s": pool.auto_accept_after_s,
                      "output_spec": [f.model_dump() for f in
                                      self.projects[a["project_id"]].output_spec]}
        return cls(**{f.name: (a | extra)[f.name] for f in fields(cls)})

    async def submit_row(self, assignment_id, *, lock=False):
        return self._row(assignment_id, real.SubmitRow)

    async def write_submit(self, row, *, answers, comment, proof, now, outbox_params) -> bool:
        a = self.assignments[row.assignment_id]
        if (a["worker_id"] != row.worker_id or a["status"] != domain.ACTIVE
                or a["deadline_at"] <= now):
            return False
        a.update(status=domain.SUBMITTED, answers=answers, comment=comment, proof=proof,
                 submitted_at=now)
        return True

    async def assignment(self, assignment_id, *, lock=False):
        return self._row(assignment_id)

    async def skip(self, row, now):
        self.assignments[row.assignment_id].update(status=domain.SKIPPED, finished_at=now)
        self.tasks[row.task_id]["live_count"] -= 1

    async def overdue(self, now, limit):
        due = sorted((a for a in self.assignments.values()
                      if a["status"] == domain.ACTIVE and a["deadline_at"] < now),
                     key=lambda a: a["deadline_at"])[:limit]
        return [real.Overdue(**{f.name: a[f.name] for f in fields(real.Overdue)}) for a in due]

    async def expire(self, rows, now):
        for r in rows:
            a = self.assignments[r.assignment_id]
            if a["status"] == domain.ACTIVE:
                a.update(status=domain.EXPIRED, finished_at=now)
                self.tasks[r.task_id]["live_count"] -= 1

    async def my_assignments(self, worker_id, *, status, pool_id, limit, offset):
        mine = sorted((a for a in self.assignments.values() if a["worker_id"] == worker_id
                       and (not status or a["status"] == status)
                       and (not pool_id or a["pool_id"] == pool_id)),
                      key=lambda a: a["taken_at"], reverse=True)
        return ([self._row(a["assignment_id"]).model() for a in mine[offset:offset + limit]],
                len(mine))

    async def worker_skills(self, worker_id):
        return dict(self.workers.get(worker_id, {}).get("skills") or {})

    async def open_pools_with_texts(self):
        return [_take_pool(p, self.projects[p.project_id]) for p in self.pools.values()
                if p.status == "open" and not p.sandbox]

    async def free_task_counts(self, worker_id, pool_ids):
        had = {a["task_id"] for a in self.assignments.values() if a["worker_id"] == worker_id}
        counts: dict[str, int] = {}
        for t in self.tasks.values():
            if (t["pool_id"] in pool_ids and t["live_count"] < t["overlap"]
                    and t["task_id"] not in had):
                counts[t["pool_id"]] = counts.get(t["pool_id"], 0) + 1
        return counts

    # --------------------------------------------------------------- reviews

    def _decide(self, assignment_id, status, at, comment, by) -> dict[str, Any] | None:
        a = self.assignments.get(assignment_id)
        if a is None or a["status"] != domain.SUBMITTED:
            return None
        a.update(status=status, finished_at=at, review_comment=comment, decided_by=by)
        return self.tasks[a["task_id"]]

    async def accept(self, assignment_id, at, comment, by) -> real.Decided | None:
        t = self._decide(assignment_id, domain.ACCEPTED, at, comment, by)
        a = self.assignments.get(assignment_id)
        if t is None and a is not None and a["status"] == domain.REJECTED:  # upheld appeal
            a.update(status=domain.ACCEPTED, finished_at=at, review_comment=comment,
                     decided_by=by)
            t = self.tasks[a["task_id"]]
            t["live_count"] += 1
        if t is None or a is None:
            return None
        t["accepted_count"] += 1
        self._record_pace(a)  # in the acceptance's statement, as the store does
        return real.Decided(task_id=t["task_id"], pool_id=t["pool_id"],
                            worker_id=a["worker_id"], is_control=t["is_control"],
                            overlap=t["overlap"], control_answers=t.get("control_answers"),
                            quality=False)  # no pool quality settings here

    def _record_pace(self, a):
        if a.get("submitted_at") is not None:
            # PostgreSQL's round: a half goes up
            seconds = max(1, int((a["submitted_at"] - a["taken_at"]).total_seconds() + 0.5))
            key = (a["pool_id"], seconds)
            self.pace[key] = self.pace.get(key, 0) + 1

    async def fold_pace(self):
        pass  # the fake counts into its histogram at once: nothing is pending

    async def pool_paces(self, pool_ids):
        return [(pid, self.pools[pid].expected_seconds_per_task,
                 [(s, n) for (p, s), n in self.pace.items() if p == pid])
                for pid in sorted(pool_ids) if pid in self.pools]

    async def reject(self, assignment_id, at, comment, by):
        t = self._decide(assignment_id, domain.REJECTED, at, comment, by)
        if t is not None:
            t["live_count"] -= 1
        return t is not None

    async def add_overlap(self, pool_id, task_ids, add):
        for tid in task_ids:
            if tid in self.tasks and self.tasks[tid]["pool_id"] == pool_id:
                self.tasks[tid]["overlap"] += add

    async def reopen_if_closed(self, pool_id, now):
        pool = self.pools.get(pool_id)
        if pool is None or pool.status != "closed":
            return None
        return await self.update_pool(pool_id, {"status": "open", "updated_at": now})

    # --------------------------------------------------------------- workers

    async def seed_trust_limits(self, limits, now):
        for lim in limits:
            self.limits.setdefault(lim.level, lim)

    async def trust_limits(self):
        return list(self.limits.values())

    async def set_trust_limits(self, limits, now):
        self.limits[limits.level] = limits

    async def ensure_worker(self, worker_id, now):
        self._worker(worker_id, now)

    async def set_trust_level(self, worker_id, level):
        self.workers[worker_id]["trust_level"] = level

    async def worker_profile(self, worker_id, now):
        w = self.workers.get(worker_id)
        if w is None:
            return None
        return rpc.WorkerProfile(
            worker_id=worker_id, trust_level=w["trust_level"], skills=w["skills"],
            restrictions=[rpc.Restriction(**r.__dict__)
                          for r in await self.active_restrictions(worker_id, now)],
            active_assignments=len(self._active(worker_id)), last_take_at=w["last_take_at"],
            created_at=w["created_at"])

    async def lock_worker_skills(self, worker_id, now):
        return dict(self._worker(worker_id, now)["skills"])

    async def set_skills(self, worker_id, skills):
        self.workers[worker_id]["skills"] = dict(skills)

    async def pools_worked_in(self, worker_id):
        ids = {a["pool_id"] for a in self.assignments.values() if a["worker_id"] == worker_id}
        return [real.WorkedPool(p.pool_id, p.project_id, p.skill_filters)
                for pid, p in sorted(self.pools.items())
                if pid in ids and p.status != "archived"]

    async def add_restriction(self, values):
        self.restrictions.setdefault(values["restriction_id"], values | {"lifted_at": None})

    async def lift_restriction(self, restriction_id, at):
        r = self.restrictions.get(restriction_id)
        if r is not None and r["lifted_at"] is None:
            r["lifted_at"] = at

    # --------------------------------------------------------------- catalog

    async def add_project(self, project):
        self.projects[project.project_id] = project

    async def project(self, project_id):
        return self.projects.get(project_id)

    async def update_project(self, project_id, values):
        p = self.projects.get(project_id)
        if p is None:
            return None
        self.projects[project_id] = rpc.Project.model_validate(p.model_dump() | values)
        return self.projects[project_id]

    async def list_projects(self, limit, offset):
        items = sorted(self.projects.values(), key=lambda p: p.created_at, reverse=True)
        return items[offset:offset + limit], len(items)

    async def add_pool(self, pool):
        self.pools[pool.pool_id] = pool

    async def pool(self, pool_id, *, lock=False):
        return self.pools.get(pool_id)

    async def update_pool(self, pool_id, values):
        self.pools[pool_id] = rpc.AdminPool.model_validate(self.pools[pool_id].model_dump()
                                                           | values)
        return self.pools[pool_id]

    async def list_pools(self, *, project_id, status, limit, offset):
        items = sorted((p for p in self.pools.values()
                        if (not project_id or p.project_id == project_id)
                        and (not status or p.status == status)),
                       key=lambda p: p.created_at, reverse=True)
        return items[offset:offset + limit], len(items)

    async def add_tasks(self, rows):
        for r in rows:
            self.tasks[r["task_id"]] = dict(r)

    async def list_tasks(self, pool_id, limit, offset):
        mine = sorted((t for t in self.tasks.values() if t["pool_id"] == pool_id),
                      key=lambda t: (t["created_at"], t["position"]))
        return [rpc.TaskItem(task_id=t["task_id"], pool_id=t["pool_id"], input=t["input"],
                             is_control=t["is_control"], control_answers=t["control_answers"],
                             overlap=t["overlap"], live_assignments=t["live_count"],
                             created_at=t["created_at"])
                for t in mine[offset:offset + limit]], len(mine)

    def _results(self, pool_id, status):
        return sorted((a for a in self.assignments.values() if a["pool_id"] == pool_id
                       and (not status or a["status"] == status)),
                      key=lambda a: (a["taken_at"], a["assignment_id"]))

    async def count_results(self, pool_id, status):
        return len(self._results(pool_id, status))

    async def results(self, pool_id, status, after):
        rows = [{"assignment_id": a["assignment_id"], "task_id": a["task_id"],
                 "worker_id": a["worker_id"], "status": a["status"],
                 "input": self.tasks[a["task_id"]]["input"], "answers": a["answers"],
                 "comment": a["comment"], "proof": a["proof"], "started_at": a["taken_at"],
                 "submitted_at": a["submitted_at"]} for a in self._results(pool_id, status)]
        if after is not None:
            rows = [r for r in rows if (r["started_at"], r["assignment_id"]) > after]
        return rows[:2000]

    async def pool_counts(self, pool_id):
        mine = [t for t in self.tasks.values() if t["pool_id"] == pool_id]
        by_status: dict[str, int] = {}
        for a in self.assignments.values():
            if a["pool_id"] == pool_id:
                by_status[a["status"]] = by_status.get(a["status"], 0) + 1
        return real.PoolTaskCounts(
            total=len(mine), control=sum(t["is_control"] for t in mine),
            open=sum(t["live_count"] < t["overlap"] for t in mine),
            completed=sum(t["accepted_count"] >= t["overlap"] for t in mine),
            by_status=by_status)


# ----------------------------------------------------------------------- fixtures


ADMIN = Actor(user_id="admin-1", role="admin")
MANAGER = Actor(user_id="manager-1", role="manager")
PRICE = 98_765
OUTPUT_SPEC = [rpc.FieldSpec(name="label", allowed_values=["cat", "dog"]),
               rpc.FieldSpec(name="confidence", type="integer", required=False, min_value=0,
                             max_value=100)]


class Handlers:
    """Handler calls the way the RPC server makes them, and a few things tests need."""

    admin = ADMIN
    manager = MANAGER
    price = PRICE

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    @staticmethod
    def worker(name: str = "w1") -> Actor:
        return Actor(user_id=name, role="worker")

    async def pool(self, *, n: int = 3, open_: bool = True, rows: list[Any] | None = None,
                   sandbox: bool = False, **pool_kw: Any) -> tuple[rpc.AdminPool, list[str]]:
        """A project (a sandbox one with ``sandbox``), a pool of it with ``n`` uploaded tasks
        (opened), and the task ids."""
        project = await self(rpc.CREATE_PROJECT, catalog.create_project, rpc.ProjectCreate(
            actor=ADMIN, name="Cats", instructions="# Is it a cat?",
            input_spec=[rpc.FieldSpec(name="image", type="url")], output_spec=OUTPUT_SPEC,
            sandbox=sandbox))
        pool = await self(rpc.CREATE_POOL, catalog.create_pool, rpc.PoolCreate(
            actor=ADMIN, project_id=project.project_id, name="Cats pool", price_minor=PRICE,
            **pool_kw))
        rows = rows if rows is not None else [{"image": f"https://img.example/{i}.png"}
                                              for i in range(n)]
        up = await self(rpc.UPLOAD_TASKS, catalog.upload_tasks, rpc.TasksUpload(
            actor=ADMIN, pool_id=pool.pool_id, content=rows))
        if open_:
            pool = await self(rpc.OPEN_POOL, catalog.open_pool,
                              rpc.PoolTransition(actor=ADMIN, pool_id=pool.pool_id))
        return pool, up.task_ids

    async def __call__(self, spec: RpcSpec[Any, Any], handler: Callable[..., Awaitable[Any]],
                       req: Any) -> Any:
        """The handler's reply decoded as ``spec.response``, or RpcCallError with the
        error body the caller would get."""
        reply = RpcReply.model_validate_json(await self._dispatch(spec, handler, req))
        if not reply.ok:
            assert reply.error is not None
            raise RpcCallError(reply.error)
        return spec.response.model_validate(reply.data)

    async def error(self, spec: RpcSpec[Any, Any], handler: Callable[..., Awaitable[Any]],
                    req: Any) -> Any:
        with pytest.raises(RpcCallError) as exc:
            await self(spec, handler, req)
        return exc.value.error

    async def raw(self, spec: RpcSpec[Any, Any], handler: Callable[..., Awaitable[Any]],
                  req: Any) -> Any:
        """The reply's data as the server sends it (JSON), before any decoding."""
        return json.loads(await self._dispatch(spec, handler, req))["data"]

    async def _dispatch(self, spec: RpcSpec[Any, Any], handler: Callable[..., Awaitable[Any]],
                        req: Any) -> bytes:
        # only the fields set travel, as from the RPC client
        return await dispatch(spec, lambda r: handler(r, self.ctx),
                              req.model_dump_json(exclude_unset=True).encode())

    @property
    def events(self) -> list[str]:
        return self.ctx.db.event_types()

    def payloads(self, type_: str) -> list[dict[str, Any]]:
        return [e.data for e in self.ctx.db.events if e.type == type_]


@pytest.fixture
def store() -> FakeTasksStore:
    s = FakeTasksStore()
    # room for many active assignments and no pause, as most tests take several in a row
    s.limits = {lim.level: lim for lim in domain.DEFAULT_TRUST_LIMITS}
    s.limits["new"] = rpc.TrustLevelLimits(level="new", max_active=100, min_pause_s=0)
    return s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_call(store: FakeTasksStore, clock: Clock) -> Callable[..., Handlers]:
    """Handlers on a context with these settings (around the test's store and clock)."""

    def make(**settings: Any) -> Handlers:
        return Handlers(fake_context(TasksSettings(database_url="postgresql://unused/tasks",
                                                   **settings), store, clock=clock))

    return make


@pytest.fixture
def call(make_call: Callable[..., Handlers]) -> Handlers:
    return make_call()
