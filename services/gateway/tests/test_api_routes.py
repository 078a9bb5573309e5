"""Product API routers against a real nats-server: real support service, stub responders.

The security layer is replaced by a tiny fake (``Authorization: Bearer role:user_id[:mfa]``)
so these tests exercise only translation, role checks and the hidden-share rule.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

from contracts.rpc import ErrorBody, RpcReply, RpcSpec, ops
from gateway_service.deps import SessionInfo
from gateway_service.errors import ApiError, install_error_handlers
from gateway_service.routes import API_ROUTERS
from gateway_service.routes.common import hidden_keys, model_hidden_fields, strip_hidden
from servicekit.migrations import upgrade
from servicekit.rpc import RpcClient

ROOT = Path(__file__).resolve().parents[3]


class FakeAuth:
    async def session_from_request(self, request: Request) -> SessionInfo:
        h = request.headers.get("authorization", "")
        if not h.startswith("Bearer "):
            raise ApiError(401, "unauthorized", "log in first")
        role, user_id, *rest = h.removeprefix("Bearer ").split(":")
        return SessionInfo(session_id="s", user_id=user_id, role=role, login=user_id,
                           mfa_elevated=bool(rest and rest[0] == "mfa"),
                           must_change_password=False)


class FakeAudit:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, str | None, dict]] = []

    async def record(self, kind: str, actor_user_id: str, target: str | None,
                     details: dict) -> None:
        self.records.append((kind, actor_user_id, target, details))


def H(role: str, user_id: str | None = None, mfa: bool = False) -> dict[str, str]:
    token = f"{role}:{user_id or role + '-1'}" + (":mfa" if mfa else "")
    return {"Authorization": f"Bearer {token}"}


def iter_api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute with its full path (FastAPI keeps included routers nested)."""
    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, APIRoute]]:
        for r in routes:
            if isinstance(r, APIRoute):
                yield prefix + r.path, r
            elif hasattr(r, "original_router"):
                yield from walk(r.original_router.routes, prefix + r.include_context.prefix)
    yield from walk(list(app.routes), "")


