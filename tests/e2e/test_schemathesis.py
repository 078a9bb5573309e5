"""Schemathesis over the gateway's own OpenAPI, signed in as each role.

Cases are generated from ``/api/openapi.json`` by Schemathesis (valid and invalid data,
a fixed seed, a few examples per operation) and sent through the ``stack``'s in-process
client, so every service answers for real. Half of the cases of an operation with ids in
its path name things that exist (a project, an open pool with tasks, the worker's
assignment, a rule, users), so the services' own checks and writes run, not only "not
found". Every answer must be documented for its operation, and none may be a 500. Each
role runs as its own user; what they changed that other tests rely on (the default worker
share, trust limits, rules) is put back after.
"""

from __future__ import annotations

import collections
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyotp
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from servicekit.testing import eventually

SEED = 20261201
# examples per operation: random ids, then (where the path has ids) ids that exist
EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}
BASE_URL = "http://gateway.test"
ROLES = ("worker", "manager", "admin")
FUZZ_CLIENT = ("203.0.113.7", 40000)  # a documentation address, only ever an ASGI scope value

# Operations not fuzzed, and why (each is covered by its own tests):
SKIPPED: dict[tuple[str, str], str] = {
    ("POST", "/api/auth/logout"): "ends the fuzzing session",
    ("POST", "/api/auth/logout-all"): "ends the fuzzing session",
    # would freeze the shared stack for every later test (tests/e2e/test_read_only.py)
    ("POST", "/api/admin/emergency"): "switches the whole platform to read-only",
    # a server-sent event stream held open for live_max_s (test_worker_views_and_live.py)
    ("GET", "/api/live"): "a long-lived event stream",
}


@dataclass
class World:
    """The fuzzing users and real things for path ids, made once per session."""

    headers: dict[str, dict[str, str]]
    ids: dict[str, str]
    client: httpx.AsyncClient
    cases: list[Any] = field(default_factory=list)


_WORLD: list[World] = []


async def _mfa_elevated(stack, headers: dict[str, str]) -> None:
    c = stack.client
    setup = await c.post("/api/auth/mfa/setup", headers=headers)
    totp = pyotp.TOTP(setup.json()["secret"])
    r = await c.post("/api/auth/mfa/confirm", headers=headers, json={"code": totp.now()})
    assert r.status_code == 200, r.text
    r = await c.post("/api/auth/mfa/step-up", headers=headers,
                     json={"recovery_code": r.json()["recovery_codes"][0]})
    assert r.status_code == 200, r.text


async def _world(stack) -> World:
    if _WORLD:
        return _WORLD[0]
    c = stack.client
    users = {role: await stack.user(role) for role in ROLES}
    await _mfa_elevated(stack, users["admin"].headers)
    bystander = await stack.user("worker")  # what the admin's fuzzing may disable
    pool_id = await stack.pool(input_spec=[{"name": "q", "type": "string"}],
                               output_spec=[{"name": "a", "type": "string", "max_length": 50,
                                             "pattern": "[a-z]+"}],
                               rows=[{"q": f"q{i}"} for i in range(20)], name="fuzz",
                               price_minor=100)
    pool = (await c.get(f"/api/admin/pools/{pool_id}", headers=stack.admin.headers)).json()

    async def take() -> dict[str, Any] | None:
        r = await c.post("/api/worker/tasks/take", headers=users["worker"].headers,
                         json={"pool_id": pool_id})
        return r.json() if r.status_code == 200 else None

    assignment = await eventually(take)
    r = await c.post("/api/admin/rules", headers=stack.admin.headers, json={
        "name": f"fuzz-{uuid.uuid4().hex[:6]}", "scope": "pool", "pool_id": pool_id,
        "collector": {"kind": "fast_answers", "history_size": 5,
                      "fast_submit_threshold_seconds": 1},
        "conditions": [{"field": "fast_submitted_count", "operator": ">=", "value": 5}],
        "action": {"type": "restriction", "scope": "pool", "duration_unit": "minutes",
                   "duration": 1, "private_comment": "fuzz"}})
    assert r.status_code == 201, r.text
    ids = {"pool_id": pool_id, "project_id": pool["project_id"],
           "assignment_id": assignment["assignment_id"],
           "worker_id": users["worker"].user_id, "user_id": bystander.user_id,
           "rule_id": r.json()["rule_id"]}
    spec = (await c.get("/api/openapi.json")).text
    # Its own client address: the run's many failed logins fill that address's throttle,
    # not the one every other test of the session logs in from.
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.gateway.app,
                                                             client=FUZZ_CLIENT),
                               base_url=BASE_URL, timeout=30)
    world = World({role: u.headers for role, u in users.items()}, ids, client,
                  _generate(json.loads(spec), ids))
    _WORLD.append(world)
    return world


