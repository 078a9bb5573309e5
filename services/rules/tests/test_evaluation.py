"""The batch consumer on a fake store: every collector kind fires, every action kind emits
its event, a batch is one unit (a fixed number of store calls), earnings come from the
ledger only."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, get_args

import orjson
import pytest

from contracts.envelope import Envelope, new_envelope
from contracts.events import (
    CaptchaAnswered,
    Event,
    LedgerCredited,
    ReviewAccepted,
    ReviewRejected,
    TaskAccessRevoked,
    TaskSkipped,
    TaskSubmitted,
    parse_event,
)
from contracts.rpc import Actor
from contracts.rpc import rules as rpc
from rules_service import facts, rules_api
from rules_service.actions import ACTIONS
from rules_service.collectors import COLLECTORS
from rules_service.context import RulesContext
from rules_service.domain import OPERATORS

from .conftest import T0, FakeRulesStore

ADMIN = Actor(user_id="admin-1", role="admin")
POOL, PROJECT = "p1", "pr1"


async def add_rule(ctx: RulesContext, kind: str, conditions: list[tuple[str, str, Any]],
                   action: dict[str, Any], *, scope: str = "pool", pool_id: str = POOL,
                   **collector: Any) -> rpc.Rule:
    return await rules_api.create_rule(rpc.CreateRule(actor=ADMIN, rule=rpc.RuleDraft(
        scope=scope, pool_id=pool_id if scope == "pool" else None,
        project_id=PROJECT if scope == "project" else None,
        collector={"kind": kind, **collector},
        conditions=[{"field": f, "operator": o, "value": v} for f, o, v in conditions],
        action=action)), ctx)


async def feed(ctx: RulesContext, *events: Event) -> list[Envelope]:
    """One fetched batch through the consumer, in one unit of work."""
    envs = [new_envelope(e, producer="test") for e in events]
    async with ctx.db.consumer_unit() as uow:
        await facts.on_events([(e, env) for e, env in zip(events, envs, strict=True)], uow, ctx)
    return envs


def emitted(ctx: RulesContext, type_: str) -> list[dict[str, Any]]:
    return [e.data for e in ctx.db.events if e.type == type_]


def ref(worker: str, task: str, assignment: str | None = None,
        pool: str = POOL) -> dict[str, Any]:
    return {"assignment_id": assignment or str(uuid.uuid4()), "task_id": task,
            "pool_id": pool, "project_id": PROJECT, "worker_id": worker}


def submitted(worker: str = "w1", task: str = "t1", *, seconds: float = 30.0,
              label: str = "cat", overlap: int = 1, control: bool | None = None,
              assignment: str | None = None, review_mode: str = "manual",
              pool: str = POOL) -> TaskSubmitted:
    return TaskSubmitted(**ref(worker, task, assignment, pool), answers={"label": label},
                         taken_at=T0 - timedelta(seconds=seconds), submitted_at=T0,
                         overlap=overlap, is_control=control is not None,
                         control_correct=control, review_mode=review_mode)


def decided(cls: type[ReviewAccepted | ReviewRejected], assignment: str,
            worker: str = "w1") -> Event:
    return cls(**ref(worker, "t1", assignment), decided_by="m", decided_at=T0)


def credited(amount: int, worker: str = "w1", kind: str = "assignment") -> LedgerCredited:
    return LedgerCredited(transfer_id=str(uuid.uuid4()), worker_id=worker, pool_id=POOL,
                          project_id=PROJECT, assignment_id=str(uuid.uuid4()), kind=kind,
                          amount_minor=amount, currency="USD", credited_at=T0)


def captcha(correct: bool, worker: str = "w1") -> CaptchaAnswered:
    return CaptchaAnswered(challenge_id=str(uuid.uuid4()), worker_id=worker, pool_id=POOL,
                           project_id=PROJECT, correct=correct, answered_at=T0)


SKILL = {"type": "set_skill", "skill": "flagged", "value": 1}

# collector kind -> (collector settings, conditions, batches of events, the worker it fires on)
Scenario = tuple[dict[str, Any], list[tuple[str, str, Any]], list[list[Event]], str]
COLLECTOR_SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "income": lambda: ({}, [("income_sum_for_24h", ">", 500)],
                       [[credited(300), credited(1000, kind="bonus")], [credited(300)]], "w1"),
    "captcha": lambda: ({"history_size": 5}, [("stored_results_count", ">=", 2),
                                              ("fail_rate", ">=", 50)],
                        [[captcha(True), captcha(False)]], "w1"),
    "golden_set": lambda: ({}, [("golden_set_answers_count", ">=", 2),
                                ("golden_set_incorrect_answers_rate", ">", 50)],
                           [[submitted(control=False, task="c1"),
                             submitted(control=False, task="c2")]], "w1"),
    "majority_vote": lambda: ({"answer_threshold": 2},
                              [("total_answers_count", ">=", 1),
                               ("incorrect_answers_rate", ">=", 100)],
                              [[submitted("a", overlap=3), submitted("b", overlap=3)],
                               [submitted("bad", label="dog", overlap=3)]], "bad"),
    "fast_answers": lambda: ({"fast_submit_threshold_seconds": 5},
                             [("fast_submitted_count", ">=", 2)],
                             [[submitted(seconds=1, task="t1"), submitted(seconds=60, task="t2"),
                               submitted(seconds=2, task="t3")]], "w1"),
    "submitted_answers": lambda: ({}, [("submitted_count_24h", ">=", 3)],
                                  [[submitted(task=f"t{i}") for i in range(3)]], "w1"),
    "skipped_in_row": lambda: ({}, [("skipped_in_row_count", ">=", 2)],
                               [[TaskSkipped(**ref("w1", "t1"), skipped_at=T0)],
                                [TaskSkipped(**ref("w1", "t2"), skipped_at=T0)]], "w1"),
    "acceptance_rate": lambda: ({}, [("total_reviewed_count", ">=", 2),
                                     ("rejected_rate", ">=", 100)],
                                [[decided(ReviewRejected, "a1"), decided(ReviewRejected, "a2")]],
                                "w1"),
    "assessments": lambda: ({}, [("assessment_event", "==", "accept_after_reject")],
                            [[submitted(assignment="a1")], [decided(ReviewRejected, "a1")],
                             [decided(ReviewAccepted, "a1")]], "w1"),
    "access_revoked": lambda: ({}, [("access_revoked_reason", "==", "skill_change")],
                               [[TaskAccessRevoked(worker_id="w1", pool_id=POOL,
                                                   project_id=PROJECT, skill="english",
                                                   revoked_at=T0)]], "w1"),
}


def test_every_collector_kind_of_the_contract_is_registered_and_tested() -> None:
    assert set(get_args(rpc.CollectorKind)) == set(COLLECTORS) == set(COLLECTOR_SCENARIOS)
    assert set(get_args(rpc.ActionType)) == set(ACTIONS)
    assert set(get_args(rpc.Operator)) == set(OPERATORS)


@pytest.mark.parametrize("kind", sorted(COLLECTOR_SCENARIOS))
async def test_each_collector_kind_fires(ctx: RulesContext, store: FakeRulesStore,
                                         kind: str) -> None:
    settings, conditions, batches, worker = COLLECTOR_SCENARIOS[kind]()
    rule = await add_rule(ctx, kind, conditions, SKILL, **settings)
    for batch in batches[:-1]:
        await feed(ctx, *batch)
        assert emitted(ctx, "rules.skill.set") == []
    last = await feed(ctx, *batches[-1])
    [skill] = emitted(ctx, "rules.skill.set")
    assert (skill["worker_id"], skill["rule_id"], skill["skill"], skill["value"]) == (
        worker, rule.rule_id, "flagged", 1)
    [firing] = store.firings
    assert firing["outcome"] == "rules.skill.set"
    assert firing["facts"]["trigger_event_id"] in {env.event_id for env in last}
    assert firing["facts"]["conditions"] == rule.conditions
    # the event names the event that made the rule fire
    [env] = [e for e in ctx.db.events if e.type == "rules.skill.set"]
    assert env.causation_id == firing["facts"]["trigger_event_id"]


async def test_a_rule_fires_once_per_crossing(ctx: RulesContext) -> None:
    await add_rule(ctx, "captcha", [("fail_rate", ">=", 100)], SKILL)
    await feed(ctx, captcha(False), captcha(False))
    await feed(ctx, captcha(False))
    assert len(emitted(ctx, "rules.skill.set")) == 1
    await feed(ctx, captcha(True), captcha(False))  # the rate dropped below: it may fire again
    await feed(ctx, *[captcha(False) for _ in range(20)])
    assert len(emitted(ctx, "rules.skill.set")) == 1  # still under 100 % over all answers


ON_CAPTCHA_FAILURE = [("stored_results_count", ">=", 1), ("fail_rate", ">=", 100)]

# action type -> (its parameters, events that come before the failed captcha, the event)
ACTION_SCENARIOS: dict[str, tuple[dict[str, Any], list[Event], str]] = {
    "restriction": ({"scope": "pool", "duration": 1, "duration_unit": "hours",
                     "private_comment": "robot"}, [], "rules.restriction.applied"),
    "set_skill": ({"skill": "s", "value": 7}, [], "rules.skill.set"),
    "set_skill_from_field": ({"skill": "s", "from_field": "fail_rate"}, [], "rules.skill.set"),
    "accept_all": ({}, [], "rules.assignments.accept_all"),
    "reject_all": ({"public_comment": "no"}, [submitted(review_mode="manual")],
                   "rules.assignments.reject_all"),
    "change_overlap": ({"add": 2}, [submitted(task="t7"), submitted(task="t3")],
                       "rules.overlap.changed"),
    "bonus": ({"amount_minor": 150, "currency": "EUR"}, [], "rules.bonus.granted"),
}


@pytest.mark.parametrize("atype", sorted(ACTION_SCENARIOS))
async def test_each_action_kind_emits_its_event(ctx: RulesContext, store: FakeRulesStore,
                                                atype: str) -> None:
    assert set(ACTION_SCENARIOS) == set(ACTIONS)
    params, before, event_type = ACTION_SCENARIOS[atype]
    rule = await add_rule(ctx, "captcha", ON_CAPTCHA_FAILURE, {"type": atype, **params})
    if before:
        await feed(ctx, *before)
    await feed(ctx, captcha(False))
    [data] = emitted(ctx, event_type)
    event = parse_event(event_type, 1, data)
    assert isinstance(event, ACTIONS[atype].event)
    assert (data["rule_id"], data["worker_id"]) == (rule.rule_id, "w1")
    expected: dict[str, Any] = {
        "restriction": {"scope": "pool", "pool_id": POOL, "private_comment": "robot",
                        "until": T0 + timedelta(hours=1)},
        "set_skill": {"skill": "s", "value": 7},
        "set_skill_from_field": {"skill": "s", "value": 100},
        "accept_all": {"pool_id": POOL},
        "reject_all": {"pool_id": POOL, "public_comment": "no"},
        "change_overlap": {"pool_id": POOL, "task_ids": ["t3", "t7"], "add": 2},
        "bonus": {"bonus_id": f"bonus-{data['firing_id']}", "pool_id": POOL,
                  "amount_minor": 150, "currency": "EUR"},
    }[atype]
    assert {k: getattr(event, k) for k in expected} == expected
    assert [f["outcome"] for f in store.firings] == [event_type]


async def test_a_restriction_is_stored_and_revokes_access_for_reexecution(
        ctx: RulesContext, store: FakeRulesStore) -> None:
    await add_rule(ctx, "access_revoked", [("access_revoked_reason", "==", "restriction")],
                   {"type": "change_overlap", "add": 1}, pool_id="p2")
    await add_rule(ctx, "captcha", ON_CAPTCHA_FAILURE,
                   {"type": "restriction", "scope": "project", "duration_unit": "permanent",
                    "private_comment": "robot"}, scope="project")
    await feed(ctx, submitted(task="x1", pool="p2"), submitted(task="x2", pool="p2"))
    await feed(ctx, captcha(False))
    [applied] = emitted(ctx, "rules.restriction.applied")
    assert (applied["scope"], applied["project_id"], applied["until"]) == (
        "project", PROJECT, None)
    [row] = store.restrictions.values()
    assert row["restriction_id"] == applied["restriction_id"] and row["pool_key"] == POOL
    # the worker lost access to both pools of the project: p2's re-execution rule acts
    revoked = [f for _, f in store.facts if f.kind == "access_revoked"]
    assert sorted(f.pool_id for f in revoked) == [POOL, "p2"]
    [changed] = emitted(ctx, "rules.overlap.changed")
    assert (changed["pool_id"], changed["task_ids"]) == ("p2", ["x1", "x2"])
    # not restricted again while this rule's restriction is active
    await feed(ctx, captcha(False))
    assert len(emitted(ctx, "rules.restriction.applied")) == 1


@pytest.mark.parametrize("atype, before, reason", [
    ("reject_all", [submitted(review_mode="auto")], "no manual review"),
    ("change_overlap", [], "answered no task")])
async def test_an_action_with_nothing_to_act_on_is_skipped_and_recorded(
        ctx: RulesContext, store: FakeRulesStore, atype: str, before: list[Event],
        reason: str) -> None:
    await add_rule(ctx, "captcha", ON_CAPTCHA_FAILURE,
                   {"type": atype, **ACTION_SCENARIOS[atype][0]})
    if before:
        await feed(ctx, *before)
    await feed(ctx, captcha(False))
    assert ctx.db.event_types() == []
    [firing] = store.firings
    assert firing["outcome"].startswith("skipped:") and reason in firing["outcome"]


async def test_a_batch_is_evaluated_as_one_unit(ctx: RulesContext,
                                                store: FakeRulesStore) -> None:
    await add_rule(ctx, "captcha", ON_CAPTCHA_FAILURE, SKILL)
    await add_rule(ctx, "majority_vote", [("total_answers_count", ">=", 1)], SKILL,
                   answer_threshold=2)
    await add_rule(ctx, "acceptance_rate", [("total_reviewed_count", ">=", 1)], SKILL)
    events: list[Event] = []
    for i in range(30):
        w = f"w{i % 7}"
        events += [captcha(i % 3 == 0, worker=w), submitted(w, f"t{i % 5}", overlap=3),
                   decided(ReviewAccepted, str(uuid.uuid4()), worker=w),
                   credited(10, worker=w)]
    store.calls.clear()
    commits = ctx.db.commits
    await feed(ctx, *events)
    assert emitted(ctx, "rules.skill.set")  # rules fired inside the batch
    for name in ("add_submissions", "lock_votes", "lock_states", "record_facts", "save"):
        assert store.called(name) == 1, name
    assert store.called("set_submission_statuses") <= 1  # none here: unknown submissions
    assert ctx.db.commits == commits + 1


@pytest.mark.parametrize("overlap,last", [(2, ["w2"]), (3, ["w2", "w3"])])
async def test_a_majority_counts_for_earlier_voters_whose_rows_it_loads_and_keeps(
        ctx: RulesContext, store: FakeRulesStore, overlap: int, last: list[str]) -> None:
    """The batch that reaches a task's majority (by one answer or by several) counts it
    for the voters of earlier batches: it loads and locks their state rows too, so each of
    them keeps its other rules' states (a row holds every rule of the pool) and adds the
    outcome to its own."""
    cap = await add_rule(ctx, "captcha", ON_CAPTCHA_FAILURE, SKILL)
    maj = await add_rule(ctx, "majority_vote", [("total_answers_count", ">=", 5)], SKILL,
                         answer_threshold=2)
    await feed(ctx, captcha(False, worker="w1"), submitted("w1", "t1", overlap=overlap))
    before = dict(store.states[("w1", POOL)])
    assert set(before) == {cap.rule_id}  # no majority yet: w1 not counted
    store.calls.clear()
    await feed(ctx, *(submitted(w, "t1", overlap=overlap) for w in last))  # all agree
    assert store.calls.index("lock_votes") < store.calls.index("lock_states")
    row = store.states[("w1", POOL)]
    assert row[cap.rule_id] == before[cap.rule_id]
    for w in ("w1", *last):
        assert orjson.loads(store.states[(w, POOL)][maj.rule_id])["c"] == {"c": 1}, w


async def test_events_without_rules_are_still_recorded_for_backtests(
        ctx: RulesContext, store: FakeRulesStore) -> None:
    await feed(ctx, captcha(False), submitted(), TaskSkipped(**ref("w1", "t2"), skipped_at=T0))
    assert [f.kind for _, f in store.facts] == ["captcha", "submitted", "skipped"]
    assert store.called("lock_votes") == store.called("lock_states") == 0 and store.firings == []
    assert ctx.db.event_types() == []


async def test_earnings_come_from_the_ledger_not_from_old_price_fields(
        ctx: RulesContext, store: FakeRulesStore) -> None:
    """An old producer's submissions and decisions still carrying a price count no
    earnings: only ledger.credited does (and not its bonuses)."""
    await add_rule(ctx, "income", [("income_sum_for_24h", ">", 0)], SKILL)
    old = {**ref("w1", "t1", "a1"), "answers": {}, "taken_at": T0.isoformat(),
           "submitted_at": T0.isoformat(), "price_minor": 10**6, "currency": "USD"}
    sub = parse_event("task.submitted", 1, old)
    acc = parse_event("review.accepted", 1, {**ref("w1", "t1", "a1"), "decided_by": "m",
                                             "decided_at": T0.isoformat(),
                                             "price_minor": 10**6, "currency": "USD"})
    assert not hasattr(sub, "price_minor") and not hasattr(acc, "price_minor")
    await feed(ctx, sub, acc, credited(500, kind="bonus"))
    assert emitted(ctx, "rules.skill.set") == []
    await feed(ctx, credited(1))
    [skill] = emitted(ctx, "rules.skill.set")
    assert store.firings[0]["facts"]["values"] == {"income_sum_for_24h": 1}
    assert skill["worker_id"] == "w1"


async def test_a_review_decision_knows_the_submissions_previous_status(
        ctx: RulesContext, store: FakeRulesStore) -> None:
    await feed(ctx, submitted(assignment="a1"), decided(ReviewRejected, "a1"))
    await feed(ctx, decided(ReviewAccepted, "a1"), decided(ReviewAccepted, "unknown"))
    reviews = [(f.kind, f.data["prev_status"]) for _, f in store.facts
               if f.kind in ("accepted", "rejected")]
    assert reviews == [("rejected", "pending"), ("accepted", "rejected"), ("accepted", None)]
    assert store.submissions["a1"]["status"] == "accepted"


async def test_a_disabled_rule_stops_acting(ctx: RulesContext) -> None:
    rule = await add_rule(ctx, "captcha", ON_CAPTCHA_FAILURE, SKILL)
    await rules_api.update_rule(rpc.UpdateRule(actor=ADMIN, rule_id=rule.rule_id,
                                               enabled=False), ctx)
    await feed(ctx, captcha(False))
    assert emitted(ctx, "rules.skill.set") == []


async def test_a_batch_that_fails_records_no_event(ctx: RulesContext, store: FakeRulesStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    await add_rule(ctx, "captcha", ON_CAPTCHA_FAILURE, SKILL)

    async def broken(*args: Any) -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(store, "save", broken)
    with pytest.raises(ConnectionError):
        await feed(ctx, captcha(False))
    assert ctx.db.events == [] and ctx.db.rollbacks == 1  # the consumer retries the batch


async def test_sandbox_events_make_no_fact_state_firing_or_action(
        ctx: RulesContext, store: FakeRulesStore) -> None:
    """Staff trying a sandbox pool: a rule that fires on the first acceptance (and one on
    the first submission) stays silent, and nothing of theirs is kept."""
    await add_rule(ctx, "acceptance_rate", [("total_reviewed_count", ">=", 1)],
                   {"type": "restriction", "scope": "all", "duration_unit": "permanent",
                    "private_comment": "x"})
    await add_rule(ctx, "submitted_answers", [("submitted_count_24h", ">=", 1)], SKILL)
    sb = {"sandbox": True}
    await feed(ctx, submitted("owner", assignment="sb1").model_copy(update=sb),
               TaskSkipped(**ref("owner", "t2"), skipped_at=T0).model_copy(update=sb))
    await feed(ctx, decided(ReviewAccepted, "sb1", "owner").model_copy(update=sb),
               decided(ReviewRejected, "sb2", "owner").model_copy(update=sb))
    assert ctx.db.events == [] and store.firings == [] and store.restrictions == {}
    assert store.facts == [] and store.states == {} and store.submissions == {}
    # the same events outside a sandbox fire both rules
    await feed(ctx, submitted("w1", assignment="a1"))
    await feed(ctx, decided(ReviewAccepted, "a1", "w1"))
    assert {e.type for e in ctx.db.events} == {"rules.skill.set", "rules.restriction.applied"}


def test_the_consumers_filter_on_every_event_that_makes_a_fact_and_no_other() -> None:
    """The durables are declared on the subjects of the events that make facts: every such
    event reaches a consumer, and the rest of the streams (task.taken, one per take) is not
    delivered to this service at all."""
    from contracts.events import spec_for_model
    from servicekit.consumer import EventConsumer

    declared = {r.name: EventConsumer(service="rules", name=r.name, subject=r.subject,
                                      handler=r.handler).subjects
                for r in facts.router.consumers}
    assert declared == {
        "task-events": ("task.access_revoked", "task.captcha_answered", "task.skipped",
                        "task.submitted"),
        "review-events": ("review.accepted", "review.rejected"),
        "ledger-credited": ("ledger.credited",)}
    making = {spec_for_model(m).type for m in [*facts.FACT_OF, *facts.REVIEWED]}
    assert making == {s for subjects in declared.values() for s in subjects}
