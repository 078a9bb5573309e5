"""Tasks service against a real nats-server and a fresh database per test."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel
from sqlalchemy import event, select, text

from contracts.envelope import new_envelope
from contracts.events import (
    OverlapChanged,
    RestrictionApplied,
    RestrictionLifted,
    ReviewAccepted,
    ReviewRejected,
    SkillSet,
)
from contracts.rpc import Actor
from contracts.rpc import tasks as rpc
from servicekit.db import COPY_MIN_ROWS
from servicekit.errors import RpcCallError, ServiceError
from servicekit.migrations import upgrade
from servicekit.rpc import RpcClient
from tasks_service import assignments
from tasks_service.db import captcha_challenges, outbox
from tasks_service.main import create_service
from tasks_service.settings import TasksSettings

SERVICE_DIR = Path(__file__).parents[1]
ADMIN = Actor(user_id="admin-1", role="admin")
MANAGER = Actor(user_id="manager-1", role="manager")
PRICE = 98_765  # distinctive, so a leak in any serialized reply is easy to spot

OUTPUT_SPEC = [{"name": "label", "type": "string", "allowed_values": ["cat", "dog"]},
               {"name": "confidence", "type": "integer", "required": False,
                "min_value": 0, "max_value": 100}]


def worker(name: str | None = None) -> Actor:
    return Actor(user_id=name or f"w-{uuid.uuid4().hex[:8]}", role="worker")


class Env:
    def __init__(self, svc: Any, nc: nats.NATS) -> None:
        self.svc = svc
        self.nc = nc
        self.js = nc.jetstream()
        self.client = RpcClient(nc)

    async def call(self, spec: Any, model: type[BaseModel], **kw: Any) -> Any:
        """The reply as the typed client decodes it (``spec.response``), read as JSON."""
        reply = await self.client.call(spec, model(**kw))
        assert isinstance(reply, spec.response)
        return reply.model_dump(mode="json")

    async def raw(self, spec: Any, model: type[BaseModel], **kw: Any) -> Any:
        """The reply's data exactly as it went over the bus, before any decoding."""
        body = model(**kw).model_dump_json(exclude_unset=True).encode()
        return (await self.client.call_raw(spec, body)).data

    async def error(self, spec: Any, model: type[BaseModel], **kw: Any) -> Any:
        with pytest.raises(RpcCallError) as exc:
            await self.client.call(spec, model(**kw))
        return exc.value.error

    async def refusal(self, spec: Any, model: type[BaseModel], **kw: Any) -> Any:
        """The error body, or None when the call succeeded (for polling)."""
        try:
            await self.client.call(spec, model(**kw))
        except RpcCallError as exc:
            return exc.error
        return None

    async def pool(self, *, rows: list[dict] | None = None, n: int = 3, open_: bool = True,
                   **pool_kw: Any) -> dict:
        project = await self.call(rpc.CREATE_PROJECT, rpc.ProjectCreate, actor=ADMIN,
                                  name="Cats", instructions="# Is it a cat?",
                                  input_spec=[{"name": "image", "type": "url"}],
                                  output_spec=OUTPUT_SPEC)
        pool = await self.call(rpc.CREATE_POOL, rpc.PoolCreate, actor=ADMIN,
                               project_id=project["project_id"], name="Cats pool",
                               price_minor=PRICE, currency="RUB", **pool_kw)
        rows = rows if rows is not None else [{"image": f"https://img.example/{i}.png"}
                                              for i in range(n)]
        up = await self.call(rpc.UPLOAD_TASKS, rpc.TasksUpload, actor=ADMIN,
                             pool_id=pool["pool_id"], format="json", content=rows)
        pool["task_ids"] = up["task_ids"]
        if open_:
            await self.call(rpc.OPEN_POOL, rpc.PoolTransition, actor=ADMIN,
                            pool_id=pool["pool_id"])
        return pool

    async def take(self, actor: Actor, pool_id: str | None = None) -> dict:
        return await self.call(rpc.TAKE, rpc.Take, actor=actor, pool_id=pool_id)

    async def submit(self, actor: Actor, assignment_id: str, **answers: Any) -> dict:
        return await self.call(rpc.SUBMIT, rpc.Submit, actor=actor, assignment_id=assignment_id,
                               answers=answers or {"label": "cat"})

    async def publish(self, event: BaseModel) -> None:
        env = new_envelope(event, producer="test")
        await self.js.publish(env.type, env.model_dump_json().encode(),
                              headers={"Nats-Msg-Id": env.event_id})

    async def outbox_events(self, type_: str) -> list[dict]:
        async with self.svc.engine.connect() as conn:
            rows = (await conn.execute(select(outbox.c.payload)
                                       .where(outbox.c.subject == type_))).all()
        return [json.loads(r.payload)["data"] for r in rows]

    async def eventually(self, probe, *, timeout_s: float = 10.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                result = await probe()
                if result:
                    return result
            except (RpcCallError, AssertionError):
                if asyncio.get_running_loop().time() > deadline:
                    raise
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.05)




@contextlib.asynccontextmanager
async def running(nats_url: str, database_url: str, **settings: Any) -> AsyncIterator[Env]:
    upgrade(SERVICE_DIR, database_url)
    svc = create_service(TasksSettings(**{
        "database_url": database_url, "nats_url": nats_url, "environment": "test",
        "expire_sweep_interval_s": 0.2, "log_json": False, **settings}))
    await svc.start()
    nc = await nats.connect(nats_url)
    e = Env(svc, nc)
    # Most tests take several tasks in a row: no pause, room for many active ones.
    await e.call(rpc.SET_TRUST_LIMITS, rpc.TrustLimitsSet, actor=ADMIN, limits={
        "level": "new", "max_active": 100, "min_pause_s": 0, "assignment_timeout_s": None})
    try:
        yield e
    finally:
        await nc.close()
        await svc.stop()


@pytest.fixture
async def env(module_nats, database_url) -> AsyncIterator[Env]:
    async with running(module_nats.url, database_url) as e:
        yield e


