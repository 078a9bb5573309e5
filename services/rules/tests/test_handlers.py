"""The RPC handlers and the sweeper on a fake store: no database, no bus."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.rpc import Actor, RpcReply, RpcSpec
from contracts.rpc import rules as rpc
from rules_service import explain, rules_api, sweeper
from rules_service.actions import ACTIONS
from rules_service.collectors import COLLECTORS
from rules_service.context import RulesContext
from rules_service.domain import Fact, ManualClock
from servicekit.errors import Invalid, NotFound
from servicekit.rpc import dispatch

from .conftest import T0, FakeRulesStore

ADMIN = Actor(user_id="admin-1", role="admin")
MANAGER = Actor(user_id="manager-1", role="manager")
WORKER = Actor(user_id="worker-1", role="worker")
POOL = "p1"
CAPTCHA_FAILS = {"kind": "captcha"}
FAIL_RATE = [{"field": "fail_rate", "operator": ">=", "value": 100}]
SUSPEND = {"type": "restriction", "scope": "pool", "duration": 10, "duration_unit": "minutes",
           "private_comment": "captcha failures"}


def draft(**kw: Any) -> rpc.RuleDraft:
    base: dict[str, Any] = {"scope": "pool", "pool_id": POOL, "collector": CAPTCHA_FAILS,
                            "conditions": FAIL_RATE, "action": SUSPEND}
    return rpc.RuleDraft(**{**base, **kw})


async def create(ctx: RulesContext, **kw: Any) -> rpc.Rule:
    return await rules_api.create_rule(rpc.CreateRule(actor=ADMIN, rule=draft(**kw)), ctx)


async def call(spec: RpcSpec[Any, Any], ctx: RulesContext, body: dict[str, Any]) -> RpcReply:
    """Through the RPC server's dispatch (schema and roles), as the gateway's call arrives."""
    route = next(r for r in rules_api.router.rpcs + explain.router.rpcs if r.spec is spec)
    reply = await dispatch(spec, lambda req: route.handler(req, ctx), json.dumps(body).encode())
    return RpcReply.model_validate_json(reply)


# ----------------------------------------------------------------- create


async def test_create_stores_a_complete_rule_named_after_its_parts(
        ctx: RulesContext, store: FakeRulesStore) -> None:
    rule = await create(ctx)
    assert store.rules[rule.rule_id] == rule
    assert (rule.name, rule.enabled, rule.deleted, rule.created_by) == (
        "captcha -> restriction", True, False, "admin-1")
    assert rule.created_at == rule.updated_at == T0
    assert rule.action == SUSPEND and rule.collector == {"kind": "captcha"}
    assert ctx.db.event_types() == []  # creating a rule announces nothing


async def test_a_new_rule_is_seen_at_once_by_this_process(ctx: RulesContext,
                                                          store: FakeRulesStore) -> None:
    fact = Fact("e1", "captcha", T0, "w1", POOL)
    assert await ctx.rules.matching(store, [fact], ttl_s=3600) == []
    rule = await create(ctx)
    assert [r.rule_id for r in await ctx.rules.matching(store, [fact], ttl_s=3600)] == [
        rule.rule_id]


async def test_an_incomplete_rule_is_refused_with_every_missing_field(
        ctx: RulesContext, store: FakeRulesStore) -> None:
    with pytest.raises(Invalid) as err:
        await create(ctx, pool_id=None, conditions=[{"field": "fail_rate", "operator": ">="}],
                     action={"type": "restriction", "scope": "pool"})
    assert (err.value.code, err.value.status) == ("rule_incomplete", 422)
    assert err.value.details == ["pool_id", "conditions[0].value", "action.duration_unit",
                                 "action.duration", "action.private_comment"]
    assert store.rules == {} and ctx.db.commits == 0


async def test_a_rule_with_a_field_of_another_collector_is_invalid(ctx: RulesContext) -> None:
    with pytest.raises(Invalid) as err:
        await create(ctx, conditions=[{"field": "income_sum_for_24h", "operator": ">",
                                       "value": 1}])
    assert err.value.code == "rule_invalid"
    assert "not a field of captcha" in err.value.details[0]


@pytest.mark.parametrize("kind", sorted(k for k, c in COLLECTORS.items() if c.params))
async def test_a_collector_setting_is_required(ctx: RulesContext, kind: str) -> None:
    spec = COLLECTORS[kind]
    field = next(iter(spec.fields))
    value = next(iter(spec.choices[field])) if spec.fields[field] is str else 1
    with pytest.raises(Invalid) as err:
        await create(ctx, collector={"kind": kind},
                     conditions=[{"field": field, "operator": "==", "value": value}])
    assert err.value.details == [f"collector.{p}" for p in spec.params]


@pytest.mark.parametrize("atype", sorted(a for a, act in ACTIONS.items() if act.params))
async def test_every_parameter_of_an_action_is_required(ctx: RulesContext, atype: str) -> None:
    with pytest.raises(Invalid) as err:
        await create(ctx, action={"type": atype})
    assert err.value.details == [f"action.{p}" for p in ACTIONS[atype].params]


async def test_a_permanent_restriction_needs_no_duration(ctx: RulesContext) -> None:
    rule = await create(ctx, action={"type": "restriction", "scope": "all",
                                     "duration_unit": "permanent", "private_comment": "x"})
    assert "duration" not in rule.action


async def test_set_skill_from_field_takes_a_rate_of_its_collector(ctx: RulesContext) -> None:
    with pytest.raises(Invalid) as err:
        await create(ctx, action={"type": "set_skill_from_field", "skill": "q",
                                  "from_field": "accepted_rate"})
    assert err.value.details == ["action.from_field 'accepted_rate' is not a rate field of "
                                 "captcha"]
    rule = await create(ctx, action={"type": "set_skill_from_field", "skill": "q",
                                     "from_field": "success_rate"})
    assert rule.action["from_field"] == "success_rate"


@pytest.mark.parametrize("amount, currency", [
    (0, "USD"), (-5, "USD"), (10**12 + 1, "USD"), (True, "USD"), ("100", "USD"), (1.5, "USD"),
    (100, "$$$"), (100, "usd"), (100, "XXX")])
def test_a_bonus_the_ledger_could_not_book_is_refused_where_the_rule_is_made(
        amount: Any, currency: Any) -> None:
    with pytest.raises(ValidationError):
        rpc.ActionDraft(type="bonus", amount_minor=amount, currency=currency)


async def test_the_rpc_refuses_a_bad_bonus_with_422_and_stores_nothing(
        ctx: RulesContext, store: FakeRulesStore) -> None:
    body = {"actor": ADMIN.model_dump(), "rule": {
        "scope": "pool", "pool_id": POOL, "collector": CAPTCHA_FAILS, "conditions": FAIL_RATE,
        "action": {"type": "bonus", "amount_minor": 2**63 - 1, "currency": "USD"}}}
    reply = await call(rpc.CREATE_RULE, ctx, body)
    assert reply.error is not None
    assert (reply.error.code, reply.error.status) == ("validation_error", 422)
    body["rule"]["action"] = {"type": "bonus", "amount_minor": 150, "currency": "USD"}
    reply = await call(rpc.CREATE_RULE, ctx, body)
    assert reply.ok and [r.action for r in store.rules.values()] == [
        {"type": "bonus", "amount_minor": 150, "currency": "USD"}]


@pytest.mark.parametrize("body", [
    {"pool_id": "p" * 65}, {"pool_id": "p\x00"}, {"name": "n\x00"},
    {"action": dict(SUSPEND, private_comment="a\x00b")}])
async def test_strings_the_database_cannot_store_are_refused(ctx: RulesContext,
                                                              body: dict[str, Any]) -> None:
    rule = {"scope": "pool", "pool_id": POOL, "collector": CAPTCHA_FAILS,
            "conditions": FAIL_RATE, "action": SUSPEND, **body}
    reply = await call(rpc.CREATE_RULE, ctx, {"actor": ADMIN.model_dump(), "rule": rule})
    assert reply.error is not None and reply.error.status == 422


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
async def test_a_threshold_must_be_a_finite_number(ctx: RulesContext, store: FakeRulesStore,
                                                   value: float) -> None:
    """NaN or infinity would be stored as null and break the rule's every evaluation."""
    rule = {"scope": "pool", "pool_id": POOL, "collector": CAPTCHA_FAILS,
            "conditions": [{"field": "fail_rate", "operator": ">=", "value": value}],
            "action": SUSPEND}
    reply = await call(rpc.CREATE_RULE, ctx, {"actor": ADMIN.model_dump(), "rule": rule})
    assert reply.error is not None and reply.error.status == 422 and store.rules == {}


