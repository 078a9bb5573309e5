"""Fixtures for the deploy/ checks: the tools (promtool, amtool), throwaway TLS
certificates, and the production NATS configuration run as a 3-node cluster on loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # deploy_helpers, importable by the tests of this folder

from deploy_helpers import DEPLOY, ROOT, debian_tool, make_tls  # noqa: E402

from servicekit.testing.natsserver import free_port, nats_server_binary  # noqa: E402

NATS_USERS = ("tasks", "review", "ledger", "rules", "support", "gateway", "provisioner", "ops")


@pytest.fixture(scope="session")
def promtool() -> str:
    return debian_tool("promtool", "prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    return debian_tool("amtool", "prometheus-alertmanager")


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tls(tmp_path_factory.mktemp("tls"))


def nats_passwords() -> dict[str, str]:
    return {u: f"pw-{u}-{os.getpid()}" for u in NATS_USERS}


@dataclass
class Node:
    name: str
    client_port: int
    http_port: int
    route_port: int
    conf: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.client_port}"


def render_node_conf(text: str, node: Node, nodes: list[Node], tmp: Path, tls: Path) -> str:
    """deploy/nats/nats.conf with this machine's ports and paths: every replacement must
    match, so a change of the production file's shape shows here."""
    subs = [
        (r"listen: 0\.0\.0\.0:4222", f"listen: 127.0.0.1:{node.client_port}"),
        (r"http: 0\.0\.0\.0:8222", f"http: 127.0.0.1:{node.http_port}"),
        (r"listen: 0\.0\.0\.0:6222", f"listen: 127.0.0.1:{node.route_port}"),
        (r"/etc/nats/tls", str(tls)),
        (r"/data/jetstream", str(tmp / node.name / "js")),
        (r"/var/run/nats/nats\.pid", str(tmp / node.name / "nats.pid")),
    ]
    for i, other in enumerate(nodes):
        subs.append((rf"nats-route://nats-{i}\.nats:6222",
                     f"nats-route://127.0.0.1:{other.route_port}"))
    for pattern, repl in subs:
        text, n = re.subn(pattern, repl, text)
        assert n >= 1, f"deploy/nats/nats.conf no longer has {pattern!r}"
    return text


@dataclass
class Cluster:
    nodes: list[Node]
    passwords: dict[str, str]
    tls: Path

    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]


def wait_healthy(node: Node, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{node.http_port}/healthz"
    while time.monotonic() < deadline:
        assert node.proc is not None
        if node.proc.poll() is not None:
            err = node.proc.stderr.read() if node.proc.stderr else b""
            raise RuntimeError(f"{node.name} exited: {err!r}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{node.name} did not become healthy")


def wait_meta_group(nodes: list[Node], timeout_s: float = 30.0) -> None:
    """Until JetStream's meta group has a leader that sees every other node current and
    online: a node can answer /healthz before it has joined the group, and a stream of three
    replicas placed then is refused ("no suitable peers for placement, peer offline")."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for node in nodes:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/jsz",
                                            timeout=1) as r:
                    meta = json.load(r).get("meta_cluster") or {}
            except (OSError, ValueError):
                continue
            peers = meta.get("replicas") or []
            if (meta.get("leader") == node.name and len(peers) == len(nodes) - 1
                    and all(p.get("current") and not p.get("offline") for p in peers)):
                return
        time.sleep(0.1)
    raise RuntimeError("the JetStream meta group did not form with every node current")


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory, tls_dir: Path) -> Iterator[Cluster]:
    """The production nats.conf + auth.conf, three nodes with TLS routes on loopback."""
    tmp = tmp_path_factory.mktemp("nats-cluster")
    text = (DEPLOY / "nats" / "nats.conf").read_text()
    nodes = [Node(f"nats-{i}", free_port(), free_port(), free_port(), tmp / f"nats-{i}.conf")
             for i in range(3)]
    (tmp / "auth.conf").write_text((DEPLOY / "nats" / "auth.conf").read_text())
    passwords = nats_passwords()
    env = {**os.environ, **{f"NATS_{u.upper()}_PASSWORD": p for u, p in passwords.items()}}
    for node in nodes:
        (tmp / node.name).mkdir()
        node.conf.write_text(render_node_conf(text, node, nodes, tmp, tls_dir))
    try:
        for node in nodes:
            node.proc = subprocess.Popen(
                [nats_server_binary(), "-c", str(node.conf), "-l", str(tmp / f"{node.name}.log")],
                env={**env, "NATS_SERVER_NAME": node.name},
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for node in nodes:
            wait_healthy(node)
        wait_meta_group(nodes)
        yield Cluster(nodes, passwords, tls_dir)
    finally:
        for node in nodes:
            if node.proc and node.proc.poll() is None:
                node.proc.terminate()
        for node in nodes:
            if node.proc:
                try:
                    node.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    node.proc.kill()


__all__ = ["ROOT", "DEPLOY"]
