"""One error shape for every HTTP refusal: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts.rpc import ErrorBody
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
        from servicekit.consumer import is_transient

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
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)
