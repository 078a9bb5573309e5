"""TOTP MFA (windows, replay, races, recovery codes), emergency read-only mode, no secrets
in logs."""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_security_support import (
    STRONG,
    Ctx,
    bearer,
    settings_for,
    start_gateway,
    stop_gateway,
)

from gateway_service.security import mfa

T0 = datetime(2026, 6, 1, 12, 0, 15, tzinfo=UTC)  # mid-step: +-30 s stays one step away


@pytest.fixture
async def ctx(nats_server, database_url):
    c = await start_gateway(settings_for(nats_server.url, database_url))
    yield c
    await stop_gateway(c)


def freeze(ctx: Ctx, at: datetime) -> None:
    ctx.gw.security.clock = lambda: at


async def enrol(ctx: Ctx, headers: dict[str, str], at: datetime = T0) -> tuple[str, list[str]]:
    """Set up and confirm TOTP at ``at``; returns (secret, recovery codes)."""
    r = await ctx.client.post("/api/auth/mfa/setup", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    secret = body["secret"]
    assert body["otpauth_uri"].startswith("otpauth://totp/") and "secret=" in body["otpauth_uri"]
    assert base64.b64decode(body["qr_png_base64"])[:8] == b"\x89PNG\r\n\x1a\n"
    r = await ctx.client.post("/api/auth/mfa/confirm", headers=headers,
                              json={"code": pyotp.TOTP(secret).at(at)})
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    return secret, codes


def test_matching_step_window() -> None:
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    step = totp.timecode(T0)
    assert mfa.matching_step(secret, totp.at(T0), T0) == step
    assert mfa.matching_step(secret, totp.at(T0 - timedelta(seconds=30)), T0) == step - 1
    assert mfa.matching_step(secret, totp.at(T0 + timedelta(seconds=30)), T0) == step + 1
    assert mfa.matching_step(secret, totp.at(T0 - timedelta(seconds=60)), T0) is None
    assert mfa.matching_step(secret, "abcdef", T0) is None
    assert mfa.matching_step(secret, "", T0) is None


async def test_totp_secret_is_sealed_at_rest(ctx: Ctx) -> None:
    from sqlalchemy import select

    from gateway_service.db import mfa_credentials

    admin = await ctx.admin()
    freeze(ctx, T0)
    secret, _ = await enrol(ctx, admin)
    async with ctx.gw.svc.engine.connect() as conn:
        stored = (await conn.execute(select(mfa_credentials.c.secret))).scalar_one()
    assert secret not in stored and stored.startswith("v1:")
    assert ctx.gw.security.mfa.secret_box.open(stored) == secret
    from cryptography.fernet import InvalidToken

    other = mfa.SecretBox("another-key-" + "x" * 32)
    with pytest.raises(InvalidToken):  # a dump without the right key gives nothing
        other.open(stored)


async def test_totp_step_up_window_replay_and_race(ctx: Ctx) -> None:
    admin = await ctx.admin()
    freeze(ctx, T0)
    secret, _ = await enrol(ctx, admin)
    totp = pyotp.TOTP(secret)
    step_up = "/api/auth/mfa/step-up"
    # One step off passes, two steps off fails.
    later = T0 + timedelta(minutes=5)
    freeze(ctx, later)
    r = await ctx.client.post(step_up, headers=admin,
                              json={"code": totp.at(later - timedelta(seconds=30))})
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["mfa_elevated_until"]) == later + timedelta(
        seconds=ctx.gw.settings.mfa_elevation_s)
    r = await ctx.client.post(step_up, headers=admin,
                              json={"code": totp.at(later - timedelta(seconds=60))})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_code"
    # A code works once: the same code again fails.
    code = totp.at(later)
    assert (await ctx.client.post(step_up, headers=admin, json={"code": code})).status_code == 200
    r = await ctx.client.post(step_up, headers=admin, json={"code": code})
    assert r.status_code == 400
    # Two parallel requests with one fresh code: exactly one succeeds.
    race_at = T0 + timedelta(minutes=10)
    freeze(ctx, race_at)
    code = totp.at(race_at)
    other = bearer((await ctx.login("admin", "admin" + STRONG)).json()["token"])
    results = await asyncio.gather(*[
        ctx.client.post(step_up, headers=h, json={"code": code})
        for h in (admin, other, admin, other)])
    assert sorted(r.status_code for r in results) == [200, 400, 400, 400]
    audit = (await ctx.client.get("/api/admin/audit", headers=admin,
                                  params={"kind": "mfa", "limit": 100})).json()["items"]
    kinds = [i["kind"] for i in audit]
    assert "mfa.setup" in kinds and "mfa.confirmed" in kinds
    assert kinds.count("mfa.used") == 3 and kinds.count("mfa.failed") >= 5


