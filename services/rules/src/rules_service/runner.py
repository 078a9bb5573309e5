"""The live path: facts -> engine over the stored state -> actions, in the caller's unit
of work.

:func:`process` is the one unit the consumers, the benchmark and the tests drive: lock and
load the state the facts touch in a few batched statements, record the facts, run the
pure :class:`~rules_service.domain.Engine`, act on the hits (events into the outbox,
firings, restrictions), save what changed in one statement per table.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from contracts.envelope import Envelope
from rules_service.actions import ActionStore
from rules_service.domain import Engine, Fact, Hit, RuleDef, revoked_fact_id
from rules_service.store import RulesStore
from servicekit.uow import UnitOfWork


class _RuleIndex:
    def __init__(self, defs: list[RuleDef]) -> None:
        self.platform = [r for r in defs if r.scope == "platform"]
        self.by_pool: dict[str, list[RuleDef]] = {}
        self.by_project: dict[str, list[RuleDef]] = {}
        for r in defs:
            if r.scope == "pool" and r.pool_id:
                self.by_pool.setdefault(r.pool_id, []).append(r)
            elif r.scope == "project" and r.project_id:
                self.by_project.setdefault(r.project_id, []).append(r)

    def matching(self, facts: Iterable[Fact]) -> list[RuleDef]:
        out = {r.rule_id: r for r in self.platform}
        for f in facts:
            for r in self.by_pool.get(f.pool_id, ()):
                out[r.rule_id] = r
            for r in self.by_project.get(f.project_id or "", ()):
                out[r.rule_id] = r
        return list(out.values())


class RuleCache:
    """The enabled rules, kept in memory for a short time (a query less per batch).

    A change made through this process is seen at once (:meth:`invalidate`), one made
    through another replica within the time to live.
    """

    def __init__(self) -> None:
        self._index: _RuleIndex | None = None
        self._loaded_at = 0.0

    def invalidate(self) -> None:
        self._index = None

    async def matching(self, store: RulesStore, facts: Iterable[Fact],
                       ttl_s: float) -> list[RuleDef]:
        """Enabled rules that may apply to these facts."""
        now = time.monotonic()
        if self._index is None or now - self._loaded_at > ttl_s:
            self._index = _RuleIndex(await store.enabled_rules())
            self._loaded_at = now
        return self._index.matching(facts)


def encode_state(st: dict[str, Any] | str) -> str:
    """A rule's collector state as stored: its own JSON text inside the row's document.

    A row holds the state of every rule on the pool, but a fact touches only the rules
    of its kind: the others stay text, decoded only when a fact needs them (see
    ``Engine._state``). Rows written before this format hold objects; both are read.
    """
    return st if isinstance(st, str) else orjson.dumps(st).decode()


def decode_state(st: dict[str, Any] | str | None) -> dict[str, Any]:
    if st is None:
        return {}
    return orjson.loads(st) if isinstance(st, str) else st


@dataclass
class BatchRun:
    """One batch through the engine: what is loaded, what fired, what it caused."""

    engine: Engine
    uow: UnitOfWork[RulesStore]
    rules: RuleCache
    ttl_s: float
    now: datetime
    causes: dict[str, Envelope]
    loaded_rows: set[tuple[str, str]] = field(default_factory=set)
    loaded_tasks: set[str] = field(default_factory=set)
    seqs: dict[str, int] = field(default_factory=dict)
    fired: list[dict[str, Any]] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)

    @property
    def store(self) -> RulesStore:
        return self.uow.store

    async def ensure(self, facts: list[Fact]) -> None:
        """Load (and lock) the vote and state rows these facts touch into the engine.

        The vote rows first: the state rows a fact touches include those of the task's
        earlier voters (a majority reached counts for each of them), known from its votes.
        """
        engine = self.engine
        tasks = sorted({k[1] for f in facts for k in engine.vote_keys(f)} - self.loaded_tasks)
        if tasks:
            for (task_id,), data in await self.store.lock_votes(tasks):
                for rule_id, v in data.items():
                    engine.votes[(rule_id, task_id)] = v
            self.loaded_tasks.update(tasks)
        keys = sorted(engine.row_keys(facts) - self.loaded_rows)
        if keys:
            for (w, p), sdata in await self.store.lock_states(keys, self.now):
                for rule_id, st in sdata.items():  # each rule's state still encoded
                    engine.states[(rule_id, w, p)] = st
            self.loaded_rows.update(keys)

    async def evaluate(self, facts: list[Fact]) -> None:
        """Every fact through the engine, in order; derived facts join the queue."""
        queue = deque(facts)
        while queue:
            fact = queue.popleft()
            if fact.kind == "access_revoked":  # a derived fact may reach other pools' rules
                self.engine.add_rules(await self.rules.matching(self.store, [fact],
                                                                self.ttl_s))
                await self.ensure([fact])
            for hit in self.engine.apply(fact):
                self.hits.append(hit)
                derived = await self.act(hit)
                if derived:
                    cause = self.causes.get(hit.event_id)
                    if cause is not None:
                        self.causes.update((d.event_id, cause) for d in derived)
                    self.seqs.update(await self.store.record_facts(derived))
                    queue.extend(derived)

    async def act(self, hit: Hit) -> list[Fact]:
        """Perform a hit's action: its event into the outbox, its firing row (written
        with the batch's); returns the facts it derives (access revoked)."""
        store: ActionStore = self.store
        outcome = await hit.rule.act.perform(hit, store)
        text = outcome.skipped
        if outcome.event is not None:
            text = self.uow.record(outcome.event, cause=self.causes.get(hit.event_id)).type
        self.fired.append({
            "firing_id": hit.firing_id, "rule_id": hit.rule.rule_id, "worker_id": hit.worker_id,
            "pool_id": hit.pool_id, "project_id": hit.project_id, "fired_at": hit.at,
            "action": hit.rule.action, "outcome": text, "rule_version": hit.rule.version,
            "facts": {**hit.facts(), "trigger_event_id": hit.event_id,
                      "trigger_seq": self.seqs.get(hit.event_id)}})
        return [Fact(revoked_fact_id(hit.firing_id, p), "access_revoked", hit.at, hit.worker_id,
                     p, pr, None, {"reason": "restriction"}) for p, pr in outcome.revoked]

    async def flush(self) -> None:
        """Write back every row with a changed rule state, the changed vote rows and the
        firings (one statement)."""
        engine = self.engine
        rows = {(k[1], k[2]) for k in engine.dirty_states}
        states: list[tuple[tuple[str, str], dict[str, str]]] = []
        if rows:
            data: dict[tuple[str, str], dict[str, str]] = {r: {} for r in rows}
            dumps = orjson.dumps
            for (rule_id, w, p), st in engine.states.items():  # hot: no call per state
                d = data.get((w, p))
                if d is not None:
                    d[rule_id] = st if st.__class__ is str else dumps(st).decode()
            states = sorted(data.items())
        tasks = {k[1] for k in engine.dirty_votes}
        votes: list[tuple[str, dict[str, Any]]] = []
        if tasks:
            by_task: dict[str, dict[str, Any]] = {t: {} for t in tasks}
            for (rule_id, t), v in engine.votes.items():
                if t in by_task:
                    by_task[t][rule_id] = v
            votes = sorted(by_task.items())
        if states or votes or self.fired:
            await self.store.save(states, votes, self.fired, self.now)


async def process(facts: list[Fact], uow: UnitOfWork[RulesStore], *, rules: RuleCache,
                  ttl_s: float, now: datetime, causes: dict[str, Envelope]) -> list[Hit]:
    """Record facts, evaluate every rule they touch, act on the hits.

    An action's event is caused by the event that made its rule fire (``causes``: by
    event id; the facts an action derives inherit its cause).
    """
    if not facts:
        return []
    engine = Engine(await rules.matching(uow.store, facts, ttl_s), {}, {}, track_events=False)
    run = BatchRun(engine, uow, rules, ttl_s, now, causes)
    if engine.rules:
        await run.ensure(facts)
    # Recorded after the state rows are locked, so that per worker the recorded order
    # (which a backtest replays) is the order evaluated here.
    run.seqs = await uow.store.record_facts(facts)
    if not engine.rules:
        return []
    await run.evaluate(facts)
    await run.flush()
    return run.hits
