"""The collectors: one class per kind, everything about it in one place. Pure, no I/O.

A collector says which facts it counts, which settings a rule must give it, how it keeps
its state and which values its conditions compare. Adding a kind is one class here (and
its name in ``contracts.rpc.rules.CollectorKind``).

Collector state per (rule, worker, pool key) is a small JSON-able dict updated in O(1)
per fact:

* ``c``: counters by code; ``r``: the ring of the last ``history_size`` codes, one
  character each (only when a history size is set; the counters then describe the ring);
* ``b``: per-hour buckets for 24 h sliding sums (at most 24 kept);
* ``f``: the latch that makes a rule fire once per crossing;
* ``rid`` / ``ru``: the restriction this rule put on the worker and its end;
* ``lv``: the last skill value set from a field;
* ``ev``: the ids of the last events counted (backtest only); ``x``: momentary facts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from rules_service.domain import Fact, RuleDef

State = dict[str, Any]
Votes = dict[str, Any]  # one task's answers per rule: {"a": {worker: answer key}, "m": majority}


# ------------------------------------------------------------ state primitives


def new_state() -> State:
    return {"c": {}}


def push(st: State, code: str, history: int | None) -> None:
    """Count ``code``; with a history size, only the last ``history`` codes count."""
    c = st["c"]
    c[code] = c.get(code, 0) + 1
    if history:
        # One character per value: the ring of the last ``history`` values stays compact.
        ring = st.get("r", "") + code
        if len(ring) > history:
            c[ring[0]] -= 1
            ring = ring[1:]
        st["r"] = ring


def add_to_window(st: State, at: datetime, amount: int) -> None:
    hour = int(at.timestamp() // 3600)
    b = st.setdefault("b", {})
    b[str(hour)] = b.get(str(hour), 0) + amount
    for k in [k for k in b if int(k) <= hour - 24]:
        del b[k]


def window_sum(st: State, at: datetime) -> int:
    """Sliding 24 h sum at hour granularity: the current hour and the 23 before it."""
    hour = int(at.timestamp() // 3600)
    return sum(v for k, v in st.get("b", {}).items() if int(k) > hour - 24)


def rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


# ------------------------------------------------------------------ the kinds


class Collector:
    """One kind of collector."""

    kind: ClassVar[str]
    facts: ClassVar[frozenset[str]]  # the fact kinds it counts
    fields: ClassVar[dict[str, type]]  # its condition fields and their types
    choices: ClassVar[dict[str, frozenset[str]]] = {}  # the values of its string fields
    params: ClassVar[tuple[str, ...]] = ()  # collector settings a rule must give
    history: ClassVar[bool] = False  # takes a history_size (the last N values)
    # fires on every triggering event whose conditions hold, not once per crossing
    momentary: ClassVar[bool] = False
    votes: ClassVar[bool] = False  # counted through the votes of the task (majority vote)
    triggers: frozenset[str]  # the counted fact kinds that evaluate the conditions

    def __init__(self) -> None:
        self.triggers = self.facts

    @property
    def rate_fields(self) -> frozenset[str]:
        """Fields a "set skill from field" action may take its value from."""
        return frozenset(f for f, t in self.fields.items() if t is float)

    def count(self, rule: RuleDef, st: State, fact: Fact) -> bool:
        """Update one worker's state with a fact; False if the fact does not count."""
        raise NotImplementedError(self.kind)

    def values(self, st: State, at: datetime) -> dict[str, Any]:
        """The condition fields' values of a state at ``at``."""
        raise NotImplementedError(self.kind)

    def vote(self, rule: RuleDef, v: Votes, fact: Fact) -> list[tuple[str, bool]] | None:
        """For a collector counted through votes: add the fact's answer to the task's
        votes ``v``; the (worker, agrees) to count now, or None when the worker had
        already voted on the task."""
        raise NotImplementedError(self.kind)

    def earlier_voters(self, v: Votes | None, fact: Fact, answers: int) -> Iterable[str]:
        """For a collector counted through votes: the task's earlier voters (in the stored
        votes ``v``) whose states ``fact``'s answer may count, when the batch holds
        ``answers`` answers to the task (their state rows are loaded with the fact's)."""
        raise NotImplementedError(self.kind)


