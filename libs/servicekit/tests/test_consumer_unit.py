"""Pure parts of the consumer machinery (no bus, no database)."""

from __future__ import annotations

import asyncio

from servicekit.consumer import FetchCoalescer


async def test_messages_parked_within_the_linger_are_applied_as_one_batch() -> None:
    batches: list[list[int]] = []

    async def handle_batch(msgs):
        batches.append(list(msgs))

    co = FetchCoalescer(handle_batch, linger_s=0.02)
    # a fetch's messages arrive at the handler together (FastStream's task group); the
    # calls return at once so that FastStream can fetch again while the batch lingers
    await asyncio.wait_for(asyncio.gather(*(co.submit(i) for i in range(10))), 0.01)
    assert batches == []
    await asyncio.sleep(0.05)
    assert batches == [list(range(10))]
    await co.submit(99)  # a later message is a batch of its own
    await asyncio.sleep(0.05)
    assert batches[-1] == [99]
    await co.close()


async def test_messages_arriving_during_a_batch_make_the_next_one_and_batches_never_overlap(
) -> None:
    batches: list[list[int]] = []
    running = 0
    overlapped = False

    async def handle_batch(msgs):
        nonlocal running, overlapped
        running += 1
        overlapped |= running > 1
        await asyncio.sleep(0.05)  # a slow transaction
        batches.append(list(msgs))
        running -= 1

    co = FetchCoalescer(handle_batch, linger_s=0.001)
    await co.submit(0)
    await asyncio.sleep(0.01)  # batch [0] is being applied
    for i in range(1, 6):
        await co.submit(i)
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.2)
    assert batches == [[0], [1, 2, 3, 4, 5]] and not overlapped
    await co.close()


async def test_a_full_buffer_makes_callers_wait_for_their_batch() -> None:
    applied: list[int] = []
    release = asyncio.Event()

    async def handle_batch(msgs):
        await release.wait()
        applied.extend(msgs)

    co = FetchCoalescer(handle_batch, linger_s=0.001, max_batch=3)
    await co.submit(0)
    await co.submit(1)
    third = asyncio.create_task(co.submit(2))  # the buffer is full: this one waits
    await asyncio.sleep(0.02)
    assert not third.done()
    release.set()
    await asyncio.wait_for(third, 1)
    assert applied == [0, 1, 2]
    await co.close()


async def test_a_failing_batch_still_releases_every_caller() -> None:
    async def handle_batch(msgs):
        raise RuntimeError("database gone")

    co = FetchCoalescer(handle_batch, max_batch=3)
    await asyncio.wait_for(asyncio.gather(*(co.submit(i) for i in range(3))), 2)
    await co.close()


async def test_close_waits_for_the_batch_being_applied() -> None:
    done: list[int] = []

    async def handle_batch(msgs):
        await asyncio.sleep(0.05)
        done.extend(msgs)

    co = FetchCoalescer(handle_batch, linger_s=0.001)
    await co.submit(7)
    await asyncio.sleep(0.01)
    await co.close()
    assert done == [7]
