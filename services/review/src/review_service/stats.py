"""Reading: a pool's review figures for managers, and the history of decisions.

Worker ids and counts only: review knows no money.
"""

from __future__ import annotations

from datetime import timedelta

from contracts.rpc import review as rpc
from review_service import domain
from review_service.context import ReviewContext
from review_service.store import DecisionFilter
from servicekit.errors import Forbidden
from servicekit.router import Router

router = Router()


@router.rpc(rpc.STATS)
async def stats(req: rpc.StatsRequest, ctx: ReviewContext) -> rpc.PoolStats:
    """A pool's queue and decision figures: counts, acceptance rate, decisions per hour over
    the last 24 hours, the workers with the most accepted submissions."""
    now = ctx.clock()
    since = domain.hour_floor(now) - timedelta(hours=23)
    async with ctx.read() as r:
        fig = await r.store.pool_figures(req.pool_id, since=since, top=req.top)
    accepted, rejected = fig.counts.get("accepted", 0), fig.counts.get("rejected", 0)
    return rpc.PoolStats(
        pool_id=req.pool_id, pending=fig.counts.get("pending", 0), accepted=accepted,
        rejected=rejected, acceptance_rate=domain.acceptance_rate(accepted, rejected),
        throughput_per_hour=[rpc.HourBucket(hour_start=h, decisions=n)
                             for h, n in domain.hourly_buckets(fig.hourly, now)],
        top_workers=[rpc.WorkerCount(worker_id=w, accepted=n) for w, n in fig.top])


def _filter(req: rpc.DecisionsRequest) -> DecisionFilter:
    """A worker sees only their own decisions and never who made them; staff filter."""
    worker_id = req.worker_id
    if req.actor.role == "worker":
        if req.worker_id not in (None, req.actor.user_id) or req.decided_by is not None:
            raise Forbidden("forbidden",
                            "workers see only their own decisions, without reviewers")
        worker_id = req.actor.user_id
    return DecisionFilter(pool_id=req.pool_id, worker_id=worker_id, status=req.status,
                          decided_by=req.decided_by, since=domain.as_utc(req.since),
                          until=domain.as_utc(req.until))


@router.rpc(rpc.MY_DECISIONS)
async def my_decisions(req: rpc.DecisionsRequest, ctx: ReviewContext) -> rpc.Decisions:
    """Decision history, newest first: a worker's own (without reviewer ids), or any,
    filtered, for managers and admins."""
    f = _filter(req)
    async with ctx.read() as r:
        rows, total = await r.store.decisions(f, limit=req.page.limit, offset=req.page.offset)
    hide_reviewer = req.actor.role == "worker"
    return rpc.Decisions(total=total, items=[
        rpc.Decision.model_validate({**row, "cause": domain.decision_cause(row["decided_by"]),
                                     **({"decided_by": None} if hide_reviewer else {})})
        for row in rows])
