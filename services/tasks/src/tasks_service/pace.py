"""Fair pay, the tasks side: how long accepted work took per pool (no money here).

Each acceptance adds its take -> submit duration, in whole seconds, to the pool's
histogram (``pool_pace``), in the acceptance's own statement (``store._decided``): nothing
is added to the take or submit path, and a redelivered acceptance adds nothing (the accept
itself is then a no-op).
``pool_pace`` answers the median and the count per pool; the gateway prices it with the
worker's credit per task and compares it with the owner's floor.
"""

from __future__ import annotations

from contracts.rpc import tasks as rpc
from servicekit.router import Router
from tasks_service import domain
from tasks_service.context import TasksContext

router = Router()

@router.rpc(rpc.POOL_PACE)
async def get_pool_pace(req: rpc.PoolPaceRequest, ctx: TasksContext) -> rpc.PoolPaces:
    """The median take -> submit of each pool's accepted work and its declared figure;
    pools that do not exist are left out."""
    ids = sorted(set(req.pool_ids))
    if not ids:
        return rpc.PoolPaces(items=[])
    async with ctx.read() as r:
        found = await r.store.pool_paces(ids)
    items = []
    for pool_id, expected, counts in found:
        n, median = domain.histogram_median(counts)
        items.append(rpc.PoolPace(pool_id=pool_id, accepted_timed=n, median_seconds=median,
                                  expected_seconds_per_task=expected))
    return rpc.PoolPaces(items=items)