async def test_lifecycle_take_submit_skip_and_review(env: Env) -> None:
    rows = [{"image": "https://img.example/1.png"}, {"image": "not a url"},
            {"input_values": {"image": "https://img.example/gold.png"},
             "known_solutions": {"label": "dog"}},
            {"image": "https://img.example/3.png"}]
    pool = await env.pool(rows=rows, review_mode="auto", auto_accept_after_s=60)
    assert len(pool["task_ids"]) == 3
    w = worker()
    a1 = await env.take(w, pool["pool_id"])
    assert a1["status"] == "ACTIVE" and a1["input"] == {"image": "https://img.example/1.png"}
    assert a1["instructions"] == "# Is it a cat?"

    err = await env.error(rpc.SUBMIT, rpc.Submit, actor=w, assignment_id=a1["assignment_id"],
                          answers={"label": "horse", "confidence": 101, "zzz": 1})
    assert err.code == "invalid_answers" and err.status == 422
    assert {d["field"] for d in err.details} == {"label", "confidence", "zzz"}

    other = await env.error(rpc.SUBMIT, rpc.Submit, actor=worker(),
                            assignment_id=a1["assignment_id"], answers={"label": "cat"})
    assert other.code == "assignment_not_found"

    done = await env.submit(w, a1["assignment_id"], label="cat", confidence=90)
    assert done["status"] == "SUBMITTED" and done["submitted_at"]
    again = await env.error(rpc.SUBMIT, rpc.Submit, actor=w, assignment_id=a1["assignment_id"],
                            answers={"label": "cat"})
    assert again.code == "assignment_not_active" and again.status == 409

    gold = await env.take(w, pool["pool_id"])
    assert gold["input"]["image"].endswith("gold.png")
    await env.submit(w, gold["assignment_id"], label="cat")
    submitted = {e["assignment_id"]: e for e in await env.outbox_events("task.submitted")}
    ev = submitted[a1["assignment_id"]]
    # review decides and carries no money: the ledger has the price from task.pool_opened
    assert "price_minor" not in ev and "currency" not in ev and ev["overlap"] == 1
    assert ev["review_mode"] == "auto" and ev["auto_accept_after_s"] == 60
    assert ev["is_control"] is False and ev["control_correct"] is None
    assert ev["answers"] == {"label": "cat", "confidence": 90}
    gev = submitted[gold["assignment_id"]]
    assert gev["is_control"] is True and gev["control_correct"] is False

    a3 = await env.take(w, pool["pool_id"])
    skipped = await env.call(rpc.SKIP, rpc.AssignmentRef, actor=w,
                             assignment_id=a3["assignment_id"])
    assert skipped["status"] == "SKIPPED"
    assert (await env.error(rpc.TAKE, rpc.Take, actor=w, pool_id=pool["pool_id"])
            ).code == "no_tasks_available"
    # The skipped task went back to the pool, for someone else.
    assert (await env.take(worker(), pool["pool_id"]))["task_id"] == a3["task_id"]
    assert len(await env.outbox_events("task.skipped")) == 1
    assert len(await env.outbox_events("task.taken")) == 4

    reported = await env.call(rpc.REPORT, rpc.Report, actor=w, assignment_id=a3["assignment_id"],
                              reason="broken_image", text="does not load")
    assert reported["reported"] is True
    assert (await env.outbox_events("task.reported"))[0]["reason"] == "broken_image"

    now = datetime.now(UTC)
    common = {"task_id": a1["task_id"], "pool_id": pool["pool_id"],
              "project_id": pool["project_id"], "worker_id": w.user_id, "decided_by": "m1",
              "decided_at": now}
    await env.publish(ReviewAccepted(assignment_id=a1["assignment_id"], **common))
    await env.publish(ReviewRejected(assignment_id=gold["assignment_id"],
                                     **{**common, "task_id": gold["task_id"]},
                                     comment="wrong label"))

    async def reviewed() -> bool:
        mine = await env.call(rpc.MY_ASSIGNMENTS, rpc.MyAssignments, actor=w)
        by_id = {a["assignment_id"]: a for a in mine["items"]}
        return (by_id[a1["assignment_id"]]["status"] == "ACCEPTED"
                and by_id[gold["assignment_id"]]["status"] == "REJECTED"
                and by_id[gold["assignment_id"]]["review_comment"] == "wrong label")

    await env.eventually(reviewed)
    stats = await env.call(rpc.POOL_STATS, rpc.PoolStatsRequest, actor=MANAGER,
                           pool_id=pool["pool_id"])
    assert stats["tasks_total"] == 3 and stats["control_tasks"] == 1
    assert stats["tasks_completed"] == 1
    # The rejected control task has a free slot again; the skipped one was re-taken.
    assert stats["tasks_open"] == 1
    assert stats["assignments"]["ACCEPTED"] == 1 and stats["assignments"]["REJECTED"] == 1
    assert stats["assignments"]["SKIPPED"] == 1 and stats["assignments"]["ACTIVE"] == 1

    # an upheld appeal: review records review.accepted for the rejected answer; it counts,
    # and it holds its slot again (delivered twice: counted once)
    for _ in range(2):
        await env.publish(ReviewAccepted(assignment_id=gold["assignment_id"],
                                         **{**common, "task_id": gold["task_id"]},
                                         comment="appeal upheld"))

    async def upheld() -> Any:
        s = await env.call(rpc.POOL_STATS, rpc.PoolStatsRequest, actor=MANAGER,
                           pool_id=pool["pool_id"])
        return s if s["assignments"].get("ACCEPTED") == 2 else None

    stats = await env.eventually(upheld)
    assert stats["assignments"].get("REJECTED", 0) == 0 and stats["tasks_completed"] == 2
    assert stats["tasks_open"] == 0


async def test_an_assignment_s_owner_is_told_to_staff_and_to_its_worker_only(env: Env) -> None:
    """What a task chat needs (its worker, pool and task): staff may ask for any assignment,
    a worker for their own; another's, like one that does not exist, is not found."""
    pool = await env.pool(rows=[{"image": "https://img.example/1.png"}])
    w = worker()
    a = await env.take(w, pool["pool_id"])
    for actor in (w, ADMIN):
        owner = await env.call(rpc.ASSIGNMENT_OWNER, rpc.AssignmentRef, actor=actor,
                               assignment_id=a["assignment_id"])
        assert (owner["worker_id"], owner["pool_id"], owner["task_id"]) == (
            w.user_id, pool["pool_id"], a["task_id"])
    for actor, ref in ((worker(), a["assignment_id"]), (ADMIN, "no-such-assignment")):
        err = await env.error(rpc.ASSIGNMENT_OWNER, rpc.AssignmentRef, actor=actor,
                              assignment_id=ref)
        assert (err.code, err.status) == ("assignment_not_found", 404)


