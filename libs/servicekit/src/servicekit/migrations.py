"""Alembic glue: each service keeps its own migrations and version table.

A service's ``migrations/env.py`` is just::

    from servicekit.migrations import run_env
    from tasks_service.db import metadata
    run_env(metadata, version_table="alembic_version_tasks")

and ``upgrade(service_dir, url)`` runs them (the launcher and tests use it).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.ext.asyncio import async_engine_from_config

from servicekit.db import is_sqlite, to_async_url


def alembic_config(service_dir: Path | str, url: str) -> Config:
    service_dir = Path(service_dir)
    cfg = Config()
    cfg.set_main_option("script_location", str(service_dir / "migrations"))
    cfg.set_main_option("sqlalchemy.url", to_async_url(url).replace("%", "%%"))
    return cfg


def upgrade(service_dir: Path | str, url: str, revision: str = "head") -> None:
    """Run a service's migrations up to ``revision`` (blocking; call before start)."""
    if is_sqlite(url):
        from sqlalchemy.engine import make_url

        db = make_url(url).database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(service_dir, url), revision)


def run_env(metadata: MetaData, *, version_table: str) -> None:
    """Body of a service's alembic ``env.py`` (online mode, async engine)."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")

    def do_run(connection) -> None:  # type: ignore[no-untyped-def]
        context.configure(connection=connection, target_metadata=metadata,
                          version_table=version_table, render_as_batch=is_sqlite(url or ""),
                          compare_type=True)
        with context.begin_transaction():
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
            except BaseException as exc:  # noqa: BLE001
                err.append(exc)

        t = threading.Thread(target=target)
        t.start()
        t.join()
        if err:
            raise err[0]
