"""Render the Grafana dashboards of deploy/grafana/dashboards from short panel lists.

    python3 deploy/grafana/render_dashboards.py

Three dashboards: the platform overview (task flow, money, support), bus health (streams,
consumers, DLQ, outboxes, NATS nodes) and per-service RED (rate, errors, duration of the
gateway's HTTP API and of each service's RPCs). tests/deploy/test_grafana.py fails when the
committed JSON differs from this output, and checks every expression and legend against
the metrics the stack exports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}  # provisioning/datasources
RATE = "$__rate_interval"


@dataclass
class Panel:
    title: str
    targets: list[tuple[str, str]]  # (expr, legendFormat)
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    description: str = ""
    stack: bool = False


@dataclass
class Row:
    title: str
    panels: list[Panel] = field(default_factory=list)


def ts(title: str, *targets: tuple[str, str], unit: str = "short", **kw: object) -> Panel:
    return Panel(title, list(targets), unit=unit, **kw)  # type: ignore[arg-type]


def stat(title: str, expr: str, *, unit: str = "short", legend: str = "",
         description: str = "") -> Panel:
    return Panel(title, [(expr, legend)], unit=unit, kind="stat", width=6, height=4,
                 description=description)


def panel_json(p: Panel, pid: int, x: int, y: int) -> dict:
    out: dict = {
        "id": pid, "type": p.kind, "title": p.title, "datasource": DATASOURCE,
        "gridPos": {"h": p.height, "w": p.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr,
                     "legendFormat": legend or "__auto", "range": p.kind == "timeseries",
                     "instant": p.kind == "stat"}
                    for i, (expr, legend) in enumerate(p.targets)],
    }
    if p.description:
        out["description"] = p.description
    if p.kind == "timeseries":
        out["options"] = {"legend": {"displayMode": "list", "placement": "bottom",
                                     "showLegend": True},
                          "tooltip": {"mode": "multi", "sort": "desc"}}
        if p.stack:
            out["fieldConfig"]["defaults"]["custom"] = {"stacking": {"mode": "normal"}}
    else:
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                            "values": False},
                          "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    return out


def dashboard(uid: str, title: str, rows: list[Row], *, tags: list[str],
              templating: list[dict] | None = None, description: str = "") -> dict:
    panels: list[dict] = []
    pid, y = 1, 0
    for row in rows:
        panels.append({"id": pid, "type": "row", "title": row.title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid, y = pid + 1, y + 1
        x, line_height = 0, 0
        for p in row.panels:
            if x + p.width > 24:
                x, y = 0, y + line_height
                line_height = 0
            panels.append(panel_json(p, pid, x, y))
            pid, x, line_height = pid + 1, x + p.width, max(line_height, p.height)
        y += line_height
    return {"uid": uid, "title": title, "description": description, "tags": tags,
            "timezone": "browser", "schemaVersion": 39, "version": 1, "editable": False,
            "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": templating or []}, "annotations": {"list": []},
            "panels": panels}


# The first dead letter of a consumer creates its counter's series: count it too.
DEAD_LETTERED_15M = ("sum by (service, consumer) (increase(servicekit_dead_lettered_total[15m])"
                     " or (servicekit_dead_lettered_total unless"
                     " servicekit_dead_lettered_total offset 15m))")


def platform_overview() -> dict:
    rows = [
        Row("Now", [
            stat("Emergency read-only mode", "max(gateway_emergency_read_only)",
                 description="1 while an admin has frozen every client write"),
            stat("Dead letters in the DLQ",
                 'max(jetstream_stream_total_messages{stream_name="DLQ"})'),
            stat("Money dead letters (24h)",
                 'sum(increase(servicekit_dead_lettered_total{service="ledger"}[24h]))'),
            stat("Services up", 'count(up{job=~"tasks|review|ledger|rules|support|gateway"} == 1)'),
        ]),
        Row("Task flow", [
            ts("Task events per second",
               ('sum by (type) (rate(servicekit_events_recorded_total{service="tasks"}'
                f'[{RATE}]))', "{{type}}"), unit="ops", stack=True),
            ts("Review decisions per second",
               (f"sum by (decision, decided_by_kind) (rate(review_decisions_total[{RATE}]))",
                "{{decision}} by {{decided_by_kind}}"), unit="ops", stack=True),
            ts("Submissions entering review per second",
               (f"sum by (review_mode) (rate(review_submissions_received_total[{RATE}]))",
                "{{review_mode}}"), unit="ops"),
            ts("Quality-control actions per second",
               ('sum by (type) (rate(servicekit_events_recorded_total{service="rules"}'
                f'[{RATE}]))', "{{type}}"), unit="ops"),
        ]),
        Row("Money", [
            ts("Credited per hour (minor units)",
               ("sum by (currency, party) (increase(ledger_credited_minor_total[1h]))",
                "{{party}} {{currency}}"),
               description="worker share and platform revenue booked on acceptances and bonuses"),
            ts("Payouts per hour",
               ("sum by (outcome) (increase(ledger_payouts_total[1h]))", "{{outcome}}")),
        ]),
        Row("Support and accounts", [
            ts("Tickets created per hour",
               ('sum(increase(servicekit_events_recorded_total{type="support.ticket.created"}'
                '[1h]))', "tickets")),
            ts("Logins per second",
               (f"sum by (result) (rate(gateway_logins_total[{RATE}]))", "{{result}}"),
               unit="ops"),
        ]),
    ]
    return dashboard("microtask-overview", "Microtask Engine: platform overview", rows,
                     tags=["microtask"],
                     description="Task flow, money and support at a glance")


def bus_health() -> dict:
    no_kv = 'stream_name!~"KV_.*"'
    rows = [
        Row("Dead letters", [
            stat("In the DLQ", 'max(jetstream_stream_total_messages{stream_name="DLQ"})'),
            stat("NATS nodes healthy", "count(gnatsd_healthz_status_value == 1)"),
            stat("Outbox rows waiting", "sum(max by (service) (servicekit_outbox_backlog))"),
            stat("Oldest unpublished event",
                 "max(servicekit_outbox_lag_seconds)", unit="s"),
            ts("Dead-lettered in the last 15 minutes", (DEAD_LETTERED_15M,
                                                        "{{service}}/{{consumer}}")),
            ts("Events handled per second",
               (f"sum by (service, outcome) (rate(servicekit_events_consumed_total[{RATE}]))",
                "{{service}} {{outcome}}"), unit="ops"),
        ]),
        Row("Streams", [
            ts("Messages per stream",
               ("max by (stream_name) (jetstream_stream_total_messages)", "{{stream_name}}")),
            ts("Bytes per stream",
               ("max by (stream_name) (jetstream_stream_total_bytes)", "{{stream_name}}"),
               unit="bytes"),
            ts("Replicas reporting each stream",
               ("count by (stream_name) (jetstream_stream_total_messages)", "{{stream_name}}"),
               description="3 on a healthy cluster: fewer is a lost replica"),
        ]),
        Row("Consumers", [
            ts("Pending (not yet delivered)",
               (f"max by (consumer_name) (jetstream_consumer_num_pending{{{no_kv}}})",
                "{{consumer_name}}")),
            ts("Delivered, not yet acknowledged",
               (f"max by (consumer_name) (jetstream_consumer_num_ack_pending{{{no_kv}}})",
                "{{consumer_name}}")),
            ts("Redelivered",
               (f"max by (consumer_name) (jetstream_consumer_num_redelivered{{{no_kv}}})",
                "{{consumer_name}}")),
            ts("Event handling p99",
               ("histogram_quantile(0.99, sum by (le, service, consumer) "
                "(rate(servicekit_event_handle_seconds_bucket[5m])))",
                "{{service}}/{{consumer}}"), unit="s"),
        ]),
        Row("Outboxes", [
            ts("Rows waiting", ("max by (service) (servicekit_outbox_backlog)", "{{service}}")),
            ts("Age of the oldest unpublished row",
               ("max by (service) (servicekit_outbox_lag_seconds)", "{{service}}"), unit="s"),
            ts("Published per second",
               (f"sum by (service) (rate(servicekit_outbox_published_total[{RATE}]))",
                "{{service}}"), unit="ops"),
            ts("Publish errors per second",
               (f"sum by (service) (rate(servicekit_outbox_publish_errors_total[{RATE}]))",
                "{{service}}"), unit="ops"),
        ]),
        Row("NATS nodes", [
            ts("Health", ("gnatsd_healthz_status_value", "{{server_id}} {{value}}")),
            ts("Client connections", ("gnatsd_varz_connections", "{{server_id}}")),
            ts("Messages in per second",
               (f"rate(gnatsd_varz_in_msgs[{RATE}])", "{{server_id}}"), unit="ops"),
            ts("JetStream storage used",
               ("gnatsd_varz_jetstream_stats_storage / gnatsd_varz_jetstream_config_max_storage",
                "{{server_id}}"), unit="percentunit"),
            ts("Slow consumers (1h)",
               ("increase(gnatsd_varz_slow_consumers[1h])", "{{server_id}}")),
        ]),
    ]
    return dashboard("microtask-bus", "Microtask Engine: bus health", rows,
                     tags=["microtask", "nats"],
                     description="Streams, consumers, dead letters, outboxes and NATS nodes")


def service_red() -> dict:
    svc = 'service=~"$service"'
    rows = [
        Row("Gateway HTTP API", [
            ts("Requests per second by status",
               (f"sum by (status) (rate(gateway_http_requests_total[{RATE}]))", "{{status}}"),
               unit="reqps", stack=True),
            ts("Server-error ratio",
               (f'sum(rate(gateway_http_requests_total{{status="5xx"}}[{RATE}])) / '
                f"sum(rate(gateway_http_requests_total[{RATE}]))", "5xx"),
               unit="percentunit"),
            ts("Latency p50 and p99",
               ("histogram_quantile(0.5, sum by (le) "
                "(rate(gateway_http_request_duration_seconds_bucket[5m])))", "p50"),
               ("histogram_quantile(0.99, sum by (le) "
                "(rate(gateway_http_request_duration_seconds_bucket[5m])))", "p99"), unit="s"),
            ts("Slowest routes (p99)",
               ("topk(10, histogram_quantile(0.99, sum by (le, method, route) "
                "(rate(gateway_http_request_duration_seconds_bucket[5m]))))",
                "{{method}} {{route}}"), unit="s"),
        ]),
        Row("Service RPCs ($service)", [
            ts("RPCs per second",
               (f"sum by (service, outcome) (rate(servicekit_rpc_requests_total{{{svc}}}[{RATE}]))",
                "{{service}} {{outcome}}"), unit="reqps"),
            ts("Answered with an error (ratio)",
               (f'sum by (service) (rate(servicekit_rpc_requests_total{{{svc}, outcome="error"}}'
                f"[{RATE}])) / sum by (service) (rate(servicekit_rpc_requests_total{{{svc}}}"
                f"[{RATE}]))", "{{service}}"), unit="percentunit",
               description="includes refusals a caller asked for (not found, conflict)"),
            ts("RPC p99",
               (f"histogram_quantile(0.99, sum by (le, service) "
                f"(rate(servicekit_rpc_seconds_bucket{{{svc}}}[5m])))", "{{service}}"),
               unit="s"),
            ts("Slowest RPCs (p99)",
               (f"topk(10, histogram_quantile(0.99, sum by (le, rpc) "
                f"(rate(servicekit_rpc_seconds_bucket{{{svc}}}[5m]))))", "{{rpc}}"), unit="s"),
        ]),
        Row("Processes ($service)", [
            ts("Targets up", ('up{job=~"$service"}', "{{instance}}")),
            ts("Readiness checks", (f"min by (service, check) (servicekit_ready{{{svc}}})",
                                    "{{service}} {{check}}")),
            ts("Resident memory",
               ('process_resident_memory_bytes{job=~"$service"}', "{{job}} {{instance}}"),
               unit="bytes"),
            ts("CPU", (f'rate(process_cpu_seconds_total{{job=~"$service"}}[{RATE}])',
                       "{{job}} {{instance}}"), unit="percentunit"),
        ]),
    ]
    service_var = {
        "name": "service", "label": "service", "type": "query", "datasource": DATASOURCE,
        "query": {"query": "label_values(servicekit_rpc_requests_total, service)",
                  "refId": "service"},
        "definition": "label_values(servicekit_rpc_requests_total, service)",
        "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }
    return dashboard("microtask-red", "Microtask Engine: service RED", rows,
                     tags=["microtask", "red"], templating=[service_var],
                     description=("Rate, errors and duration of the HTTP API and each "
                                  "service's RPCs"))


DASHBOARDS = {"platform-overview.json": platform_overview, "bus-health.json": bus_health,
              "service-red.json": service_red}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
