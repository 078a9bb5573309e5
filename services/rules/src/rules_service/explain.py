"""The explain slice: why rules acted on a worker, whom a draft rule would have hit, and
the restrictions rules applied (staff only; workers never see private comments)."""

from __future__ import annotations

from typing import Any

from contracts.rpc import rules as rpc
from rules_service import domain
from rules_service.collectors import COLLECTORS
from rules_service.context import RulesContext
from rules_service.rules_api import checked_rule
from rules_service.store import RulesStore
from servicekit.router import Router

router = Router()
RESTRICTIONS_SHOWN = 100  # the latest restrictions of a worker shown with its firings


async def counted_events(store: RulesStore, facts: dict[str, Any], worker_id: str) -> list[str]:
    """The ids of the latest events of the kinds a firing's rule counts, up to the event
    that made it fire (looked up when explaining, not kept on the hot path)."""
    pool_key = facts.get("pool_key")
    return await store.counted_events(
        worker_id, kinds=sorted(COLLECTORS[facts["collector"]["kind"]].facts),
        pool_id=None if pool_key == domain.PLATFORM_POOL_KEY else pool_key,
        up_to_seq=facts.get("trigger_seq"),
        limit=facts.get("history_size") or domain.RECENT_EVENTS)


@router.rpc(rpc.EXPLAIN_WORKER)
async def explain_worker(req: rpc.ExplainWorker, ctx: RulesContext) -> rpc.WorkerExplanation:
    """Every firing on a worker, newest first, with the facts that caused it: collector
    values, conditions, history size and the ids of the events counted."""
    async with ctx.read() as r:
        rows, total = await r.store.firings_of(req.worker_id, pool_id=req.pool_id,
                                                rule_id=req.rule_id, limit=req.page.limit,
                                                offset=req.page.offset)
        out = []
        for f in rows:
            if not f["facts"].get("event_ids"):
                f["facts"] = {**f["facts"], "event_ids": await counted_events(
                    r.store, f["facts"], f["worker_id"])}
            out.append(rpc.Firing(**f))
        restrictions = await r.store.restrictions_of(req.worker_id, limit=RESTRICTIONS_SHOWN)
    return rpc.WorkerExplanation(worker_id=req.worker_id, total=total, firings=out,
                                 restrictions=restrictions)


@router.rpc(rpc.LIST_RESTRICTIONS)
async def list_restrictions(req: rpc.ListRestrictions, ctx: RulesContext) -> rpc.Restrictions:
    """Restrictions applied by rules, newest first (active ones by default)."""
    async with ctx.read() as r:
        items, total = await r.store.list_restrictions(
            worker_id=req.worker_id, pool_id=req.pool_id, active_only=req.active_only,
            limit=req.page.limit, offset=req.page.offset)
    return rpc.Restrictions(items=items, total=total)


@router.rpc(rpc.BACKTEST)
async def backtest(req: rpc.Backtest, ctx: RulesContext) -> rpc.BacktestResult:
    """Replay a pool's (or the rule's project's) recorded events through a complete
    draft rule from empty state; acts on nothing."""
    rule = checked_rule(req.rule)
    draft = domain.RuleDef(rule_id="draft", **{k: rule[k] for k in (
        "scope", "pool_id", "project_id", "collector", "conditions", "action")})
    limit = ctx.settings.backtest_max_facts
    async with ctx.read() as r:
        facts = await r.store.recorded(
            pool_id=req.pool_id or draft.pool_id,
            project_id=draft.project_id if draft.scope == "project" else None,
            since=req.since, until=req.until, limit=limit + 1)
    scanned, hits = domain.backtest(draft, facts[:limit])
    return rpc.BacktestResult(
        events_scanned=scanned, truncated=len(facts) > limit,
        hits=[rpc.BacktestHit(worker_id=h.worker_id, pool_id=h.pool_id, at=h.at,
                              values=h.values, event_ids=h.event_ids) for h in hits],
        workers=sorted({h.worker_id for h in hits}))
