"""Fair pay, the tasks side: how long accepted work took per pool (no money here).

Each acceptance adds its take -> submit duration, in whole seconds, to the pool's
pending durations (``pool_pace_pending``, a new row), in the acceptance's own statement
(``store._decided``): nothing is added to the take or submit path, no two acceptances wait
for one row, and a redelivered acceptance adds nothing (the accept itself is then a no-op).
:func:`fold_pace` moves them into the histogram (``pool_pace``) every few seconds; a read
counts both, so the figure is exact at once.
``pool_pace`` answers the median and the count per pool; the gateway prices it with the
worker's credit per task and compares it with the owner's floor.
"""

from __future__ import annotations

from contracts.rpc import tasks as rpc
from servicekit.router import Router
from tasks_service import domain
from tasks_service.context import TasksContext

router = Router()

@router.periodic(lambda s: s.pace_fold_interval_s, changes_state=True)
async def fold_pace(ctx: TasksContext) -> None:
    """The pending durations into the histogram (keeps the pending table short)."""
    async with ctx.uow() as uow:
        await uow.store.fold_pace()


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
