"""The pace's median (fair pay): exact over a histogram of whole seconds."""

from __future__ import annotations

import statistics

import pytest

from contracts.envelope import new_envelope
from contracts.events import ReviewAccepted
from contracts.rpc import Actor
from contracts.rpc import tasks as rpc
from tasks_service import assignments, consumers, pace
from tasks_service.domain import histogram_median


def test_median_of_nothing_is_unknown() -> None:
    assert histogram_median([]) == (0, None)
    assert histogram_median([(30, 0)]) == (0, None)


@pytest.mark.parametrize("durations", [
    [5], [5, 7], [1, 2, 3], [10, 10, 10, 40], [3, 1, 2, 4, 100, 100], [60] * 9 + [61],
])
def test_median_is_the_median_of_the_expanded_durations(durations: list[int]) -> None:
    counts: dict[int, int] = {}
    for d in durations:
        counts[d] = counts.get(d, 0) + 1
    n, median = histogram_median(reversed(list(counts.items())))   # any order
    assert n == len(durations) and median == statistics.median(durations)


def test_an_even_count_gives_at_most_a_half_second() -> None:
    assert histogram_median([(20, 5), (21, 5)]) == (10, 20.5)
    assert histogram_median([(20, 5), (30, 5)]) == (10, 25.0)


async def test_each_acceptance_counts_once_in_its_pools_pace(call, store, clock) -> None:
    pool, _ = await call.pool(n=3, expected_seconds_per_task=90)
    made = []
    for seconds in (20, 41.5, 30):             # take, work this long, submit
        a = await call(rpc.TAKE, assignments.take, rpc.Take(actor=call.worker(),
                                                            pool_id=pool.pool_id))
        clock.advance(seconds)
        await call(rpc.SUBMIT, assignments.submit, rpc.Submit(
            actor=call.worker(), assignment_id=a.assignment_id, answers={"label": "cat"}))
        made.append(a)

    async def accept(a) -> None:
        event = ReviewAccepted(assignment_id=a.assignment_id, task_id=a.task_id,
                               pool_id=a.pool_id, project_id=a.project_id,
                               worker_id=a.worker_id, decided_by="m1", decided_at=clock.now)
        async with call.ctx.db.consumer_unit() as uow:
            await consumers.on_review_accepted(event, new_envelope(event, producer="test"),
                                               uow, call.ctx)

    admin = Actor(user_id="gateway", role="admin")
    req = rpc.PoolPaceRequest(actor=admin, pool_ids=[pool.pool_id, "no-such-pool"])
    got = await call(rpc.POOL_PACE, pace.get_pool_pace, req)
    assert [(p.accepted_timed, p.median_seconds, p.expected_seconds_per_task)
            for p in got.items] == [(0, None, 90)]
    for a in made[:2]:
        await accept(a)
    await accept(made[0])                        # a redelivery: already accepted
    got = await call(rpc.POOL_PACE, pace.get_pool_pace, req)
    assert (got.items[0].accepted_timed, got.items[0].median_seconds) == (2, 31.0)  # 20, 42
    await accept(made[2])
    got = await call(rpc.POOL_PACE, pace.get_pool_pace, req)
    assert (got.items[0].accepted_timed, got.items[0].median_seconds) == (3, 30.0)
