"""Confirmed configuration changes ("safe mode") through the gateway: a proposal changes
nothing until an admin confirms it, then the owning service shows the new value and a
revert (itself a change) restores the old one; a stale proposal is refused; a money
setting is not applied without the MFA step-up; a manual patch applies at once; bad
inputs are refused with a code."""

from __future__ import annotations

import time

import pyotp

SPEC = {"input_spec": [{"name": "q"}], "output_spec": [{"name": "a"}]}


async def admin_pool(stack, **pool) -> tuple[str, dict]:
    pool_id = await stack.pool(**SPEC, rows=[{"q": "1"}], price_minor=100, currency="RUB",
                               **pool)
    r = await stack.client.get(f"/api/admin/pools/{pool_id}", headers=stack.admin.headers)
    assert r.status_code == 200, r.text
    return pool_id, r.json()


async def audit_kinds(stack, change_id: str) -> list[str]:
    r = await stack.client.get("/api/admin/audit", headers=stack.admin.headers,
                               params={"limit": 500})
    assert r.status_code == 200, r.text
    return [e["kind"] for e in r.json()["items"] if e["target"] == change_id]


async def test_proposal_waits_for_confirmation_and_revert_restores(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    manager = await stack.user("manager")
    pool_id, pool = await admin_pool(stack, assignment_timeout_s=600)
    assert pool["assignment_timeout_s"] == 600

    r = await c.post("/api/admin/changes", headers=manager.headers, json={
        "setting": {"kind": "pool.assignment_timeout_s", "pool_id": pool_id, "value": 900},
        "reason": "workers time out on long texts"})
    assert r.status_code == 201, r.text
    change = r.json()
    assert (change["state"], change["before"], change["after"]) == ("proposed", 600, 900)
    assert change["proposed_by"] == manager.user_id and change["money"] is False

    # nothing changed; the manager can list it but not confirm it
    r = await c.get(f"/api/admin/pools/{pool_id}", headers=admin)
    assert r.json()["assignment_timeout_s"] == 600
    r = await c.get("/api/admin/changes", headers=manager.headers, params={"state": "proposed"})
    [listed] = [x for x in r.json()["items"] if x["change_id"] == change["change_id"]]
    # named by login: a manager may not list the users to look it up
    assert (listed["proposed_by_login"], listed["decided_by_login"]) == (manager.login, None)
    r = await c.post(f"/api/admin/changes/{change['change_id']}/confirm", headers=manager.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await c.get(f"/api/admin/pools/{pool_id}", headers=admin)
    assert r.json()["assignment_timeout_s"] == 600

    r = await c.post(f"/api/admin/changes/{change['change_id']}/confirm", headers=admin,
                     json={"reason": "agreed"})
    assert r.status_code == 200, r.text
    applied = r.json()
    assert applied["state"] == "applied" and applied["decided_by"] == stack.admin.user_id
    r = await c.get(f"/api/admin/changes/{change['change_id']}", headers=manager.headers)
    assert (r.json()["proposed_by_login"], r.json()["decided_by_login"]) == (
        manager.login, stack.admin.login)
    r = await c.get(f"/api/admin/pools/{pool_id}", headers=admin)
    assert r.json()["assignment_timeout_s"] == 900
    # confirming again (a retry whose first answer was lost) changes nothing
    r = await c.post(f"/api/admin/changes/{change['change_id']}/confirm", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "applied", r.text
    assert await audit_kinds(stack, change["change_id"]) == [
        "config_change.applied", "config_change.proposed"]

    # the revert is a change of its own: proposed by the manager, confirmed by the admin
    r = await c.post(f"/api/admin/changes/{change['change_id']}/revert", headers=manager.headers,
                     json={"reason": "texts got shorter"})
    assert r.status_code == 201, r.text
    revert = r.json()
    assert (revert["state"], revert["before"], revert["after"], revert["reverts"]) == (
        "proposed", 900, 600, change["change_id"])
    r = await c.post(f"/api/admin/changes/{change['change_id']}/revert", headers=manager.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "revert_pending", r.text
    r = await c.get(f"/api/admin/pools/{pool_id}", headers=admin)
    assert r.json()["assignment_timeout_s"] == 900
    r = await c.post(f"/api/admin/changes/{revert['change_id']}/confirm", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "applied", r.text
    r = await c.get(f"/api/admin/pools/{pool_id}", headers=admin)
    assert r.json()["assignment_timeout_s"] == 600
    r = await c.get(f"/api/admin/changes/{change['change_id']}", headers=manager.headers)
    assert r.json()["reverted_by"] == revert["change_id"]
    r = await c.post(f"/api/admin/changes/{change['change_id']}/revert", headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "change_not_revertible"


async def test_stale_proposal_is_refused_and_a_rejection_records_why(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    pool_id, pool = await admin_pool(stack, overlap=1)
    r = await c.post("/api/admin/changes", headers=admin, json={
        "setting": {"kind": "pool.overlap", "pool_id": pool_id, "value": 3}})
    assert r.status_code == 201, r.text
    stale_id = r.json()["change_id"]
    r = await c.patch(f"/api/admin/pools/{pool_id}", headers=admin, json={"overlap": 2})
    assert r.status_code == 200, r.text

    r = await c.post(f"/api/admin/changes/{stale_id}/confirm", headers=admin)
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "proposal_stale"
    assert (err["details"]["before"], err["details"]["current"]) == (1, 2)
    r = await c.get(f"/api/admin/changes/{stale_id}", headers=admin)
    assert (r.json()["state"], r.json()["current"]) == ("stale", 2)
    r = await c.get(f"/api/admin/pools/{pool_id}", headers=admin)
    assert r.json()["overlap"] == 2
    r = await c.post(f"/api/admin/changes/{stale_id}/confirm", headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "change_not_proposed"

    # trust limits: proposed, then rejected with a reason; nothing changes
    r = await c.get("/api/admin/trust-limits", headers=admin)
    verified = next(lv for lv in r.json()["levels"] if lv["level"] == "verified")
    r = await c.post("/api/admin/changes", headers=admin, json={"setting": {
        "kind": "trust_limits", "level": "verified",
        "value": {"max_active": verified["max_active"] + 5, "min_pause_s": 0.5}}})
    assert r.status_code == 201, r.text
    tid = r.json()["change_id"]
    r = await c.post(f"/api/admin/changes/{tid}/reject", headers=admin, json={"reason": ""})
    assert r.status_code == 422, r.text
    r = await c.post(f"/api/admin/changes/{tid}/reject", headers=admin,
                     json={"reason": "too generous for new accounts"})
    assert r.status_code == 200, r.text
    rejected = r.json()
    assert (rejected["state"], rejected["decided_by"], rejected["decision_reason"]) == (
        "rejected", stack.admin.user_id, "too generous for new accounts")
    r = await c.get("/api/admin/trust-limits", headers=admin)
    assert next(lv for lv in r.json()["levels"] if lv["level"] == "verified") == verified
    assert "config_change.rejected" in await audit_kinds(stack, tid)


async def test_rule_threshold_validated_by_rules_then_patched(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    pool_id, _ = await admin_pool(stack)
    r = await c.post("/api/admin/rules", headers=admin, json={
        "name": "many skips", "scope": "pool", "pool_id": pool_id,
        "collector": {"kind": "skipped_in_row"},
        "conditions": [{"field": "skipped_in_row_count", "operator": ">=", "value": 5}],
        "action": {"type": "restriction", "scope": "pool", "duration_unit": "hours",
                   "duration": 1, "private_comment": "skips"}})
    assert r.status_code == 201, r.text
    rule_id = r.json()["rule_id"]

    # a field the rule's collector does not count: refused by the rules service
    r = await c.post("/api/admin/changes", headers=admin, json={"setting": {
        "kind": "rule.params", "rule_id": rule_id,
        "value": {"conditions": [{"field": "fail_rate", "operator": ">", "value": 1}]}}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "rule_invalid", r.text

    r = await c.post("/api/admin/changes/patch", headers=admin, json={
        "setting": {"kind": "rule.params", "rule_id": rule_id, "value": {"conditions": [
            {"field": "skipped_in_row_count", "operator": ">=", "value": 8}]}},
        "reason": "5 was too strict"})
    assert r.status_code == 201, r.text
    patched = r.json()
    assert (patched["state"], patched["patch"]) == ("applied", True)
    assert patched["before"]["conditions"][0]["value"] == 5
    r = await c.get(f"/api/rules/{rule_id}", headers=admin)
    assert r.json()["conditions"][0]["value"] == 8
    assert "config_change.patched" in await audit_kinds(stack, patched["change_id"])
    # a threshold change is a new version of the rule, as any edit (explain names it)
    r = await c.get(f"/api/rule-versions/{rule_id}", headers=admin)
    assert r.status_code == 200, r.text
    assert [(v["version"], v["conditions"][0]["value"]) for v in r.json()["items"]] == [
        (2, 8), (1, 5)]
    assert {v["edited_by_login"] for v in r.json()["items"]} == {stack.admin.login}


async def _mfa_admin(stack):
    """A second admin with TOTP set up; returns (user, secret, a fresh unelevated session)."""
    c = stack.client
    other = await stack.user("admin")
    r = await c.post("/api/auth/mfa/setup", headers=other.headers)
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = await c.post("/api/auth/mfa/confirm", headers=other.headers,
                     json={"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 200, r.text
    fresh = await stack.login(other.login, other.password)  # a new session: not elevated
    return other, secret, {"Authorization": f"Bearer {fresh['token']}"}


def _wrong_code(secret: str) -> str:
    totp = pyotp.TOTP(secret)
    valid = {totp.at(time.time() + d) for d in (-30, 0, 30)}
    return next(code for code in ("123456", "654321", "111111", "222222") if code not in valid)


async def test_money_setting_needs_the_mfa_step_up(stack) -> None:
    c = stack.client
    manager = await stack.user("manager")
    admin, secret, h = await _mfa_admin(stack)
    pool_id, _ = await admin_pool(stack)
    r = await c.get(f"/api/admin/pools/{pool_id}/worker-share", headers=h)
    before = r.json()["share_bps"]
    wanted = 6500 if before != 6500 else 6000

    r = await c.post("/api/admin/changes", headers=manager.headers, json={
        "setting": {"kind": "worker_share", "pool_id": pool_id, "value": wanted}})
    assert r.status_code == 403, r.text
    r = await c.post("/api/admin/changes", headers=h, json={
        "setting": {"kind": "worker_share", "pool_id": pool_id, "value": wanted}})
    assert r.status_code == 201, r.text
    change = r.json()
    assert change["money"] is True and (change["before"], change["after"]) == (before, wanted)
    # a manager never sees a money setting
    r = await c.get(f"/api/admin/changes/{change['change_id']}", headers=manager.headers)
    assert r.status_code == 404
    r = await c.get("/api/admin/changes", headers=manager.headers, params={"limit": 500})
    assert all(x["kind"] != "worker_share" for x in r.json()["items"])

    url = f"/api/admin/changes/{change['change_id']}/confirm"
    r = await c.post(url, headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "mfa_required", r.text
    r = await c.post(url, headers=h, json={"mfa_code": _wrong_code(secret)})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_code", r.text
    r = await c.get(f"/api/admin/pools/{pool_id}/worker-share", headers=h)
    assert r.json()["share_bps"] == before
    r = await c.get(f"/api/admin/changes/{change['change_id']}", headers=h)
    assert r.json()["state"] == "proposed"

    r = await c.post(url, headers=h, json={"mfa_code": pyotp.TOTP(secret).at(time.time() + 30)})
    assert r.status_code == 200 and r.json()["state"] == "applied", r.text
    r = await c.get(f"/api/admin/pools/{pool_id}/worker-share", headers=h)
    assert (r.json()["share_bps"], r.json()["updated_by"]) == (wanted, admin.user_id)

    # a manual patch of a money setting needs it too (a new session is not elevated)
    fresh = await stack.login(admin.login, admin.password)
    h2 = {"Authorization": f"Bearer {fresh['token']}"}
    r = await c.post("/api/admin/changes/patch", headers=h2, json={
        "setting": {"kind": "worker_share", "pool_id": pool_id, "value": before}})
    assert r.status_code == 403 and r.json()["error"]["code"] == "mfa_required", r.text
    r = await c.get(f"/api/admin/pools/{pool_id}/worker-share", headers=h)
    assert r.json()["share_bps"] == wanted


async def test_bad_inputs_are_refused_with_a_code(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    worker = await stack.user("worker")
    pool_id, pool = await admin_pool(stack)
    setting = {"kind": "pool.overlap", "pool_id": pool_id, "value": 2}
    cases = [
        ({"setting": {**setting, "value": 0}}, 422, "validation_error"),
        ({"setting": {**setting, "value": "2"}}, 422, "validation_error"),
        ({"setting": {**setting, "kind": "pool.colour"}}, 422, "validation_error"),
        ({"setting": {"kind": "worker_share", "value": 10_001}}, 422, "validation_error"),
        ({"setting": {"kind": "trust_limits", "level": "gold",
                      "value": {"max_active": 1, "min_pause_s": 0}}}, 422, "validation_error"),
        ({"setting": {**setting, "pool_id": "no-such-pool"}}, 404, "pool_not_found"),
        ({"setting": {**setting, "value": pool["overlap"]}}, 422, "change_no_op"),
        ({"setting": {"kind": "rule.params", "rule_id": "no-such-rule",
                      "value": {"conditions": [{"field": "x", "operator": ">", "value": 1}]}}},
         404, "rule_not_found"),
    ]
    for body, code, error in cases:
        r = await c.post("/api/admin/changes", headers=admin, json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (code, error), (body, r.text)
    r = await c.post("/api/admin/changes", headers=worker.headers, json={"setting": setting})
    assert r.status_code == 403
    for path in ("/api/admin/changes/no-such-change", "/api/admin/changes/x/confirm"):
        r = await (c.get(path, headers=admin) if "confirm" not in path
                   else c.post(path, headers=admin))
        assert r.status_code == 404 and r.json()["error"]["code"] == "change_not_found", r.text
    r = await c.get("/api/admin/changes", headers=admin, params={"state": "done"})
    assert r.status_code == 422


async def test_retry_after_a_lost_answer_and_an_owner_refusal(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    pool_id, _ = await admin_pool(stack, overlap=1)
    r = await c.post("/api/admin/changes", headers=admin, json={
        "setting": {"kind": "pool.overlap", "pool_id": pool_id, "value": 3}})
    change_id = r.json()["change_id"]
    # as if a first confirmation reached tasks but its answer (and the record) was lost
    r = await c.patch(f"/api/admin/pools/{pool_id}", headers=admin, json={"overlap": 3})
    assert r.status_code == 200, r.text
    r = await c.post(f"/api/admin/changes/{change_id}/confirm", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "applied", r.text

    # the rule went away between the proposal and the confirmation: failed, not applied
    r = await c.post("/api/admin/rules", headers=admin, json={
        "name": "skips", "scope": "pool", "pool_id": pool_id,
        "collector": {"kind": "skipped_in_row"},
        "conditions": [{"field": "skipped_in_row_count", "operator": ">=", "value": 5}],
        "action": {"type": "restriction", "scope": "pool", "duration_unit": "hours",
                   "duration": 1, "private_comment": "skips"}})
    rule_id = r.json()["rule_id"]
    r = await c.post("/api/admin/changes", headers=admin, json={"setting": {
        "kind": "rule.params", "rule_id": rule_id,
        "value": {"conditions": [{"field": "skipped_in_row_count", "operator": ">=",
                                  "value": 6}]}}})
    assert r.status_code == 201, r.text
    rule_change = r.json()["change_id"]
    r = await c.delete(f"/api/admin/rules/{rule_id}", headers=admin)
    assert r.status_code == 200, r.text
    r = await c.post(f"/api/admin/changes/{rule_change}/confirm", headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "change_failed", r.text
    r = await c.get(f"/api/admin/changes/{rule_change}", headers=admin)
    assert r.json()["state"] == "failed" and r.json()["error"]["code"] == "rule_not_found"
    assert "config_change.failed" in await audit_kinds(stack, rule_change)
