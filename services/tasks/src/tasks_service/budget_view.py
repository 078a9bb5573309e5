"""A pool's maximum remaining cost, for the requester budget the ledger reserves when the
pool opens (the gateway asks here, then asks the ledger to reserve, then opens)."""

from __future__ import annotations

from sqlalchemy import case, func, select

from contracts.rpc import tasks as rpc
from servicekit.router import Router
from tasks_service.catalog import existing_pool
from tasks_service.context import TasksContext
from tasks_service.db import tasks
from tasks_service.results_store import ResultsStore

router = Router()


@router.rpc(rpc.POOL_COST)
async def pool_cost(req: rpc.PoolCostRequest, ctx: TasksContext) -> rpc.PoolCost:
    """Price x answers still payable over the pool's tasks (accepted ones are spent): each
    task's overlap, raised to the dynamic overlap's maximum for real (not control) tasks, less
    its accepted answers; with ``extra_tasks`` as many more tasks at the most answers each."""
    async with ctx.read() as r:
        pool = await existing_pool(r.store, req.pool_id)
        q = await ResultsStore(r.store.conn).quality(pool.pool_id)
        dyn = (req.dynamic_max_overlap if req.dynamic_max_overlap is not None
               else q.dynamic_max_overlap)
        top = max(pool.overlap, dyn or 0)
        allowed = (tasks.c.overlap if dyn is None else case(
            (tasks.c.is_control, tasks.c.overlap), else_=func.greatest(tasks.c.overlap, dyn)))
        left_expr = func.greatest(allowed - tasks.c.accepted_count, 0)
        row = (await r.store.conn.execute(
            select(func.count().label("n"), func.coalesce(func.sum(left_expr), 0).label("left"))
            .where(tasks.c.pool_id == pool.pool_id))).one()
    left = int(row.left) + req.extra_tasks * top
    return rpc.PoolCost(pool_id=pool.pool_id, status=pool.status, price_minor=pool.price_minor,
                        currency=pool.currency, tasks=int(row.n) + req.extra_tasks,
                        answers_left=left, max_cost_minor=pool.price_minor * left,
                        answers_per_task=top, sandbox=pool.sandbox)
