"""Review handlers on an in-memory store: no database, no bus, milliseconds.

The fake keeps the store's contract (one conditional change, matched or not); the
integration tests prove the SQL does the same.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.envelope import Envelope, new_envelope
from contracts.events import AcceptAllAssignments, RejectAllAssignments, TaskSubmitted
from contracts.rpc import Actor, all_rpcs
from contracts.rpc import review as rpc
from review_service import decisions, domain, queue, stats
from review_service.domain import LockState
from review_service.settings import ReviewSettings
from review_service.store import Decided, DecisionFilter, PoolFigures
from servicekit.errors import ServiceError
from servicekit.rpc import dispatch
from servicekit.testing.fakes import fake_context

T0 = datetime(2026, 11, 22, 12, 30, tzinfo=UTC)
M1 = Actor(user_id="m1", role="manager")
M2 = Actor(user_id="m2", role="manager")
ADMIN = Actor(user_id="a1", role="admin")
MONEY = {"price_minor", "price", "currency", "amount_minor", "worker_share"}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class FakeReviewStore:
    """The review store's methods over a dict of rows (assignment id -> columns)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def _public(self, row: dict[str, Any]) -> rpc.Submission:
        return rpc.Submission.model_validate({k: v for k, v in row.items()
                                              if k != "received_at"})

    async def enqueue(self, row: dict[str, Any]) -> bool:
        if row["assignment_id"] in self.rows:
            return False
        self.rows[row["assignment_id"]] = dict(row)
        return True

    async def enqueue_many(self, rows: list[dict[str, Any]]) -> set[str]:
        return {r["assignment_id"] for r in rows if await self.enqueue(r)}

    async def list_pending(self, *, pool_id, only_free, now, limit, offset):
        found = sorted((r for r in self.rows.values() if r["status"] == "pending"
                        and (pool_id is None or r["pool_id"] == pool_id)
                        and (not only_free or not domain.lock_is_live(
                            r["lock_holder"], r["lock_until"], now))),
                       key=lambda r: (r["submitted_at"], r["assignment_id"]))
        return [self._public(r) for r in found[offset:offset + limit]], len(found)

    async def get(self, assignment_id):
        row = self.rows.get(assignment_id)
        return self._public(row) if row else None

    async def lock_state(self, assignment_id):
        return self._state(assignment_id)

    def _state(self, assignment_id: str) -> LockState | None:
        row = self.rows.get(assignment_id)
        return None if row is None else LockState(row["status"], row["lock_holder"],
                                                  row["lock_until"], row["decided_at"])

    async def lock(self, assignment_id, *, me, now, until):
        state = self._state(assignment_id)
        if state is None or not domain.can_lock(state, me, now):
            return False
        self.rows[assignment_id].update(lock_holder=me, lock_until=until)
        return True

    async def unlock(self, assignment_id, *, me, now):
        state = self._state(assignment_id)
        if state is None or not domain.can_lock(state, me, now):
            return False
        self.rows[assignment_id].update(lock_holder=None, lock_until=None)
        return True

    async def lock_next(self, *, me, now, until, pool_id):
        for r in sorted(self.rows.values(), key=lambda r: (r["submitted_at"],
                                                           r["assignment_id"])):
            if (pool_id is None or r["pool_id"] == pool_id) and await self.lock(
                    r["assignment_id"], me=me, now=now, until=until):
                return self._public(r)
        return None

    def _decide(self, row: dict[str, Any], status: str, by: str, now: datetime,
                comment: str | None) -> Decided:
        row.update(status=status, decided_by=by, decided_at=now, review_comment=comment,
                   lock_holder=None, lock_until=None)
        return Decided(row["assignment_id"], row["task_id"], row["pool_id"],
                       row["project_id"], row["worker_id"])

    async def decide(self, *, assignment_id, status, me, now, comment, outbox):
        state = self._state(assignment_id)
        if state is None or not domain.can_decide(state, me, now):
            return False
        self._decide(self.rows[assignment_id], status, me, now, comment)
        self.outbox_payloads = [json.loads(outbox["ob_payload"])]
        return True

    async def decide_all_of_worker(self, *, worker_id, pool_id, status, decided_by, now,
                                   comment):
        return [self._decide(r, status, decided_by, now, comment) for r in self.rows.values()
                if r["worker_id"] == worker_id and r["pool_id"] == pool_id
                and r["status"] == "pending" and r["review_mode"] == "manual"]

    async def accept_overdue(self, *, now, decided_by, limit):
        due = sorted((r for r in self.rows.values() if r["status"] == "pending"
                      and r["auto_accept_at"] is not None and r["auto_accept_at"] <= now
                      and not domain.lock_is_live(r["lock_holder"], r["lock_until"], now)),
                     key=lambda r: r["auto_accept_at"])[:limit]
        return [self._decide(r, "accepted", decided_by, now, None) for r in due]

    async def pool_figures(self, pool_id, *, since, top):
        mine = [r for r in self.rows.values() if r["pool_id"] == pool_id]
        counts: dict[str, int] = {}
        hourly: dict[datetime, int] = {}
        best: dict[str, int] = {}
        for r in mine:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
            if r["decided_at"] is not None and r["decided_at"] >= since:
                h = domain.hour_floor(r["decided_at"])
                hourly[h] = hourly.get(h, 0) + 1
            if r["status"] == "accepted":
                best[r["worker_id"]] = best.get(r["worker_id"], 0) + 1
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return PoolFigures(counts, hourly, ranked)

    async def decisions(self, f: DecisionFilter, *, limit, offset):
        self.last_filter = f
        found = [r for r in self.rows.values() if r["status"] != "pending"
                 and (f.worker_id is None or r["worker_id"] == f.worker_id)
                 and (f.pool_id is None or r["pool_id"] == f.pool_id)
                 and (f.decided_by is None or r["decided_by"] == f.decided_by)]
        found.sort(key=lambda r: r["decided_at"], reverse=True)
        cols = ("assignment_id", "task_id", "pool_id", "project_id", "worker_id", "status",
                "submitted_at", "decided_at", "decided_by")
        return ([{**{c: r[c] for c in cols}, "comment": r["review_comment"]}
                 for r in found[offset:offset + limit]], len(found))


