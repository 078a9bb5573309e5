"""NATS request/reply: typed endpoints in services, a typed client for the gateway."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.errors import MaxPayloadError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel, ValidationError

from contracts.rpc import ErrorBody, RpcReply, RpcSpec
from servicekit.errors import RpcCallError, ServiceError
from servicekit.outbox import current_trace_headers

log = logging.getLogger("servicekit.rpc")

RpcHandler = Callable[[Any], Awaitable[BaseModel | dict[str, Any] | list[Any] | None]]


def _dump(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    return data


async def dispatch(spec: RpcSpec, handler: RpcHandler, payload: bytes) -> bytes:
    """Run one request through its handler and encode the reply."""
    try:
        req = spec.request.model_validate_json(payload or b"{}")
    except ValidationError as exc:
        reply = RpcReply(ok=False, error=ErrorBody(
            code="validation_error", message="request did not match the schema", status=422,
            details=[{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                     for e in exc.errors(include_url=False, include_context=False)]))
        return reply.model_dump_json().encode()
    try:
        data = await handler(req)
        reply = RpcReply(ok=True, data=_dump(data))
    except ServiceError as exc:
        reply = RpcReply(ok=False, error=exc.body())
    except Exception:
        log.exception("rpc %s failed", spec.subject)
        reply = RpcReply(ok=False, error=ErrorBody(
            code="internal_error", message="the service failed to handle the request",
            status=500))
    return reply.model_dump_json().encode()


class RpcClient:
    """Calls service RPCs; raises RpcCallError carrying the service's error body."""

    def __init__(self, nc: NATS, *, timeout_s: float = 10.0) -> None:
        self.nc = nc
        self.timeout_s = timeout_s

    async def call(self, spec: RpcSpec, request: BaseModel | dict[str, Any], *,
                   timeout_s: float | None = None) -> Any:
        if isinstance(request, BaseModel):
            body = request.model_dump_json().encode()
        else:
            body = spec.request.model_validate(request).model_dump_json().encode()
        try:
            msg = await self.nc.request(spec.subject, body, timeout=timeout_s or self.timeout_s,
                                        headers=current_trace_headers() or None)
        except NoRespondersError as exc:
            raise RpcCallError(ErrorBody(code="service_unavailable", status=503,
                                         message=f"no service answers {spec.subject}")) from exc
        except NatsTimeout as exc:
            raise RpcCallError(ErrorBody(code="service_timeout", status=504,
                                         message=f"{spec.subject} did not answer in time")) from exc
        except MaxPayloadError as exc:
            raise RpcCallError(ErrorBody(code="payload_too_large", status=413,
                                         message="the request is larger than the bus accepts; "
                                                 "send it in smaller parts")) from exc
        except NatsError as exc:
            raise RpcCallError(ErrorBody(code="service_unavailable", status=503,
                                         message=f"the bus is unavailable: {type(exc).__name__}")
                               ) from exc
        reply = RpcReply.model_validate_json(msg.data)
        if not reply.ok:
            raise RpcCallError(reply.error or ErrorBody(code="internal_error", message="?",
                                                        status=500))
        return reply.data
