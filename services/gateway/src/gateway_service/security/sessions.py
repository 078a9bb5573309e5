"""Sessions: opaque bearer tokens (stored hashed), expiry, idle timeout, revocation, and a
short-lived per-replica cache of session rows invalidated on every change.

Every API request resolves its bearer token; without a cache that is a database
round trip per request. The cache keeps the joined session + user row for at most
``ttl_s`` seconds. Whatever changes a session or its user (logout, logout-all, a
password change, MFA elevation, disabling) drops that user's entries on this replica at
once and tells the other replicas over core NATS (``gateway.sessions.changed``); a lost
notice (core NATS is at-most-once) is bounded by the TTL. The once-a-minute idle
mark updates the cached copy in place.

A read that raced a change is used for its own request but not cached: a global
generation number, bumped by every change, is read before the database and checked
before the row is stored. Changes are rare next to requests, so one number is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request

from contracts.rpc import Actor
from gateway_service.errors import ApiError
from gateway_service.security.audit import AuditLog
from gateway_service.security.context import GatewayContext
from gateway_service.security.store import GatewayStore, SessionRow

log = logging.getLogger("gateway.sessions")

CHANGED_SUBJECT = "gateway.sessions.changed"
IDLE_MARK_EVERY_S = 60
# A session whose user still holds a temporary password may only reach these.
PASSWORD_CHANGE_PATHS = frozenset({"/api/auth/password", "/api/auth/logout",
                                   "/api/auth/logout-all", "/api/auth/me"})


class Tokens:
    """Random tokens (256 bits) and their peppered hashes: only hashes are stored."""

    def __init__(self, pepper: bytes) -> None:
        self.pepper = pepper

    @staticmethod
    def new() -> str:
        return secrets.token_urlsafe(32)

    def hash(self, token: str) -> str:
        return hmac.new(self.pepper, token.encode(), hashlib.sha256).hexdigest()


@dataclass
class SessionInfo:
    """The authenticated session behind a request."""

    session_id: str
    user_id: str
    role: str
    login: str
    mfa_elevated: bool
    must_change_password: bool
    mfa_elevated_until: datetime | None = None
    expires_at: datetime | None = None

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, role=self.role)


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


class SessionCache:
    def __init__(self, *, ttl_s: float, max_entries: int = 50_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._rows: OrderedDict[str, tuple[float, str, SessionRow]] = OrderedDict()
        self._by_user: dict[str, set[str]] = {}
        self._generation = 0
        self._nc: Any = None
        self._sub: Any = None
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def generation(self) -> int:
        return self._generation

    def get(self, token_hash: str) -> SessionRow | None:
        if not self.enabled:
            return None
        hit = self._rows.get(token_hash)
        if hit is None or time.monotonic() - hit[0] > self.ttl_s:
            self.misses += 1
            return None
        self.hits += 1
        return hit[2]

    def put(self, token_hash: str, row: SessionRow, *, generation: int) -> None:
        """Cache ``row`` unless its user changed since the read began (``generation``)."""
        if not self.enabled:
            return
        if self._generation != generation:
            return
        user_id = row.user_id
        self._rows[token_hash] = (time.monotonic(), user_id, row)
        self._rows.move_to_end(token_hash)
        self._by_user.setdefault(user_id, set()).add(token_hash)
        while len(self._rows) > self.max_entries:
            old_hash, (_, old_user, _) = self._rows.popitem(last=False)
            self._forget(old_user, old_hash)

    def _forget(self, user_id: str, token_hash: str) -> None:
        hashes = self._by_user.get(user_id)
        if hashes is not None:
            hashes.discard(token_hash)
            if not hashes:
                del self._by_user[user_id]

    def drop_user(self, user_id: str) -> None:
        """Forget every cached session of ``user_id`` on this replica."""
        self._generation += 1
        for h in self._by_user.pop(user_id, set()):
            self._rows.pop(h, None)

    async def changed(self, user_id: str) -> None:
        """A session or the user changed (after commit): drop here, tell the other replicas."""
        self.drop_user(user_id)
        if self._nc is not None and self._nc.is_connected:
            try:
                await self._nc.publish(CHANGED_SUBJECT, json.dumps({"user_id": user_id}).encode())
            except Exception as exc:  # the TTL bounds what a lost notice costs
                log.warning("session change notice not sent: %s", exc)

    async def start(self, nc: Any) -> None:
        self._nc = nc

        async def on_changed(msg: Any) -> None:
            try:
                user_id = json.loads(msg.data)["user_id"]
            except (ValueError, KeyError, TypeError):
                return
            self.drop_user(str(user_id))

        self._sub = await nc.subscribe(CHANGED_SUBJECT, cb=on_changed)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as exc:  # the connection may be closing already
                log.debug("session notice subscription: %s", exc)
        self._sub = None
        self._nc = None


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        raise _unauthorized("unauthorized", "log in first (Authorization: Bearer <token>)")
    return token


class Sessions:
    def __init__(self, ctx: GatewayContext, tokens: Tokens, audit: AuditLog) -> None:
        self.ctx = ctx
        self.tokens = tokens
        self.audit = audit
        self.cache = SessionCache(ttl_s=ctx.settings.session_cache_ttl_s)

    async def open(self, store: GatewayStore, user_id: str, method: str) -> str:
        """A new session of ``user_id``: its token (returned once, stored hashed)."""
        token = self.tokens.new()
        now = self.ctx.clock()
        await store.add_session(session_id=str(uuid.uuid4()), token_hash=self.tokens.hash(token),
                                user_id=user_id, method=method, created_at=now,
                                expires_at=now + timedelta(seconds=self.ctx.settings.session_ttl_s))
        return token

    async def _row(self, token_hash: str) -> SessionRow | None:
        row = self.cache.get(token_hash)
        if row is None:
            generation = self.cache.generation()
            async with self.ctx.read() as r:
                row = await r.store.session_by_token(token_hash)
            if row is not None:
                self.cache.put(token_hash, row, generation=generation)
        return row

    async def resolve(self, request: Request) -> SessionInfo:
        """The request's session; 401 when none is valid, 403 password_change_required while
        a temporary password must be replaced (except on the paths that replace it)."""
        cached: SessionInfo | None = getattr(request.state, "session_info", None)
        if cached is not None:
            return cached
        row = await self._row(self.tokens.hash(bearer_token(request)))
        now = self.ctx.clock()
        if (row is None or row.revoked_at is not None or row.disabled_at is not None
                or row.expires_at <= now):
            raise _unauthorized("unauthorized", "the session is unknown, expired or revoked")
        idle = (now - (row.last_seen_at or row.created_at)).total_seconds()
        if idle > self.ctx.settings.session_idle_timeout_s:
            raise _unauthorized("session_idle", "the session was idle too long: log in again")
        if idle > IDLE_MARK_EVERY_S:  # a write at most once a minute per session
            async with self.ctx.statement() as uow:
                await uow.store.touch_session(row.session_id, now)
            row.last_seen_at = now  # the cached copy too: no write for another minute
        must_change = row.must_change_password and row.method == "password"
        if must_change and request.url.path not in PASSWORD_CHANGE_PATHS:
            raise ApiError(403, "password_change_required",
                           "change the temporary password first (POST /api/auth/password)")
        elevated = row.mfa_elevated_until
        info = SessionInfo(session_id=row.session_id, user_id=row.user_id, role=row.role,
                           login=row.login, mfa_elevated=bool(elevated and elevated > now),
                           must_change_password=must_change, mfa_elevated_until=elevated,
                           expires_at=row.expires_at)
        request.state.session_info = info
        return info

    async def elevate(self, store: GatewayStore, session: SessionInfo) -> datetime:
        """MFA-elevate ``session`` for ``mfa_elevation_s`` (after a second-factor check)."""
        until = self.ctx.clock() + timedelta(seconds=self.ctx.settings.mfa_elevation_s)
        await store.elevate_session(session.session_id, until)
        return until

    async def end_all(self, store: GatewayStore, user_id: str) -> int:
        """Revoke every open session of ``user_id`` (tell the cache after the commit)."""
        return await store.revoke_sessions_of(user_id, self.ctx.clock())

    async def logout(self, session: SessionInfo, address: str | None) -> None:
        async with self.ctx.uow() as uow:
            await uow.store.revoke_session(session.session_id, self.ctx.clock())
            await self.audit.record("logout", session.user_id, session.user_id, address=address,
                                    store=uow.store)
        await self.cache.changed(session.user_id)

    async def logout_all(self, session: SessionInfo, address: str | None) -> int:
        async with self.ctx.uow() as uow:
            n = await self.end_all(uow.store, session.user_id)
            await self.audit.record("logout.all", session.user_id, session.user_id,
                                    {"sessions": n}, address=address, store=uow.store)
        await self.cache.changed(session.user_id)
        return n