def make(**settings: Any) -> tuple[Any, FakeReviewStore, Clock]:
    store, clock = FakeReviewStore(), Clock()
    ctx = fake_context(ReviewSettings(database_url="postgresql://unused/x", lock_ttl_s=60,
                                      **settings), store, clock=clock)
    return ctx, store, clock


def submitted(*, pool_id: str = "p1", worker_id: str = "w1", minutes_ago: int = 1,
              **kw: Any) -> TaskSubmitted:
    at = T0 - timedelta(minutes=minutes_ago)
    return TaskSubmitted(assignment_id=str(uuid.uuid4()), task_id="t1", pool_id=pool_id,
                         project_id="pr1", worker_id=worker_id, answers={"label": "cat"},
                         taken_at=at - timedelta(minutes=1), submitted_at=at, **kw)


async def consume(ctx: Any, handler: Any, event: Any, env: Envelope | None = None) -> Envelope:
    env = env or new_envelope(event, producer="tasks")
    async with ctx.db.consumer_unit() as uow:
        await handler(event, env, uow, ctx)
    return env


async def consume_submitted(ctx: Any, *events: TaskSubmitted) -> list[Envelope]:
    """One delivered batch of task.submitted (an envelope each)."""
    envs = [new_envelope(e, producer="tasks") for e in events]
    async with ctx.db.consumer_unit() as uow:
        await decisions.on_task_submitted(list(zip(events, envs, strict=True)), uow, ctx)
    return envs


async def enqueue(ctx: Any, *events: TaskSubmitted) -> None:
    for e in events:
        await consume_submitted(ctx, e)


def ref(actor: Actor, e: TaskSubmitted) -> rpc.SubmissionRef:
    return rpc.SubmissionRef(actor=actor, assignment_id=e.assignment_id)