@pytest.mark.parametrize("spec, actor", [
    (rpc.CREATE_RULE, MANAGER), (rpc.CREATE_RULE, WORKER), (rpc.UPDATE_RULE, MANAGER),
    (rpc.DELETE_RULE, MANAGER), (rpc.LIST_RULES, WORKER), (rpc.GET_RULE, WORKER),
    (rpc.EXPLAIN_WORKER, WORKER), (rpc.BACKTEST, WORKER), (rpc.LIST_RESTRICTIONS, WORKER)])
async def test_roles_are_refused_before_the_handler(ctx: RulesContext, store: FakeRulesStore,
                                                    spec: RpcSpec[Any, Any],
                                                    actor: Actor) -> None:
    bodies: dict[str, dict[str, Any]] = {
        "create_rule": {"rule": {}}, "update_rule": {"rule_id": "r", "enabled": False},
        "delete_rule": {"rule_id": "r"}, "get_rule": {"rule_id": "r"},
        "explain_worker": {"worker_id": "w"}, "backtest": {"rule": {}}}
    body = {"actor": actor.model_dump(), **bodies.get(spec.subject.split(".")[-1], {})}
    reply = await call(spec, ctx, body)
    assert reply.error is not None and reply.error.status == 403
    assert store.calls == []


# ------------------------------------------------------------ read, change