async def test_upload_tsv_reports_lines_and_all_or_nothing(env: Env) -> None:
    pool = await env.pool(n=0, open_=False, rows=[{"image": "https://img.example/0.png"}])
    tsv = "image\tGOLDEN:label\nhttps://a.org/1.png\tcat\nbad\t\nhttps://a.org/2.png\t\n"
    res = await env.call(rpc.UPLOAD_TASKS, rpc.TasksUpload, actor=ADMIN, pool_id=pool["pool_id"],
                         format="tsv", content=tsv, all_or_nothing=True)
    assert res["created"] == 0 and res["errors"][0]["line"] == 3
    res = await env.call(rpc.UPLOAD_TASKS, rpc.TasksUpload, actor=ADMIN, pool_id=pool["pool_id"],
                         format="tsv", content=tsv)
    assert res["created"] == 2 and res["control_tasks"] == 1
    assert [e["line"] for e in res["errors"]] == [3]
    listed = await env.call(rpc.LIST_TASKS, rpc.TaskList, actor=ADMIN, pool_id=pool["pool_id"])
    assert listed["total"] == 3
    assert [t["control_answers"] for t in listed["items"]][1] == {"label": "cat"}
    seen_by_manager = await env.call(rpc.LIST_TASKS, rpc.TaskList, actor=MANAGER,
                                     pool_id=pool["pool_id"])
    assert all(t["control_answers"] is None for t in seen_by_manager["items"])
    denied = await env.error(rpc.UPLOAD_TASKS, rpc.TasksUpload, actor=MANAGER,
                             pool_id=pool["pool_id"], format="tsv", content=tsv)
    assert denied.code == "forbidden" and denied.status == 403
    # A draft pool gives no work.
    assert (await env.error(rpc.TAKE, rpc.Take, actor=worker(), pool_id=pool["pool_id"])
            ).code == "pool_not_open"


async def test_a_large_upload_is_stored_in_order_and_given_out_oldest_first(env: Env) -> None:
    # enough rows for the store's COPY path (servicekit.db.insert_many)
    n = COPY_MIN_ROWS * 2 + 17
    pool = await env.pool(n=0, open_=False, rows=[{"image": "https://img.example/0.png"}])
    rows = [{"image": f"https://img.example/{i}.png", **({"GOLDEN:label": "cat"} if i % 50 == 0
                                                        else {})} for i in range(1, n + 1)]
    statements: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(sql)

    engine = env.svc.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        res = await env.call(rpc.UPLOAD_TASKS, rpc.TasksUpload, actor=ADMIN,
                             pool_id=pool["pool_id"], format="json", content=rows)
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
    assert res["created"] == n and res["control_tasks"] == n // 50 and not res["errors"]
    assert not [s for s in statements if s.startswith("INSERT INTO tasks")]  # one COPY
    listed = await env.call(rpc.LIST_TASKS, rpc.TaskList, actor=ADMIN, pool_id=pool["pool_id"],
                            page={"limit": 500, "offset": 0})
    assert listed["total"] == n + 1
    uploaded = listed["items"][1:]
    assert [t["input"]["image"] for t in uploaded] == [r["image"] for r in rows[:499]]
    assert uploaded[49]["control_answers"] == {"label": "cat"} and uploaded[49]["is_control"]
    assert uploaded[0]["control_answers"] is None and not uploaded[0]["is_control"]
    assert {t["task_id"] for t in uploaded} <= set(res["task_ids"])
    await env.call(rpc.OPEN_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pool["pool_id"])
    first = await env.call(rpc.TAKE, rpc.Take, actor=worker(), pool_id=pool["pool_id"])
    second = await env.call(rpc.TAKE, rpc.Take, actor=worker(), pool_id=pool["pool_id"])
    assert [first["input"]["image"], second["input"]["image"]] == [
        "https://img.example/0.png", "https://img.example/1.png"]


async def test_bad_spec_and_pool_transitions(env: Env) -> None:
    err = await env.error(rpc.CREATE_PROJECT, rpc.ProjectCreate, actor=ADMIN, name="x",
                          input_spec=[{"name": "a", "pattern": "("}],
                          output_spec=[{"name": "a", "min_value": 5, "max_value": 1}])
    assert err.code == "invalid_spec" and len(err.details) == 2
    pool = await env.pool(open_=False)
    pid = pool["pool_id"]
    bad = await env.error(rpc.CLOSE_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pid)
    assert bad.code == "invalid_transition"
    assert (await env.call(rpc.OPEN_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pid)
            )["status"] == "open"
    assert (await env.call(rpc.CLOSE_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pid)
            )["status"] == "closed"
    assert (await env.call(rpc.ARCHIVE_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pid)
            )["status"] == "archived"
    assert (await env.error(rpc.OPEN_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pid)
            ).code == "invalid_transition"
    updated = await env.call(rpc.UPDATE_PROJECT, rpc.ProjectUpdate, actor=ADMIN,
                             project_id=pool["project_id"], instructions="new text")
    assert updated["instructions"] == "new text" and updated["name"] == "Cats"
    assert (await env.error(rpc.GET_POOL, rpc.PoolGet, actor=ADMIN, pool_id="nope")
            ).code == "pool_not_found"


async def test_expired_assignment_returns_task_to_pool(env: Env) -> None:
    pool = await env.pool(n=1, assignment_timeout_s=1)
    w = worker()
    a = await env.take(w, pool["pool_id"])

    async def expired() -> bool:
        mine = await env.call(rpc.MY_ASSIGNMENTS, rpc.MyAssignments, actor=w)
        return mine["items"][0]["status"] == "EXPIRED"

    await env.eventually(expired)
    late = await env.error(rpc.SUBMIT, rpc.Submit, actor=w, assignment_id=a["assignment_id"],
                           answers={"label": "cat"})
    assert late.code == "assignment_not_active"
    ev = await env.outbox_events("task.expired")
    assert [e["assignment_id"] for e in ev] == [a["assignment_id"]]
    again = await env.take(worker(), pool["pool_id"])
    assert again["task_id"] == a["task_id"]


