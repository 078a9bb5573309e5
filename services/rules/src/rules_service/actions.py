"""The actions: one class per type, everything about it in one place.

An action says which parameters a rule must give it, when a rule that holds may fire
(``gate``, ``fired``: pure, run by the engine over the worker's collector state), and
what firing does (``perform``: the event it emits, after what it looks up or stores
through an :class:`ActionStore`). Adding a type is one class here (and its name in
``contracts.rpc.rules.ActionType``).
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from contracts.events import (
    AcceptAllAssignments,
    BonusGranted,
    Event,
    OverlapChanged,
    RejectAllAssignments,
    RestrictionApplied,
    SkillSet,
)
from rules_service.collectors import RATE_FIELDS, Collector, State

if TYPE_CHECKING:
    from rules_service.domain import Hit

NS = uuid.UUID("6f1c7a52-3a8e-4d0c-9d7b-5d0b0e6a7c11")
DURATION_UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


class ActionStore(Protocol):
    """What actions look up and store (the rules store, or a fake)."""

    async def add_restriction(self, row: dict[str, Any]) -> None: ...

    async def worker_pools(self, worker_id: str, *,
                           project_id: str | None = None) -> list[tuple[str, str | None]]: ...

    async def has_manual_answer(self, worker_id: str, pool_id: str) -> bool: ...

    async def worker_tasks(self, worker_id: str, pool_id: str) -> list[str]: ...


@dataclass
class Outcome:
    """What firing did: the event to emit, or why there is none."""

    event: Event | None
    skipped: str = ""
    # pools the worker lost access to: (pool_id, project_id), fed back as facts
    revoked: list[tuple[str, str | None]] = field(default_factory=list)


def _base(hit: Hit) -> dict[str, Any]:
    return {"rule_id": hit.rule.rule_id, "firing_id": hit.firing_id, "worker_id": hit.worker_id}


class Action:
    """One type of action."""

    type: ClassVar[str]
    params: ClassVar[tuple[str, ...]]  # what a rule must give
    event: ClassVar[builtins.type[Event]]  # what it emits

    def required(self, action: dict[str, Any]) -> tuple[str, ...]:
        return self.params

    def problems(self, action: dict[str, Any], spec: Collector | None) -> list[str]:
        """What is wrong with a complete action on a rule of collector ``spec``."""
        return []

    def gate(self, action: dict[str, Any], st: State, values: dict[str, Any], holds: bool,
             fire: bool) -> bool:
        """Whether a rule fires, given what the collector decided (``fire``)."""
        return fire

    def fired(self, action: dict[str, Any], st: State, hit: Hit) -> None:
        """Remember in the worker's state that the rule fired."""

    async def perform(self, hit: Hit, store: ActionStore) -> Outcome:
        raise NotImplementedError(self.type)


ACTIONS: dict[str, Action] = {}


def action(cls: type[Action]) -> type[Action]:
    ACTIONS[cls.type] = cls()
    return cls


def restriction_id_for(firing_id: str) -> str:
    return str(uuid.uuid5(NS, f"restriction|{firing_id}"))


def restriction_end(action: dict[str, Any], at: datetime) -> datetime | None:
    unit = action.get("duration_unit")
    if unit == "permanent":
        return None
    return at + timedelta(seconds=DURATION_UNITS[str(unit)] * int(action["duration"]))


@action
class Restriction(Action):
    """Suspend in the pool, restrict in the project or block on the platform; the worker
    loses access to the pools it covers (facts for re-execution rules)."""

    type = "restriction"
    params = ("scope", "duration_unit", "duration", "private_comment")
    event = RestrictionApplied

    def required(self, action: dict[str, Any]) -> tuple[str, ...]:
        if action.get("duration_unit") == "permanent":
            return tuple(p for p in self.params if p != "duration")
        return self.params

    def gate(self, action: dict[str, Any], st: State, values: dict[str, Any], holds: bool,
             fire: bool) -> bool:
        return fire and not st.get("rid")  # already restricted by this rule: don't re-restrict

    def fired(self, action: dict[str, Any], st: State, hit: Hit) -> None:
        until = restriction_end(action, hit.at)
        hit.restriction_until = until
        st["rid"] = restriction_id_for(hit.firing_id)
        st["ru"] = until.isoformat() if until else "permanent"

    async def perform(self, hit: Hit, store: ActionStore) -> Outcome:
        a = hit.rule.action
        scope = a["scope"]
        pool_id = hit.pool_id if scope == "pool" else None
        project_id = hit.project_id if scope == "project" else None
        if scope == "project" and project_id is None:
            scope, pool_id = "pool", hit.pool_id  # no project known: narrow to the pool
        rid = restriction_id_for(hit.firing_id)
        await store.add_restriction({
            "restriction_id": rid, "rule_id": hit.rule.rule_id, "firing_id": hit.firing_id,
            "worker_id": hit.worker_id, "scope": scope, "pool_id": pool_id,
            "project_id": project_id, "pool_key": hit.pool_key,
            "private_comment": a["private_comment"], "applied_at": hit.at,
            "until": hit.restriction_until, "lifted_at": None, "source": "rule",
            "applied_by": None, "rule_version": hit.rule.version})
        if scope == "pool":
            pools = [(hit.pool_id, hit.project_id)]
        else:
            pools = await store.worker_pools(hit.worker_id, project_id=project_id)
            if hit.pool_id not in {p for p, _ in pools}:
                pools.append((hit.pool_id, hit.project_id))
        return Outcome(RestrictionApplied(
            **_base(hit), restriction_id=rid, scope=scope, pool_id=pool_id,
            project_id=project_id, until=hit.restriction_until,
            private_comment=a["private_comment"]), revoked=sorted(pools, key=lambda x: x[0]))


