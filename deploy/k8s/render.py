"""Render the Kubernetes set of deploy/k8s from one table of the platform's processes.

    python3 deploy/k8s/render.py

Writes namespace.yaml, nats.yaml (the 3-node JetStream StatefulSet with its exporter,
headless Service and PodDisruptionBudget), jobs.yaml (bus-setup and one migration Job per
service), services.yaml (a Deployment, Service and PodDisruptionBudget per service) and
secrets.example.yaml (every Secret and key the set reads; fill in and apply it yourself, it
is not in the kustomization). tests/deploy/test_k8s.py validates them strictly and fails
when the committed files differ from this output. Apply with ``kubectl apply -k deploy``
(deploy/kustomization.yaml adds the NATS config files as a ConfigMap).
"""

from __future__ import annotations

from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent
NAMESPACE = "microtask"
VERSION = "0.1.0"
NATS_IMAGE = "nats:2.15.1-alpine"
EXPORTER_IMAGE = "natsio/prometheus-nats-exporter:0.20.1"
NATS_URL = ",".join(f"tls://nats-{i}.nats:4222" for i in range(3))
# the nodes' monitoring endpoints: diagnostics read JetStream's meta leader from /jsz
NATS_MONITOR_URLS = "[" + ",".join(f'"http://nats-{i}.nats:8222"' for i in range(3)) + "]"
CA_DIR = "/etc/nats-ca"
SERVICES = {  # name: ops port (the gateway: public HTTP 8000, ops 8100)
    "tasks": 8101, "review": 8102, "ledger": 8103, "rules": 8104, "support": 8105,
    "gateway": 8100,
}
NATS_USERS = (*SERVICES, "provisioner", "ops")
GATEWAY_HTTP = 8000
# what each replica asks for; the limits leave room for bursts (argon2 in the gateway)
RESOURCES = {
    "default": {"requests": {"cpu": "250m", "memory": "192Mi"}, "limits": {"memory": "384Mi"}},
    "gateway": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
}
SECURITY = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                      "capabilities": {"drop": ["ALL"]}}


def labels(name: str, component: str) -> dict:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "microtask",
            "app.kubernetes.io/component": component}


def meta(name: str, component: str, **extra: object) -> dict:
    return {"name": name, "namespace": NAMESPACE, "labels": labels(name, component), **extra}


def image(service: str) -> str:
    return f"microtask/{service}:{VERSION}"


def secret_env(var: str, secret: str, key: str, *, optional: bool = False) -> dict:
    ref: dict = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": var, "valueFrom": {"secretKeyRef": ref}}


def ca_volume() -> dict:
    return {"name": "nats-ca", "secret": {"secretName": "microtask-nats-tls",
                                         "items": [{"key": "ca.crt", "path": "ca.crt"}]}}


def tmp_volume() -> dict:
    return {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}


