"""All of the rules service's SQL: statements built once, results as contract models,
facts, rule definitions or plain rows.

The hot path (a consumer's batch) costs a fixed number of statements however many events
it holds: one that inserts the new submissions and reads the reviewed ones' statuses, one
update of those statuses, two that create the missing vote rows, lock the others and read
them, two that do so with the state rows, one insert of the recorded facts,
one statement writing the changed state rows, the changed vote rows and the firings; the
kit adds the inbox claim and one outbox insert. Batch statements take arrays (``unnest``),
so one prepared statement, built once, serves every batch size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.rpc import rules as rpc
from rules_service.db import (
    collector_state,
    firings,
    recorded_facts,
    restrictions,
    rule_versions,
    rules,
    submissions,
)
from rules_service.domain import Fact, RuleDef
from servicekit.prepared import Prepared

Key = tuple[str, ...]

# ---------------------------------------------------------------- rules

_INSERT_RULE = rules.insert()
_RULE = select(rules).where(rules.c.rule_id == bindparam("b_rule_id"))
_ENABLED_RULES = select(rules).where(rules.c.enabled.is_(True), rules.c.deleted.is_(False))
# bind names differ from the columns': an UPDATE's SET binds take the column names
_LIVE_RULE = (rules.c.rule_id == bindparam("b_rule_id"), rules.c.deleted.is_(False))
_SET_ENABLED = (update(rules).where(*_LIVE_RULE)
                .values(enabled=bindparam("b_enabled"), updated_at=bindparam("b_now"))
                .returning(*rules.c))
_DELETE_RULE = (update(rules).where(*_LIVE_RULE)
                .values(deleted=True, enabled=False, updated_at=bindparam("b_now"))
                .returning(*rules.c))

# ------------------------------------------------------------- the hot path

# A batch's new submissions and the statuses of the submissions it reviews, in one
# execution over arrays (an executemany ran one INSERT per row in the server). The reading
# part does not see the rows its own insert adds (one snapshot): those come from RETURNING,
# so each reviewed submission comes back from exactly one part.
_SUBMISSIONS = ("INSERT INTO submissions (assignment_id, task_id, pool_id, project_id, "
                "worker_id, status, review_mode, submitted_at) SELECT * FROM unnest("
                "CAST(:a AS text[]), CAST(:t AS text[]), CAST(:p AS text[]), "
                "CAST(:pr AS text[]), CAST(:w AS text[]), CAST(:s AS text[]), "
                "CAST(:m AS text[]), CAST(:at AS timestamptz[])) "
                "ON CONFLICT (assignment_id) DO NOTHING")
_ADD_SUBMISSIONS_READ_STATUSES = Prepared(text(
    f"WITH new AS ({_SUBMISSIONS} RETURNING assignment_id, status) "
    "SELECT assignment_id, status FROM submissions "
    "WHERE assignment_id = ANY(CAST(:ids AS text[])) "
    "UNION ALL SELECT assignment_id, status FROM new "
    "WHERE assignment_id = ANY(CAST(:ids AS text[]))"))
# every changed status in one statement, in assignment order (the order its rows lock)
_SET_SUBMISSION_STATUSES = Prepared(text(
    "UPDATE submissions SET status = u.s FROM unnest(CAST(:a AS text[]), "
    "CAST(:s AS text[])) AS u(a, s) WHERE submissions.assignment_id = u.a"))
# A batch's rows, locked in one order that every batch shares, so that two batches never
# wait on each other crosswise (one waits for the other's commit instead): its vote rows in
# task order, then its state rows in key order. The state rows come second because which
# ones a batch needs depends on the votes: when a task's majority is reached, every earlier
# voter's state counts the outcome. Each table takes one statement that creates the
# missing rows empty and locks the others: ``ON CONFLICT DO UPDATE ... WHERE false`` locks
# a row's latest version, also one another batch created after the statement's snapshot
# (it waits for that batch to commit or roll back), and writes nothing. (Locking reads
# with FOR UPDATE miss rows created after their snapshot; the second read those then need
# took its locks out of the order, and two replicas deadlocked so.) A plain read follows
# each, in a new snapshot: the rows as the last batch holding them committed them. Keys
# come as arrays (one prepared statement for every batch size), zipped back by unnest;
# JSON documents come back as text, decoded by the store.
_LOCK_VOTES = Prepared(text(
    "INSERT INTO task_votes (task_id, data) "
    "SELECT DISTINCT t, '{}' FROM unnest(CAST(:t AS text[])) AS k(t) ORDER BY t "
    "ON CONFLICT (task_id) DO UPDATE SET data = task_votes.data WHERE false"))
_READ_VOTES = Prepared(text(
    "SELECT task_id, data FROM task_votes WHERE task_id = ANY(CAST(:t AS text[]))"))
_LOCK_STATES = Prepared(text(
    "INSERT INTO collector_state (worker_id, pool_key, data, updated_at) "
    "SELECT DISTINCT w, p, '{}', CAST(:now AS timestamptz) FROM unnest("
    "CAST(:w AS text[]), CAST(:p AS text[])) AS k(w, p) ORDER BY w, p "
    "ON CONFLICT (worker_id, pool_key) DO UPDATE SET data = collector_state.data WHERE false"))
_READ_STATES = Prepared(text(
    "SELECT worker_id, pool_key, data FROM collector_state "
    "WHERE (worker_id, pool_key) IN (SELECT w, p FROM unnest("
    "CAST(:w AS text[]), CAST(:p AS text[])) AS k(w, p))"))

# What a batch changed, written by one statement over arrays (one round trip instead of
# one per table, one execution instead of one per row): its state rows, its vote rows and
# its firings. Every data-modifying part of a WITH runs to completion, referenced or not;
# empty arrays write nothing.
_SAVE_BATCH = Prepared(text(
    "WITH s AS (INSERT INTO collector_state (worker_id, pool_key, data, updated_at) "
    "SELECT w, p, d, CAST(:now AS timestamptz) FROM unnest("
    "CAST(:sw AS text[]), CAST(:sp AS text[]), CAST(:sd AS text[])) AS u(w, p, d) "
    "ON CONFLICT (worker_id, pool_key) DO UPDATE "
    "SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at), "
    "v AS (INSERT INTO task_votes (task_id, data) "
    "SELECT t, d FROM unnest(CAST(:vt AS text[]), CAST(:vd AS text[])) AS u(t, d) "
    "ON CONFLICT (task_id) DO UPDATE SET data = EXCLUDED.data) "
    "INSERT INTO firings (firing_id, rule_id, worker_id, pool_id, project_id, fired_at, "
    "action, outcome, facts, rule_version) "
    "SELECT * FROM unnest(CAST(:fid AS text[]), CAST(:frule AS text[]), "
    "CAST(:fw AS text[]), CAST(:fp AS text[]), CAST(:fpr AS text[]), "
    "CAST(:fat AS timestamptz[]), CAST(:fact AS text[]), CAST(:fout AS text[]), "
    "CAST(:ffacts AS text[]), CAST(:fv AS integer[])) "
    "ON CONFLICT (firing_id) DO NOTHING"))
# The batch's facts in one statement, numbered (seq) in the order they are evaluated.
_RECORD_FACTS = Prepared(text(
    "INSERT INTO recorded_facts (event_id, kind, at, worker_id, pool_id, project_id, task_id, "
    "data) SELECT e, k, at, w, p, pr, t, d FROM unnest(CAST(:e AS text[]), "
    "CAST(:k AS text[]), CAST(:at AS timestamptz[]), CAST(:w AS text[]), CAST(:p AS text[]), "
    "CAST(:pr AS text[]), CAST(:t AS text[]), CAST(:d AS text[])) WITH ORDINALITY "
    "AS u(e, k, at, w, p, pr, t, d, n) ORDER BY n RETURNING event_id, seq"))

# ------------------------------------------------------------------ actions

_INSERT_RESTRICTION = restrictions.insert()
_WORKER_POOLS = select(submissions.c.pool_id, submissions.c.project_id).distinct().where(
    submissions.c.worker_id == bindparam("b_worker"))
_WORKER_POOLS_IN_PROJECT = _WORKER_POOLS.where(submissions.c.project_id == bindparam("b_project"))
_MANUAL_ANSWER = select(submissions.c.assignment_id).where(
    submissions.c.worker_id == bindparam("b_worker"),
    submissions.c.pool_id == bindparam("b_pool"),
    submissions.c.review_mode == "manual").limit(1)
_WORKER_TASKS = (select(submissions.c.task_id).distinct()
                 .where(submissions.c.worker_id == bindparam("b_worker"),
                        submissions.c.pool_id == bindparam("b_pool"))
                 .order_by(submissions.c.task_id))

# ------------------------------------------------------------------ sweeper

_STATE_KEY = (collector_state.c.worker_id == bindparam("b_worker"),
              collector_state.c.pool_key == bindparam("b_pool_key"))
_STATE_ROW = select(collector_state.c.data).where(*_STATE_KEY).with_for_update()
_PUT_STATE_ROW = (update(collector_state).where(*_STATE_KEY)
                  .values(data=bindparam("b_data", type_=collector_state.c.data.type),
                          updated_at=bindparam("b_now")))
_LIFT = (update(restrictions)
         .where(restrictions.c.restriction_id.in_(bindparam("b_ids", expanding=True)))
         .values(lifted_at=bindparam("b_now")))


@dataclass(frozen=True)
class DueRestriction:
    restriction_id: str
    rule_id: str
    worker_id: str
    pool_key: str


def _rule_def(m: Any) -> RuleDef:
    return RuleDef(rule_id=m["rule_id"], scope=m["scope"], pool_id=m["pool_id"],
                   project_id=m["project_id"], collector=m["collector"],
                   conditions=m["conditions"], action=m["action"], version=m["version"])


def _version_row(m: Any, *, edited_by: str, edited_at: datetime) -> dict[str, Any]:
    return {"rule_id": m["rule_id"], "version": m.get("version", 1), "name": m["name"],
            "collector": m["collector"], "conditions": m["conditions"],
            "action": m["action"], "evidence_public": m.get("evidence_public", True),
            "edited_by": edited_by, "edited_at": edited_at}


def _restriction(m: Any) -> rpc.Restriction:
    return rpc.Restriction(**{k: v for k, v in m.items() if k != "pool_key"})


def _fact(m: Any) -> Fact:
    return Fact(event_id=m["event_id"], kind=m["kind"], at=m["at"], worker_id=m["worker_id"],
                pool_id=m["pool_id"], project_id=m["project_id"], task_id=m["task_id"],
                data=m["data"])


class RulesStore:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def _page(self, query: Any, order: Sequence[Any], limit: int,
                    offset: int) -> tuple[list[Any], int]:
        total = (await self.conn.execute(
            select(func.count()).select_from(query.subquery()))).scalar_one()
        rows = (await self.conn.execute(query.order_by(*order).limit(limit).offset(offset)))
        return [r._mapping for r in rows], int(total)

    # ------------------------------------------------------------ rules

    async def add_rule(self, row: dict[str, Any]) -> None:
        """A new rule and its first version."""
        await self.conn.execute(_INSERT_RULE, row)
        await self.conn.execute(rule_versions.insert(), _version_row(
            row, edited_by=row["created_by"], edited_at=row["created_at"]))

    async def edit_rule(self, rule_id: str, *, name: str, conditions: list[Any],
                        action: dict[str, Any], evidence_public: bool | None, by: str,
                        now: datetime) -> rpc.Rule | None:
        """Replace a live rule's name, conditions and action as its next version (the
        row is locked by the update, so two edits get two versions); None if there is
        no such rule or it was deleted."""
        values: dict[str, Any] = {"name": name, "conditions": conditions, "action": action,
                                  "updated_at": now, "version": rules.c.version + 1}
        if evidence_public is not None:
            values["evidence_public"] = evidence_public
        row = (await self.conn.execute(
            update(rules).where(rules.c.rule_id == rule_id, rules.c.deleted.is_(False))
            .values(**values).returning(*rules.c))).mappings().first()
        if row is None:
            return None
        await self.conn.execute(rule_versions.insert(),
                                _version_row(row, edited_by=by, edited_at=now))
        return rpc.Rule(**row)

    async def rule_versions(self, rule_id: str) -> list[rpc.RuleVersion]:
        rows = await self.conn.execute(
            select(rule_versions).where(rule_versions.c.rule_id == rule_id)
            .order_by(rule_versions.c.version.desc()))
        return [rpc.RuleVersion(**r._mapping) for r in rows]

    async def get_rule(self, rule_id: str) -> rpc.Rule | None:
        row = (await self.conn.execute(_RULE, {"b_rule_id": rule_id})).first()
        return rpc.Rule(**row._mapping) if row is not None else None

    async def list_rules(self, *, pool_id: str | None, project_id: str | None,
                         include_deleted: bool, limit: int,
                         offset: int) -> tuple[list[rpc.Rule], int]:
        q = select(rules)
        if not include_deleted:
            q = q.where(rules.c.deleted.is_(False))
        if pool_id:
            q = q.where(rules.c.pool_id == pool_id)
        if project_id:
            q = q.where(rules.c.project_id == project_id)
        rows, total = await self._page(q, [rules.c.created_at, rules.c.rule_id], limit, offset)
        return [rpc.Rule(**m) for m in rows], total

    async def change_rule(self, rule_id: str, now: datetime, *,
                          enabled: bool | None = None,
                          delete: bool = False) -> rpc.Rule | None:
        """Enable/disable or delete a rule that is not deleted; None if there is none."""
        params: dict[str, Any] = {"b_rule_id": rule_id, "b_now": now}
        if not delete:
            params["b_enabled"] = enabled
        row = (await self.conn.execute(_DELETE_RULE if delete else _SET_ENABLED,
                                       params)).first()
        return rpc.Rule(**row._mapping) if row is not None else None

    async def enabled_rules(self) -> list[RuleDef]:
        return [_rule_def(r._mapping) for r in await self.conn.execute(_ENABLED_RULES)]

    # ------------------------------------------------ submissions (facts)

    async def add_submissions(self, rows: list[dict[str, Any]],
                              reviewed: list[str]) -> dict[str, str]:
        """Store the new submissions (once each); the statuses of the ``reviewed`` ones,
        those just added included (one statement)."""
        return {r[0]: r[1] for r in await _ADD_SUBMISSIONS_READ_STATUSES.all(self.conn, {
            "a": [r["assignment_id"] for r in rows], "t": [r["task_id"] for r in rows],
            "p": [r["pool_id"] for r in rows], "pr": [r["project_id"] for r in rows],
            "w": [r["worker_id"] for r in rows], "s": [r["status"] for r in rows],
            "m": [r["review_mode"] for r in rows], "at": [r["submitted_at"] for r in rows],
            "ids": reviewed})}

    async def set_submission_statuses(self, statuses: dict[str, str]) -> None:
        """{assignment id: new status} in one statement."""
        ids = sorted(statuses)
        await _SET_SUBMISSION_STATUSES.all(self.conn, {"a": ids,
                                                        "s": [statuses[i] for i in ids]})

    # ---------------------------------------------------- state and votes

    async def lock_votes(self, task_ids: list[str]) -> list[tuple[Key, dict[str, Any]]]:
        """The vote rows of these tasks ({rule_id: votes}), created empty where missing,
        locked in task order until the batch commits (so concurrent deliveries for the
        same task queue instead of overwriting each other). Two statements."""
        await _LOCK_VOTES.all(self.conn, {"t": task_ids})
        loads = orjson.loads
        return [((r[0],), loads(r[1])) for r in await _READ_VOTES.all(self.conn,
                                                                       {"t": task_ids})]

    async def lock_states(self, keys: list[tuple[str, str]], now: datetime
                          ) -> list[tuple[Key, dict[str, str]]]:
        """The state rows of these (worker, pool key)s ({rule_id: encoded state}), created
        empty where missing, locked in key order until the batch commits. A batch locks
        its vote rows first (:meth:`lock_votes`), then its state rows. Two statements."""
        params = {"w": [k[0] for k in keys], "p": [k[1] for k in keys]}
        await _LOCK_STATES.all(self.conn, {**params, "now": now})
        loads = orjson.loads
        return [((r[0], r[1]), loads(r[2])) for r in await _READ_STATES.all(self.conn, params)]

    async def save(self, states: list[tuple[tuple[str, str], dict[str, str]]],
                   votes: list[tuple[str, dict[str, Any]]], fired: list[dict[str, Any]],
                   now: datetime) -> None:
        """Write a batch's changes in one statement: ((worker, pool key), {rule_id: encoded
        state}) rows, (task, {rule_id: votes}) rows and firings (once each by id)."""
        dumps = orjson.dumps
        await _SAVE_BATCH.all(self.conn, {
            "now": now,
            "sw": [w for (w, _), _ in states], "sp": [p for (_, p), _ in states],
            "sd": [dumps(d).decode() for _, d in states],
            "vt": [t for t, _ in votes], "vd": [dumps(d).decode() for _, d in votes],
            "fid": [f["firing_id"] for f in fired], "frule": [f["rule_id"] for f in fired],
            "fw": [f["worker_id"] for f in fired], "fp": [f["pool_id"] for f in fired],
            "fpr": [f["project_id"] for f in fired], "fat": [f["fired_at"] for f in fired],
            "fact": [dumps(f["action"]).decode() for f in fired],
            "fout": [f["outcome"] for f in fired],
            "ffacts": [dumps(f["facts"]).decode() for f in fired],
            "fv": [f["rule_version"] for f in fired]})

    async def record_facts(self, facts: list[Fact]) -> dict[str, int]:
        """Record facts in this order; their sequence numbers by event id."""
        dumps = orjson.dumps
        rows = await _RECORD_FACTS.all(self.conn, {
            "e": [f.event_id for f in facts], "k": [f.kind for f in facts],
            "at": [f.at for f in facts], "w": [f.worker_id for f in facts],
            "p": [f.pool_id for f in facts], "pr": [f.project_id for f in facts],
            "t": [f.task_id for f in facts], "d": [dumps(f.data).decode() for f in facts]})
        return {r[0]: r[1] for r in rows}

    # ------------------------------------------------------------- actions

    async def add_restriction(self, row: dict[str, Any]) -> None:
        await self.conn.execute(_INSERT_RESTRICTION, row)

    async def worker_pools(self, worker_id: str, *,
                           project_id: str | None = None) -> list[tuple[str, str | None]]:
        q = _WORKER_POOLS if project_id is None else _WORKER_POOLS_IN_PROJECT
        rows = await self.conn.execute(q, {"b_worker": worker_id, "b_project": project_id})
        return [(r.pool_id, r.project_id) for r in rows]

    async def has_manual_answer(self, worker_id: str, pool_id: str) -> bool:
        return (await self.conn.execute(_MANUAL_ANSWER, {"b_worker": worker_id,
                                                         "b_pool": pool_id})).first() is not None

    async def worker_tasks(self, worker_id: str, pool_id: str) -> list[str]:
        return [r[0] for r in await self.conn.execute(_WORKER_TASKS, {"b_worker": worker_id,
                                                                      "b_pool": pool_id})]

    # ------------------------------------------------------------- sweeper

    async def due_restrictions(self, now: datetime, limit: int) -> list[DueRestriction]:
        """Temporary restrictions whose time is up, locked (replicas take different ones)."""
        q = (select(restrictions.c.restriction_id, restrictions.c.rule_id,
                    restrictions.c.worker_id, restrictions.c.pool_key)
             .where(restrictions.c.lifted_at.is_(None), restrictions.c.until.is_not(None),
                    restrictions.c.until <= now)
             .order_by(restrictions.c.until).limit(limit).with_for_update(skip_locked=True))
        return [DueRestriction(r.restriction_id, r.rule_id, r.worker_id, r.pool_key)
                for r in await self.conn.execute(q)]

    async def restriction(self, restriction_id: str, *, lock: bool = False
                          ) -> tuple[rpc.Restriction, DueRestriction] | None:
        """One restriction (locked when asked), as shown and as the sweeper lifts it."""
        q = select(restrictions).where(restrictions.c.restriction_id == restriction_id)
        m = (await self.conn.execute(q.with_for_update() if lock else q)).mappings().first()
        if m is None:
            return None
        return _restriction(m), DueRestriction(m["restriction_id"], m["rule_id"],
                                               m["worker_id"], m["pool_key"])

    async def lift_restrictions(self, restriction_ids: list[str], now: datetime) -> None:
        await self.conn.execute(_LIFT, {"b_ids": restriction_ids, "b_now": now})

    async def state_row(self, worker_id: str, pool_key: str) -> dict[str, Any] | None:
        """One state row, locked: {rule_id: state (encoded or not)}."""
        return (await self.conn.execute(_STATE_ROW, {"b_worker": worker_id,
                                                     "b_pool_key": pool_key})).scalar()

    async def put_state_row(self, worker_id: str, pool_key: str, data: dict[str, Any],
                            now: datetime) -> None:
        await self.conn.execute(_PUT_STATE_ROW, {"b_worker": worker_id,
                                                 "b_pool_key": pool_key, "b_data": data,
                                                 "b_now": now})

    # ------------------------------------------------------------- explain

    async def firings_of(self, worker_id: str, *, pool_id: str | None, rule_id: str | None,
                         limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        q = select(firings).where(firings.c.worker_id == worker_id)
        if pool_id:
            q = q.where(firings.c.pool_id == pool_id)
        if rule_id:
            q = q.where(firings.c.rule_id == rule_id)
        rows, total = await self._page(q, [firings.c.fired_at.desc()], limit, offset)
        return [dict(m) for m in rows], total

    async def counted_events(self, worker_id: str, *, kinds: list[str],
                             pool_id: str | None, up_to_seq: int | None,
                             limit: int) -> list[str]:
        """The ids of the latest facts of these kinds of a worker (in a pool, or anywhere),
        up to a sequence number, oldest first."""
        q = (select(recorded_facts.c.event_id)
             .where(recorded_facts.c.worker_id == worker_id, recorded_facts.c.kind.in_(kinds))
             .order_by(recorded_facts.c.seq.desc()).limit(limit))
        if up_to_seq is not None:
            q = q.where(recorded_facts.c.seq <= up_to_seq)
        if pool_id is not None:
            q = q.where(recorded_facts.c.pool_id == pool_id)
        return [r[0] for r in await self.conn.execute(q)][::-1]

    async def restrictions_of(self, worker_id: str, *, limit: int) -> list[rpc.Restriction]:
        rows = await self.conn.execute(
            select(restrictions).where(restrictions.c.worker_id == worker_id)
            .order_by(restrictions.c.applied_at.desc()).limit(limit))
        return [_restriction(r._mapping) for r in rows]

    async def list_restrictions(self, *, worker_id: str | None, pool_id: str | None,
                                active_only: bool, limit: int,
                                offset: int) -> tuple[list[rpc.Restriction], int]:
        q = select(restrictions)
        if worker_id:
            q = q.where(restrictions.c.worker_id == worker_id)
        if pool_id:
            q = q.where(restrictions.c.pool_id == pool_id)
        if active_only:
            q = q.where(restrictions.c.lifted_at.is_(None))
        rows, total = await self._page(q, [restrictions.c.applied_at.desc()], limit, offset)
        return [_restriction(m) for m in rows], total

    async def recorded(self, *, pool_id: str | None, project_id: str | None,
                       since: datetime | None, until: datetime | None,
                       limit: int) -> list[Fact]:
        """Recorded facts of a pool (or a project, or all), in the order evaluated."""
        q = select(recorded_facts)
        if pool_id:
            q = q.where(recorded_facts.c.pool_id == pool_id)
        elif project_id:
            q = q.where(recorded_facts.c.project_id == project_id)
        if since:
            q = q.where(recorded_facts.c.at >= since)
        if until:
            q = q.where(recorded_facts.c.at < until)
        rows = await self.conn.execute(q.order_by(recorded_facts.c.seq).limit(limit))
        return [_fact(r._mapping) for r in rows]

    async def worker_restrictions(self, worker_id: str, *, limit: int, offset: int
                                  ) -> tuple[list[dict[str, Any]], int]:
        """A worker's restrictions, newest first, each with the firing that caused it, the
        name of the rule version that fired and whether the rule shows its evidence now
        (the owner's current choice; all None for manual ones)."""
        q = (select(restrictions.c.restriction_id, restrictions.c.scope,
                    restrictions.c.pool_id, restrictions.c.project_id,
                    restrictions.c.applied_at, restrictions.c.until, restrictions.c.lifted_at,
                    restrictions.c.source, restrictions.c.rule_id, restrictions.c.rule_version,
                    firings.c.facts, rule_versions.c.name.label("rule_name"),
                    rules.c.evidence_public)
             .select_from(restrictions
                          .outerjoin(firings, firings.c.firing_id == restrictions.c.firing_id)
                          .outerjoin(rules, rules.c.rule_id == restrictions.c.rule_id)
                          .outerjoin(rule_versions,
                                     (rule_versions.c.rule_id == restrictions.c.rule_id)
                                     & (rule_versions.c.version
                                        == func.coalesce(restrictions.c.rule_version, 1))))
             .where(restrictions.c.worker_id == worker_id))
        rows, total = await self._page(
            q, [restrictions.c.applied_at.desc(), restrictions.c.restriction_id], limit,
            offset)
        return [dict(m) for m in rows], total
