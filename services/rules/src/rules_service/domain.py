"""Quality-control rules, pure: facts in, collector state updated, hits out. No I/O.

The live consumers and the backtest both run facts through :class:`Engine`; the
only difference is where the state dicts come from (the rules database, or
empty dicts for a backtest). A *fact* is the compact, collector-relevant part of
one bus event; the live path records every fact so a backtest can replay them.

Collector state per (rule, worker, pool key) is a small JSON-able dict updated
in O(1) per fact:

* ``c``: counters by code; ``r``: the ring of the last ``history_size`` codes,
  one character each (only when a history size is set; the counters then
  describe the ring);
* ``b``: per-hour buckets for 24 h sliding sums (at most 24 kept);
* ``f``: the latch that makes a rule fire once per crossing;
* ``rid`` / ``ru``: the restriction this rule put on the worker and its end;
* ``ev``: the ids of the last events counted (backtest only); ``x``: momentary facts.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

PLATFORM_POOL_KEY = "*"
RECENT_EVENTS = 20
_NS = uuid.UUID("6f1c7a52-3a8e-4d0c-9d7b-5d0b0e6a7c11")

# ---------------------------------------------------------------- vocabulary

FIELDS: dict[str, dict[str, type]] = {
    "income": {"income_sum_for_24h": int},
    "captcha": {"stored_results_count": int, "success_rate": float, "fail_rate": float},
    "golden_set": {"total_answers_count": int, "correct_answers_rate": float,
                   "incorrect_answers_rate": float, "golden_set_answers_count": int,
                   "golden_set_correct_answers_rate": float,
                   "golden_set_incorrect_answers_rate": float},
    "majority_vote": {"total_answers_count": int, "correct_answers_rate": float,
                      "incorrect_answers_rate": float},
    "fast_answers": {"total_submitted_count": int, "fast_submitted_count": int},
    "submitted_answers": {"submitted_count_24h": int},
    "skipped_in_row": {"skipped_in_row_count": int},
    "acceptance_rate": {"total_reviewed_count": int, "accepted_rate": float,
                        "rejected_rate": float},
    "assessments": {"pending_submitted_count": int, "accepted_submitted_count": int,
                    "rejected_submitted_count": int, "assessment_event": str},
    "access_revoked": {"access_revoked_reason": str},
}

STRING_VALUES = {
    "assessment_event": {"accept", "accept_after_reject", "reject"},
    "access_revoked_reason": {"restriction", "skill_change"},
}

# Which fact kinds each collector counts.
FACT_KINDS: dict[str, frozenset[str]] = {
    "income": frozenset({"credited"}),
    "captcha": frozenset({"captcha"}),
    "golden_set": frozenset({"submitted"}),
    "majority_vote": frozenset({"submitted"}),
    "fast_answers": frozenset({"submitted"}),
    "submitted_answers": frozenset({"submitted"}),
    "skipped_in_row": frozenset({"skipped", "submitted"}),
    "acceptance_rate": frozenset({"accepted", "rejected"}),
    "assessments": frozenset({"submitted", "accepted", "rejected"}),
    "access_revoked": frozenset({"access_revoked"}),
}

HISTORY_COLLECTORS = {"captcha", "golden_set", "majority_vote", "fast_answers",
                      "acceptance_rate"}
# Collectors whose trigger is a momentary event: they fire on every triggering
# event whose conditions hold, not once per crossing.
MOMENTARY = {"assessments", "access_revoked"}
# Fields a "set skill from field" action may take its value from.
SKILL_SOURCE_FIELDS = {"correct_answers_rate", "incorrect_answers_rate", "success_rate",
                       "fail_rate", "golden_set_correct_answers_rate",
                       "golden_set_incorrect_answers_rate", "accepted_rate", "rejected_rate"}
OPERATORS = {"==", "!=", ">", ">=", "<", "<="}
ACTION_PARAMS: dict[str, tuple[str, ...]] = {
    "restriction": ("scope", "duration_unit", "duration", "private_comment"),
    "set_skill": ("skill", "value"),
    "set_skill_from_field": ("skill", "from_field"),
    "accept_all": (),
    "reject_all": ("public_comment",),
    "change_overlap": ("add",),
    "bonus": ("amount_minor", "currency"),
}
DURATION_UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


# --------------------------------------------------------------------- clock


class Clock:
    """Wall-clock UTC; tests pass a :class:`ManualClock` to move time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock(Clock):
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

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
    if scope == "pool":
        need(draft, "pool_id", "pool_id")
    elif scope == "project":
        need(draft, "project_id", "project_id")
    collector = draft.get("collector")
    if collector is None:
        missing.append("collector")
    kind = need(collector, "kind", "collector.kind") if collector is not None else None
    if kind == "majority_vote":
        need(collector, "answer_threshold", "collector.answer_threshold")
    if kind == "fast_answers":
        need(collector, "fast_submit_threshold_seconds",
             "collector.fast_submit_threshold_seconds")
    if kind and kind not in HISTORY_COLLECTORS and (collector or {}).get("history_size"):
        problems.append(f"collector.history_size does not apply to {kind}")
    fields = FIELDS.get(kind or "", {})
    conditions = draft.get("conditions")
    if not conditions:
        missing.append("conditions")
    for i, cond in enumerate(conditions or []):
        f = need(cond, "field", f"conditions[{i}].field")
        op = need(cond, "operator", f"conditions[{i}].operator")
        value = need(cond, "value", f"conditions[{i}].value")
        if f is None or not kind:
            continue
        if f not in fields:
            problems.append(f"conditions[{i}].field {f!r} is not a field of {kind} "
                            f"(fields: {', '.join(sorted(fields))})")
            continue
        if fields[f] is str:
            if op is not None and op not in ("==", "!="):
                problems.append(f"conditions[{i}]: {f} compares only with == or !=")
            if value is not None and value not in STRING_VALUES[f]:
                problems.append(f"conditions[{i}].value must be one of "
                                f"{', '.join(sorted(STRING_VALUES[f]))}")
        elif value is not None and not isinstance(value, int | float):
            problems.append(f"conditions[{i}].value must be a number")
    action = draft.get("action")
    if action is None:
        missing.append("action")
    atype = need(action, "type", "action.type") if action is not None else None
    for param in ACTION_PARAMS.get(atype or "", ()):
        if param == "duration" and (action or {}).get("duration_unit") == "permanent":
            continue
        need(action, param, f"action.{param}")
    if atype == "set_skill_from_field" and (action or {}).get("from_field"):
        src = action["from_field"]
        if src not in SKILL_SOURCE_FIELDS or (kind and src not in fields):
            problems.append(f"action.from_field {src!r} is not a rate field of {kind}")
    return missing, problems


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

    @property
    def kind(self) -> str:
        return self.collector["kind"]

    @property
    def history_size(self) -> int | None:
        return self.collector.get("history_size")

    def applies_to(self, fact: Fact) -> bool:
        if fact.kind not in FACT_KINDS[self.kind]:
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
    return str(uuid.uuid5(_NS, f"{rule_id}|{worker_id}|{pool_key}|{event_id}"))


