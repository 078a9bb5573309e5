"""Every variable compose and Kubernetes set for a service is a setting that service reads.

pydantic-settings ignores unknown variables (``extra="ignore"``), so a misspelt
``LEDGER_STREAM_REPLCAS`` would silently leave a stream at one replica. Settings the deploy
files use before the code has them are listed in docs/ops-code-needs.md and here; once the
code has one, this test says to drop it from the list. When they all exist, each service is
started for real on the production NATS configuration with its own user.
"""

from __future__ import annotations

import asyncio
import importlib
import ssl

import pytest
from deploy_helpers import DEPLOY, ROOT, k8s_objects

from launcher.services import settings_class
from servicekit.settings import ServiceSettings

SERVICES = ("tasks", "review", "ledger", "rules", "support", "gateway")
# settings the deploy files set before the code has them (docs/ops-code-needs.md); none now
PENDING: set[str] = set()


def fields(service: str) -> frozenset[str]:
    return frozenset(settings_class(service).model_fields)


def compose_env(service: str) -> dict[str, str]:
    import yaml

    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"][service]["environment"]


def k8s_env(service: str) -> dict[str, object]:
    [dep] = [o for o in k8s_objects()
             if o["kind"] == "Deployment" and o["metadata"]["name"] == service]
    return {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}


def unread(service: str, env: dict) -> list[str]:
    """The variables of ``env`` that no setting of ``service`` reads."""
    prefix = f"{service.upper()}_"
    return [var for var in env if not var.startswith(prefix)
            or (var[len(prefix):].lower() not in fields(service)
                and var[len(prefix):].lower() not in PENDING)]


@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_is_a_setting(service: str) -> None:
    assert unread(service, compose_env(service)) == [], "compose"
    assert unread(service, k8s_env(service)) == [], "k8s"


def test_pending_settings_are_documented_and_not_yet_there() -> None:
    doc = (ROOT / "docs" / "ops-code-needs.md").read_text()
    for name in PENDING:
        assert f"`{name}`" in doc or f"{name.upper()}" in doc, f"{name} is not in ops-code-needs"
    have = set().union(*(fields(s) for s in SERVICES))
    assert not (PENDING & have), f"the code has them now, drop from PENDING: {PENDING & have}"


def test_a_misspelt_or_foreign_variable_is_caught() -> None:
    env = {**compose_env("ledger"), "LEDGER_STREAM_REPLCAS": "3", "TASKS_HTTP_PORT": "1"}
    assert unread("ledger", env) == ["LEDGER_STREAM_REPLCAS", "TASKS_HTTP_PORT"]


READY = {"nats_user", "nats_password", "nats_tls_ca_file", "nats_inbox_prefix",
         "ensure_streams"} <= set(ServiceSettings.model_fields)


@pytest.mark.skipif(not READY, reason="pending: NATS settings (docs/ops-code-needs.md 3, 4)")
@pytest.mark.parametrize("service", ["ledger", "gateway"])
async def test_a_service_starts_on_the_production_bus_as_its_own_user(
        service: str, nats_cluster, databases, monkeypatch) -> None:
    """The compose environment of the service, pointed at the loopback cluster and a fresh
    database: it starts, is ready, and its consumers and RPCs work under its permissions."""
    import nats

    from servicekit.migrations import upgrade
    from servicekit.streams import ensure_bus

    prov = await nats.connect(nats_cluster.urls(), user="provisioner",
                              password=nats_cluster.passwords["provisioner"],
                              tls=ssl.create_default_context(
                                  cafile=str(nats_cluster.tls / "ca.crt")),
                              inbox_prefix="_INBOX_provisioner")
    await ensure_bus(prov.jetstream(), replicas=3, buckets={"gateway_emergency": 16})
    await prov.close()
    url = await databases.new(f"mte_deploy_{service}")
    await asyncio.to_thread(upgrade, ROOT / "services" / service, url)
    p = service.upper()
    for var, value in compose_env(service).items():
        if "${" not in str(value):  # values compose takes from deploy/.env are set below
            monkeypatch.setenv(var, str(value))
    monkeypatch.setenv(f"{p}_ENVIRONMENT", "test")
    monkeypatch.setenv(f"{p}_DATABASE_URL", url)
    monkeypatch.setenv(f"{p}_NATS_URL", ",".join(nats_cluster.urls()))
    monkeypatch.setenv(f"{p}_NATS_PASSWORD", nats_cluster.passwords[service])
    monkeypatch.setenv(f"{p}_NATS_TLS_CA_FILE", str(nats_cluster.tls / "ca.crt"))
    monkeypatch.setenv(f"{p}_HTTP_PORT", "0")
    main = importlib.import_module(f"{service}_service.main")
    if service == "gateway":
        gw = main.create_gateway()
        await gw.start()
        try:
            assert all(v == "ok" for v in (await gw.svc.readiness()).values())
        finally:
            await gw.stop()
    else:
        svc = main.create_service()
        await svc.start()
        try:
            assert all(v == "ok" for v in (await svc.readiness()).values())
        finally:
            await svc.stop()