async def test_late_submit_expires_the_assignment(module_nats, database_url) -> None:
    # The sweeper runs once at start, then not for an hour: the submit itself must notice.
    # The relay's own poll waits an hour too: only the wake-up after the commit publishes.
    async with running(module_nats.url, database_url, expire_sweep_interval_s=3600,
                       relay_poll_interval_s=3600) as env:
        pool = await env.pool(n=1, assignment_timeout_s=1)
        w = worker()
        a = await env.take(w, pool["pool_id"])
        await asyncio.sleep(1.1)
        late = await env.error(rpc.SUBMIT, rpc.Submit, actor=w,
                               assignment_id=a["assignment_id"], answers={"label": "cat"})
        assert late.code == "assignment_expired" and late.status == 409
        mine = await env.call(rpc.MY_ASSIGNMENTS, rpc.MyAssignments, actor=w)
        assert mine["items"][0]["status"] == "EXPIRED"
        assert [e["assignment_id"] for e in await env.outbox_events("task.expired")] == [
            a["assignment_id"]]
        assert (await env.take(worker(), pool["pool_id"]))["task_id"] == a["task_id"]

        async def published() -> bool:
            async with env.svc.engine.connect() as conn:
                at = (await conn.execute(select(outbox.c.published_at).where(
                    outbox.c.subject == "task.expired"))).scalar_one()
            return at is not None

        await env.eventually(published, timeout_s=3)


async def test_concurrent_takes_never_exceed_overlap(env: Env) -> None:
    pool = await env.pool(n=10)
    async def one(i: int) -> Any:
        try:
            return await assignments.take(rpc.Take(actor=worker(f"c-{i}"),
                                                   pool_id=pool["pool_id"]), env.svc.ctx)
        except ServiceError as exc:
            return exc

    results = await asyncio.gather(*(one(i) for i in range(50)))
    taken = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(taken) == 10
    assert sorted(t.task_id for t in taken) == sorted(pool["task_ids"])
    assert len(refused) == 40
    assert {(e.code, e.status) for e in refused} == {("no_tasks_available", 404)}
    assert (REGISTRY.get_sample_value("tasks_takes_total", {"outcome": "no_tasks_available"})
            or 0) >= 40

    # The same through the bus, with overlap 2: 2 slots x 5 tasks for 30 workers.
    pool2 = await env.pool(n=5, overlap=2)
    outcomes = await asyncio.gather(*(env.client.call(rpc.TAKE, rpc.Take(
        actor=worker(), pool_id=pool2["pool_id"])) for _ in range(30)), return_exceptions=True)
    ok = [o for o in outcomes if isinstance(o, rpc.TakeResult)]
    assert len(ok) == 10
    assert all(isinstance(o, RpcCallError) and o.error.code == "no_tasks_available"
               for o in outcomes if not isinstance(o, rpc.TakeResult))
    per_task: dict[str, set[str]] = {}
    for o in ok:
        per_task.setdefault(o.task_id, set()).add(o.worker_id)
    assert sorted(len(v) for v in per_task.values()) == [2] * 5


async def test_take_limits_are_explained(env: Env) -> None:
    pool = await env.pool(n=5)
    await env.call(rpc.SET_TRUST_LIMITS, rpc.TrustLimitsSet, actor=ADMIN, limits={
        "level": "new", "max_active": 1, "min_pause_s": 0, "assignment_timeout_s": 30})
    w = worker()
    a = await env.take(w, pool["pool_id"])
    deadline = datetime.fromisoformat(a["deadline_at"])
    taken = datetime.fromisoformat(a["taken_at"])
    assert (deadline - taken) == timedelta(seconds=30)  # the level's timeout is shorter
    err = await env.error(rpc.TAKE, rpc.Take, actor=w, pool_id=pool["pool_id"])
    assert err.code == "take_limit" and err.status == 429
    assert err.details["limit"] == "max_active" and err.details["current"] == 1
    assert err.details["max"] == 1 and 0 < err.details["retry_after_s"] <= 30
    assert datetime.fromisoformat(err.details["frees_at"]) == deadline

    limits = await env.call(rpc.SET_TRUST_LIMITS, rpc.TrustLimitsSet, actor=ADMIN, limits={
        "level": "new", "max_active": 5, "min_pause_s": 30, "assignment_timeout_s": None})
    assert [lv["level"] for lv in limits["levels"]] == ["new", "verified", "trusted"]
    err = await env.error(rpc.TAKE, rpc.Take, actor=w, pool_id=pool["pool_id"])
    assert err.details["limit"] == "min_pause" and 29 < err.details["retry_after_s"] <= 30

    profile = await env.call(rpc.SET_TRUST_LEVEL, rpc.SetTrustLevel, actor=ADMIN,
                             worker_id=w.user_id, trust_level="trusted")
    assert profile["trust_level"] == "trusted" and profile["active_assignments"] == 1
    await env.take(w, pool["pool_id"])  # trusted: no pause by default
    denied = await env.error(rpc.SET_TRUST_LEVEL, rpc.SetTrustLevel, actor=MANAGER,
                             worker_id=w.user_id, trust_level="new")
    assert denied.status == 403
    own = await env.call(rpc.GET_WORKER_PROFILE, rpc.WorkerProfileGet, actor=w,
                         worker_id=w.user_id)
    assert own["active_assignments"] == 2
    assert (await env.error(rpc.GET_WORKER_PROFILE, rpc.WorkerProfileGet, actor=worker(),
                            worker_id=w.user_id)).status == 403


