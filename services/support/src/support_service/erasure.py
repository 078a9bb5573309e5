"""Erasure of a user's personal data in support: the texts they wrote (a ticket's subject
and text, their ticket messages, their chat messages) become a fixed marker; the rows stay,
under the user's opaque id, so a thread keeps its shape and the staff's answers their
context. The acceptance of the terms stays (a legal record, with no personal text).
Idempotent: a second erasure changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select, update

from contracts.rpc import support as rpc
from servicekit.router import Router
from support_service.context import SupportContext
from support_service.db import chat_messages, legal_acceptances, ticket_messages, tickets

router = Router()

ERASED = "[erased]"


@router.rpc(rpc.ERASE_USER)
async def erase_user(req: rpc.EraseUser, ctx: SupportContext) -> rpc.Erased:
    async with ctx.uow() as uow:
        conn = uow.store.conn
        t = await conn.execute(update(tickets).where(
            tickets.c.user_id == req.user_id, tickets.c.text != ERASED).values(
            subject=ERASED, text=ERASED))
        m = await conn.execute(update(ticket_messages).where(
            ticket_messages.c.author_id == req.user_id, ticket_messages.c.text != ERASED)
            .values(text=ERASED))
        c = await conn.execute(update(chat_messages).where(
            chat_messages.c.author_id == req.user_id, chat_messages.c.text != ERASED)
            .values(text=ERASED))
        kept = (await conn.execute(select(func.count()).select_from(legal_acceptances).where(
            legal_acceptances.c.user_id == req.user_id))).scalar_one()
    return rpc.Erased(user_id=req.user_id, tickets=t.rowcount, ticket_messages=m.rowcount,
                      chat_messages=c.rowcount, terms_acceptances=int(kept))
