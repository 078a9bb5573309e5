"""Pure rule logic: collectors, conditions, once-per-crossing, resets (no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from rules_service import domain
from rules_service.domain import Engine, Fact, RuleDef

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def rule(kind: str, conditions, action, *, scope="pool", pool_id="p1", project_id=None,
         rule_id="r1", **collector) -> RuleDef:
    return RuleDef(rule_id=rule_id, scope=scope, pool_id=pool_id if scope == "pool" else None,
                   project_id=project_id, collector={"kind": kind, **collector},
                   conditions=[{"field": f, "operator": o, "value": v} for f, o, v in conditions],
                   action=action)


SUSPEND = {"type": "restriction", "scope": "pool", "duration": 10, "duration_unit": "minutes",
           "private_comment": "too much"}
_n = 0


def fact(kind: str, worker="w1", pool="p1", project="pr1", at=T0, task=None, **data) -> Fact:
    global _n
    _n += 1
    return Fact(f"e{_n}", kind, at, worker, pool, project, task, data)


def credited(amount, **kw) -> Fact:
    return fact("credited", amount_minor=amount, credit_kind="assignment", **kw)


def test_missing_fields_are_listed() -> None:
    missing, _ = domain.validate_rule({"scope": "pool", "collector": {"kind": "captcha"},
                                       "conditions": [{"field": "success_rate"}],
                                       "action": {"type": "restriction", "scope": "all"}})
    assert missing == ["pool_id", "conditions[0].operator", "conditions[0].value",
                       "action.duration_unit", "action.duration", "action.private_comment"]
    missing, problems = domain.validate_rule({
        "scope": "pool", "pool_id": "p", "collector": {"kind": "captcha"},
        "conditions": [{"field": "income_sum_for_24h", "operator": ">", "value": 1}],
        "action": {"type": "restriction", "scope": "all", "duration_unit": "permanent",
                   "private_comment": "x"}})
    assert missing == [] and "not a field of captcha" in problems[0]


def test_earnings_counted_per_pool_even_for_project_rule() -> None:
    r = rule("income", [("income_sum_for_24h", ">", 500)], SUSPEND, scope="project",
             project_id="pr1")
    e = Engine([r], {})
    hits = [h for p in ("p1", "p2", "p3") for h in e.apply(credited(200, pool=p))]
    hits += [h for p in ("p1", "p2", "p3") for h in e.apply(credited(200, pool=p))]
    assert hits == []  # 4.00 in each of three pools: no pool crossed 5.00
    hits = e.apply(credited(200, pool="p2"))
    assert [(h.worker_id, h.pool_id) for h in hits] == [("w1", "p2")]
    assert hits[0].values == {"income_sum_for_24h": 600}


def test_income_window_slides_out_after_24_hours() -> None:
    r = rule("income", [("income_sum_for_24h", ">", 500)], SUSPEND)
    e = Engine([r], {})
    assert not e.apply(credited(400, at=T0))
    assert not e.apply(credited(400, at=T0 + timedelta(hours=25)))
    assert e.apply(credited(200, at=T0 + timedelta(hours=26)))


def test_platform_rule_counts_across_pools() -> None:
    r = rule("income", [("income_sum_for_24h", ">", 500)], SUSPEND, scope="platform")
    e = Engine([r], {})
    assert not e.apply(credited(300, pool="p1"))
    hits = e.apply(credited(300, pool="p9", project="other"))
    assert hits and hits[0].pool_key == domain.PLATFORM_POOL_KEY


def test_captcha_fires_once_per_crossing_and_history_ring() -> None:
    block = dict(SUSPEND, scope="all", duration=10, duration_unit="days")
    r = rule("captcha", [("stored_results_count", ">=", 5), ("success_rate", "<", 65)], block,
             history_size=5)
    e = Engine([r], {})
    results = [True, False, False, True, False]
    hits = [h for ok in results for h in e.apply(fact("captcha", correct=ok))]
    assert len(hits) == 1 and hits[0].values["success_rate"] == 40.0
    assert hits[0].restriction_until == T0 + timedelta(days=10)
    assert not e.apply(fact("captcha", correct=False))  # already restricted: no re-fire
    st = e.states[("r1", "w1", "p1")]
    assert st["r"] == "ffsff" and st["c"] == {"s": 1, "f": 4}


def test_history_starts_over_after_temporary_restriction() -> None:
    r = rule("captcha", [("stored_results_count", ">=", 2), ("fail_rate", ">=", 100)], SUSPEND)
    e = Engine([r], {})
    e.apply(fact("captcha", correct=False))
    assert e.apply(fact("captcha", correct=False))
    later = T0 + timedelta(minutes=11)
    assert not e.apply(fact("captcha", correct=False, at=later))  # new history: 1 answer
    assert e.states[("r1", "w1", "p1")]["c"] == {"f": 1}
    assert e.apply(fact("captcha", correct=False, at=later))


def test_skill_from_golden_set_rate() -> None:
    r = rule("golden_set", [("golden_set_answers_count", ">=", 3)],
             {"type": "set_skill_from_field", "skill": "quality",
              "from_field": "correct_answers_rate"}, history_size=10)
    e = Engine([r], {})
    outs = []
    for correct in (True, True, False, True):
        outs += e.apply(fact("submitted", is_control=True, control_correct=correct))
    outs += e.apply(fact("submitted", is_control=False))  # not a control task: rate unchanged
    assert [round(h.values["correct_answers_rate"]) for h in outs] == [67, 75]


def test_majority_vote_counts_each_voter_when_task_completes() -> None:
    r = rule("majority_vote", [("total_answers_count", ">=", 2),
                               ("incorrect_answers_rate", ">", 50)],
             {"type": "set_skill", "skill": "mv", "value": 0}, answer_threshold=2)
    e = Engine([r], {})
    hits = []
    for task in ("t1", "t2"):
        for w, ans in (("a", "cat"), ("b", "cat"), ("bad", "dog")):
            hits += e.apply(fact("submitted", worker=w, task=task, overlap=3,
                                 answer_key=ans))
    assert [h.worker_id for h in hits] == ["bad"]
    assert hits[0].values["incorrect_answers_rate"] == 100.0


def test_a_batch_loads_the_earlier_voters_rows_only_where_its_answers_may_decide() -> None:
    """Earlier voters' state rows are named while the task's majority is still open and
    the batch's answers can bring the task to its overlap; not once it is decided."""
    r = rule("majority_vote", [("total_answers_count", ">=", 2)],
             {"type": "set_skill", "skill": "mv", "value": 0}, answer_threshold=2)
    e = Engine([r], {}, {("r1", "t1"): {"a": {"a": "cat"}, "m": None},
                         ("r1", "t2"): {"a": {"a": "cat", "b": "cat"}, "m": "cat"}})

    def answer(w: str, task: str, overlap: int) -> Fact:
        return fact("submitted", worker=w, task=task, overlap=overlap, answer_key="cat")

    assert e.row_keys([answer("c", "t1", 2)]) == {("c", "p1"), ("a", "p1")}
    assert e.row_keys([answer("c", "t1", 3)]) == {("c", "p1")}  # one answer short
    assert e.row_keys([answer("c", "t1", 3), answer("d", "t1", 3)]) == {
        ("c", "p1"), ("d", "p1"), ("a", "p1")}
    assert e.row_keys([answer("c", "t2", 2)]) == {("c", "p1")}  # decided: counts c alone
    assert e.row_keys([answer("c", "t3", 1)]) == {("c", "p1")}  # no earlier votes