@action
class SetSkill(Action):
    type = "set_skill"
    params = ("skill", "value")
    event = SkillSet

    async def perform(self, hit: Hit, store: ActionStore) -> Outcome:
        a = hit.rule.action
        return Outcome(SkillSet(**_base(hit), skill=a["skill"], value=int(a["value"])))


@action
class SetSkillFromField(Action):
    """The skill takes a rate of the collector (rounded); fires whenever that value
    changes while the conditions hold."""

    type = "set_skill_from_field"
    params = ("skill", "from_field")
    event = SkillSet

    def problems(self, action: dict[str, Any], spec: Collector | None) -> list[str]:
        src = action.get("from_field")
        if src and src not in (spec.rate_fields if spec else RATE_FIELDS):
            return [f"action.from_field {src!r} is not a rate field of "
                    f"{spec.kind if spec else None}"]
        return []

    def gate(self, action: dict[str, Any], st: State, values: dict[str, Any], holds: bool,
             fire: bool) -> bool:
        if not holds:
            return fire
        value = values.get(action["from_field"])
        if value is None or round(value) == st.get("lv"):
            return False
        st["lv"] = round(value)
        return True

    async def perform(self, hit: Hit, store: ActionStore) -> Outcome:
        a = hit.rule.action
        return Outcome(SkillSet(**_base(hit), skill=a["skill"],
                                value=int(round(hit.values[a["from_field"]]))))


@action
class AcceptAll(Action):
    type = "accept_all"
    params = ()
    event = AcceptAllAssignments

    async def perform(self, hit: Hit, store: ActionStore) -> Outcome:
        return Outcome(AcceptAllAssignments(**_base(hit), pool_id=hit.pool_id))


@action
class RejectAll(Action):
    """Only where a manager reviews the worker's answers in the pool."""

    type = "reject_all"
    params = ("public_comment",)
    event = RejectAllAssignments

    async def perform(self, hit: Hit, store: ActionStore) -> Outcome:
        if not await store.has_manual_answer(hit.worker_id, hit.pool_id):
            return Outcome(None, "skipped: the pool has no manual review for this worker's "
                                 "answers")
        return Outcome(RejectAllAssignments(**_base(hit), pool_id=hit.pool_id,
                                            public_comment=hit.rule.action["public_comment"]))


@action
class ChangeOverlap(Action):
    """Re-execution: the worker's tasks in the pool get ``add`` more answers."""

    type = "change_overlap"
    params = ("add",)
    event = OverlapChanged

    async def perform(self, hit: Hit, store: ActionStore) -> Outcome:
        task_ids = await store.worker_tasks(hit.worker_id, hit.pool_id)
        if not task_ids:
            return Outcome(None, "skipped: the worker answered no task in the pool")
        return Outcome(OverlapChanged(**_base(hit), pool_id=hit.pool_id, task_ids=task_ids,
                                      add=int(hit.rule.action["add"])))


@action
class Bonus(Action):
    """A fixed bonus; its id comes from the firing's, so it is granted once."""

    type = "bonus"
    params = ("amount_minor", "currency")
    event = BonusGranted

    async def perform(self, hit: Hit, store: ActionStore) -> Outcome:
        a = hit.rule.action
        return Outcome(BonusGranted(**_base(hit), bonus_id=f"bonus-{hit.firing_id}",
                                    pool_id=hit.pool_id, amount_minor=int(a["amount_minor"]),
                                    currency=a["currency"]))
