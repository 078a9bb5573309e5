"""Dashboards that load: provisioned from the repository at the paths compose mounts, one
datasource uid everywhere, panels laid out on Grafana's 24-column grid, and every query
accepted by Prometheus's own parser (promtool)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from deploy_helpers import DEPLOY
from metrics_catalogue import substitute

GRAFANA = DEPLOY / "grafana"
sys.path.insert(0, str(GRAFANA))
import render_dashboards  # noqa: E402


def dashboards() -> dict[str, dict]:
    paths = sorted((GRAFANA / "dashboards").glob("*.json"))
    return {p.name: json.loads(p.read_text()) for p in paths}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_dashboards_are_rendered_from_their_source() -> None:
    rendered = render_dashboards.render()
    committed = {p.name: p.read_text() for p in (GRAFANA / "dashboards").glob("*.json")}
    assert committed == rendered, "run: python3 deploy/grafana/render_dashboards.py"


def test_provisioning_matches_what_compose_mounts() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = {}
    for v in grafana["volumes"]:
        src, dst = v.split(":")[:2]
        mounts[src] = dst
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "microtask.yml")
                              .read_text())["providers"][0]
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    [ds] = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
                          .read_text())["datasources"]
    assert ds["type"] == "prometheus" and ds["uid"] == render_dashboards.DATASOURCE["uid"]
    host_port = ds["url"].removeprefix("http://")
    host, port = host_port.split(":")
    assert host in compose()["services"], f"no compose service {host} for the datasource"
    assert port == "9090"


def test_the_three_dashboards_and_their_sections() -> None:
    dash = dashboards()
    assert set(dash) == {"platform-overview.json", "bus-health.json", "service-red.json"}
    rows = {name: {p["title"] for p in d["panels"] if p["type"] == "row"}
            for name, d in dash.items()}
    assert {"Task flow", "Money", "Support and accounts"} <= rows["platform-overview.json"]
    assert {"Dead letters", "Streams", "Consumers"} <= rows["bus-health.json"]
    assert {"Gateway HTTP API"} <= rows["service-red.json"]
    assert [v["name"] for v in dash["service-red.json"]["templating"]["list"]] == ["service"]
    assert len({d["uid"] for d in dash.values()}) == len(dash)


def test_panels_fit_the_grid_without_overlapping() -> None:
    for name, dash in dashboards().items():
        ids, cells = set(), set()
        for p in dash["panels"]:
            assert p["id"] not in ids, f"{name}: duplicate panel id {p['id']}"
            ids.add(p["id"])
            g = p["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24, f"{name}: {p['title']} off the grid"
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{name}: {p['title']} overlaps"
                    cells.add((x, y))


def test_every_query_uses_the_provisioned_datasource() -> None:
    uid = render_dashboards.DATASOURCE["uid"]
    for name, dash in dashboards().items():
        for p in dash["panels"]:
            if p["type"] == "row":
                continue
            assert p["datasource"]["uid"] == uid, f"{name}: {p['title']}"
            refs = [t["refId"] for t in p["targets"]]
            assert p["targets"] and len(refs) == len(set(refs)), f"{name}: {p['title']}"
            for t in p["targets"]:
                assert t["datasource"]["uid"] == uid and t["expr"].strip()


def test_prometheus_parses_every_dashboard_query(promtool: str, tmp_path: Path) -> None:
    """Each query as a recording rule, so promtool parses it exactly as Prometheus will."""
    rules = []
    for dash in dashboards().values():
        for p in dash["panels"]:
            for t in p.get("targets", []):
                rules.append({"record": f"dashboard:query:{len(rules)}",
                              "expr": substitute(t["expr"])})
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(
        {"groups": [{"name": "dashboard-queries", "rules": rules}]}))
    got = subprocess.run([promtool, "check", "rules", "queries.yml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stdout + got.stderr
    assert f"SUCCESS: {len(rules)} rules found" in got.stdout
