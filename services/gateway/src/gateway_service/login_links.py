"""Personal login links: ``<public_url>/#token=...``, single-use, expiring, stored hashed.

The token rides in the URL fragment, which browsers never send to a server nor put in
a Referer; the web UI exchanges it (POST /api/auth/login-link) and wipes it from the
address bar.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway_service.db import login_links


def link_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/#token={token}"


async def create_link(conn: AsyncConnection, *, token_hash, user_id: str, created_by: str,
                      now: datetime, ttl_s: int) -> tuple[str, datetime]:
    """Store a new link for ``user_id``; returns (token, expires_at). ``token_hash`` hashes."""
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=ttl_s)
    await conn.execute(login_links.insert().values(
        link_id=str(uuid.uuid4()), token_hash=token_hash(token), user_id=user_id,
        created_by=created_by, created_at=now, expires_at=expires_at, used_at=None))
    return token, expires_at


async def redeem_link(conn: AsyncConnection, *, hashed: str, now: datetime) -> str | None:
    """Spend the link once; the user id, or None when unknown, used or expired."""
    res = await conn.execute(
        update(login_links)
        .where(and_(login_links.c.token_hash == hashed, login_links.c.used_at.is_(None),
                    login_links.c.expires_at > now))
        .values(used_at=now)
        .returning(login_links.c.user_id))
    row = res.first()
    return row[0] if row else None