async def test_restrictions_from_rules_are_enforced(env: Env) -> None:
    pool = await env.pool(n=5)
    other = await env.pool(n=1)
    w = worker()
    until = datetime.now(UTC) + timedelta(hours=1)
    await env.publish(RestrictionApplied(
        rule_id="r", firing_id="f1", worker_id=w.user_id, restriction_id="res-1", scope="pool",
        pool_id=pool["pool_id"], until=until, private_comment="too fast"))
    await env.publish(RestrictionApplied(  # already over: ignored
        rule_id="r", firing_id="f2", worker_id=w.user_id, restriction_id="res-old",
        scope="all", until=datetime.now(UTC) - timedelta(minutes=1), private_comment="old"))

    async def restricted() -> Any:
        err = await env.refusal(rpc.TAKE, rpc.Take, actor=w, pool_id=pool["pool_id"])
        return err if err is not None and err.code == "restricted" else None

    err = await env.eventually(restricted)
    assert err.status == 403 and err.details["scope"] == "pool"
    assert datetime.fromisoformat(err.details["until"]) == until
    avail = await env.call(rpc.AVAILABLE_POOLS, rpc.AvailablePools, actor=w)
    assert [p["pool_id"] for p in avail["items"]] == [other["pool_id"]]
    # Any-pool take lands in the pool the worker may still use.
    assert (await env.take(w))["pool_id"] == other["pool_id"]
    profile = await env.call(rpc.GET_WORKER_PROFILE, rpc.WorkerProfileGet, actor=ADMIN,
                             worker_id=w.user_id)
    assert [r["restriction_id"] for r in profile["restrictions"]] == ["res-1"]

    await env.publish(RestrictionLifted(restriction_id="res-1", worker_id=w.user_id,
                                        lifted_at=datetime.now(UTC)))
    a = await env.eventually(lambda: env.take(w, pool["pool_id"]))
    assert a["pool_id"] == pool["pool_id"]

    await env.publish(RestrictionApplied(
        rule_id="r", firing_id="f3", worker_id=w.user_id, restriction_id="res-2",
        scope="project", project_id=pool["project_id"], until=None, private_comment="block"))

    async def blocked() -> bool:
        err = await env.refusal(rpc.TAKE, rpc.Take, actor=w, pool_id=pool["pool_id"])
        return err is not None and err.code == "restricted"

    await env.eventually(blocked)


async def test_skill_filter_and_skill_set(env: Env) -> None:
    pool = await env.pool(n=2, skill_filters=[{"skill": "english", "op": "gte", "value": 50}])
    w = worker()
    err = await env.error(rpc.TAKE, rpc.Take, actor=w, pool_id=pool["pool_id"])
    assert err.code == "skills_mismatch" and err.status == 403
    assert (await env.error(rpc.TAKE, rpc.Take, actor=w)).code == "no_tasks_available"
    await env.publish(SkillSet(rule_id="r", firing_id="f", worker_id=w.user_id,
                               skill="english", value=60))
    a = await env.eventually(lambda: env.take(w))
    assert a["pool_id"] == pool["pool_id"]
    avail = await env.call(rpc.AVAILABLE_POOLS, rpc.AvailablePools, actor=w)
    assert avail["items"][0]["available_tasks"] == 1


async def test_skill_change_that_shuts_a_worker_out_revokes_access(env: Env) -> None:
    gated = await env.pool(n=3, skill_filters=[{"skill": "english", "op": "gte", "value": 50}])
    other = await env.pool(n=2, skill_filters=[{"skill": "math", "op": "gte", "value": 1}])
    w = worker()

    async def set_skill(skill: str, value: int, firing: str) -> None:
        await env.publish(SkillSet(rule_id="r", firing_id=firing, worker_id=w.user_id,
                                   skill=skill, value=value))

    await set_skill("english", 80, "f1")
    a = await env.eventually(lambda: env.take(w, gated["pool_id"]))
    await env.submit(w, a["assignment_id"])
    await set_skill("english", 70, "f2")  # still passes: nothing revoked
    await set_skill("english", 10, "f3")  # fails the filter of a pool they worked in

    async def revoked() -> list[dict]:
        found = await env.outbox_events("task.access_revoked")
        assert found
        return found

    [data] = await env.eventually(revoked)
    assert (data["worker_id"], data["pool_id"], data["reason"], data["skill"]) == (
        w.user_id, gated["pool_id"], "skill_change", "english")
    # the other pool's filter never mentioned the skill, and the worker never worked there
    assert other["pool_id"] not in {d["pool_id"] for d in await revoked()}
    err = await env.error(rpc.TAKE, rpc.Take, actor=w, pool_id=gated["pool_id"])
    assert err.code == "skills_mismatch"


async def test_overlap_change_reopens_pool(env: Env) -> None:
    pool = await env.pool(n=1)
    w1, w2 = worker(), worker()
    a = await env.take(w1, pool["pool_id"])
    await env.submit(w1, a["assignment_id"])
    assert (await env.error(rpc.TAKE, rpc.Take, actor=w2, pool_id=pool["pool_id"])
            ).code == "no_tasks_available"
    await env.call(rpc.CLOSE_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pool["pool_id"])
    await env.publish(OverlapChanged(rule_id="r", firing_id="f", worker_id=w1.user_id,
                                     pool_id=pool["pool_id"], task_ids=[a["task_id"]], add=1))
    b = await env.eventually(lambda: env.take(w2, pool["pool_id"]))
    assert b["task_id"] == a["task_id"]
    got = await env.call(rpc.GET_POOL, rpc.PoolGet, actor=ADMIN, pool_id=pool["pool_id"])
    assert got["status"] == "open"


async def test_captcha_every_tenth_take(env: Env) -> None:
    pool = await env.pool(n=12, captcha_frequency="high")
    w = worker()
    for _ in range(9):
        await env.take(w, pool["pool_id"])
    err = await env.error(rpc.TAKE, rpc.Take, actor=w, pool_id=pool["pool_id"])
    assert err.code == "captcha_required" and err.status == 428
    png = base64.b64decode(err.details["image_png_base64"])
    assert png.startswith(b"\x89PNG")
    wrong = await env.call(rpc.CAPTCHA_ANSWER, rpc.CaptchaAnswer, actor=w,
                           challenge_id=err.details["challenge_id"], answer="nope")
    assert wrong["correct"] is False
    reused = await env.error(rpc.CAPTCHA_ANSWER, rpc.CaptchaAnswer, actor=w,
                             challenge_id=err.details["challenge_id"], answer="nope")
    assert reused.code == "challenge_used"

    err2 = await env.error(rpc.TAKE, rpc.Take, actor=w, pool_id=pool["pool_id"])
    assert err2.code == "captcha_required"
    cid = err2.details["challenge_id"]
    assert cid != err.details["challenge_id"]
    stranger = await env.error(rpc.CAPTCHA_ANSWER, rpc.CaptchaAnswer, actor=worker(),
                               challenge_id=cid, answer="x")
    assert stranger.code == "challenge_not_found"
    async with env.svc.engine.connect() as conn:
        text = (await conn.execute(select(captcha_challenges.c.answer).where(
            captcha_challenges.c.challenge_id == cid))).scalar()
    right = await env.call(rpc.CAPTCHA_ANSWER, rpc.CaptchaAnswer, actor=w, challenge_id=cid,
                           answer=f" {text.lower()} ")
    assert right["correct"] is True
    await env.take(w, pool["pool_id"])  # the 10th take goes through
    await env.take(w, pool["pool_id"])  # the 11th needs nothing
    stats = await env.call(rpc.POOL_STATS, rpc.PoolStatsRequest, actor=ADMIN,
                           pool_id=pool["pool_id"])
    # The refused takes held no slot: 11 taken, 1 still free.
    assert stats["assignments"]["ACTIVE"] == 11 and stats["tasks_open"] == 1
    answered = await env.outbox_events("task.captcha_answered")
    assert sorted(e["correct"] for e in answered) == [False, True]


