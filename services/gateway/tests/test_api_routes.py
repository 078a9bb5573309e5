"""Product API routers against a real nats-server: real support service, stub responders.

The security layer is replaced by a tiny fake (``Authorization: Bearer role:user_id[:mfa]``)
so these tests exercise only translation, role checks and the hidden-share rule.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
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
from gateway_service.routes.common import hidden_keys, model_hidden_fields
from gateway_service.rpc import GatewayRpc
from servicekit.migrations import upgrade
from servicekit.testing.natsserver import NatsServer

ROOT = Path(__file__).resolve().parents[3]


class FakeSessions:
    async def resolve(self, request: Request) -> SessionInfo:
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
                     details: dict, *, address: str | None = None) -> None:
        self.records.append((kind, actor_user_id, target, details))


class FakeSecurity:
    """The security layer as the product routes use it: sessions from the header, an
    audit log in memory."""

    def __init__(self) -> None:
        self.sessions = FakeSessions()
        self.audit = FakeAudit()

    def client_address(self, request: Request) -> str | None:
        return request.client.host if request.client else None


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
    app.state.security = FakeSecurity()
    app.state.rpc = GatewayRpc(nc, timeout_s=2)
    app.state.nats = nc
    stubs = Stubs(nc)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               base_url="http://gw.test")
    try:
        yield client, app, stubs
    finally:
        await client.aclose()
        await stubs.close()
        await nc.close()


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server of this module's own: services other suites start on the session server
    (e.g. the cross-service stack) would otherwise answer these tests' RPCs."""
    server = NatsServer(tmp_path_factory.mktemp("nats-gw-api"))
    server.start()
    yield server
    server.stop()


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
        assert route.summary, f"{path} needs a summary for the API docs"
        assert route.tags, f"{path} needs a tag"
        if path.startswith("/api/admin/"):
            continue
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
    assert hidden_keys({"reward_minor": 70, "items": [{"amount_minor": 1}]}) == []


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
    replica = create_service(SupportSettings(database_url=database_url,
                                             nats_url=nats_server.url, environment="test"))
    replica.instance = "support-replica-2"
    await replica.start()
    asked: list[str] = []

    async def record(msg: Any) -> None:
        asked.append(msg.subject)

    spy = await stubs.nc.subscribe("rpc.>", cb=record)
    try:
        r = await client.get("/api/admin/diagnostics", headers=H("admin"))
        await stubs.nc.flush()
        # Read-only by construction: the only requests it makes are diagnostics and the
        # scatter ping that counts replicas.
        assert sorted(asked) == sorted([f"rpc.{s}.diagnostics" for s in ops.SERVICES]
                                       + [ops.ping_subject(s) for s in ops.SERVICES])
        assert r.status_code == 200, r.text
        body = r.json()
        by = {s["service"]: s for s in body["services"]}
        assert by["support"]["status"] == "ok", by["support"]
        assert by["support"]["diagnostics"]["database"] == "ok"
        # every replica answers the scatter ping, not only the queue group's one
        assert by["support"]["replicas_seen"] == 2
        assert "support-replica-2" in by["support"]["instances"]
        assert by["rules"]["replicas_seen"] == 0  # a stub answers RPCs, not pings
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
        await spy.unsubscribe()
        await replica.stop()
        await svc.stop()


# ------------------------------------------------------------------ stubbed services

NOW = "2026-11-22T12:00:00+00:00"
POOL = {"pool_id": "p1", "project_id": "pr1", "name": "Cats", "price_minor": 1000,
        "currency": "RUB", "overlap": 3, "assignment_timeout_s": 600,
        "auto_accept_after_s": None, "review_mode": "manual", "captcha_frequency": "none",
        "skill_filters": [], "priority": 0, "status": "open", "created_at": NOW,
        "updated_at": NOW}
ASSIGNMENT = {"assignment_id": "a1", "task_id": "t1", "pool_id": "p1", "project_id": "pr1",
              "worker_id": "w1", "status": "SUBMITTED", "input": {"url": "u"},
              "answers": {"label": "cat"}, "taken_at": NOW, "deadline_at": NOW,
              "submitted_at": NOW}


