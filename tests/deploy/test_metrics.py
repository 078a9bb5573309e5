"""Every metric and label an alert or a dashboard names is one the stack exports.

Here the stack is the code's own registries (imported, not run), the NATS exporter's
metrics (its /varz names from a real nats-server) and the names docs/ops-code-needs.md
declares pending. Against a running stack: MTE_SCRAPED_METRICS=<folder of /metrics texts>
(see metrics_catalogue.py); pending names then count as missing.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
import yaml
from deploy_helpers import DEPLOY
from metrics_catalogue import (
    PROMETHEUS_SERIES,
    Catalogue,
    catalogue_from_exposition,
    exporter_exposition,
    grouping_labels_from,
    labels_of,
    legend_labels,
    merge,
    metric_names_from,
    output_labels,
    pending_exposition,
    registry_exposition,
    scraped_exposition,
    selectors_from,
)

from servicekit.testing.natsserver import NatsServer


def alert_exprs() -> list[tuple[str, str]]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [(r["alert"], r["expr"]) for g in doc["groups"] for r in g["rules"]]


def dashboard_targets() -> list[tuple[str, str, str]]:
    """(where, expr, legendFormat) of every dashboard query, template variables included."""
    out = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        dash = json.loads(path.read_text())
        for panel in dash["panels"]:
            for t in panel.get("targets", []):
                out.append((f"{path.name}: {panel['title']}", t["expr"], t.get("legendFormat", "")))
        for var in dash.get("templating", {}).get("list", []):
            q = var.get("definition", "")
            if q.startswith("label_values("):
                metric, label = [s.strip() for s in q[len("label_values("):-1].split(",")]
                out.append((f"{path.name}: ${var['name']}", f"{metric}", f"{{{{{label}}}}}"))
    return out


@pytest.fixture(scope="module")
def varz(tmp_path_factory: pytest.TempPathFactory) -> dict:
    server = NatsServer(tmp_path_factory.mktemp("varz"))
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.monitor_port}/varz") as r:
            return json.loads(r.read())
    finally:
        server.stop()


@pytest.fixture(scope="module")
def code_catalogue() -> Catalogue:
    return catalogue_from_exposition(registry_exposition())


@pytest.fixture(scope="module")
def pending() -> Catalogue:
    return catalogue_from_exposition(pending_exposition())


@pytest.fixture(scope="module")
def catalogue(code_catalogue: Catalogue, pending: Catalogue, varz: dict) -> Catalogue:
    scraped = scraped_exposition()
    prometheus = catalogue_from_exposition(PROMETHEUS_SERIES)
    if scraped is not None:
        return merge(catalogue_from_exposition(scraped), prometheus)
    return merge(code_catalogue, pending, catalogue_from_exposition(exporter_exposition(varz)),
                 prometheus)


EXPRESSIONS = [(f"alert {n}", e, "") for n, e in alert_exprs()] + dashboard_targets()


@pytest.mark.parametrize(("where", "expr", "legend"), EXPRESSIONS,
                         ids=[w for w, _, _ in EXPRESSIONS])
def test_named_metrics_and_labels_are_exported(where: str, expr: str, legend: str,
                                               catalogue: Catalogue) -> None:
    for name, labels in selectors_from(expr):
        assert name in catalogue, f"{where}: no metric {name}"
        assert labels <= labels_of(name, catalogue), (
            f"{where}: {name} has no label(s) {sorted(labels - labels_of(name, catalogue))}")
    known = set().union(*(labels_of(n, catalogue) for n in metric_names_from(expr)))
    assert grouping_labels_from(expr) <= known, f"{where}: grouping by a label none has"
    missing = legend_labels(legend) - output_labels(expr, catalogue)
    assert not missing, f"{where}: the legend names {sorted(missing)}, absent from the result"


def test_pending_metrics_are_not_yet_exported(code_catalogue: Catalogue,
                                              pending: Catalogue) -> None:
    """Once the code exports a pending metric, delete it from docs/ops-code-needs.md."""
    done = sorted(set(pending) & set(code_catalogue))
    assert not done, f"exported now, remove from the pending list: {done}"


def test_the_catalogue_tells_a_wrong_name_and_a_wrong_label(catalogue: Catalogue) -> None:
    """The check above can fail: a typo in a name or a label is caught."""
    assert "servicekit_dead_letered_total" not in catalogue
    assert "consumer" in labels_of("servicekit_dead_lettered_total", catalogue)
    assert "app_name" not in labels_of("servicekit_events_consumed_total", catalogue)
    assert output_labels("sum by (app_name) (rate(servicekit_events_consumed_total[1m]))",
                         catalogue) == {"app_name"}
    assert "service" not in output_labels(
        "sum by (app_name) (rate(servicekit_events_consumed_total[1m]))", catalogue)
    assert output_labels("histogram_quantile(0.99, sum by (le, rpc) "
                         "(rate(servicekit_rpc_seconds_bucket[5m])))", catalogue) == {"rpc"}


def test_exporter_varz_names_come_from_a_real_server(varz: dict) -> None:
    from metrics_catalogue import varz_metric_names

    names = set(varz_metric_names(varz))
    for used in ("gnatsd_varz_connections", "gnatsd_varz_slow_consumers",
                 "gnatsd_varz_in_msgs", "gnatsd_varz_jetstream_stats_storage",
                 "gnatsd_varz_jetstream_config_max_storage"):
        assert used in names