async def test_results_export(env: Env) -> None:
    pool = await env.pool(n=2)
    w = worker("exporter")
    a = await env.take(w, pool["pool_id"])
    await env.submit(w, a["assignment_id"], label="dog", confidence=7)
    await env.take(w, pool["pool_id"])
    res = await env.call(rpc.EXPORT_RESULTS, rpc.ExportResults, actor=ADMIN,
                         pool_id=pool["pool_id"], format="csv")
    assert res["content_type"] == "text/csv" and res["rows"] == 2
    rows = list(csv.DictReader(io.StringIO(res["content"])))
    sub = next(r for r in rows if r["ASSIGNMENT:status"] == "SUBMITTED")
    assert sub["ASSIGNMENT:worker_id"] == "exporter" and sub["OUTPUT:label"] == "dog"
    assert sub["INPUT:image"].startswith("https://img.example/")
    assert datetime.fromisoformat(sub["ASSIGNMENT:submitted"]).utcoffset() == timedelta(0)
    assert datetime.fromisoformat(sub["ASSIGNMENT:started"]).utcoffset() == timedelta(0)
    tsv = await env.call(rpc.EXPORT_RESULTS, rpc.ExportResults, actor=ADMIN,
                         pool_id=pool["pool_id"], format="tsv", status="SUBMITTED")
    assert tsv["rows"] == 1 and "\tdog\t" in tsv["content"]
    js = await env.call(rpc.EXPORT_RESULTS, rpc.ExportResults, actor=ADMIN,
                        pool_id=pool["pool_id"], format="json")
    assert {r["status"] for r in json.loads(js["content"])} == {"ACTIVE", "SUBMITTED"}
    assert (await env.error(rpc.EXPORT_RESULTS, rpc.ExportResults, actor=MANAGER,
                            pool_id=pool["pool_id"])).status == 403


async def test_results_export_in_pages_adds_up_to_the_whole_file(env: Env) -> None:
    pool = await env.pool(n=12)
    for i in range(12):  # twelve workers, one assignment each (some submitted)
        w = worker(f"pager-{i}")
        a = await env.take(w, pool["pool_id"])
        if i % 2:
            await env.submit(w, a["assignment_id"], label="dog")
    for fmt in ("csv", "tsv", "json"):
        whole = await env.call(rpc.EXPORT_RESULTS, rpc.ExportResults, actor=ADMIN,
                               pool_id=pool["pool_id"], format=fmt)
        assert whole["rows"] == whole["total_rows"] == 12 and whole["next_cursor"] is None
        pages, cursor = [], None
        while True:
            page = await env.call(rpc.EXPORT_RESULTS, rpc.ExportResults, actor=ADMIN,
                                  pool_id=pool["pool_id"], format=fmt, cursor=cursor,
                                  max_bytes=1024)
            assert len(page["content"]) <= 1024 or page["rows"] == 1
            pages.append(page)
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(pages) > 2 and sum(p["rows"] for p in pages) == 12
        assert pages[0]["total_rows"] == 12 and pages[1]["total_rows"] is None
        if fmt == "json":
            rows = [r for p in pages for r in json.loads(p["content"])]
            assert rows == json.loads(whole["content"])
        else:
            assert "".join(p["content"] for p in pages) == whole["content"]
    err = await env.error(rpc.EXPORT_RESULTS, rpc.ExportResults, actor=ADMIN,
                          pool_id=pool["pool_id"], cursor="not-a-cursor")
    assert (err.status, err.code) == (422, "invalid_cursor")


async def test_pool_update_changes_settings_and_fixes_the_price_once_open(env: Env) -> None:
    pool = await env.pool(n=2, open_=False)
    pid = pool["pool_id"]
    got = await env.call(rpc.UPDATE_POOL, rpc.PoolUpdate, actor=ADMIN, pool_id=pid,
                         name="Renamed", price_minor=PRICE + 5, currency="eur", priority=3,
                         skill_filters=[{"skill": "english", "op": "gte", "value": 10}])
    assert (got["name"], got["price_minor"], got["currency"], got["priority"]) == (
        "Renamed", PRICE + 5, "EUR", 3)
    assert got["skill_filters"] == [{"skill": "english", "op": "gte", "value": 10}]
    assert got["captcha_frequency"] == pool["captcha_frequency"]  # not sent: unchanged
    await env.call(rpc.OPEN_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pid)
    err = await env.error(rpc.UPDATE_POOL, rpc.PoolUpdate, actor=ADMIN, pool_id=pid,
                          price_minor=1)
    assert (err.status, err.code) == (409, "price_fixed")
    got = await env.call(rpc.UPDATE_POOL, rpc.PoolUpdate, actor=ADMIN, pool_id=pid,
                         assignment_timeout_s=120, skill_filters=[])
    assert got["assignment_timeout_s"] == 120 and got["price_minor"] == PRICE + 5
    w = worker()
    a = await env.take(w, pid)  # the filter is gone: the worker may take
    assert a["pool_id"] == pid
    for bad in ({"name": None}, {"skill_filters": [{"skill": "x", "op": "gte"}]}):
        err = await env.error(rpc.UPDATE_POOL, rpc.PoolUpdate, actor=ADMIN, pool_id=pid, **bad)
        assert err.status == 422, bad
    assert (await env.error(rpc.UPDATE_POOL, rpc.PoolUpdate, actor=MANAGER, pool_id=pid,
                            name="x")).status == 403
    assert (await env.error(rpc.UPDATE_POOL, rpc.PoolUpdate, actor=ADMIN, pool_id="nope",
                            name="x")).status == 404


