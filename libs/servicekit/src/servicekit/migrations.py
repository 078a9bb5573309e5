"""Alembic glue: each service keeps its own migrations and version table.

A service's ``migrations/env.py`` is just::

    from servicekit.migrations import run_env
    from tasks_service.db import metadata
    run_env(metadata, version_table="alembic_version_tasks")

and ``upgrade(service_dir, url)`` runs them (the launcher and tests use it). As one step
before start in a deployment (a compose one-shot service, a Kubernetes Job)::

    python -m servicekit.migrations upgrade tasks       # URL from TASKS_DATABASE_URL
    python -m servicekit.migrations wait tasks --timeout 600   # replicas: wait for head

Every upgrade holds a PostgreSQL advisory lock on the service's version table for its whole
transaction, so two runs at once are safe: the second waits, then finds nothing to do.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import MetaData, pool
from sqlalchemy.ext.asyncio import async_engine_from_config

from servicekit.db import to_async_url

if TYPE_CHECKING:
    from alembic.config import Config

# alembic is imported where it runs (upgrade, env.py), not by the services that only read
# their head revision at start


def alembic_config(service_dir: Path | str, url: str) -> Config:
    from alembic.config import Config

    service_dir = Path(service_dir)
    cfg = Config()
    cfg.set_main_option("script_location", str(service_dir / "migrations"))
    cfg.set_main_option("sqlalchemy.url", to_async_url(url).replace("%", "%%"))
    return cfg


def upgrade(service_dir: Path | str, url: str, revision: str = "head") -> None:
    """Run a service's migrations up to ``revision`` (blocking; call before start)."""
    from alembic import command

    command.upgrade(alembic_config(service_dir, url), revision)


def _declared(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """A revision file's ``revision`` and ``down_revision`` (module-level literals)."""
    import ast

    values: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") \
                and value is not None:
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                return None
    rev, down = values.get("revision"), values.get("down_revision")
    if not isinstance(rev, str):
        return None
    downs = (down,) if isinstance(down, str) else tuple(down or ())  # type: ignore[arg-type]
    if not all(isinstance(d, str) for d in downs):
        return None
    return rev, downs


def head_revision(service_dir: Path | str) -> str | None:
    """The newest revision of a service's migrations.

    Read from the revision files' literals without importing alembic (a service checks its
    schema at every start, and alembic's modules stay in its memory: about 11 MB RSS in
    each process); alembic's own reading where the files are not that simple or the
    history has more than one head.
    """
    versions = Path(service_dir) / "migrations" / "versions"
    declared = [_declared(p) for p in sorted(versions.glob("*.py"))]
    if declared and all(d is not None for d in declared):
        revs = {d[0] for d in declared if d is not None}
        downs = {x for d in declared if d is not None for x in d[1]}
        heads = revs - downs
        if len(heads) == 1 and downs <= revs:
            return heads.pop()
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(service_dir) / "migrations")).get_current_head()


def version_table(service: str) -> str:
    return f"alembic_version_{service}"


def run_env(metadata: MetaData, *, version_table: str) -> None:
    """Body of a service's alembic ``env.py`` (online mode, async engine)."""
    from alembic import context

    config = context.config
    url = config.get_main_option("sqlalchemy.url")

    def do_run(connection) -> None:  # type: ignore[no-untyped-def]
        context.configure(connection=connection, target_metadata=metadata,
                          version_table=version_table, compare_type=True)
        with context.begin_transaction():
            # one migrator at a time; the next reads the version table after this commits
            connection.exec_driver_sql(
                f"SELECT pg_advisory_xact_lock(hashtext('alembic:{version_table}'))")
            context.run_migrations()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True,
                          version_table=version_table)
        with context.begin_transaction():
            context.run_migrations()
        return

    async def run_async() -> None:
        engine = async_engine_from_config(config.get_section(config.config_ini_section, {}),
                                          prefix="sqlalchemy.", poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_async())
    else:  # called from inside a running loop (tests): run in a fresh thread
        import threading

        err: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(run_async())
            except BaseException as exc:
                err.append(exc)

        t = threading.Thread(target=target)
        t.start()
        t.join()
        if err:
            raise err[0]


def current_revision(url: str, service: str) -> str | None:
    """The revision the database is at (None before the first migration)."""
    import asyncpg

    async def read() -> str | None:
        conn = await asyncpg.connect(to_async_url(url).replace("postgresql+asyncpg", "postgresql"))
        try:
            table = await conn.fetchval("SELECT to_regclass($1)", version_table(service))
            if table is None:
                return None
            row = await conn.fetchval(f"SELECT version_num FROM {version_table(service)}")
            return str(row) if row is not None else None
        finally:
            await conn.close()

    return asyncio.run(read())


def _retry_connect(what: str, fn, timeout_s: float):  # type: ignore[no-untyped-def]
    """Call ``fn`` until the database accepts connections (it may still be starting)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return fn()
        except (OSError, ConnectionError) as exc:
            if time.monotonic() >= deadline:
                raise
            print(f"{what}: database not reachable yet ({exc}); retrying", flush=True)
            time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    """``python -m servicekit.migrations {upgrade|wait} SERVICE``: see the module docstring."""
    import argparse
    import os
    import time

    ap = argparse.ArgumentParser(prog="python -m servicekit.migrations",
                                 description="migrate one service's database, or wait for it")
    ap.add_argument("action", choices=["upgrade", "wait"])
    ap.add_argument("service", help="the service name, e.g. ledger")
    ap.add_argument("--service-dir", type=Path,
                    help="folder holding migrations/ (default: services/<service>)")
    ap.add_argument("--url", help="default: <SERVICE>_DATABASE_URL")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="wait: seconds before giving up (exit 1)")
    ap.add_argument("--connect-timeout", type=float, default=60.0,
                    help="upgrade: seconds to keep retrying the first connection")
    args = ap.parse_args(argv)
    service = args.service
    service_dir = args.service_dir or Path("services") / service
    if not (service_dir / "migrations").is_dir():
        ap.error(f"no migrations folder at {service_dir / 'migrations'} (see --service-dir)")
    url = args.url or os.environ.get(f"{service.upper()}_DATABASE_URL")
    if not url:
        ap.error(f"no database URL: pass --url or set {service.upper()}_DATABASE_URL")
    head = head_revision(service_dir)
    if args.action == "upgrade":
        _retry_connect(service, lambda: upgrade(service_dir, url), args.connect_timeout)
        print(f"{service}: at {head}", flush=True)
        return 0
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            at = current_revision(url, service)
        except (OSError, ConnectionError) as exc:
            at = f"unreachable ({exc})"
        if at == head:
            print(f"{service}: at {head}", flush=True)
            return 0
        if time.monotonic() >= deadline:
            print(f"{service}: still at {at}, head is {head}, after {args.timeout:g}s",
                  flush=True)
            return 1
        time.sleep(1.0)


if __name__ == "__main__":
    raise SystemExit(main())
