"""The gateway's security layer: one object, injected into routes as ``deps.Security``.

    sessions     bearer tokens, expiry, idle timeout, the per-replica session cache
    throttle     attempts counted before they are checked, per account, address and MFA
    accounts     users, passwords, first-login change, disable/enable, bootstrap, login
    mfa          TOTP setup/confirm/step-up, recovery codes, secrets sealed under rotating keys
    login_links  single-use personal login links
    audit        the append-only audit log
    addresses    the client address (trusted proxies) and loopback checks

Each part takes the gateway's context (settings, clock, unit of work on ``GatewayStore``,
where all the SQL is); routes only translate HTTP to these calls and back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Request

from gateway_service.security.accounts import Accounts
from gateway_service.security.addresses import client_address, parse_networks
from gateway_service.security.audit import AuditLog
from gateway_service.security.context import GatewayContext
from gateway_service.security.login_links import LoginLinks
from gateway_service.security.mfa import Mfa
from gateway_service.security.sessions import Sessions, Tokens
from gateway_service.security.throttle import Throttles
from gateway_service.settings import GatewaySettings


class SecurityLayer:
    def __init__(self, ctx: GatewayContext) -> None:
        s = ctx.settings
        self.ctx = ctx
        pepper = s.token_pepper.get_secret_value().encode()
        self.trusted_proxies = parse_networks(s.trusted_proxies)
        self.audit = AuditLog(ctx)
        self.throttle = Throttles(s)
        self.sessions = Sessions(ctx, Tokens(pepper), self.audit)
        self.accounts = Accounts(ctx, sessions=self.sessions, throttle=self.throttle,
                                 audit=self.audit)
        self.mfa = Mfa(ctx, sessions=self.sessions, throttle=self.throttle, audit=self.audit,
                       pepper=pepper)
        self.login_links = LoginLinks(ctx, accounts=self.accounts, sessions=self.sessions,
                                      throttle=self.throttle, audit=self.audit)

    @property
    def settings(self) -> GatewaySettings:
        return self.ctx.settings

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.ctx.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        """Every part reads the time from the shared context (tests move it)."""
        self.ctx.clock = clock

    def client_address(self, request: Request) -> str | None:
        """The address throttles count and the audit log records (see ``addresses``)."""
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.get("x-forwarded-for"),
                              self.trusted_proxies)

    async def start(self, nc: Any) -> None:
        await self.sessions.cache.start(nc)

    async def stop(self) -> None:
        await self.sessions.cache.stop()