def _draw(strategy: Any, n: int) -> list[Any]:
    """``n`` examples of ``strategy``, the same on every run."""
    drawn: list[Any] = []

    @seed(SEED)
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(case: Any) -> None:
        drawn.append(case)

    try:
        draw()
    except Unsatisfiable:  # no invalid input exists (an operation without parameters)
        pass
    return drawn


def _generate(spec: dict[str, Any], ids: dict[str, str]) -> list[Any]:
    """Every operation's cases (the same for each role)."""
    schema = schemathesis.openapi.from_dict(spec)
    cases: list[Any] = []
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIPPED:
            continue
        real = {p.name: ids[p.name] for p in op.path_parameters if p.name in ids}
        for mode, n in EXAMPLES.items():
            if real and len(real) == len(list(op.path_parameters)):
                cases.extend(_draw(op.as_strategy(generation_mode=mode), n // 2))
                if mode is GenerationMode.POSITIVE:
                    cases.extend(_draw(op.as_strategy(generation_mode=mode,
                                                      path_parameters=real), n - n // 2))
            else:
                cases.extend(_draw(op.as_strategy(generation_mode=mode), n))
    return cases


def _request_kwargs(case: Any, headers: dict[str, str]) -> dict[str, Any]:
    kw = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    out = {k: kw[k] for k in ("method", "url", "headers", "params", "cookies") if kw.get(k)}
    if "json" in kw:
        out["json"] = kw["json"]
    elif kw.get("data") is not None:
        data = kw["data"]
        out["content"] = data.encode() if isinstance(data, str) else data
    return out


def _documented(responses: dict[str, Any], status: int) -> bool:
    return (str(status) in responses or f"{str(status)[0]}XX" in responses
            or "default" in responses)


async def _snapshot(stack) -> dict[str, Any]:
    c, h = stack.client, stack.admin.headers
    share = (await c.get("/api/admin/worker-share/default", headers=h)).json()
    limits = (await c.get("/api/admin/trust-limits", headers=h)).json()
    rules = {r["rule_id"] for r in (await c.get("/api/rules", headers=h,
                                                params={"limit": 500})).json()["items"]}
    return {"share": share, "limits": limits, "rules": rules}


async def _restore(stack, before: dict[str, Any]) -> None:
    c, h = stack.client, stack.admin.headers
    r = await c.put("/api/admin/worker-share/default", headers=h,
                    json={"share": before["share"]["share"]})
    assert r.status_code == 200, r.text
    for level in before["limits"]["levels"]:
        r = await c.put("/api/admin/trust-limits", headers=h, json=level)
        assert r.status_code == 200, r.text
    rules = (await c.get("/api/rules", headers=h, params={"limit": 500})).json()["items"]
    for rule in rules:
        if rule["rule_id"] not in before["rules"]:
            r = await c.delete(f"/api/admin/rules/{rule['rule_id']}", headers=h)
            assert r.status_code in (200, 404), r.text


@pytest.mark.timeout(300)  # the first role also generates every case (slow on a busy machine)
@pytest.mark.parametrize("role", ROLES)
async def test_every_answer_is_documented_and_none_is_a_500(stack, role: str) -> None:
    world = await _world(stack)
    headers = world.headers[role]
    before = await _snapshot(stack)
    failures: collections.Counter[tuple[str, str, int]] = collections.Counter()
    examples: dict[tuple[str, str, int], str] = {}
    statuses: collections.Counter[int] = collections.Counter()
    started = time.monotonic()
    try:
        for case in world.cases:
            r = await world.client.request(**_request_kwargs(case, headers))
            statuses[r.status_code] += 1
            responses = case.operation.definition.raw.get("responses", {})
            if r.status_code == 500 or not _documented(responses, r.status_code):
                key = (case.method.upper(), case.operation.path, r.status_code)
                failures[key] += 1
                examples.setdefault(key, f"{case.as_curl_command(headers=headers)}\n"
                                         f"    -> {r.status_code} {r.text[:300]}")
    finally:
        await _restore(stack, before)
    await stack.user("worker")  # the session's own address still logs in (no throttle left)
    print(f"{role}: {len(world.cases)} requests in {time.monotonic() - started:.1f} s, "
          f"statuses {dict(sorted(statuses.items()))}")
    assert not failures, f"{sum(failures.values())} bad answers:\n" + "\n".join(
        f"{n} x {m} {p} -> {s}\n    {examples[(m, p, s)]}"
        for (m, p, s), n in failures.most_common())
    assert statuses[500] == 0 and sum(statuses.values()) == len(world.cases)
