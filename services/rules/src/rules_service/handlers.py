"""The live path: events -> facts -> engine over DB state -> actions in the outbox.

:meth:`RuleRunner.process` is the one unit the consumers, the benchmark and the
tests drive: record the facts, load the state they touch in a few batched
queries, run the pure :class:`~rules_service.domain.Engine`, save what changed
in one upsert per table and turn hits into firings, restrictions and events,
all inside the caller's transaction.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import orjson

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.envelope import Envelope
from contracts.events import (AcceptAllAssignments, BonusGranted, CaptchaAnswered, Event,
                              LedgerCredited, OverlapChanged, RejectAllAssignments,
                              RestrictionApplied, RestrictionLifted, ReviewAccepted,
                              ReviewRejected, SkillSet, TaskAccessRevoked, TaskSkipped,
                              TaskSubmitted, spec_for_model)
from rules_service import domain
from rules_service.db import (collector_state, firings, recorded_facts, restrictions, rules,
                              submissions, task_votes)
from rules_service.domain import Engine, Fact, Hit, RuleDef
from servicekit.db import dialect_insert, keys_in

log = logging.getLogger("rules.handlers")

Recorder = Callable[[AsyncConnection, Event, Envelope | None], Awaitable[Any]]


def rule_def(row: Any) -> RuleDef:
    m = row._mapping
    return RuleDef(rule_id=m["rule_id"], scope=m["scope"], pool_id=m["pool_id"],
                   project_id=m["project_id"], collector=m["collector"],
                   conditions=m["conditions"], action=m["action"])


def fact_row(f: Fact) -> dict[str, Any]:
    return {"event_id": f.event_id, "kind": f.kind, "at": f.at, "worker_id": f.worker_id,
            "pool_id": f.pool_id, "project_id": f.project_id, "task_id": f.task_id,
            "data": f.data}


def fact_from_row(row: Any) -> Fact:
    m = row._mapping
    return Fact(event_id=m["event_id"], kind=m["kind"], at=m["at"], worker_id=m["worker_id"],
                pool_id=m["pool_id"], project_id=m["project_id"], task_id=m["task_id"],
                data=m["data"])


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


# PostgreSQL: a batch's state rows written by one statement over arrays (one execution
# instead of one per row; measured on the rules path as its most expensive statement).
_PG_SAVE_STATES = text(
    "INSERT INTO collector_state (worker_id, pool_key, data, updated_at) "
    "SELECT w, p, d, CAST(:now AS timestamptz) FROM unnest("
    "CAST(:w AS text[]), CAST(:p AS text[]), CAST(:d AS text[])) AS u(w, p, d) "
    "ON CONFLICT (worker_id, pool_key) DO UPDATE "
    "SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at")
_PG_SAVE_VOTES = text(
    "INSERT INTO task_votes (task_id, data) "
    "SELECT t, d FROM unnest(CAST(:t AS text[]), CAST(:d AS text[])) AS u(t, d) "
    "ON CONFLICT (task_id) DO UPDATE SET data = EXCLUDED.data")


# The batch's facts in one statement, numbered (seq) in the order they are evaluated.
_PG_RECORD_FACTS = text(
    "INSERT INTO recorded_facts (event_id, kind, at, worker_id, pool_id, project_id, task_id, "
    "data) SELECT e, k, at, w, p, pr, t, d FROM unnest(CAST(:e AS text[]), "
    "CAST(:k AS text[]), CAST(:at AS timestamptz[]), CAST(:w AS text[]), CAST(:p AS text[]), "
    "CAST(:pr AS text[]), CAST(:t AS text[]), CAST(:d AS text[])) WITH ORDINALITY "
    "AS u(e, k, at, w, p, pr, t, d, n) ORDER BY n RETURNING event_id, seq")


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


class RuleRunner:
    def __init__(self, *, record: Recorder, clock: domain.Clock,
                 rules_cache_ttl_s: float = 1.0,
                 record_many: Callable[[AsyncConnection, list[tuple[Event, Envelope | None]]],
                                       Awaitable[Any]] | None = None) -> None:
        self.record = record
        self.record_many = record_many
        self.clock = clock
        self.rules_cache_ttl_s = rules_cache_ttl_s
        self._rules: _RuleIndex | None = None
        self._rules_loaded_at = 0.0

    # ------------------------------------------------------------ events -> facts

    async def facts_for(self, conn: AsyncConnection,
                        items: list[tuple[Event, Envelope]]) -> list[Fact]:
        """The facts some events contribute, with the bookkeeping of submissions.

        Batched: one insert for new submissions, one read and one update per
        review outcome, however many events.
        """
        facts: list[Fact | None] = []
        new_subs: list[dict[str, Any]] = []
        reviews: list[tuple[int, Event, Envelope, str]] = []
        for event, env in items:
            eid = env.event_id
            fact: Fact | None = None
            if isinstance(event, TaskSubmitted):
                new_subs.append(dict(
                    assignment_id=event.assignment_id, task_id=event.task_id,
                    pool_id=event.pool_id, project_id=event.project_id,
                    worker_id=event.worker_id, status="pending",
                    review_mode=event.review_mode, submitted_at=event.submitted_at))
                fact = Fact(eid, "submitted", event.submitted_at, event.worker_id,
                            event.pool_id, event.project_id, event.task_id, {
                                "is_control": event.is_control,
                                "control_correct": event.control_correct,
                                "answer_key": domain.answer_key(event.answers),
                                "overlap": event.overlap,
                                "duration_s": round(
                                    (event.submitted_at - event.taken_at).total_seconds(), 3),
                            })
            elif isinstance(event, TaskSkipped):
                fact = Fact(eid, "skipped", event.skipped_at, event.worker_id, event.pool_id,
                            event.project_id, event.task_id)
            elif isinstance(event, TaskAccessRevoked):
                fact = Fact(eid, "access_revoked", event.revoked_at, event.worker_id,
                            event.pool_id, event.project_id, None, {"reason": event.reason})
            elif isinstance(event, CaptchaAnswered):
                fact = Fact(eid, "captcha", event.answered_at, event.worker_id, event.pool_id,
                            event.project_id, None, {"correct": event.correct})
            elif isinstance(event, ReviewAccepted | ReviewRejected):
                status = "accepted" if isinstance(event, ReviewAccepted) else "rejected"
                reviews.append((len(facts), event, env, status))
            elif isinstance(event, LedgerCredited):
                fact = Fact(eid, "credited", event.credited_at, event.worker_id, event.pool_id,
                            event.project_id, None,
                            {"amount_minor": event.amount_minor, "credit_kind": event.kind})
            facts.append(fact)
        if new_subs:
            ins = dialect_insert(conn)
            await conn.execute(ins(submissions).on_conflict_do_nothing(
                index_elements=["assignment_id"]), new_subs)
        if reviews:
            ids = list({e.assignment_id for _, e, _, _ in reviews})
            status = {r.assignment_id: r.status for r in await conn.execute(
                select(submissions.c.assignment_id, submissions.c.status)
                .where(submissions.c.assignment_id.in_(ids)))}
            for i, event, env, new in reviews:
                prev = status.get(event.assignment_id)
                facts[i] = Fact(env.event_id, new, event.decided_at, event.worker_id,
                                event.pool_id, event.project_id, event.task_id,
                                {"prev_status": prev})
                if prev is not None:
                    status[event.assignment_id] = new
            for new in ("accepted", "rejected"):
                changed = [i for i in ids if status.get(i) == new]
                if changed:
                    await conn.execute(update(submissions)
                                       .where(submissions.c.assignment_id.in_(changed))
                                       .values(status=new))
        return [f for f in facts if f is not None]

    async def handle(self, conn: AsyncConnection, items: list[tuple[Event, Envelope]], *,
                     cause: Envelope | None = None) -> list[Hit]:
        """What a consumer does with a batch of events: facts, then :meth:`process`. An
        action's event is caused by the event that made its rule fire (``cause`` only
        when that one is unknown)."""
        causes = {env.event_id: env for _, env in items}
        return await self.process(conn, await self.facts_for(conn, items), cause=cause,
                                  causes=causes)

    # --------------------------------------------------------------- the unit

    def invalidate_rules(self) -> None:
        """Forget the cached rules (this process changed one)."""
        self._rules = None

    async def load_rules(self, conn: AsyncConnection, facts: Iterable[Fact]) -> list[RuleDef]:
        """Enabled rules that may apply to these facts.

        All enabled rules are cached in memory for ``rules_cache_ttl_s`` (a change
        made through this process is seen at once, one made through another
        replica within the TTL), which saves a query per message.
        """
        now = time.monotonic()
        if self._rules is None or now - self._rules_loaded_at > self.rules_cache_ttl_s:
            rows = (await conn.execute(select(rules).where(
                rules.c.enabled.is_(True), rules.c.deleted.is_(False)))).all()
            self._rules = _RuleIndex([rule_def(r) for r in rows])
            self._rules_loaded_at = now
        return self._rules.matching(facts)

    async def process(self, conn: AsyncConnection, facts: list[Fact], *,
                      cause: Envelope | None = None,
                      causes: dict[str, Envelope] | None = None) -> list[Hit]:
        """Record facts, evaluate every rule they touch, act on the hits."""
        if not facts:
            return []
        engine = Engine(await self.load_rules(conn, facts), {}, {}, track_events=False)
        loaded: tuple[set, set] = (set(), set())
        if engine.rules:
            await self._ensure(conn, engine, facts, loaded)
        # Recorded after the state rows are locked, so that per worker the
        # recorded order (which a backtest replays) is the order evaluated here.
        seqs = await self._record_facts(conn, facts)
        if not engine.rules:
            return []
        queue = deque(facts)
        all_hits: list[Hit] = []
        fired: list[dict[str, Any]] = []
        # action events of the whole batch go into the outbox with one statement
        pending: list[tuple[Event, Envelope | None]] | None = (
            [] if self.record_many is not None else None)
        while queue:
            fact = queue.popleft()
            if fact.kind == "access_revoked":
                engine.add_rules(await self.load_rules(conn, [fact]))
                await self._ensure(conn, engine, [fact], loaded)
            for hit in engine.apply(fact):
                all_hits.append(hit)
                hit_cause = causes.get(hit.event_id, cause) if causes else cause
                derived = await self.act(conn, hit, hit_cause,
                                         trigger_seq=seqs.get(hit.event_id),
                                         fired=fired, pending=pending)
                if derived:
                    if causes is not None and hit_cause is not None:
                        causes.update((d.event_id, hit_cause) for d in derived)
                    seqs.update(await self._record_facts(conn, derived))
                    queue.extend(derived)
        await self._flush(conn, engine, loaded)
        if pending:
            await self.record_many(conn, pending)  # type: ignore[misc]
        if fired:
            await conn.execute(dialect_insert(conn)(firings).on_conflict_do_nothing(
                index_elements=["firing_id"]), fired)
        return all_hits

    async def _record_facts(self, conn: AsyncConnection, facts: list[Fact]) -> dict[str, int]:
        if conn.dialect.name == "postgresql":
            dumps = orjson.dumps
            rows = await conn.execute(_PG_RECORD_FACTS, {
                "e": [f.event_id for f in facts], "k": [f.kind for f in facts],
                "at": [f.at for f in facts], "w": [f.worker_id for f in facts],
                "p": [f.pool_id for f in facts], "pr": [f.project_id for f in facts],
                "t": [f.task_id for f in facts], "d": [dumps(f.data).decode() for f in facts]})
            return {r[0]: r[1] for r in rows}
        rows = await conn.execute(
            recorded_facts.insert().returning(recorded_facts.c.event_id, recorded_facts.c.seq,
                                              sort_by_parameter_order=True),
            [fact_row(f) for f in facts])
        return {r.event_id: r.seq for r in rows}

    async def _ensure(self, conn: AsyncConnection, engine: Engine, facts: list[Fact],
                      loaded: tuple[set, set]) -> None:
        """Load (and lock) the vote and state rows these facts touch into the engine.

        Missing rows are created empty and then all are locked in key order, so
        concurrent deliveries for the same worker (or task) queue instead of
        overwriting each other's counts.
        """
        loaded_rows, loaded_tasks = loaded
        tasks = sorted({k[1] for f in facts for k in engine.vote_keys(f)} - loaded_tasks)
        if tasks:
            for (task_id,), data in await self._lock_rows(
                    conn, task_votes, [task_votes.c.task_id], [(t,) for t in tasks],
                    lambda key: {"task_id": key[0], "data": {}}):
                for rule_id, v in data.items():
                    engine.votes[(rule_id, task_id)] = v
            loaded_tasks.update(tasks)
        keys = sorted({(k[1], k[2]) for f in facts for k in engine.state_keys(f)}
                      - loaded_rows)
        if keys:
            now = self.clock.now()
            for (w, p), data in await self._lock_rows(
                    conn, collector_state,
                    [collector_state.c.worker_id, collector_state.c.pool_key], keys,
                    lambda key: {"worker_id": key[0], "pool_key": key[1], "data": {},
                                 "updated_at": now}):
                for rule_id, st in data.items():  # each rule's state still encoded
                    engine.states[(rule_id, w, p)] = st
            loaded_rows.update(keys)

    @staticmethod
    async def _lock_rows(conn: AsyncConnection, table: Any, cols: list[Any],
                         keys: list[tuple[str, ...]],
                         empty_row: Callable[[tuple[str, ...]], dict[str, Any]]
                         ) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
        """Lock rows by key (in key order), creating the missing ones empty first.

        In the steady state every row exists and this is one SELECT ... FOR UPDATE.
        """
        def select_for_update(ks: list[tuple[str, ...]]) -> Any:
            return (select(*cols, table.c.data).where(keys_in(conn, cols, ks))
                    .order_by(*cols).with_for_update())

        found = [(tuple(r[:-1]), r[-1]) for r in await conn.execute(select_for_update(keys))]
        missing = sorted(set(keys) - {k for k, _ in found})
        if missing:
            await conn.execute(
                dialect_insert(conn)(table).on_conflict_do_nothing(
                    index_elements=[c.name for c in cols]),
                [empty_row(k) for k in missing])
            found += [(tuple(r[:-1]), r[-1])
                      for r in await conn.execute(select_for_update(missing))]
        return found

    async def _flush(self, conn: AsyncConnection, engine: Engine,
                     loaded: tuple[set, set]) -> None:
        """Write back every row with a changed rule state (one statement per table)."""
        ins = dialect_insert(conn)
        now = self.clock.now()
        rows = {(k[1], k[2]) for k in engine.dirty_states}
        if rows:
            data: dict[tuple[str, str], dict[str, Any]] = {r: {} for r in rows}
            dumps = orjson.dumps
            for (rule_id, w, p), st in engine.states.items():  # hot: no call per state
                d = data.get((w, p))
                if d is not None:
                    d[rule_id] = st if st.__class__ is str else dumps(st).decode()
            ordered = sorted(data.items())
            if conn.dialect.name == "postgresql":
                await conn.execute(_PG_SAVE_STATES, {
                    "w": [w for (w, _), _ in ordered], "p": [p for (_, p), _ in ordered],
                    "d": [dumps(d).decode() for _, d in ordered], "now": now})
            else:
                stmt = ins(collector_state)
                await conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["worker_id", "pool_key"],
                        set_={"data": stmt.excluded.data,
                              "updated_at": stmt.excluded.updated_at}),
                    [{"worker_id": w, "pool_key": p, "data": d, "updated_at": now}
                     for (w, p), d in ordered])
        tasks = {k[1] for k in engine.dirty_votes}
        if tasks:
            votes: dict[str, dict[str, Any]] = {t: {} for t in tasks}
            for (rule_id, t), v in engine.votes.items():
                if t in votes:
                    votes[t][rule_id] = v
            ordered_votes = sorted(votes.items())
            if conn.dialect.name == "postgresql":
                await conn.execute(_PG_SAVE_VOTES, {
                    "t": [t for t, _ in ordered_votes],
                    "d": [orjson.dumps(d).decode() for _, d in ordered_votes]})
            else:
                stmt = ins(task_votes)
                await conn.execute(
                    stmt.on_conflict_do_update(index_elements=["task_id"],
                                               set_={"data": stmt.excluded.data}),
                    [{"task_id": t, "data": d} for t, d in ordered_votes])

    @staticmethod
    async def counted_events(conn: AsyncConnection, firing_facts: dict[str, Any],
                             worker_id: str) -> list[str]:
        """The ids of the latest events of the kinds a firing's rule counts, up to the
        event that made it fire (looked up when explaining, not on the hot path)."""
        seq = firing_facts.get("trigger_seq")
        kind = firing_facts["collector"]["kind"]
        q = (select(recorded_facts.c.event_id)
             .where(recorded_facts.c.worker_id == worker_id,
                    recorded_facts.c.kind.in_(sorted(domain.FACT_KINDS[kind])))
             .order_by(recorded_facts.c.seq.desc())
             .limit(firing_facts.get("history_size") or domain.RECENT_EVENTS))
        if seq is not None:
            q = q.where(recorded_facts.c.seq <= seq)
        if firing_facts.get("pool_key") != domain.PLATFORM_POOL_KEY:
            q = q.where(recorded_facts.c.pool_id == firing_facts.get("pool_key"))
        return [r[0] for r in await conn.execute(q)][::-1]

    # ---------------------------------------------------------------- actions

    async def _worker_pools(self, conn: AsyncConnection, worker_id: str, *,
                            project_id: str | None = None) -> list[tuple[str, str | None]]:
        q = select(submissions.c.pool_id, submissions.c.project_id).distinct().where(
            submissions.c.worker_id == worker_id)
        if project_id is not None:
            q = q.where(submissions.c.project_id == project_id)
        return [(r.pool_id, r.project_id) for r in await conn.execute(q)]

    async def act(self, conn: AsyncConnection, hit: Hit, cause: Envelope | None, *,
                  trigger_seq: int | None = None,
                  fired: list[dict[str, Any]] | None = None,
                  pending: list[tuple[Event, Envelope | None]] | None = None) -> list[Fact]:
        """Turn a hit into its action event and a firing row (appended to ``fired``, or
        written at once); returns derived facts."""
        a = hit.rule.action
        t = a["type"]
        base = {"rule_id": hit.rule.rule_id, "firing_id": hit.firing_id,
                "worker_id": hit.worker_id}
        event: Event | None = None
        outcome = ""
        derived: list[Fact] = []
        if t == "restriction":
            scope = a["scope"]
            pool_id = hit.pool_id if scope == "pool" else None
            project_id = hit.project_id if scope == "project" else None
            if scope == "project" and project_id is None:
                scope, pool_id = "pool", hit.pool_id  # no project known: narrow to the pool
            rid = domain.restriction_id_for(hit.firing_id)
            await conn.execute(restrictions.insert().values(
                restriction_id=rid, rule_id=hit.rule.rule_id, firing_id=hit.firing_id,
                worker_id=hit.worker_id, scope=scope, pool_id=pool_id, project_id=project_id,
                pool_key=hit.pool_key, private_comment=a["private_comment"],
                applied_at=hit.at, until=hit.restriction_until))
            event = RestrictionApplied(**base, restriction_id=rid, scope=scope, pool_id=pool_id,
                                       project_id=project_id, until=hit.restriction_until,
                                       private_comment=a["private_comment"])
            # Access to these pools is revoked: feeds re-execution (access_revoked) rules.
            if scope == "pool":
                pools = [(hit.pool_id, hit.project_id)]
            else:
                pools = await self._worker_pools(conn, hit.worker_id, project_id=project_id)
                if hit.pool_id not in {p for p, _ in pools}:
                    pools.append((hit.pool_id, hit.project_id))
            derived = [Fact(f"{hit.firing_id}:revoked:{p}", "access_revoked", hit.at,
                            hit.worker_id, p, pr, None, {"reason": "restriction"})
                       for p, pr in sorted(pools, key=lambda x: x[0])]
        elif t in ("set_skill", "set_skill_from_field"):
            value = a["value"] if t == "set_skill" else round(hit.values[a["from_field"]])
            event = SkillSet(**base, skill=a["skill"], value=int(value))
        elif t == "accept_all":
            event = AcceptAllAssignments(**base, pool_id=hit.pool_id)
        elif t == "reject_all":
            manual = (await conn.execute(select(submissions.c.assignment_id).where(
                submissions.c.worker_id == hit.worker_id, submissions.c.pool_id == hit.pool_id,
                submissions.c.review_mode == "manual").limit(1))).first()
            if manual is None:
                outcome = "skipped: the pool has no manual review for this worker's answers"
            else:
                event = RejectAllAssignments(**base, pool_id=hit.pool_id,
                                             public_comment=a["public_comment"])
        elif t == "change_overlap":
            task_ids = [r[0] for r in await conn.execute(
                select(submissions.c.task_id).distinct().where(
                    submissions.c.worker_id == hit.worker_id,
                    submissions.c.pool_id == hit.pool_id).order_by(submissions.c.task_id))]
            if not task_ids:
                outcome = "skipped: the worker answered no task in the pool"
            else:
                event = OverlapChanged(**base, pool_id=hit.pool_id, task_ids=task_ids,
                                       add=int(a["add"]))
        elif t == "bonus":
            event = BonusGranted(**base, bonus_id=f"bonus-{hit.firing_id}", pool_id=hit.pool_id,
                                 amount_minor=int(a["amount_minor"]), currency=a["currency"])
        if event is not None:
            if pending is not None:
                pending.append((event, cause))
                outcome = spec_for_model(type(event)).type
            else:
                outcome = (await self.record(conn, event, cause)).type
        row = dict(firing_id=hit.firing_id, rule_id=hit.rule.rule_id, worker_id=hit.worker_id,
                   pool_id=hit.pool_id, project_id=hit.project_id, fired_at=hit.at, action=a,
                   outcome=outcome, facts={**hit.facts(), "trigger_event_id": hit.event_id,
                                           "trigger_seq": trigger_seq})
        if fired is not None:
            fired.append(row)
        else:
            await conn.execute(dialect_insert(conn)(firings).on_conflict_do_nothing(
                index_elements=["firing_id"]), [row])
        return derived

    # ------------------------------------------------------------ the sweeper

    async def lift_due(self, conn: AsyncConnection, now: datetime, limit: int = 500) -> int:
        """End temporary restrictions whose time is up; their rule's history starts over."""
        q = (select(restrictions).where(restrictions.c.lifted_at.is_(None),
                                        restrictions.c.until.is_not(None),
                                        restrictions.c.until <= now)
             .order_by(restrictions.c.until).limit(limit))
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        due = (await conn.execute(q)).all()
        for r in due:
            await conn.execute(update(restrictions)
                               .where(restrictions.c.restriction_id == r.restriction_id)
                               .values(lifted_at=now))
            key = (collector_state.c.worker_id == r.worker_id,
                   collector_state.c.pool_key == r.pool_key)
            data = (await conn.execute(select(collector_state.c.data).where(*key)
                                       .with_for_update())).scalar()
            if data and decode_state(data.get(r.rule_id)).get("rid") == r.restriction_id:
                await conn.execute(update(collector_state).where(*key).values(
                    data={**data, r.rule_id: encode_state(domain.new_state())},
                    updated_at=now))
            await self.record(conn, RestrictionLifted(
                restriction_id=r.restriction_id, worker_id=r.worker_id, lifted_at=now), None)
        return len(due)
