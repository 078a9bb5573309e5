"""The unit of work: the only way a handler touches its service's database.

    async with ctx.uow() as uow:              # one transaction
        row = await uow.store.lock_pool(pool_id)
        uow.record(PoolOpened(...))            # into the outbox, in this transaction
        if late:
            raise CommitThen(Conflict(...))    # keep the changes, then refuse

    async with ctx.statement() as uow:        # every statement commits on its own
        env, params = uow.outbox_params(ReviewAccepted(...))   # change + event, one statement

    async with ctx.read() as r:               # reads, no BEGIN/COMMIT round trips
        await r.store.list_pools(...)

A unit of work owns the transaction, writes the events it recorded to the outbox in one
statement just before the commit, wakes the relay after a commit that recorded events,
runs the ``after_commit`` callbacks, and turns ``CommitThen`` into "commit, then raise".
Consumers run inside one too (the inbox claim shares its transaction).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.envelope import Envelope, new_envelope
from servicekit.db import transaction
from servicekit.errors import CommitThen
from servicekit.outbox import (
    EVENTS_RECORDED,
    count_recorded,
    current_trace_headers,
    outbox_row,
    write_outbox,
)

StoreT = TypeVar("StoreT")
StoreT_co = TypeVar("StoreT_co", covariant=True)
StoreFactory = Callable[[AsyncConnection], Any]


def _envelope(event: BaseModel, producer: str, cause: Envelope | None,
              correlation_id: str | None) -> Envelope:
    return new_envelope(
        event, producer=producer,
        correlation_id=correlation_id or ((cause.correlation_id or cause.event_id)
                                          if cause else None),
        causation_id=cause.event_id if cause else None)


class UnitOfWork(Generic[StoreT]):
    """One transaction (or, with ``autocommit``, a run of self-committing statements)."""

    def __init__(self, conn: AsyncConnection, store: StoreT, *, producer: str,
                 autocommit: bool = False, outbox: Table | None = None) -> None:
        self.conn = conn
        self.store = store
        self.producer = producer
        self.autocommit = autocommit
        self.pending: list[Envelope] = []  # recorded, written to the outbox at commit
        self.recorded: list[Envelope] = []  # everything this unit of work put in the outbox
        self.flushed: dict[str, int] = {}  # written early by flush(): counts per type
        self._after: list[Callable[[], Any]] = []
        self._outbox = outbox  # for flush(); None: the fakes

    def record(self, event: BaseModel, *, cause: Envelope | None = None,
               correlation_id: str | None = None) -> Envelope:
        """Record ``event`` to be published once this unit of work commits.

        ``cause``: the event being handled (its id becomes the causation id, its
        correlation id is kept).
        """
        if self.autocommit:
            raise RuntimeError("record() needs a transaction: in a statement unit of work, "
                               "write the event with the change (outbox_params)")
        env = _envelope(event, self.producer, cause, correlation_id)
        self.pending.append(env)
        self.recorded.append(env)
        return env

    def outbox_params(self, event: BaseModel, *,
                      cause: Envelope | None = None) -> tuple[Envelope, dict[str, Any]]:
        """Parameters for a statement built with :func:`servicekit.outbox.outbox_insert_from`
        that writes ``event`` in the same round trip as the change it reports."""
        env = _envelope(event, self.producer, cause, None)
        self.recorded.append(env)
        row = outbox_row(env, json.dumps(current_trace_headers()))
        return env, {f"ob_{k}": v for k, v in row.items()}

    async def flush(self) -> None:
        """Write the events recorded so far to the outbox now, inside this transaction, and
        let go of them, so that a unit of work recording very many events (every task of a
        pool) keeps its memory flat. They still commit or roll back with the rest, and are
        counted after the commit. Without a database (the fakes) the events stay recorded."""
        if self._outbox is None or not self.pending:
            return
        await write_outbox(self.conn, self._outbox, self.pending)
        done = {id(env) for env in self.pending}
        for env in self.pending:
            self.flushed[env.type] = self.flushed.get(env.type, 0) + 1
        self.recorded = [env for env in self.recorded if id(env) not in done]
        self.pending.clear()

    def after_commit(self, fn: Callable[[], Any]) -> None:
        """Call ``fn`` (no arguments) once the changes are committed."""
        self._after.append(fn)


class Reader(Generic[StoreT_co]):
    """Reads on an autocommit connection (no transaction round trips)."""

    def __init__(self, conn: AsyncConnection, store: StoreT_co) -> None:
        self.conn = conn
        self.store = store


class Db(Protocol[StoreT]):
    """What a handler's context needs of the database (real or fake)."""

    def unit_of_work(self, *, autocommit: bool = False
                     ) -> contextlib.AbstractAsyncContextManager[UnitOfWork[StoreT]]: ...

    def read(self) -> contextlib.AbstractAsyncContextManager[Reader[StoreT]]: ...


class Database(Generic[StoreT]):
    """A service's engine, its outbox table and its store (the SQL of the service)."""

    def __init__(self, engine: AsyncEngine, *, producer: str, outbox: Table,
                 store: StoreFactory | None = None) -> None:
        self.engine = engine
        self.autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.producer = producer
        self.outbox = outbox
        self.store_factory: StoreFactory = store or (lambda _conn: None)
        self.on_recorded: Callable[[], None] = lambda: None  # the relay's wake-up, once started

    @contextlib.asynccontextmanager
    async def unit_of_work(self, *, autocommit: bool = False
                           ) -> AsyncIterator[UnitOfWork[StoreT]]:
        refusal = None
        if autocommit:
            async with self.autocommit_engine.connect() as conn:
                uow: UnitOfWork[StoreT] = UnitOfWork(conn, self.store_factory(conn),
                                                     producer=self.producer, autocommit=True)
                try:
                    yield uow
                except CommitThen as then:
                    refusal = then.error
        else:
            async with transaction(self.engine) as conn:
                uow = self._transaction_unit(conn)
                try:
                    yield uow
                except CommitThen as then:
                    refusal = then.error
                await write_outbox(conn, self.outbox, uow.pending)
                uow.pending.clear()
        self._committed(uow)
        if refusal is not None:
            raise refusal

    def _transaction_unit(self, conn: AsyncConnection) -> UnitOfWork[StoreT]:
        return UnitOfWork(conn, self.store_factory(conn), producer=self.producer,
                          outbox=self.outbox)

    def _committed(self, uow: UnitOfWork[Any]) -> None:
        if uow.recorded:
            count_recorded(self.producer, uow.recorded)
        for type_, n in uow.flushed.items():
            EVENTS_RECORDED.labels(self.producer, type_).inc(n)
        if uow.recorded or uow.flushed:
            self.on_recorded()
        for fn in uow._after:
            fn()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Reader[StoreT]]:
        async with self.autocommit_engine.connect() as conn:
            yield Reader(conn, self.store_factory(conn))

    @contextlib.asynccontextmanager
    async def consumer_unit(self) -> AsyncIterator[UnitOfWork[StoreT]]:
        """A unit of work for a consumer: like :meth:`unit_of_work` without ``CommitThen``
        (an event handler has nobody to refuse)."""
        async with transaction(self.engine) as conn:
            uow = self._transaction_unit(conn)
            yield uow
            await write_outbox(conn, self.outbox, uow.pending)
            uow.pending.clear()
        self._committed(uow)
