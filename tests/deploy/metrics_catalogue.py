"""What the alerts and dashboards name, and what the stack exports.

Both sides are sets of sample names with their label names:

- ``metric_names_from(expr)`` / ``selectors_from(expr)`` / ``output_labels(expr, ...)``
  read a PromQL expression with a real PromQL parser;
- a catalogue comes from Prometheus text exposition (``catalogue_from_exposition``): the
  scraped ``/metrics`` of a running stack, or here ``registry_exposition()`` (the code's own
  registries), the NATS exporter's metrics, and the names docs/ops-code-needs.md declares
  as pending (the code does not export them yet).

To check a running stack: ``MTE_SCRAPED_METRICS=http://127.0.0.1:8101/metrics,...
pytest tests/deploy/test_metrics.py`` (or a folder of saved ``/metrics`` texts): the
catalogue is then only what was scraped (plus the series Prometheus itself makes), nothing
pending.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

import promql_parser as pp
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OPS_CODE_NEEDS = ROOT / "docs" / "ops-code-needs.md"
EXPORTER_EXPOSITION = HERE / "prometheus-nats-exporter.prom"

# labels every scraped series gets from its target (Kubernetes adds pod and namespace)
TARGET_LABELS = frozenset({"job", "instance"})
# series Prometheus makes itself
PROMETHEUS_SERIES = '''up{job="",instance=""} 1
ALERTS{alertname="",alertstate="",severity=""} 1
'''
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
                     "$service": "tasks"}

Catalogue = dict[str, set[str]]


# ----------------------------------------------------------------- expressions

def substitute(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced by values Prometheus takes."""
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    return expr


def _walk(expr: pp.Expr) -> Iterable[pp.Expr]:
    yield expr
    if isinstance(expr, pp.AggregateExpr):
        yield from _walk(expr.expr)
        if expr.param is not None:
            yield from _walk(expr.param)
    elif isinstance(expr, pp.BinaryExpr):
        yield from _walk(expr.lhs)
        yield from _walk(expr.rhs)
    elif isinstance(expr, pp.Call):
        for arg in expr.args:
            yield from _walk(arg)
    elif isinstance(expr, pp.MatrixSelector):
        yield expr.vector_selector
    elif isinstance(expr, (pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr)):
        yield from _walk(expr.expr)


def _selector_name(vs: pp.VectorSelector) -> str | None:
    if vs.name:
        return vs.name
    for m in vs.matchers.matchers:
        if m.name == "__name__" and m.op == pp.MatchOp.Equal:
            return m.value
    return None


def selectors_from(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names its matchers use) of every selector in ``expr``."""
    out = []
    for node in _walk(pp.parse(substitute(expr))):
        if isinstance(node, pp.VectorSelector):
            name = _selector_name(node)
            if name is None:
                raise ValueError(f"a selector without a metric name in {expr!r}")
            out.append((name, {m.name for m in node.matchers.matchers} - {"__name__"}))
    return out


def metric_names_from(expr: str) -> set[str]:
    return {name for name, _ in selectors_from(expr)}


def grouping_labels_from(expr: str) -> set[str]:
    """Labels named in by/without/on/ignoring/group_left/group_right clauses."""
    out: set[str] = set()
    for node in _walk(pp.parse(substitute(expr))):
        if isinstance(node, pp.AggregateExpr) and node.modifier is not None:
            out |= set(node.modifier.labels)
        if isinstance(node, pp.BinaryExpr) and node.modifier is not None:
            if node.modifier.matching is not None:
                out |= set(node.modifier.matching.labels)
            out |= set(node.modifier.group_labels or [])
    return out


def labels_of(name: str, catalogue: Catalogue) -> set[str]:
    return catalogue.get(name, set()) | TARGET_LABELS


def output_labels(expr: str | pp.Expr, catalogue: Catalogue) -> set[str]:
    """The labels the series of ``expr``'s result carry (what a legend may name)."""
    node = pp.parse(substitute(expr)) if isinstance(expr, str) else expr
    if isinstance(node, pp.VectorSelector):
        return labels_of(_selector_name(node) or "", catalogue)
    if isinstance(node, pp.MatrixSelector):
        return output_labels(node.vector_selector, catalogue)
    if isinstance(node, (pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr)):
        return output_labels(node.expr, catalogue)
    if isinstance(node, (pp.NumberLiteral, pp.StringLiteral)):
        return set()
    if isinstance(node, pp.AggregateExpr):
        inner = output_labels(node.expr, catalogue)
        op = str(node.op)
        if node.modifier is None:
            return inner if op in ("topk", "bottomk", "limitk") else set()
        labels = set(node.modifier.labels)
        if node.modifier.type == pp.AggModifierType.By:
            return labels
        return inner - labels
    if isinstance(node, pp.Call):
        fn = node.func.name
        vectors = [a for a in node.args if not isinstance(a, (pp.NumberLiteral,
                                                              pp.StringLiteral))]
        if fn == "vector" or fn in ("time", "scalar"):
            return set()
        if fn == "absent" or fn == "absent_over_time":
            [arg] = node.args
            vs = arg if isinstance(arg, pp.VectorSelector) else arg.vector_selector
            return {m.name for m in vs.matchers.matchers
                    if m.op == pp.MatchOp.Equal and m.name != "__name__"}
        if fn == "histogram_quantile":
            return output_labels(vectors[-1], catalogue) - {"le"}
        if fn == "label_replace":
            return output_labels(node.args[0], catalogue) | {node.args[1].val}
        return output_labels(vectors[0], catalogue) if vectors else set()
    if isinstance(node, pp.BinaryExpr):
        lhs, rhs = output_labels(node.lhs, catalogue), output_labels(node.rhs, catalogue)
        op = str(node.op)
        if op == "or":
            return lhs | rhs
        if isinstance(node.lhs, pp.NumberLiteral):
            return rhs
        mod = node.modifier
        if mod is not None and mod.matching is not None and mod.group_labels:
            side = rhs if "OneToMany" in str(mod.card) else lhs
            return side | set(mod.group_labels)
        return lhs
    raise TypeError(f"unknown PromQL node {type(node).__name__}")