def restriction_id_for(firing_id: str) -> str:
    return str(uuid.uuid5(_NS, f"restriction|{firing_id}"))


def restriction_end(action: dict[str, Any], at: datetime) -> datetime | None:
    unit = action.get("duration_unit")
    if unit == "permanent":
        return None
    return at + timedelta(seconds=DURATION_UNITS[unit] * int(action["duration"]))


# -------------------------------------------------------------------- state


def new_state() -> dict[str, Any]:
    return {"c": {}}


def _push(st: dict[str, Any], code: str, history: int | None) -> None:
    c = st["c"]
    c[code] = c.get(code, 0) + 1
    if history:
        # One character per value: the ring of the last ``history`` values stays compact.
        ring = st.get("r", "") + code
        if len(ring) > history:
            c[ring[0]] -= 1
            ring = ring[1:]
        st["r"] = ring


def _add_bucket(st: dict[str, Any], at: datetime, amount: int) -> None:
    hour = int(at.timestamp() // 3600)
    b = st.setdefault("b", {})
    b[str(hour)] = b.get(str(hour), 0) + amount
    for k in [k for k in b if int(k) <= hour - 24]:
        del b[k]


def _window_sum(st: dict[str, Any], at: datetime) -> int:
    """Sliding 24 h sum at hour granularity: the current hour and the 23 before it."""
    hour = int(at.timestamp() // 3600)
    return sum(v for k, v in st.get("b", {}).items() if int(k) > hour - 24)


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def collector_values(rule: RuleDef, st: dict[str, Any], at: datetime) -> dict[str, Any]:
    c = st["c"]
    g = c.get
    kind = rule.kind
    if kind == "income":
        return {"income_sum_for_24h": _window_sum(st, at)}
    if kind == "submitted_answers":
        return {"submitted_count_24h": _window_sum(st, at)}
    if kind == "captcha":
        n = g("s", 0) + g("f", 0)
        return {"stored_results_count": n, "success_rate": _rate(g("s", 0), n),
                "fail_rate": _rate(g("f", 0), n)}
    if kind == "golden_set":
        gs = g("c", 0) + g("i", 0)
        return {"total_answers_count": gs + g("n", 0),
                "correct_answers_rate": _rate(g("c", 0), gs),
                "incorrect_answers_rate": _rate(g("i", 0), gs),
                "golden_set_answers_count": gs,
                "golden_set_correct_answers_rate": _rate(g("c", 0), gs),
                "golden_set_incorrect_answers_rate": _rate(g("i", 0), gs)}
    if kind == "majority_vote":
        n = g("c", 0) + g("i", 0)
        return {"total_answers_count": n, "correct_answers_rate": _rate(g("c", 0), n),
                "incorrect_answers_rate": _rate(g("i", 0), n)}
    if kind == "fast_answers":
        return {"total_submitted_count": g("f", 0) + g("s", 0),
                "fast_submitted_count": g("f", 0)}
    if kind == "skipped_in_row":
        return {"skipped_in_row_count": g("k", 0)}
    if kind == "acceptance_rate":
        n = g("a", 0) + g("r", 0)
        return {"total_reviewed_count": n, "accepted_rate": _rate(g("a", 0), n),
                "rejected_rate": _rate(g("r", 0), n)}
    if kind == "assessments":
        return {"pending_submitted_count": g("p", 0), "accepted_submitted_count": g("a", 0),
                "rejected_submitted_count": g("r", 0),
                "assessment_event": st.get("x")}
    if kind == "access_revoked":
        return {"access_revoked_reason": st.get("x")}
    raise ValueError(f"unknown collector {kind}")


def _compare(v: Any, op: str, target: Any) -> bool:
    if v is None:
        return False
    if isinstance(target, str) or isinstance(v, str):
        return (v == target) if op == "==" else (v != target) if op == "!=" else False
    v, target = float(v), float(target)
    return {"==": v == target, "!=": v != target, ">": v > target, ">=": v >= target,
            "<": v < target, "<=": v <= target}[op]


def conditions_hold(conditions: Iterable[dict[str, Any]], values: dict[str, Any]) -> bool:
    return all(_compare(values.get(c["field"]), c["operator"], c["value"]) for c in conditions)


def _count(rule: RuleDef, st: dict[str, Any], fact: Fact) -> bool:
    """Update one worker's collector state with a fact; False if it does not count."""
    kind, d, h = rule.kind, fact.data, rule.history_size
    if kind == "income":
        if d.get("credit_kind", "assignment") != "assignment":
            return False  # bonuses are not earnings for completed tasks
        _add_bucket(st, fact.at, int(d["amount_minor"]))
    elif kind == "submitted_answers":
        _add_bucket(st, fact.at, 1)
    elif kind == "captcha":
        _push(st, "s" if d["correct"] else "f", h)
    elif kind == "golden_set":
        code = "n" if not d.get("is_control") else ("c" if d.get("control_correct") else "i")
        _push(st, code, h)
    elif kind == "fast_answers":
        fast = d["duration_s"] < rule.collector["fast_submit_threshold_seconds"]
        _push(st, "f" if fast else "s", h)
    elif kind == "skipped_in_row":
        st["c"]["k"] = st["c"].get("k", 0) + 1 if fact.kind == "skipped" else 0
    elif kind == "acceptance_rate":
        _push(st, "a" if fact.kind == "accepted" else "r", h)
    elif kind == "assessments":
        c = st["c"]
        prev = d.get("prev_status")
        if fact.kind == "submitted":
            c["p"] = c.get("p", 0) + 1
            st["x"] = None
        else:
            new = "a" if fact.kind == "accepted" else "r"
            old = {"accepted": "a", "rejected": "r"}.get(prev or "", "p")
            if old == new:
                return False
            c[old] = max(c.get(old, 0) - 1, 0)
            c[new] = c.get(new, 0) + 1
            st["x"] = ("accept_after_reject" if old == "r" else "accept") if new == "a" \
                else "reject"
    elif kind == "access_revoked":
        st["x"] = d.get("reason", "restriction")
    else:  # majority_vote is counted through the task's votes
        raise ValueError(kind)
    return True


# ------------------------------------------------------------------- engine


class Engine:
    """Runs facts through rules over in-memory state; remembers what changed."""

    def __init__(self, rules: Iterable[RuleDef], states: dict[StateKey, dict[str, Any]],
                 votes: dict[VoteKey, dict[str, Any]] | None = None, *,
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
                for kind in FACT_KINDS[r.kind]:
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
        return [(r.rule_id, fact.task_id) for r in self.rules_for(fact)
                if r.kind == "majority_vote"]

    def state_keys(self, fact: Fact) -> list[StateKey]:
        keys = []
        for r in self.rules_for(fact):
            pk = r.pool_key(fact)
            keys.append((r.rule_id, fact.worker_id, pk))
            if r.kind == "majority_vote" and fact.task_id:
                for w in self.votes.get((r.rule_id, fact.task_id), {}).get("a", {}):
                    keys.append((r.rule_id, w, pk))
        return keys

    # -- evaluation

    def _state(self, key: StateKey, at: datetime) -> dict[str, Any]:
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
            if rule.kind == "majority_vote":
                hits.extend(self._majority(rule, pk, fact))
                continue
            key = (rule.rule_id, fact.worker_id, pk)
            st = self._state(key, fact.at)
            if not _count(rule, st, fact):
                continue
            self.dirty_states.add(key)
            if rule.kind == "assessments" and fact.kind == "submitted":
                continue  # assessments trigger on review decisions only
            hit = self._evaluate(rule, key, st, fact)
            if hit:
                hits.append(hit)
        return hits

    def _majority(self, rule: RuleDef, pk: str, fact: Fact) -> list[Hit]:
        if fact.data.get("is_control") or not fact.task_id:
            return []
        vk = (rule.rule_id, fact.task_id)
        v = self.votes.setdefault(vk, {"a": {}, "m": None})
        if fact.worker_id in v["a"]:
            return []
        v["a"][fact.worker_id] = fact.data["answer_key"]
        self.dirty_votes.add(vk)
        counted: list[tuple[str, bool]] = []
        if v["m"] is not None:
            counted.append((fact.worker_id, fact.data["answer_key"] == v["m"]))
        elif len(v["a"]) >= int(fact.data.get("overlap") or 1):
            top, n = Counter(v["a"].values()).most_common(1)[0]
            if n >= rule.collector["answer_threshold"]:
                v["m"] = top
                counted = [(w, a == top) for w, a in v["a"].items()]
        hits = []
        for worker, correct in counted:
            key = (rule.rule_id, worker, pk)
            st = self._state(key, fact.at)
            _push(st, "c" if correct else "i", rule.history_size)
            self.dirty_states.add(key)
            hit = self._evaluate(rule, key, st, fact, worker=worker)
            if hit:
                hits.append(hit)
        return hits

    def _evaluate(self, rule: RuleDef, key: StateKey, st: dict[str, Any], fact: Fact,
                  worker: str | None = None) -> Hit | None:
        ev = st.setdefault("ev", []) if self.track_events else []
        if self.track_events:
            ev.append(fact.event_id)
            if len(ev) > RECENT_EVENTS:
                del ev[0]
        values = collector_values(rule, st, fact.at)
        holds = conditions_hold(rule.conditions, values)
        action = rule.action
        fire = holds
        if rule.kind not in MOMENTARY:
            fire = holds and not st.get("f")
            st["f"] = holds
        if action["type"] == "set_skill_from_field" and holds:
            value = values.get(action["from_field"])
            fire = value is not None and round(value) != st.get("lv")
            if fire:
                st["lv"] = round(value)
        if action["type"] == "restriction" and st.get("rid"):
            fire = False  # already restricted by this rule: don't re-restrict
        if not fire:
            return None
        worker_id = worker or fact.worker_id
        fid = firing_id_for(rule.rule_id, worker_id, key[2], fact.event_id)
        hit = Hit(firing_id=fid, rule=rule, worker_id=worker_id, pool_key=key[2],
                  pool_id=fact.pool_id, project_id=fact.project_id, at=fact.at,
                  values=values, event_ids=list(ev), event_id=fact.event_id)
        if action["type"] == "restriction":
            until = restriction_end(action, fact.at)
            hit.restriction_until = until
            st["rid"] = restriction_id_for(fid)
            st["ru"] = until.isoformat() if until else "permanent"
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
