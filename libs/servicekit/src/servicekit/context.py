"""What a handler receives: settings, the clock and the database, nothing that closes
over the service.

    async def take(req: rpc.Take, ctx: TasksContext) -> rpc.TakeResult:
        async with ctx.uow() as uow: ...

A service may subclass :class:`Context` to add its own (read-only) collaborators; tests
build one around a fake database (``servicekit.testing.fakes``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from servicekit.settings import ServiceSettings
from servicekit.uow import Db, Reader, UnitOfWork

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
StoreT = TypeVar("StoreT")


def utcnow() -> datetime:
    return datetime.now(UTC)


class ReadOnlyState:
    """Whether the platform's emergency read-only mode is on (kept by the service kit from
    the gateway's bucket; always off where nothing watches it, as in unit tests)."""

    enabled: bool = False


@dataclass
class Context(Generic[SettingsT, StoreT]):
    settings: SettingsT
    db: Db[StoreT]
    clock: Callable[[], datetime] = utcnow
    read_only: ReadOnlyState = field(default_factory=ReadOnlyState)

    @property
    def service(self) -> str:
        return self.settings.service_name

    def uow(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork[StoreT]]:
        """A transaction: changes and recorded events commit together."""
        return self.db.unit_of_work()

    def statement(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork[StoreT]]:
        """Statements that commit one by one (for a change that is one statement, with its
        event written by the same statement)."""
        return self.db.unit_of_work(autocommit=True)

    def read(self) -> contextlib.AbstractAsyncContextManager[Reader[StoreT]]:
        """Reads without a transaction."""
        return self.db.read()


ContextFactory = Callable[..., Context[Any, Any]]