async def test_recovery_codes_single_use_and_mfa_throttled(ctx: Ctx) -> None:
    admin = await ctx.admin()
    freeze(ctx, T0)
    _, codes = await enrol(ctx, admin)
    r = await ctx.client.post("/api/auth/mfa/setup", headers=admin)
    assert r.status_code == 409  # no silent replacement of a confirmed factor
    step_up = "/api/auth/mfa/step-up"
    r = await ctx.client.post(step_up, headers=admin, json={"recovery_code": codes[3].upper()})
    assert r.status_code == 200
    r = await ctx.client.post(step_up, headers=admin, json={"recovery_code": codes[3]})
    assert r.status_code == 400
    r = await ctx.client.post(step_up, headers=admin, json={})
    assert r.status_code == 422
    for _ in range(5):
        await ctx.client.post(step_up, headers=admin, json={"code": "000000"})
    r = await ctx.client.post(step_up, headers=admin, json={"recovery_code": codes[4]})
    assert r.status_code == 429 and "Retry-After" in r.headers


async def test_emergency_read_only_matrix(ctx: Ctx, nats_server, databases) -> None:
    admin = await ctx.admin()
    worker, winfo = await ctx.user(admin)
    other, oinfo = await ctx.user(admin)
    # The switch needs an MFA-elevated admin.
    body = {"enabled": True, "reason": "incident #42"}
    r = await ctx.client.post("/api/admin/emergency", headers=admin, json=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "mfa_required"
    r = await ctx.client.post("/api/admin/emergency", headers=worker, json=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    secret, _ = await enrol(ctx, admin, at=datetime.now(UTC))  # confirming also elevates
    r = await ctx.client.post("/api/admin/emergency", headers=admin, json=body)
    assert r.status_code == 200 and r.json()["enabled"] is True
    # A second replica (own database, same bus) sees the same state.
    replica = await start_gateway(settings_for(nats_server.url, await databases.new(),
                                               emergency_bucket=ctx.gw.settings.emergency_bucket))
    try:
        assert replica.gw.emergency.enabled
        assert (await replica.client.get("/api/status")).json()["read_only"] is True
        # Reads keep working and are marked.
        r = await ctx.client.get("/api/admin/users", headers=admin)
        assert r.status_code == 200 and r.headers["x-read-only"] == "on"
        st = (await ctx.client.get("/api/status")).json()
        assert st["read_only"] is True
        # Writes are refused with 503 read_only and a Retry-After.
        for method, path, payload in (
                ("POST", "/api/admin/users", {"login": "newbie", "role": "worker"}),
                ("POST", f"/api/admin/users/{oinfo['user_id']}/enable", None),
                ("PUT", "/api/admin/trust-limits", {}),
                ("DELETE", "/api/admin/users/x", None),
                ("PATCH", "/api/anything", {})):
            r = await ctx.client.request(method, path, headers=admin, json=payload)
            assert r.status_code == 503, (method, path)
            assert r.json()["error"]["code"] == "read_only"
            assert int(r.headers["retry-after"]) > 0
            assert r.headers["x-frame-options"] == "DENY"
        # Logging in and out and the MFA step-up still work.
        r = await ctx.login(winfo["login"], winfo["password"])
        assert r.status_code == 200
        assert (await ctx.client.post("/api/auth/logout",
                                      headers=bearer(r.json()["token"]))).status_code == 200
        r = await ctx.client.post("/api/auth/mfa/step-up", headers=admin,
                                  json={"code": pyotp.TOTP(secret).at(
                                      datetime.now(UTC) + timedelta(seconds=30))})
        assert r.status_code == 200
        # What an incident needs still works, audited: changing one's password, disabling
        # an account (which ends its sessions at once).
        r = await ctx.client.post("/api/auth/password", headers=worker, json={
            "old_password": winfo["password"], "new_password": "x" + winfo["password"]})
        assert r.status_code == 200, r.text
        r = await ctx.client.post(f"/api/admin/users/{oinfo['user_id']}/disable", headers=admin)
        assert r.status_code == 200 and r.json()["sessions_revoked"] == 1, r.text
        assert (await ctx.client.get("/api/auth/me", headers=other)).status_code == 401
        # Switching off (the switch itself is exempt) restores writes everywhere.
        r = await ctx.client.post("/api/admin/emergency", headers=admin,
                                  json={"enabled": False, "reason": "resolved"})
        assert r.status_code == 200 and r.json()["enabled"] is False
        for _ in range(100):
            if not replica.gw.emergency.enabled:
                break
            await asyncio.sleep(0.02)
        assert not replica.gw.emergency.enabled
        r = await ctx.client.post("/api/admin/users", headers=admin,
                                  json={"login": "newbie", "role": "worker"})
        assert r.status_code == 201 and "x-read-only" not in r.headers
    finally:
        await stop_gateway(replica, drop_bucket=False)
    em = (await ctx.client.get("/api/admin/emergency", headers=admin)).json()
    assert em["enabled"] is False and em["reason"] == "resolved"
    audit = (await ctx.client.get("/api/admin/audit", headers=admin,
                                  params={"kind": "emergency.changed"})).json()
    assert [i["details"]["enabled"] for i in audit["items"]] == [False, True]
    # the worker's password: replaced once at creation, once during the incident
    for kind, target, times in (("password.changed", winfo["user_id"], 2),
                                ("user.disabled", oinfo["user_id"], 1)):
        found = (await ctx.client.get("/api/admin/audit", headers=admin, params={
            "kind": kind, "user_id": target})).json()
        assert found["total"] == times, kind


async def test_emergency_state_survives_restart(nats_server, databases) -> None:
    bucket = f"gwtest_restart_{datetime.now(UTC).strftime('%H%M%S%f')}"
    first = await start_gateway(settings_for(nats_server.url, await databases.new(),
                                             emergency_bucket=bucket))
    await first.gw.emergency.set(enabled=True, reason="drill", by_user_id="u1")
    await stop_gateway(first, drop_bucket=False)
    second = await start_gateway(settings_for(nats_server.url, await databases.new(),
                                              emergency_bucket=bucket))
    try:
        assert second.gw.emergency.enabled and second.gw.emergency.state["reason"] == "drill"
    finally:
        await stop_gateway(second)


async def test_no_secret_in_logs(ctx: Ctx, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = [ctx.bootstrap_password or ""]
    r = await ctx.login("admin", ctx.bootstrap_password or "")
    secrets.append(r.json()["token"])
    r = await ctx.client.post("/api/auth/password", headers=bearer(r.json()["token"]),
                              json={"old_password": ctx.bootstrap_password,
                                    "new_password": "admin" + STRONG})
    admin = bearer(r.json()["token"])
    secrets += [r.json()["token"], "admin" + STRONG]
    await ctx.login("admin", "wrong-but-secret-guess")
    secrets.append("wrong-but-secret-guess")
    r = await ctx.client.post("/api/admin/users", headers=admin,
                              json={"login": "linked", "role": "worker"})
    secrets.append(r.json()["temporary_password"])
    r = await ctx.client.post(f"/api/admin/users/{r.json()['user_id']}/login-link", headers=admin)
    link_token = r.json()["url"].split("#token=")[1]
    secrets.append(link_token)
    r = await ctx.client.post("/api/auth/login-link", json={"token": link_token})
    secrets.append(r.json()["token"])
    freeze(ctx, T0)
    secret, codes = await enrol(ctx, admin)
    secrets += [secret, codes[0], pyotp.TOTP(secret).at(T0)]
    await ctx.client.post("/api/auth/mfa/step-up", headers=admin,
                          json={"recovery_code": codes[0]})
    captured = capsys.readouterr()
    text = "\n".join([caplog.text, captured.out, captured.err])
    assert "HTTP Request" in caplog.text or caplog.records  # the log was really captured
    for s in secrets:
        assert s and s not in text, "a secret reached the logs"