class TwoOutcomes(Collector):
    """Counts two outcomes (of the last ``history_size`` with one): how many, each's rate."""

    codes: ClassVar[tuple[str, str]]
    names: ClassVar[tuple[str, str, str]]  # fields: the count, the two outcomes' rates

    def values(self, st: State, at: datetime) -> dict[str, Any]:
        g = st["c"].get
        first, second = g(self.codes[0], 0), g(self.codes[1], 0)
        n = first + second
        return {self.names[0]: n, self.names[1]: rate(first, n),
                self.names[2]: rate(second, n)}


COLLECTORS: dict[str, Collector] = {}


def collector(cls: type[Collector]) -> type[Collector]:
    COLLECTORS[cls.kind] = cls()
    return cls


@collector
class Income(Collector):
    """Earnings for completed tasks (credits, not bonuses) in a sliding 24 h, per pool."""

    kind = "income"
    facts = frozenset({"credited"})
    fields = {"income_sum_for_24h": int}

    def count(self, rule: RuleDef, st: State, fact: Fact) -> bool:
        if fact.data.get("credit_kind", "assignment") != "assignment":
            return False  # bonuses are not earnings for completed tasks
        add_to_window(st, fact.at, int(fact.data["amount_minor"]))
        return True

    def values(self, st: State, at: datetime) -> dict[str, Any]:
        return {"income_sum_for_24h": window_sum(st, at)}


@collector
class SubmittedAnswers(Collector):
    kind = "submitted_answers"
    facts = frozenset({"submitted"})
    fields = {"submitted_count_24h": int}

    def count(self, rule: RuleDef, st: State, fact: Fact) -> bool:
        add_to_window(st, fact.at, 1)
        return True

    def values(self, st: State, at: datetime) -> dict[str, Any]:
        return {"submitted_count_24h": window_sum(st, at)}


@collector
class Captcha(TwoOutcomes):
    kind = "captcha"
    facts = frozenset({"captcha"})
    fields = {"stored_results_count": int, "success_rate": float, "fail_rate": float}
    history = True
    codes, names = ("s", "f"), ("stored_results_count", "success_rate", "fail_rate")

    def count(self, rule: RuleDef, st: State, fact: Fact) -> bool:
        push(st, "s" if fact.data["correct"] else "f", rule.history_size)
        return True


@collector
class GoldenSet(Collector):
    """Control tasks: the share of control answers that were right."""

    kind = "golden_set"
    facts = frozenset({"submitted"})
    fields = {"total_answers_count": int, "correct_answers_rate": float,
              "incorrect_answers_rate": float, "golden_set_answers_count": int,
              "golden_set_correct_answers_rate": float,
              "golden_set_incorrect_answers_rate": float}
    history = True

    def count(self, rule: RuleDef, st: State, fact: Fact) -> bool:
        d = fact.data
        code = "n" if not d.get("is_control") else ("c" if d.get("control_correct") else "i")
        push(st, code, rule.history_size)
        return True

    def values(self, st: State, at: datetime) -> dict[str, Any]:
        g = st["c"].get
        gs = g("c", 0) + g("i", 0)
        return {"total_answers_count": gs + g("n", 0),
                "correct_answers_rate": rate(g("c", 0), gs),
                "incorrect_answers_rate": rate(g("i", 0), gs),
                "golden_set_answers_count": gs,
                "golden_set_correct_answers_rate": rate(g("c", 0), gs),
                "golden_set_incorrect_answers_rate": rate(g("i", 0), gs)}


@collector
class MajorityVote(TwoOutcomes):
    """Agreement with the majority of a task's answers, counted for every voter once the
    task has ``answer_threshold`` equal answers (and at least its overlap in answers)."""

    kind = "majority_vote"
    facts = frozenset({"submitted"})
    fields = {"total_answers_count": int, "correct_answers_rate": float,
              "incorrect_answers_rate": float}
    params = ("answer_threshold",)
    history = True
    votes = True
    codes, names = ("c", "i"), ("total_answers_count", "correct_answers_rate",
                                "incorrect_answers_rate")

    def vote(self, rule: RuleDef, v: Votes, fact: Fact) -> list[tuple[str, bool]] | None:
        if fact.worker_id in v["a"]:
            return None
        v["a"][fact.worker_id] = fact.data["answer_key"]
        if v["m"] is not None:
            return [(fact.worker_id, fact.data["answer_key"] == v["m"])]
        if len(v["a"]) >= int(fact.data.get("overlap") or 1):
            top, n = Counter(v["a"].values()).most_common(1)[0]
            if n >= rule.collector["answer_threshold"]:
                v["m"] = top
                return [(w, a == top) for w, a in v["a"].items()]
        return []

    def earlier_voters(self, v: Votes | None, fact: Fact, answers: int) -> Iterable[str]:
        # Every voter is counted when the majority is reached: not before the task has its
        # overlap in answers, and only once.
        if not v or v["m"] is not None or len(v["a"]) + answers < int(
                fact.data.get("overlap") or 1):
            return ()
        return v["a"]


