"""deploy/compose.yaml: valid against the Compose Specification's schema once interpolated
with deploy/env.example, and its rendered start order migrates each service exactly once,
before that service starts, with the bus set up at R3 first."""

from __future__ import annotations

import graphlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from deploy_helpers import DEPLOY, ROOT, cli_exists

SERVICES = ("tasks", "review", "ledger", "rules", "support", "gateway")
PORTS = {"tasks": 8101, "review": 8102, "ledger": 8103, "rules": 8104, "support": 8105,
         "gateway": 8000}
SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"
VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?[?-][^}]*)?\}")


def env_example() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def interpolate(value: object, env: dict[str, str]) -> object:
    """Compose's interpolation of ${VAR}, ${VAR:?err}, ${VAR:-default} in every string."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        name, whole = m.group(1), m.group(0)
        if name in env:
            return env[name]
        if ":-" in whole:
            return whole.split(":-", 1)[1][:-1]
        raise KeyError(f"compose needs {name}, which deploy/env.example does not set")

    return VAR.sub(sub, value).replace("$$", "$")


def raw_compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return interpolate(raw_compose(), env_example())  # type: ignore[return-value]


def dockerfile_cmd(service: str) -> list[str]:
    """The command an image runs when compose gives none: the Dockerfile's CMD."""
    text = (DEPLOY / "Dockerfile").read_text()
    cmd = json.loads(re.findall(r"^CMD (\[.*\])$", text, flags=re.M)[-1])
    return [c.replace("${SERVICE}", service) for c in cmd]


def command_of(compose: dict, name: str) -> list[str]:
    svc = compose["services"][name]
    if "command" in svc:
        return svc["command"]
    if "build" in svc:
        return dockerfile_cmd(svc["build"]["args"]["SERVICE"])
    return []  # a third-party image's own command (postgres, grafana)


def depends(svc: dict) -> dict[str, dict]:
    d = svc.get("depends_on", {})
    return {k: {"condition": "service_started"} for k in d} if isinstance(d, list) else d


def test_compose_file_is_valid_against_the_compose_spec(compose: dict) -> None:
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose),
                    key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_the_schema_check_can_fail(compose: dict) -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["tasks"]["depends_on"]["migrate-tasks"]["condition"] = "when_ready"
    broken["services"]["ledger"]["restart_policy"] = "always"
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(broken))) == 2


@pytest.mark.skipif(shutil.which("docker") is None
                    or subprocess.run(["docker", "compose", "version"],
                                      capture_output=True).returncode != 0,
                    reason="no docker compose plugin on this machine: the schema test covers it")
def test_docker_compose_config_accepts_it() -> None:  # pragma: no cover - where Docker is
    got = subprocess.run(["docker", "compose", "-f", str(DEPLOY / "compose.yaml"),
                          "--env-file", str(DEPLOY / "env.example"), "config", "--quiet"],
                         capture_output=True, text=True)
    assert got.returncode == 0, got.stderr


def test_every_reference_resolves(compose: dict) -> None:
    names = set(compose["services"])
    volumes = set(compose.get("volumes", {}))
    for name, svc in compose["services"].items():
        assert set(depends(svc)) <= names, name
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                path = (DEPLOY / src).resolve()
                generated = path.is_relative_to(DEPLOY / "nats" / "tls")  # make-certs.sh
                assert path.exists() or generated, f"{name}: {src} does not exist"
            else:
                assert src in volumes, f"{name}: volume {src} not declared"