async def test_list_and_get(ctx: RulesContext) -> None:
    a = await create(ctx)
    await create(ctx, pool_id="p2")
    listed = await rules_api.list_rules(rpc.ListRules(actor=MANAGER, pool_id=POOL), ctx)
    assert [r.rule_id for r in listed.items] == [a.rule_id] and listed.total == 1
    assert await rules_api.get_rule(rpc.RuleRef(actor=MANAGER, rule_id=a.rule_id), ctx) == a
    with pytest.raises(NotFound) as err:
        await rules_api.get_rule(rpc.RuleRef(actor=MANAGER, rule_id="nope"), ctx)
    assert err.value.code == "rule_not_found"


async def test_disable_then_delete(ctx: RulesContext, store: FakeRulesStore,
                                   fixed_clock: ManualClock) -> None:
    rule = await create(ctx)
    fixed_clock.advance(minutes=1)
    off = await rules_api.update_rule(rpc.UpdateRule(actor=ADMIN, rule_id=rule.rule_id,
                                                     enabled=False), ctx)
    assert off.enabled is False and off.updated_at == T0 + timedelta(minutes=1)
    assert await store.enabled_rules() == []
    gone = await rules_api.delete_rule(rpc.RuleRef(actor=ADMIN, rule_id=rule.rule_id), ctx)
    assert (gone.deleted, gone.enabled) == (True, False)
    listed = await rules_api.list_rules(rpc.ListRules(actor=MANAGER), ctx)
    assert listed.total == 0
    with_deleted = await rules_api.list_rules(rpc.ListRules(actor=MANAGER,
                                                            include_deleted=True), ctx)
    assert with_deleted.total == 1


async def test_changing_a_deleted_or_unknown_rule_is_not_found(ctx: RulesContext) -> None:
    rule = await create(ctx)
    await rules_api.delete_rule(rpc.RuleRef(actor=ADMIN, rule_id=rule.rule_id), ctx)
    with pytest.raises(NotFound) as err:
        await rules_api.update_rule(rpc.UpdateRule(actor=ADMIN, rule_id=rule.rule_id,
                                                   enabled=True), ctx)
    assert err.value.message == f"rule {rule.rule_id} was deleted"
    with pytest.raises(NotFound) as err:
        await rules_api.delete_rule(rpc.RuleRef(actor=ADMIN, rule_id="nope"), ctx)
    assert err.value.message == "no rule nope"


# ---------------------------------------------------------------- explain


def captcha_fact(i: int, correct: bool, worker: str = "w1", pool: str = POOL) -> Fact:
    return Fact(f"e{i}", "captcha", T0 + timedelta(seconds=i), worker, pool, "pr1", None,
                {"correct": correct})


async def test_explain_lists_firings_with_the_events_counted(ctx: RulesContext,
                                                             store: FakeRulesStore) -> None:
    rule = await create(ctx, collector={"kind": "captcha", "history_size": 2})
    await store.record_facts([captcha_fact(1, True), captcha_fact(2, False),
                              captcha_fact(3, False), captcha_fact(4, False, worker="w2")])
    store.firings.append({
        "firing_id": "f1", "rule_id": rule.rule_id, "worker_id": "w1", "pool_id": POOL,
        "project_id": "pr1", "fired_at": T0, "action": rule.action,
        "outcome": "rules.restriction.applied",
        "facts": {"collector": rule.collector, "values": {"fail_rate": 100.0},
                  "conditions": rule.conditions, "history_size": 2, "event_ids": [],
                  "pool_key": POOL, "trigger_seq": 3}})
    store.restrictions["r1"] = {
        "restriction_id": "r1", "rule_id": rule.rule_id, "firing_id": "f1", "worker_id": "w1",
        "scope": "pool", "pool_id": POOL, "project_id": None, "pool_key": POOL,
        "private_comment": "c", "applied_at": T0, "until": None, "lifted_at": None}
    out = await explain.explain_worker(rpc.ExplainWorker(actor=MANAGER, worker_id="w1"), ctx)
    assert out.total == 1
    assert out.firings[0].facts["event_ids"] == ["e2", "e3"]  # the last two, up to e3
    assert [r.restriction_id for r in out.restrictions] == ["r1"]
    other = await explain.explain_worker(rpc.ExplainWorker(actor=MANAGER, worker_id="w1",
                                                           rule_id="another"), ctx)
    assert other.total == 0


