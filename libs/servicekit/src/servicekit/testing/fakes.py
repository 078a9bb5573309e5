"""A fake database for handler unit tests: no PostgreSQL, no bus, milliseconds.

    store = FakeLedgerStore()                    # the service's in-memory store
    ctx = fake_context(LedgerSettings(...), store, clock=lambda: NOW)
    await payouts.request_payout(rpc.RequestPayout(...), ctx)
    assert [e.type for e in ctx.db.events] == ["ledger.payout.requested"]

The fake keeps the unit of work's contract: what a unit of work records is kept only
when it commits (a body that raises rolls it back; ``CommitThen`` commits, then raises),
and ``after_commit`` callbacks run after a commit only.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, Generic

from contracts.envelope import Envelope
from servicekit.context import Context
from servicekit.errors import CommitThen
from servicekit.settings import ServiceSettings
from servicekit.uow import Reader, StoreT, UnitOfWork


class FakeDatabase(Generic[StoreT]):
    def __init__(self, store: StoreT, *, producer: str = "test") -> None:
        self.store = store
        self.producer = producer
        self.events: list[Envelope] = []  # every committed event, in order
        self.commits = 0
        self.rollbacks = 0

    @contextlib.asynccontextmanager
    async def unit_of_work(self, *, autocommit: bool = False
                           ) -> AsyncIterator[UnitOfWork[StoreT]]:
        uow: UnitOfWork[StoreT] = UnitOfWork(None, self.store,  # type: ignore[arg-type]
                                             producer=self.producer, autocommit=autocommit)
        refusal = None
        try:
            yield uow
        except CommitThen as then:
            refusal = then.error
        except BaseException:
            self.rollbacks += 1
            raise
        self._commit(uow)
        if refusal is not None:
            raise refusal

    @contextlib.asynccontextmanager
    async def consumer_unit(self) -> AsyncIterator[UnitOfWork[StoreT]]:
        async with self.unit_of_work() as uow:
            yield uow

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Reader[StoreT]]:
        yield Reader(None, self.store)  # type: ignore[arg-type]

    def _commit(self, uow: UnitOfWork[Any]) -> None:
        self.commits += 1
        self.events += uow.recorded
        for fn in uow._after:
            fn()

    def event_types(self) -> list[str]:
        return [e.type for e in self.events]


def fixed_clock(at: datetime | None = None) -> Callable[[], datetime]:
    now = at or datetime(2026, 1, 1, tzinfo=UTC)
    return lambda: now


def fake_context(settings: ServiceSettings, store: Any, *,
                 clock: Callable[[], datetime] | None = None,
                 context: Callable[..., Context[Any, Any]] = Context,
                 **extra: Any) -> Any:
    """A handler context around :class:`FakeDatabase` (``ctx.db.events`` after the call)."""
    return context(settings=settings, db=FakeDatabase(store, producer=settings.service_name),
                   clock=clock or fixed_clock(), **extra)
