"""SQL of task and pool chat: messages, the assignments' workers, pools, mutes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.rpc import support as rpc
from servicekit.db import insert
from servicekit.prepared import Prepared
from support_service.db import chat_assignments, chat_messages, chat_mutes, chat_pools

# the assignments of task chats (written with a thread's first post), in one execution
# over arrays, prepared on asyncpg
_INSERT_ASSIGNMENTS = Prepared(text(
    "INSERT INTO chat_assignments (assignment_id, worker_id, pool_id, task_id, taken_at) "
    "SELECT * FROM unnest(CAST(:a AS text[]), CAST(:w AS text[]), CAST(:p AS text[]), "
    "CAST(:t AS text[]), CAST(:at AS timestamptz[])) "
    "ON CONFLICT (assignment_id) DO NOTHING"))
_INSERT_POOL = insert(chat_pools).on_conflict_do_nothing(index_elements=["pool_id"])
_INSERT_MESSAGE = insert(chat_messages)
_UPSERT_MUTE = insert(chat_mutes)
_UPSERT_MUTE = _UPSERT_MUTE.on_conflict_do_update(
    index_elements=["user_id"],
    set_={"until": _UPSERT_MUTE.excluded.until, "by_user_id": _UPSERT_MUTE.excluded.by_user_id,
          "reason": _UPSERT_MUTE.excluded.reason,
          "created_at": _UPSERT_MUTE.excluded.created_at})
# Serializes one author's posts, so two at once cannot both slip under the rate limit.
_LOCK_AUTHOR = text("SELECT pg_advisory_xact_lock(hashtext('support.chat:' || :user_id))")


def _message(row: object) -> rpc.ChatMessage:
    m = dict(row._mapping)  # type: ignore[attr-defined]
    deleted = m["deleted_at"] is not None
    return rpc.ChatMessage(message_id=m["message_id"], kind=m["kind"], ref=m["ref"],
                           author_id=m["author_id"], author_role=m["author_role"],
                           text="" if deleted else m["text"], deleted=deleted,
                           created_at=m["created_at"])


class ChatStore:
    conn: AsyncConnection

    async def remember_assignments(self, rows: list[dict[str, Any]]) -> None:
        """Each row: assignment_id, worker_id, pool_id, task_id, taken_at (known ones stay)."""
        if rows:
            await _INSERT_ASSIGNMENTS.all(self.conn, {
                key: [r[col] for r in rows] for key, col in (
                    ("a", "assignment_id"), ("w", "worker_id"), ("p", "pool_id"),
                    ("t", "task_id"), ("at", "taken_at"))})

    async def remember_pool(self, pool_id: str, opened_at: datetime) -> None:
        await self.conn.execute(_INSERT_POOL, {"pool_id": pool_id, "opened_at": opened_at})

    async def assignment_worker(self, assignment_id: str) -> str | None:
        return (await self.conn.execute(select(chat_assignments.c.worker_id).where(
            chat_assignments.c.assignment_id == assignment_id))).scalar_one_or_none()

    async def pool_known(self, pool_id: str) -> bool:
        return (await self.conn.execute(select(chat_pools.c.pool_id).where(
            chat_pools.c.pool_id == pool_id))).first() is not None

    async def pools(self) -> list[str]:
        return list((await self.conn.execute(
            select(chat_pools.c.pool_id).order_by(chat_pools.c.opened_at.desc())
            .limit(200))).scalars())

    async def lock_author(self, user_id: str) -> None:
        await self.conn.execute(_LOCK_AUTHOR, {"user_id": user_id})

    async def posts_since(self, user_id: str, since: datetime) -> list[datetime]:
        """When ``user_id`` posted since ``since``, oldest first (the rate limit's window)."""
        return list((await self.conn.execute(
            select(chat_messages.c.created_at).where(chat_messages.c.author_id == user_id,
                                                     chat_messages.c.created_at > since)
            .order_by(chat_messages.c.created_at))).scalars())

    async def muted_until(self, user_id: str, now: datetime) -> datetime | None:
        return (await self.conn.execute(select(chat_mutes.c.until).where(
            chat_mutes.c.user_id == user_id, chat_mutes.c.until > now))).scalar_one_or_none()

    async def set_mute(self, *, user_id: str, until: datetime, by_user_id: str, reason: str,
                       now: datetime) -> None:
        await self.conn.execute(_UPSERT_MUTE, {"user_id": user_id, "until": until,
                                               "by_user_id": by_user_id, "reason": reason,
                                               "created_at": now})

    async def add_chat_message(self, message: rpc.ChatMessage) -> None:
        await self.conn.execute(_INSERT_MESSAGE, message.model_dump(exclude={"deleted"}))

    async def chat_message(self, message_id: str) -> rpc.ChatMessage | None:
        row = (await self.conn.execute(select(chat_messages).where(
            chat_messages.c.message_id == message_id))).first()
        return _message(row) if row else None

    async def delete_chat_message(self, message_id: str, *, by: str,
                                  now: datetime) -> rpc.ChatMessage | None:
        row = (await self.conn.execute(
            update(chat_messages).where(chat_messages.c.message_id == message_id,
                                        chat_messages.c.deleted_at.is_(None))
            .values(deleted_at=now, deleted_by=by).returning(*chat_messages.c))).first()
        return _message(row) if row else None

    async def chat_messages(self, kind: str, ref: str, limit: int) -> list[rpc.ChatMessage]:
        rows = (await self.conn.execute(
            select(chat_messages).where(chat_messages.c.kind == kind, chat_messages.c.ref == ref)
            .order_by(chat_messages.c.created_at.desc(), chat_messages.c.message_id.desc())
            .limit(limit))).all()
        return [_message(r) for r in reversed(rows)]

    async def chat_threads(self, *, worker_id: str | None,
                           limit: int) -> list[rpc.ChatThreadSummary]:
        """Task-chat threads with messages, newest first (a worker's own only)."""
        q = (select(chat_messages.c.ref, chat_assignments.c.worker_id, chat_assignments.c.pool_id,
                    func.max(chat_messages.c.created_at).label("last_at"),
                    func.count().label("messages"))
             .join(chat_assignments, chat_assignments.c.assignment_id == chat_messages.c.ref)
             .where(chat_messages.c.kind == "assignment")
             .group_by(chat_messages.c.ref, chat_assignments.c.worker_id,
                       chat_assignments.c.pool_id)
             .order_by(func.max(chat_messages.c.created_at).desc()).limit(limit))
        if worker_id is not None:
            q = q.where(chat_assignments.c.worker_id == worker_id)
        return [rpc.ChatThreadSummary(kind="assignment", ref=r.ref, worker_id=r.worker_id,
                                      pool_id=r.pool_id, last_at=r.last_at, messages=r.messages)
                for r in (await self.conn.execute(q)).all()]