async def test_price_hidden_from_workers_and_managers(env: Env) -> None:
    pool = await env.pool(n=2)
    assert pool["price_minor"] == PRICE  # admins see it
    w = worker()
    # the replies as they travel on the bus (a client's decoding would hide a leak)
    replies: list[Any] = [
        await env.raw(rpc.TAKE, rpc.Take, actor=w, pool_id=pool["pool_id"]),
        await env.raw(rpc.AVAILABLE_POOLS, rpc.AvailablePools, actor=w),
        await env.raw(rpc.MY_ASSIGNMENTS, rpc.MyAssignments, actor=w),
        await env.raw(rpc.GET_POOL, rpc.PoolGet, actor=MANAGER, pool_id=pool["pool_id"]),
        await env.raw(rpc.LIST_POOLS, rpc.PoolList, actor=MANAGER),
        await env.raw(rpc.POOL_STATS, rpc.PoolStatsRequest, actor=MANAGER,
                      pool_id=pool["pool_id"]),
        await env.raw(rpc.LIST_TASKS, rpc.TaskList, actor=MANAGER, pool_id=pool["pool_id"]),
        # the staff views carry no price even when an admin asks
        await env.raw(rpc.GET_POOL, rpc.PoolGet, actor=ADMIN, pool_id=pool["pool_id"]),
        await env.raw(rpc.LIST_POOLS, rpc.PoolList, actor=ADMIN),
    ]
    replies.append(await env.raw(rpc.SUBMIT, rpc.Submit, actor=w,
                                 assignment_id=replies[0]["assignment_id"],
                                 answers={"label": "cat"}))
    def leaks(value: Any) -> list[str]:
        """Keys naming a price and numbers equal to it (ids may contain the digits)."""
        if isinstance(value, dict):
            return [k for k in value if "price" in k.lower()] + \
                [x for v in value.values() for x in leaks(v)]
        if isinstance(value, list):
            return [x for v in value for x in leaks(v)]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == PRICE:
            return [str(value)]
        if isinstance(value, str) and value.strip() == str(PRICE):
            return [value]
        return []

    for reply in replies:
        assert leaks(reply) == [], json.dumps(reply)
    denied = await env.error(rpc.GET_POOL, rpc.PoolGet, actor=w, pool_id=pool["pool_id"])
    assert denied.status == 403


async def test_every_open_records_the_frozen_price_for_the_ledger(env: Env) -> None:
    pool = await env.pool(n=1)  # opened once
    pid = pool["pool_id"]
    assert (await env.call(rpc.OPEN_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pid)
            )["status"] == "open"  # already open: not an opening
    await env.call(rpc.CLOSE_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pid)
    await env.call(rpc.OPEN_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pid)
    await env.call(rpc.CLOSE_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pid)
    await env.publish(OverlapChanged(rule_id="r", firing_id="f", worker_id="w", pool_id=pid,
                                     task_ids=pool["task_ids"], add=1))

    async def three_opens() -> list[dict]:
        found = [e for e in await env.outbox_events("task.pool_opened") if e["pool_id"] == pid]
        assert len(found) == 3
        return found

    opened = await env.eventually(three_opens)
    assert {(e["price_minor"], e["currency"], e["project_id"]) for e in opened} == {
        (PRICE, "RUB", pool["project_id"])}
    assert all(datetime.fromisoformat(e["opened_at"]).utcoffset() == timedelta(0)
               for e in opened)


async def test_admins_read_prices_through_their_own_specs(env: Env) -> None:
    pool = await env.pool(n=1, open_=False)
    pid = pool["pool_id"]
    got = await env.call(rpc.ADMIN_GET_POOL, rpc.PoolGet, actor=ADMIN, pool_id=pid)
    assert (got["price_minor"], got["currency"]) == (PRICE, "RUB")
    listed = await env.call(rpc.ADMIN_LIST_POOLS, rpc.PoolList, actor=ADMIN,
                            project_id=pool["project_id"])
    assert [(p["pool_id"], p["price_minor"]) for p in listed["items"]] == [(pid, PRICE)]
    staff = await env.call(rpc.GET_POOL, rpc.PoolGet, actor=ADMIN, pool_id=pid)
    assert "price_minor" not in staff and staff["name"] == got["name"]
    for spec, kw in ((rpc.ADMIN_GET_POOL, {"pool_id": pid}), (rpc.ADMIN_LIST_POOLS, {})):
        assert (await env.error(spec, spec.request, actor=MANAGER, **kw)).status == 403
    assert (await env.error(rpc.ADMIN_GET_POOL, rpc.PoolGet, actor=ADMIN, pool_id="nope")
            ).code == "pool_not_found"


