"""Cross-service harness: every service in-process plus the gateway, on a real
nats-server and fresh PostgreSQL databases (one per service, as in production).

    async def test_x(stack):
        admin = stack.admin                      # headers of the bootstrap admin (password changed)
        worker = await stack.user("worker")      # a new worker, logged in, password changed
        r = await stack.client.get("/api/...", headers=worker.headers)
"""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from launcher.services import settings_class
from servicekit.migrations import upgrade
from servicekit.testing import eventually

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("tasks", "review", "ledger", "rules", "support")
TEST_PASSWORD_SUFFIX = "-Strong#Pass-2026"


# Short timings so end-to-end tests don't wait on production-sized TTLs.
FAST_SETTINGS: dict[str, dict[str, Any]] = {
    "review": {"lock_ttl_s": 30},
    # webhooks: the tests' receivers listen on loopback; short backoff
    "support": {"webhook_allow_private": True, "webhook_sweep_s": 0.2,
                "webhook_backoff_base_s": 0.5},
}


@dataclass
class User:
    user_id: str
    login: str
    role: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Stack:
    client: httpx.AsyncClient
    gateway: Any
    services: dict[str, Any]
    admin: User | None = None
    _n: int = field(default=0)

    async def login(self, login: str, password: str) -> dict[str, Any]:
        r = await self.client.post("/api/auth/login", json={"login": login, "password": password})
        assert r.status_code == 200, r.text
        return r.json()

    async def admin_step_up(self) -> None:
        """MFA-elevate the admin's session (sets up TOTP on first use; spends a recovery code)."""
        import pyotp

        assert self.admin is not None
        c, h = self.client, self.admin.headers
        setup = await c.post("/api/auth/mfa/setup", headers=h)
        if setup.status_code == 200:
            code = pyotp.TOTP(setup.json()["secret"]).now()
            r = await c.post("/api/auth/mfa/confirm", headers=h, json={"code": code})
            assert r.status_code == 200, r.text
            self.admin_recovery_codes = r.json()["recovery_codes"]
        codes = getattr(self, "admin_recovery_codes", None)
        assert codes, "MFA was set up elsewhere without keeping the recovery codes"
        r = await c.post("/api/auth/mfa/step-up", headers=h, json={"recovery_code": codes.pop()})
        assert r.status_code == 200, r.text

    async def pool(self, *, input_spec: list[dict], output_spec: list[dict],
                   rows: list[dict] | None = None, name: str = "pool",
                   **pool: Any) -> str:
        """A new project and pool (as the admin) with ``rows`` uploaded; opened when rows
        are given. Returns the pool id."""
        assert self.admin is not None
        c, admin = self.client, self.admin.headers
        r = await c.post("/api/admin/projects", headers=admin, json={
            "name": f"{name}-{uuid.uuid4().hex[:6]}", "instructions": "Do it.",
            "input_spec": input_spec, "output_spec": output_spec})
        assert r.status_code == 201, r.text
        r = await c.post("/api/admin/pools", headers=admin, json={
            "project_id": r.json()["project_id"], "name": name, **pool})
        assert r.status_code == 201, r.text
        pool_id = r.json()["pool_id"]
        if rows is not None:
            r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin, json=rows)
            assert r.status_code == 200 and r.json()["created"] == len(rows), r.text
            r = await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)
            assert r.status_code == 200, r.text
        return pool_id

    async def take(self, worker: User, pool_id: str, *,
                   wait_for_a_task: bool = False) -> dict[str, Any]:
        """``worker``'s take from the pool once the trust level's pause between takes lets
        it through (429 is waited out; anything else than 200 fails the test).
        ``wait_for_a_task``: 404 ``no_tasks_available`` is waited out too (a take skips the
        rows other transactions hold at that moment, so it may find none for a while)."""
        async def attempt() -> dict[str, Any] | None:
            r = await self.client.post("/api/worker/tasks/take", headers=worker.headers,
                                       json={"pool_id": pool_id})
            if r.status_code == 429:
                return None
            if (wait_for_a_task and r.status_code == 404
                    and r.json()["error"]["code"] == "no_tasks_available"):
                return None
            assert r.status_code == 200, r.text
            return r.json()
        return await eventually(attempt)

    async def user(self, role: str) -> User:
        """Create a user of ``role`` as the admin, log in, change the temporary password."""
        assert self.admin is not None
        self._n += 1
        login = f"{role}-{uuid.uuid4().hex[:8]}"
        r = await self.client.post("/api/admin/users", json={"login": login, "role": role},
                                   headers=self.admin.headers)
        assert r.status_code == 201, r.text
        body = r.json()
        logged = await self.login(login, body["temporary_password"])
        password = login + TEST_PASSWORD_SUFFIX
        r = await self.client.post(
            "/api/auth/password",
            json={"old_password": body["temporary_password"], "new_password": password},
            headers={"Authorization": f"Bearer {logged['token']}"})
        assert r.status_code == 200, r.text
        return User(body["user_id"], login, role, password, r.json()["token"])