def mounts() -> list[dict]:
    return [{"name": "nats-ca", "mountPath": CA_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"}]


def service_env(service: str) -> list[dict]:
    p = service.upper()
    secret = f"microtask-{service}"
    env = [
        {"name": f"{p}_ENVIRONMENT", "value": "production"},
        secret_env(f"{p}_DATABASE_URL", secret, "DATABASE_URL"),
        {"name": f"{p}_NATS_URL", "value": NATS_URL},
        {"name": f"{p}_NATS_USER", "value": service},
        secret_env(f"{p}_NATS_PASSWORD", secret, "NATS_PASSWORD"),
        {"name": f"{p}_NATS_TLS_CA_FILE", "value": f"{CA_DIR}/ca.crt"},
        {"name": f"{p}_STREAM_REPLICAS", "value": "3"},
        {"name": f"{p}_ENSURE_STREAMS", "value": "false"},
        {"name": f"{p}_HTTP_HOST", "value": "0.0.0.0"},
    ]
    if service == "gateway":
        env += [
            {"name": "GATEWAY_HTTP_PORT", "value": str(GATEWAY_HTTP)},
            {"name": "GATEWAY_OPS_PORT", "value": str(SERVICES["gateway"])},
            {"name": "GATEWAY_NATS_MONITOR_URLS", "value": NATS_MONITOR_URLS},
            {"name": "GATEWAY_MIGRATE_ON_START", "value": "false"},
            {"name": "GATEWAY_BEHIND_TLS", "value": "true"},
            {"name": "GATEWAY_PUBLIC_URL", "value": "https://microtask.example"},
            secret_env("GATEWAY_TOKEN_PEPPER", secret, "TOKEN_PEPPER"),
            secret_env("GATEWAY_MFA_ENCRYPTION_KEY", secret, "MFA_ENCRYPTION_KEY"),
        ]
    else:
        env.append({"name": f"{p}_HTTP_PORT", "value": str(SERVICES[service])})
    if service == "support":  # the assistant's optional generator (off without its URL)
        env.append(secret_env("SUPPORT_GENERATOR_API_KEY", secret, "GENERATOR_API_KEY",
                              optional=True))
        env.append(secret_env("SUPPORT_LEAD_ADDRESS_KEY", secret, "LEAD_ADDRESS_KEY"))
        env.append(secret_env("SUPPORT_WEBHOOK_SECRET_KEY", secret, "WEBHOOK_SECRET_KEY"))
    return env


def probe_port(service: str) -> int:
    return GATEWAY_HTTP if service == "gateway" else SERVICES[service]


def deployment(service: str) -> dict:
    port = probe_port(service)
    ports = [{"name": "ops", "containerPort": SERVICES[service]}]
    if service == "gateway":
        ports.insert(0, {"name": "http", "containerPort": GATEWAY_HTTP})
    wait = {
        "name": "wait-for-schema", "image": image(service),
        "command": ["python", "-m", "servicekit.migrations", "wait", service,
                    "--timeout", "600"],
        "env": [secret_env(f"{service.upper()}_DATABASE_URL", f"microtask-{service}",
                           "DATABASE_URL")],
        "securityContext": CONTAINER_SECURITY,
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"},
                      "limits": {"memory": "192Mi"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    container = {
        "name": service, "image": image(service), "ports": ports,
        "env": service_env(service),
        "startupProbe": {"httpGet": {"path": "/healthz", "port": port},
                         "periodSeconds": 5, "failureThreshold": 60},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": port},
                           "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": port},
                          "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 6},
        "resources": RESOURCES.get(service, RESOURCES["default"]),
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": mounts(),
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(service, "service"),
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {"app.kubernetes.io/name": service}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(service, "service"),
                             "annotations": {"prometheus.io/scrape": "true",
                                             "prometheus.io/port": str(SERVICES[service]),
                                             "prometheus.io/path": "/metrics"}},
                "spec": {
                    "securityContext": SECURITY,
                    "terminationGracePeriodSeconds": 40,
                    "topologySpreadConstraints": [{
                        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": service}}}],
                    # waits (read-only) for the migration Job's result; it never migrates
                    "initContainers": [wait],
                    "containers": [container],
                    "volumes": [ca_volume(), tmp_volume()],
                },
            },
        },
    }


def service_object(service: str) -> dict:
    ports = [{"name": "ops", "port": SERVICES[service], "targetPort": "ops"}]
    if service == "gateway":
        ports.insert(0, {"name": "http", "port": GATEWAY_HTTP, "targetPort": "http"})
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(service, "service"),
            "spec": {"selector": {"app.kubernetes.io/name": service}, "ports": ports}}


def pdb(name: str, component: str, **budget: object) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": meta(name, component),
            "spec": {**budget, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}}}


def job(name: str, service: str, command: list[str], env: list[dict], component: str,
        *, with_ca: bool = False) -> dict:
    container = {"name": name, "image": image(service), "command": command, "env": env,
                 "securityContext": CONTAINER_SECURITY,
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                               "limits": {"memory": "256Mi"}},
                 "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}
    volumes = [tmp_volume()]
    if with_ca:
        container["volumeMounts"].append({"name": "nats-ca", "mountPath": CA_DIR,
                                          "readOnly": True})
        volumes.append(ca_volume())
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": meta(name, component),
        "spec": {
            "backoffLimit": 4, "activeDeadlineSeconds": 900, "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels(name, component)},
                "spec": {"restartPolicy": "OnFailure", "securityContext": SECURITY,
                         "containers": [container], "volumes": volumes},
            },
        },
    }


