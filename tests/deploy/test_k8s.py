"""The Kubernetes set (deploy/k8s): strictly valid against the API schemas of an older and
the newest supported Kubernetes, and holding what issue 12 asks: a 3-node NATS StatefulSet,
Secrets with every key the pods read, PodDisruptionBudgets, probes and resources, and one
migration Job per service (no replica ever migrates)."""

from __future__ import annotations

import re
import sys

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import DEPLOY, ROOT, k8s_objects, load_yaml_docs
from pydantic import SecretStr

from launcher.services import settings_class

sys.path.insert(0, str(DEPLOY / "k8s"))
import render

SERVICES = ("tasks", "review", "ledger", "rules", "support", "gateway")
VERSIONS = ("1.30.0", "1.37.0")


def by_kind(kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == kind}


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def containers(obj: dict) -> list[dict]:
    spec = pod_spec(obj)
    return spec.get("initContainers", []) + spec["containers"]


def test_the_set_is_rendered_from_its_source() -> None:
    for name, text in render.render().items():
        assert (DEPLOY / "k8s" / name).read_text() == text, \
            f"deploy/k8s/{name} is stale: run python3 deploy/k8s/render.py"


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_validates_strictly(version: str) -> None:
    objects = k8s_objects()
    assert len(objects) > 20
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_refuses_an_unknown_field() -> None:
    job = by_kind("Job")["migrate-ledger"]
    broken = yaml.safe_load(yaml.safe_dump(job))
    broken["spec"]["template"]["spec"]["containers"][0]["restartPolicy"] = "Never"
    broken["spec"]["template"]["spec"]["containers"][0]["comand"] = ["x"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_one_migration_job_per_service_and_no_replica_migrates() -> None:
    upgrades: dict[str, list[str]] = {}
    for obj in k8s_objects():
        if obj["kind"] not in ("Job", "Deployment", "StatefulSet"):
            continue
        for c in containers(obj):
            cmd = c.get("command", [])
            if cmd[:4] == ["python", "-m", "servicekit.migrations", "upgrade"]:
                assert obj["kind"] == "Job", f"{obj['metadata']['name']} migrates"
                upgrades.setdefault(cmd[4], []).append(obj["metadata"]["name"])
    assert upgrades == {s: [f"migrate-{s}"] for s in SERVICES}
    jobs, deployments = by_kind("Job"), by_kind("Deployment")
    for s in SERVICES:
        job, dep = jobs[f"migrate-{s}"], deployments[s]
        assert containers(job)[0]["image"] == pod_spec(dep)["containers"][0]["image"]
        [wait] = pod_spec(dep)["initContainers"]
        assert wait["command"][:5] == ["python", "-m", "servicekit.migrations", "wait", s]
        assert wait["image"] == pod_spec(dep)["containers"][0]["image"]
        env = {e["name"]: e for e in pod_spec(dep)["containers"][0]["env"]}
        assert env.get("GATEWAY_MIGRATE_ON_START", {"value": "false"})["value"] == "false"


def test_nats_is_a_three_node_statefulset_that_keeps_its_quorum() -> None:
    sts = by_kind("StatefulSet")["nats"]
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == "nats"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    svc = by_kind("Service")["nats"]
    assert svc["spec"]["clusterIP"] == "None"  # nats-N.nats, the names in the routes
    assert by_kind("PodDisruptionBudget")["nats"]["spec"]["maxUnavailable"] == 1
    anti = pod_spec(sts)["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"]
    names = {c["name"]: c for c in pod_spec(sts)["containers"]}
    assert set(names) == {"nats", "exporter"}
    assert names["exporter"]["args"][-1] == "http://localhost:8222"
    env = {e["name"] for e in names["nats"]["env"]}
    needed = set(re.findall(r"\$(NATS_\w+_PASSWORD)", (DEPLOY / "nats" / "auth.conf").read_text()))
    assert needed and needed <= env
    assert "NATS_SERVER_NAME" in env
    assert "ldm=" in " ".join(names["nats"]["lifecycle"]["preStop"]["exec"]["command"])


def test_kustomization_applies_the_set_with_the_nats_config() -> None:
    kust = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    listed = set(kust["resources"])
    files = {f"k8s/{p.name}" for p in (DEPLOY / "k8s").glob("*.yaml")}
    assert listed == files - {"k8s/secrets.example.yaml"}
    [gen] = kust["configMapGenerator"]
    for f in gen["files"]:
        assert (DEPLOY / f).exists(), f
    sts = by_kind("StatefulSet")["nats"]
    [vol] = [v for v in pod_spec(sts)["volumes"] if "configMap" in v]
    assert vol["configMap"]["name"] == gen["name"]
    sub = {m["subPath"] for c in pod_spec(sts)["containers"] for m in c.get("volumeMounts", [])
           if m.get("subPath")}
    assert sub == {f.split("/")[-1] for f in gen["files"]}
    images = {i["name"] for i in kust["images"]}
    assert images == {f"microtask/{s}" for s in SERVICES}


def test_every_secret_key_a_pod_reads_is_documented() -> None:
    secrets = {name: set(obj["stringData"]) for name, obj in by_kind("Secret").items()}
    for obj in k8s_objects():
        if obj["kind"] not in ("Job", "Deployment", "StatefulSet"):
            continue
        for c in containers(obj):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets.get(ref["name"], set()), \
                        f"{obj['metadata']['name']}: {ref['name']}/{ref['key']} not documented"
        for v in pod_spec(obj).get("volumes", []):
            if "secret" in v:
                name = v["secret"]["secretName"]
                keys = {i["key"] for i in v["secret"].get("items", [])} or secrets[name]
                assert keys <= secrets[name], f"{obj['metadata']['name']}: {name}"
    assert {"TOKEN_PEPPER", "MFA_ENCRYPTION_KEY"} <= secrets["microtask-gateway"]
    assert secrets["microtask-nats-tls"] == {"ca.crt", "tls.crt", "tls.key"}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_gets_every_required_setting(service: str) -> None:
    """Every secret a service's settings declare (SecretStr fields: the gateway's pepper and
    MFA key, ...) and its database URL come from a Secret, none from a literal."""
    dep = by_kind("Deployment")[service]
    env = {e["name"]: e for e in pod_spec(dep)["containers"][0]["env"]}
    prefix = settings_class(service).model_config["env_prefix"]
    assert prefix == f"{service.upper()}_"
    secret_fields = [n for n, f in settings_class(service).model_fields.items()
                     if f.annotation is SecretStr]
    for field in [*secret_fields, "database_url", "nats_password"]:
        var = f"{prefix}{field.upper()}"
        assert var in env, f"{service}: {var} is not set"
        assert "secretKeyRef" in env[var].get("valueFrom", {}), f"{service}: {var} literal"
    assert env[f"{prefix}ENVIRONMENT"]["value"] == "production"
    assert env[f"{prefix}STREAM_REPLICAS"]["value"] == "3"
    assert env[f"{prefix}ENSURE_STREAMS"]["value"] == "false"
    assert env[f"{prefix}NATS_USER"]["value"] == service


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_probes_resources_and_a_disruption_budget(service: str) -> None:
    dep = by_kind("Deployment")[service]
    assert dep["spec"]["replicas"] >= 2
    [c] = pod_spec(dep)["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    for cont in containers(dep):
        assert cont["resources"]["requests"]["memory"] and cont["resources"]["limits"]["memory"]
    pdb = by_kind("PodDisruptionBudget")[service]
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] < dep["spec"]["replicas"]
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert int(ann["prometheus.io/port"]) == ports["ops"]
    version = re.search(r'^version = "(.+)"', (ROOT / "services" / service / "pyproject.toml")
                        .read_text(), flags=re.M).group(1)  # type: ignore[union-attr]
    assert c["image"] == f"microtask/{service}:{version}"


def test_bus_setup_creates_everything_at_r3_as_the_provisioner() -> None:
    job = by_kind("Job")["bus-setup"]
    [c] = pod_spec(job)["containers"]
    assert c["command"][:4] == ["python", "-m", "servicekit.streams", "ensure"]
    assert c["command"][c["command"].index("--replicas") + 1] == "3"
    env = {e["name"]: e for e in c["env"]}
    assert env["NATS_USER"]["value"] == "provisioner"


def test_secrets_example_is_not_applied_and_holds_only_placeholders() -> None:
    for obj in load_yaml_docs(DEPLOY / "k8s" / "secrets.example.yaml"):
        for key, value in obj["stringData"].items():
            assert "REPLACE" in value, f"{obj['metadata']['name']}/{key} holds a value"
