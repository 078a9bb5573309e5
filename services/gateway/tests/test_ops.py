"""What operators see of the gateway: RED metrics, the ops port, request ids and the access
log, the emergency gauge (docs/ops-code-needs.md sections 5-7)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

sys.path.insert(0, str(Path(__file__).parent))

from test_security_support import Ctx, settings_for, start_gateway, stop_gateway

from servicekit.observability import REQUEST_ID, JsonFormatter

SUBMIT = "/api/worker/assignments/{assignment_id}/submit"


def requests(method: str, route: str, status: str) -> float | None:
    return REGISTRY.get_sample_value("gateway_http_requests_total",
                                     {"method": method, "route": route, "status": status})


def observed(method: str, route: str) -> float | None:
    return REGISTRY.get_sample_value("gateway_http_request_duration_seconds_count",
                                     {"method": method, "route": route})


@pytest.fixture
async def ctx(nats_server, database_url):
    c = await start_gateway(settings_for(nats_server.url, database_url,
                                         trusted_proxies=["10.9.0.0/16"]))
    yield c
    await stop_gateway(c)


def ops_client(c: Ctx) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=c.gw.ops_app),
                             base_url="http://gateway-ops.test")


async def test_every_route_has_its_series_at_zero_and_requests_count_by_template(
        ctx: Ctx) -> None:
    for status in ("2xx", "4xx", "5xx"):  # pre-created, before any request
        assert requests("POST", SUBMIT, status) is not None
        assert requests("GET", "/assets/{path}", status) is not None
    assert observed("POST", "/api/auth/login") is not None
    before = {k: requests(*k) or 0 for k in [
        ("GET", "/api/status", "2xx"), ("GET", "/api/admin/workers/{worker_id}", "4xx"),
        ("GET", "unmatched", "4xx"), ("POST", SUBMIT, "4xx")]}
    status_count = observed("GET", "/api/status") or 0
    assert (await ctx.client.get("/api/status")).status_code == 200
    assert (await ctx.client.get("/api/admin/workers/u-123")).status_code == 401
    assert (await ctx.client.get("/no/such/page")).status_code == 404
    assert (await ctx.client.post("/api/worker/assignments/a-1/submit", json={})).status_code == 401
    assert (await ctx.client.get("/healthz")).status_code == 200  # probes are not counted
    for key, value in before.items():
        assert requests(*key) == value + 1, key
    assert observed("GET", "/api/status") == status_count + 1
    assert requests("GET", "/api/admin/workers/u-123", "4xx") is None  # never the raw path
    assert requests("GET", "/healthz", "2xx") is None


async def test_a_refusal_of_the_read_only_middleware_counts_under_its_route(ctx: Ctx) -> None:
    before = requests("POST", SUBMIT, "5xx") or 0
    assert REGISTRY.get_sample_value("gateway_emergency_read_only") == 0
    await ctx.gw.emergency.set(enabled=True, reason="drill", by_user_id="u1")
    try:
        assert REGISTRY.get_sample_value("gateway_emergency_read_only") == 1
        r = await ctx.client.post("/api/worker/assignments/a-1/submit", json={})
        assert r.status_code == 503 and r.json()["error"]["code"] == "read_only"
        assert requests("POST", SUBMIT, "5xx") == before + 1
        assert r.headers["x-request-id"]  # refusals carry the request id too
    finally:
        await ctx.gw.emergency.set(enabled=False, reason="", by_user_id="u1")
    assert REGISTRY.get_sample_value("gateway_emergency_read_only") == 0


async def test_metrics_are_on_the_ops_port_only_and_the_probes_on_both(ctx: Ctx) -> None:
    assert (await ctx.client.get("/metrics")).status_code == 404
    async with ops_client(ctx) as ops:
        r = await ops.get("/metrics")
        assert r.status_code == 200
        assert b"gateway_http_requests_total{" in r.content
        assert b"gateway_emergency_read_only" in r.content
        assert b"servicekit_ready{" in r.content
        for client in (ctx.client, ops):
            assert (await client.get("/healthz")).json()["status"] == "ok"
            assert (await client.get("/readyz")).json()["status"] == "ready"
        assert (await ops.get("/api/status")).status_code == 404  # nothing public there


async def test_every_answer_carries_a_request_id_and_its_traceparent(ctx: Ctx) -> None:
    a = await ctx.client.get("/api/status")
    b = await ctx.client.get("/api/status", headers={"X-Request-Id": "forged-by-client"})
    assert len(a.headers["x-request-id"]) == 32 and a.headers["x-request-id"] != \
        b.headers["x-request-id"]
    assert b.headers["x-request-id"] != "forged-by-client"  # a client's is not believed
    version, trace_id, span_id, _flags = a.headers["traceparent"].split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16
    assert a.headers["traceparent"] != b.headers["traceparent"]
    # from a trusted proxy: its request id and its trace are kept
    proxy = httpx.AsyncClient(transport=httpx.ASGITransport(app=ctx.gw.app,
                                                            client=("10.9.1.1", 4000)),
                              base_url="http://gateway.test")
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with proxy:
        r = await proxy.get("/api/status", headers={"X-Request-Id": "lb-7f3a",
                                                    "traceparent": parent})
        odd = await proxy.get("/api/status", headers={"X-Request-Id": "bad id"})
    assert r.headers["x-request-id"] == "lb-7f3a"
    assert r.headers["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert odd.headers["x-request-id"] != "bad id"  # not a token: replaced


async def test_a_clients_traceparent_is_not_believed(ctx: Ctx) -> None:
    """Only a trusted proxy's trace is joined (decision 30): a client's would put the
    gateway's spans into someone else's trace, and a sampled one would make it record."""
    forged = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = await ctx.client.get("/api/status", headers={"traceparent": forged})
    assert r.headers["traceparent"].split("-")[1] != "0af7651916cd43dd8448eb211c80319c"
    # not sampled (no exporter here), though the client's said "sampled"
    assert int(r.headers["traceparent"].split("-")[3], 16) & 1 == 0


async def test_one_access_log_line_per_request_with_its_request_id(
        ctx: Ctx, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        r = await ctx.client.get("/api/admin/workers/u-9")
        await ctx.client.get("/readyz")
    lines = [rec for rec in caplog.records if rec.name == "gateway.access"]
    assert len(lines) == 1  # the probe is not logged
    fields = lines[0].fields  # type: ignore[attr-defined]
    assert fields == {"method": "GET", "route": "/api/admin/workers/{worker_id}", "status": 401,
                      "duration_ms": fields["duration_ms"],
                      "request_id": r.headers["x-request-id"]}
    assert "u-9" not in lines[0].getMessage()
    out = json.loads(JsonFormatter("gateway").format(lines[0]))
    assert out["logger"] == "gateway.access" and out["status"] == 401
    assert out["request_id"] == r.headers["x-request-id"]


async def test_every_log_line_of_a_request_carries_its_request_id_and_trace(ctx: Ctx) -> None:
    import io

    async def noisy() -> dict[str, str]:
        logging.getLogger("gateway.test").warning("something inside the request")
        return {}

    ctx.gw.app.add_api_route("/api/test-noisy", noisy)
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter("gateway"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        r = await ctx.client.get("/api/test-noisy")
    finally:
        root.removeHandler(handler)
    lines = [json.loads(ln) for ln in buf.getvalue().splitlines()]
    mine = [ln for ln in lines if ln["logger"] in ("gateway.test", "gateway.access")]
    assert [ln["logger"] for ln in mine] == ["gateway.test", "gateway.access"]
    trace_id = r.headers["traceparent"].split("-")[1]
    for line in mine:
        assert line["request_id"] == r.headers["x-request-id"], line
        assert line["trace_id"] == trace_id, line


def test_json_lines_carry_the_request_id_while_a_request_is_handled() -> None:
    fmt = JsonFormatter("gateway")
    record = logging.LogRecord("gateway.x", logging.WARNING, __file__, 1, "hello %s",
                               ("there",), None)
    assert "request_id" not in json.loads(fmt.format(record))
    token = REQUEST_ID.set("req-1")
    try:
        line = fmt.format(record)
    finally:
        REQUEST_ID.reset(token)
    assert json.loads(line)["request_id"] == "req-1" and "\n" not in line
    assert json.loads(line)["msg"] == "hello there"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_process_serves_metrics_on_its_ops_port_and_stops_on_sigterm(
        nats_server, database_url) -> None:
    """``python -m gateway_service.main``: two servers in one process, one signal stops both."""
    import asyncio
    import os
    import signal
    import subprocess

    from test_security_support import SERVICE_DIR

    from servicekit.migrations import upgrade

    upgrade(SERVICE_DIR, database_url)
    public, ops = _free_port(), _free_port()
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_NATS_URL=nats_server.url,
               GATEWAY_HTTP_PORT=str(public), GATEWAY_OPS_PORT=str(ops),
               GATEWAY_ENVIRONMENT="test", GATEWAY_LOG_JSON="true",
               GATEWAY_EMERGENCY_BUCKET="gwtest_opsport")
    proc = subprocess.Popen([sys.executable, "-m", "gateway_service.main"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        async with httpx.AsyncClient(timeout=2) as c:
            for _ in range(150):
                try:
                    if (await c.get(f"http://127.0.0.1:{public}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            metrics = await c.get(f"http://127.0.0.1:{ops}/metrics")
            assert metrics.status_code == 200 and b"gateway_http_requests_total" in metrics.content
            assert (await c.get(f"http://127.0.0.1:{public}/metrics")).status_code == 404
            assert (await c.get(f"http://127.0.0.1:{ops}/readyz")).status_code == 200
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        assert proc.stderr is not None
        lines = [ln for ln in proc.stderr.read().decode().splitlines() if ln.strip()]
        assert lines, "the gateway logged nothing"
        for line in lines:  # JSON on: every line is one JSON object, uvicorn's included
            assert json.loads(line)["service"] == "gateway", line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("mode, logged", [("all", [200, 404]), ("errors", [404]), ("off", [])])
async def test_the_access_log_setting_keeps_every_request_or_only_refusals(
        mode: str, logged: list[int], caplog: pytest.LogCaptureFixture) -> None:
    from fastapi import FastAPI

    from gateway_service.ops import RequestObservabilityMiddleware, RouteTemplates

    app = FastAPI()

    @app.get("/api/test-access/{item}")
    async def item(item: str) -> dict[str, str]:
        if item == "missing":
            from fastapi import HTTPException
            raise HTTPException(404)
        return {"item": item}

    templates = RouteTemplates()
    templates.load(app)
    app.add_middleware(RequestObservabilityMiddleware, templates=templates, trusted_proxies=[],
                       access=mode)
    route = "/api/test-access/{item}"
    before = requests("GET", route, "2xx") or 0
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as c:
            assert (await c.get("/api/test-access/here")).status_code == 200
            assert (await c.get("/api/test-access/missing")).status_code == 404
    lines = [rec for rec in caplog.records if rec.name == "gateway.access"]
    assert [rec.fields["status"] for rec in lines] == logged  # type: ignore[attr-defined]
    assert requests("GET", route, "2xx") == before + 1  # counted whatever is logged
