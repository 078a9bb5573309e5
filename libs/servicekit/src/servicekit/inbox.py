"""Idempotent consumer: an inbox row per (consumer, event) in the effect's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.prepared import Prepared

_CLAIMS: dict[str, Any] = {}


def _claim_statement(inbox: Table) -> Any:
    """One statement for any batch size (one array parameter), built once per table: a
    multi-row VALUES list is a new statement for each batch size, and building its bind
    parameters cost more CPU than the insert itself. Prepared on asyncpg (every batch of
    every consumer claims)."""
    stmt = _CLAIMS.get(inbox.name)
    if stmt is None:
        stmt = _CLAIMS[inbox.name] = Prepared(text(
            f"INSERT INTO {inbox.name} (consumer, event_id, processed_at) "
            "SELECT CAST(:consumer AS text), e, CAST(:now AS timestamptz) "
            "FROM unnest(CAST(:ids AS text[])) AS e "
            "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id"))
    return stmt


async def claim_many(conn: AsyncConnection, inbox: Table, consumer: str,
                     event_ids: list[str]) -> set[str]:
    """Record that ``consumer`` processes these events; returns the ids not seen before.

    Must run in the same transaction as the effect: if the effect rolls back, so does
    the claim, and a redelivery tries again.
    """
    if not event_ids:
        return set()
    rows = await _claim_statement(inbox).all(conn, {
        "consumer": consumer, "now": datetime.now(UTC), "ids": list(dict.fromkeys(event_ids))})
    return {r[0] for r in rows}
