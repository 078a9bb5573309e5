"""Quality-control rules, pure: facts in, collector state updated, hits out. No I/O.

The live consumers and the backtest both run facts through :class:`Engine`; the only
difference is where the state dicts come from (the rules database, or empty dicts for a
backtest). A *fact* is the compact, collector-relevant part of one bus event; the live
path records every fact so a backtest can replay them. What each collector counts and
each action does is in :mod:`rules_service.collectors` and :mod:`rules_service.actions`.
"""

from __future__ import annotations

import hashlib
import json
import operator
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from rules_service.actions import ACTIONS, NS, Action
from rules_service.collectors import COLLECTORS, Collector, State, Votes, new_state, push

PLATFORM_POOL_KEY = "*"
RECENT_EVENTS = 20
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
    "<": operator.lt, "<=": operator.le}


class ManualClock:
    """A clock that moves only when told (tests): ``clock()`` is now."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self._now

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs: float) -> datetime:
        self._now += timedelta(**kwargs)
        return self._now


# --------------------------------------------------------------- validation


def validate_rule(draft: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(missing field paths, other problems) of a rule draft (a dict of the RPC model)."""
    missing: list[str] = []
    problems: list[str] = []

    def need(obj: dict[str, Any] | None, key: str, path: str) -> Any:
        v = (obj or {}).get(key)
        if v is None or (isinstance(v, str) and not v.strip()):
            missing.append(path)
            return None
        return v

    scope = need(draft, "scope", "scope")
    if scope in ("pool", "project"):
        need(draft, f"{scope}_id", f"{scope}_id")
    collector = draft.get("collector")
    if collector is None:
        missing.append("collector")
    kind = need(collector, "kind", "collector.kind") if collector is not None else None
    spec = COLLECTORS.get(kind or "")
    if spec is not None:
        for param in spec.params:
            need(collector, param, f"collector.{param}")
        if not spec.history and (collector or {}).get("history_size"):
            problems.append(f"collector.history_size does not apply to {kind}")
    conditions = draft.get("conditions")
    if not conditions:
        missing.append("conditions")
    for i, cond in enumerate(conditions or []):
        f = need(cond, "field", f"conditions[{i}].field")
        op = need(cond, "operator", f"conditions[{i}].operator")
        value = need(cond, "value", f"conditions[{i}].value")
        if f is not None and spec is not None:
            problems += _condition_problems(spec, i, f, op, value)
    action = draft.get("action")
    if action is None:
        missing.append("action")
    atype = need(action, "type", "action.type") if action is not None else None
    act = ACTIONS.get(atype or "")
    if act is not None and action is not None:
        for param in act.required(action):
            need(action, param, f"action.{param}")
        problems += act.problems(action, spec)
    return missing, problems


def _condition_problems(spec: Collector, i: int, f: str, op: str | None,
                        value: Any) -> list[str]:
    if f not in spec.fields:
        return [f"conditions[{i}].field {f!r} is not a field of {spec.kind} "
                f"(fields: {', '.join(sorted(spec.fields))})"]
    problems = []
    if spec.fields[f] is str:
        if op is not None and op not in ("==", "!="):
            problems.append(f"conditions[{i}]: {f} compares only with == or !=")
        if value is not None and value not in spec.choices[f]:
            problems.append(f"conditions[{i}].value must be one of "
                            f"{', '.join(sorted(spec.choices[f]))}")
    elif value is not None and not isinstance(value, int | float):
        problems.append(f"conditions[{i}].value must be a number")
    return problems


def normalize_rule(draft: dict[str, Any]) -> dict[str, Any]:
    """Keep only the parts of a validated draft that matter to its collector and action."""
    collector = {k: v for k, v in draft["collector"].items() if v is not None}
    action = {k: v for k, v in draft["action"].items() if v is not None}
    return {
        "scope": draft["scope"],
        "pool_id": draft.get("pool_id") if draft["scope"] == "pool" else None,
        "project_id": draft.get("project_id") if draft["scope"] == "project" else None,
        "collector": collector,
        "conditions": [{"field": c["field"], "operator": c["operator"], "value": c["value"]}
                       for c in draft["conditions"]],
        "action": action,
    }


# -------------------------------------------------------------------- facts


