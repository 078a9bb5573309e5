"""Pure parts of the consumer machinery (no bus, no database)."""

from __future__ import annotations

import asyncio

from servicekit.consumer import FetchCoalescer


async def test_messages_of_one_fetch_are_applied_as_one_batch() -> None:
    batches: list[list[int]] = []

    async def handle_batch(msgs):
        batches.append(list(msgs))

    co = FetchCoalescer(handle_batch)
    # a fetch's messages arrive at the handler together (FastStream's task group)
    await asyncio.gather(*(co.submit(i) for i in range(10)))
    assert batches == [list(range(10))]
    await co.submit(99)  # a later fetch is a batch of its own
    assert batches[-1] == [99]


async def test_a_failing_batch_still_releases_every_caller() -> None:
    async def handle_batch(msgs):
        raise RuntimeError("database gone")

    co = FetchCoalescer(handle_batch)
    await asyncio.wait_for(asyncio.gather(*(co.submit(i) for i in range(3))), 2)