def test_each_service_migrates_once_before_it_starts(compose: dict) -> None:
    services = compose["services"]
    upgrades: dict[str, list[str]] = {}
    for name in services:
        cmd = command_of(compose, name)
        if cmd[:4] == ["python", "-m", "servicekit.migrations", "upgrade"]:
            upgrades.setdefault(cmd[4], []).append(name)
    assert upgrades == {s: [f"migrate-{s}"] for s in SERVICES}
    order = list(graphlib.TopologicalSorter(
        {n: set(depends(s)) for n, s in services.items()}).static_order())
    for s in SERVICES:
        job, svc = services[f"migrate-{s}"], services[s]
        assert job["restart"] == "no", f"migrate-{s} must run once, not be restarted"
        assert job["image"] == svc["image"], f"migrate-{s} must run {s}'s own scripts"
        assert depends(job)["postgres"]["condition"] == "service_healthy"
        assert depends(svc)[f"migrate-{s}"]["condition"] == "service_completed_successfully"
        assert depends(svc)["bus-setup"]["condition"] == "service_completed_successfully"
        assert order.index(f"migrate-{s}") < order.index(s)
        url = f"{s.upper()}_DATABASE_URL"
        assert job["environment"][url] == svc["environment"][url]
        # the service itself does not migrate: its command is the image's and the
        # gateway's migrate-on-start is off
        assert command_of(compose, s) == ["sh", "-c", f"exec python -m {s}_service.main"]
        assert svc["environment"].get(f"{s.upper()}_MIGRATE_ON_START", "false") == "false"


def test_bus_is_set_up_at_r3_before_any_service(compose: dict) -> None:
    services = compose["services"]
    setup = services["bus-setup"]
    cmd = command_of(compose, "bus-setup")
    assert cmd[:4] == ["python", "-m", "servicekit.streams", "ensure"]
    assert cmd[cmd.index("--replicas") + 1] == "3"
    assert cmd[cmd.index("--kv") + 1].startswith("gateway_emergency")
    assert setup["restart"] == "no"
    assert {f"nats-{i}" for i in range(3)} <= set(depends(setup))
    assert setup["environment"]["NATS_USER"] == "provisioner"
    for s in SERVICES:
        env = services[s]["environment"]
        assert env[f"{s.upper()}_STREAM_REPLICAS"] == "3"
        assert env[f"{s.upper()}_ENSURE_STREAMS"] == "false"


def test_each_process_is_its_own_nats_user_over_tls(compose: dict) -> None:
    services = compose["services"]
    auth = (DEPLOY / "nats" / "auth.conf").read_text()
    users = re.findall(r"^\s+user: (\w+)$", auth, flags=re.M)
    passwords = env_example()
    for i in range(3):
        node = services[f"nats-{i}"]
        assert node["environment"]["NATS_SERVER_NAME"] == f"nats-{i}"
        assert f"nats-{i}.nats" in node["networks"]["default"]["aliases"]
        for user in users:  # every variable auth.conf reads is set on every node
            assert node["environment"][f"NATS_{user.upper()}_PASSWORD"] == \
                passwords[f"NATS_{user.upper()}_PASSWORD"]
    for s in SERVICES:
        env, p = services[s]["environment"], s.upper()
        assert env[f"{p}_NATS_USER"] == s
        assert env[f"{p}_NATS_PASSWORD"] == passwords[f"NATS_{p}_PASSWORD"]
        assert all(u.startswith("tls://nats-") for u in env[f"{p}_NATS_URL"].split(","))
        assert env[f"{p}_NATS_TLS_CA_FILE"] in {v.split(":")[1] for v in services[s]["volumes"]}
        assert env[f"{p}_HTTP_PORT"] == str(PORTS[s])
        assert env[f"{p}_ENVIRONMENT"] == "production"


def test_secrets_come_only_from_the_env_file() -> None:
    raw = raw_compose()
    used = set(VAR.findall((DEPLOY / "compose.yaml").read_text()))
    assert used == set(env_example()), "deploy/env.example and compose.yaml disagree"
    for name, svc in raw["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if re.search(r"PASSWORD|PEPPER|KEY$|_DATABASE_URL", key):
                assert "${" in str(value), f"{name}: {key} is written in compose.yaml"


def test_the_nats_image_is_the_version_the_tests_run() -> None:
    from servicekit.testing.natsserver import nats_server_binary

    got = subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True)
    version = re.search(r"v(\d+\.\d+\.\d+)", got.stdout).group(1)  # type: ignore[union-attr]
    images = {s.get("image") for s in raw_compose()["services"].values()}
    assert f"nats:{version}-alpine" in images


