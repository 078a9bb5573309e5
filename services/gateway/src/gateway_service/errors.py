"""One error shape for every HTTP refusal: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, compile_path
from starlette.types import Scope

from contracts.rpc import ErrorBody
from servicekit.consumer import is_transient
from servicekit.errors import RpcCallError, ServiceError

log = logging.getLogger("gateway.errors")


class ApiError(ServiceError):
    """A refusal of the gateway itself, with HTTP headers (Retry-After, WWW-Authenticate).

    A ``ServiceError``, so a unit of work can commit, then refuse with it (``CommitThen``).
    """

    def __init__(self, status: int, code: str, message: str, *, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(code, message, status=status, details=details)
        self.headers = headers


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def retry_after_header(e: ErrorBody) -> dict[str, str] | None:
    """A service's 429 that says when to retry (``details.retry_after_s``) as Retry-After."""
    wait = e.details.get("retry_after_s") if isinstance(e.details, dict) else None
    if e.status != 429 or not isinstance(wait, int | float) or isinstance(wait, bool):
        return None
    return {"Retry-After": str(max(1, math.ceil(wait)))}


def validation_details(exc: ValidationError | RequestValidationError) -> list[dict[str, Any]]:
    errors = (exc.errors(include_url=False, include_context=False, include_input=False)
              if isinstance(exc, ValidationError) else exc.errors())
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _refused(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details,
                              getattr(exc, "headers", None))

    @app.exception_handler(RpcCallError)
    async def _rpc(_: Request, exc: RpcCallError) -> JSONResponse:
        e = exc.error
        return error_response(e.status, e.code, e.message, e.details, retry_after_header(e))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "validation_error", "request did not match the schema",
                              validation_details(exc))

    @app.exception_handler(ValidationError)
    async def _contract(_: Request, exc: ValidationError) -> JSONResponse:
        # Input that passed the route's own checks but not the service contract's
        # (e.g. an id longer than any id can be): still the caller's mistake.
        return error_response(422, "validation_error", "request did not match the schema",
                              validation_details(exc))

    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        # the gateway's own database (sessions, accounts) is down or busy: "try again",
        # never a bare 500
        if not is_transient(exc):
            log.error("unhandled %s", type(exc).__name__, exc_info=exc)
            return error_response(500, "internal_error", "the gateway failed to handle the "
                                  "request")
        log.warning("transient failure: %s: %s", type(exc).__name__, str(exc)[:200])
        return error_response(503, "service_unavailable", "the platform cannot complete this "
                              "right now; try again in a few seconds",
                              headers={"Retry-After": "2"})

    for transient in (DBAPIError, PoolTimeout, ConnectionError, TimeoutError, OSError):
        app.add_exception_handler(transient, _unavailable)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "bad_request", 404: "not_found",
                405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only the first route's
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)


# ------------------------------------------------------------------ documented refusals


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. validation_error, not_found")
    message: str
    details: Any = None


class ErrorOut(BaseModel):
    """The body of every refusal."""

    error: ErrorDetail


REFUSALS: dict[int, str] = {
    400: "bad_request (a body that is not UTF-8 JSON), unknown_host, invalid_code, bad_json",
    401: "unauthenticated, session_expired, invalid_credentials, invalid_link",
    403: "forbidden (role), password_change_required, mfa_required, account_disabled, "
         "restricted",
    404: "not_found: the thing named in the path or body does not exist",
    409: "conflict: the thing is not in a state that allows it",
    413: "payload_too_large, upload_too_large",
    415: "unsupported_media_type",
    422: "validation_error (details list each field) or a refusal of the value",
    428: "captcha_required",
    429: "too_many_attempts or take_limit (Retry-After says when to try again)",
    502: "bad_service_reply: a service broke its contract",
    503: "read_only (the platform is frozen), service_unavailable, mfa_unavailable",
    504: "service_timeout: a service did not answer in time",
}

# every operation; then by what the route depends on (see ``document_refusals``)
ALWAYS = (400, 422, 503)
SIGNED_IN = (401, 403)
LOOKS_UP = (404, 409)
CALLS_A_SERVICE = (413, 502, 504)


def _depends_on(route: APIRoute) -> set[str]:
    names: set[str] = set()
    stack = [route.dependant]
    while stack:
        d = stack.pop()
        if d.call is not None:
            names.add(getattr(d.call, "__name__", ""))
        stack.extend(d.dependencies)
    return names


def api_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """The API routes with the prefix they are mounted at, also those of included routers
    (FastAPI includes them lazily)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from api_routes(included.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, APIRoute):
            yield prefix, route


def document_refusals(app: FastAPI) -> None:
    """Every refusal an operation can answer with, in its OpenAPI ``responses``, all with
    the ``ErrorOut`` body: ``ALWAYS``; ``SIGNED_IN`` for routes that need a session;
    ``LOOKS_UP`` for routes that call a service or the security layer; ``CALLS_A_SERVICE``
    for routes that call a service. Codes only some routes answer (429 of a throttle, 428
    and 429 of a take, 413 and 415 of an upload) are in those routes' own ``responses``."""
    methods: dict[str, set[str]] = {}
    for prefix, route in api_routes(app.router.routes):
        methods.setdefault(prefix + route.path, set()).update(route.methods or ())
        deps = _depends_on(route)
        codes = set(ALWAYS)
        signed_in = bool(deps & {"current_session", "signed_in_as"})  # see deps.py
        if signed_in:
            codes.update(SIGNED_IN)
        if signed_in or deps & {"rpc_client", "security_layer"}:
            codes.update(LOOKS_UP)
        if "rpc_client" in deps:
            codes.update(CALLS_A_SERVICE)
        codes.update(c for c in route.responses if isinstance(c, int) and c >= 400)
        for code in sorted(codes):
            given = route.responses.get(code, {})
            route.responses[code] = {"model": ErrorOut,
                                     "description": given.get("description", REFUSALS[code])}
    app.state.path_methods = [(compile_path(path)[0], sorted(m | ({"HEAD"} if "GET" in m
                                                                   else set())))
                              for path, m in methods.items()]


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route answers at the request's path (for ``Allow`` on a 405)."""
    path = scope.get("path", "")
    found: set[str] = set()
    for regex, methods in getattr(app.state, "path_methods", ()):
        if regex.match(path):
            found.update(methods)
    return sorted(found)
