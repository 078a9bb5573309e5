"""pytest fixtures shared by every test suite of the workspace.

* ``nats_server``: one real nats-server per test session (random port, temp store).
* ``database_url``: a fresh database per test: PostgreSQL by default
  (``MTE_TEST_PG_ADMIN_URL``, default the local server), or SQLite when
  ``MTE_TEST_DB=sqlite``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from servicekit.testing.natsserver import NatsServer

PG_ADMIN_URL = os.environ.get("MTE_TEST_PG_ADMIN_URL",
                              "postgresql://postgres@127.0.0.1:5432/postgres")


def test_backend() -> str:
    return os.environ.get("MTE_TEST_DB", "postgres")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server of the test module's own: a service another suite leaves running on
    the shared server (same RPC queue group, same durable consumers) can't answer for it."""
    server = NatsServer(tmp_path_factory.mktemp("module-nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of this test alone (outages, restarts, or a clean bus)."""
    server = NatsServer(tmp_path / "own-nats")
    server.start()
    yield server
    server.stop()


def pg_url(database: str, admin_url: str | None = None) -> str:
    """The admin URL pointed at ``database`` (its host, port, socket and options kept)."""
    from sqlalchemy.engine import make_url

    url = make_url(admin_url or PG_ADMIN_URL).set(database=database)
    return url.render_as_string(hide_password=False)


async def create_pg_database(prefix: str = "mte_test") -> str:
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return pg_url(name)


async def drop_pg_database(url: str) -> None:
    import asyncpg

    from sqlalchemy.engine import make_url

    name = make_url(url).database
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class DatabaseFactory:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.created: list[str] = []

    async def new(self, prefix: str = "mte_test") -> str:
        if test_backend() == "sqlite":
            return f"sqlite+aiosqlite:///{self.tmp / (prefix + '_' + uuid.uuid4().hex[:8])}.db"
        url = await create_pg_database(prefix)
        self.created.append(url)
        return url

    async def cleanup(self) -> None:
        for url in self.created:
            await drop_pg_database(url)
        self.created.clear()


@pytest.fixture
async def databases(tmp_path: Path) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path)
    yield factory
    await factory.cleanup()


@pytest.fixture
async def database_url(databases: DatabaseFactory) -> str:
    return await databases.new()
