"""Prepared statements on asyncpg: the same rows, errors and transaction as conn.execute."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, NoResultFound

from servicekit.db import make_engine
from servicekit.messaging_tables import add_messaging_tables
from servicekit.prepared import Prepared
from servicekit.uow import Database

metadata = MetaData()
items = Table("items", metadata, Column("id", String(20), primary_key=True),
              Column("n", Integer, nullable=False), Column("doc", JSON),
              Column("at", DateTime(timezone=True)))
outbox, _ = add_messaging_tables(metadata)

_READ = select(items.c.id, items.c.n, items.c.doc, items.c.at, literal(7).label("seven"),
               (items.c.n + 1).label("next")).where(items.c.id == bindparam("k"))
_ADD = insert(items).values(id=bindparam("k"), n=bindparam("n"),
                            doc=bindparam("doc", type_=JSON), at=bindparam("at"))
_BUMP = (update(items).where(items.c.id == bindparam("k"), items.c.n >= 0)
         .values(n=items.c.n + bindparam("by")).returning(items.c.id, items.c.n))


@pytest.fixture
async def db(database_url):
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield Database(engine, producer="kit", outbox=outbox)
    await engine.dispose()


async def test_rows_are_what_conn_execute_gives(db) -> None:
    at = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
    read, add = Prepared(_READ), Prepared(_ADD)
    async with db.unit_of_work() as uow:
        assert await add.all(uow.conn, {"k": "a", "n": 3, "doc": {"x": [1, "y"]}, "at": at}) == []
        await add.all(uow.conn, {"k": "b", "n": 5, "doc": None, "at": None})
    async with db.read() as r:
        for key in ("a", "b"):
            want = (await r.conn.execute(_READ, {"k": key})).one()
            got = await read.one(r.conn, {"k": key})
            assert tuple(got) == tuple(want) and got._mapping == dict(want._mapping)
            assert got.doc == want.doc and got.next == want.n + 1 and got.seven == 7
        assert await read.first(r.conn, {"k": "none"}) is None
        with pytest.raises(NoResultFound):  # as Result.one() raises
            await read.one(r.conn, {"k": "none"})
    with pytest.raises(AttributeError):
        _ = got.missing


async def test_it_runs_in_the_unit_of_works_transaction(db) -> None:
    """The first statement of a unit of work may be a prepared one: BEGIN is sent first,
    so a rollback takes it back."""
    add, bump = Prepared(_ADD), Prepared(_BUMP)
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as uow:
            await add.all(uow.conn, {"k": "gone", "n": 1, "doc": None, "at": None})
            raise RuntimeError("bug")
    async with db.unit_of_work() as uow:
        await add.all(uow.conn, {"k": "kept", "n": 1, "doc": None, "at": None})
        row = await bump.one(uow.conn, {"k": "kept", "by": 2})
        assert (row.id, row.n) == ("kept", 3)
    async with db.read() as r:
        ids = list((await r.conn.execute(select(items.c.id).order_by(items.c.id))).scalars())
        count = (await r.conn.execute(select(func.count()).select_from(items))).scalar()
    assert ids == ["kept"] and count == 1


async def test_errors_are_raised_as_conn_execute_raises_them(db) -> None:
    add = Prepared(_ADD)
    async with db.unit_of_work() as uow:
        await add.all(uow.conn, {"k": "dup", "n": 1, "doc": None, "at": None})
    with pytest.raises(IntegrityError) as raised:
        async with db.unit_of_work() as uow:
            await add.all(uow.conn, {"k": "dup", "n": 1, "doc": None, "at": None})
    assert raised.value.orig.sqlstate == "23505"  # type: ignore[union-attr]
    with pytest.raises(IntegrityError):  # NOT NULL, the same class as through SQLAlchemy
        async with db.unit_of_work() as uow:
            await add.all(uow.conn, {"k": "x", "n": None, "doc": None, "at": None})


async def test_a_text_statement_names_its_columns_as_the_server_does(db) -> None:
    add = Prepared(_ADD)
    count = Prepared(text("SELECT count(*) AS n, max(n) AS top FROM items WHERE n >= :least"))
    async with db.unit_of_work() as uow:
        for i in range(3):
            await add.all(uow.conn, {"k": f"t{i}", "n": i, "doc": None, "at": None})
        for _ in range(2):  # the second run uses the row class made by the first
            row = await count.one(uow.conn, {"least": 1})
            assert (row.n, row.top, row[0]) == (2, 2, 2) and row._mapping == {"n": 2, "top": 2}


def test_an_in_list_parameter_is_refused() -> None:
    stmt = select(items.c.id).where(items.c.id.in_(bindparam("ks", expanding=True)))

    class _Conn:
        from sqlalchemy.dialects.postgresql import asyncpg
        dialect = asyncpg.dialect()

    with pytest.raises(ValueError, match="expanding"):
        Prepared(stmt)._compile(_Conn())  # type: ignore[arg-type]


async def test_a_unit_of_work_of_prepared_statements_takes_two_greenlet_hops(
        db, monkeypatch) -> None:
    """The checkout with its BEGIN is one hop, the COMMIT with the checkin the other; the
    statements themselves take none (``engine.begin()`` took four, and every prepared
    statement a fifth for its driver connection)."""
    from sqlalchemy.util import concurrency

    shim = concurrency._concurrency_shim
    shim._initialize()
    made: list[object] = []
    real = shim._AsyncIoGreenlet
    me = asyncio.current_task()

    def counted(*args: object) -> object:
        # only this test's hops: a task another test left running on the shared event loop
        # (a relay's poll, say) spawns greenlets of its own meanwhile (CI counted 11 so)
        if asyncio.current_task() is me:
            made.append(args[0])
        return real(*args)

    add, bump = Prepared(_ADD), Prepared(_BUMP)
    async with db.unit_of_work() as uow:  # compiles both statements, outside the count
        await add.all(uow.conn, {"k": "warm", "n": 1, "doc": None, "at": None})
        await bump.all(uow.conn, {"k": "warm", "by": 1})
    monkeypatch.setattr(shim, "_AsyncIoGreenlet", counted)
    async with db.unit_of_work() as uow:
        await add.all(uow.conn, {"k": "a", "n": 1, "doc": None, "at": None})
        await bump.one(uow.conn, {"k": "a", "by": 2})
        await bump.one(uow.conn, {"k": "warm", "by": 2})
    assert len(made) == 2, made
    async with db.read() as r:
        n = (await r.conn.execute(select(items.c.n).where(items.c.id == "a"))).scalar()
    assert n == 3
