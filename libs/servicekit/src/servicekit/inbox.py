"""Idempotent consumer: an inbox row per (consumer, event) in the effect's transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import dialect_insert


async def claim(conn: AsyncConnection, inbox: Table, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` processes ``event_id``; False if it already did.

    Must run in the same transaction as the effect: if the effect rolls back,
    so does the claim, and a redelivery tries again.
    """
    insert = dialect_insert(conn)
    result = await conn.execute(
        insert(inbox)
        .values(consumer=consumer, event_id=event_id, processed_at=datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    )
    return result.rowcount == 1


_PG_CLAIM_MANY: dict[str, object] = {}


def _pg_claim_many(inbox: Table) -> object:
    """One statement for any batch size (one array parameter), built once per table: a
    multi-row VALUES list is a new statement for each batch size, and building its bind
    parameters cost more CPU than the insert itself."""
    stmt = _PG_CLAIM_MANY.get(inbox.name)
    if stmt is None:
        from sqlalchemy import text

        stmt = _PG_CLAIM_MANY[inbox.name] = text(
            f"INSERT INTO {inbox.name} (consumer, event_id, processed_at) "
            "SELECT CAST(:consumer AS text), e, CAST(:now AS timestamptz) "
            "FROM unnest(CAST(:ids AS text[])) AS e "
            "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id")
    return stmt


async def claim_many(conn: AsyncConnection, inbox: Table, consumer: str,
                     event_ids: list[str]) -> set[str]:
    """:func:`claim` for a batch in one statement; returns the ids not seen before."""
    if not event_ids:
        return set()
    now = datetime.now(UTC)
    ids = list(dict.fromkeys(event_ids))
    if conn.dialect.name == "postgresql":
        result = await conn.execute(_pg_claim_many(inbox),  # type: ignore[arg-type]
                                    {"consumer": consumer, "now": now, "ids": ids})
        return {r[0] for r in result}
    insert = dialect_insert(conn)
    rows = [{"consumer": consumer, "event_id": e, "processed_at": now} for e in ids]
    result = await conn.execute(
        insert(inbox).values(rows)
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(inbox.c.event_id)
    )
    return {r.event_id for r in result}