async def test_list_restrictions_shows_active_ones_by_default(ctx: RulesContext,
                                                              store: FakeRulesStore) -> None:
    for rid, lifted in (("r1", None), ("r2", T0)):
        store.restrictions[rid] = {
            "restriction_id": rid, "rule_id": "x", "firing_id": f"f-{rid}", "worker_id": "w1",
            "scope": "pool", "pool_id": POOL, "project_id": None, "pool_key": POOL,
            "private_comment": "c", "applied_at": T0, "until": None, "lifted_at": lifted}
    active = await explain.list_restrictions(rpc.ListRestrictions(actor=MANAGER), ctx)
    assert [r.restriction_id for r in active.items] == ["r1"]
    every = await explain.list_restrictions(rpc.ListRestrictions(actor=MANAGER,
                                                                 active_only=False), ctx)
    assert every.total == 2


async def test_backtest_replays_recorded_facts_and_acts_on_nothing(
        ctx: RulesContext, store: FakeRulesStore) -> None:
    await store.record_facts([captcha_fact(1, False), captcha_fact(2, True, worker="w2"),
                              captcha_fact(3, False, pool="p9")])
    out = await explain.backtest(rpc.Backtest(actor=MANAGER, rule=draft()), ctx)
    assert (out.events_scanned, out.truncated, out.workers) == (2, False, ["w1"])
    assert out.hits[0].event_ids == ["e1"] and out.hits[0].values["fail_rate"] == 100.0
    assert ctx.db.event_types() == [] and store.restrictions == {} and store.firings == []


async def test_backtest_says_when_it_stopped_at_its_limit(ctx: RulesContext,
                                                          store: FakeRulesStore) -> None:
    ctx.settings.backtest_max_facts = 2
    await store.record_facts([captcha_fact(i, True) for i in range(3)])
    out = await explain.backtest(rpc.Backtest(actor=MANAGER, rule=draft()), ctx)
    assert (out.events_scanned, out.truncated) == (2, True)


async def test_backtest_refuses_an_incomplete_draft(ctx: RulesContext) -> None:
    with pytest.raises(Invalid) as err:
        await explain.backtest(rpc.Backtest(actor=MANAGER, rule=rpc.RuleDraft()), ctx)
    assert err.value.code == "rule_incomplete"


# ---------------------------------------------------------------- sweeper


async def test_the_sweeper_lifts_due_restrictions_and_starts_the_history_over(
        ctx: RulesContext, store: FakeRulesStore, fixed_clock: ManualClock) -> None:
    for rid, until in (("r-due", T0 + timedelta(minutes=5)), ("r-later", T0 + timedelta(days=1)),
                       ("r-forever", None)):
        store.restrictions[rid] = {
            "restriction_id": rid, "rule_id": f"rule-{rid}", "firing_id": f"f-{rid}",
            "worker_id": "w1", "scope": "pool", "pool_id": POOL, "project_id": None,
            "pool_key": POOL, "private_comment": "c", "applied_at": T0, "until": until,
            "lifted_at": None}
    kept = '{"c": {"s": 3}}'
    store.states[("w1", POOL)] = {"rule-r-due": '{"c": {"f": 5}, "rid": "r-due"}',
                                  "other-rule": kept}
    assert await sweeper.lift_due(ctx) == 0  # nothing is due yet
    fixed_clock.advance(minutes=6)
    assert await sweeper.lift_due(ctx) == 1
    assert store.restrictions["r-due"]["lifted_at"] == T0 + timedelta(minutes=6)
    assert store.restrictions["r-later"]["lifted_at"] is None
    assert store.states[("w1", POOL)] == {"rule-r-due": '{"c":{}}', "other-rule": kept}
    assert ctx.db.event_types() == ["rules.restriction.lifted"]
    assert ctx.db.events[0].data["restriction_id"] == "r-due"
    await sweeper.lift_restrictions(ctx)  # the periodic job: nothing more is due
    assert ctx.db.event_types() == ["rules.restriction.lifted"]