@collector
class FastAnswers(Collector):
    kind = "fast_answers"
    facts = frozenset({"submitted"})
    fields = {"total_submitted_count": int, "fast_submitted_count": int}
    params = ("fast_submit_threshold_seconds",)
    history = True

    def count(self, rule: RuleDef, st: State, fact: Fact) -> bool:
        fast = fact.data["duration_s"] < rule.collector["fast_submit_threshold_seconds"]
        push(st, "f" if fast else "s", rule.history_size)
        return True

    def values(self, st: State, at: datetime) -> dict[str, Any]:
        g = st["c"].get
        return {"total_submitted_count": g("f", 0) + g("s", 0),
                "fast_submitted_count": g("f", 0)}


@collector
class SkippedInRow(Collector):
    """Skips in a row: a submission starts the run over."""

    kind = "skipped_in_row"
    facts = frozenset({"skipped", "submitted"})
    fields = {"skipped_in_row_count": int}

    def count(self, rule: RuleDef, st: State, fact: Fact) -> bool:
        st["c"]["k"] = st["c"].get("k", 0) + 1 if fact.kind == "skipped" else 0
        return True

    def values(self, st: State, at: datetime) -> dict[str, Any]:
        return {"skipped_in_row_count": st["c"].get("k", 0)}


@collector
class AcceptanceRate(TwoOutcomes):
    kind = "acceptance_rate"
    facts = frozenset({"accepted", "rejected"})
    fields = {"total_reviewed_count": int, "accepted_rate": float, "rejected_rate": float}
    history = True
    codes, names = ("a", "r"), ("total_reviewed_count", "accepted_rate", "rejected_rate")

    def count(self, rule: RuleDef, st: State, fact: Fact) -> bool:
        push(st, "a" if fact.kind == "accepted" else "r", rule.history_size)
        return True


_STATUS_CODE = {"accepted": "a", "rejected": "r"}


@collector
class Assessments(Collector):
    """Review outcomes of the worker's submissions; fires on each review decision."""

    kind = "assessments"
    facts = frozenset({"submitted", "accepted", "rejected"})
    fields = {"pending_submitted_count": int, "accepted_submitted_count": int,
              "rejected_submitted_count": int, "assessment_event": str}
    choices = {"assessment_event": frozenset({"accept", "accept_after_reject", "reject"})}
    momentary = True

    def __init__(self) -> None:
        super().__init__()
        self.triggers = frozenset({"accepted", "rejected"})  # submissions only count

    def count(self, rule: RuleDef, st: State, fact: Fact) -> bool:
        c = st["c"]
        if fact.kind == "submitted":
            c["p"] = c.get("p", 0) + 1
            st["x"] = None
            return True
        new = _STATUS_CODE[fact.kind]
        old = _STATUS_CODE.get(fact.data.get("prev_status") or "", "p")
        if old == new:
            return False
        c[old] = max(c.get(old, 0) - 1, 0)
        c[new] = c.get(new, 0) + 1
        st["x"] = ("accept_after_reject" if old == "r" else "accept") if new == "a" \
            else "reject"
        return True

    def values(self, st: State, at: datetime) -> dict[str, Any]:
        g = st["c"].get
        return {"pending_submitted_count": g("p", 0), "accepted_submitted_count": g("a", 0),
                "rejected_submitted_count": g("r", 0), "assessment_event": st.get("x")}


@collector
class AccessRevoked(Collector):
    """The worker lost access to the pool (a restriction, or a skill change that fails the
    pool's filters): the trigger of re-execution rules."""

    kind = "access_revoked"
    facts = frozenset({"access_revoked"})
    fields = {"access_revoked_reason": str}
    choices = {"access_revoked_reason": frozenset({"restriction", "skill_change"})}
    momentary = True

    def count(self, rule: RuleDef, st: State, fact: Fact) -> bool:
        st["x"] = fact.data.get("reason", "restriction")
        return True

    def values(self, st: State, at: datetime) -> dict[str, Any]:
        return {"access_revoked_reason": st.get("x")}


RATE_FIELDS = frozenset(f for c in COLLECTORS.values() for f in c.rate_fields)
