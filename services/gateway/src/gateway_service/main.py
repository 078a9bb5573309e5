"""The gateway application: public HTTP API, web UI and the security layer.

    gw = create_gateway(GatewaySettings(...))
    bootstrap_password = await gw.start()   # NATS, emergency watch, first admin
    ... serve gw.app ...
    await gw.stop()

The service kit's ``Service`` provides the database engine, the outbox relay
(gateway.user.created, gateway.emergency.changed) and the NATS connection; the gateway
consumes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway_service import audit as audit_module
from gateway_service.audit import Audit
from gateway_service.auth import Auth
from gateway_service.bootstrap import run_bootstrap
from gateway_service.db import metadata
from gateway_service.emergency import Emergency, ReadOnlyMiddleware
from gateway_service.errors import install_error_handlers
from gateway_service.settings import GatewaySettings
from servicekit.migrations import upgrade
from servicekit.rpc import RpcClient
from servicekit.service import Service

log = logging.getLogger("gateway")

SERVICE_DIR = Path(__file__).resolve().parents[2]
WEB_DIR = Path(__file__).resolve().parent / "web"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


class SecurityHeadersMiddleware:
    """Security headers on every response; API answers are never cached."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if hsts:
            self.headers.append((b"strict-transport-security",
                                 b"max-age=31536000; includeSubDomains"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope.get("path", "").startswith("/api/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                if no_store and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, with_headers)


# Loggers that print SQL parameters (hashes, the TOTP secret) at DEBUG or INFO: keep them at WARNING.
PARAMETER_LOGGERS = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool")


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.svc = Service(settings, metadata)
        for name in PARAMETER_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        self.audit = Audit(self.svc.engine)
        self.auth = Auth(settings, self.svc, self.audit)
        self.emergency = Emergency(settings.emergency_bucket)
        self.rpc: RpcClient | None = None
        self.app = self._make_app()

    def _make_app(self) -> FastAPI:
        from gateway_service.routes import admin_security, admin_users, status
        from gateway_service.routes import auth as auth_routes

        s = self.settings
        app = FastAPI(title="Microtask Engine gateway", version=s.version,
                      docs_url="/api/docs" if s.environment != "production" else None,
                      redoc_url=None,
                      openapi_url="/api/openapi.json" if s.environment != "production" else None)
        app.state.gateway = self
        app.state.settings = s
        app.state.auth = self.auth
        app.state.audit = self.audit
        app.state.emergency = self.emergency
        app.state.rpc = None
        app.state.nats = None
        install_error_handlers(app)

        from gateway_service.routes import API_ROUTERS

        # Routing tries routes in order, so the busiest routers come first (review and
        # the worker's loop in tasks); no two routes of any router match the same request
        # (services/gateway/tests/test_api_routes.py checks it), so the order changes
        # nothing else.
        for r in (*API_ROUTERS, auth_routes.router, admin_users.router, admin_security.router,
                  status.router):
            app.include_router(r, prefix="/api")
        if s.environment == "development" and s.dev_quick_login:
            app.include_router(auth_routes.dev_router, prefix="/api")

        @app.get("/healthz", include_in_schema=False)
        async def healthz() -> dict[str, str]:
            return {"status": "ok", "service": "gateway"}

        @app.get("/readyz", include_in_schema=False)
        async def readyz(response: Response) -> dict[str, Any]:
            checks = await self.svc.readiness()
            ready = all(v == "ok" for v in checks.values())
            response.status_code = 200 if ready else 503
            return {"status": "ready" if ready else "not_ready", "checks": checks}

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

        def static(name: str, media_type: str):
            async def serve() -> FileResponse:
                return FileResponse(WEB_DIR / name, media_type=media_type)
            return serve

        app.get("/", include_in_schema=False)(static("index.html", "text/html; charset=utf-8"))
        app.get("/app.js", include_in_schema=False)(
            static("app.js", "text/javascript; charset=utf-8"))
        app.get("/app.css", include_in_schema=False)(static("app.css", "text/css; charset=utf-8"))

        app.add_middleware(ReadOnlyMiddleware, emergency=self.emergency,
                           retry_after_s=s.emergency_retry_after_s)
        # Added last = outermost: read-only refusals get the security headers too.
        app.add_middleware(SecurityHeadersMiddleware, hsts=s.behind_tls)
        return app

    async def start(self) -> str | None:
        """Connect and get ready; the bootstrap admin's one-time password if it was created."""
        if self.settings.migrate_on_start:
            await asyncio.to_thread(upgrade, SERVICE_DIR, self.settings.database_url)
        await self.svc.start()
        assert self.svc.nc is not None
        await self.emergency.start(self.svc.nc)
        await self.auth.sessions.start(self.svc.nc)
        self.rpc = RpcClient(self.svc.nc, timeout_s=self.settings.rpc_timeout_s)
        self.app.state.rpc = self.rpc
        self.app.state.nats = self.svc.nc
        audit_module.set_current(self.audit)
        return await run_bootstrap(self.auth)

    async def stop(self) -> None:
        await self.emergency.stop()
        await self.auth.sessions.stop()
        if audit_module._current is self.audit:
            audit_module.set_current(None)
        await self.svc.stop()


def create_gateway(settings: GatewaySettings | None = None) -> Gateway:
    return Gateway(settings or GatewaySettings())


def main() -> None:
    """Process entrypoint: migrate, serve on http_host:http_port, print the bootstrap
    password once on stdout (never into the log)."""
    import uvicorn

    settings = GatewaySettings()
    upgrade(SERVICE_DIR, settings.database_url)
    gw = create_gateway(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        password = await gw.start()
        if password:
            sys.stdout.write(
                "\n=== Microtask Engine: the admin account was created ===\n"
                f"login: admin\none-time password: {password}\n"
                "It is shown only this once; you must change it at the first login.\n\n")
            sys.stdout.flush()
        try:
            yield
        finally:
            await gw.stop()

    gw.app.router.lifespan_context = lifespan
    # No access log: request lines could carry tokens in a future query string.
    uvicorn.run(gw.app, host=settings.http_host, port=settings.http_port,
                log_level="warning", access_log=False, lifespan="on",
                proxy_headers=False, server_header=False)


if __name__ == "__main__":
    main()
