"""Input that used to reach a 500 or slip through: NUL characters, whitespace and common
passwords, unknown Hosts, MFA keys that changed."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))

from test_security_mfa_emergency import T0, enrol, freeze
from test_security_support import STRONG, Ctx, settings_for, start_gateway, stop_gateway

from gateway_service.db import mfa_credentials
from gateway_service.http import holds_nul
from gateway_service.security import mfa, passwords


@pytest.fixture
async def ctx(nats_server, database_url):
    c = await start_gateway(settings_for(nats_server.url, database_url))
    yield c
    await stop_gateway(c)


def test_json_nul_detection_tells_an_escape_from_an_escaped_backslash() -> None:
    assert holds_nul(b'{"login": "ad\\u0000min"}')
    assert holds_nul(b'{"a": ["x", {"b": "\\\\\\u0000"}]}')  # \\ then \u0000
    assert holds_nul(b"INPUT:q\nbad\x00row\n")
    assert not holds_nul(b'{"text": "a literal \\\\u0000 in the text"}')
    assert not holds_nul(b'{"login": "admin"}')


async def test_a_nul_character_anywhere_is_a_422(ctx: Ctx) -> None:
    admin = await ctx.admin()
    r = await ctx.client.post("/api/auth/login", content=b'{"login": "ad\\u0000min", '
                              b'"password": "whatever-pass"}',
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    for method, url, body in (
            ("POST", "/api/admin/users", {"login": "bob", "role": "worker",
                                          "password": "x\x00" + STRONG}),
            ("GET", "/api/admin/audit?kind=log%00in", None),
            ("POST", "/api/admin/users/a%00b/disable", None),
            ("POST", "/api/support/tickets", {"subject": "s", "text": "t\x00"})):
        r = await ctx.client.request(method, url, headers=admin, json=body)
        assert r.status_code == 422, (url, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    # the text "\u0000" (an escaped backslash, then u0000) is an ordinary string
    r = await ctx.client.post("/api/auth/login", content=b'{"login": "ad\\\\u0000min", '
                              b'"password": "whatever-pass"}',
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 401


def test_password_policy_refuses_whitespace_and_decorated_common_passwords() -> None:
    for weak in (" " * 8, "\t \n  \t  ", "Password2024!", "  password  ", "!!qwerty123!!",
                 "pass word 1"):
        with pytest.raises(passwords.WeakPassword):
            passwords.check_policy(weak)
    for fine in ("a quiet river at dawn", "dragon-fly-42-ocean", "admin" + STRONG):
        passwords.check_policy(fine)


def test_password_policy_refuses_what_zxcvbn_finds_easy_to_guess() -> None:
    # not in the bundled list, each guessed in under a million tries
    for weak, login in (("zaq12wsxcde", None), ("aaaaaaaaaaaa", None),
                        ("bobsmith1", "bobsmith"), ("abcdefgh123", None)):
        with pytest.raises(passwords.WeakPassword, match="easy to guess"):
            passwords.check_policy(weak, login=login)
    passwords.check_policy("bobsmith1-river-lamp", login="bobsmith")
    passwords.check_policy("river lamp " * 11)  # 121 characters: zxcvbn reads the first 72
    with pytest.raises(passwords.WeakPassword):
        passwords.check_policy("a" * 128)


async def test_whitespace_password_is_refused_over_http(ctx: Ctx) -> None:
    admin = await ctx.admin()
    r = await ctx.client.post("/api/admin/users", headers=admin,
                              json={"login": "spacey", "role": "worker", "password": " " * 8})
    assert r.status_code == 422 and r.json()["error"]["code"] == "weak_password"


async def test_unknown_hosts_are_refused_in_development(nats_server, database_url) -> None:
    dev = await start_gateway(settings_for(nats_server.url, database_url,
                                           environment="development"))
    try:
        r = await dev.client.get("/api/status")  # Host: gateway.test
        assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_host"
        assert r.headers["x-frame-options"] == "DENY"
        for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "localhost"):
            assert (await dev.client.get("/api/status",
                                         headers={"Host": host})).status_code == 200
    finally:
        await stop_gateway(dev)


async def test_mfa_keys_rotate_and_an_unknown_key_is_a_clear_error(nats_server,
                                                                    database_url) -> None:
    old, new, other = "old-key-" + "o" * 32, "new-key-" + "n" * 32, "lost-key-" + "l" * 32
    first = await start_gateway(settings_for(nats_server.url, database_url,
                                             mfa_encryption_key=old))
    try:
        admin = await first.admin()
        freeze(first, T0)
        secret, _ = await enrol(first, admin)
        await first.client.post("/api/auth/logout", headers=admin)
    finally:
        await stop_gateway(first)

    async def step_up(ctx: Ctx, at_s: int) -> int:
        r = await ctx.login("admin", "admin" + STRONG)
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        at = T0 + timedelta(seconds=at_s)
        freeze(ctx, at)
        r = await ctx.client.post("/api/auth/mfa/step-up", headers=headers,
                                  json={"code": pyotp.TOTP(secret).at(at)})
        return r.status_code if r.status_code != 503 else r.json()["error"]["code"]

    rotated = await start_gateway(settings_for(nats_server.url, database_url,
                                               mfa_encryption_key=new,
                                               mfa_previous_keys=[old]), migrate=False)
    try:
        assert await step_up(rotated, 600) == 200
        async with rotated.gw.svc.engine.connect() as conn:
            stored = (await conn.execute(select(mfa_credentials.c.secret))).scalar_one()
        assert mfa.SecretBox(new).open(stored) == secret  # sealed again with the new key
    finally:
        await stop_gateway(rotated)
    lost = await start_gateway(settings_for(nats_server.url, database_url,
                                            mfa_encryption_key=other), migrate=False)
    try:
        assert await step_up(lost, 1200) == "mfa_unavailable"
    finally:
        await stop_gateway(lost)
