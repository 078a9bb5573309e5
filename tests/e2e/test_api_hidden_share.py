"""End to end through the gateway: one task's life, then a walk of every endpoint as a
worker and as a manager looking for the hidden worker share or the gross price."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi.routing import APIRoute

from gateway_service.routes.common import hidden_keys
from servicekit.testing import eventually

# Distinctive numbers, so finding them in a body means a leak and not a coincidence.
PRICE_MINOR = 98_765
SHARE = "0.6173"
SHARE_BPS = 6173
WORKER_PART = PRICE_MINOR * SHARE_BPS // 10_000        # 60967: the worker may see this
PLATFORM_PART = PRICE_MINOR - WORKER_PART              # 37798: nobody but the admin
SECRET_NUMBERS = (str(PRICE_MINOR), str(SHARE_BPS), SHARE, str(PLATFORM_PART))


def api_routes(app: Any) -> list[tuple[str, APIRoute]]:
    out: list[tuple[str, APIRoute]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if isinstance(r, APIRoute):
                out.append((prefix + r.path, r))
            elif hasattr(r, "original_router"):
                walk(r.original_router.routes, prefix + r.include_context.prefix)
            elif hasattr(r, "routes") and hasattr(r, "path"):   # a mounted sub-router
                walk(r.routes, prefix + r.path)

    walk(list(app.routes), "")
    return out


def _leaves(data: Any):
    if isinstance(data, dict):
        for v in data.values():
            yield from _leaves(v)
    elif isinstance(data, list):
        for v in data:
            yield from _leaves(v)
    else:
        yield data


def assert_no_leak(where: str, body: Any, text: str) -> None:
    assert hidden_keys(body) == [], f"{where} exposes {hidden_keys(body)}"
    secret_numbers = {PRICE_MINOR, SHARE_BPS, PLATFORM_PART, float(SHARE)}
    if body is None:        # not JSON: look for the numbers as whole tokens in the text
        for secret in SECRET_NUMBERS:
            assert not re.search(rf"(?<![\w.:-]){re.escape(secret)}(?![\w-])", text), \
                f"{where} contains {secret}: {text[:300]}"
        return
    for leaf in _leaves(body):
        if isinstance(leaf, bool):
            continue
        if isinstance(leaf, int | float):
            assert leaf not in secret_numbers, f"{where} contains {leaf}: {text[:300]}"
        elif isinstance(leaf, str):
            assert leaf.strip() not in SECRET_NUMBERS, f"{where} contains {leaf}: {text[:300]}"
            for secret in SECRET_NUMBERS:   # e.g. "price 98765" inside a message
                assert not re.search(rf"(?<![\w.:-]){re.escape(secret)}(?![\w-])", leaf), \
                    f"{where} contains {secret}: {leaf[:300]}"


async def test_no_endpoint_shows_a_worker_or_a_manager_the_share(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    worker = await stack.user("worker")
    manager = await stack.user("manager")
    seen: list[tuple[str, Any, str]] = []     # (where, json, text) of every worker/manager reply

    def keep(where: str, r) -> Any:
        assert r.status_code < 500, f"{where}: {r.status_code} {r.text}"
        try:
            body = r.json()
        except ValueError:
            body = None
        seen.append((where, body, r.text))
        return body

    # --- the admin sets up a project, a priced pool with a distinctive share, one task
    r = await c.post("/api/admin/projects", headers=admin, json={
        "name": f"cats-{uuid.uuid4().hex[:6]}", "instructions": "Is it a cat?",
        "input_spec": [{"name": "url", "type": "string"}],
        "output_spec": [{"name": "label", "type": "string", "allowed_values": ["cat", "dog"]}]})
    assert r.status_code == 201, r.text
    project_id = r.json()["project_id"]
    r = await c.post("/api/admin/pools", headers=admin, json={
        "project_id": project_id, "name": "cats pool", "price_minor": PRICE_MINOR,
        "currency": "RUB"})
    assert r.status_code == 201, r.text
    pool_id = r.json()["pool_id"]
    assert r.json()["price_minor"] == PRICE_MINOR          # the admin does see the price
    r = await c.put(f"/api/admin/pools/{pool_id}/worker-share", headers=admin,
                    json={"share": SHARE})
    assert r.status_code == 200 and r.json()["share_bps"] == SHARE_BPS, r.text
    r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin,
                     json=[{"INPUT:url": "https://example.com/cat.png"}])
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    r = await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)
    assert r.status_code == 200, r.text

    # --- the worker takes and submits; the manager locks and accepts
    r = await c.post("/api/worker/tasks/take", headers=worker.headers, json={"pool_id": pool_id})
    assert r.status_code == 200, r.text
    assignment_id = keep("take", r)["assignment_id"]
    r = await c.post(f"/api/worker/assignments/{assignment_id}/submit", headers=worker.headers,
                     json={"answers": {"label": "cat"}, "comment": "easy",
                           "proof_text": "looked at it"})
    assert r.status_code == 200, r.text
    keep("submit", r)

    async def pending_has_it():
        r = await c.get(f"/api/review/pending?pool_id={pool_id}", headers=manager.headers)
        body = keep("pending", r)
        return any(i["assignment_id"] == assignment_id for i in body["items"])

    await eventually(pending_has_it)
    r = await c.post(f"/api/review/submissions/{assignment_id}/lock", headers=manager.headers)
    assert r.status_code == 200, r.text
    keep("lock", r)
    r = await c.post(f"/api/review/submissions/{assignment_id}/accept", headers=manager.headers,
                     json={"comment": "good"})
    assert r.status_code == 200, r.text
    keep("accept", r)

    async def credited():
        r = await c.get("/api/worker/balance", headers=worker.headers)
        body = keep("balance", r)
        return any(b["available_minor"] == WORKER_PART for b in body["balances"])

    await eventually(credited)
    r = await c.post("/api/worker/payouts", headers=worker.headers,
                     json={"amount_minor": 1000, "comment": "card 4111"})
    assert r.status_code == 201, r.text
    payout_id = keep("payout", r)["payout_id"]
    r = await c.post("/api/support/tickets", headers=worker.headers,
                     json={"subject": "hello", "text": "a question"})
    ticket_id = keep("ticket", r)["ticket_id"]

    # --- walk every GET endpoint as the worker and as the manager
    values = {"pool_id": pool_id, "project_id": project_id, "assignment_id": assignment_id,
              "worker_id": worker.user_id, "user_id": worker.user_id, "payout_id": payout_id,
              "ticket_id": ticket_id}
    walked = 0
    for path, route in api_routes(stack.gateway.app):
        if not path.startswith("/api/") or "GET" not in route.methods:
            continue
        url = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m.group(1), "x"), path)
        for who in (worker, manager):
            r = await c.get(url, headers=who.headers)
            keep(f"GET {url} as {who.role}", r)
            walked += 1

    # --- and the safe POSTs (they read or change nothing about money)
    for who in (worker, manager):
        keep(f"ask as {who.role}", await c.post("/api/support/ask", headers=who.headers,
                                                json={"question": "how do I get paid?"}))
        keep(f"backtest as {who.role}", await c.post(
            "/api/rules/backtest", headers=who.headers,
            json={"rule": {"name": "cap", "scope": "pool", "pool_id": pool_id,
                           "collector": {"kind": "income"},
                           "conditions": [{"field": "income_sum_for_24h", "operator": ">",
                                           "value": 1}],
                           "action": {"type": "restriction", "scope": "pool",
                                      "duration_unit": "hours", "duration": 1,
                                      "private_comment": "earning cap"}}}))
        keep(f"lock as {who.role}", await c.post(
            f"/api/review/submissions/{assignment_id}/lock", headers=who.headers))
    keep("decisions", await c.get("/api/worker/decisions", headers=worker.headers))

    assert walked >= 40
    for where, body, text in seen:
        assert_no_leak(where, body, text)

    # The admin, and only the admin, sees the money split.
    r = await c.get("/api/admin/dashboard", headers=admin)
    assert r.status_code == 200, r.text
    rub = next(t for t in r.json()["money"]["totals"] if t["currency"] == "RUB")
    assert rub["platform_revenue_minor"] >= PLATFORM_PART
