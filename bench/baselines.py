"""Raw baselines measured in the same run as the system benchmark.

* PostgreSQL: single-row INSERT transactions/s (asyncpg, a few concurrent connections).
* JetStream: publish (with PubAck) + consume (pull, batched ack) messages/s.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import nats
from nats.js.api import ConsumerConfig, StreamConfig

from servicekit.testing.pgserver import create_database


async def postgres_insert_tps(admin_url: str, seconds: float = 5.0,
                              connections: int = 8) -> float:
    """On the server of ``admin_url`` (the one the stack of the same run uses)."""
    name = f"mte_bench_base_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    url = await create_database(admin_url, name)
    try:
        pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
        async with pool.acquire() as c:
            await c.execute("CREATE TABLE t (id bigserial primary key, v text not null, "
                            "at timestamptz not null default now())")
        done = 0
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            nonlocal done
            async with pool.acquire() as c:
                while time.perf_counter() < deadline:
                    async with c.transaction():
                        await c.execute("INSERT INTO t (v) VALUES ($1)", "x")
                    done += 1

        start = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(connections)))
        elapsed = time.perf_counter() - start
        await pool.close()
        return done / elapsed
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def jetstream_pubsub_rate(nats_url: str, messages: int = 20_000,
                                window: int = 256) -> dict[str, float]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = f"BENCHBASE{uuid.uuid4().hex[:6].upper()}"
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream.lower()}.>"]))
    payload = b"x" * 400  # about the size of one event envelope
    subject = f"{stream.lower()}.e"
    start = time.perf_counter()
    for i in range(0, messages, window):
        await asyncio.gather(*(js.publish(subject, payload, headers={"Nats-Msg-Id": f"{i}-{j}"})
                               for j in range(min(window, messages - i))))
    pub = time.perf_counter() - start
    sub = await js.pull_subscribe(subject, durable="base", stream=stream,
                                  config=ConsumerConfig(max_ack_pending=10_000))
    got = 0
    start = time.perf_counter()
    while got < messages:
        msgs = await sub.fetch(500, timeout=5)
        await asyncio.gather(*(m.ack() for m in msgs))
        got += len(msgs)
    con = time.perf_counter() - start
    await js.delete_stream(stream)
    await nc.close()
    return {"publish_msgs_per_s": messages / pub, "consume_msgs_per_s": messages / con,
            "publish_and_consume_msgs_per_s": messages / (pub + con)}


def python_cpu_reference(rounds: int = 3) -> float:
    """CPU ms (this process) for a fixed piece of the work every service does per event:
    an envelope-like model validated from JSON and dumped back, a dict built and looked up,
    a string formatted. The best of ``rounds``; a slower machine (or a slower phase of
    this one) shows here, where the insert baseline (mostly the disk) need not move."""
    from datetime import UTC, datetime

    import orjson
    from pydantic import BaseModel

    class Item(BaseModel):
        event_id: str
        type: str
        at: datetime
        data: dict[str, int | str | None]

    raw = orjson.dumps({"event_id": "e" * 32, "type": "task.submitted",
                        "at": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
                        "data": {f"k{i}": (i if i % 2 else f"v{i}") for i in range(12)}})
    best = float("inf")
    total = 0
    for _ in range(rounds):
        start = time.process_time()
        for i in range(20_000):
            item = Item.model_validate_json(raw)
            out = orjson.dumps(item.model_dump(mode="json"))
            d = {f"{item.type}:{j}": j for j in range(8)}
            total += len(out) + d.get(f"{item.type}:{i % 8}", 0)
        best = min(best, time.process_time() - start)
    assert total > 0
    return best * 1000


def memory_reference(rounds: int = 3) -> float:
    """CPU ms (this process) for 4,000,000 reads at random places of a 256 MiB array: the
    machine's memory speed, which the Python reference (small enough to stay in the CPU's
    caches) does not show. The median of ``rounds``: a slow phase shows as it lasts."""
    import numpy as np

    rng = np.random.default_rng(7)
    data = np.arange(32 * 1024 * 1024, dtype=np.int64)  # 256 MiB
    where = rng.integers(0, data.size, 4_000_000)
    took = []
    for _ in range(rounds):
        start = time.process_time()
        total = int(data[where].sum())
        took.append(time.process_time() - start)
    assert total > 0
    return sorted(took)[len(took) // 2] * 1000
