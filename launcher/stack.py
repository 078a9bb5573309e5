"""Start the whole system as local processes: nats-server, every service, the gateway.

Used by ``make run`` (``python -m launcher``) and by ``make bench``.
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher import busauth
from servicekit.migrations import upgrade
from servicekit.testing.natsserver import nats_server_binary
from servicekit.testing.pgserver import PgServer, create_database

ROOT = Path(__file__).resolve().parents[1]
SERVICE_NAMES = ("tasks", "review", "ledger", "rules", "support", "gateway")
DEFAULT_PORTS = {"tasks": 8101, "review": 8102, "ledger": 8103, "rules": 8104,
                 "support": 8105, "gateway": 8000}
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"}
_PASSWORD_LINE = re.compile(r"one-time password: (\S+)")


def _die_with_parent() -> None:
    # Note: "parent" is the thread that spawned the child; start the stack from a thread
    # that lives as long as the stack (the main thread in the launcher and the bench).
    # Own process group: a terminal's Ctrl-C reaches the launcher only, which stops the
    # stack in order (nats-server last); otherwise nats-server quits at once and every
    # service's shutdown fails on the bus.
    os.setpgrp()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def port_free(port: int) -> bool:
    """Nothing listens on ``port``. SO_REUSEADDR as the servers use it: connections of a
    process that just stopped linger in TIME_WAIT and must not count as "taken"."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """``n`` different free ports (the kernel may hand the same free port out twice)."""
    distinct: set[int] = set()
    while len(distinct) < n:
        distinct.add(free_port())
    return sorted(distinct)


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float) -> bool:
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


def run_sync(coro: Any) -> Any:
    """Run a coroutine to its end from synchronous code, also when this thread already runs
    an event loop (the bench starts the stack from inside its own)."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class StackError(RuntimeError):
    pass


