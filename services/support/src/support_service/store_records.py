"""SQL of leads (with their attempts and captchas) and of legal acceptances; mixed into
:class:`support_service.store.SupportStore`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.rpc import support as rpc
from servicekit.db import insert
from support_service.db import lead_attempts, lead_captchas, leads, legal_acceptances

_LEAD_FIELDS = ("lead_id", "name", "contact", "company", "message", "status", "notes",
                "created_at", "updated_at")
_ACCEPT = insert(legal_acceptances).on_conflict_do_nothing(
    index_elements=["user_id", "doc_id", "version"])


class RecordsStore:
    conn: AsyncConnection

    # ------------------------------------------------------------------ lead limits

    async def lock_address(self, address_hash: str) -> None:
        """Serialize the posts of one address for the rest of the transaction, so that a
        burst cannot slip past the limit between counting and recording."""
        await self.conn.execute(select(func.pg_advisory_xact_lock(
            func.hashtextextended(f"lead:{address_hash}", 0))))

    async def lead_attempts_since(self, address_hash: str,
                                  since: datetime) -> tuple[int, datetime | None]:
        """How many posts the address made since ``since``, and the oldest of them."""
        row = (await self.conn.execute(
            select(func.count(), func.min(lead_attempts.c.at))
            .where(lead_attempts.c.address_hash == address_hash, lead_attempts.c.at >= since)
        )).one()
        return int(row[0]), row[1]

    async def add_lead_attempt(self, address_hash: str, at: datetime) -> None:
        await self.conn.execute(lead_attempts.insert().values(address_hash=address_hash, at=at))

    async def forget_lead_attempts(self, address_hash: str, before: datetime) -> None:
        """Drop the address's attempts and challenges that no longer count."""
        await self.conn.execute(delete(lead_attempts).where(
            lead_attempts.c.address_hash == address_hash, lead_attempts.c.at < before))
        await self.conn.execute(delete(lead_captchas).where(
            lead_captchas.c.address_hash == address_hash, lead_captchas.c.expires_at < before))

    async def add_lead_captcha(self, challenge_id: str, address_hash: str, answer: str,
                               expires_at: datetime) -> None:
        await self.conn.execute(lead_captchas.insert().values(
            challenge_id=challenge_id, address_hash=address_hash, answer=answer,
            expires_at=expires_at))

    async def use_lead_captcha(self, challenge_id: str, address_hash: str,
                               now: datetime) -> str | None:
        """Mark the address's unexpired, unused challenge used; its answer, or None."""
        row = (await self.conn.execute(
            update(lead_captchas)
            .where(lead_captchas.c.challenge_id == challenge_id,
                   lead_captchas.c.address_hash == address_hash,
                   lead_captchas.c.used.is_(False), lead_captchas.c.expires_at > now)
            .values(used=True).returning(lead_captchas.c.answer))).first()
        return str(row[0]) if row else None

    # ------------------------------------------------------------------------ leads

    async def add_lead(self, values: dict[str, Any]) -> None:
        await self.conn.execute(leads.insert().values(**values))

    async def list_leads(self, *, status: str | None, limit: int,
                         offset: int) -> tuple[list[rpc.Lead], int]:
        cond = [leads.c.status == status] if status else []
        total = (await self.conn.execute(
            select(func.count()).select_from(leads).where(*cond))).scalar_one()
        rows = (await self.conn.execute(
            select(*(leads.c[f] for f in _LEAD_FIELDS)).where(*cond)
            .order_by(leads.c.created_at.desc(), leads.c.lead_id)
            .limit(limit).offset(offset))).all()
        return [rpc.Lead.model_validate(dict(r._mapping)) for r in rows], int(total)

    async def update_lead(self, lead_id: str, changes: dict[str, Any]) -> rpc.Lead | None:
        row = (await self.conn.execute(
            update(leads).where(leads.c.lead_id == lead_id).values(**changes)
            .returning(*(leads.c[f] for f in _LEAD_FIELDS)))).first()
        return rpc.Lead.model_validate(dict(row._mapping)) if row else None

    # ------------------------------------------------------------------------ legal

    async def accept_legal(self, *, user_id: str, doc_id: str, version: str, lang: str,
                           at: datetime) -> None:
        await self.conn.execute(_ACCEPT, {"user_id": user_id, "doc_id": doc_id,
                                          "version": version, "lang": lang, "accepted_at": at})

    async def acceptance(self, user_id: str, doc_id: str,
                         version: str) -> datetime | None:
        row = (await self.conn.execute(
            select(legal_acceptances.c.accepted_at).where(
                legal_acceptances.c.user_id == user_id, legal_acceptances.c.doc_id == doc_id,
                legal_acceptances.c.version == version))).first()
        return row[0] if row else None

    async def latest_acceptance(self, user_id: str,
                                doc_id: str) -> tuple[str, datetime] | None:
        row = (await self.conn.execute(
            select(legal_acceptances.c.version, legal_acceptances.c.accepted_at).where(
                legal_acceptances.c.user_id == user_id, legal_acceptances.c.doc_id == doc_id)
            .order_by(legal_acceptances.c.accepted_at.desc()).limit(1))).first()
        return (str(row[0]), row[1]) if row else None