@dataclass
class Bus:
    """A nats-server with a user per process and the permissions of launcher.busauth, as
    ``make run`` and the deployments run it; the streams made by the provisioner."""
    server: Any
    passwords: dict[str, str]

    @property
    def url(self) -> str:
        return str(self.server.url)

    def settings_for(self, user: str) -> dict[str, Any]:
        from launcher.busauth import inbox

        return {"nats_url": self.url, "nats_user": user, "nats_password": self.passwords[user],
                "nats_inbox_prefix": inbox(user), "ensure_streams": False}

    async def connect(self, user: str | None, password: str | None = None,
                      **kw: Any) -> Any:
        """A client as ``user`` (its own password unless one is given), or with no
        credentials at all (``user=None``)."""
        import nats

        from launcher.busauth import inbox

        if user is None:
            return await nats.connect(self.url, allow_reconnect=False, **kw)
        return await nats.connect(self.url, user=user,
                                  password=password or self.passwords[user],
                                  inbox_prefix=inbox(user), allow_reconnect=False, **kw)


@pytest.fixture(scope="session")
async def bus(tmp_path_factory: pytest.TempPathFactory):
    from launcher import busauth
    from servicekit.testing.natsserver import NatsServer

    passwords = busauth.new_passwords()
    server = NatsServer(tmp_path_factory.mktemp("secure-nats"),
                        config=busauth.render(passwords))
    server.start()
    try:
        await busauth.provision(server.url, passwords["provisioner"])
        yield Bus(server, passwords)
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def stack(bus, pg_server):
    from gateway_service.main import create_gateway
    from gateway_service.settings import GatewaySettings
    from servicekit.testing.plugin import DatabaseFactory

    dbs = DatabaseFactory()
    services: dict[str, Any] = {}
    try:
        for name in SERVICES:
            url = await dbs.new(f"mte_e2e_{name}")
            upgrade(ROOT / "services" / name, url)
            module = importlib.import_module(f"{name}_service.main")
            settings = settings_class(name)(database_url=url, environment="test",
                                            **bus.settings_for(name),
                                            **FAST_SETTINGS.get(name, {}))
            svc = module.create_service(settings)
            await svc.start()
            services[name] = svc
        gw_url = await dbs.new("mte_e2e_gateway")
        upgrade(ROOT / "services" / "gateway", gw_url)
        # live_max_s: a GET of the live stream (the hidden-share walk) ends after a second
        gw = create_gateway(GatewaySettings(database_url=gw_url, environment="test",
                                            live_max_s=1.0, **bus.settings_for("gateway")))
        bootstrap_password = await gw.start()
        assert bootstrap_password, "a fresh gateway must create the bootstrap admin"
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app),
                                   base_url="http://gateway.test", timeout=30)
        st = Stack(client=client, gateway=gw, services=services)
        first = await st.login("admin", bootstrap_password)
        new_password = "admin" + TEST_PASSWORD_SUFFIX
        r = await client.post("/api/auth/password",
                              json={"old_password": bootstrap_password,
                                    "new_password": new_password},
                              headers={"Authorization": f"Bearer {first['token']}"})
        assert r.status_code == 200, r.text
        st.admin = User(first["user"]["user_id"], "admin", "admin", new_password,
                        r.json()["token"])
        yield st
        await client.aclose()
        await gw.stop()
    finally:
        for svc in services.values():
            await svc.stop()
        await dbs.cleanup()
