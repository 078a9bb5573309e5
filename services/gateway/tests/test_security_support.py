"""Helpers shared by the security test modules (imported, not a pytest conftest)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gateway_service.main import Gateway, create_gateway
from gateway_service.settings import GatewaySettings
from servicekit.migrations import upgrade

SERVICE_DIR = Path(__file__).resolve().parents[1]
STRONG = "-Correct#Horse-Battery"


@dataclass
class Ctx:
    gw: Gateway
    client: httpx.AsyncClient
    bootstrap_password: str | None

    async def login(self, login: str, password: str) -> httpx.Response:
        return await self.client.post("/api/auth/login",
                                      json={"login": login, "password": password})

    async def admin(self) -> dict[str, str]:
        """Log the bootstrap admin in and replace the one-time password."""
        r = await self.login("admin", self.bootstrap_password or "")
        assert r.status_code == 200, r.text
        r = await self.client.post(
            "/api/auth/password", headers=bearer(r.json()["token"]),
            json={"old_password": self.bootstrap_password, "new_password": "admin" + STRONG})
        assert r.status_code == 200, r.text
        return bearer(r.json()["token"])

    async def user(self, admin: dict[str, str], role: str = "worker") -> tuple[dict, dict]:
        """A new user with the temporary password already changed: (headers, info)."""
        login = f"{role}-{uuid.uuid4().hex[:8]}"
        r = await self.client.post("/api/admin/users", headers=admin,
                                   json={"login": login, "role": role})
        assert r.status_code == 201, r.text
        info = r.json()
        r = await self.login(login, info["temporary_password"])
        r = await self.client.post(
            "/api/auth/password", headers=bearer(r.json()["token"]),
            json={"old_password": info["temporary_password"], "new_password": login + STRONG})
        assert r.status_code == 200, r.text
        info["password"] = login + STRONG
        return bearer(r.json()["token"]), info


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def settings_for(nats_url: str, database_url: str, **over: Any) -> GatewaySettings:
    over.setdefault("emergency_bucket", f"gwtest_{uuid.uuid4().hex[:10]}")
    over.setdefault("environment", "test")
    if over["environment"] == "production":
        # production connects as its own NATS user (this test bus has no auth: it accepts any)
        over.setdefault("nats_user", "gateway")
        over.setdefault("nats_password", "gateway-bus-password-for-tests")
    return GatewaySettings(database_url=database_url, nats_url=nats_url, **over)


async def start_gateway(settings: GatewaySettings, *, migrate: bool = True,
                        client: tuple[str, int] = ("127.0.0.1", 50000)) -> Ctx:
    if migrate:
        upgrade(SERVICE_DIR, settings.database_url)
    gw = create_gateway(settings)
    pw = await gw.start()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app, client=client),
                             base_url="http://gateway.test", timeout=30)
    return Ctx(gw, http, pw)


async def stop_gateway(ctx: Ctx, *, drop_bucket: bool = True) -> None:
    await ctx.client.aclose()
    if drop_bucket and ctx.gw.svc.nc is not None:
        try:
            await ctx.gw.svc.nc.jetstream().delete_key_value(ctx.gw.settings.emergency_bucket)
        except Exception:
            pass
    await ctx.gw.stop()
