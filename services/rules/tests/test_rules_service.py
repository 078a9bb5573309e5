"""The rules service against a real nats-server and PostgreSQL: the help pages' examples."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import DeliverPolicy

from contracts.envelope import Envelope, new_envelope
from contracts.events import (
    CaptchaAnswered,
    LedgerCredited,
    ReviewAccepted,
    TaskAccessRevoked,
    TaskSubmitted,
)
from contracts.rpc import Actor
from contracts.rpc import rules as rpc
from rules_service import sweeper
from rules_service.domain import ManualClock
from rules_service.main import create_service
from rules_service.settings import RulesSettings
from servicekit.errors import RpcCallError
from servicekit.migrations import upgrade
from servicekit.rpc import RpcClient
from servicekit.testing import consumers_drained

SERVICE_DIR = Path(__file__).parents[1]
ADMIN = Actor(user_id="admin-1", role="admin")
MANAGER = Actor(user_id="manager-1", role="manager")


class Bus:
    """Publishes incoming events as their producers would; collects rules.* events."""

    def __init__(self, nc: nats.NATS, svc: Any) -> None:
        self.nc = nc
        self.svc = svc
        self.js = nc.jetstream()
        self.seen: list[Envelope] = []
        self.rpc = RpcClient(nc)

    async def start(self) -> None:
        async def on_msg(msg) -> None:
            self.seen.append(Envelope.model_validate_json(msg.data))
            await msg.ack()

        self.sub = await self.js.subscribe("rules.>", cb=on_msg, ordered_consumer=True,
                                           deliver_policy=DeliverPolicy.NEW)

    async def consumers_drained(self) -> None:
        """Wait until every rules consumer handled everything published so far."""
        await consumers_drained(self.js, [(c.stream, c.durable) for c in self.svc.consumers],
                                timeout_s=10.0)

    async def publish(self, event: Any, producer: str = "tasks",
                      env: Envelope | None = None) -> Envelope:
        env = env or new_envelope(event, producer=producer)
        await self.js.publish(env.type, env.model_dump_json().encode(),
                              headers={"Nats-Msg-Id": env.event_id})
        return env

    def emitted(self, type_: str, worker_id: str) -> list[dict[str, Any]]:
        return [e.data for e in self.seen if e.type == type_ and
                e.data.get("worker_id") == worker_id]

    async def wait_emitted(self, type_: str, worker_id: str, n: int = 1,
                           timeout: float = 10.0) -> list[dict[str, Any]]:
        for _ in range(int(timeout / 0.05)):
            got = self.emitted(type_, worker_id)
            if len(got) >= n:
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {n} {type_} for {worker_id}, saw "
                             f"{[(e.type, e.data.get('worker_id')) for e in self.seen]}")

    async def create_rule(self, **draft: Any) -> rpc.Rule:
        return await self.rpc.call(rpc.CREATE_RULE, rpc.CreateRule(
            actor=ADMIN, rule=rpc.RuleDraft(**draft)))


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def rules_svc(nats_server, database_url, clock):
    upgrade(SERVICE_DIR, database_url)
    svc = create_service(RulesSettings(database_url=database_url, nats_url=nats_server.url,
                                       environment="test", sweep_interval_s=3600,
                                       relay_poll_interval_s=0.05), clock=clock)
    await svc.start()
    yield svc
    await svc.stop()


@pytest.fixture
async def bus(nats_server, rules_svc) -> AsyncIterator[Bus]:
    nc = await nats.connect(nats_server.url)
    b = Bus(nc, rules_svc)
    await b.start()
    yield b
    await nc.close()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def credited(worker: str, pool: str, project: str, amount: int, at: datetime) -> LedgerCredited:
    return LedgerCredited(transfer_id=str(uuid.uuid4()), worker_id=worker, pool_id=pool,
                          project_id=project, assignment_id=str(uuid.uuid4()),
                          amount_minor=amount, currency="USD", credited_at=at)


def submitted(worker: str, pool: str, project: str, task: str, at: datetime, *,
              answers: dict | None = None, seconds: float = 30, overlap: int = 1,
              is_control: bool = False, control_correct: bool | None = None,
              assignment_id: str | None = None) -> TaskSubmitted:
    return TaskSubmitted(
        assignment_id=assignment_id or str(uuid.uuid4()), task_id=task, pool_id=pool,
        project_id=project, worker_id=worker, answers=answers or {"label": "cat"},
        taken_at=at - timedelta(seconds=seconds), submitted_at=at, overlap=overlap,
        is_control=is_control, control_correct=control_correct)


def captcha(worker: str, pool: str, project: str, correct: bool, at: datetime):
    return CaptchaAnswered(challenge_id=str(uuid.uuid4()), worker_id=worker, pool_id=pool,
                           project_id=project, correct=correct, answered_at=at)


SUSPEND_POOL = {"type": "restriction", "scope": "pool", "duration": 1, "duration_unit": "days",
                "private_comment": "earned the daily cap"}


async def restrictions_of(bus: Bus, worker: str, **kw: Any) -> list[dict[str, Any]]:
    data = await bus.rpc.call(rpc.LIST_RESTRICTIONS, rpc.ListRestrictions(
        actor=MANAGER, worker_id=worker, **kw))
    return [r.model_dump() for r in data.items]


# ------------------------------------------------------------------- examples


async def test_earnings_over_cap_restrict_only_in_that_pool(bus: Bus, clock) -> None:
    project, pools = uid("pr"), [uid("p") for _ in range(3)]
    worker = uid("w")
    await bus.create_rule(scope="project", project_id=project,
                          collector={"kind": "income"},
                          conditions=[{"field": "income_sum_for_24h", "operator": ">",
                                       "value": 500}],
                          action=SUSPEND_POOL)
    now = clock.now()
    for p in pools:  # 2.00 in each of three pools: no restriction
        await bus.publish(credited(worker, p, project, 200, now), producer="ledger")
    await bus.publish(credited(worker, pools[0], project, 400, now), producer="ledger")
    applied = await bus.wait_emitted("rules.restriction.applied", worker)
    assert len(applied) == 1
    assert applied[0]["scope"] == "pool" and applied[0]["pool_id"] == pools[0]
    items = await restrictions_of(bus, worker)
    assert [r["pool_id"] for r in items] == [pools[0]]
    assert await restrictions_of(bus, worker, pool_id=pools[1]) == []
    # explain shows the facts that caused the firing
    ex = await bus.rpc.call(rpc.EXPLAIN_WORKER, rpc.ExplainWorker(actor=MANAGER,
                                                                  worker_id=worker))
    assert ex.total == 1
    facts = ex.firings[0].facts
    assert facts["values"] == {"income_sum_for_24h": 600}
    assert facts["conditions"][0]["value"] == 500 and len(facts["event_ids"]) == 2


async def test_captcha_under_65_percent_blocks_for_10_days(bus: Bus, clock) -> None:
    project, pool, worker = uid("pr"), uid("p"), uid("w")
    await bus.create_rule(
        scope="pool", pool_id=pool, collector={"kind": "captcha", "history_size": 10},
        conditions=[{"field": "stored_results_count", "operator": ">=", "value": 5},
                    {"field": "success_rate", "operator": "<", "value": 65}],
        action={"type": "restriction", "scope": "all", "duration": 10,
                "duration_unit": "days", "private_comment": "captcha failures"})
    now = clock.now()
    for ok in (True, True, False, True):  # 4 answers: too few to judge
        await bus.publish(captcha(worker, pool, project, ok, now))
    await asyncio.sleep(0.3)
    assert bus.emitted("rules.restriction.applied", worker) == []
    await bus.publish(captcha(worker, pool, project, False, now))  # 3 of 5 = 60 %
    [applied] = await bus.wait_emitted("rules.restriction.applied", worker)
    assert applied["scope"] == "all"
    assert datetime.fromisoformat(applied["until"]) == now + timedelta(days=10)
    assert applied["private_comment"] == "captcha failures"


async def test_control_task_rate_sets_skill_from_field(bus: Bus, clock) -> None:
    project, pool, worker = uid("pr"), uid("p"), uid("w")
    await bus.create_rule(
        scope="pool", pool_id=pool, collector={"kind": "golden_set", "history_size": 10},
        conditions=[{"field": "golden_set_answers_count", "operator": ">=", "value": 4}],
        action={"type": "set_skill_from_field", "skill": "accuracy",
                "from_field": "correct_answers_rate"})
    now = clock.now()
    for i, ok in enumerate((True, False, True, True)):
        await bus.publish(submitted(worker, pool, project, f"ctl-{i}", now, is_control=True,
                                    control_correct=ok))
    [skill] = await bus.wait_emitted("rules.skill.set", worker)
    assert skill["skill"] == "accuracy" and skill["value"] == 75


async def test_majority_vote_restricts_the_dissenting_worker(bus: Bus, clock) -> None:
    project, pool = uid("pr"), uid("p")
    good1, good2, bad = uid("w"), uid("w"), uid("w")
    await bus.create_rule(
        scope="pool", pool_id=pool,
        collector={"kind": "majority_vote", "answer_threshold": 2},
        conditions=[{"field": "total_answers_count", "operator": ">=", "value": 2},
                    {"field": "correct_answers_rate", "operator": "<", "value": 50}],
        action=dict(SUSPEND_POOL, private_comment="disagrees with the majority"))
    now = clock.now()
    for task in ("t1", "t2"):
        for w, label in ((good1, "cat"), (good2, "cat"), (bad, "dog")):
            await bus.publish(submitted(w, pool, project, f"{pool}-{task}", now, overlap=3,
                                        answers={"label": label}))
    [applied] = await bus.wait_emitted("rules.restriction.applied", bad)
    assert applied["pool_id"] == pool
    assert bus.emitted("rules.restriction.applied", good1) == []
    assert bus.emitted("rules.restriction.applied", good2) == []


async def test_fast_answers_reject_all_in_manual_review_pool(bus: Bus, clock) -> None:
    project, pool, worker = uid("pr"), uid("p"), uid("w")
    await bus.create_rule(
        scope="pool", pool_id=pool,
        collector={"kind": "fast_answers", "fast_submit_threshold_seconds": 10,
                   "history_size": 5},
        conditions=[{"field": "total_submitted_count", "operator": ">=", "value": 3},
                    {"field": "fast_submitted_count", "operator": ">=", "value": 2}],
        action={"type": "reject_all", "public_comment": "answers were too fast to be real"})
    now = clock.now()
    for i, secs in enumerate((3, 40, 2)):
        await bus.publish(submitted(worker, pool, project, f"t{i}", now, seconds=secs))
    [rejected] = await bus.wait_emitted("rules.assignments.reject_all", worker)
    assert rejected["pool_id"] == pool
    assert rejected["public_comment"] == "answers were too fast to be real"


async def test_reexecution_after_block_raises_overlap_of_the_workers_tasks(bus: Bus,
                                                                          clock) -> None:
    project, pool, other_pool, worker = uid("pr"), uid("p"), uid("p"), uid("w")
    await bus.create_rule(
        scope="pool", pool_id=pool, collector={"kind": "access_revoked"},
        conditions=[{"field": "access_revoked_reason", "operator": "==",
                     "value": "restriction"}],
        action={"type": "change_overlap", "add": 1})
    await bus.create_rule(
        scope="project", project_id=project, collector={"kind": "captcha"},
        conditions=[{"field": "stored_results_count", "operator": ">=", "value": 2},
                    {"field": "fail_rate", "operator": ">=", "value": 100}],
        action={"type": "restriction", "scope": "all", "duration_unit": "permanent",
                "private_comment": "a robot"})
    now = clock.now()
    for t in ("t1", "t2"):
        await bus.publish(submitted(worker, pool, project, f"{pool}-{t}", now))
    for _ in range(2):  # the captcha failures happen in another pool of the project
        await bus.publish(captcha(worker, other_pool, project, False, now))
    await bus.wait_emitted("rules.restriction.applied", worker)
    [changed] = await bus.wait_emitted("rules.overlap.changed", worker)
    assert changed["pool_id"] == pool and changed["add"] == 1
    assert changed["task_ids"] == [f"{pool}-t1", f"{pool}-t2"]


async def test_reexecution_after_access_revoked_by_a_skill_change(bus: Bus, clock) -> None:
    project, pool, worker = uid("pr"), uid("p"), uid("w")
    await bus.create_rule(
        scope="pool", pool_id=pool, collector={"kind": "access_revoked"},
        conditions=[{"field": "access_revoked_reason", "operator": "==",
                     "value": "skill_change"}],
        action={"type": "change_overlap", "add": 2})
    now = clock.now()
    await bus.publish(submitted(worker, pool, project, f"{pool}-t1", now))
    # the tasks service saw a skill change shut the worker out of the pool
    revoked = await bus.publish(TaskAccessRevoked(
        worker_id=worker, pool_id=pool, project_id=project, skill="english", revoked_at=now))
    [changed] = await bus.wait_emitted("rules.overlap.changed", worker)
    assert changed["pool_id"] == pool and changed["add"] == 2
    assert changed["task_ids"] == [f"{pool}-t1"]
    # the action's event names the event that made the rule fire
    [env] = [e for e in bus.seen if e.type == "rules.overlap.changed"
             and e.data.get("worker_id") == worker]
    assert env.causation_id == revoked.event_id


async def test_incomplete_rule_is_refused_with_missing_fields(bus: Bus) -> None:
    pool = uid("p")
    with pytest.raises(RpcCallError) as err:
        await bus.create_rule(scope="pool", pool_id=pool, collector={"kind": "captcha"},
                              conditions=[{"field": "success_rate", "operator": "<"}],
                              action={"type": "restriction", "scope": "pool",
                                      "duration_unit": "days"})
    e = err.value.error
    assert (e.code, e.status) == ("rule_incomplete", 422)
    assert e.details == ["conditions[0].value", "action.duration", "action.private_comment"]
    listed = await bus.rpc.call(rpc.LIST_RULES, rpc.ListRules(actor=ADMIN, pool_id=pool))
    assert listed.total == 0
    with pytest.raises(RpcCallError) as err:  # workers get nothing
        await bus.rpc.call(rpc.LIST_RULES, rpc.ListRules(
            actor=Actor(user_id="w", role="worker")))
    assert err.value.error.status == 403
    with pytest.raises(RpcCallError) as err:  # managers may not create
        await bus.rpc.call(rpc.CREATE_RULE, rpc.CreateRule(actor=MANAGER, rule=rpc.RuleDraft()))
    assert err.value.error.status == 403


async def test_history_starts_over_when_a_temporary_restriction_ends(bus: Bus, clock,
                                                                      rules_svc) -> None:
    project, pool, worker = uid("pr"), uid("p"), uid("w")
    await bus.create_rule(
        scope="pool", pool_id=pool, collector={"kind": "captcha"},
        conditions=[{"field": "stored_results_count", "operator": ">=", "value": 3},
                    {"field": "fail_rate", "operator": ">", "value": 50}],
        action={"type": "restriction", "scope": "pool", "duration": 10,
                "duration_unit": "minutes", "private_comment": "captcha"})
    for ok in (False, False, True):
        await bus.publish(captcha(worker, pool, project, ok, clock.now()))
    [applied] = await bus.wait_emitted("rules.restriction.applied", worker)
    assert await sweeper.lift_due(rules_svc.ctx) == 0  # not yet due
    clock.advance(minutes=11)
    assert await sweeper.lift_due(rules_svc.ctx) == 1
    [lifted] = await bus.wait_emitted("rules.restriction.lifted", worker)
    assert lifted["restriction_id"] == applied["restriction_id"]
    assert await restrictions_of(bus, worker) == []
    # The old failures are forgotten: two new answers are not enough to judge...
    for ok in (False, False):
        await bus.publish(captcha(worker, pool, project, ok, clock.now()))
    await asyncio.sleep(0.4)
    assert len(bus.emitted("rules.restriction.applied", worker)) == 1
    # ...the third new answer is.
    await bus.publish(captcha(worker, pool, project, True, clock.now()))
    await bus.wait_emitted("rules.restriction.applied", worker, n=2)


async def test_backtest_lists_the_workers_the_live_rule_hits(bus: Bus, clock) -> None:
    project, pool = uid("pr"), uid("p")
    workers = [uid("w") for _ in range(5)]
    draft: dict[str, Any] = {
        "scope": "pool", "pool_id": pool,
        "collector": {"kind": "fast_answers", "fast_submit_threshold_seconds": 10},
        "conditions": [{"field": "fast_submitted_count", "operator": ">=", "value": 2}],
        "action": dict(SUSPEND_POOL, private_comment="too fast")}
    await bus.create_rule(**draft)
    now = clock.now()
    speeds = {workers[0]: (2, 3), workers[1]: (30, 40), workers[2]: (1, 50, 4),
              workers[3]: (5,), workers[4]: (60, 2, 2, 2)}
    for w, secs in speeds.items():
        for i, s in enumerate(secs):
            await bus.publish(submitted(w, pool, project, f"{w}-{i}", now, seconds=s))
    expected = sorted([workers[0], workers[2], workers[4]])
    for w in expected:
        await bus.wait_emitted("rules.restriction.applied", w)
    live = sorted({e.data["worker_id"] for e in bus.seen
                   if e.type == "rules.restriction.applied" and e.data["worker_id"] in speeds})
    assert live == expected
    await bus.consumers_drained()  # the last submissions may come in a later batch
    result = await bus.rpc.call(rpc.BACKTEST, rpc.Backtest(actor=MANAGER,
                                                            rule=rpc.RuleDraft(**draft)))
    assert result.workers == live
    # every submission, plus one "access revoked" fact per restriction applied
    assert result.events_scanned == sum(len(s) for s in speeds.values()) + len(live)
    # a stricter draft would have hit fewer workers; acting on nothing
    stricter = dict(draft, conditions=[{"field": "fast_submitted_count", "operator": ">=",
                                        "value": 3}])
    result = await bus.rpc.call(rpc.BACKTEST, rpc.Backtest(actor=MANAGER,
                                                            rule=rpc.RuleDraft(**stricter)))
    assert result.workers == [workers[4]]
    await asyncio.sleep(0.2)
    assert len(bus.emitted("rules.restriction.applied", workers[4])) == 1


async def test_bonus_is_granted_once(bus: Bus, clock) -> None:
    project, pool, worker = uid("pr"), uid("p"), uid("w")
    rule = await bus.create_rule(
        scope="pool", pool_id=pool, collector={"kind": "acceptance_rate"},
        conditions=[{"field": "total_reviewed_count", "operator": ">=", "value": 2},
                    {"field": "accepted_rate", "operator": ">=", "value": 100}],
        action={"type": "bonus", "amount_minor": 150, "currency": "USD"})
    now = clock.now()

    def accepted(i: int) -> ReviewAccepted:
        return ReviewAccepted(assignment_id=f"{pool}-a{i}", task_id=f"t{i}", pool_id=pool,
                              project_id=project, worker_id=worker, decided_by="m",
                              decided_at=now)

    envs = [await bus.publish(accepted(i), producer="review") for i in range(2)]
    [bonus] = await bus.wait_emitted("rules.bonus.granted", worker)
    assert bonus["amount_minor"] == 150 and bonus["bonus_id"] == f"bonus-{bonus['firing_id']}"
    # a redelivered event (new stream message, same event id) and a third acceptance
    await bus.js.publish(envs[1].type, envs[1].model_dump_json().encode(),
                         headers={"Nats-Msg-Id": f"redeliver-{envs[1].event_id}"})
    await bus.publish(accepted(2), producer="review")
    await asyncio.sleep(0.5)
    assert len(bus.emitted("rules.bonus.granted", worker)) == 1
    # disabling the rule stops it; deleting hides it
    await bus.rpc.call(rpc.UPDATE_RULE, rpc.UpdateRule(actor=ADMIN, rule_id=rule.rule_id,
                                                       enabled=False))
    deleted = await bus.rpc.call(rpc.DELETE_RULE, rpc.RuleRef(actor=ADMIN,
                                                              rule_id=rule.rule_id))
    assert deleted.deleted is True
    listed = await bus.rpc.call(rpc.LIST_RULES, rpc.ListRules(actor=MANAGER, pool_id=pool))
    assert listed.total == 0


# ------------------------------------------------- manual control and rule versions


def as_worker(worker: str) -> Actor:
    return Actor(user_id=worker, role="worker")


async def test_an_edit_is_a_new_version_and_explain_names_the_version_that_fired(
        bus: Bus, clock) -> None:
    project, pool, worker = uid("pr"), uid("p"), uid("w")
    rule = await bus.create_rule(
        name="three answers a day", scope="pool", pool_id=pool,
        collector={"kind": "submitted_answers"},
        conditions=[{"field": "submitted_count_24h", "operator": ">=", "value": 3}],
        action={**SUSPEND_POOL, "private_comment": "secret-reason-rule"})
    assert rule.version == 1
    edited = await bus.rpc.call(rpc.EDIT_RULE, rpc.EditRule(
        actor=ADMIN, rule_id=rule.rule_id, rule=rpc.RuleDraft(
            name="two answers a day", scope="pool", pool_id=pool,
            collector={"kind": "submitted_answers"},
            conditions=[{"field": "submitted_count_24h", "operator": ">=", "value": 2}],
            action={**SUSPEND_POOL, "private_comment": "secret-reason-rule"})))
    assert (edited.version, edited.name, edited.conditions[0]["value"]) == \
        (2, "two answers a day", 2)
    versions = await bus.rpc.call(rpc.RULE_VERSIONS, rpc.RuleRef(actor=MANAGER,
                                                                 rule_id=rule.rule_id))
    assert [(v.version, v.conditions[0]["value"]) for v in versions.items] == [(2, 2), (1, 3)]
    # the collector is what the counts mean: an edit may not change it
    with pytest.raises(RpcCallError) as refused:
        await bus.rpc.call(rpc.EDIT_RULE, rpc.EditRule(
            actor=ADMIN, rule_id=rule.rule_id, rule=rpc.RuleDraft(
                scope="pool", pool_id=pool, collector={"kind": "skipped_in_row"},
                conditions=[{"field": "skipped_in_row_count", "operator": ">=", "value": 2}],
                action=SUSPEND_POOL)))
    assert refused.value.error.code == "rule_fixed_field"
    assert refused.value.error.details == ["collector"]
    with pytest.raises(RpcCallError) as not_admin:
        await bus.rpc.call(rpc.EDIT_RULE, rpc.EditRule(
            actor=MANAGER, rule_id=rule.rule_id, rule=rpc.RuleDraft(name="x")))
    assert not_admin.value.error.status == 403

    for i in range(2):  # the edited rule (two answers) fires; version 1 would not have
        await bus.publish(submitted(worker, pool, project, f"t{i}", clock.now()))
    [applied] = await bus.wait_emitted("rules.restriction.applied", worker)
    ex = await bus.rpc.call(rpc.EXPLAIN_WORKER, rpc.ExplainWorker(actor=MANAGER,
                                                                  worker_id=worker))
    assert [f.rule_version for f in ex.firings] == [2]
    assert ex.restrictions[0].rule_version == 2

    mine = await bus.rpc.call(rpc.MY_RESTRICTIONS, rpc.MyRestrictions(actor=as_worker(worker)))
    [shown] = mine.items
    assert shown.restriction_id == applied["restriction_id"]
    assert shown.cause.source == "rule" and shown.cause.rule_version == 2
    assert shown.cause.rule_name == "two answers a day"
    assert shown.cause.evidence == {
        "values": {"submitted_count_24h": 2}, "history_size": None,
        "conditions": [{"field": "submitted_count_24h", "operator": ">=", "value": 2}]}
    assert "secret-reason-rule" not in mine.model_dump_json()
    # the owner may hide the evidence of a rule: the worker then sees the rule only
    await bus.rpc.call(rpc.EDIT_RULE, rpc.EditRule(
        actor=ADMIN, rule_id=rule.rule_id, evidence_public=False, rule=rpc.RuleDraft(
            name="two answers a day", scope="pool", pool_id=pool,
            collector={"kind": "submitted_answers"},
            conditions=[{"field": "submitted_count_24h", "operator": ">=", "value": 2}],
            action=SUSPEND_POOL)))
    mine = await bus.rpc.call(rpc.MY_RESTRICTIONS, rpc.MyRestrictions(actor=as_worker(worker)))
    assert mine.items[0].cause.rule_version == 2  # it fired as version 2, shown as such
    assert mine.items[0].cause.evidence is None


async def test_a_manual_restriction_ends_when_its_time_is_up(bus: Bus, clock,
                                                             rules_svc) -> None:
    worker, pool = uid("w"), uid("p")
    made = await bus.rpc.call(rpc.RESTRICT_WORKER, rpc.RestrictWorker(
        actor=MANAGER, worker_id=worker, scope="pool", pool_id=pool, duration=10,
        duration_unit="minutes", private_comment="secret-reason-manual"))
    assert made.source == "manual" and made.applied_by == MANAGER.user_id
    assert made.until == clock.now() + timedelta(minutes=10)
    [applied] = await bus.wait_emitted("rules.restriction.applied", worker)
    assert applied["restriction_id"] == made.restriction_id and applied["pool_id"] == pool
    mine = await bus.rpc.call(rpc.MY_RESTRICTIONS, rpc.MyRestrictions(actor=as_worker(worker)))
    assert [(r.cause.source, r.cause.rule_id, r.cause.evidence) for r in mine.items] == \
        [("manual", None, None)]
    assert "secret-reason-manual" not in mine.model_dump_json()
    clock.advance(minutes=9)
    assert await sweeper.lift_due(rules_svc.ctx) == 0
    clock.advance(minutes=2)
    assert await sweeper.lift_due(rules_svc.ctx) == 1
    [lifted] = await bus.wait_emitted("rules.restriction.lifted", worker)
    assert lifted["restriction_id"] == made.restriction_id
    # incomplete manual restrictions are refused with what is missing
    for kw, missing in (({"scope": "pool", "duration_unit": "permanent"}, ["pool_id"]),
                        ({"scope": "all", "duration_unit": "days"}, ["duration"])):
        with pytest.raises(RpcCallError) as refused:
            await bus.rpc.call(rpc.RESTRICT_WORKER, rpc.RestrictWorker(
                actor=ADMIN, worker_id=worker, private_comment="x", **kw))
        assert refused.value.error.code == "restriction_incomplete"
        assert refused.value.error.details == missing


async def test_an_upheld_appeal_of_a_restriction_lifts_it_once(bus: Bus, clock) -> None:
    from contracts.events import AppealDecided

    worker = uid("w")
    made = await bus.rpc.call(rpc.RESTRICT_WORKER, rpc.RestrictWorker(
        actor=ADMIN, worker_id=worker, scope="all", duration_unit="permanent",
        private_comment="suspected bot"))
    assert made.until is None
    decided = AppealDecided(appeal_id=uid("a"), worker_id=worker, kind="restriction",
                            subject_id=made.restriction_id, outcome="upheld",
                            decided_by=MANAGER.user_id, decided_at=clock.now())
    env = await bus.publish(decided, producer="review")
    await bus.publish(decided, producer="review")  # the same decision under another event id
    await bus.publish(decided, producer="review", env=env)  # and redelivered
    await bus.wait_emitted("rules.restriction.lifted", worker)
    await asyncio.sleep(0.4)
    assert len(bus.emitted("rules.restriction.lifted", worker)) == 1
    assert await restrictions_of(bus, worker) == []


async def test_a_manual_skill_is_set_and_removed(bus: Bus) -> None:
    worker = uid("w")
    done = await bus.rpc.call(rpc.SET_WORKER_SKILL, rpc.SetWorkerSkill(
        actor=MANAGER, worker_id=worker, skill="english", value=80))
    assert (done.value, done.set_by) == (80, MANAGER.user_id)
    [skill] = await bus.wait_emitted("rules.skill.set", worker)
    assert (skill["skill"], skill["value"], skill["rule_id"]) == ("english", 80, "manual")
    await bus.rpc.call(rpc.SET_WORKER_SKILL, rpc.SetWorkerSkill(
        actor=MANAGER, worker_id=worker, skill="english", value=None))
    [removed] = await bus.wait_emitted("rules.skill.removed", worker)
    assert removed["skill"] == "english"