async def test_worker_task_loop_translates_to_tasks_rpcs(gw) -> None:
    from contracts.rpc import tasks as t

    client, _, stubs = gw
    await stubs.serve(t.SUBMIT, ASSIGNMENT)
    await stubs.serve(t.TAKE, ErrorBody(code="captcha_required", status=428,
                                        message="answer the captcha first",
                                        details={"challenge_id": "c1",
                                                 "image_png_base64": "iVBORw0KGgo="}))
    await stubs.serve(t.CAPTCHA_ANSWER, {"correct": True})
    r = await client.post("/api/worker/tasks/take", headers=H("worker", "w1"),
                          json={"pool_id": "p1"})
    assert r.status_code == 428, r.text
    assert r.json()["error"]["code"] == "captcha_required"
    assert r.json()["error"]["details"]["image_png_base64"]
    asked = stubs.calls[t.TAKE.subject][-1]
    assert asked["actor"] == {"user_id": "w1", "role": "worker"} and asked["pool_id"] == "p1"
    r = await client.post("/api/worker/tasks/take", headers=H("worker", "w1"))
    assert r.status_code == 428 and stubs.calls[t.TAKE.subject][-1]["pool_id"] is None
    r = await client.post("/api/worker/captcha", headers=H("worker", "w1"),
                          json={"challenge_id": "c1", "answer": "42"})
    assert r.status_code == 200 and r.json() == {"correct": True}
    r = await client.post("/api/worker/assignments/a1/submit", headers=H("worker", "w1"),
                          json={"answers": {"label": "cat"}, "proof_url": "https://x/1.png"})
    assert r.status_code == 200 and r.json()["status"] == "SUBMITTED"
    sent = stubs.calls[t.SUBMIT.subject][-1]
    assert sent["assignment_id"] == "a1" and sent["proof_url"] == "https://x/1.png"
    # A manager cannot act as a worker; a worker cannot reach admin routes.
    r = await client.post("/api/worker/tasks/take", headers=H("manager"), json={})
    assert r.status_code == 403
    r = await client.get("/api/admin/pools", headers=H("worker"))
    assert r.status_code == 403
    # No service answers skip in this test: a clear 503, not a crash.
    r = await client.post("/api/worker/assignments/a1/skip", headers=H("worker", "w1"))
    assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"


async def test_staff_pool_views_never_carry_the_price(gw) -> None:
    from contracts.rpc import tasks as t

    client, _, stubs = gw
    # Even if a service forgot to drop the price for a manager, the gateway view drops it.
    await stubs.serve(t.GET_POOL, POOL)
    await stubs.serve(t.LIST_POOLS, {"items": [POOL], "total": 1})
    await stubs.serve(t.ADMIN_GET_POOL, POOL)  # only the admin's own spec carries the price
    r = await client.get("/api/pools/p1", headers=H("manager"))
    assert r.status_code == 200 and r.json()["name"] == "Cats"
    assert hidden_keys(r.json()) == [] and "1000" not in r.text
    r = await client.get("/api/pools", headers=H("manager"))
    assert r.json()["total"] == 1 and hidden_keys(r.json()) == []
    r = await client.get("/api/admin/pools/p1", headers=H("admin"))
    assert r.json()["price_minor"] == 1000


async def serve_platform_funding(stubs: Stubs) -> None:
    """The ledger's answer for a pool the platform funds: an upload reserves nothing (the
    gateway asks before every upload into a pool)."""
    from contracts.rpc import ledger as led

    await stubs.serve(led.GET_POOL_BUDGET, lambda req: {"pool_id": req["pool_id"],
                                                        "funded_by": "platform"})


