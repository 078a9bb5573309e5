"""Structured logs with trace ids, OpenTelemetry tracing, the Prometheus registry."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased

_PROVIDERS: dict[str, TracerProvider] = {}


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
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(service: str, *, level: str = "INFO", json_logs: bool = True) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_servicekit", False) for h in root.handlers):
        return
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