def migration_job(service: str) -> dict:
    env = [secret_env(f"{service.upper()}_DATABASE_URL", f"microtask-{service}",
                      "DATABASE_URL")]
    return job(f"migrate-{service}", service,
               ["python", "-m", "servicekit.migrations", "upgrade", service], env, "migration")


def bus_setup_job() -> dict:
    env = [{"name": "NATS_URL", "value": NATS_URL},
           {"name": "NATS_USER", "value": "provisioner"},
           secret_env("NATS_PASSWORD", "microtask-provisioner", "NATS_PASSWORD"),
           {"name": "NATS_TLS_CA_FILE", "value": f"{CA_DIR}/ca.crt"},
           {"name": "NATS_INBOX_PREFIX", "value": "_INBOX_provisioner"}]
    return job("bus-setup", "gateway",
               ["python", "-m", "servicekit.streams", "ensure", "--replicas", "3",
                "--kv", "gateway_emergency:16"], env, "bus", with_ca=True)


def nats_objects() -> list[dict]:
    name = "nats"
    headless = {
        "apiVersion": "v1", "kind": "Service", "metadata": meta(name, "bus"),
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                 "selector": {"app.kubernetes.io/name": name},
                 "ports": [{"name": "client", "port": 4222}, {"name": "cluster", "port": 6222},
                           {"name": "monitor", "port": 8222},
                           {"name": "metrics", "port": 7777}]},
    }
    env = [{"name": "NATS_SERVER_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    env += [secret_env(f"NATS_{u.upper()}_PASSWORD", "microtask-nats-users",
                       f"NATS_{u.upper()}_PASSWORD") for u in NATS_USERS]
    health = {"httpGet": {"path": "/healthz?js-enabled-only=true", "port": "monitor"}}
    nats = {
        "name": "nats", "image": NATS_IMAGE, "args": ["-c", "/etc/nats/nats.conf"],
        "env": env,
        "ports": [{"name": "client", "containerPort": 4222},
                  {"name": "cluster", "containerPort": 6222},
                  {"name": "monitor", "containerPort": 8222}],
        # started = current with the cluster's meta leader and its streams (full /healthz)
        "startupProbe": {"httpGet": {"path": "/healthz", "port": "monitor"},
                         "periodSeconds": 5, "failureThreshold": 90},
        "livenessProbe": {**health, "periodSeconds": 10, "timeoutSeconds": 5,
                          "failureThreshold": 3},
        # ready = current with the cluster (the JetStream-aware health check)
        "readinessProbe": {"httpGet": {"path": "/healthz?js-server-only=true",
                                       "port": "monitor"},
                           "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        # lame duck: clients move to the other nodes before this one stops
        "lifecycle": {"preStop": {"exec": {"command": [
            "nats-server", "--signal", "ldm=/var/run/nats/nats.pid"]}}},
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                      "limits": {"memory": "2Gi"}},
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [{"name": "config", "mountPath": "/etc/nats/nats.conf",
                          "subPath": "nats.conf"},
                         {"name": "config", "mountPath": "/etc/nats/auth.conf",
                          "subPath": "auth.conf"},
                         {"name": "tls", "mountPath": "/etc/nats/tls", "readOnly": True},
                         {"name": "data", "mountPath": "/data"},
                         {"name": "pid", "mountPath": "/var/run/nats"}],
    }
    exporter = {
        "name": "exporter", "image": EXPORTER_IMAGE,
        "args": ["-varz", "-jsz=all", "-healthz", "-use_internal_server_name", "-p", "7777",
                 "http://localhost:8222"],
        "ports": [{"name": "metrics", "containerPort": 7777}],
        "resources": {"requests": {"cpu": "20m", "memory": "32Mi"},
                      "limits": {"memory": "128Mi"}},
        "securityContext": CONTAINER_SECURITY,
    }
    sts = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta(name, "bus"),
        "spec": {
            "serviceName": name, "replicas": 3, "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels(name, "bus"),
                             "annotations": {"prometheus.io/scrape": "true",
                                             "prometheus.io/port": "7777"}},
                "spec": {
                    "securityContext": {**SECURITY, "runAsUser": 1000, "runAsGroup": 1000,
                                        "fsGroup": 1000},
                    "terminationGracePeriodSeconds": 60,
                    # one node per host: losing a host costs one replica, never the quorum
                    "affinity": {"podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [{
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
                        }]}},
                    "containers": [nats, exporter],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "nats-config"}},
                        {"name": "tls", "secret": {"secretName": "microtask-nats-tls"}},
                        {"name": "pid", "emptyDir": {}},
                    ],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "20Gi"}}},
            }],
        },
    }
    # 2 of 3 nodes keep the quorum: never drain more than one at a time
    return [headless, sts, pdb(name, "bus", maxUnavailable=1)]


