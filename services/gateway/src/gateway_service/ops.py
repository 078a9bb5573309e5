"""What operators see of the gateway: RED metrics, request ids, the access log, the ops port.

``RequestObservabilityMiddleware`` is the outermost layer of the public app, so every answer
is seen, refusals of the other middleware included:

- ``gateway_http_requests_total{method, route, status}`` and
  ``gateway_http_request_duration_seconds{method, route}``: ``route`` is the matched route's
  template (``/api/tasks/{task_id}/submit``), ``"unmatched"`` when none matched, never the
  raw path; ``status`` the class (``2xx``); the probes and ``/metrics`` are not counted;
- a request id: ``X-Request-Id`` from a trusted proxy (``GATEWAY_TRUSTED_PROXIES``), else a
  new one; in every log line of the request (``servicekit.observability.REQUEST_ID``) and
  returned on every response with the ``traceparent`` of the request's trace (a proxy's
  trace is continued, a client's is not);
- one access-log line per request from logger ``gateway.access`` (``method``, ``route``,
  ``status``, ``duration_ms``, ``request_id``; the template, so no token in a path is
  logged).

``ops_app`` is the small app Prometheus scrapes on ``GATEWAY_OPS_PORT`` (``/metrics``,
``/healthz``, ``/readyz``); the public port no longer serves ``/metrics``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Response
from opentelemetry import propagate, trace
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.routing import BaseRoute, Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway_service.security.addresses import Network, trusted_peer
from servicekit.observability import FASTAPI_TELEMETRY_OFF, REQUEST_ID
from servicekit.service import Service

access_log = logging.getLogger("gateway.access")

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HTTP_REQUESTS = Counter("gateway_http_requests_total", "HTTP requests answered by the gateway",
                        ["method", "route", "status"])
HTTP_SECONDS = Histogram("gateway_http_request_duration_seconds",
                         "Time to answer an HTTP request (to the end of the body)",
                         ["method", "route"], buckets=BUCKETS)
NOT_COUNTED = frozenset({"/healthz", "/readyz", "/metrics"})
# A client may send any method name: anything else is "OTHER" (a bounded label).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PRECREATED_STATUSES = ("2xx", "4xx", "5xx")
UNMATCHED = "unmatched"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def route_label(route: BaseRoute | None) -> str:
    """The template of a top-level route (a mount: its prefix and ``{path}``)."""
    if route is None:
        return UNMATCHED
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def iter_routes(routes: Iterable[BaseRoute], prefix: str = ""
                ) -> Iterator[tuple[str, BaseRoute]]:
    """(full path template, route) of every route, through included routers (FastAPI keeps
    them nested: a matched route's own ``path`` lacks its routers' prefixes)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from iter_routes(inner.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
        else:
            yield prefix + route_label(route), route


class RouteTemplates:
    """The full template of the route a request matched (``scope["route"]``)."""

    def __init__(self) -> None:
        self._by_route: dict[int, str] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        self.routes: list[tuple[str, str]] = []  # (method, template), counted ones

    def load(self, app: FastAPI) -> None:
        for template, route in iter_routes(app.routes):
            self._by_route[id(route)] = template
            if template in NOT_COUNTED or template.endswith(UNMATCHED):
                continue
            if isinstance(route, Mount):
                pattern = re.compile(re.escape(template.removesuffix("{path}")) + ".*")
            else:
                pattern = compile_path(template)[0]
            if (pattern, template) not in self._patterns:
                self._patterns.append((pattern, template))
            methods = ("GET",) if isinstance(route, Mount) else getattr(route, "methods", None)
            self.routes += [(m, template) for m in sorted(methods or ())]

    def label(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            return self._by_route.get(id(route)) or route_label(route)
        # refused before routing (read-only mode, a bad Host, a NUL byte): the template
        # the path would have matched
        path = scope.get("path", "")
        return next((t for p, t in self._patterns if p.fullmatch(path)), UNMATCHED)


def precreate_http_series(templates: RouteTemplates) -> int:
    """Every (method, route) at 0 for 2xx, 4xx and 5xx, so a ratio or an ``increase()``
    sees the first error and a dashboard shows 0, not "no data". Returns how many."""
    for method, route in templates.routes:
        for status in PRECREATED_STATUSES:
            HTTP_REQUESTS.labels(method, route, status)
        HTTP_SECONDS.labels(method, route)
    return len(templates.routes)


class RequestObservabilityMiddleware:
    """Request id, trace, RED metrics and the access log of every HTTP request."""

    def __init__(self, app: ASGIApp, *, templates: RouteTemplates,
                 trusted_proxies: Sequence[Network], access: str = "all") -> None:
        self.app = app
        self.access = access  # all | errors (4xx and 5xx) | off
        self.templates = templates
        self.proxies = trusted_proxies
        self.tracer = trace.get_tracer("gateway.http")

    def _from_proxy(self, scope: Scope) -> bool:
        client = scope.get("client")
        return trusted_peer(client[0] if client else None, self.proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers") or []}
        proxied = self._from_proxy(scope)
        given = headers.get("x-request-id", "") if proxied else ""
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        parent = propagate.extract(headers) if proxied else None
        method = scope.get("method", "GET").upper()
        method = method if method in METHODS else "OTHER"
        status = [500]
        token = REQUEST_ID.set(request_id)
        start = time.perf_counter()
        with self.tracer.start_as_current_span(f"HTTP {method}", context=parent,
                                               kind=trace.SpanKind.SERVER):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            extra = [(b"x-request-id", request_id.encode())] + [
                (k.encode(), v.encode()) for k, v in carrier.items()]

            async def marked(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                    message["headers"] = list(message.get("headers", [])) + extra
                await send(message)

            try:
                await self.app(scope, receive, marked)
            finally:  # the access line inside the span: it has the trace id too
                self._observe(scope, method, status[0], time.perf_counter() - start,
                              request_id)
                REQUEST_ID.reset(token)

    def _observe(self, scope: Scope, method: str, status: int, seconds: float,
                 request_id: str) -> None:
        route = self.templates.label(scope)
        if route in NOT_COUNTED or scope.get("path") in NOT_COUNTED:
            return
        HTTP_REQUESTS.labels(method, route, f"{status // 100}xx").inc()
        HTTP_SECONDS.labels(method, route).observe(seconds)
        if self.access == "off" or (self.access == "errors" and status < 400):
            return
        duration_ms = round(seconds * 1000, 1)
        access_log.info("%s %s %d %.1f ms", method, route, status, duration_ms,
                        extra={"fields": {"method": method, "route": route, "status": status,
                                          "duration_ms": duration_ms,
                                          "request_id": request_id}})


def add_probes(app: FastAPI, svc: Service) -> None:
    """``/healthz`` (the process answers) and ``/readyz`` (database at head, bus, started)."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "gateway"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(response: Response) -> dict[str, Any]:
        checks = await svc.readiness()
        ready = all(v == "ok" for v in checks.values())
        response.status_code = 200 if ready else 503
        return {"status": "ready" if ready else "not_ready", "checks": checks}


def ops_app(svc: Service) -> FastAPI:
    """The app of the ops port: the probes and ``/metrics``, nothing of the public API."""
    app = FastAPI(title="gateway ops", docs_url=None, redoc_url=None, openapi_url=None,
                  telemetry=FASTAPI_TELEMETRY_OFF)
    add_probes(app, svc)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app