async def test_task_upload_json_and_tsv_and_results_export(gw) -> None:
    from contracts.rpc import tasks as t

    client, _, stubs = gw
    await serve_platform_funding(stubs)
    await stubs.serve(t.UPLOAD_TASKS, lambda req: {
        "created": 2 if req["format"] == "json" else 1, "control_tasks": 0,
        "task_ids": ["t1"], "errors": []})
    def export_page(req: dict) -> dict:
        # three pages of one row each, as the tasks service sends a big file
        n = 0 if req["cursor"] is None else int(req["cursor"])
        if req["format"] == "csv":
            content = ("url,label\n" if n == 0 else "") + f"u{n},cat\n"
        else:
            content = f'[{{"row": {n}}}]'
        return {"content_type": "ignored", "filename": f"p1-results.{req['format']}",
                "rows": 1, "total_rows": 3 if n == 0 else None, "content": content,
                "next_cursor": str(n + 1) if n < 2 else None}

    await stubs.serve(t.EXPORT_RESULTS, export_page)
    r = await client.post("/api/admin/pools/p1/tasks?all_or_nothing=true", headers=H("admin"),
                          json=[{"INPUT:url": "a"}, {"INPUT:url": "b"}])
    assert r.status_code == 200 and r.json()["created"] == 2
    sent = stubs.calls[t.UPLOAD_TASKS.subject][-1]
    assert sent["format"] == "json" and sent["all_or_nothing"] is True
    assert len(sent["content"]) == 2
    r = await client.post("/api/admin/pools/p1/tasks", headers={
        **H("admin"), "Content-Type": "text/tab-separated-values"},
        content=b"INPUT:url\nhttps://e/1.png\n")
    assert r.status_code == 200 and r.json()["created"] == 1
    assert stubs.calls[t.UPLOAD_TASKS.subject][-1]["content"].startswith("INPUT:url")
    r = await client.post("/api/admin/pools/p1/tasks", headers={
        **H("admin"), "Content-Type": "application/json"}, content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"
    r = await client.post("/api/admin/pools/p1/tasks", headers={
        **H("admin"), "Content-Type": "image/png"}, content=b"\x89PNG")
    assert r.status_code == 415
    r = await client.get("/api/admin/pools/p1/results?format=csv", headers=H("admin"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="p1-results.csv"' in r.headers["content-disposition"]
    assert r.text == "url,label\nu0,cat\nu1,cat\nu2,cat\n"
    assert r.headers["x-result-rows"] == "3"
    r = await client.get("/api/admin/pools/p1/results?format=json", headers=H("admin"))
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == [{"row": 0}, {"row": 1}, {"row": 2}]
    r = await client.get("/api/admin/pools/p1/results?format=xml", headers=H("admin"))
    assert r.status_code == 422


async def test_payout_approval_needs_mfa_and_is_audited(gw) -> None:
    from contracts.rpc import ledger as lg

    client, app, stubs = gw
    payout = {"payout_id": "po1", "worker_id": "w1", "amount_minor": 500, "currency": "RUB",
              "comment": "card", "status": "approved", "requested_at": NOW}
    await stubs.serve(lg.APPROVE_PAYOUT, payout)
    r = await client.post("/api/admin/payouts/po1/approve", headers=H("admin"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "mfa_required"
    assert stubs.calls.get(lg.APPROVE_PAYOUT.subject) is None
    r = await client.post("/api/admin/payouts/po1/approve", headers=H("manager", mfa=True))
    assert r.status_code == 403
    r = await client.post("/api/admin/payouts/po1/approve", headers=H("admin", "boss", mfa=True),
                          json={"comment": "paid"})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert app.state.security.audit.records[-1] == ("payout.approved", "boss", "po1", {
        "worker_id": "w1", "amount_minor": 500, "currency": "RUB"})


async def test_worker_share_set_is_audited_with_old_and_new(gw) -> None:
    from contracts.rpc import ledger as lg
    from contracts.rpc import tasks as t

    client, app, stubs = gw
    await stubs.serve(t.ADMIN_GET_POOL, lambda req: POOL if req["pool_id"] == "p1" else ErrorBody(
        code="pool_not_found", message="no pool", status=404))
    await stubs.serve(lg.GET_SHARE, lambda req: {
        "pool_id": req["pool_id"], "share": "0.7", "share_bps": 7000, "source": "default"})
    await stubs.serve(lg.SET_SHARE, lambda req: {
        "pool_id": req["pool_id"], "share": str(req["share"]), "share_bps": 6500,
        "source": "pool", "updated_by": req["actor"]["user_id"]})
    r = await client.put("/api/admin/pools/p1/worker-share", headers=H("manager"),
                         json={"share": 0.65})
    assert r.status_code == 403
    r = await client.put("/api/admin/pools/p1/worker-share", headers=H("admin", "boss"),
                         json={"share": 0.65})
    assert r.status_code == 200 and r.json()["share_bps"] == 6500
    kind, who, target, details = app.state.security.audit.records[-1]
    assert (kind, who, target) == ("worker_share.changed", "boss", "p1")
    assert details["old_share_bps"] == 7000 and details["new_share_bps"] == 6500
    r = await client.put("/api/admin/worker-share/default", headers=H("admin", "boss"),
                         json={"share": "0.8"})
    assert r.status_code == 200
    assert stubs.calls[lg.SET_SHARE.subject][-1]["pool_id"] is None
    assert app.state.security.audit.records[-1][2] == "default"
    # a pool that does not exist gets no share (the tasks service says so)
    calls = len(stubs.calls[lg.SET_SHARE.subject])
    r = await client.put("/api/admin/pools/nope/worker-share", headers=H("admin", "boss"),
                         json={"share": 0.5})
    assert r.status_code == 404 and r.json()["error"]["code"] == "pool_not_found"
    assert len(stubs.calls[lg.SET_SHARE.subject]) == calls


async def test_manager_pool_stats_combine_tasks_and_review(gw) -> None:
    from contracts.rpc import review as rv
    from contracts.rpc import tasks as t

    client, _, stubs = gw
    await stubs.serve(t.POOL_STATS, {"pool_id": "p1", "status": "open", "tasks_total": 10,
                                     "control_tasks": 1, "tasks_open": 6, "tasks_completed": 3,
                                     "assignments": {"ACTIVE": 2, "ACCEPTED": 9}})
    await stubs.serve(rv.STATS, {"pool_id": "p1", "pending": 4, "accepted": 9, "rejected": 1,
                                 "acceptance_rate": 0.9,
                                 "throughput_per_hour": [{"hour_start": NOW, "decisions": 10}],
                                 "top_workers": [{"worker_id": "w1", "accepted": 9}]})
    r = await client.get("/api/pools/p1/stats?top=5", headers=H("manager"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["assignments_by_status"]["ACCEPTED"] == 9 and body["pending_review"] == 4
    assert body["acceptance_rate"] == 0.9 and body["top_workers"][0]["worker_id"] == "w1"
    assert stubs.calls[rv.STATS.subject][-1]["top"] == 5
    assert hidden_keys(body) == []
    r = await client.get("/api/pools/p1/stats", headers=H("worker"))
    assert r.status_code == 403


async def test_owner_dashboard_combines_task_flow_and_money(gw) -> None:
    from contracts.rpc import ledger as lg
    from contracts.rpc import support as sp
    from contracts.rpc import tasks as t

    client, _, stubs = gw
    await stubs.serve(sp.SUPPORT_STATS, {"open": 4, "answered": 2, "closed": 7,
                                         "median_first_answer_s": 95.5})
    archived = {**POOL, "pool_id": "p0", "status": "archived"}
    await stubs.serve(t.LIST_POOLS, {"items": [POOL, archived], "total": 2})
    await stubs.serve(t.POOL_STATS, lambda req: {
        "pool_id": req["pool_id"], "status": "open", "tasks_total": 10, "control_tasks": 0,
        "tasks_open": 6, "tasks_completed": 3, "assignments": {"ACCEPTED": 9}})
    await stubs.serve(lg.OWNER_DASHBOARD, {
        "totals": [{"currency": "RUB", "charged_minor": 9000, "credited_to_workers_minor": 6300,
                    "assignment_credits_minor": 6300, "bonuses_minor": 0,
                    "platform_revenue_minor": 2700, "available_minor": 5300,
                    "on_hold_minor": 500, "paid_minor": 500}],
        "counts": {"assignment_credits": 9, "bonuses": 0, "workers": 2, "payouts_pending": 1,
                   "payouts_approved": 1, "payouts_rejected": 0}})
    r = await client.get("/api/admin/dashboard", headers=H("manager"))
    assert r.status_code == 403
    r = await client.get("/api/admin/dashboard", headers=H("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    flow = body["task_flow"]
    assert flow["pools_by_status"] == {"open": 1, "archived": 1}
    assert [p["pool_id"] for p in flow["pools"]] == ["p1"]  # archived pools are not polled
    assert flow["assignments_by_status"] == {"ACCEPTED": 9} and flow["tasks_completed"] == 3
    money = body["money"]["totals"][0]
    assert money["platform_revenue_minor"] == 2700 and money["on_hold_minor"] == 500
    assert body["support"] == {"open": 4, "answered": 2, "closed": 7,
                               "median_first_answer_s": 95.5}


async def test_big_uploads_go_in_parts_with_row_numbers_of_the_whole_file(gw, monkeypatch) -> None:
    from contracts.rpc import tasks as t
    from gateway_service.routes import tasks as tasks_routes

    client, _, stubs = gw
    monkeypatch.setattr(tasks_routes, "UPLOAD_CHUNK_BYTES", 200)

    def answer(req: dict) -> dict:
        # Like the tasks service: JSON rows count from 1, TSV lines from the header (= 1);
        # a row whose value is "bad" is refused.
        if req["format"] == "json":
            rows = list(enumerate(req["content"], start=1))
        else:
            lines = req["content"].splitlines()
            rows = [(n, {"INPUT:q": v}) for n, v in enumerate(lines[1:], start=2)]
        bad = [n for n, r in rows if r["INPUT:q"] == "bad"]
        return {"created": len(rows) - len(bad), "control_tasks": 0,
                "task_ids": [f"t{n}" for n, _ in rows if n not in bad],
                "errors": [{"line": n, "error": "bad row"} for n in bad]}

    await serve_platform_funding(stubs)
    await stubs.serve(t.UPLOAD_TASKS, answer)
    rows = [{"INPUT:q": f"question number {i:03d}"} for i in range(30)]
    rows[17] = {"INPUT:q": "bad"}
    r = await client.post("/api/admin/pools/p1/tasks", headers=H("admin"), json=rows)
    assert r.status_code == 200, r.text
    parts = list(stubs.calls[t.UPLOAD_TASKS.subject])
    assert len(parts) > 2 and sum(len(p["content"]) for p in parts) == 30
    assert all(len(json.dumps(p["content"], ensure_ascii=False)) <= 200 for p in parts)
    assert r.json()["created"] == 29 and len(r.json()["task_ids"]) == 29
    assert r.json()["errors"] == [{"line": 18, "error": "bad row"}]

    tsv = "INPUT:q\n" + "".join(f"question number {i:03d}\n" if i != 24 else "bad\n"
                                for i in range(40))
    r = await client.post("/api/admin/pools/p1/tasks", content=tsv.encode(),
                          headers={**H("admin"), "Content-Type": "text/tab-separated-values"})
    assert r.status_code == 200, r.text
    tsv_parts = stubs.calls[t.UPLOAD_TASKS.subject][len(parts):]
    assert len(tsv_parts) > 2 and all(p["content"].startswith("INPUT:q\n") for p in tsv_parts)
    assert all(len(json.dumps(p["content"], ensure_ascii=False)) <= 200 for p in tsv_parts)
    assert r.json()["created"] == 39
    assert r.json()["errors"] == [{"line": 26, "error": "bad row"}]   # data row 25 = line 26

    r = await client.post("/api/admin/pools/p1/tasks?all_or_nothing=true", headers=H("admin"),
                          json=rows)
    assert r.status_code == 413 and r.json()["error"]["code"] == "upload_too_large"
    r = await client.post("/api/admin/pools/p1/tasks", headers=H("admin"),
                          json=[{"INPUT:q": "x" * 500}])
    assert r.status_code == 413 and r.json()["error"]["code"] == "row_too_large"


def test_no_two_routes_match_the_same_request() -> None:
    """The gateway mounts its busiest routers first; that is only safe while no two
    routes (method + path, a parameter matching any one segment) can match one request."""
    from gateway_service.routes import API_ROUTERS, admin_security, admin_users, status
    from gateway_service.routes import auth as auth_routes

    routes = [(r.path, frozenset(r.methods or ())) for router in (
        *API_ROUTERS, auth_routes.router, auth_routes.dev_router, admin_users.router,
        admin_security.router, status.router) for r in router.routes]
    assert len(routes) > 80

    def overlap(a: str, b: str) -> bool:
        sa, sb = a.strip("/").split("/"), b.strip("/").split("/")
        return len(sa) == len(sb) and all(
            x == y or x.startswith("{") or y.startswith("{") for x, y in zip(sa, sb, strict=True))

    clashes = [(p1, p2) for i, (p1, m1) in enumerate(routes) for p2, m2 in routes[i + 1:]
               if m1 & m2 and overlap(p1, p2)]
    assert clashes == []