def secret(name: str, data: dict[str, str], *, kind: str = "Opaque") -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": kind,
            "metadata": meta(name, "secret"), "stringData": data}


def secrets() -> list[dict]:
    out = []
    for s in SERVICES:
        data = {"DATABASE_URL": f"postgresql://{s}:REPLACE-password@REPLACE-host:5432/{s}",
                "NATS_PASSWORD": f"REPLACE: the same value as NATS_{s.upper()}_PASSWORD"}
        if s == "gateway":
            data["TOKEN_PEPPER"] = "REPLACE: 64 random hex characters"
            data["MFA_ENCRYPTION_KEY"] = "REPLACE: 64 random hex characters"
        if s == "support":
            data["LEAD_ADDRESS_KEY"] = "REPLACE: 64 random hex characters"
            data["WEBHOOK_SECRET_KEY"] = "REPLACE: 64 random hex characters"
            data["GENERATOR_API_KEY"] = ("REPLACE (optional): the assistant's generator key, "
                                         "used only with SUPPORT_GENERATOR_URL set")
        out.append(secret(f"microtask-{s}", data))
    out.append(secret("microtask-provisioner",
                      {"NATS_PASSWORD": "REPLACE: the same value as NATS_PROVISIONER_PASSWORD"}))
    out.append(secret("microtask-nats-users",
                      {f"NATS_{u.upper()}_PASSWORD": "REPLACE: random (a bcrypt hash works too)"
                       for u in NATS_USERS}))
    out.append(secret("microtask-nats-tls",
                      {"ca.crt": "REPLACE: PEM", "tls.crt": "REPLACE: PEM",
                       "tls.key": "REPLACE: PEM"}, kind="kubernetes.io/tls"))
    return out


def dump(objects: list[dict], header: str) -> str:
    return header + "".join("---\n" + yaml.safe_dump(o, sort_keys=False, width=100)
                            for o in objects)


GENERATED = "# Generated by deploy/k8s/render.py: change that, not this file.\n"


def render() -> dict[str, str]:
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/part-of":
                                                            "microtask"}}}
    services = []
    for s in SERVICES:
        services += [deployment(s), service_object(s), pdb(s, "service", minAvailable=1)]
    return {
        "namespace.yaml": dump([namespace], GENERATED),
        "nats.yaml": dump(nats_objects(), GENERATED + "# NATS JetStream: 3 nodes, R3 streams, "
                          "TLS and one user per process (deploy/nats).\n"),
        "jobs.yaml": dump([bus_setup_job()] + [migration_job(s) for s in SERVICES],
                          GENERATED + "# Run once per release, before the Deployments roll: "
                          "bus-setup, then migrate-<service>.\n# A Job is immutable: delete "
                          "the finished ones before applying a new version\n# "
                          "(docs/runbooks.md, Kubernetes).\n"),
        "services.yaml": dump(services, GENERATED),
        "secrets.example.yaml": dump(secrets(), GENERATED + "# Every Secret and key the set "
                                     "reads. Not applied by the kustomization: copy it,\n# "
                                     "replace every REPLACE value (or create them with kubectl "
                                     "create secret),\n# apply it, keep it out of git.\n"),
    }


if __name__ == "__main__":
    for name, text in render().items():
        (OUT / name).write_text(text)
