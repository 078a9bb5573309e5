"""Passwords, bootstrap, sessions, throttling, accounts, login links, quick-login, audit."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).parent))

from test_security_support import (
    STRONG,
    Ctx,
    bearer,
    settings_for,
    start_gateway,
    stop_gateway,
)

from gateway_service.db import outbox, sessions, users
from gateway_service.security import passwords
from gateway_service.security.throttle import after_failure, retry_after
from servicekit.testing import eventually


@pytest.fixture
async def ctx(nats_server, database_url):
    c = await start_gateway(settings_for(nats_server.url, database_url))
    yield c
    await stop_gateway(c)


# ---------------------------------------------------------------- pure rules


def test_password_policy() -> None:
    with pytest.raises(passwords.WeakPassword):
        passwords.check_policy("short7!")
    with pytest.raises(passwords.WeakPassword):
        passwords.check_policy("x" * 129)
    with pytest.raises(passwords.WeakPassword, match="common"):
        passwords.check_policy("PassWord1")
    with pytest.raises(passwords.WeakPassword, match="common"):
        passwords.check_policy("QWERTY123")
    with pytest.raises(passwords.WeakPassword, match="login"):
        passwords.check_policy("someone-long", login="Someone-Long")
    passwords.check_policy("a quiet river at dawn")
    for repeated in ("y" * 64, "z" * 128):  # long, but guessed at once (zxcvbn)
        with pytest.raises(passwords.WeakPassword, match="easy to guess"):
            passwords.check_policy(repeated)
    passwords.check_policy("seven brisk ravens over the quiet harbour " * 3)  # 126 chars
    assert len(passwords.common_passwords()) >= 1000


def test_password_hash_roundtrip_and_rehash() -> None:
    from argon2 import PasswordHasher, Type

    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID)
    h = passwords.hash_password("a quiet river at dawn", weak)
    assert h.startswith("$argon2id$")
    assert passwords.verify_password(h, "a quiet river at dawn") == (True, True)
    assert passwords.verify_password(h, "wrong") == (False, False)
    assert passwords.verify_password("not a hash", "x") == (False, False)


def test_throttle_grows_exponentially_caps_and_decays() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    kw = {"max_failures": 5, "window_s": 900, "base_s": 30, "cap_s": 900}
    s = None
    for i in range(4):
        s = after_failure(s, t0 + timedelta(seconds=i), **kw)
        assert retry_after(s, t0 + timedelta(seconds=i)) is None
    s = after_failure(s, t0 + timedelta(seconds=4), **kw)
    assert retry_after(s, t0 + timedelta(seconds=4)) == 30
    t = t0 + timedelta(seconds=40)
    s = after_failure(s, t, **kw)
    assert retry_after(s, t) == 60
    for _ in range(10):
        s = after_failure(s, t, **kw)
    assert retry_after(s, t) == 900  # capped at 15 min
    later = t + timedelta(seconds=901)
    assert retry_after(s, later) is None
    s = after_failure(s, later + timedelta(seconds=900), **kw)  # a quiet window forgets
    assert s.failures == 1 and s.strikes == 0


# ------------------------------------------------------------------ bootstrap


async def test_bootstrap_password_forces_change_and_then_is_dead(ctx: Ctx, nats_server,
                                                                 database_url) -> None:
    pw = ctx.bootstrap_password
    assert pw and len(pw) >= 16
    r = await ctx.login("admin", pw)
    assert r.status_code == 200 and r.json()["user"]["must_change_password"] is True
    first = bearer(r.json()["token"])
    for method, path in (("GET", "/api/admin/users"), ("POST", "/api/auth/mfa/setup"),
                         ("GET", "/api/admin/audit")):
        r = await ctx.client.request(method, path, headers=first)
        assert r.status_code == 403 and r.json()["error"]["code"] == "password_change_required"
    assert (await ctx.client.get("/api/auth/me", headers=first)).status_code == 200
    # Changing needs the old password; weak new passwords are refused.
    r = await ctx.client.post("/api/auth/password", headers=first,
                              json={"old_password": "wrong-password", "new_password": "x" + STRONG})
    assert r.status_code == 403
    r = await ctx.client.post("/api/auth/password", headers=first,
                              json={"old_password": pw, "new_password": "password123"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "weak_password"
    r = await ctx.client.post("/api/auth/password", headers=first,
                              json={"old_password": pw, "new_password": "admin" + STRONG})
    assert r.status_code == 200
    fresh = bearer(r.json()["token"])
    assert (await ctx.client.get("/api/admin/users", headers=fresh)).status_code == 200
    assert (await ctx.client.get("/api/auth/me", headers=first)).status_code == 401
    assert (await ctx.login("admin", pw)).status_code == 401
    # A second start on the same database never bootstraps again.
    again = await start_gateway(settings_for(nats_server.url, database_url), migrate=False)
    try:
        assert again.bootstrap_password is None
        assert (await again.login("admin", "admin" + STRONG)).status_code == 200
    finally:
        await stop_gateway(again)


async def test_login_rehashes_when_parameters_change(ctx: Ctx) -> None:
    await ctx.admin()
    old = passwords.hash_password("admin" + STRONG, passwords.make_hasher(
        time_cost=1, memory_kib=4096, parallelism=2))
    async with ctx.gw.svc.engine.begin() as conn:
        await conn.execute(users.update().where(users.c.login == "admin")
                           .values(password_hash=old))
    assert (await ctx.login("admin", "admin" + STRONG)).status_code == 200
    async with ctx.gw.svc.engine.connect() as conn:
        new = (await conn.execute(select(users.c.password_hash)
                                  .where(users.c.login == "admin"))).scalar()
    assert new != old and not ctx.gw.security.accounts.hasher.check_needs_rehash(new)
    assert (await ctx.login("admin", "admin" + STRONG)).status_code == 200


# ------------------------------------------------------------------- sessions


async def test_sessions_hashed_expiring_revocable(ctx: Ctx) -> None:
    admin = await ctx.admin()
    token = admin["Authorization"].split()[1]
    async with ctx.gw.svc.engine.connect() as conn:
        hashes = [r.token_hash for r in (await conn.execute(select(sessions))).all()]
    assert token not in hashes and all(len(h) == 64 for h in hashes)
    assert len(token) >= 43  # 256 random bits, url-safe base64
    second = bearer((await ctx.login("admin", "admin" + STRONG)).json()["token"])
    third = bearer((await ctx.login("admin", "admin" + STRONG)).json()["token"])
    r = await ctx.client.post("/api/auth/logout", headers=third)
    assert r.status_code == 200
    assert (await ctx.client.get("/api/auth/me", headers=third)).status_code == 401
    assert (await ctx.client.get("/api/auth/me", headers=second)).status_code == 200
    r = await ctx.client.post("/api/auth/logout-all", headers=second)
    assert r.status_code == 200 and r.json()["sessions_revoked"] == 2
    assert (await ctx.client.get("/api/auth/me", headers=admin)).status_code == 401
    # Expiry: move the clock past the TTL.
    h = bearer((await ctx.login("admin", "admin" + STRONG)).json()["token"])
    ctx.gw.security.clock = lambda: datetime.now(UTC) + timedelta(
        seconds=ctx.gw.settings.session_ttl_s + 1)
    assert (await ctx.client.get("/api/auth/me", headers=h)).status_code == 401
    ctx.gw.security.clock = lambda: datetime.now(UTC)
    assert (await ctx.client.get("/api/auth/me")).status_code == 401
    assert (await ctx.client.get("/api/auth/me",
                                 headers=bearer("forged-token"))).status_code == 401


async def test_session_cache_is_invalidated_on_every_replica(nats_server, database_url) -> None:
    # A TTL far longer than the test: only the change notice can end the cached sessions.
    a = await start_gateway(settings_for(nats_server.url, database_url,
                                         session_cache_ttl_s=600))
    b = await start_gateway(settings_for(nats_server.url, database_url,
                                         session_cache_ttl_s=600,
                                         emergency_bucket=a.gw.settings.emergency_bucket),
                            migrate=False)
    try:
        admin = await a.admin()
        other = bearer((await a.login("admin", "admin" + STRONG)).json()["token"])
        for h in (admin, other):
            assert (await b.client.get("/api/auth/me", headers=h)).status_code == 200
        hits = b.gw.security.sessions.cache.hits
        assert (await b.client.get("/api/auth/me", headers=admin)).status_code == 200
        assert b.gw.security.sessions.cache.hits == hits + 1  # served without the database
        # logout on replica A ends the session on replica B too, long before the TTL
        assert (await a.client.post("/api/auth/logout", headers=admin)).status_code == 200

        async def refused_on_b() -> bool:
            r = await b.client.get("/api/auth/me", headers=admin)
            return r.status_code == 401

        await eventually(refused_on_b, timeout_s=5)
        assert (await b.client.get("/api/auth/me", headers=other)).status_code == 200
        # a password change on A revokes every other session, on B as well
        r = await a.client.post("/api/auth/password", headers=other, json={
            "old_password": "admin" + STRONG, "new_password": "admin2" + STRONG})
        assert r.status_code == 200
        fresh = bearer(r.json()["token"])

        async def other_refused_on_b() -> bool:
            return (await b.client.get("/api/auth/me", headers=other)).status_code == 401

        await eventually(other_refused_on_b, timeout_s=5)
        assert (await b.client.get("/api/auth/me", headers=fresh)).status_code == 200
    finally:
        await stop_gateway(b, drop_bucket=False)
        await stop_gateway(a)


async def test_idle_session_needs_a_new_login_and_activity_keeps_it(ctx: Ctx) -> None:
    admin = await ctx.admin()
    idle = ctx.gw.settings.session_idle_timeout_s
    start = datetime.now(UTC)
    busy = bearer((await ctx.login("admin", "admin" + STRONG)).json()["token"])
    quiet = bearer((await ctx.login("admin", "admin" + STRONG)).json()["token"])
    # the busy session makes a request every (idle - 2 minutes); the quiet one does nothing
    for step in (1, 2, 3):
        ctx.gw.security.clock = lambda step=step: start + timedelta(seconds=step * (idle - 120))
        assert (await ctx.client.get("/api/auth/me", headers=busy)).status_code == 200
    r = await ctx.client.get("/api/auth/me", headers=quiet)
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_idle"
    ctx.gw.security.clock = lambda: datetime.now(UTC)
    assert (await ctx.client.get("/api/auth/me", headers=admin)).status_code == 200


async def test_login_throttling_per_account_and_address(ctx: Ctx) -> None:
    admin = await ctx.admin()
    _, info = await ctx.user(admin)
    for _ in range(5):
        r = await ctx.login(info["login"], "wrong-password")
        assert r.status_code == 401
    r = await ctx.login(info["login"], info["password"])  # even the right one waits
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"
    assert int(r.headers["Retry-After"]) == 30
    # Time heals: after the Retry-After the right password works and resets the counter.
    ctx.gw.security.clock = lambda: datetime.now(UTC) + timedelta(seconds=31)
    assert (await ctx.login(info["login"], info["password"])).status_code == 200
    assert (await ctx.login(info["login"], "wrong-password")).status_code == 401
    ctx.gw.security.clock = lambda: datetime.now(UTC)
    # Per client address: its limit of failures over many logins blocks the address (a
    # small limit here; the default is 100).
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=ctx.gw.app,
                                                            client=("10.9.8.7", 4000)),
                              base_url="http://gateway.test")
    default_limit = ctx.gw.settings.login_address_max_failures
    ctx.gw.settings.login_address_max_failures = 20
    try:
        for i in range(20):
            r = await other.post("/api/auth/login",
                                 json={"login": f"nobody-{i}", "password": "whatever-pass"})
            assert r.status_code == 401
        r = await other.post("/api/auth/login", json={"login": "admin",
                                                      "password": "admin" + STRONG})
        assert r.status_code == 429
    finally:
        ctx.gw.settings.login_address_max_failures = default_limit
        await other.aclose()
    assert (await ctx.login("admin", "admin" + STRONG)).status_code == 200


# ------------------------------------------------------------------- accounts


async def test_admin_creates_users_with_temporary_passwords(ctx: Ctx) -> None:
    admin = await ctx.admin()
    r = await ctx.client.post("/api/admin/users", headers=admin,
                              json={"login": "Ann.Worker", "role": "worker"})
    assert r.status_code == 201
    body = r.json()
    assert body["login"] == "ann.worker" and len(body["temporary_password"]) >= 16
    r = await ctx.client.post("/api/admin/users", headers=admin,
                              json={"login": "ann.worker", "role": "manager"})
    assert r.status_code == 409
    r = await ctx.client.post("/api/admin/users", headers=admin,
                              json={"login": "bob", "role": "worker", "password": "12345678"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "weak_password"
    r = await ctx.client.post("/api/admin/users", headers=admin,
                              json={"login": "bad login!", "role": "worker"})
    assert r.status_code == 422
    r = await ctx.client.post("/api/admin/users", headers=admin,
                              json={"login": "carol", "role": "owner"})
    assert r.status_code == 422
    logged = (await ctx.login("ann.worker", body["temporary_password"])).json()
    assert logged["user"]["must_change_password"] is True
    r = await ctx.client.get("/api/admin/users", headers=bearer(logged["token"]))
    assert r.json()["error"]["code"] == "password_change_required"
    worker, _ = await ctx.user(admin)
    r = await ctx.client.get("/api/admin/users", headers=worker)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    listed = (await ctx.client.get("/api/admin/users", headers=admin)).json()
    assert listed["total"] == 3 and {u["role"] for u in listed["items"]} == {"admin", "worker"}
    async with ctx.gw.svc.engine.connect() as conn:
        subjects = [r.subject for r in (await conn.execute(select(outbox))).all()]
        stored = [r.password_hash for r in (await conn.execute(select(users))).all()]
    assert subjects.count("gateway.user.created") == 3
    assert all(h.startswith("$argon2id$") for h in stored)


async def test_trust_level_calls_tasks_and_audits(own_nats, database_url) -> None:
    # a bus of its own: no tasks service another suite left running may answer here
    nats_server = own_nats
    ctx = await start_gateway(settings_for(nats_server.url, database_url))
    try:
        await _trust_level_flow(ctx, nats_server)
    finally:
        await stop_gateway(ctx)


async def _trust_level_flow(ctx: Ctx, nats_server) -> None:
    import json

    import nats

    from contracts.rpc import RpcReply
    from contracts.rpc import tasks as tasks_rpc

    admin = await ctx.admin()
    _, info = await ctx.user(admin)
    url = f"/api/admin/users/{info['user_id']}/trust-level"
    r = await ctx.client.post(url, headers=admin, json={"level": "trusted"})
    assert r.status_code == 503  # no tasks service runs in this test
    nc = await nats.connect(nats_server.url)
    seen = []

    async def answer(msg) -> None:
        req = json.loads(msg.data)
        seen.append(req)
        profile = {"worker_id": req["worker_id"], "trust_level": req["trust_level"],
                   "skills": {}, "restrictions": [], "active_assignments": 0,
                   "last_take_at": None, "created_at": "2026-11-22T12:00:00+00:00"}
        await msg.respond(RpcReply(ok=True, data=profile).model_dump_json().encode())

    sub = await nc.subscribe(tasks_rpc.SET_TRUST_LEVEL.subject, cb=answer)
    try:
        r = await ctx.client.post(url, headers=admin, json={"level": "trusted"})
        assert r.status_code == 200 and r.json()["trust_level"] == "trusted"
        assert seen[0]["actor"]["role"] == "admin" and seen[0]["worker_id"] == info["user_id"]
        r = await ctx.client.post(url, headers=admin, json={"level": "godlike"})
        assert r.status_code == 422
        audit = (await ctx.client.get("/api/admin/audit?kind=trust_level",
                                      headers=admin)).json()
        assert audit["total"] == 1 and audit["items"][0]["details"] == {"level": "trusted"}
    finally:
        await sub.unsubscribe()
        await nc.close()


async def test_admin_disables_and_enables_an_account(ctx: Ctx) -> None:
    admin = await ctx.admin()
    manager, info = await ctx.user(admin, role="manager")
    second = bearer((await ctx.login(info["login"], info["password"])).json()["token"])
    assert (await ctx.client.get("/api/auth/me", headers=manager)).status_code == 200
    uid = info["user_id"]
    r = await ctx.client.post(f"/api/admin/users/{uid}/disable", headers=admin)
    assert r.status_code == 200 and r.json()["disabled"] is True, r.text
    assert r.json()["sessions_revoked"] == 2
    for h in (manager, second):  # every session ends at once
        assert (await ctx.client.get("/api/auth/me", headers=h)).status_code == 401
    r = await ctx.login(info["login"], info["password"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_disabled"
    r = await ctx.login(info["login"], "a wrong password")  # says nothing more without it
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    link = await ctx.client.post(f"/api/admin/users/{uid}/login-link", headers=admin)
    token = link.json()["url"].split("#token=", 1)[1]
    r = await ctx.client.post("/api/auth/login-link", json={"token": token})
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_disabled"
    users = (await ctx.client.get("/api/admin/users?limit=500", headers=admin)).json()
    assert next(u for u in users["items"] if u["user_id"] == uid)["disabled"] is True
    # refused: disabling oneself, an unknown account, a non-admin asking
    me = (await ctx.client.get("/api/auth/me", headers=admin)).json()["user_id"]
    r = await ctx.client.post(f"/api/admin/users/{me}/disable", headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "cannot_disable_self"
    r = await ctx.client.post("/api/admin/users/nobody/disable", headers=admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "user_not_found"
    worker, _ = await ctx.user(admin)
    assert (await ctx.client.post(f"/api/admin/users/{uid}/enable",
                                  headers=worker)).status_code == 403
    r = await ctx.client.post(f"/api/admin/users/{uid}/enable", headers=admin)
    assert r.status_code == 200 and r.json()["disabled"] is False
    assert (await ctx.login(info["login"], info["password"])).status_code == 200
    audit = (await ctx.client.get(f"/api/admin/audit?user_id={uid}&limit=100",
                                  headers=admin)).json()
    kinds = [a["kind"] for a in audit["items"]]
    assert {"user.disabled", "user.enabled", "login.refused"} <= set(kinds), kinds


# ----------------------------------------------------------------- login links


async def test_login_link_single_use_and_expiring(ctx: Ctx) -> None:
    admin = await ctx.admin()
    _, info = await ctx.user(admin)
    r = await ctx.client.post(f"/api/admin/users/{info['user_id']}/login-link", headers=admin)
    assert r.status_code == 200
    url = r.json()["url"]
    assert "/#token=" in url and "?" not in url
    token = url.split("#token=", 1)[1]
    r = await ctx.client.post("/api/auth/login-link", json={"token": token})
    assert r.status_code == 200 and r.json()["user"]["user_id"] == info["user_id"]
    assert (await ctx.client.get("/api/auth/me",
                                 headers=bearer(r.json()["token"]))).status_code == 200
    r = await ctx.client.post("/api/auth/login-link", json={"token": token})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_link"
    r = await ctx.client.post(f"/api/admin/users/{info['user_id']}/login-link", headers=admin)
    late = r.json()["url"].split("#token=", 1)[1]
    ctx.gw.security.clock = lambda: datetime.now(UTC) + timedelta(hours=24, seconds=1)
    assert (await ctx.client.post("/api/auth/login-link", json={"token": late})).status_code == 401
    ctx.gw.security.clock = lambda: datetime.now(UTC)
    r = await ctx.client.post("/api/admin/users/no-such-user/login-link", headers=admin)
    assert r.status_code == 404
    kinds = [i["kind"] for i in (await ctx.client.get("/api/admin/audit?kind=login_link",
                                                      headers=admin)).json()["items"]]
    assert kinds.count("login_link.created") == 2 and "login_link.used" in kinds


# ---------------------------------------------------------------- quick-login


async def test_dev_quick_login_only_dev_loopback(nats_server, databases) -> None:
    dev = await start_gateway(settings_for(nats_server.url, await databases.new(),
                                           environment="development", dev_quick_login=True))
    local = httpx.AsyncClient(transport=httpx.ASGITransport(app=dev.gw.app,
                                                            client=("127.0.0.1", 50000)),
                              base_url="http://localhost:8000")
    try:
        r = await local.post("/api/dev/quick-login", json={"role": "manager"})
        assert r.status_code == 200 and r.json()["user"]["role"] == "manager"
        assert (await local.post("/api/dev/quick-login",
                                 json={"role": "manager"})).status_code == 200
        r = await local.post("/api/dev/quick-login", json={"role": "root"})
        assert r.status_code == 422
        remote = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=dev.gw.app, client=("10.1.2.3", 1234)),
            base_url="http://localhost:8000")
        try:
            r = await remote.post("/api/dev/quick-login", json={"role": "admin"},
                                  headers={"X-Forwarded-For": "127.0.0.1",
                                           "X-Real-IP": "127.0.0.1"})
            assert r.status_code == 404
        finally:
            await remote.aclose()
        # DNS rebinding: a page on another name that resolves to this machine
        r = await local.post("/api/dev/quick-login", json={"role": "admin"},
                             headers={"Host": "evil.example"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_host"
        # a cross-site form can post text/plain, never JSON without a preflight
        r = await local.post("/api/dev/quick-login", content=b'{"role": "admin"}',
                             headers={"Content-Type": "text/plain"})
        assert r.status_code == 415 and "token" not in r.text
    finally:
        await local.aclose()
        await stop_gateway(dev)
    # Any Host allowed by the settings still does not reach the quick-login from elsewhere.
    open_dev = await start_gateway(settings_for(
        nats_server.url, await databases.new(), environment="development", dev_quick_login=True,
        allowed_hosts=["*"]))
    try:
        r = await open_dev.client.post("/api/dev/quick-login", json={"role": "admin"},
                                       headers={"Host": "evil.example"})
        assert r.status_code == 404 and "token" not in r.text
    finally:
        await stop_gateway(open_dev)
    prod = await start_gateway(settings_for(
        nats_server.url, await databases.new(), environment="production", dev_quick_login=True,
        token_pepper="p" * 40, mfa_encryption_key="k" * 40))
    try:
        r = await prod.client.post("/api/dev/quick-login", json={"role": "admin"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    finally:
        await stop_gateway(prod)
    with pytest.raises(ValueError):
        settings_for(nats_server.url, "postgresql://unused/x", environment="production")
    with pytest.raises(ValueError, match="MFA_ENCRYPTION_KEY"):  # the dev key is refused too
        settings_for(nats_server.url, "postgresql://unused/x", environment="production",
                     token_pepper="p" * 40)


# ---------------------------------------------------------------------- audit


async def test_audit_log_filters_and_is_append_only(ctx: Ctx) -> None:
    admin = await ctx.admin()
    await ctx.login("admin", "not-the-password")
    await ctx.gw.security.audit.record("payout.approved", "someone", "payout-1",
                                       {"amount_minor": 500})
    await ctx.gw.security.audit.record("worker_share.changed", "someone", "pool-1", {"bps": 7000})
    r = await ctx.client.get("/api/admin/audit", headers=admin)
    kinds = [i["kind"] for i in r.json()["items"]]
    for k in ("bootstrap.admin_created", "login.succeeded", "login.failed",
              "password.changed", "payout.approved", "worker_share.changed"):
        assert k in kinds
    r = await ctx.client.get("/api/admin/audit", headers=admin,
                             params={"kind": "login", "limit": 1})
    assert r.json()["total"] >= 2 and len(r.json()["items"]) == 1
    r = await ctx.client.get("/api/admin/audit", headers=admin, params={"user_id": "someone"})
    assert r.json()["total"] == 2
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await ctx.client.get("/api/admin/audit", headers=admin, params={"since": future})
    assert r.json()["total"] == 0
    from sqlalchemy.exc import DBAPIError

    for stmt in ("UPDATE audit_log SET kind = 'x'", "DELETE FROM audit_log",
                 "TRUNCATE audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with ctx.gw.svc.engine.begin() as conn:
                await conn.execute(text(stmt))


async def test_security_headers_status_and_web_ui(nats_server, database_url) -> None:
    c = await start_gateway(settings_for(nats_server.url, database_url, behind_tls=True))
    try:
        r = await c.client.get("/")
        assert r.status_code == 200 and "<html" in r.text.lower()
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "max-age" in r.headers["strict-transport-security"]
        asset = re.search(r'src="(/assets/[^"]+\.js)"', r.text).group(1)
        js = await c.client.get(asset)
        assert js.status_code == 200 and "immutable" in js.headers["cache-control"]
        docs = await c.client.get("/api/docs")       # Swagger UI from vendored files, no CDN
        assert docs.status_code == 200 and "/swagger/swagger-ui-bundle.js" in docs.text
        assert "http" not in docs.text.split("<body>")[1]
        assert (await c.client.get("/swagger/swagger-ui-bundle.js")).status_code == 200
        r = await c.client.get("/api/status")
        assert r.json() == {"status": "ok", "read_only": False, "read_only_reason": "",
                            "version": c.gw.settings.version, "quick_login": False}
        assert r.headers["cache-control"] == "no-store"
        assert (await c.client.get("/readyz")).json()["status"] == "ready"
        assert (await c.client.get("/healthz")).status_code == 200
        ops = httpx.AsyncClient(transport=httpx.ASGITransport(app=c.gw.ops_app),
                                base_url="http://gateway-ops.test")
        async with ops:  # /metrics is on the ops port only
            assert b"gateway_logins_total" in (await ops.get("/metrics")).content
        assert (await c.client.get("/metrics")).status_code == 404
    finally:
        await stop_gateway(c)
