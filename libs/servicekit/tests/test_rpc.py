"""RPC endpoints and client: typed errors, never an unhandled failure."""

from __future__ import annotations

import nats
import pytest
from pydantic import BaseModel

from contracts.rpc import RpcRequest, RpcSpec
from servicekit.errors import Conflict, RpcCallError
from servicekit.rpc import RpcClient, dispatch


class Echo(RpcRequest):
    text: str


class EchoReply(BaseModel):
    text: str


SPEC = RpcSpec("rpc.kittest.echo", Echo, EchoReply, "test echo",
               frozenset({"worker", "manager"}))


async def handler(req: Echo) -> EchoReply:
    if req.text == "taken":
        raise Conflict("already_taken", "someone else has it", details={"holder": "x"})
    if req.text == "boom":
        raise RuntimeError("bug")
    if req.text == "db-down":
        raise ConnectionRefusedError(111, "Connect call failed")
    return EchoReply(text=req.text.upper())


async def test_dispatch_maps_success_refusal_validation_and_bug() -> None:
    worker = b'{"actor": {"user_id": "u", "role": "worker"}, '
    ok = await dispatch(SPEC, handler, worker + b'"text": "hi"}')
    assert b'"ok":true' in ok and b'"HI"' in ok
    refused = await dispatch(SPEC, handler,
                             b'{"actor": {"user_id": "u", "role": "worker"}, "text": "taken"}')
    assert b'"already_taken"' in refused and b'"status":409' in refused
    invalid = await dispatch(SPEC, handler, b'{"text": 5}')
    assert b'"validation_error"' in invalid and b'"status":422' in invalid
    bug = await dispatch(SPEC, handler, worker + b'"text": "boom"}')
    assert b'"internal_error"' in bug and b"bug" not in bug  # no internals leak


async def test_a_transient_failure_answers_503_and_a_bug_500() -> None:
    """The database being down is "try again" (503), not a failure of the request (500)."""
    worker = b'{"actor": {"user_id": "u", "role": "worker"}, '
    down = await dispatch(SPEC, handler, worker + b'"text": "db-down"}')
    assert b'"service_unavailable"' in down and b'"status":503' in down
    bug = await dispatch(SPEC, handler, worker + b'"text": "boom"}')
    assert b'"internal_error"' in bug and b'"status":500' in bug


async def test_dispatch_refuses_a_role_the_spec_does_not_allow_before_the_handler() -> None:
    called = []

    async def spy(req: Echo) -> EchoReply:
        called.append(req)
        return EchoReply(text="x")

    refused = await dispatch(SPEC, spy, b'{"actor": {"user_id": "u", "role": "admin"}, '
                                        b'"text": "hi"}')
    assert b'"forbidden"' in refused and b'"status":403' in refused
    assert b"manager or worker only" in refused
    assert called == []


async def test_dispatch_never_sends_a_result_that_is_not_the_declared_model() -> None:
    class Leaky(BaseModel):
        text: str
        price_minor: int

    async def wrong(req: Echo) -> Leaky:
        return Leaky(text="x", price_minor=100)

    async def plain_dict(req: Echo) -> dict:
        return {"text": "x"}

    for bad in (wrong, plain_dict):
        reply = await dispatch(SPEC, bad, b'{"actor": {"user_id": "u", "role": "worker"}, '
                                          b'"text": "hi"}')
        assert b'"internal_error"' in reply and b"price_minor" not in reply


async def test_client_turns_bus_failures_into_typed_errors(nats_server) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        client = RpcClient(nc, timeout_s=0.5)
        req = Echo(actor={"user_id": "u", "role": "worker"}, text="x")
        with pytest.raises(RpcCallError) as e:
            await client.call(SPEC, req)  # nobody serves it
        assert e.value.error.status == 503 and e.value.error.code == "service_unavailable"
        huge = Echo(actor={"user_id": "u", "role": "worker"}, text="x" * (2 * 1024 * 1024))
        with pytest.raises(RpcCallError) as e:
            await client.call(SPEC, huge)
        assert e.value.error.status == 413
    finally:
        await nc.close()


async def test_server_handles_requests_concurrently_and_replies_typed(nats_server) -> None:
    import asyncio
    import time

    from servicekit.rpc import RpcServer

    async def slow(req: Echo) -> EchoReply:
        await asyncio.sleep(0.3)
        return await handler(req)

    nc = await nats.connect(nats_server.url)
    server = RpcServer(service="kittest", nc=nc, concurrency=16)
    await server.serve(SPEC, slow)
    try:
        client = RpcClient(nc, timeout_s=5)
        start = time.perf_counter()
        replies = await asyncio.gather(*(client.call(SPEC, Echo(
            actor={"user_id": "u", "role": "worker"}, text=f"m{i}")) for i in range(10)))
        elapsed = time.perf_counter() - start
        assert all(isinstance(r, EchoReply) for r in replies)
        assert sorted(r.text for r in replies) == sorted(f"M{i}" for i in range(10))
        assert elapsed < 1.5, f"10 requests of 0.3 s took {elapsed:.2f} s: not concurrent"
        with pytest.raises(RpcCallError) as e:
            await client.call(SPEC, Echo(actor={"user_id": "u", "role": "worker"}, text="taken"))
        assert e.value.error.code == "already_taken" and e.value.error.details == {"holder": "x"}
    finally:
        await server.stop()
        await nc.close()
