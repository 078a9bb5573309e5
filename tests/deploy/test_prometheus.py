"""Alerts that fire: promtool checks and unit-tests every rule (Prometheus's own parser and
evaluator), each alert has a firing and a silent case, and a runbook section."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_helpers import DEPLOY, ROOT

PROM = DEPLOY / "prometheus"
SEVERITIES = {"page", "ticket"}


def alert_rules() -> list[dict]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def run(*args: str, cwd: Path = PROM) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60)


def github_anchors(markdown: str) -> set[str]:
    """The fragment GitHub gives each heading: lower case, punctuation dropped, spaces to -."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


def test_promtool_checks_the_rules(promtool: str) -> None:
    got = run(promtool, "check", "rules", "alerts.yml")
    assert got.returncode == 0, got.stdout + got.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in got.stdout


def test_promtool_checks_the_prometheus_config(promtool: str) -> None:
    got = run(promtool, "check", "config", "prometheus.yml")
    assert got.returncode == 0, got.stdout + got.stderr


def test_every_alert_fires_on_its_case_and_stays_silent_otherwise(promtool: str) -> None:
    got = run(promtool, "test", "rules", "alerts.test.yml")
    assert got.returncode == 0, got.stdout + got.stderr
    assert "SUCCESS" in got.stdout


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    tests = yaml.safe_load((PROM / "alerts.test.yml").read_text())["tests"]
    firing: set[str] = set()
    silent: set[str] = set()
    for t in tests:
        for case in t.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names - firing == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent"
    assert (firing | silent) - names == set(), "tests of alerts that do not exist"


def test_the_first_dead_letter_needs_the_new_series_pattern(promtool: str,
                                                            tmp_path: Path) -> None:
    """The bug of issue 12: increase() alone misses a counter's first increment. The same
    unit tests against the old expression must fail on exactly that case."""
    text = (PROM / "alerts.yml").read_text()
    old = ("sum by (service, consumer) (increase(servicekit_dead_lettered_total[15m])) > 0")
    start = text.index("      - alert: DeadLettersArriving")
    end = text.index("      - alert: MoneyDeadLettered")
    block = text[start:end]
    expr = re.search(r"expr: >-\n(.*?)\n        labels", block, flags=re.S)
    assert expr, "DeadLettersArriving lost its expression"
    mutated = text[:start] + block.replace(expr.group(1), f"          {old}") + text[end:]
    (tmp_path / "alerts.yml").write_text(mutated)
    shutil.copy(PROM / "alerts.test.yml", tmp_path / "alerts.test.yml")
    got = run(promtool, "test", "rules", "alerts.test.yml", cwd=tmp_path)
    report = got.stdout + got.stderr
    assert got.returncode != 0
    failed = set(re.findall(r"name: (.*?),\s*\n\s*alertname: (\w+)", report))
    assert failed == {("the first dead letter of a counter that had no series before",
                       "DeadLettersArriving")}, report


def test_every_alert_is_labelled_and_has_a_runbook_section() -> None:
    anchors = github_anchors((ROOT / "docs" / "runbooks.md").read_text())
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        ann = rule["annotations"]
        assert ann.get("summary") and ann.get("description"), name
        url = ann["runbook_url"]
        path, _, fragment = url.partition("#")
        assert path == "docs/runbooks.md", f"{name}: {url}"
        assert fragment in anchors, f"{name}: no section #{fragment} in docs/runbooks.md"


def test_alertmanager_config_is_valid_and_routes_every_severity(amtool: str) -> None:
    path = DEPLOY / "alertmanager" / "alertmanager.yml"
    got = run(amtool, "check-config", str(path))
    assert got.returncode == 0, got.stdout + got.stderr
    cfg = yaml.safe_load(path.read_text())
    receivers = {r["name"] for r in cfg["receivers"]}
    routed = {cfg["route"]["receiver"]} | {r["receiver"] for r in cfg["route"]["routes"]}
    assert routed <= receivers
    assert any('severity="page"' in m for r in cfg["route"]["routes"] for m in r["matchers"])
    alerts = {r["alert"] for r in alert_rules()}
    for rule in cfg.get("inhibit_rules", []):
        for m in rule["source_matchers"] + rule["target_matchers"]:
            for name in re.findall(r"[A-Z][A-Za-z]+", m.split("=", 1)[1]):
                assert name in alerts, f"inhibit rule names unknown alert {name}"


@pytest.mark.parametrize("job", ["tasks", "review", "ledger", "rules", "support", "gateway",
                                 "nats"])
def test_every_job_the_alerts_expect_is_scraped(job: str) -> None:
    cfg = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert job in {s["job_name"] for s in cfg["scrape_configs"]}