async def refusal(call: Any) -> ServiceError:
    with pytest.raises(ServiceError) as exc:
        await call
    return exc.value


# ------------------------------------------------------------------------ roles


async def test_only_managers_and_admins_review() -> None:
    """Every review RPC but the decision history refuses a worker before its handler."""
    worker = {"user_id": "w1", "role": "worker"}
    staff_only = [rpc.LIST_PENDING, rpc.GET, rpc.LOCK, rpc.LOCK_NEXT, rpc.UNLOCK, rpc.ACCEPT,
                  rpc.REJECT, rpc.STATS, rpc.GET_APPEAL, rpc.DECIDE_APPEAL]
    # workers file appeals and read their own (and their own decisions)
    workers_too = {rpc.MY_DECISIONS.subject, rpc.FILE_APPEAL.subject, rpc.LIST_APPEALS.subject}
    assert {s.subject for s in all_rpcs() if s.subject.startswith("rpc.review.")} == {
        s.subject for s in staff_only} | workers_too | {
        "rpc.review.diagnostics", "rpc.review.dlq_replay"}  # the kit's, admin only
    for spec in staff_only:
        assert spec.roles == frozenset({"manager", "admin"}), spec.subject

        async def never(_req: Any) -> Any:
            raise AssertionError("the handler must not run")

        body = {"actor": worker, "assignment_id": "a1", "pool_id": "p1", "comment": "x",
                "appeal_id": "ap1", "outcome": "upheld", "reply": "x"}
        fields = spec.request.model_fields
        reply = json.loads(await dispatch(spec, never, json.dumps(
            {k: v for k, v in body.items() if k in fields}).encode()))
        assert reply["error"]["status"] == 403, spec.subject


# ------------------------------------------------------------ entering review


async def test_a_submission_enters_once_and_an_auto_pool_accepts_it_at_once() -> None:
    ctx, store, _ = make()
    manual = submitted(auto_accept_after_s=30)
    [env] = await consume_submitted(ctx, manual)
    await consume_submitted(ctx, manual)  # again, another event id
    assert list(store.rows) == [manual.assignment_id]
    assert store.rows[manual.assignment_id]["auto_accept_at"] == manual.submitted_at + \
        timedelta(seconds=30)
    assert ctx.db.event_types() == []  # a manual submission waits for a decision
    assert env.event_id

    # a producer still sending money fields: review keeps none and sends none
    auto = TaskSubmitted.model_validate({**submitted(review_mode="auto").model_dump(),
                                         "price_minor": 1234, "currency": "RUB"})
    [env] = await consume_submitted(ctx, auto)
    row = store.rows[auto.assignment_id]
    assert (row["status"], row["decided_by"], row["decided_at"]) == ("accepted", "auto", T0)
    assert not MONEY & set(row)
    [accepted] = ctx.db.events
    assert accepted.type == "review.accepted" and accepted.causation_id == env.event_id
    assert accepted.data["assignment_id"] == auto.assignment_id
    assert accepted.data["decided_by"] == "auto" and not MONEY & set(accepted.data)


async def test_a_batch_enters_in_one_go_each_assignment_once() -> None:
    """One delivered batch: every new assignment enters, one submitted twice in the batch
    (two event ids) enters once, and only the auto pool's submission is decided, caused by
    its own event."""
    ctx, store, _ = make()
    manual, auto = submitted(), submitted(review_mode="auto", worker_id="w2")
    again = manual.model_copy()
    envs = await consume_submitted(ctx, manual, auto, again)
    assert sorted(store.rows) == sorted([manual.assignment_id, auto.assignment_id])
    assert store.rows[manual.assignment_id]["status"] == "pending"
    [accepted] = ctx.db.events
    assert accepted.data["assignment_id"] == auto.assignment_id
    assert accepted.causation_id == envs[1].event_id


# ------------------------------------------------------------------- the queue


