"""insert_many: COPY for many rows holds exactly what the executemany INSERT would, in the
unit of work's transaction, with the table's constraints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from servicekit.db import COPY_MIN_ROWS, insert_many, make_engine
from servicekit.messaging_tables import add_messaging_tables
from servicekit.uow import Database

metadata = MetaData()
rows_t = Table("rows_t", metadata, Column("id", String(36), primary_key=True),
               Column("batch", String(10), nullable=False),
               Column("data", JSON, nullable=False), Column("extra", JSON, nullable=True),
               Column("flag", Boolean, nullable=False),
               Column("n", Integer, nullable=False, server_default="0"),
               Column("at", DateTime(timezone=True), nullable=False),
               CheckConstraint("n >= 0", name="ck_n"))
outbox, _ = add_messaging_tables(metadata)
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def make(batch: str, n: int, *, bad_at: int | None = None) -> list[dict]:
    return [{"id": f"{batch}-{i}", "batch": batch,
             "data": {"word": f"w{i}", "list": [1, "ü"], "nested": {"x": None}},
             "extra": None if i % 2 else {"i": i}, "flag": i % 3 == 0,
             "n": -1 if i == bad_at else i, "at": AT} for i in range(n)]


@pytest.fixture
async def db(database_url):
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield Database(engine, producer="kit", outbox=outbox)
    await engine.dispose()


async def stored(db: Database, batch: str) -> list[tuple]:
    cols = [rows_t.c.id, rows_t.c.data, rows_t.c.extra, rows_t.c.flag, rows_t.c.n,
            rows_t.c.at, text("rows_t.data::text"), text("rows_t.extra::text")]
    async with db.read() as r:
        res = await r.conn.execute(select(*cols).where(rows_t.c.batch == batch)
                                   .order_by(rows_t.c.n))
        return [tuple(row) for row in res]


async def test_copy_stores_what_the_insert_stores(db) -> None:
    n = COPY_MIN_ROWS + 50
    async with db.unit_of_work() as uow:
        await uow.conn.execute(select(1))  # as a handler reads before it writes
        await insert_many(uow.conn, rows_t, make("copy", n))
    async with db.unit_of_work() as uow:
        await uow.conn.execute(rows_t.insert(), make("ins", n))
    copied, inserted = await stored(db, "copy"), await stored(db, "ins")
    assert len(copied) == n
    # the same values, and the same JSON text (None in a JSON column is JSON null, as the
    # INSERT writes it)
    assert [r[1:] for r in copied] == [r[1:] for r in inserted]
    assert copied[1][2] is None and copied[1][7] == "null"


async def test_copy_rolls_back_with_the_unit_of_work(db) -> None:
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as uow:
            await uow.conn.execute(select(1))
            await insert_many(uow.conn, rows_t, make("gone", COPY_MIN_ROWS * 2))
            raise RuntimeError("a later step fails")
    assert await stored(db, "gone") == []


async def test_copy_keeps_the_constraints(db) -> None:
    with pytest.raises(IntegrityError, match="ck_n") as failed:
        async with db.unit_of_work() as uow:
            await uow.conn.execute(select(1))
            await insert_many(uow.conn, rows_t, make("bad", COPY_MIN_ROWS, bad_at=7))
    assert failed.value.orig.sqlstate == "23514"  # type: ignore[union-attr]  # as an INSERT's
    async with db.read() as r:
        assert (await r.conn.execute(select(func.count()).select_from(rows_t))).scalar() == 0


async def test_few_rows_and_the_first_statement_of_a_transaction_work_too(db) -> None:
    async with db.unit_of_work() as uow:
        await insert_many(uow.conn, rows_t, make("few", 3))
    async with db.unit_of_work() as uow:  # nothing ran before: no driver transaction yet
        await insert_many(uow.conn, rows_t, make("first", COPY_MIN_ROWS))
    assert len(await stored(db, "few")) == 3
    assert len(await stored(db, "first")) == COPY_MIN_ROWS
