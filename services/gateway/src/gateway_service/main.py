"""The gateway application: public HTTP API, web UI and the security layer.

    gw = create_gateway(GatewaySettings(...))
    bootstrap_password = await gw.start()   # NATS, emergency switch, first admin
    ... serve gw.app ...
    await gw.stop()

The service kit's ``Service`` provides the database (units of work on ``GatewayStore``),
the outbox relay (gateway.user.created, gateway.emergency.changed), the NATS connection
and the emergency watch; the gateway consumes nothing and serves no RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from gateway_service.db import metadata
from gateway_service.emergency import Emergency, ReadOnlyMiddleware
from gateway_service.errors import document_refusals, install_error_handlers
from gateway_service.http import (
    LOOPBACK_HOSTS,
    RefuseNulMiddleware,
    SecurityHeadersMiddleware,
    TrustedHostsMiddleware,
)
from gateway_service.ops import (
    RequestObservabilityMiddleware,
    RouteTemplates,
    add_probes,
    ops_app,
    precreate_http_series,
)
from gateway_service.rpc import GatewayRpc
from gateway_service.security import SecurityLayer
from gateway_service.security.addresses import host_name, parse_networks
from gateway_service.security.store import GatewayStore
from gateway_service.settings import GatewaySettings
from servicekit.observability import FASTAPI_TELEMETRY_OFF, uvicorn_log_options
from servicekit.service import Service

log = logging.getLogger("gateway")

SERVICE_DIR = Path(__file__).resolve().parents[2]
WEB_DIR = Path(__file__).resolve().parent / "web"

# Loggers that print SQL parameters (hashes, sealed secrets) at DEBUG or INFO: kept at WARNING.
PARAMETER_LOGGERS = ("sqlalchemy.engine", "sqlalchemy.pool")


def mount_web_ui(app: FastAPI, *, docs: bool) -> None:
    """The built web UI (``web/``, made from ``services/gateway/frontend``): the page at
    ``/``, its hashed assets (cached for good: a new build has new names) and, outside
    production, the API docs page at ``/api/docs`` (the vendored Swagger UI: FastAPI's own
    page loads it from a CDN, which the CSP refuses)."""

    def page(name: str) -> Callable[[], Awaitable[FileResponse]]:
        async def serve() -> FileResponse:
            return FileResponse(WEB_DIR / name, media_type="text/html; charset=utf-8",
                                headers={"Cache-Control": "no-cache"})
        return serve

    async def favicon() -> FileResponse:
        return FileResponse(WEB_DIR / "favicon.svg", media_type="image/svg+xml")

    app.get("/", include_in_schema=False)(page("index.html"))
    app.get("/favicon.svg", include_in_schema=False)(favicon)
    app.mount("/assets", ImmutableStaticFiles(directory=WEB_DIR / "assets"), name="assets")
    if docs:
        app.get("/api/docs", include_in_schema=False)(page("docs.html"))
        app.mount("/swagger", StaticFiles(directory=WEB_DIR / "swagger"), name="swagger")


class ImmutableStaticFiles(StaticFiles):
    """Assets whose names carry their content hash."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def allowed_hosts(settings: GatewaySettings) -> list[str]:
    """The Hosts the gateway answers; empty = any (see ``GatewaySettings.allowed_hosts``)."""
    if settings.allowed_hosts or settings.environment != "development":
        return settings.allowed_hosts
    return [*LOOPBACK_HOSTS, host_name(settings.public_url.split("//", 1)[-1].split("/", 1)[0])]


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.svc = Service(settings, metadata, store=GatewayStore,
                           migrations_dir=SERVICE_DIR / "migrations")
        for name in PARAMETER_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        # The gateway writes the switch; the writer is also this process's watch, which the
        # kit's Service starts and stops with the bus.
        self.emergency = Emergency(settings.emergency_bucket)
        self.svc.read_only = self.svc.ctx.read_only = self.emergency
        self.security = SecurityLayer(self.svc.ctx)
        self.rpc: GatewayRpc | None = None
        self.app = self._make_app()
        # /metrics and the probes on GATEWAY_OPS_PORT (main() serves it), never on the
        # public port
        self.ops_app = ops_app(self.svc)

    def _make_app(self) -> FastAPI:
        from gateway_service.routes import API_ROUTERS, admin_security, admin_users, status
        from gateway_service.routes import auth as auth_routes
        from gateway_service.routes.tasks import MAX_UPLOAD_BYTES

        s = self.settings
        app = FastAPI(title="Microtask Engine gateway", version=s.version,
                      telemetry=FASTAPI_TELEMETRY_OFF,
                      docs_url=None, redoc_url=None,
                      openapi_url="/api/openapi.json" if s.environment != "production" else None)
        app.state.gateway = self
        app.state.security = self.security
        app.state.emergency = self.emergency
        app.state.rpc = None
        app.state.nats = None
        install_error_handlers(app)

        # Routing tries routes in order, so the busiest routers come first (review and
        # the worker's loop in tasks); no two routes of any router match the same request
        # (services/gateway/tests/test_api_routes.py checks it), so the order changes
        # nothing else.
        for r in (*API_ROUTERS, auth_routes.router, admin_users.router, admin_security.router,
                  status.router):
            app.include_router(r, prefix="/api")
        if s.environment == "development" and s.dev_quick_login:
            app.include_router(auth_routes.dev_router, prefix="/api")
        document_refusals(app)

        add_probes(app, self.svc)  # the load balancer's probes stay on the public port
        mount_web_ui(app, docs=s.environment != "production")

        app.add_middleware(ReadOnlyMiddleware, emergency=self.emergency,
                           retry_after_s=s.emergency_retry_after_s)
        app.add_middleware(RefuseNulMiddleware, max_body=MAX_UPLOAD_BYTES)
        hosts = allowed_hosts(s)
        if hosts:
            app.add_middleware(TrustedHostsMiddleware, hosts=hosts)
        # Added late = outer: every refusal above gets the security headers too.
        app.add_middleware(SecurityHeadersMiddleware, hsts=s.behind_tls)
        # Outermost: every answer is counted and logged, with its request id.
        templates = RouteTemplates()
        templates.load(app)
        app.add_middleware(RequestObservabilityMiddleware, templates=templates,
                           trusted_proxies=parse_networks(s.trusted_proxies),
                           access=s.access_log)
        precreate_http_series(templates)
        return app

    async def start(self) -> str | None:
        """Connect and get ready; the bootstrap admin's one-time password if it was created."""
        if self.settings.migrate_on_start:
            from servicekit.migrations import upgrade  # alembic only where it runs

            await asyncio.to_thread(upgrade, SERVICE_DIR, self.settings.database_url)
        await self.svc.start()
        assert self.svc.nc is not None
        await self.security.start(self.svc.nc)
        self.rpc = GatewayRpc(self.svc.nc, timeout_s=self.settings.rpc_timeout_s)
        # a reply cannot reach a dropped connection: answer 504 now, not at the timeout
        self.svc.on_disconnect.append(self.rpc.connection_lost)
        self.app.state.rpc = self.rpc
        self.app.state.nats = self.svc.nc
        return await self.security.accounts.bootstrap()

    async def stop(self) -> None:
        hub = getattr(self.app.state, "live_hub", None)
        if hub is not None:
            await hub.stop()
        await self.security.stop()
        await self.svc.stop()