@dataclass
class Stack:
    data_dir: Path
    nats_port: int = 4250
    pg_port: int = 5450
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    # the gateway's /metrics (GATEWAY_OPS_PORT; the public port serves none)
    gateway_ops_port: int = field(default_factory=free_port)
    database_urls: dict[str, str] = field(default_factory=dict)
    environment: str = "development"
    extra_env: dict[str, str] = field(default_factory=dict)
    echo: bool = True
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    bootstrap_password: str | None = None
    pg: PgServer | None = None
    # every process connects as its own NATS user (launcher.busauth); False = a bare bus
    bus_auth: bool = True
    nats_passwords: dict[str, str] = field(default_factory=dict)
    _spawned: dict[str, tuple[list[str], dict[str, str] | None, bool]] = field(
        default_factory=dict)
    # 1: one nats-server ("nats-server"); 3: a JetStream cluster on loopback ("nats-0".."nats-2",
    # R3 streams, fsync on every write) for the fault suite's leader kills
    nats_nodes: int = 1
    # more than one process of a service (the bench's --replicas): "tasks", "tasks-2", ..
    # share the service's database, bus user and durable consumers; each has its own port
    replicas: dict[str, int] = field(default_factory=dict)
    _nats_monitor: dict[str, int] = field(default_factory=dict)
    _nats_clients: dict[str, int] = field(default_factory=dict)
    _password_seen: threading.Event = field(default_factory=threading.Event)
    _route_password: str = ""  # the cluster routes' (made at the first node's config)

    @property
    def nats_url(self) -> str:
        ports = list(self._nats_clients.values()) or [self.nats_port]
        return ",".join(f"nats://127.0.0.1:{p}" for p in ports)

    @property
    def nats_names(self) -> list[str]:
        return (["nats-server"] if self.nats_nodes == 1
                else [f"nats-{i}" for i in range(self.nats_nodes)])

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def database_url(self, name: str) -> str:
        """The service's own database: given, from ``<SVC>_DATABASE_URL``, or ``mte_<svc>``
        on the embedded PostgreSQL."""
        given = self.database_urls.get(name) or os.environ.get(f"{name.upper()}_DATABASE_URL")
        if given:
            return given
        assert self.pg is not None, "the embedded PostgreSQL is not running"
        return self.pg.url(f"mte_{name}")

    def _embedded_needed(self) -> list[str]:
        return [n for n in SERVICE_NAMES if not (
            self.database_urls.get(n) or os.environ.get(f"{n.upper()}_DATABASE_URL"))]

    def start_postgres(self) -> None:
        """The embedded PostgreSQL in ``<data>/pg``, with a database per service."""
        needed = self._embedded_needed()
        if not needed:
            return
        if not port_free(self.pg_port):
            raise StackError(f"port {self.pg_port} for PostgreSQL is taken: set MTE_PG_PORT")
        self.pg = PgServer(self.data_dir / "pg", port=self.pg_port)
        try:
            self.pg.start(preexec_fn=_die_with_parent)
        except Exception as exc:
            raise StackError(f"PostgreSQL did not start: {exc}") from exc

        async def create_all() -> None:
            assert self.pg is not None
            for name in needed:
                await create_database(self.pg.url(), f"mte_{name}")

        run_sync(create_all())
        self._say(f"  postgres      127.0.0.1:{self.pg_port} and socket {self.pg.socket_dir} "
                  f"(data {self.data_dir / 'pg'})")

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None,
               capture: bool = False) -> subprocess.Popen:
        self._spawned[name] = (args, env, capture)
        proc = subprocess.Popen(args, env={**os.environ, **(env or {})},
                                preexec_fn=_die_with_parent, cwd=ROOT,
                                stdout=subprocess.PIPE if capture else None, text=capture)
        self.procs[name] = proc
        if capture:
            threading.Thread(target=self._pump, args=(proc,), daemon=True).start()
        return proc

    def _pump(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            m = _PASSWORD_LINE.search(line)
            if m:
                self.bootstrap_password = m.group(1)
                self._password_seen.set()
            if self.echo:
                sys.stdout.write(line)
                sys.stdout.flush()

    def _say(self, text: str) -> None:
        if self.echo:
            print(text, flush=True)

    def start_nats(self) -> None:
        if not port_free(self.nats_port):
            raise StackError(f"port {self.nats_port} for nats-server is taken: set MTE_NATS_PORT")
        names = self.nats_names
        self._nats_clients = {n: (self.nats_port if i == 0 else free_port())
                              for i, n in enumerate(names)}
        self._nats_monitor = {n: free_port() for n in names}
        routes = {n: free_port() for n in names} if len(names) > 1 else {}
        auth = self._write_nats_auth() if self.bus_auth else ""
        for name in names:
            store = self.data_dir / "nats" / (name if routes else "")
            store.mkdir(parents=True, exist_ok=True)
            args = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self._nats_clients[name]),
                    "-m", str(self._nats_monitor[name]), "-js", "-sd", str(store),
                    "-l", str(self.data_dir / f"{name}.log")]
            if auth or routes:
                args += ["-c", str(self._node_conf(name, auth, routes))]
            self._spawn(name, args)
        for name in names:
            if not wait_http(f"http://127.0.0.1:{self._nats_monitor[name]}/healthz"
                             "?js-enabled-only=true", self.procs[name], 30):
                raise StackError(f"{name} did not start; see {self.data_dir}/{name}.log")
        if self.bus_auth:
            run_sync(busauth.provision(self.nats_url, self.nats_passwords["provisioner"],
                                       replicas=len(names)))
        self._say(f"  nats-server   {self.nats_url} (JetStream store {self.data_dir / 'nats'}"
                  + (", a user per process: credentials in "
                     f"{self.data_dir / 'nats-auth' / 'credentials.json'})"
                     if self.bus_auth else ", no authentication)"))

    def _node_conf(self, name: str, auth: str, routes: dict[str, int]) -> Path:
        """One node's configuration: the accounts, and for a cluster its routes on loopback,
        which authenticate with a password made for this stack (another process on the
        machine cannot join the cluster and read every stream; the deployments use mutual
        TLS, docs/decisions.md 21)."""
        text = auth
        if routes:
            if not self._route_password:
                self._route_password = secrets.token_hex(16)
            pw = self._route_password
            peers = ", ".join(f"nats-route://route:{pw}@127.0.0.1:{p}" for p in routes.values())
            text += (f"server_name: {name}\njetstream {{ sync_interval: always }}\n"
                     f"cluster {{ name: mte, listen: 127.0.0.1:{routes[name]}, "
                     f"authorization {{ user: route, password: \"{pw}\" }}, "
                     f"routes: [ {peers} ] }}\n")
        conf = self.data_dir / "nats-auth" / f"{name}.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return conf

    def _write_nats_auth(self) -> str:
        """The permission table of launcher.busauth with this stack's passwords (made at
        the first start, kept after in a file only this user can read)."""
        self.nats_passwords = busauth.stored_passwords(self.data_dir / "nats-auth")
        return busauth.render(self.nats_passwords)

    def replica_names(self, name: str) -> list[str]:
        """The process names of a service: ``name`` and ``name-2``.. for its replicas."""
        return [name] + [f"{name}-{i}" for i in range(2, self.replicas.get(name, 1) + 1)]

    def env_for(self, name: str, port: int | None = None) -> dict[str, str]:
        p = name.upper() + "_"
        port = self.ports[name] if port is None else port
        env = {f"{p}NATS_URL": self.nats_url, f"{p}HTTP_PORT": str(port),
               f"{p}ENVIRONMENT": self.environment, f"{p}DATABASE_URL": self.database_url(name),
               f"{p}LOG_JSON": os.environ.get("MTE_LOG_JSON", "false")}
        # argon2 hashes (19 MiB each, in worker threads) otherwise stay in per-thread malloc
        # arenas: measured 145 MB -> 106 MB gateway RSS after creating 40 users
        for k, v in MALLOC_ENV.items():
            env[k] = os.environ.get(k, v)
        if name == "gateway":
            env["GATEWAY_OPS_PORT"] = str(self.gateway_ops_port)
        if self.bus_auth:
            env.update(busauth.service_env(name, self.nats_passwords[name]))
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for name in SERVICE_NAMES:
            if not port_free(self.ports[name]):
                raise StackError(f"port {self.ports[name]} for {name} is taken")
        self.start_postgres()
        self.start_nats()
        for name in SERVICE_NAMES:
            upgrade(ROOT / "services" / name, self.database_url(name))
        assert self.replicas.get("gateway", 1) == 1, "one gateway (its ops port is one)"
        for name in SERVICE_NAMES:  # all at once: each start is mostly imports
            for proc_name in self.replica_names(name):
                self.ports.setdefault(proc_name, free_port())
                self._spawn(proc_name, [sys.executable, "-m", f"{name}_service.main"],
                            self.env_for(name, self.ports[proc_name]),
                            capture=(name == "gateway"))
        for proc_name in [p for n in SERVICE_NAMES for p in self.replica_names(n)]:
            port = self.ports[proc_name]
            if not wait_http(f"http://127.0.0.1:{port}/readyz", self.procs[proc_name], 120):
                raise StackError(f"{proc_name} did not become ready on port {port}")
            extra = (f"/readyz; /metrics on :{self.gateway_ops_port}" if proc_name == "gateway"
                     else "/readyz /metrics")
            self._say(f"  {proc_name:<13} http://127.0.0.1:{port}  ({extra})")

    # ------------------------------------------------------------ faults (bench.chaos)

    def kill(self, name: str) -> None:
        """``kill -9`` one process of the stack: a service, a nats-server node (``nats-server``
        or ``nats-0``..) or ``postgres``."""
        if name == "postgres":
            assert self.pg is not None, "the stack runs no PostgreSQL of its own"
            self.pg.kill()  # immediate shutdown: the next start replays the WAL
            return
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def restart(self, name: str, *, wait: bool = True) -> None:
        """Start a killed process again as it was started (call it from the thread that
        started the stack: children die with the thread that spawned them)."""
        if name == "postgres":
            assert self.pg is not None
            self.pg.start(preexec_fn=_die_with_parent)  # returns once it accepts connections
            return
        args, env, capture = self._spawned[name]
        self._spawn(name, args, env, capture)
        if wait:
            self.wait_ready(name)

    def wait_ready(self, name: str, timeout_s: float = 120.0) -> None:
        """Block until a (re)started process answers its health check (any thread)."""
        if name == "postgres":
            return
        url = (f"http://127.0.0.1:{self._nats_monitor[name]}/healthz?js-enabled-only=true"
               if name in self._nats_monitor else f"http://127.0.0.1:{self.ports[name]}/readyz")
        if not wait_http(url, self.procs[name], timeout_s):
            raise StackError(f"{name} did not come back within {timeout_s:g} s")

    def wait_bootstrap_password(self, timeout_s: float = 5.0) -> str | None:
        self._password_seen.wait(timeout_s)
        return self.bootstrap_password

    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None]

    def rss_mb(self) -> dict[str, float]:
        out = {}
        for name, proc in self.procs.items():
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
                out[name] = round(kb / 1024, 1)
            except (OSError, AttributeError):
                pass
        return out

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU time each process has used so far."""
        tick = os.sysconf("SC_CLK_TCK")
        out = {}
        for name, proc in self.procs.items():
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                out[name] = (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                pass
        return out

    def shutdown(self) -> None:
        # the gateway first (no new requests), then every service at once (each drains its
        # consumers and relay), nats-server last
        nats = [n for n in self.procs if n in self._nats_monitor]
        waves = [["gateway"], [n for n in self.procs if n != "gateway" and n not in nats], nats]
        for wave in waves:
            procs = [(n, self.procs[n]) for n in wave if n in self.procs]
            for _, proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for name, proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self._say(f"{name} did not stop in 15 s; killing")
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        if self.pg is not None:  # last: every service has closed its connections
            self.pg.stop()
            self.pg = None