def test_prometheus_scrapes_every_service_on_its_ops_port(compose: dict) -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    for s in SERVICES:
        [sd] = jobs[s]["dns_sd_configs"]
        assert sd["names"] == [s] and s in compose["services"]
        expected = 8100 if s == "gateway" else PORTS[s]
        assert sd["port"] == expected
    assert compose["services"]["gateway"]["environment"]["GATEWAY_OPS_PORT"] == "8100"
    exporters = [t.split(":")[0] for t in jobs["nats"]["static_configs"][0]["targets"]]
    for i, name in enumerate(exporters):
        assert compose["services"][name]["command"][-1] == f"http://nats-{i}:8222"
    am = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
    assert am.split(":")[0] in compose["services"]


def test_dockerfile_builds_each_service_from_the_lock() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert 'uv sync --frozen --no-dev --no-editable --package "microtask-${SERVICE}"' in text
    assert "COPY --from=build /src/services/${SERVICE}/migrations" in text
    assert re.search(r"^USER 10001$", text, flags=re.M)
    for s in SERVICES:
        project = (ROOT / "services" / s / "pyproject.toml").read_text()
        assert f'name = "microtask-{s}"' in project
        assert (ROOT / "services" / s / "migrations" / "env.py").exists()
        assert (ROOT / "services" / s / "src" / f"{s}_service" / "main.py").exists()
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".git", "data", "deploy/.env"} <= set(ignored)


def test_postgres_init_gives_each_service_its_own_role_and_database() -> None:
    script = DEPLOY / "postgres" / "init.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert re.search(r"for svc in tasks review ledger rules support gateway; do", text)
    assert "CREATE ROLE :\"name\" LOGIN PASSWORD :'password'" in text
    assert "REVOKE ALL ON DATABASE" in text


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl on this machine")
def test_make_certs_gives_names_that_python_clients_verify(tmp_path: Path) -> None:
    import ssl

    from cryptography import x509

    got = subprocess.run(["sh", str(DEPLOY / "nats" / "make-certs.sh"), str(tmp_path)],
                         capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    assert not (tmp_path / "tls" / "ca.key").exists(), "the CA key must not be mounted"
    cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "tls.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {f"nats-{i}.nats" for i in range(3)} <= set(names.get_values_for_type(x509.DNSName))
    ctx = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.crt"))
    assert ctx.cert_store_stats()["x509_ca"] == 1
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "tls" / "ca.crt"),
                             str(tmp_path / "tls" / "tls.crt")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.skipif(not cli_exists("servicekit.migrations"),
                    reason="pending: python -m servicekit.migrations (docs/ops-code-needs.md 1)")
# two services keep it fast (an upgrade from empty takes seconds): the ledger (triggers,
# the money) and the gateway (which must not migrate again at start); the other commands
# differ only in the name, which the test above checks
@pytest.mark.parametrize("service", ["ledger", "gateway"])
async def test_the_rendered_migration_runs_twice_at_once_and_the_wait_sees_head(
        service: str, compose: dict, databases) -> None:
    """The migrate-<service> command exactly as compose renders it, run from the image's
    layout (/src = the repository root): two at the same time both succeed (the advisory
    lock), and the replicas' wait then returns at once."""
    import asyncio
    import os
    import sys

    url = await databases.new(f"mte_deploy_{service}")
    env = {**os.environ, f"{service.upper()}_DATABASE_URL": url}
    cmd = command_of(compose, f"migrate-{service}")
    assert cmd[0] == "python"

    async def run(args: list[str]) -> int:
        proc = await asyncio.create_subprocess_exec(sys.executable, *args[1:], cwd=ROOT,
                                                    env=env)
        return await asyncio.wait_for(proc.wait(), 120)

    assert await asyncio.gather(run(cmd), run(cmd)) == [0, 0]
    wait = ["python", "-m", "servicekit.migrations", "wait", service, "--timeout", "5"]
    assert await run(wait) == 0
