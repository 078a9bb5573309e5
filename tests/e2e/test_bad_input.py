"""Inputs the schemathesis fuzzer found answering 500: each is the caller's mistake (4xx)."""

from __future__ import annotations


async def test_huge_offsets_and_overlong_ids_are_4xx_not_500(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    huge = 177743278656716447678464
    for path in ("/api/admin/worker-share/audit", "/api/admin/users", "/api/admin/audit",
                 "/api/rules/explain/w-1", "/api/admin/payouts"):
        r = await c.get(path, headers=admin, params={"offset": huge, "limit": 17})
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    r = await c.post(f"/api/admin/payouts/{'0' * 63}/reject", headers=admin,
                     json={"comment": ""})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", r.text


# ---------------------------------------------------------------- issue 11: every input the
# attacker of the issue tried, each refused with a 4xx and a code where it is entered

import time  # noqa: E402
import uuid  # noqa: E402

from servicekit.testing import eventually  # noqa: E402


def refused(r, status: int | tuple[int, ...] = 422, code: str | None = None) -> None:
    statuses = (status,) if isinstance(status, int) else status
    assert r.status_code in statuses, (r.status_code, r.text)
    body = r.json()["error"]
    assert body["code"] and body["message"], r.text
    if code is not None:
        assert body["code"] == code, r.text


async def test_nul_bytes_are_422_where_they_are_entered(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    refused(await c.post("/api/auth/login", json={"login": "ad\x00min", "password": "x" * 12}),
            code="validation_error")
    refused(await c.post("/api/admin/projects", headers=admin, json={
        "name": "p\x00", "instructions": "", "input_spec": [{"name": "q"}],
        "output_spec": [{"name": "a"}]}), code="validation_error")
    worker = await stack.user("worker")
    refused(await c.post("/api/support/tickets", headers=worker.headers,
                         json={"subject": "help", "text": "a\x00b"}), code="validation_error")
    refused(await c.get("/api/admin/pools", headers=admin, params={"project_id": "a\x00b"}),
            code="validation_error")


async def test_money_the_ledger_cannot_book_is_refused_at_entry(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    r = await c.post("/api/admin/projects", headers=admin, json={
        "name": f"money-{uuid.uuid4().hex[:6]}", "input_spec": [{"name": "q"}],
        "output_spec": [{"name": "a"}]})
    assert r.status_code == 201, r.text
    project_id = r.json()["project_id"]
    for bad in ({"currency": "$$$"}, {"price_minor": 2**63 - 1}, {"price_minor": True},
                {"price_minor": "100"}, {"price_minor": -1}, {"auto_accept_after_s": 2**31},
                {"assignment_timeout_s": 2**31}, {"overlap": 2**31}):
        body = {"project_id": project_id, "name": "p", "price_minor": 100, **bad}
        refused(await c.post("/api/admin/pools", headers=admin, json=body))
    r = await c.post("/api/admin/pools", headers=admin,
                     json={"project_id": project_id, "name": "p", "price_minor": 100})
    assert r.status_code == 201, r.text
    pool_id = r.json()["pool_id"]
    for bad in ({"auto_accept_after_s": 2**31}, {"price_minor": True}, {"currency": "$$$"}):
        refused(await c.patch(f"/api/admin/pools/{pool_id}", headers=admin, json=bad))
    for share in (True, "1.5", 2, -0.1, "abc"):
        refused(await c.put(f"/api/admin/pools/{pool_id}/worker-share", headers=admin,
                            json={"share": share}))
    # a reference is checked where it is entered: a share for a pool that does not exist
    refused(await c.put("/api/admin/pools/no-such-pool/worker-share", headers=admin,
                        json={"share": 0.5}), (404, 422))
    worker = await stack.user("worker")
    for amount in (True, "100", 0, 10**12 + 1):
        refused(await c.post("/api/worker/payouts", headers=worker.headers,
                             json={"amount_minor": amount, "comment": "card 1234"}))


async def test_rules_refuse_bad_bonuses_and_pools_that_do_not_exist(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    pool_id = await stack.pool(input_spec=[{"name": "q"}], output_spec=[{"name": "a"}],
                               name="rules", price_minor=10)

    def rule(pool: str, action: dict) -> dict:
        return {"name": f"r-{uuid.uuid4().hex[:6]}", "scope": "pool", "pool_id": pool,
                "collector": {"kind": "fast_answers", "history_size": 5,
                              "fast_submit_threshold_seconds": 3},
                "conditions": [{"field": "fast_submitted_count", "operator": ">=",
                                "value": 3}],
                "action": action}

    for bonus in ({"amount_minor": True, "currency": "RUB"},
                  {"amount_minor": "100", "currency": "RUB"},
                  {"amount_minor": 2**63 - 1, "currency": "RUB"},
                  {"amount_minor": 100, "currency": "$$$"}):
        refused(await c.post("/api/admin/rules", headers=admin,
                             json=rule(pool_id, {"type": "bonus", **bonus})))
    restriction = {"type": "restriction", "scope": "pool", "duration_unit": "days",
                   "duration": 1, "private_comment": "x"}
    refused(await c.post("/api/admin/rules", headers=admin,
                         json=rule("no-such-pool", restriction)), (404, 422))
    refused(await c.post("/api/admin/rules", headers=admin,
                         json=rule(pool_id, {**restriction, "duration": 2**31})))
    r = await c.post("/api/admin/rules", headers=admin, json=rule(pool_id, restriction))
    assert r.status_code == 201, r.text
    r = await c.delete(f"/api/admin/rules/{r.json()['rule_id']}", headers=admin)
    assert r.status_code == 200, r.text


async def test_output_patterns_run_in_linear_time_and_answers_are_bounded(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    # RE2 refuses what it cannot run in linear time (a backreference)
    refused(await c.post("/api/admin/projects", headers=admin, json={
        "name": f"re-{uuid.uuid4().hex[:6]}", "input_spec": [{"name": "q"}],
        "output_spec": [{"name": "a", "pattern": r"(a)\1"}]}))
    pool_id = await stack.pool(input_spec=[{"name": "q"}],
                               output_spec=[{"name": "a", "pattern": "(a+)+"}],
                               rows=[{"q": "1"}], name="redos", price_minor=10)
    worker = await stack.user("worker")

    async def take():
        r = await c.post("/api/worker/tasks/take", headers=worker.headers,
                         json={"pool_id": pool_id})
        return r.json() if r.status_code == 200 else None

    a = await eventually(take)
    url = f"/api/worker/assignments/{a['assignment_id']}/submit"
    started = time.monotonic()
    refused(await c.post(url, headers=worker.headers, json={"answers": {"a": "a" * 5000 + "!"}}))
    assert time.monotonic() - started < 1.0
    refused(await c.post(url, headers=worker.headers,
                         json={"answers": {"a": "a" * 200_000}}), (413, 422))
    refused(await c.post(url, headers=worker.headers,
                         json={"answers": {f"f{i}": "a" for i in range(201)}}))
    r = await c.post(url, headers=worker.headers, json={"answers": {"a": "aaaa"}})
    assert r.status_code == 200, r.text


async def test_a_405_names_every_method_of_its_path(stack) -> None:
    import re

    spec = (await stack.client.get("/api/openapi.json")).json()
    templates = {re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"):
                 {m.upper() for m in ops} for p, ops in spec["paths"].items()}
    checked = 0
    for path in spec["paths"]:
        url = path.replace("{", "").replace("}", "")  # any value fills a path parameter
        # every method of every documented path this URL matches (/api/rules/backtest is
        # also /api/rules/{rule_id})
        documented = set().union(*(m for t, m in templates.items() if t.match(url)))
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - documented):
            r = await stack.client.request(method, url, headers=stack.admin.headers)
            assert r.status_code == 405, (method, path, r.status_code)
            allow = {m.strip() for m in r.headers["allow"].split(",")}
            assert allow - {"HEAD"} == documented, (method, path, allow)
            assert r.json()["error"]["code"] == "method_not_allowed"
            checked += 1
    assert checked > 300


async def test_a_time_that_utc_cannot_hold_is_422(stack) -> None:
    """Found by tests/e2e/test_schemathesis.py: 0001-01-01T00:06+01:00 is in the year 0 in
    UTC, and the review service failed converting it."""
    c, admin = stack.client, stack.admin.headers
    early = "0001-01-01T00:06:48+01:00"
    for url in ("/api/review/decisions", "/api/admin/audit"):
        for name in ("since", "until"):
            refused(await c.get(url, headers=admin, params={name: early}),
                    code="validation_error")
    r = await c.get("/api/review/decisions", headers=admin,
                    params={"since": "2026-01-01T03:00:00+03:00", "until": "2026-01-02T00:00"})
    assert r.status_code == 200, r.text
