"""A dropped bus connection ends the RPC calls waiting for a reply at once (the reply could
only reach the inbox on the server that went away) instead of at their timeout."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from contracts.rpc import Actor
from contracts.rpc import tasks as rpc
from servicekit.errors import RpcCallError
from servicekit.rpc import RpcClient

LIST = rpc.ProjectList(actor=Actor(user_id="admin-1", role="admin"))


class SilentBus:
    """A connection whose requests are never answered (sent to a node that died)."""

    def __init__(self) -> None:
        self.sent = 0

    async def request(self, subject: str, body: bytes, *, timeout: float,
                      headers: Any = None) -> Any:
        self.sent += 1
        await asyncio.sleep(timeout)
        raise AssertionError("the caller should have been released before the timeout")


async def test_waiting_calls_end_when_the_connection_drops() -> None:
    bus = SilentBus()
    client = RpcClient(bus, timeout_s=30)  # type: ignore[arg-type]
    calls = [asyncio.create_task(client.call(rpc.LIST_PROJECTS, LIST))
             for _ in range(3)]
    await asyncio.sleep(0.05)
    assert bus.sent == 3 and not any(c.done() for c in calls)
    t0 = asyncio.get_running_loop().time()
    client.connection_lost()
    for c in calls:
        with pytest.raises(RpcCallError) as err:
            await c
        assert err.value.error.status == 504 and err.value.error.code == "service_timeout"
        assert "may have been applied" in err.value.error.message
    assert asyncio.get_running_loop().time() - t0 < 1.0
    assert not client._waiting and not client._dropped


async def test_a_cancelled_caller_is_still_cancelled() -> None:
    client = RpcClient(SilentBus(), timeout_s=30)  # type: ignore[arg-type]
    call = asyncio.create_task(client.call(rpc.LIST_PROJECTS, LIST))
    await asyncio.sleep(0.05)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    client.connection_lost()  # nothing is waiting any more
    assert not client._waiting and not client._dropped
