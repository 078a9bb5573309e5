"""A support context on a real PostgreSQL (migrated to head), for handler tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from servicekit.context import Context
from servicekit.db import make_engine
from servicekit.migrations import upgrade
from servicekit.uow import Database
from support_service.db import outbox
from support_service.settings import SupportSettings
from support_service.store import SupportStore

SERVICE_DIR = Path(__file__).parents[1]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def pg_ctx(database_url: str, clock: Clock) -> AsyncIterator[Context]:
    upgrade(SERVICE_DIR, database_url)
    settings = SupportSettings(database_url=database_url, environment="test")
    engine = make_engine(database_url)
    db: Database[SupportStore] = Database(engine, producer="support", outbox=outbox,
                                          store=SupportStore)
    try:
        yield Context(settings=settings, db=db, clock=clock)
    finally:
        await engine.dispose()