async def test_queue_lists_oldest_first_and_hides_held_submissions_on_request() -> None:
    ctx, _, _ = make()
    old, new, other = submitted(minutes_ago=9), submitted(minutes_ago=1), submitted(pool_id="p2")
    await enqueue(ctx, new, old, other)
    page = await queue.list_pending(rpc.ListPending(actor=M1, pool_id="p1"), ctx)
    assert [i.assignment_id for i in page.items] == [old.assignment_id, new.assignment_id]
    assert page.total == 2
    await queue.lock(ref(M2, old), ctx)
    free = await queue.list_pending(rpc.ListPending(actor=M1, pool_id="p1", only_free=True), ctx)
    assert [i.assignment_id for i in free.items] == [new.assignment_id]
    one = await queue.get(ref(M1, old), ctx)
    assert one.lock_holder == "m2" and one.answers == {"label": "cat"}
    missing = await refusal(queue.get(rpc.SubmissionRef(actor=M1, assignment_id="nope"), ctx))
    assert (missing.code, missing.status) == ("submission_not_found", 404)


async def test_locks_are_exclusive_extendable_and_expire() -> None:
    ctx, _, clock = make()
    sub = submitted()
    await enqueue(ctx, sub)
    first = await queue.lock(ref(M1, sub), ctx)
    assert first.locked and first.lock_until == T0 + timedelta(seconds=60)
    err = await refusal(queue.lock(ref(M2, sub), ctx))
    assert (err.code, err.status) == ("locked_by_other", 409) and err.details["holder"] == "m1"
    err = await refusal(queue.unlock(ref(M2, sub), ctx))
    assert err.code == "locked_by_other"
    clock.now = T0 + timedelta(seconds=30)
    again = await queue.lock(ref(M1, sub), ctx)  # re-locking extends
    assert again.lock_until == clock.now + timedelta(seconds=60)
    clock.now += timedelta(seconds=61)  # expired: anyone may take it
    assert (await queue.lock(ref(M2, sub), ctx)).lock_holder == "m2"
    assert not (await queue.unlock(ref(M2, sub), ctx)).locked
    assert not (await queue.unlock(ref(M1, sub), ctx)).locked  # a free one stays free
    assert ctx.db.events == []  # locks send no events
    missing = await refusal(queue.lock(rpc.SubmissionRef(actor=M1, assignment_id="x"), ctx))
    assert missing.code == "submission_not_found"


async def test_lock_next_hands_out_the_oldest_free_one_and_ones_own_again() -> None:
    ctx, _, _ = make()
    old, new = submitted(minutes_ago=5), submitted(minutes_ago=1)
    await enqueue(ctx, new, old)
    got = await queue.lock_next(rpc.LockNext(actor=M1), ctx)
    assert got.assignment_id == old.assignment_id and got.lock_holder == "m1"
    assert (await queue.lock_next(rpc.LockNext(actor=M1), ctx)).assignment_id == \
        old.assignment_id
    assert (await queue.lock_next(rpc.LockNext(actor=M2), ctx)).assignment_id == \
        new.assignment_id
    err = await refusal(queue.lock_next(rpc.LockNext(actor=ADMIN), ctx))
    assert (err.code, err.status) == ("no_pending", 404)
    err = await refusal(queue.lock_next(rpc.LockNext(actor=M1, pool_id="elsewhere"), ctx))
    assert err.code == "no_pending"


async def test_a_refused_change_whose_reason_vanished_asks_for_a_retry() -> None:
    _, store, _ = make()
    sub = submitted()
    await store.enqueue({"assignment_id": sub.assignment_id, "status": "pending",
                         "lock_holder": None, "lock_until": None, "decided_at": None})
    err = await queue.refused(store, sub.assignment_id, domain.lock_refusal, "m1", T0)
    assert (err.code, err.status) == ("retry", 409)


# -------------------------------------------------------------------- decisions