@dataclass(frozen=True)
class Fact:
    """The compact, rule-relevant part of one event."""

    event_id: str
    kind: str  # credited | captcha | submitted | skipped | accepted | rejected | access_revoked
    at: datetime
    worker_id: str
    pool_id: str
    project_id: str | None = None
    task_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def answer_key(answers: dict[str, Any]) -> str:
    """Answers compared for the majority vote: canonical JSON, hashed short."""
    raw = json.dumps(answers, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


# -------------------------------------------------------------------- rules


@dataclass(frozen=True)
class RuleDef:
    rule_id: str
    scope: str
    pool_id: str | None
    project_id: str | None
    collector: dict[str, Any]
    conditions: list[dict[str, Any]]
    action: dict[str, Any]
    version: int = 1  # the rule's version: firings and restrictions name it
    spec: Collector = field(init=False, repr=False, compare=False)
    act: Action = field(init=False, repr=False, compare=False)
    # the conditions compiled once: values -> whether they all hold (conditions_hold)
    holds: Callable[[dict[str, Any]], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", COLLECTORS[self.collector["kind"]])
        object.__setattr__(self, "act", ACTIONS[self.action["type"]])
        object.__setattr__(self, "holds", compile_conditions(self.conditions))

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def history_size(self) -> int | None:
        return self.collector.get("history_size")

    def applies_to(self, fact: Fact) -> bool:
        if fact.kind not in self.spec.facts:
            return False
        if self.scope == "pool":
            return fact.pool_id == self.pool_id
        if self.scope == "project":
            return fact.project_id is not None and fact.project_id == self.project_id
        return True

    def pool_key(self, fact: Fact) -> str:
        # Earnings (and every other collector) count per pool, even for a project
        # rule; only a platform rule counts across all pools.
        return PLATFORM_POOL_KEY if self.scope == "platform" else fact.pool_id


StateKey = tuple[str, str, str]  # (rule_id, worker_id, pool_key)
VoteKey = tuple[str, str]  # (rule_id, task_id)


@dataclass
class Hit:
    """A rule's conditions held for a worker: the action to take and why."""

    firing_id: str
    rule: RuleDef
    worker_id: str
    pool_key: str
    pool_id: str
    project_id: str | None
    at: datetime
    values: dict[str, Any]
    event_ids: list[str]
    event_id: str = ""  # the event that made the conditions hold
    restriction_until: datetime | None = None

    def facts(self) -> dict[str, Any]:
        return {"collector": self.rule.collector, "values": self.values,
                "conditions": self.rule.conditions, "history_size": self.rule.history_size,
                "event_ids": self.event_ids, "pool_key": self.pool_key}


def firing_id_for(rule_id: str, worker_id: str, pool_key: str, event_id: str) -> str:
    """Deterministic: a redelivered event yields the same firing (and bonus) id."""
    return str(uuid.uuid5(NS, f"{rule_id}|{worker_id}|{pool_key}|{event_id}"))


def revoked_fact_id(firing_id: str, pool_id: str) -> str:
    """The id of the access_revoked fact a restriction derives for one pool: a uuid, since
    a firing id and a pool id side by side overflow the facts' 80-character event id."""
    return str(uuid.uuid5(NS, f"revoked|{firing_id}|{pool_id}"))


def _compare(v: Any, op: str, target: Any) -> bool:
    if v is None or target is None:  # no value yet; a target stored as null never holds
        return False
    if isinstance(target, str) or isinstance(v, str):
        return (v == target) if op == "==" else (v != target) if op == "!=" else False
    return OPERATORS[op](float(v), float(target))


def conditions_hold(conditions: Iterable[dict[str, Any]], values: dict[str, Any]) -> bool:
    return all(_compare(values.get(c["field"]), c["operator"], c["value"]) for c in conditions)


def _compiled(cond: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """One condition as a check of the collector's values, the same as ``_compare``: the
    operator looked up and a numeric target converted once, not on every event."""
    name, op, target = cond["field"], cond["operator"], cond["value"]
    fn = OPERATORS.get(op)
    if target is None or isinstance(target, str) or fn is None:
        return lambda values: _compare(values.get(name), op, target)
    number = float(target)

    def check(values: dict[str, Any]) -> bool:
        v = values.get(name)
        if v is None:
            return False
        if isinstance(v, str):
            return _compare(v, op, target)
        return fn(float(v), number)
    return check


def compile_conditions(conditions: list[dict[str, Any]]
                       ) -> Callable[[dict[str, Any]], bool]:
    """All of a rule's conditions as one check (they all hold), built once per rule."""
    checks = [_compiled(c) for c in conditions]
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda values: first(values) and second(values)
    return lambda values: all(check(values) for check in checks)


# ------------------------------------------------------------------- engine


class Engine:
    """Runs facts through rules over in-memory state; remembers what changed.

    ``states`` values may be kept encoded (JSON text) until a fact needs them.
    """

    def __init__(self, rules: Iterable[RuleDef], states: dict[StateKey, Any],
                 votes: dict[VoteKey, Votes] | None = None, *,
                 track_events: bool = True) -> None:
        self.rules: list[RuleDef] = []
        self._by_kind: dict[str, list[RuleDef]] = {}
        self._memo: dict[tuple[str, str, str | None], list[RuleDef]] = {}
        self.add_rules(rules)
        # The backtest keeps the recent counted event ids in memory; the live path
        # looks them up in its recorded facts when a rule fires (smaller state rows).
        self.track_events = track_events
        self.states = states
        self.votes = votes if votes is not None else {}
        self.dirty_states: set[StateKey] = set()
        self.dirty_votes: set[VoteKey] = set()

    # -- what a fact needs loaded (the live path prefetches these)

    def add_rules(self, rules: Iterable[RuleDef]) -> None:
        known = {r.rule_id for r in self.rules}
        for r in rules:
            if r.rule_id not in known:
                known.add(r.rule_id)
                self.rules.append(r)
                for kind in r.spec.facts:
                    self._by_kind.setdefault(kind, []).append(r)
        self._memo.clear()

    def rules_for(self, fact: Fact) -> list[RuleDef]:
        key = (fact.kind, fact.pool_id, fact.project_id)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = [r for r in self._by_kind.get(fact.kind, ())
                                       if r.applies_to(fact)]
        return found

    def vote_keys(self, fact: Fact) -> list[VoteKey]:
        if fact.kind != "submitted" or fact.data.get("is_control") or not fact.task_id:
            return []
        return [(r.rule_id, fact.task_id) for r in self.rules_for(fact) if r.spec.votes]

    def row_keys(self, facts: Iterable[Fact]) -> set[tuple[str, str]]:
        """The state rows, (worker, pool key), these facts touch: each fact's worker's,
        and where an answer may decide its task's majority, every earlier voter's (known
        from the task's votes, which are loaded first)."""
        facts = list(facts)
        answers = Counter(f.task_id for f in facts if f.kind == "submitted")
        out: set[tuple[str, str]] = set()
        for fact in facts:
            for r in self.rules_for(fact):
                pk = r.pool_key(fact)
                out.add((fact.worker_id, pk))
                if r.spec.votes and fact.task_id:
                    out.update((w, pk) for w in r.spec.earlier_voters(
                        self.votes.get((r.rule_id, fact.task_id)), fact, answers[fact.task_id]))
        return out

    # -- evaluation

    def _state(self, key: StateKey, at: datetime) -> State:
        st = self.states.get(key)
        if st is None:
            st = self.states[key] = new_state()
        elif isinstance(st, str):  # stored encoded: decoded only when a fact needs it
            st = self.states[key] = orjson.loads(st)
        ru = st.get("ru")
        if ru and ru != "permanent" and at >= datetime.fromisoformat(ru):
            # A temporary restriction ended: the worker's history starts over.
            st = self.states[key] = new_state()
            self.dirty_states.add(key)
        return st

    def apply(self, fact: Fact) -> list[Hit]:
        hits: list[Hit] = []
        for rule in self.rules_for(fact):
            pk = rule.pool_key(fact)
            spec = rule.spec
            if spec.votes:
                hits.extend(self._majority(rule, pk, fact))
                continue
            key = (rule.rule_id, fact.worker_id, pk)
            st = self._state(key, fact.at)
            if not spec.count(rule, st, fact):
                continue
            self.dirty_states.add(key)
            if fact.kind not in spec.triggers:
                continue
            hit = self._evaluate(rule, key, st, fact)
            if hit:
                hits.append(hit)
        return hits

    def _majority(self, rule: RuleDef, pk: str, fact: Fact) -> list[Hit]:
        if fact.data.get("is_control") or not fact.task_id:
            return []  # control tasks are not voted on
        vk = (rule.rule_id, fact.task_id)
        v = self.votes.setdefault(vk, {"a": {}, "m": None})
        counted = rule.spec.vote(rule, v, fact)
        if counted is None:
            return []
        self.dirty_votes.add(vk)
        hits = []
        for worker, agrees in counted:
            key = (rule.rule_id, worker, pk)
            st = self._state(key, fact.at)
            push(st, "c" if agrees else "i", rule.history_size)
            self.dirty_states.add(key)
            hit = self._evaluate(rule, key, st, fact, worker=worker)
            if hit:
                hits.append(hit)
        return hits

    def _evaluate(self, rule: RuleDef, key: StateKey, st: State, fact: Fact,
                  worker: str | None = None) -> Hit | None:
        ev = st.setdefault("ev", []) if self.track_events else []
        if self.track_events:
            ev.append(fact.event_id)
            if len(ev) > RECENT_EVENTS:
                del ev[0]
        values = rule.spec.values(st, fact.at)
        holds = rule.holds(values)
        fire = holds
        if not rule.spec.momentary:
            fire = holds and not st.get("f")
            st["f"] = holds
        fire = rule.act.gate(rule.action, st, values, holds, fire)
        if not fire:
            return None
        worker_id = worker or fact.worker_id
        hit = Hit(firing_id=firing_id_for(rule.rule_id, worker_id, key[2], fact.event_id),
                  rule=rule, worker_id=worker_id, pool_key=key[2], pool_id=fact.pool_id,
                  project_id=fact.project_id, at=fact.at, values=values, event_ids=list(ev),
                  event_id=fact.event_id)
        rule.act.fired(rule.action, st, hit)
        return hit


def backtest(rule: RuleDef, facts: Iterable[Fact]) -> tuple[int, list[Hit]]:
    """Replay recorded facts through a draft rule from empty state; acts on nothing."""
    engine = Engine([rule], {}, {})
    n = 0
    hits: list[Hit] = []
    for fact in facts:
        n += 1
        hits.extend(engine.apply(fact))
    return n, hits
