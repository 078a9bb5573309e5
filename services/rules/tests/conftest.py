"""Handler tests' fixtures: an in-memory rules store (the methods of ``RulesStore``, no SQL)
and a handler context around it with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.rpc import rules as rpc
from rules_service.context import RulesContext
from rules_service.domain import Fact, ManualClock, RuleDef
from rules_service.settings import RulesSettings
from rules_service.store import DueRestriction
from servicekit.testing.fakes import fake_context

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class FakeRulesStore:
    def __init__(self) -> None:
        self.rules: dict[str, rpc.Rule] = {}
        self.submissions: dict[str, dict[str, Any]] = {}
        self.states: dict[tuple[str, str], dict[str, Any]] = {}
        self.votes: dict[str, dict[str, Any]] = {}
        self.facts: list[tuple[int, Fact]] = []
        self.firings: list[dict[str, Any]] = []
        self.restrictions: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []  # the store methods called, in order

    def called(self, name: str) -> int:
        return self.calls.count(name)

    # ------------------------------------------------------------ rules

    async def add_rule(self, row: dict[str, Any]) -> None:
        self.calls.append("add_rule")
        self.rules[row["rule_id"]] = rpc.Rule(**row)

    async def get_rule(self, rule_id: str) -> rpc.Rule | None:
        return self.rules.get(rule_id)

    async def list_rules(self, *, pool_id: str | None, project_id: str | None,
                         include_deleted: bool, limit: int,
                         offset: int) -> tuple[list[rpc.Rule], int]:
        found = [r for r in self.rules.values() if (include_deleted or not r.deleted)
                 and (not pool_id or r.pool_id == pool_id)
                 and (not project_id or r.project_id == project_id)]
        return found[offset:offset + limit], len(found)

    async def change_rule(self, rule_id: str, now: datetime, *, enabled: bool | None = None,
                          delete: bool = False) -> rpc.Rule | None:
        rule = self.rules.get(rule_id)
        if rule is None or rule.deleted:
            return None
        change: dict[str, Any] = {"deleted": True, "enabled": False} if delete \
            else {"enabled": enabled}
        self.rules[rule_id] = rule.model_copy(update={**change, "updated_at": now})
        return self.rules[rule_id]

    async def enabled_rules(self) -> list[RuleDef]:
        self.calls.append("enabled_rules")
        return [RuleDef(rule_id=r.rule_id, scope=r.scope, pool_id=r.pool_id,
                        project_id=r.project_id, collector=r.collector,
                        conditions=r.conditions, action=r.action)
                for r in self.rules.values() if r.enabled and not r.deleted]

    # ------------------------------------------------------- submissions

    async def add_submissions(self, rows: list[dict[str, Any]],
                              reviewed: list[str]) -> dict[str, str]:
        self.calls.append("add_submissions")
        for row in rows:
            self.submissions.setdefault(row["assignment_id"], dict(row))
        return {i: self.submissions[i]["status"] for i in reviewed if i in self.submissions}

    async def set_submission_statuses(self, statuses: dict[str, str]) -> None:
        self.calls.append("set_submission_statuses")
        for i, status in statuses.items():
            self.submissions[i]["status"] = status

    # --------------------------------------------------- state and votes

    async def lock_votes(self, task_ids: list[str]
                         ) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
        self.calls.append("lock_votes")
        return [((t,), dict(self.votes.setdefault(t, {}))) for t in sorted(task_ids)]

    async def lock_states(self, keys: list[tuple[str, str]], now: datetime
                          ) -> list[tuple[tuple[str, ...], dict[str, str]]]:
        self.calls.append("lock_states")
        return [(k, dict(self.states.setdefault(k, {}))) for k in sorted(keys)]

    async def save(self, states: list[tuple[tuple[str, str], dict[str, str]]],
                   votes: list[tuple[str, dict[str, Any]]], fired: list[dict[str, Any]],
                   now: datetime) -> None:
        self.calls.append("save")
        for key, data in states:
            self.states[key] = dict(data)
        for task, vdata in votes:
            self.votes[task] = dict(vdata)
        known = {f["firing_id"] for f in self.firings}
        self.firings += [dict(r) for r in fired if r["firing_id"] not in known]

    async def record_facts(self, facts: list[Fact]) -> dict[str, int]:
        self.calls.append("record_facts")
        out = {}
        for f in facts:
            seq = len(self.facts) + 1
            self.facts.append((seq, f))
            out[f.event_id] = seq
        return out

    # ------------------------------------------------------------- actions

    async def add_restriction(self, row: dict[str, Any]) -> None:
        assert row["restriction_id"] not in self.restrictions
        self.restrictions[row["restriction_id"]] = dict(row)

    async def worker_pools(self, worker_id: str, *,
                           project_id: str | None = None) -> list[tuple[str, str | None]]:
        return sorted({(s["pool_id"], s["project_id"]) for s in self.submissions.values()
                       if s["worker_id"] == worker_id
                       and (project_id is None or s["project_id"] == project_id)})

    async def has_manual_answer(self, worker_id: str, pool_id: str) -> bool:
        return any(s["worker_id"] == worker_id and s["pool_id"] == pool_id
                   and s["review_mode"] == "manual" for s in self.submissions.values())

    async def worker_tasks(self, worker_id: str, pool_id: str) -> list[str]:
        return sorted({s["task_id"] for s in self.submissions.values()
                       if s["worker_id"] == worker_id and s["pool_id"] == pool_id})

    # ------------------------------------------------------------- sweeper

    async def due_restrictions(self, now: datetime, limit: int) -> list[DueRestriction]:
        due = sorted((r for r in self.restrictions.values()
                      if r["lifted_at"] is None and r["until"] is not None
                      and r["until"] <= now), key=lambda r: r["until"])
        return [DueRestriction(r["restriction_id"], r["rule_id"], r["worker_id"],
                               r["pool_key"]) for r in due[:limit]]

    async def lift_restrictions(self, restriction_ids: list[str], now: datetime) -> None:
        for i in restriction_ids:
            self.restrictions[i]["lifted_at"] = now

    async def state_row(self, worker_id: str, pool_key: str) -> dict[str, Any] | None:
        row = self.states.get((worker_id, pool_key))
        return dict(row) if row is not None else None

    async def put_state_row(self, worker_id: str, pool_key: str, data: dict[str, Any],
                            now: datetime) -> None:
        self.states[(worker_id, pool_key)] = dict(data)

    # ------------------------------------------------------------- explain

    async def firings_of(self, worker_id: str, *, pool_id: str | None, rule_id: str | None,
                         limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        found = [dict(f) for f in sorted(self.firings, key=lambda f: f["fired_at"],
                                         reverse=True)
                 if f["worker_id"] == worker_id and (not pool_id or f["pool_id"] == pool_id)
                 and (not rule_id or f["rule_id"] == rule_id)]
        return found[offset:offset + limit], len(found)

    async def counted_events(self, worker_id: str, *, kinds: list[str], pool_id: str | None,
                             up_to_seq: int | None, limit: int) -> list[str]:
        found = [f.event_id for seq, f in self.facts
                 if f.worker_id == worker_id and f.kind in kinds
                 and (up_to_seq is None or seq <= up_to_seq)
                 and (pool_id is None or f.pool_id == pool_id)]
        return found[-limit:]

    def _restriction(self, r: dict[str, Any]) -> rpc.Restriction:
        return rpc.Restriction(**{k: v for k, v in r.items() if k != "pool_key"})

    async def restrictions_of(self, worker_id: str, *, limit: int) -> list[rpc.Restriction]:
        return [self._restriction(r) for r in self.restrictions.values()
                if r["worker_id"] == worker_id][:limit]

    async def list_restrictions(self, *, worker_id: str | None, pool_id: str | None,
                                active_only: bool, limit: int,
                                offset: int) -> tuple[list[rpc.Restriction], int]:
        found = [self._restriction(r) for r in self.restrictions.values()
                 if (not worker_id or r["worker_id"] == worker_id)
                 and (not pool_id or r["pool_id"] == pool_id)
                 and (not active_only or r["lifted_at"] is None)]
        return found[offset:offset + limit], len(found)

    async def recorded(self, *, pool_id: str | None, project_id: str | None,
                       since: datetime | None, until: datetime | None,
                       limit: int) -> list[Fact]:
        return [f for _, f in self.facts
                if (not pool_id or f.pool_id == pool_id)
                and (pool_id or not project_id or f.project_id == project_id)
                and (since is None or f.at >= since)
                and (until is None or f.at < until)][:limit]


@pytest.fixture
def store() -> FakeRulesStore:
    return FakeRulesStore()


@pytest.fixture
def fixed_clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def ctx(store: FakeRulesStore, fixed_clock: ManualClock) -> RulesContext:
    settings = RulesSettings(database_url="postgresql://unused/x", backtest_max_facts=1000)
    c: RulesContext = fake_context(settings, store, clock=fixed_clock, context=RulesContext)
    return c
