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


async def claim_many(conn: AsyncConnection, inbox: Table, consumer: str,
                     event_ids: list[str]) -> set[str]:
    """:func:`claim` for a batch in one statement; returns the ids not seen before."""
    if not event_ids:
        return set()
    insert = dialect_insert(conn)
    now = datetime.now(UTC)
    rows = [{"consumer": consumer, "event_id": e, "processed_at": now}
            for e in dict.fromkeys(event_ids)]
    result = await conn.execute(
        insert(inbox).values(rows)
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(inbox.c.event_id)
    )
    return {r.event_id for r in result}
