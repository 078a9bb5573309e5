"""A pool's maximum remaining cost, for the requester budget the ledger reserves when the
pool opens (the gateway asks here, then asks the ledger to reserve, then opens)."""

from __future__ import annotations

from sqlalchemy import func, select

from contracts.rpc import tasks as rpc
from servicekit.router import Router
from tasks_service.catalog import existing_pool
from tasks_service.context import TasksContext
from tasks_service.db import tasks

router = Router()

# every answer a task may still be paid for: its overlap less its accepted answers
_LEFT = func.greatest(tasks.c.overlap - tasks.c.accepted_count, 0)


@router.rpc(rpc.POOL_COST)
async def pool_cost(req: rpc.PoolGet, ctx: TasksContext) -> rpc.PoolCost:
    """Price x answers still payable over the pool's tasks (accepted ones are spent)."""
    async with ctx.read() as r:
        pool = await existing_pool(r.store, req.pool_id)
        row = (await r.store.conn.execute(
            select(func.count().label("n"), func.coalesce(func.sum(_LEFT), 0).label("left"))
            .where(tasks.c.pool_id == pool.pool_id))).one()
    left = int(row.left)
    return rpc.PoolCost(pool_id=pool.pool_id, status=pool.status, price_minor=pool.price_minor,
                        currency=pool.currency, tasks=int(row.n), answers_left=left,
                        max_cost_minor=pool.price_minor * left, sandbox=pool.sandbox)
