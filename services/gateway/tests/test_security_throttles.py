"""Throttles under concurrency and behind proxies: counted before the check, per account
and per client address, the address from a trusted proxy only."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyotp
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_security_mfa_emergency import T0, enrol, freeze
from test_security_support import Ctx, settings_for, start_gateway, stop_gateway

from gateway_service.security import mfa, passwords


@pytest.fixture
async def ctx(nats_server, database_url):
    c = await start_gateway(settings_for(nats_server.url, database_url))
    yield c
    await stop_gateway(c)


def client_at(ctx: Ctx, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=ctx.gw.app, client=(address, 4000)),
                             base_url="http://gateway.test", timeout=60)


async def login(client: httpx.AsyncClient, login: str, password: str,
                **headers: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"login": login, "password": password},
                             headers=headers)


async def test_concurrent_wrong_passwords_are_checked_at_most_the_limit(
        ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = await ctx.admin()
    _, info = await ctx.user(admin)
    verified: list[str] = []
    real = passwords.verify_password

    def counting(stored_hash: str, password: str, hasher=passwords._HASHER) -> tuple[bool, bool]:
        verified.append(password)
        return real(stored_hash, password, hasher)

    monkeypatch.setattr(passwords, "verify_password", counting)
    results = await asyncio.gather(*(ctx.login(info["login"], f"wrong-password-{i}")
                                     for i in range(200)))
    limit = ctx.gw.settings.login_account_max_failures
    codes = Counter(r.status_code for r in results)
    assert len(verified) == limit  # argon2 ran for exactly as many attempts as allowed
    assert codes == {401: limit, 429: 200 - limit}
    assert all(int(r.headers["Retry-After"]) > 0 for r in results if r.status_code == 429)
    assert (await ctx.login(info["login"], info["password"])).status_code == 429
    assert len(verified) == limit


async def test_concurrent_wrong_totp_codes_are_checked_at_most_the_limit(
        ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = await ctx.admin()
    freeze(ctx, T0)
    secret, _ = await enrol(ctx, admin)
    valid = {pyotp.TOTP(secret).at(T0 + timedelta(seconds=30 * k)) for k in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    checked: list[str] = []
    real = mfa.matching_step

    def counting(secret: str, code: str, now: datetime) -> int | None:
        checked.append(code)
        return real(secret, code, now)

    monkeypatch.setattr(mfa, "matching_step", counting)
    results = await asyncio.gather(*(ctx.client.post("/api/auth/mfa/step-up", headers=admin,
                                                     json={"code": wrong}) for _ in range(50)))
    limit = ctx.gw.settings.mfa_max_failures
    assert len(checked) == limit
    assert Counter(r.status_code for r in results) == {400: limit, 429: 50 - limit}


async def test_a_burst_from_one_address_does_not_lock_out_others(ctx: Ctx) -> None:
    admin = await ctx.admin()
    _, victim = await ctx.user(admin)
    _, bystander = await ctx.user(admin)
    attacker, elsewhere = client_at(ctx, "10.0.0.66"), client_at(ctx, "10.0.0.77")
    default_limit = ctx.gw.settings.login_address_max_failures
    ctx.gw.settings.login_address_max_failures = 20  # a small limit (default 100)
    try:
        for i in range(30):  # the victim's account, then many other logins, from one address
            target = victim["login"] if i < 10 else f"nobody-{i}"
            assert (await login(attacker, target, "guess-password")).status_code in (401, 429)
        assert (await login(attacker, bystander["login"],
                            bystander["password"])).status_code == 429  # that address waits
        # another account from another address logs in at once
        assert (await login(elsewhere, bystander["login"],
                            bystander["password"])).status_code == 200
        # the victim's account is locked wherever the attempt comes from
        r = await login(elsewhere, victim["login"], victim["password"])
        assert r.status_code == 429
        # the address is blocked for the base time only; the account backs off
        base = ctx.gw.settings.login_backoff_base_s
        later = datetime.now(UTC) + timedelta(seconds=base + 1)
        ctx.gw.security.clock = lambda: later
        assert (await login(attacker, "nobody-else", "guess-password")).status_code == 401
        r = await login(attacker, "nobody-at-all", "guess-password")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) <= base
        assert (await login(elsewhere, victim["login"], "guess-password")).status_code == 401
        r = await login(elsewhere, victim["login"], victim["password"])
        assert r.status_code == 429 and int(r.headers["Retry-After"]) == 2 * base
    finally:
        ctx.gw.settings.login_address_max_failures = default_limit
        ctx.gw.security.clock = lambda: datetime.now(UTC)
        await attacker.aclose()
        await elsewhere.aclose()


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(ctx: Ctx) -> None:
    await ctx.admin()
    spoofer = client_at(ctx, "10.0.0.88")
    try:
        limit = ctx.gw.settings.login_address_max_failures
        for i in range(limit):
            r = await login(spoofer, f"nobody-{i}", "guess-password",
                            **{"X-Forwarded-For": f"203.0.113.{i}"})
            assert r.status_code == 401
        r = await login(spoofer, "nobody-new", "guess-password",
                        **{"X-Forwarded-For": "203.0.113.200"})
        assert r.status_code == 429  # still the peer's address, whatever the header says
    finally:
        await spoofer.aclose()
    items, _ = await ctx.gw.security.audit.search(kind="login.failed", limit=100)
    assert {i["address"] for i in items} == {"10.0.0.88"}


async def test_behind_a_trusted_proxy_each_client_has_its_own_address(nats_server,
                                                                      database_url) -> None:
    ctx = await start_gateway(settings_for(nats_server.url, database_url,
                                           trusted_proxies=["10.0.0.0/24"]))
    proxy = client_at(ctx, "10.0.0.5")
    try:
        admin = await ctx.admin()
        _, info = await ctx.user(admin)
        limit = ctx.gw.settings.login_address_max_failures
        for i in range(limit):
            # a client's own claim (left of what the proxy saw) changes nothing
            r = await login(proxy, f"nobody-{i}", "guess-password",
                            **{"X-Forwarded-For": f"192.0.2.{i}, 198.51.100.1"})
            assert r.status_code == 401
        r = await login(proxy, info["login"], info["password"],
                        **{"X-Forwarded-For": "198.51.100.1"})
        assert r.status_code == 429
        r = await login(proxy, info["login"], info["password"],
                        **{"X-Forwarded-For": "198.51.100.2"})
        assert r.status_code == 200  # another client behind the same proxy
        items, _ = await ctx.gw.security.audit.search(kind="login.failed", limit=100)
        assert {i["address"] for i in items} == {"198.51.100.1"}
    finally:
        await proxy.aclose()
        await stop_gateway(ctx)


async def test_successful_logins_give_the_address_its_place_back(ctx: Ctx) -> None:
    """Behind one address (an office), correct logins never use up the address's limit,
    even right at it: the block a success set in advance goes with its refund."""
    admin = await ctx.admin()
    _, info = await ctx.user(admin)
    office = client_at(ctx, "10.0.0.99")
    try:
        for i in range(ctx.gw.settings.login_address_max_failures - 1):
            assert (await login(office, f"nobody-{i}", "guess-password")).status_code == 401
        for _ in range(3):
            assert (await login(office, info["login"], info["password"])).status_code == 200
    finally:
        await office.aclose()