class Stubs:
    """Answers RPC subjects with canned data and remembers what was asked."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.calls: dict[str, list[dict]] = {}
        self._subs: list[Any] = []

    async def serve(self, spec: RpcSpec, answer: Any) -> None:
        async def cb(msg: Any) -> None:
            req = json.loads(msg.data or b"{}")
            self.calls.setdefault(spec.subject, []).append(req)
            data = answer(req) if callable(answer) else answer
            if isinstance(data, ErrorBody):
                reply = RpcReply(ok=False, error=data)
            else:
                reply = RpcReply(ok=True, data=data)
            await msg.respond(reply.model_dump_json().encode())
        self._subs.append(await self.nc.subscribe(spec.subject, cb=cb))

    async def close(self) -> None:
        for s in self._subs:
            await s.unsubscribe()


@asynccontextmanager
async def gateway_app(nats_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI, Stubs]]:
    nc = await nats.connect(nats_url)
    app = FastAPI()
    install_error_handlers(app)
    for r in API_ROUTERS:
        app.include_router(r, prefix="/api")
    app.state.auth = FakeAuth()
    app.state.rpc = RpcClient(nc, timeout_s=2)
    app.state.nats = nc
    app.state.audit = FakeAudit()
    stubs = Stubs(nc)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               base_url="http://gw.test")
    try:
        yield client, app, stubs
    finally:
        await client.aclose()
        await stubs.close()
        await nc.close()


@pytest.fixture
async def gw(nats_server):
    async with gateway_app(nats_server.url) as t:
        yield t


# ------------------------------------------------------------------ hidden share (static)


def test_worker_and_manager_response_models_have_no_share_or_price() -> None:
    app = FastAPI()
    for r in API_ROUTERS:
        app.include_router(r, prefix="/api")
    checked = 0
    for path, route in iter_api_routes(app):
        if path.startswith("/api/admin/"):
            continue
        assert route.summary, f"{path} needs a summary for the API docs"
        assert route.tags, f"{path} needs a tag"
        if route.response_model is not None and isinstance(route.response_model, type):
            assert model_hidden_fields(route.response_model) == [], path
            checked += 1
    assert checked >= 2


def test_hidden_key_detection() -> None:
    data = {"items": [{"reward_minor": 70, "price_minor": 100, "worker_share_bps": 7000}],
            "platform_revenue_minor": 30, "shared": True}
    assert sorted(hidden_keys(data)) == ["$.items[0].price_minor",
                                         "$.items[0].worker_share_bps",
                                         "$.platform_revenue_minor"]
    assert hidden_keys(strip_hidden(data)) == []


# ------------------------------------------------------------------ support (real service)


async def test_support_tickets_and_assistant_through_http(gw, nats_server, database_url) -> None:
    from support_service.main import create_service
    from support_service.settings import SupportSettings

    upgrade(ROOT / "services" / "support", database_url)
    svc = create_service(SupportSettings(database_url=database_url, nats_url=nats_server.url,
                                         environment="test"))
    await svc.start()
    client, _, _ = gw
    try:
        me = f"w-{uuid.uuid4().hex[:6]}"
        r = await client.post("/api/support/tickets", headers=H("worker", me),
                              json={"subject": "Payout", "text": "when do I get paid?"})
        assert r.status_code == 201, r.text
        assert r.json()["user_id"] == me
        r = await client.get("/api/support/tickets", headers=H("worker", me))
        assert r.status_code == 200 and r.json()["total"] == 1
        r = await client.get("/api/support/tickets", headers=H("worker", "someone-else"))
        assert r.json()["total"] == 0
        r = await client.get("/api/support/tickets?limit=1", headers=H("manager"))
        assert r.status_code == 200 and r.json()["total"] >= 1
        r = await client.post("/api/support/ask", headers=H("worker", me),
                              json={"question": "how can I withdraw my money?"})
        assert r.status_code == 200 and r.json()["answered"] is True
        r = await client.post("/api/support/tickets", headers=H("worker", me),
                              json={"subject": "", "text": "x"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
        r = await client.get("/api/support/tickets")
        assert r.status_code == 401
    finally:
        await svc.stop()


# ------------------------------------------------------------------ diagnostics


async def test_diagnostics_reports_down_services_without_failing(gw, nats_server,
                                                                  database_url) -> None:
    from support_service.main import create_service
    from support_service.settings import SupportSettings

    client, _, stubs = gw
    await stubs.serve(ops.DIAGNOSTICS["rules"], ErrorBody(code="internal_error", message="db gone",
                                                          status=500))
    r = await client.get("/api/admin/diagnostics", headers=H("manager"))
    assert r.status_code == 403
    upgrade(ROOT / "services" / "support", database_url)
    svc = create_service(SupportSettings(database_url=database_url, nats_url=nats_server.url,
                                         environment="test"))
    await svc.start()
    try:
        r = await client.get("/api/admin/diagnostics", headers=H("admin"))
        assert r.status_code == 200, r.text
        body = r.json()
        by = {s["service"]: s for s in body["services"]}
        assert by["support"]["status"] == "ok"
        assert by["support"]["diagnostics"]["database"] == "ok"
        assert {c["consumer"] for c in body["consumer_lag"] if c["service"] == "support"}
        # A service answering with an error is reported as down, not turned into a 500.
        assert by["rules"]["status"] == "down" and "internal_error" in by["rules"]["error"]
        assert body["status"] == "degraded"
        assert any(p.startswith("rules: down") for p in body["problems"])
        assert body["bus"]["connected"] is True
        names = {s["name"] for s in body["bus"]["streams"]}
        assert {"TASK", "DLQ"} <= names
        assert isinstance(body["bus"]["dlq_depth"], int)
    finally:
        await svc.stop()