async def test_only_the_lock_holder_decides_and_the_event_commits_with_it() -> None:
    ctx, store, _ = make()
    sub = submitted()
    await enqueue(ctx, sub)
    err = await refusal(decisions.accept(rpc.Accept(actor=M1, assignment_id=sub.assignment_id),
                                         ctx))
    assert (err.code, err.status) == ("lock_required", 409)
    await queue.lock(ref(M1, sub), ctx)
    err = await refusal(decisions.accept(rpc.Accept(actor=M2, assignment_id=sub.assignment_id),
                                         ctx))
    assert err.code == "locked_by_other"
    assert ctx.db.events == []  # refused decisions record nothing

    done = await decisions.accept(rpc.Accept(actor=M1, assignment_id=sub.assignment_id,
                                             comment="  good "), ctx)
    assert (done.status, done.decided_by, done.decided_at, done.comment) == (
        "accepted", "m1", T0, "good")
    [event] = ctx.db.events
    assert event.type == "review.accepted" and event.data["assignment_id"] == sub.assignment_id
    assert event.data["decided_by"] == "m1" and not MONEY & set(event.data)
    # the statement wrote that very envelope (its ids filled in from the row)
    assert store.outbox_payloads[0]["event_id"] == event.event_id
    again = await refusal(decisions.reject(rpc.Reject(
        actor=M1, assignment_id=sub.assignment_id, comment="no"), ctx))
    assert (again.code, again.status) == ("already_decided", 409)
    assert again.details["status"] == "accepted"
    assert len(ctx.db.events) == 1


async def test_a_rejection_needs_a_comment_for_the_worker() -> None:
    ctx, store, _ = make()
    sub = submitted()
    await enqueue(ctx, sub)
    await queue.lock(ref(M1, sub), ctx)
    for blank in (None, "  "):
        err = await refusal(decisions.reject(rpc.Reject(
            actor=M1, assignment_id=sub.assignment_id, comment=blank), ctx))
        assert (err.code, err.status) == ("comment_required", 422)
    assert store.rows[sub.assignment_id]["status"] == "pending"
    done = await decisions.reject(rpc.Reject(actor=M1, assignment_id=sub.assignment_id,
                                             comment=" blurry "), ctx)
    assert done.status == "rejected" and done.comment == "blurry"
    assert ctx.db.event_types() == ["review.rejected"]
    assert ctx.db.events[0].data["comment"] == "blurry"


async def test_rules_decide_every_pending_manual_submission_of_the_worker_in_the_pool() -> None:
    ctx, store, _ = make()
    mine = [submitted(worker_id="w1") for _ in range(2)]
    bystanders = [submitted(worker_id="w2"), submitted(worker_id="w1", pool_id="p2")]
    await enqueue(ctx, *mine, *bystanders)
    await queue.lock(ref(M1, mine[0]), ctx)  # a manager's lock does not stop a rule
    env = await consume(ctx, decisions.on_reject_all, RejectAllAssignments(
        rule_id="r1", firing_id="f1", worker_id="w1", pool_id="p1",
        public_comment="too fast"))
    assert ctx.db.event_types() == ["review.rejected", "review.rejected"]
    assert {e.data["assignment_id"] for e in ctx.db.events} == {m.assignment_id for m in mine}
    assert all(e.data["decided_by"] == "rules" and e.data["comment"] == "too fast"
               and e.causation_id == env.event_id for e in ctx.db.events)
    assert all(store.rows[b.assignment_id]["status"] == "pending" for b in bystanders)
    await consume(ctx, decisions.on_accept_all, AcceptAllAssignments(
        rule_id="r2", firing_id="f2", worker_id="w2", pool_id="p1"))
    assert ctx.db.event_types()[-1] == "review.accepted"
    assert store.rows[bystanders[0].assignment_id]["decided_by"] == "rules"
    await consume(ctx, decisions.on_accept_all, AcceptAllAssignments(
        rule_id="r2", firing_id="f3", worker_id="w9", pool_id="p1"))
    assert len(ctx.db.events) == 3  # nothing pending: nothing decided