def test_fast_answers_and_skips_in_a_row() -> None:
    fast = rule("fast_answers", [("total_submitted_count", ">=", 3),
                                 ("fast_submitted_count", ">=", 2)],
                {"type": "reject_all", "public_comment": "too fast"},
                fast_submit_threshold_seconds=5, history_size=5)
    skips = rule("skipped_in_row", [("skipped_in_row_count", ">=", 2)], SUSPEND, rule_id="r2")
    e = Engine([fast, skips], {})
    hits = []
    for d in (2.0, 30.0, 1.0):
        hits += e.apply(fact("submitted", duration_s=d))
    assert [h.rule.rule_id for h in hits] == ["r1"]
    assert not e.apply(fact("skipped"))
    assert not e.apply(fact("submitted", duration_s=40.0))  # a submit resets the run
    assert not e.apply(fact("skipped"))
    assert [h.rule.rule_id for h in e.apply(fact("skipped"))] == ["r2"]


def test_assessments_accept_after_reject() -> None:
    r = rule("assessments", [("assessment_event", "==", "accept_after_reject")],
             {"type": "bonus", "amount_minor": 100, "currency": "USD"})
    e = Engine([r], {})
    assert not e.apply(fact("submitted"))
    assert not e.apply(fact("rejected", prev_status="pending"))
    hits = e.apply(fact("accepted", prev_status="rejected"))
    assert len(hits) == 1 and hits[0].values["accepted_submitted_count"] == 1


