"""Review service against a real nats-server and a fresh database per test."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import DeliverPolicy
from sqlalchemy import func, select

from contracts.envelope import Envelope, new_envelope
from contracts.events import (
    AcceptAllAssignments,
    Event,
    RejectAllAssignments,
    ReviewAccepted,
    TaskSubmitted,
)
from contracts.rpc import Actor
from contracts.rpc import review as rpc
from review_service.db import submissions
from review_service.main import create_service
from review_service.settings import ReviewSettings
from servicekit.errors import RpcCallError
from servicekit.migrations import upgrade
from servicekit.rpc import RpcClient
from servicekit.service import Service
from servicekit.testing import consumers_drained
from servicekit.testing import eventually as kit_eventually

SERVICE_DIR = Path(__file__).parents[1]
MONEY_KEYS = {"price_minor", "price", "currency", "amount_minor", "worker_share"}

M1 = Actor(user_id="manager-1", role="manager")
M2 = Actor(user_id="manager-2", role="manager")
ADMIN = Actor(user_id="admin-1", role="admin")
WORKER = Actor(user_id="worker-1", role="worker")


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def money_keys(data: Any) -> set[str]:
    """Every key anywhere in ``data`` that would reveal money."""
    if isinstance(data, dict):
        found = {k for k in data if k in MONEY_KEYS}
        for v in data.values():
            found |= money_keys(v)
        return found
    if isinstance(data, list):
        return set().union(*(money_keys(v) for v in data)) if data else set()
    return set()


class Harness:
    """One running review service plus a client, a publisher and a tap on REVIEW."""

    def __init__(self, svc: Service, nc: nats.NATS) -> None:
        self.svc = svc
        self.nc = nc
        self.js = nc.jetstream()
        self.client = RpcClient(nc, timeout_s=5)
        self.seen: list[Envelope] = []

    async def call(self, spec, request) -> Any:
        data = (await self.client.call(spec, request)).model_dump(mode="json")
        # No response may ever reveal the gross price (and so the hidden share).
        assert not money_keys(data), f"{spec.subject} leaked {money_keys(data)}"
        return data

    async def refused(self, spec, request) -> Any:
        with pytest.raises(RpcCallError) as exc:
            await self.client.call(spec, request)
        return exc.value.error

    async def publish(self, event: Event, *, producer: str = "tasks",
                      env: Envelope | None = None, msg_id: str | None = None) -> Envelope:
        env = env or new_envelope(event, producer=producer)
        await self.js.publish(env.type, env.model_dump_json().encode(),
                              headers={"Nats-Msg-Id": msg_id or env.event_id})
        return env

    async def tap_review_events(self) -> None:
        async def on_msg(msg) -> None:
            self.seen.append(Envelope.model_validate_json(msg.data))

        await self.js.subscribe("review.>", cb=on_msg, ordered_consumer=True,
                                deliver_policy=DeliverPolicy.NEW)

    def events(self, type_: str, assignment_id: str) -> list[Envelope]:
        return [e for e in self.seen
                if e.type == type_ and e.data["assignment_id"] == assignment_id]

    async def consumers_drained(self) -> None:
        """Wait until every review consumer handled everything published so far."""
        await consumers_drained(self.js, [(c.stream, c.durable) for c in self.svc.consumers],
                                timeout_s=10.0)


# the kit's, with this file's ten seconds
eventually = functools.partial(kit_eventually, timeout_s=10.0)


def submitted(*, pool_id: str, worker_id: str | None = None, **kw: Any) -> TaskSubmitted:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "assignment_id": str(uuid.uuid4()), "task_id": uid("t"), "pool_id": pool_id,
        "project_id": "project-1", "worker_id": worker_id or uid("w"),
        "answers": {"label": "cat"}, "comment": "done", "proof": "https://example.org/p.png",
        "taken_at": now - timedelta(minutes=2), "submitted_at": now}
    fields.update(kw)
    return TaskSubmitted(**fields)


@pytest.fixture
async def start_review(nats_server, databases) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    started: list[Harness] = []

    async def start(**overrides: Any) -> Harness:
        url = await databases.new("review_test")
        upgrade(SERVICE_DIR, url)
        settings = {"database_url": url, "nats_url": nats_server.url, "environment": "test",
                    "log_json": False, "auto_accept_sweep_s": 0.1,
                    "relay_poll_interval_s": 0.05}
        settings.update(overrides)
        svc = create_service(ReviewSettings(**settings))
        await svc.start()
        h = Harness(svc, await nats.connect(nats_server.url))
        started.append(h)
        return h

    yield start
    for h in started:
        await h.nc.close()
        await h.svc.stop()


async def enqueue(h: Harness, *events: TaskSubmitted) -> None:
    for e in events:
        await h.publish(e)
    await h.consumers_drained()


# ----------------------------------------------------------------------------- queue


async def test_submission_appears_in_queue_once_even_if_delivered_twice(start_review) -> None:
    h = await start_review()
    pool = uid("pool")
    older = submitted(pool_id=pool, submitted_at=datetime.now(UTC) - timedelta(hours=1))
    newer = submitted(pool_id=pool)
    elsewhere = submitted(pool_id=uid("pool"))
    env = await h.publish(newer)
    # The same envelope again past JetStream's duplicate window (another msg id): the
    # consumer's inbox drops it; a re-published event under a new id: the unique
    # assignment id drops it.
    await h.publish(newer, env=env, msg_id=uid("again"))
    await h.publish(newer)
    await enqueue(h, older, elsewhere)

    page = await h.call(rpc.LIST_PENDING, rpc.ListPending(actor=M1, pool_id=pool))
    assert page["total"] == 2
    assert [i["assignment_id"] for i in page["items"]] == [older.assignment_id,
                                                           newer.assignment_id]
    item = page["items"][1]
    assert item["answers"] == {"label": "cat"} and item["proof"] == newer.proof
    assert item["status"] == "pending" and item["lock_holder"] is None
    async with h.svc.engine.connect() as conn:
        n = (await conn.execute(select(func.count()).select_from(submissions).where(
            submissions.c.assignment_id == newer.assignment_id))).scalar_one()
    assert n == 1
    # review decides, it keeps no price: the ledger learns it when the pool opens
    assert not money_keys({c.name: None for c in submissions.c})

    everything = await h.call(rpc.LIST_PENDING, rpc.ListPending(
        actor=ADMIN, page={"limit": 1, "offset": 0}))
    assert everything["total"] >= 3 and len(everything["items"]) == 1

    one = await h.call(rpc.GET, rpc.SubmissionRef(actor=M1, assignment_id=older.assignment_id))
    assert one["worker_id"] == older.worker_id and one["comment"] == "done"
    missing = await h.refused(rpc.GET, rpc.SubmissionRef(actor=M1, assignment_id="nope"))
    assert (missing.code, missing.status) == ("submission_not_found", 404)
    worker = Actor(user_id=newer.worker_id, role="worker")
    forbidden = await h.refused(rpc.LIST_PENDING, rpc.ListPending(actor=worker))
    assert forbidden.status == 403


async def test_a_delivered_batch_enters_in_one_statement_with_every_column(start_review) -> None:
    """The consumer's batch statement: every column as one submission alone would have it
    (JSON answers, no proof, an auto pool's decision), an assignment twice in the batch
    stored once, and one already stored left as it was."""
    from review_service import decisions

    h = await start_review()
    pool = uid("pool")
    known = submitted(pool_id=pool)
    await enqueue(h, known)
    first = submitted(pool_id=pool, answers={"label": "дом", "n": [1, 2]}, proof=None,
                      comment=None)
    auto = submitted(pool_id=pool, review_mode="auto")
    batch = [first, auto, first.model_copy(), known.model_copy(update={"comment": "later"})]
    async with h.svc.db.consumer_unit() as uow:
        await decisions.on_task_submitted(
            [(e, new_envelope(e, producer="tasks")) for e in batch], uow, h.svc.ctx)
    async with h.svc.engine.connect() as conn:
        rows = {r.assignment_id: r for r in (await conn.execute(
            select(submissions).where(submissions.c.pool_id == pool))).all()}
    assert sorted(rows) == sorted([known.assignment_id, first.assignment_id,
                                   auto.assignment_id])
    assert rows[first.assignment_id].answers == {"label": "дом", "n": [1, 2]}
    assert rows[first.assignment_id].proof is None and rows[first.assignment_id].comment is None
    assert rows[first.assignment_id].status == "pending"
    assert rows[first.assignment_id].submitted_at == first.submitted_at
    assert (rows[auto.assignment_id].status, rows[auto.assignment_id].decided_by) == (
        "accepted", "auto")
    assert rows[known.assignment_id].comment == "done"


# ----------------------------------------------------------------------------- locks


async def test_lock_conflict_names_the_holder_and_only_the_holder_decides(start_review) -> None:
    h = await start_review()
    sub = submitted(pool_id=uid("pool"))
    await enqueue(h, sub)
    ref = {"assignment_id": sub.assignment_id}

    locked = await h.call(rpc.LOCK, rpc.SubmissionRef(actor=M1, **ref))
    assert locked["locked"] and locked["lock_holder"] == M1.user_id

    err = await h.refused(rpc.LOCK, rpc.SubmissionRef(actor=M2, **ref))
    assert (err.code, err.status) == ("locked_by_other", 409)
    assert M1.user_id in err.message
    assert err.details["holder"] == M1.user_id
    assert datetime.fromisoformat(err.details["until"]) == datetime.fromisoformat(
        locked["lock_until"])
    for spec, req in ((rpc.ACCEPT, rpc.Accept(actor=M2, **ref)),
                      (rpc.REJECT, rpc.Reject(actor=M2, comment="bad", **ref)),
                      (rpc.UNLOCK, rpc.SubmissionRef(actor=M2, **ref))):
        err = await h.refused(spec, req)
        assert err.code == "locked_by_other" and err.details["holder"] == M1.user_id

    free = await h.call(rpc.LIST_PENDING, rpc.ListPending(actor=M2, pool_id=sub.pool_id,
                                                          only_free=True))
    assert free["total"] == 0

    assert not (await h.call(rpc.UNLOCK, rpc.SubmissionRef(actor=M1, **ref)))["locked"]
    no_lock = await h.refused(rpc.ACCEPT, rpc.Accept(actor=M1, **ref))
    assert (no_lock.code, no_lock.status) == ("lock_required", 409)
    assert (await h.call(rpc.LOCK, rpc.SubmissionRef(actor=M2, **ref)))["lock_holder"] == \
        M2.user_id


async def test_lock_next_hands_each_manager_its_own_oldest_free_submission(
        start_review) -> None:
    h = await start_review(lock_ttl_s=0.5)
    pool, other_pool = uid("pool"), uid("pool")
    t0 = datetime.now(UTC)
    subs = [submitted(pool_id=pool, submitted_at=t0 + timedelta(seconds=i)) for i in range(5)]
    await enqueue(h, *reversed(subs), submitted(pool_id=other_pool))
    managers = [Actor(user_id=f"m{i}", role="manager") for i in range(4)]
    got = await asyncio.gather(*(h.call(rpc.LOCK_NEXT, rpc.LockNext(actor=m, pool_id=pool))
                                 for m in managers))
    # four managers at once: four different submissions, the four oldest, each locked
    assert sorted(g["assignment_id"] for g in got) == sorted(
        s.assignment_id for s in subs[:4])
    assert all(g["lock_holder"] == m.user_id for g, m in zip(got, managers, strict=True))
    # asking again hands back one's own live lock; the fifth goes to the next manager
    again = await h.call(rpc.LOCK_NEXT, rpc.LockNext(actor=managers[0], pool_id=pool))
    assert again["assignment_id"] == got[0]["assignment_id"]
    fifth = await h.call(rpc.LOCK_NEXT, rpc.LockNext(actor=M1, pool_id=pool))
    assert fifth["assignment_id"] == subs[4].assignment_id
    err = await h.refused(rpc.LOCK_NEXT, rpc.LockNext(actor=M2, pool_id=pool))
    assert (err.code, err.status) == ("no_pending", 404)
    # the lock is a real lock: the holder decides, an expired one is handed out again
    done = await h.call(rpc.ACCEPT, rpc.Accept(actor=M1, assignment_id=fifth["assignment_id"]))
    assert done["status"] == "accepted"
    await asyncio.sleep(0.6)
    late = await h.call(rpc.LOCK_NEXT, rpc.LockNext(actor=M2, pool_id=pool))
    assert late["assignment_id"] == subs[0].assignment_id
    err = await h.refused(rpc.LOCK_NEXT, rpc.LockNext(actor=WORKER, pool_id=pool))
    assert err.status == 403


async def test_expired_lock_frees_the_submission(start_review) -> None:
    h = await start_review(lock_ttl_s=0.3)
    sub = submitted(pool_id=uid("pool"))
    await enqueue(h, sub)
    ref = {"assignment_id": sub.assignment_id}
    await h.call(rpc.LOCK, rpc.SubmissionRef(actor=M1, **ref))
    assert (await h.refused(rpc.LOCK, rpc.SubmissionRef(actor=M2, **ref))).code == \
        "locked_by_other"
    await asyncio.sleep(0.4)

    late = await h.refused(rpc.ACCEPT, rpc.Accept(actor=M1, **ref))
    assert late.code == "lock_required" and "expired" in late.message
    assert (await h.call(rpc.LOCK, rpc.SubmissionRef(actor=M2, **ref)))["lock_holder"] == \
        M2.user_id
    done = await h.call(rpc.ACCEPT, rpc.Accept(actor=M2, **ref))
    assert done["status"] == "accepted" and done["decided_by"] == M2.user_id


# ------------------------------------------------------------------------- decisions


async def test_reject_needs_a_comment_and_the_worker_sees_it(start_review) -> None:
    h = await start_review()
    await h.tap_review_events()
    sub = submitted(pool_id=uid("pool"))
    await enqueue(h, sub)
    ref = {"assignment_id": sub.assignment_id}
    await h.call(rpc.LOCK, rpc.SubmissionRef(actor=M1, **ref))

    for comment in (None, "   "):
        err = await h.refused(rpc.REJECT, rpc.Reject(actor=M1, comment=comment, **ref))
        assert (err.code, err.status) == ("comment_required", 422)
    still = await h.call(rpc.GET, rpc.SubmissionRef(actor=M1, **ref))
    assert still["status"] == "pending" and still["lock_holder"] == M1.user_id

    done = await h.call(rpc.REJECT, rpc.Reject(actor=M1, comment=" the photo is blurry ", **ref))
    assert done["status"] == "rejected" and done["comment"] == "the photo is blurry"
    again = await h.refused(rpc.ACCEPT, rpc.Accept(actor=M1, **ref))
    assert (again.code, again.status) == ("already_decided", 409)

    [event] = await eventually(lambda: _ready(h.events("review.rejected", sub.assignment_id)))
    assert event.data["comment"] == "the photo is blurry"
    assert event.data["decided_by"] == M1.user_id and event.data["worker_id"] == sub.worker_id

    worker = Actor(user_id=sub.worker_id, role="worker")
    mine = await h.call(rpc.MY_DECISIONS, rpc.DecisionsRequest(actor=worker))
    assert mine["total"] == 1
    assert mine["items"][0]["status"] == "rejected"
    assert mine["items"][0]["comment"] == "the photo is blurry"
    assert mine["items"][0]["decided_by"] is None


async def _ready(items: list[Any]) -> list[Any]:
    return items


async def test_concurrent_accepts_decide_once_and_emit_one_event(start_review) -> None:
    h = await start_review()
    await h.tap_review_events()
    sub, contested = submitted(pool_id=uid("pool")), submitted(pool_id=uid("pool"))
    await enqueue(h, sub, contested)

    # Two managers race for the same free submission: exactly one gets the lock.
    race = await asyncio.gather(
        *(h.client.call(rpc.LOCK, rpc.SubmissionRef(actor=a, assignment_id=contested
                                                    .assignment_id)) for a in (M1, M2) * 3),
        return_exceptions=True)
    holders = {r.lock_holder for r in race if isinstance(r, rpc.LockInfo)}
    assert len(holders) == 1
    assert all(e.error.code == "locked_by_other" for e in race if isinstance(e, RpcCallError))

    ref = {"assignment_id": sub.assignment_id}
    await h.call(rpc.LOCK, rpc.SubmissionRef(actor=M1, **ref))
    results = await asyncio.gather(
        *(h.client.call(rpc.ACCEPT, rpc.Accept(actor=a, comment="good", **ref))
          for a in (M1, M1, M1, M2, M2)),
        return_exceptions=True)
    ok = [r for r in results if isinstance(r, rpc.DecisionResult)]
    refused = [r.error.code for r in results if isinstance(r, RpcCallError)]
    assert len(ok) == 1 and ok[0].decided_by == M1.user_id
    assert sorted(set(refused)) <= ["already_decided", "locked_by_other"]
    assert len(refused) == 4

    [event] = await eventually(lambda: _ready(h.events("review.accepted", sub.assignment_id)))
    await asyncio.sleep(0.5)  # a second event would have arrived by now
    assert len(h.events("review.accepted", sub.assignment_id)) == 1
    assert event.data == {
        "assignment_id": sub.assignment_id, "task_id": sub.task_id, "pool_id": sub.pool_id,
        "project_id": sub.project_id, "worker_id": sub.worker_id, "sandbox": False,
        "decided_by": M1.user_id, "decided_at": event.data["decided_at"], "comment": "good"}
    assert event.producer == "review"
    assert ReviewAccepted.model_validate(event.data).decided_by == M1.user_id


# ------------------------------------------------------------------------ automation


async def test_auto_mode_and_auto_accept_after_the_delay(start_review) -> None:
    h = await start_review()
    await h.tap_review_events()
    pool = uid("pool")
    instant = submitted(pool_id=pool, review_mode="auto")
    delayed = submitted(pool_id=pool, auto_accept_after_s=1)
    held = submitted(pool_id=pool, auto_accept_after_s=1)
    never = submitted(pool_id=pool)
    await enqueue(h, instant, delayed, held, never)
    # A manager reviewing a submission when its delay runs out keeps it until done.
    await h.call(rpc.LOCK, rpc.SubmissionRef(actor=M1, assignment_id=held.assignment_id))

    got = await h.call(rpc.GET, rpc.SubmissionRef(actor=M1, assignment_id=instant.assignment_id))
    assert got["status"] == "accepted" and got["decided_by"] == "auto"
    pending = await h.call(rpc.LIST_PENDING, rpc.ListPending(actor=M1, pool_id=pool))
    assert {i["assignment_id"] for i in pending["items"]} == {
        delayed.assignment_id, held.assignment_id, never.assignment_id}

    [auto] = await eventually(
        lambda: _ready(h.events("review.accepted", delayed.assignment_id)))
    assert auto.data["decided_by"] == "auto" and not money_keys(auto.data)
    assert datetime.fromisoformat(auto.data["decided_at"]) >= delayed.submitted_at + \
        timedelta(seconds=1)
    assert h.events("review.accepted", instant.assignment_id)[0].data["decided_by"] == "auto"
    await asyncio.sleep(0.3)  # several sweeps past the held submission's deadline
    left = await h.call(rpc.LIST_PENDING, rpc.ListPending(actor=M1, pool_id=pool))
    assert {i["assignment_id"] for i in left["items"]} == {held.assignment_id,
                                                           never.assignment_id}
    await h.call(rpc.UNLOCK, rpc.SubmissionRef(actor=M1, assignment_id=held.assignment_id))
    [late] = await eventually(lambda: _ready(h.events("review.accepted", held.assignment_id)))
    assert late.data["decided_by"] == "auto"
    left = await h.call(rpc.LIST_PENDING, rpc.ListPending(actor=M1, pool_id=pool))
    assert [i["assignment_id"] for i in left["items"]] == [never.assignment_id]


async def test_rules_accept_all_and_reject_all(start_review) -> None:
    h = await start_review()
    await h.tap_review_events()
    pool, other_pool = uid("pool"), uid("pool")
    good, bad, bystander = uid("w"), uid("w"), uid("w")
    good_subs = [submitted(pool_id=pool, worker_id=good) for _ in range(2)]
    bad_subs = [submitted(pool_id=pool, worker_id=bad) for _ in range(2)]
    untouched = [submitted(pool_id=other_pool, worker_id=good),
                 submitted(pool_id=pool, worker_id=bystander)]
    await enqueue(h, *good_subs, *bad_subs, *untouched)
    # A manager's lock does not stop a rule.
    await h.call(rpc.LOCK, rpc.SubmissionRef(actor=M1,
                                             assignment_id=bad_subs[0].assignment_id))

    await h.publish(AcceptAllAssignments(rule_id="r1", firing_id=uid("f"), worker_id=good,
                                         pool_id=pool), producer="rules")
    await h.publish(RejectAllAssignments(rule_id="r2", firing_id=uid("f"), worker_id=bad,
                                         pool_id=pool, public_comment="too fast to be real"),
                    producer="rules")
    await h.consumers_drained()

    for s in good_subs:
        [e] = await eventually(lambda s=s: _ready(h.events("review.accepted", s.assignment_id)))
        assert e.data["decided_by"] == "rules"
    for s in bad_subs:
        [e] = await eventually(lambda s=s: _ready(h.events("review.rejected", s.assignment_id)))
        assert e.data["decided_by"] == "rules" and e.data["comment"] == "too fast to be real"
    pending = await h.call(rpc.LIST_PENDING, rpc.ListPending(actor=M1))
    assert {i["assignment_id"] for i in pending["items"]} >= {u.assignment_id for u in untouched}
    decided = {s.assignment_id for s in good_subs + bad_subs}
    assert not decided & {i["assignment_id"] for i in pending["items"]}
    late = await h.refused(rpc.ACCEPT, rpc.Accept(actor=M1,
                                                  assignment_id=bad_subs[0].assignment_id))
    assert late.code == "already_decided"


# ---------------------------------------------------------------------------- reading


async def test_stats_and_decision_history(start_review) -> None:
    h = await start_review()
    pool = uid("pool")
    w1, w2 = uid("w"), uid("w")
    subs = [submitted(pool_id=pool, worker_id=w) for w in (w1, w1, w1, w2, w2)]
    await enqueue(h, *subs)

    async def decide(s: TaskSubmitted, accept: bool, actor: Actor = M1) -> None:
        await h.call(rpc.LOCK, rpc.SubmissionRef(actor=actor, assignment_id=s.assignment_id))
        if accept:
            await h.call(rpc.ACCEPT, rpc.Accept(actor=actor, assignment_id=s.assignment_id))
        else:
            await h.call(rpc.REJECT, rpc.Reject(actor=actor, assignment_id=s.assignment_id,
                                                comment="wrong label"))

    await decide(subs[0], True)
    await decide(subs[1], True, M2)
    await decide(subs[2], False)
    await decide(subs[3], True)

    st = await h.call(rpc.STATS, rpc.StatsRequest(actor=M1, pool_id=pool))
    assert (st["pending"], st["accepted"], st["rejected"]) == (1, 3, 1)
    assert st["acceptance_rate"] == 0.75
    assert len(st["throughput_per_hour"]) == 24
    assert st["throughput_per_hour"][-1]["decisions"] == 4
    assert sum(b["decisions"] for b in st["throughput_per_hour"]) == 4
    assert st["top_workers"] == [{"worker_id": w1, "accepted": 2},
                                 {"worker_id": w2, "accepted": 1}]
    empty = await h.call(rpc.STATS, rpc.StatsRequest(actor=ADMIN, pool_id=uid("pool")))
    assert empty["acceptance_rate"] is None and empty["top_workers"] == []

    by_m1 = await h.call(rpc.MY_DECISIONS, rpc.DecisionsRequest(actor=M1, pool_id=pool,
                                                                decided_by=M1.user_id))
    assert by_m1["total"] == 3
    rejected = await h.call(rpc.MY_DECISIONS, rpc.DecisionsRequest(
        actor=ADMIN, pool_id=pool, worker_id=w1, status="rejected"))
    assert [i["assignment_id"] for i in rejected["items"]] == [subs[2].assignment_id]
    assert rejected["items"][0]["decided_by"] == M1.user_id
    future = await h.call(rpc.MY_DECISIONS, rpc.DecisionsRequest(
        actor=M1, pool_id=pool, since=datetime.now(UTC) + timedelta(minutes=1)))
    recent = await h.call(rpc.MY_DECISIONS, rpc.DecisionsRequest(
        actor=M1, pool_id=pool, since=datetime.now(UTC) - timedelta(minutes=1),
        until=datetime.now(UTC) + timedelta(minutes=1), page={"limit": 2, "offset": 0}))
    assert future["total"] == 0 and recent["total"] == 4 and len(recent["items"]) == 2
    # A time without a timezone (as a query string may carry it) is taken as UTC.
    naive = await h.call(rpc.MY_DECISIONS, rpc.DecisionsRequest(
        actor=M1, pool_id=pool,
        since=(datetime.now(UTC) - timedelta(minutes=1)).replace(tzinfo=None)))
    assert naive["total"] == 4

    worker = Actor(user_id=w1, role="worker")
    mine = await h.call(rpc.MY_DECISIONS, rpc.DecisionsRequest(actor=worker))
    assert mine["total"] == 3 and {i["worker_id"] for i in mine["items"]} == {w1}
    assert all(i["decided_by"] is None for i in mine["items"])
    snoop = await h.refused(rpc.MY_DECISIONS, rpc.DecisionsRequest(actor=worker, worker_id=w2))
    assert snoop.status == 403
    for spec, req in ((rpc.STATS, rpc.StatsRequest(actor=worker, pool_id=pool)),
                      (rpc.LOCK, rpc.SubmissionRef(actor=worker,
                                                   assignment_id=subs[4].assignment_id))):
        assert (await h.refused(spec, req)).status == 403


async def test_a_sandbox_submission_is_reviewed_marked_and_never_counted(start_review) -> None:
    """Staff's try in a sandbox pool: queued and decided as usual, its decision event says
    ``sandbox`` (for the ledger, rules and webhooks), the statistics leave it out."""
    h = await start_review()
    await h.tap_review_events()
    pool = uid("pool")
    tester, worker = uid("admin"), uid("w")
    try_ = submitted(pool_id=pool, worker_id=tester, sandbox=True)
    auto = submitted(pool_id=pool, worker_id=tester, sandbox=True, review_mode="auto")
    real = submitted(pool_id=pool, worker_id=worker)
    await enqueue(h, try_, auto, real)
    queued = await h.call(rpc.GET, rpc.SubmissionRef(actor=M1, assignment_id=try_.assignment_id))
    assert (queued["status"], queued["sandbox"]) == ("pending", True)
    for s in (try_, real):
        await h.call(rpc.LOCK, rpc.SubmissionRef(actor=M1, assignment_id=s.assignment_id))
        await h.call(rpc.ACCEPT, rpc.Accept(actor=M1, assignment_id=s.assignment_id))
    for s, sandbox in ((try_, True), (auto, True), (real, False)):
        [event] = await eventually(lambda s=s: _ready(h.events("review.accepted", s.assignment_id)))
        assert event.data["sandbox"] is sandbox and event.data["worker_id"] == s.worker_id
    st = await h.call(rpc.STATS, rpc.StatsRequest(actor=M1, pool_id=pool))
    assert (st["pending"], st["accepted"], st["rejected"]) == (0, 1, 0)
    assert st["top_workers"] == [{"worker_id": worker, "accepted": 1}]
    assert sum(b["decisions"] for b in st["throughput_per_hour"]) == 1
    history = await h.call(rpc.MY_DECISIONS, rpc.DecisionsRequest(actor=M1, pool_id=pool))
    assert sorted((i["worker_id"] == tester, i["sandbox"]) for i in history["items"]) == [
        (False, False), (True, True), (True, True)]


def test_no_response_model_has_a_money_field() -> None:
    models = [rpc.Submission, rpc.Submissions, rpc.LockInfo, rpc.DecisionResult, rpc.Decision,
              rpc.Decisions, rpc.PoolStats, rpc.HourBucket, rpc.WorkerCount]
    for m in models:
        schema = json.dumps(m.model_json_schema())
        assert not any(f'"{k}"' in schema for k in MONEY_KEYS), m.__name__
