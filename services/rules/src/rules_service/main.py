"""Rules service: quality-control rules that watch the event stream and act on workers."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update

from contracts.envelope import Envelope
from contracts.events import Event
from contracts.rpc import Actor
from contracts.rpc import rules as rpc
from rules_service import domain
from rules_service.db import firings, metadata, recorded_facts, restrictions, rules
from rules_service.handlers import RuleRunner, fact_from_row
from rules_service.settings import RulesSettings
from servicekit.errors import Forbidden, Invalid, NotFound
from servicekit.service import Service, run


def _admin(actor: Actor) -> None:
    if actor.role != "admin":
        raise Forbidden("forbidden", "only admins manage quality-control rules")


def _staff(actor: Actor) -> None:
    if actor.role not in ("admin", "manager"):
        raise Forbidden("forbidden", "quality-control rules are visible to managers and admins")


def _checked(draft: rpc.RuleDraft) -> dict[str, Any]:
    """A complete, valid rule (normalized) or a ServiceError listing what is wrong."""
    d = draft.model_dump()
    missing, problems = domain.validate_rule(d)
    if missing:
        raise Invalid("rule_incomplete",
                      "every field of a rule is required; missing: " + ", ".join(missing),
                      details=missing)
    if problems:
        raise Invalid("rule_invalid", "; ".join(problems), details=problems)
    return domain.normalize_rule(d)


def _rule_out(row: Any) -> rpc.Rule:
    return rpc.Rule(**row._mapping)


def create_service(settings: RulesSettings | None = None, *,
                   clock: domain.Clock | None = None) -> Service:
    settings = settings or RulesSettings()
    svc = Service(settings, metadata)
    clock = clock or domain.Clock()

    async def record(conn, event: Event, cause: Envelope | None) -> Envelope:
        return await svc.record(conn, event, cause=cause)

    runner = RuleRunner(record=record, clock=clock,
                        rules_cache_ttl_s=settings.rules_cache_ttl_s,
                        record_many=svc.record_many)
    svc.runner = runner  # type: ignore[attr-defined]  # tests and the benchmark drive it
    svc.clock = clock  # type: ignore[attr-defined]

    # Batch consumers: a fetched batch is evaluated as one unit (one read and one write
    # of each state row, one insert of the recorded facts), as the benchmark measures.
    @svc.consume_batch("task.>", name="task-events")
    async def on_task_events(conn, items: list[tuple[Event, Envelope]]) -> None:
        """Submissions, skips and captcha answers feed the answer-quality collectors."""
        await runner.handle(conn, items)

    @svc.consume_batch("review.>", name="review-events")
    async def on_review_events(conn, items: list[tuple[Event, Envelope]]) -> None:
        """Acceptances and rejections feed acceptance rate and assessments."""
        await runner.handle(conn, items)

    @svc.consume_batch("ledger.credited", name="ledger-credited")
    async def on_credited(conn, items: list[tuple[Event, Envelope]]) -> None:
        """Credits feed the 24 h earnings collectors."""
        await runner.handle(conn, items)

    async def sweep() -> int:
        async with svc.transaction() as conn:
            return await runner.lift_due(conn, clock.now())

    svc.sweep = sweep  # type: ignore[attr-defined]

    @svc.periodic(settings.sweep_interval_s)
    async def lift_restrictions() -> None:
        """Lift temporary restrictions whose time is up (rules.restriction.lifted)."""
        while await sweep() >= 500:
            pass

    # ------------------------------------------------------------------ rpcs

    async def _get(conn, rule_id: str) -> Any:
        row = (await conn.execute(select(rules).where(rules.c.rule_id == rule_id))).first()
        if row is None:
            raise NotFound("rule_not_found", f"no rule {rule_id}")
        return row

    @svc.rpc(rpc.CREATE_RULE)
    async def create_rule(req: rpc.CreateRule) -> rpc.Rule:
        _admin(req.actor)
        rule = _checked(req.rule)
        now = clock.now()
        name = req.rule.name or f"{rule['collector']['kind']} -> {rule['action']['type']}"
        row = dict(rule_id=str(uuid.uuid4()), name=name, enabled=True, deleted=False,
                   created_by=req.actor.user_id, created_at=now, updated_at=now, **rule)
        async with svc.transaction() as conn:
            await conn.execute(rules.insert().values(**row))
        runner.invalidate_rules()
        return rpc.Rule(**row)

    @svc.rpc(rpc.LIST_RULES)
    async def list_rules(req: rpc.ListRules) -> rpc.Rules:
        _staff(req.actor)
        q = select(rules)
        if not req.include_deleted:
            q = q.where(rules.c.deleted.is_(False))
        if req.pool_id:
            q = q.where(rules.c.pool_id == req.pool_id)
        if req.project_id:
            q = q.where(rules.c.project_id == req.project_id)
        async with svc.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar()
            rows = (await conn.execute(q.order_by(rules.c.created_at, rules.c.rule_id)
                                       .limit(req.page.limit).offset(req.page.offset))).all()
        return rpc.Rules(items=[_rule_out(r) for r in rows], total=total or 0)

    @svc.rpc(rpc.GET_RULE)
    async def get_rule(req: rpc.RuleRef) -> rpc.Rule:
        _staff(req.actor)
        async with svc.engine.connect() as conn:
            return _rule_out(await _get(conn, req.rule_id))

    async def _change(rule_id: str, **values: Any) -> rpc.Rule:
        async with svc.transaction() as conn:
            row = await _get(conn, rule_id)
            if row.deleted:
                raise NotFound("rule_not_found", f"rule {rule_id} was deleted")
            await conn.execute(update(rules).where(rules.c.rule_id == rule_id)
                               .values(updated_at=clock.now(), **values))
            out = _rule_out(await _get(conn, rule_id))
        runner.invalidate_rules()
        return out

    @svc.rpc(rpc.UPDATE_RULE)
    async def update_rule(req: rpc.UpdateRule) -> rpc.Rule:
        _admin(req.actor)
        return await _change(req.rule_id, enabled=req.enabled)

    @svc.rpc(rpc.DELETE_RULE)
    async def delete_rule(req: rpc.RuleRef) -> rpc.Rule:
        _admin(req.actor)
        return await _change(req.rule_id, deleted=True, enabled=False)

    def _restriction_out(r: Any) -> rpc.Restriction:
        return rpc.Restriction(**{k: v for k, v in r._mapping.items() if k != "pool_key"})

    @svc.rpc(rpc.EXPLAIN_WORKER)
    async def explain_worker(req: rpc.ExplainWorker) -> rpc.WorkerExplanation:
        _staff(req.actor)
        q = select(firings).where(firings.c.worker_id == req.worker_id)
        if req.pool_id:
            q = q.where(firings.c.pool_id == req.pool_id)
        if req.rule_id:
            q = q.where(firings.c.rule_id == req.rule_id)
        async with svc.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar()
            rows = (await conn.execute(q.order_by(firings.c.fired_at.desc())
                                       .limit(req.page.limit).offset(req.page.offset))).all()
            out = []
            for r in rows:
                f = dict(r._mapping)
                if not f["facts"].get("event_ids"):
                    f["facts"] = {**f["facts"], "event_ids": await RuleRunner.counted_events(
                        conn, f["facts"], f["worker_id"])}
                out.append(rpc.Firing(**f))
            rs = (await conn.execute(select(restrictions)
                                     .where(restrictions.c.worker_id == req.worker_id)
                                     .order_by(restrictions.c.applied_at.desc())
                                     .limit(100))).all()
        return rpc.WorkerExplanation(
            worker_id=req.worker_id, total=total or 0,
            firings=out,
            restrictions=[_restriction_out(r) for r in rs])

    @svc.rpc(rpc.LIST_RESTRICTIONS)
    async def list_restrictions(req: rpc.ListRestrictions) -> rpc.Restrictions:
        _staff(req.actor)
        q = select(restrictions)
        if req.worker_id:
            q = q.where(restrictions.c.worker_id == req.worker_id)
        if req.pool_id:
            q = q.where(restrictions.c.pool_id == req.pool_id)
        if req.active_only:
            q = q.where(restrictions.c.lifted_at.is_(None))
        async with svc.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(q.subquery()))).scalar()
            rows = (await conn.execute(q.order_by(restrictions.c.applied_at.desc())
                                       .limit(req.page.limit).offset(req.page.offset))).all()
        return rpc.Restrictions(items=[_restriction_out(r) for r in rows], total=total or 0)

    @svc.rpc(rpc.BACKTEST)
    async def backtest(req: rpc.Backtest) -> rpc.BacktestResult:
        _staff(req.actor)
        rule = _checked(req.rule)
        draft = domain.RuleDef(rule_id="draft", **{k: rule[k] for k in (
            "scope", "pool_id", "project_id", "collector", "conditions", "action")})
        pool_id = req.pool_id or draft.pool_id
        q = select(recorded_facts)
        if pool_id:
            q = q.where(recorded_facts.c.pool_id == pool_id)
        elif draft.scope == "project":
            q = q.where(recorded_facts.c.project_id == draft.project_id)
        if req.since:
            q = q.where(recorded_facts.c.at >= req.since)
        if req.until:
            q = q.where(recorded_facts.c.at < req.until)
        limit = settings.backtest_max_facts
        q = q.order_by(recorded_facts.c.seq).limit(limit + 1)
        async with svc.engine.begin() as conn:
            rows = (await conn.execute(q)).all()
        truncated = len(rows) > limit
        scanned, hits = domain.backtest(draft, (fact_from_row(r) for r in rows[:limit]))
        out = [rpc.BacktestHit(worker_id=h.worker_id, pool_id=h.pool_id, at=h.at,
                               values=h.values, event_ids=h.event_ids) for h in hits]
        return rpc.BacktestResult(events_scanned=scanned, truncated=truncated, hits=out,
                                  workers=sorted({h.worker_id for h in hits}))

    return svc


def main() -> None:
    run(create_service())


if __name__ == "__main__":
    main()