def test_firing_ids_are_deterministic() -> None:
    a = domain.firing_id_for("r", "w", "p", "e")
    assert a == domain.firing_id_for("r", "w", "p", "e") != domain.firing_id_for("r", "w", "p",
                                                                                 "e2")


def test_answers_of_restricted_workers_stay_counted() -> None:
    r = rule("captcha", [("stored_results_count", ">=", 2), ("fail_rate", ">=", 50)], SUSPEND)
    e = Engine([r], {})
    e.apply(fact("captcha", correct=False))
    assert e.apply(fact("captcha", correct=True))  # restricted now
    for _ in range(3):
        assert not e.apply(fact("captcha", correct=True))
    assert e.states[("r1", "w1", "p1")]["c"] == {"f": 1, "s": 4}


def test_backtest_replays_through_the_same_engine() -> None:
    r = rule("fast_answers", [("fast_submitted_count", ">=", 2)], SUSPEND,
             fast_submit_threshold_seconds=5)
    facts = [fact("submitted", worker=w, duration_s=d)
             for w, d in (("a", 1), ("b", 9), ("a", 2), ("b", 1), ("c", 1), ("b", 2))]
    live = Engine([r], {})
    live_hits = [h.worker_id for f in facts for h in live.apply(f)]
    n, hits = domain.backtest(r, facts)
    assert n == 6 and [h.worker_id for h in hits] == live_hits == ["a", "b"]
    assert hits[0].event_ids == [facts[0].event_id, facts[2].event_id]


def test_a_condition_without_a_target_never_holds() -> None:
    """A rule stored with a null threshold (a NaN once accepted) does not break evaluation."""
    r = rule("captcha", [("fail_rate", ">=", None)], SUSPEND)
    assert Engine([r], {}).apply(fact("captcha", correct=False)) == []


def test_a_revoked_fact_id_fits_the_recorded_facts_column() -> None:
    firing, pool = str(uuid.uuid4()), str(uuid.uuid4())
    fact_id = domain.revoked_fact_id(firing, pool)
    assert len(fact_id) <= 80 and fact_id == domain.revoked_fact_id(firing, pool)
    assert fact_id != domain.revoked_fact_id(firing, str(uuid.uuid4()))


def test_compiled_conditions_decide_as_the_conditions_do() -> None:
    """A rule's conditions are compiled once; the check agrees with conditions_hold for
    every operator, number, string, missing value and null target."""
    from rules_service.domain import OPERATORS, compile_conditions, conditions_hold
    values: list[object] = [None, 0, 1, 2.5, 3, -1, "accept", "reject", True]
    targets: list[object] = [None, 0, 1, 2.5, "accept", True]
    checked = 0
    for op in OPERATORS:
        for target in targets:
            conds = [{"field": "x", "operator": op, "value": target}]
            check = compile_conditions(conds)
            for v in values:
                assert check({"x": v}) == conditions_hold(conds, {"x": v}), (op, target, v)
                checked += 1
            assert check({}) is False
    two = [{"field": "x", "operator": ">=", "value": 1},
           {"field": "y", "operator": "<", "value": 5}]
    three = [*two, {"field": "z", "operator": "==", "value": "accept"}]
    for conds in (two, three, []):
        check = compile_conditions(conds)
        for x, y, z in [(1, 4, "accept"), (0, 4, "accept"), (1, 5, "accept"), (2, 1, "reject")]:
            vals = {"x": x, "y": y, "z": z}
            assert check(vals) == conditions_hold(conds, vals)
    assert checked == len(OPERATORS) * len(targets) * len(values)
