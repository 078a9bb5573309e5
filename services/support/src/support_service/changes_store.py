"""SQL of configuration changes; mixed into :class:`support_service.store.SupportStore`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from contracts.rpc import support as rpc
from servicekit.db import insert
from support_service.db import config_changes

_CHANGE_FIELDS = tuple(rpc.Change.model_fields)
# the partial unique index: one open revert per change
_INSERT_CHANGE = insert(config_changes).on_conflict_do_nothing(
    index_elements=["reverts"], index_where=text("state = 'proposed'"))


def _change(row: Any) -> rpc.Change:
    return rpc.Change.model_validate(dict(row._mapping))


class ChangesStore:
    conn: AsyncConnection

    async def add_change(self, values: dict[str, Any]) -> bool:
        """Store a proposal; False when the change it reverts already has an open revert."""
        result = await self.conn.execute(_INSERT_CHANGE, values)
        return result.rowcount == 1

    async def get_change(self, change_id: str, *, lock: bool = False) -> rpc.Change | None:
        q = select(*(config_changes.c[f] for f in _CHANGE_FIELDS)).where(
            config_changes.c.change_id == change_id)
        row = (await self.conn.execute(q.with_for_update() if lock else q)).first()
        return _change(row) if row else None

    async def open_revert_of(self, change_id: str) -> str | None:
        row = (await self.conn.execute(select(config_changes.c.change_id).where(
            config_changes.c.reverts == change_id,
            config_changes.c.state == "proposed"))).first()
        return str(row[0]) if row else None

    async def list_changes(self, *, state: str | None, kind: str | None, money: bool | None,
                           limit: int, offset: int) -> tuple[list[rpc.Change], int]:
        cond: list[ColumnElement[bool]] = (
            [] if money is None else [config_changes.c.money.is_(money)])
        if state:
            cond.append(config_changes.c.state == state)
        if kind:
            cond.append(config_changes.c.kind == kind)
        total = (await self.conn.execute(
            select(func.count()).select_from(config_changes).where(*cond))).scalar_one()
        rows = (await self.conn.execute(
            select(*(config_changes.c[f] for f in _CHANGE_FIELDS)).where(*cond)
            .order_by(config_changes.c.created_at.desc(), config_changes.c.change_id)
            .limit(limit).offset(offset))).all()
        return [_change(r) for r in rows], int(total)

    async def decide_change(self, change_id: str, values: dict[str, Any]) -> rpc.Change | None:
        """Move a proposed change to its outcome; None when it is no longer proposed."""
        row = (await self.conn.execute(
            update(config_changes)
            .where(config_changes.c.change_id == change_id,
                   config_changes.c.state == "proposed")
            .values(**values)
            .returning(*(config_changes.c[f] for f in _CHANGE_FIELDS)))).first()
        return _change(row) if row else None

    async def mark_reverted(self, change_id: str, by_change_id: str) -> None:
        await self.conn.execute(update(config_changes)
                                .where(config_changes.c.change_id == change_id)
                                .values(reverted_by=by_change_id))