def legend_labels(legend: str) -> set[str]:
    return set(re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", legend or ""))


# ----------------------------------------------------------------- catalogues

def catalogue_from_exposition(text: str) -> Catalogue:
    """Sample name -> label names, from Prometheus text exposition."""
    out: Catalogue = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
        if not family.samples:  # HELP/TYPE without samples: at least the name
            out.setdefault(family.name, set())
    return out


def merge(*catalogues: Catalogue) -> Catalogue:
    out: Catalogue = {}
    for cat in catalogues:
        for name, labels in cat.items():
            out.setdefault(name, set()).update(labels)
    return out


SERVICES = ("tasks", "review", "ledger", "rules", "support")


def registry_exposition() -> str:
    """Text exposition of every metric the code declares, one sample per labelled metric
    (label values are placeholders: only the names matter here).

    A labelled metric that was never used has no sample in ``generate_latest``; its
    declaration (``_labelnames``) still says which labels it will carry.
    """
    from prometheus_client import REGISTRY

    logging.disable(logging.INFO)
    # Building a service needs a database URL; nothing connects while only its metrics
    # are declared, so a URL nobody listens on is enough.
    saved = dict(os.environ)
    for service in (*SERVICES, "gateway"):
        os.environ.setdefault(f"{service.upper()}_DATABASE_URL",
                              "postgresql+asyncpg://metrics@127.0.0.1:9/metrics")
    try:
        for service in SERVICES:
            importlib.import_module(f"{service}_service.main").create_service()
        importlib.import_module("gateway_service.main").create_gateway()
    finally:
        logging.disable(logging.NOTSET)
        os.environ.clear()
        os.environ.update(saved)
    lines: list[str] = []
    suffixes = {"counter": ["_total", "_created"], "gauge": [""], "summary": ["_count", "_sum"],
                "histogram": ["_bucket", "_count", "_sum", "_created"], "info": ["_info"]}
    for collector in list(REGISTRY._collector_to_names):
        labelnames = getattr(collector, "_labelnames", None)
        kind = getattr(collector, "_type", None)
        if labelnames is None or kind not in suffixes:
            for family in collector.collect():
                for s in family.samples:
                    labels = ",".join(f'{k}="x"' for k in s.labels)
                    lines.append(f"{s.name}{{{labels}}} 0")
            continue
        base = collector._name
        for suffix in suffixes[kind]:
            names = list(labelnames) + (["le"] if suffix == "_bucket" else [])
            labels = ",".join(f'{k}="x"' for k in names)
            lines.append(f"{base}{suffix}{{{labels}}} 0")
    return "\n".join(lines) + "\n"


def pending_exposition() -> str:
    """The ```prometheus blocks of docs/ops-code-needs.md: metrics the deploy files use that
    the code does not export yet."""
    text = OPS_CODE_NEEDS.read_text()
    return "\n".join(re.findall(r"```prometheus\n(.*?)```", text, flags=re.S))


def varz_metric_names(varz: dict, prefix: str = "gnatsd_varz") -> list[str]:
    """The names prometheus-nats-exporter gives the numbers of nats-server's /varz: nested
    objects flattened with ``_`` (collector.go, objectToMetrics)."""
    out = []
    for key, value in varz.items():
        name = f"{prefix}_{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out.append(name)
        elif isinstance(value, dict):
            out += varz_metric_names(value, name)
    return out


def exporter_exposition(varz: dict) -> str:
    """prometheus-nats-exporter's metrics: /varz names from a real nats-server's /varz,
    the JetStream and health metrics as its source declares them (the .prom file)."""
    lines = [f'{n}{{server_id="x"}} 0' for n in varz_metric_names(varz)]
    return EXPORTER_EXPOSITION.read_text() + "\n".join(lines) + "\n"


def scraped_exposition() -> str | None:
    """Text of a running stack's scrapes, when MTE_SCRAPED_METRICS names a file, a folder of
    saved /metrics texts, or comma-separated /metrics URLs (each target: the services'
    ops ports, the gateway's, each NATS exporter)."""
    where = os.environ.get("MTE_SCRAPED_METRICS")
    if not where:
        return None
    if where.startswith(("http://", "https://")):
        import urllib.request

        texts = []
        for url in where.split(","):
            with urllib.request.urlopen(url.strip(), timeout=10) as r:
                texts.append(r.read().decode())
        return "\n".join(texts)
    path = Path(where)
    files = sorted(path.glob("*")) if path.is_dir() else [path]
    return "\n".join(f.read_text() for f in files if f.is_file())


def load_json(path: Path) -> dict:
    return json.loads(path.read_text())
