"""Which database failures a consumer waits out, measured on real PostgreSQL errors."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from servicekit.consumer import is_permanent, is_transient
from servicekit.db import make_engine, to_async_url


async def test_a_lock_timeout_and_a_statement_timeout_are_waited_out(database_url) -> None:
    holder = make_engine(database_url)
    waiter = make_engine(database_url, lock_timeout_ms=100, statement_timeout_ms=300)
    try:
        async with holder.begin() as conn:
            await conn.execute(text("CREATE TABLE gate (id int PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO gate VALUES (1)"))
        async with holder.begin() as held:
            await held.execute(text("SELECT * FROM gate FOR UPDATE"))
            with pytest.raises(DBAPIError) as locked:
                async with waiter.begin() as conn:
                    await conn.execute(text("UPDATE gate SET id = 1"))
        assert is_transient(locked.value) and not is_permanent(locked.value)
        with pytest.raises(DBAPIError) as slow:
            async with waiter.begin() as conn:
                await conn.execute(text("SELECT pg_sleep(2)"))
        assert is_transient(slow.value)
        # a bug in a statement is not something to wait for
        with pytest.raises(DBAPIError) as bug:
            async with waiter.begin() as conn:
                await conn.execute(text("SELECT * FROM no_such_table"))
        assert not is_transient(bug.value)
    finally:
        await holder.dispose()
        await waiter.dispose()


def test_only_postgresql_urls_are_accepted() -> None:
    assert to_async_url("postgresql://u@h/db").startswith("postgresql+asyncpg://")
    with pytest.raises(ValueError, match="only PostgreSQL"):
        to_async_url("mysql://u@h/db")