async def test_the_sweeper_accepts_overdue_submissions_in_batches_but_not_held_ones() -> None:
    ctx, store, clock = make(auto_accept_batch=2)
    due = [submitted(minutes_ago=10, auto_accept_after_s=60) for _ in range(3)]
    held = submitted(minutes_ago=10, auto_accept_after_s=60)
    later, never = submitted(minutes_ago=10, auto_accept_after_s=3600), submitted()
    await enqueue(ctx, *due, held, later, never)
    await queue.lock(ref(M1, held), ctx)
    await decisions.auto_accept_overdue(ctx)
    assert ctx.db.event_types() == ["review.accepted"] * 3  # two batches: 2, then 1
    assert {e.data["assignment_id"] for e in ctx.db.events} == {d.assignment_id for d in due}
    assert all(e.data["decided_by"] == "auto" for e in ctx.db.events)
    assert [store.rows[s.assignment_id]["status"] for s in (held, later, never)] == \
        ["pending"] * 3
    clock.now += timedelta(seconds=61)  # the manager's lock ran out
    await decisions.auto_accept_overdue(ctx)
    assert store.rows[held.assignment_id]["status"] == "accepted"


async def test_the_sweeper_decides_nothing_in_read_only_mode() -> None:
    ctx, store, _ = make()
    sub = submitted(minutes_ago=10, auto_accept_after_s=1)
    await enqueue(ctx, sub)
    ctx.read_only.enabled = True
    await decisions.auto_accept_overdue(ctx)
    assert store.rows[sub.assignment_id]["status"] == "pending" and ctx.db.events == []
    assert decisions.router.periodics[0].changes_state


# --------------------------------------------------------------------- reading


async def test_stats_count_rate_hourly_throughput_and_top_workers() -> None:
    ctx, _, _ = make()
    subs = [submitted(worker_id=w) for w in ("w1", "w1", "w2", "w3")]
    await enqueue(ctx, *subs)
    for s, accept in zip(subs[:3], (True, True, False), strict=True):
        await queue.lock(ref(M1, s), ctx)
        if accept:
            await decisions.accept(rpc.Accept(actor=M1, assignment_id=s.assignment_id), ctx)
        else:
            await decisions.reject(rpc.Reject(actor=M1, assignment_id=s.assignment_id,
                                              comment="wrong"), ctx)
    st = await stats.stats(rpc.StatsRequest(actor=M1, pool_id="p1"), ctx)
    assert (st.pending, st.accepted, st.rejected, st.acceptance_rate) == (1, 2, 1, 0.6667)
    assert len(st.throughput_per_hour) == 24 and st.throughput_per_hour[-1].decisions == 3
    assert [(w.worker_id, w.accepted) for w in st.top_workers] == [("w1", 2)]
    empty = await stats.stats(rpc.StatsRequest(actor=ADMIN, pool_id="none"), ctx)
    assert empty.acceptance_rate is None and empty.pending == 0


async def test_a_worker_sees_only_their_own_decisions_without_reviewers() -> None:
    ctx, store, _ = make()
    subs = [submitted(worker_id="w1"), submitted(worker_id="w2")]
    await enqueue(ctx, *subs)
    for s in subs:
        await queue.lock(ref(M1, s), ctx)
        await decisions.reject(rpc.Reject(actor=M1, assignment_id=s.assignment_id,
                                          comment="redo"), ctx)
    worker = Actor(user_id="w1", role="worker")
    mine = await stats.my_decisions(rpc.DecisionsRequest(actor=worker), ctx)
    assert [(d.worker_id, d.decided_by, d.comment) for d in mine.items] == [("w1", None,
                                                                            "redo")]
    for snoop in (rpc.DecisionsRequest(actor=worker, worker_id="w2"),
                  rpc.DecisionsRequest(actor=worker, decided_by="m1")):
        err = await refusal(stats.my_decisions(snoop, ctx))
        assert (err.code, err.status) == ("forbidden", 403)
    staff = await stats.my_decisions(rpc.DecisionsRequest(
        actor=M2, decided_by="m1", since=(T0 - timedelta(hours=1)).replace(tzinfo=None)), ctx)
    assert staff.total == 2 and {d.decided_by for d in staff.items} == {"m1"}
    assert store.last_filter.since == T0 - timedelta(hours=1)  # a naive time is UTC
