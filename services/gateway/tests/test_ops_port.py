"""The gateway process: the public port and the ops port (metrics), and a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from servicekit.migrations import upgrade

SERVICE_DIR = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def test_metrics_are_served_on_the_ops_port_only(nats_server, database_url) -> None:
    upgrade(SERVICE_DIR, database_url)
    public, ops = free_port(), free_port()
    env = {**os.environ, "GATEWAY_DATABASE_URL": database_url,
           "GATEWAY_NATS_URL": nats_server.url, "GATEWAY_ENVIRONMENT": "test",
           "GATEWAY_HTTP_PORT": str(public), "GATEWAY_OPS_PORT": str(ops),
           "GATEWAY_EMERGENCY_BUCKET": f"gwtest_{uuid.uuid4().hex[:10]}"}
    proc = subprocess.Popen([sys.executable, "-m", "gateway_service.main"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_ready(f"http://127.0.0.1:{public}/readyz", proc)
        wait_ready(f"http://127.0.0.1:{ops}/readyz", proc)
        assert httpx.get(f"http://127.0.0.1:{public}/metrics").status_code == 404
        r = httpx.get(f"http://127.0.0.1:{ops}/metrics")
        assert r.status_code == 200 and b"gateway_logins_total" in r.content
        assert httpx.get(f"http://127.0.0.1:{ops}/api/status").status_code == 404
        proc.send_signal(signal.SIGTERM)  # stops both servers
        # uvicorn shuts down, then raises the signal again: the exit tells it was SIGTERM
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_taken_ops_port_leaves_the_public_port_serving(nats_server, database_url) -> None:
    upgrade(SERVICE_DIR, database_url)
    public = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**os.environ, "GATEWAY_DATABASE_URL": database_url,
               "GATEWAY_NATS_URL": nats_server.url, "GATEWAY_ENVIRONMENT": "test",
               "GATEWAY_HTTP_PORT": str(public),
               "GATEWAY_OPS_PORT": str(taken.getsockname()[1]),
               "GATEWAY_EMERGENCY_BUCKET": f"gwtest_{uuid.uuid4().hex[:10]}"}
        proc = subprocess.Popen([sys.executable, "-m", "gateway_service.main"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_ready(f"http://127.0.0.1:{public}/readyz", proc)
            time.sleep(1)
            assert proc.poll() is None
            assert httpx.get(f"http://127.0.0.1:{public}/api/status").status_code == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
            assert proc.stderr is not None
            assert b"could not be opened" in proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
