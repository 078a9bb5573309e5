"""NATS request/reply: typed endpoints in services, a typed client for the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import MaxPayloadError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from opentelemetry import propagate, trace
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ValidationError

from contracts.rpc import ErrorBody, RpcReply, RpcSpec
from servicekit.consumer import is_transient
from servicekit.errors import RpcCallError, ServiceError
from servicekit.outbox import current_trace_headers

log = logging.getLogger("servicekit.rpc")

RpcHandler = Callable[[Any], Awaitable[BaseModel]]
ReqT = TypeVar("ReqT", bound=BaseModel)
RespT = TypeVar("RespT", bound=BaseModel)


def _error(code: str, message: str, status: int, details: Any = None) -> bytes:
    return RpcReply(ok=False, error=ErrorBody(code=code, message=message, status=status,
                                              details=details)).model_dump_json().encode()


def _roles_text(spec: RpcSpec[Any, Any]) -> str:
    return " or ".join(sorted(spec.roles))


async def dispatch(spec: RpcSpec[Any, Any], handler: RpcHandler, payload: bytes) -> bytes:
    """Run one request through its handler and encode the reply.

    The caller's role is checked against the spec before the handler runs, and a result
    that is not the spec's response model is never sent.
    """
    try:
        req = spec.request.model_validate_json(payload or b"{}")
    except ValidationError as exc:
        return _error("validation_error", "request did not match the schema", 422,
                      [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                       for e in exc.errors(include_url=False, include_context=False)])
    actor = getattr(req, "actor", None)
    if actor is not None and actor.role not in spec.roles:
        return _error("forbidden", f"this action is for {_roles_text(spec)} only", 403)
    try:
        data = await handler(req)
    except ServiceError as exc:
        refusal: bytes = RpcReply(ok=False, error=exc.body()).model_dump_json().encode()
        return refusal
    except Exception as exc:
        if is_transient(exc):  # its database is down or a lock timed out: "later", not "never"
            log.warning("rpc %s: transient failure %s: %s", spec.subject, type(exc).__name__,
                        str(exc)[:200])
            return _error("service_unavailable", "the service cannot complete this right "
                          "now (its database is unavailable or busy); try again shortly", 503)
        log.exception("rpc %s failed", spec.subject)
        return _error("internal_error", "the service failed to handle the request", 500)
    if not isinstance(data, spec.response):
        log.error("rpc %s: the handler returned %s, not %s; not sent", spec.subject,
                  type(data).__name__, spec.response.__name__)
        return _error("internal_error", "the service failed to handle the request", 500)
    # serialized once, straight into the reply (no dict and no second validation)
    body: bytes = data.model_dump_json().encode()
    return b'{"ok":true,"data":' + body + b"}"


class RpcClient:
    """Calls service RPCs; returns the spec's response model, or raises RpcCallError
    carrying the service's error body."""

    def __init__(self, nc: NATS, *, timeout_s: float = 10.0) -> None:
        self.nc = nc
        self.timeout_s = timeout_s
        # the tasks waiting for a reply now (no task of its own per call: the hot path)
        self._waiting: set[asyncio.Task[Any]] = set()
        self._dropped: set[asyncio.Task[Any]] = set()

    def connection_lost(self) -> None:
        """The connection dropped: no reply to a request already sent can reach this
        client any more (its inbox lived on the server that went away), so every waiting
        call ends now instead of at its timeout."""
        for task in list(self._waiting):
            if not task.done():
                self._dropped.add(task)
                task.cancel()

    async def call(self, spec: RpcSpec[ReqT, RespT], request: ReqT, *,
                   timeout_s: float | None = None) -> RespT:
        """Send ``request``; only its fields that were set travel: the service's copy of the
        contract fills in the same defaults, and an update request can tell "leave it"
        from "set it to null"."""
        if not isinstance(request, spec.request):
            raise TypeError(f"{spec.subject} takes {spec.request.__name__}, "
                            f"not {type(request).__name__}")
        reply = await self.call_raw(spec, request.model_dump_json(exclude_unset=True).encode(),
                                    timeout_s=timeout_s)
        response: RespT = spec.response.model_validate(reply.data)
        return response

    async def call_raw(self, spec: RpcSpec[Any, Any], body: bytes, *,
                       timeout_s: float | None = None) -> RpcReply:
        """One request with an encoded body; the successful reply, undecoded."""
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            msg = await self.nc.request(spec.subject, body,
                                        timeout=timeout_s or self.timeout_s,
                                        headers=current_trace_headers() or None)
        except asyncio.CancelledError:
            if task not in self._dropped:
                raise  # the caller was cancelled
            self._dropped.discard(task)
            task.uncancel()  # ended by connection_lost: a refusal, not a cancellation
            raise RpcCallError(ErrorBody(
                code="service_timeout", status=504,
                message=f"the bus connection dropped while {spec.subject} was answered: it "
                        "may have been applied; look before trying again")) from None
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
        finally:
            self._waiting.discard(task)
        reply = RpcReply.model_validate_json(msg.data)
        if not reply.ok:
            raise RpcCallError(reply.error or ErrorBody(code="internal_error", message="?",
                                                        status=500))
        return reply


RPC_SECONDS = Histogram("servicekit_rpc_seconds", "RPC handling time", ["service", "rpc"])
RPC_REQUESTS = Counter("servicekit_rpc_requests_total", "RPC requests by outcome",
                       ["service", "rpc", "outcome"])


class RpcServer:
    """Serves RPC specs on core NATS (queue group = service name), concurrently.

    Plain nats-py subscriptions rather than FastStream subscribers: the request path
    is the hottest in the system and FastStream's per-message middleware chain costs
    more than the handlers themselves. Tracing (W3C context from the request headers)
    and Prometheus metrics are done here instead.
    """

    def __init__(self, *, service: str, nc: NATS, concurrency: int = 64) -> None:
        self.service = service
        self.nc = nc
        self.tracer = trace.get_tracer("servicekit.rpc")
        self._slots = asyncio.Semaphore(concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._subs: list[Any] = []

    async def serve(self, spec: RpcSpec[Any, Any], handler: RpcHandler) -> None:
        for outcome in ("ok", "error"):  # a series from the start: the first error counts
            RPC_REQUESTS.labels(self.service, spec.subject, outcome)
        RPC_SECONDS.labels(self.service, spec.subject)
        async def on_message(msg: Msg) -> None:
            await self._slots.acquire()
            task = asyncio.create_task(self._handle(spec, handler, msg))
            self._inflight.add(task)
            task.add_done_callback(self._done)

        self._subs.append(await self.nc.subscribe(spec.subject, queue=self.service,
                                                  cb=on_message))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()

    async def _handle(self, spec: RpcSpec[Any, Any], handler: RpcHandler, msg: Msg) -> None:
        start = time.perf_counter()
        ctx = propagate.extract(msg.headers or {})
        with self.tracer.start_as_current_span(f"{spec.subject} process", context=ctx,
                                               kind=trace.SpanKind.SERVER) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", spec.subject)
            reply = await dispatch(spec, handler, msg.data)
        RPC_SECONDS.labels(self.service, spec.subject).observe(time.perf_counter() - start)
        RPC_REQUESTS.labels(self.service, spec.subject,
                            "ok" if reply.startswith(b'{"ok":true') else "error").inc()
        if msg.reply:
            try:
                await msg.respond(reply)
            except Exception as exc:  # the caller is gone or the bus is down: nothing to do
                log.warning("rpc %s: reply not sent: %s", spec.subject, exc)

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=10)
