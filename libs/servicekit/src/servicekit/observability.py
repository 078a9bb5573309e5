"""Structured logs with trace ids, OpenTelemetry tracing, the Prometheus registry.

With JSON on, every line of the process is one JSON object (``ts``, ``level``, ``service``,
``logger``, ``msg``, ``trace_id``, ``span_id``, ``request_id`` while a request is handled,
plus the ``fields`` a record carries), uvicorn's loggers included; NATS connection trouble
(disconnects, reconnects, errors) is one WARNING line without a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased

_PROVIDERS: dict[str, TracerProvider] = {}

# The id of the HTTP request being handled (the gateway sets it), in every log line of it.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# Loggers that bring their own handlers (uvicorn's coloured ones): sent through ours.
FOREIGN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "faststream")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            out["trace_id"] = format(span.trace_id, "032x")
            out["span_id"] = format(span.span_id, "016x")
        request_id = REQUEST_ID.get()
        if request_id is not None:
            out["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(service: str, *, level: str = "INFO", json_logs: bool = True) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_servicekit", False) for h in root.handlers):
        return
    # No line shows a thread, process or caller: skip collecting them for every record (the
    # logging HOWTO's "Optimization"; the gateway logs a line per request).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    handler._servicekit = True  # type: ignore[attr-defined]
    if json_logs:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s "
                                               "%(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("nats").setLevel("WARNING")
    for name in FOREIGN_LOGGERS:
        route_to_root(name)


def route_to_root(name: str) -> None:
    """Send logger ``name`` through the root's handler (one format for every line)."""
    logger = logging.getLogger(name)
    for h in list(logger.handlers):
        logger.removeHandler(h)
    logger.propagate = True


def nats_callbacks(service: str) -> dict[str, Callable[..., Awaitable[None]]]:
    """``nats.connect`` callbacks: connection trouble at WARNING, one line, no traceback
    (nats-py's default logs every failed attempt at ERROR with a traceback). A drop
    shows as its error (e.g. ``UnexpectedEOF``), then one line per failed attempt, then
    "reconnected"."""
    log = logging.getLogger("servicekit.nats")

    async def error_cb(exc: Exception) -> None:
        log.warning("%s: nats: %s: %s", service, type(exc).__name__, exc)

    async def reconnected_cb() -> None:
        log.warning("%s: nats: reconnected", service)

    return {"error_cb": error_cb, "reconnected_cb": reconnected_cb}


def uvicorn_log_options() -> dict[str, Any]:
    """``uvicorn.run`` options that keep uvicorn from installing its own (coloured)
    handlers: its loggers propagate to the root handler set up above."""
    return {"log_config": None, "log_level": "warning", "use_colors": False}


# FastAPI's own OpenTelemetry layer, off in every app: the gateway's middleware opens the one
# SERVER span per request (joining only a trusted proxy's trace, decision 30) and counts the
# RED metrics; FastAPI's layer would join any client's ``traceparent``, record when that
# trace is sampled, and open spans around every dependency, endpoint and serialization
# (about a tenth of the gateway's CPU, profiled).
FASTAPI_TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False,
                                          "operation_spans": False}


def setup_telemetry(service: str, *, otlp_endpoint: str | None = None,
                    sample_ratio: float = 1.0) -> TracerProvider:
    """One tracer provider per service; OTLP export only when an endpoint is set.

    Without an exporter, root spans are not recorded (nothing would read them, and
    recording costs CPU on every request and message), but they still get trace and
    span ids: logs carry them and ``traceparent`` still travels with every event.
    """
    if service in _PROVIDERS:
        return _PROVIDERS[service]
    sampler = ParentBased(TraceIdRatioBased(sample_ratio) if otlp_endpoint else ALWAYS_OFF)
    provider = TracerProvider(resource=Resource.create({"service.name": service}),
                              sampler=sampler)
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)
    _PROVIDERS[service] = provider
    return provider
