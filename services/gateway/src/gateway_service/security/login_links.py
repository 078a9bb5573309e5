"""Personal login links: ``<public_url>/#token=...``, single-use, expiring, stored hashed.

The token rides in the URL fragment, which browsers never send to a server nor put in
a Referer; the web UI exchanges it (POST /api/auth/login-link) and wipes it from the
address bar. Exchanges are limited per client address, counted before the link is
looked up.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway_service.errors import ApiError
from gateway_service.security.accounts import (
    LOGINS,
    Accounts,
    LoginResult,
    UserView,
    account_disabled,
)
from gateway_service.security.audit import AuditLog
from gateway_service.security.context import GatewayContext
from gateway_service.security.sessions import SessionInfo, Sessions
from gateway_service.security.throttle import Throttles
from servicekit.errors import CommitThen


def link_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/#token={token}"


@dataclass(frozen=True)
class LoginLink:
    url: str
    expires_at: datetime


class LoginLinks:
    def __init__(self, ctx: GatewayContext, *, accounts: Accounts, sessions: Sessions,
                 throttle: Throttles, audit: AuditLog) -> None:
        self.ctx = ctx
        self.accounts = accounts
        self.sessions = sessions
        self.throttle = throttle
        self.audit = audit

    async def create(self, admin: SessionInfo, user_id: str, address: str | None) -> LoginLink:
        """A link that logs ``user_id`` in once, within ``login_link_ttl_s``."""
        await self.accounts.get_user(user_id)
        tokens = self.sessions.tokens
        token = tokens.new()
        now = self.ctx.clock()
        expires_at = now + timedelta(seconds=self.ctx.settings.login_link_ttl_s)
        async with self.ctx.uow() as uow:
            await uow.store.add_login_link(link_id=str(uuid.uuid4()), token_hash=tokens.hash(token),
                                           user_id=user_id, created_by=admin.user_id,
                                           created_at=now, expires_at=expires_at)
            await self.audit.record("login_link.created", admin.user_id, user_id,
                                    {"expires_at": expires_at.isoformat()}, address=address,
                                    store=uow.store)
        return LoginLink(link_url(self.ctx.settings.public_url, token), expires_at)

    async def login(self, token: str, address: str | None) -> LoginResult:
        """Spend a link for a session of its user."""
        limit = self.throttle.address(address)
        async with self.ctx.uow() as uow:
            now = self.ctx.clock()
            held = await self.throttle.reserve(uow.store, [limit], now)
            user_id = None
            if token and len(token) <= 256:
                user_id = await uow.store.redeem_login_link(self.sessions.tokens.hash(token), now)
            if user_id is None:
                await self.audit.record("login_link.failed", None, None, address=address,
                                        store=uow.store)
                raise CommitThen(ApiError(401, "invalid_link",
                                          "the link is unknown, used or expired"))
            await self.throttle.succeeded(uow.store, held)
            user = await uow.store.user_by_id(user_id)
            if user is None or user.disabled_at is not None:
                raise CommitThen(account_disabled())  # the link stays spent
            session_token = await self.sessions.open(uow.store, user_id, "link")
            await self.audit.record("login_link.used", user_id, user_id, address=address,
                                    store=uow.store)
            await self.audit.record("login.succeeded", user_id, user_id, {"method": "link"},
                                    address=address, store=uow.store)
        LOGINS.labels("ok").inc()
        return LoginResult(session_token, UserView(user.user_id, user.login, user.role, False))