def create_gateway(settings: GatewaySettings | None = None) -> Gateway:
    return Gateway(settings or GatewaySettings())


class OpsServer:
    """The ops port's uvicorn server, stopped with the public one (which alone handles the
    process's signals)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Any:
                yield

        self.server = Quiet(uvicorn.Config(app, host=host, port=port, lifespan="off",
                                           access_log=False, server_header=False,
                                           **uvicorn_log_options()))

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        except (SystemExit, OSError):  # uvicorn exits when it cannot bind: keep the public port
            log.error("the ops port %s could not be opened: /metrics is not served",
                      self.server.config.port)

    async def serve_while(self, main: Awaitable[None]) -> None:
        task = asyncio.create_task(self._serve(), name="gateway-ops-port")
        try:
            await main
        finally:
            self.server.should_exit = True
            await asyncio.gather(task, return_exceptions=True)


def main() -> None:
    """Process entrypoint: the public app on http_host:http_port, the ops app (metrics,
    probes) on http_host:ops_port; print the bootstrap password once on stdout (never
    into the log). The schema is migrated before, as its own step (``python -m
    servicekit.migrations upgrade gateway``), unless GATEWAY_MIGRATE_ON_START."""

    settings = GatewaySettings()
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
    # No uvicorn access log (request lines could carry tokens in a query string): the
    # gateway's own (gateway.access) logs route templates.
    public = uvicorn.Server(uvicorn.Config(
        gw.app, host=settings.http_host, port=settings.http_port, access_log=False,
        lifespan="on", proxy_headers=False, server_header=False, **uvicorn_log_options()))
    # the event loop uvicorn.run would choose (uvloop where installed)
    with asyncio.Runner(loop_factory=public.config.get_loop_factory()) as runner:
        if not settings.ops_port:  # 0: no ops port
            runner.run(public.serve())
            return
        ops = OpsServer(gw.ops_app, settings.http_host, settings.ops_port)
        runner.run(ops.serve_while(public.serve()))


if __name__ == "__main__":
    main()