async def test_values_are_checked_where_they_enter(env: Env) -> None:
    """Bad values are 4xx with a code, never a 500 from the database."""
    # RE2 refuses what it cannot match in linear time
    err = await env.error(rpc.CREATE_PROJECT, rpc.ProjectCreate, actor=ADMIN, name="x",
                          input_spec=[{"name": "a"}],
                          output_spec=[{"name": "b", "pattern": r"(a+)\1"},
                                       {"name": "c", "pattern": "(?=x)y"}])
    assert (err.status, err.code) == (422, "invalid_spec") and len(err.details) == 2
    assert all("RE2" in d["error"] for d in err.details)
    pool = await env.pool(n=1, open_=False)
    project_id = pool["project_id"]
    bad_bodies: list[tuple[Any, dict[str, Any]]] = [
        (rpc.CREATE_POOL, {"project_id": project_id, "name": "p", "price_minor": 1,
                           "auto_accept_after_s": 2**31}),
        (rpc.CREATE_POOL, {"project_id": project_id, "name": "p", "price_minor": 10**12 + 1}),
        (rpc.CREATE_POOL, {"project_id": project_id, "name": "p", "price_minor": "1"}),
        (rpc.CREATE_POOL, {"project_id": project_id, "name": "p", "price_minor": 1,
                           "currency": "XXX"}),
        (rpc.CREATE_POOL, {"project_id": project_id, "name": "a\x00b", "price_minor": 1}),
        (rpc.UPDATE_POOL, {"pool_id": pool["pool_id"], "assignment_timeout_s": 2**31}),
        (rpc.SET_TRUST_LIMITS, {"limits": {"level": "new", "max_active": 1, "min_pause_s": 0,
                                           "assignment_timeout_s": 2**31}}),
    ]
    for spec, body in bad_bodies:
        payload = json.dumps({"actor": ADMIN.model_dump(), **body}).encode()
        with pytest.raises(RpcCallError) as exc:
            await env.client.call_raw(spec, payload)
        assert (exc.value.error.status, exc.value.error.code) == (422, "validation_error"), body
    await env.call(rpc.OPEN_POOL, rpc.PoolTransition, actor=ADMIN, pool_id=pool["pool_id"])
    w = worker()
    a = await env.take(w, pool["pool_id"])
    for body in ({"answers": {"label": "cat"}, "comment": "nul\x00"},
                 {"answers": {"label": "x" * 100_001}},
                 {"answers": {"label": "cat\x00"}}):
        payload = json.dumps({"actor": w.model_dump(), "assignment_id": a["assignment_id"],
                              **body}).encode()
        with pytest.raises(RpcCallError) as exc:
            await env.client.call_raw(rpc.SUBMIT, payload)
        assert exc.value.error.status == 422
    assert (await env.submit(w, a["assignment_id"]))["status"] == "SUBMITTED"


async def test_take_and_submit_keep_their_round_trips(env: Env) -> None:
    """A take from a named pool: 3 statements in one transaction; a submit: 2 statements
    and no transaction (the relay's own statements, on other connections, not counted)."""
    pool = await env.pool(n=4)
    seen: list[tuple[int, str]] = []  # (connection, statement or BEGIN)

    def on_statement(conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append((id(conn), sql))

    def on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            seen.append((id(conn), "BEGIN"))

    async def measured(first: str, call: Any) -> tuple[int, int]:
        """(statements, transactions) on the connection whose first statement starts
        with ``first``."""
        seen.clear()
        await call
        conn = next(c for c, sql in seen if sql.startswith(first))
        mine = [sql for c, sql in seen if c == conn]
        return len([s for s in mine if s != "BEGIN"]), mine.count("BEGIN")

    engine = env.svc.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "begin", on_begin)
    try:
        w = worker()
        await env.take(w, pool["pool_id"])  # warm up: the pool's connections and caches
        a = await env.take(w, pool["pool_id"])
        b = await env.take(w, pool["pool_id"])
        assert await measured("WITH w AS", env.take(worker(), pool["pool_id"])) == (3, 1)
        assert await measured("SELECT assignments.assignment_id",
                              env.submit(w, a["assignment_id"])) == (2, 0)
        assert await measured("SELECT assignments.assignment_id",
                              env.submit(w, b["assignment_id"])) == (2, 0)
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "begin", on_begin)



async def test_start_waits_for_the_schema_before_consuming_or_answering(
        module_nats, database_url) -> None:
    """A replica started before its migration ran neither pulls events, nor answers RPCs, nor
    relays its outbox; once the schema reaches head it starts; with none it gives up."""
    svc = create_service(TasksSettings(database_url=database_url, nats_url=module_nats.url,
                                       environment="test", log_json=False))
    nc = await nats.connect(module_nats.url)
    try:
        starting = asyncio.create_task(svc.start())
        await asyncio.sleep(1.5)
        assert not starting.done() and not svc._started
        assert svc.rpc_server is None and svc.relay is None and not svc._loops
        await asyncio.to_thread(upgrade, SERVICE_DIR, database_url)
        await asyncio.wait_for(starting, 10)
        assert svc._started and svc.rpc_server is not None and svc._loops
        projects = await Env(svc, nc).call(rpc.LIST_PROJECTS, rpc.ProjectList, actor=ADMIN)
        assert projects is not None
    finally:
        await svc.stop()
        await nc.close()

    never = create_service(TasksSettings(database_url=database_url, nats_url=module_nats.url,
                                         environment="test", log_json=False,
                                         schema_wait_s=1.0))
    async with never.engine.begin() as conn:  # a schema one revision behind the code
        await conn.exec_driver_sql("UPDATE alembic_version_tasks SET version_num = 'old'")
    try:
        with pytest.raises(RuntimeError, match="not at head"):
            await never.start()
        assert never.rpc_server is None and not never._loops
    finally:
        await never.stop()


async def test_acceptances_of_one_pool_do_not_wait_for_each_other(env: Env) -> None:
    """Two open transactions accept work of one pool with the same duration: the second is
    not held behind the first's lock (each appends a pending duration instead of updating
    the histogram's bucket). The pace counts each once, before the fold and after it."""
    from tasks_service import pace

    pool = await env.pool(n=3)
    w = worker()
    ids = []
    for _ in range(3):
        a = await env.take(w, pool["pool_id"])
        await env.submit(w, a["assignment_id"])
        ids.append(a["assignment_id"])
    now = datetime.now(UTC)

    async def paced() -> tuple[int, float | None]:
        got = await env.call(rpc.POOL_PACE, rpc.PoolPaceRequest, actor=ADMIN,
                             pool_ids=[pool["pool_id"]])
        return got["items"][0]["accepted_timed"], got["items"][0]["median_seconds"]

    async def pending() -> int:
        async with env.svc.engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM pool_pace_pending")))
                       .scalar_one())

    async with env.svc.db.consumer_unit() as first:
        assert await first.store.accept(ids[0], now, None, "m1") is not None
        async with env.svc.db.consumer_unit() as second:   # the first is still open
            assert await asyncio.wait_for(second.store.accept(ids[1], now, None, "m1"),
                                          5) is not None
    assert await paced() == (2, 1.0) and await pending() == 2
    await pace.fold_pace(env.svc.ctx)
    await pace.fold_pace(env.svc.ctx)                    # nothing left: nothing counted twice
    assert await paced() == (2, 1.0) and await pending() == 0
    async with env.svc.db.consumer_unit() as third:
        assert await third.store.accept(ids[2], now, None, "m1") is not None
    assert await paced() == (3, 1.0) and await pending() == 1  # folded and pending, together
