"""Accounts, sessions, login throttling and the MFA use cases of the gateway.

``Auth`` is ``app.state.auth``: routers reach it only through ``deps.current_session``;
the security routes call its use cases. Secrets (passwords, tokens, codes) are never
logged and never stored in clear (except the TOTP secret, which the authenticator needs).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from prometheus_client import Counter
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.events import UserCreated
from gateway_service import login_links, mfa, passwords
from gateway_service.audit import Audit
from gateway_service.db import login_throttle, mfa_credentials, sessions, users
from gateway_service.deps import SessionInfo
from gateway_service.errors import ApiError
from gateway_service.session_cache import SessionCache
from gateway_service.settings import GatewaySettings
from servicekit.db import dialect_insert
from servicekit.service import Service

log = logging.getLogger("gateway.auth")

LOGINS = Counter("gateway_logins_total", "Login attempts by outcome", ["result"])
MFA_CHECKS = Counter("gateway_mfa_checks_total", "Second-factor checks by outcome", ["result"])

ROLES = ("worker", "manager", "admin")
LOGIN_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,63}$")

# A session whose user still holds a temporary password may only reach these.
PASSWORD_CHANGE_PATHS = frozenset({"/api/auth/password", "/api/auth/logout",
                                   "/api/auth/logout-all", "/api/auth/me"})


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


def normalize_login(login: str) -> str:
    return (login or "").strip().lower()


def is_loopback(host: str | None) -> bool:
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------ throttling (pure)


@dataclass
class Throttle:
    """Failed attempts of one key inside the current window."""

    failures: int
    window_start: datetime
    last_failure_at: datetime
    blocked_until: datetime | None
    strikes: int


def retry_after(state: Throttle | None, now: datetime) -> int | None:
    """Seconds until the key may try again, or None when it may try now."""
    if state is None or state.blocked_until is None or state.blocked_until <= now:
        return None
    return max(1, math.ceil((state.blocked_until - now).total_seconds()))


def after_failure(state: Throttle | None, now: datetime, *, max_failures: int, window_s: int,
                  base_s: int, cap_s: int) -> Throttle:
    """Count one failure. From ``max_failures`` in a window on, every further failure
    blocks the key for base * 2^strikes seconds (capped); a quiet window forgets all."""
    window = timedelta(seconds=window_s)
    if state is None or now - state.last_failure_at >= window:
        state = Throttle(0, now, now, None, 0)
    elif now - state.window_start >= window:
        state = Throttle(0, now, state.last_failure_at, state.blocked_until, state.strikes)
    state.failures += 1
    state.last_failure_at = now
    if state.failures >= max_failures:
        state.blocked_until = now + timedelta(seconds=min(base_s * 2 ** state.strikes, cap_s))
        state.strikes = min(state.strikes + 1, 20)
    return state


# ----------------------------------------------------------------------- the service


IDLE_MARK_EVERY_S = 60


class Auth:
    def __init__(self, settings: GatewaySettings, svc: Service, audit: Audit) -> None:
        self.settings = settings
        self.svc = svc
        self.engine = svc.engine
        self.reader = svc.reader
        self.secret_box = mfa.SecretBox(settings.mfa_encryption_key.get_secret_value())
        self.audit = audit
        self.sessions = SessionCache(ttl_s=settings.session_cache_ttl_s)
        self._pepper = settings.token_pepper.get_secret_value().encode()
        if settings.environment == "test":
            # Test suites create hundreds of accounts: a cheap (still argon2id) profile.
            self.hasher = passwords.make_hasher(time_cost=1, memory_kib=8192, parallelism=1)
        else:
            self.hasher = passwords.make_hasher(
                time_cost=settings.password_hash_time_cost,
                memory_kib=settings.password_hash_memory_kib,
                parallelism=settings.password_hash_parallelism)
        # Tests move the clock to check TOTP windows and expiries.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def now(self) -> datetime:
        return self.clock()

    def token_hash(self, token: str) -> str:
        return hmac.new(self._pepper, token.encode(), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ sessions

    async def _open_session(self, conn: AsyncConnection, user_id: str, method: str) -> str:
        import secrets

        token = secrets.token_urlsafe(32)
        now = self.now()
        await conn.execute(sessions.insert().values(
            session_id=str(uuid.uuid4()), token_hash=self.token_hash(token), user_id=user_id,
            method=method, created_at=now,
            expires_at=now + timedelta(seconds=self.settings.session_ttl_s), revoked_at=None,
            mfa_elevated_until=None))
        return token

    async def session_from_request(self, request: Request) -> SessionInfo:
        cached = getattr(request.state, "session_info", None)
        if cached is not None:
            return cached
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 256:
            raise ApiError(401, "unauthorized", "log in first (Authorization: Bearer <token>)",
                           headers={"WWW-Authenticate": "Bearer"})
        th = self.token_hash(token)
        row = self.sessions.get(th)
        if row is None:
            generation = self.sessions.generation()
            q = (select(sessions.c.session_id, sessions.c.user_id, sessions.c.method,
                        sessions.c.expires_at, sessions.c.revoked_at,
                        sessions.c.mfa_elevated_until, sessions.c.created_at,
                        sessions.c.last_seen_at, users.c.login, users.c.role,
                        users.c.must_change_password, users.c.disabled_at)
                 .select_from(sessions.join(users, users.c.user_id == sessions.c.user_id))
                 .where(sessions.c.token_hash == th))
            async with self.reader.connect() as conn:
                found = (await conn.execute(q)).first()
            if found is not None:
                row = dict(found._mapping)
                self.sessions.put(th, row, generation=generation)
        now = self.now()
        if (row is None or row["revoked_at"] is not None or row["disabled_at"] is not None
                or aware(row["expires_at"]) <= now):
            raise ApiError(401, "unauthorized", "the session is unknown, expired or revoked",
                           headers={"WWW-Authenticate": "Bearer"})
        last_seen = aware(row["last_seen_at"]) or aware(row["created_at"])
        idle = (now - last_seen).total_seconds()
        if idle > self.settings.session_idle_timeout_s:
            raise ApiError(401, "session_idle", "the session was idle too long: log in again",
                           headers={"WWW-Authenticate": "Bearer"})
        if idle > IDLE_MARK_EVERY_S:  # a write at most once a minute per session
            async with self.reader.connect() as conn:
                await conn.execute(update(sessions).where(
                    sessions.c.session_id == row["session_id"]).values(last_seen_at=now))
            row["last_seen_at"] = now  # the cached copy too: no write for another minute
        must_change = bool(row["must_change_password"]) and row["method"] == "password"
        if must_change and request.url.path not in PASSWORD_CHANGE_PATHS:
            raise ApiError(403, "password_change_required",
                           "change the temporary password first (POST /api/auth/password)")
        elevated = aware(row["mfa_elevated_until"])
        info = SessionInfo(session_id=row["session_id"], user_id=row["user_id"],
                           role=row["role"], login=row["login"],
                           mfa_elevated=bool(elevated and elevated > now),
                           must_change_password=must_change)
        info.mfa_elevated_until = elevated  # type: ignore[attr-defined]
        info.expires_at = aware(row["expires_at"])  # type: ignore[attr-defined]
        request.state.session_info = info
        return info

    async def logout(self, session: SessionInfo, address: str | None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(sessions).where(and_(
                sessions.c.session_id == session.session_id, sessions.c.revoked_at.is_(None)))
                .values(revoked_at=self.now()))
            await self.audit.record("logout", session.user_id, session.user_id, conn=conn,
                                    address=address)
        await self.sessions.changed(session.user_id)

    async def logout_all(self, session: SessionInfo, address: str | None) -> int:
        async with self.engine.begin() as conn:
            n = await self._revoke_all(conn, session.user_id)
            await self.audit.record("logout.all", session.user_id, session.user_id,
                                    {"sessions": n}, conn=conn, address=address)
        await self.sessions.changed(session.user_id)
        return n

    async def _revoke_all(self, conn: AsyncConnection, user_id: str) -> int:
        res = await conn.execute(update(sessions).where(and_(
            sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None)))
            .values(revoked_at=self.now()))
        return res.rowcount or 0

    # ---------------------------------------------------------------- throttling

    async def _throttle_state(self, conn: AsyncConnection, key: str,
                              lock: bool = False) -> Throttle | None:
        q = select(login_throttle).where(login_throttle.c.key == key)
        if lock:
            q = q.with_for_update()
        row = (await conn.execute(q)).first()
        if row is None:
            return None
        return Throttle(row.failures, aware(row.window_start), aware(row.last_failure_at),
                        aware(row.blocked_until), row.strikes)

    async def _check_throttle(self, keys: list[str]) -> int | None:
        now = self.now()
        async with self.engine.connect() as conn:
            waits = [retry_after(await self._throttle_state(conn, k), now) for k in keys]
        waits = [w for w in waits if w]
        return max(waits) if waits else None

    async def _count_failure(self, conn: AsyncConnection, key: str, max_failures: int) -> None:
        now = self.now()
        await conn.execute(dialect_insert(conn)(login_throttle).values(
            key=key, failures=0, window_start=now, last_failure_at=now, blocked_until=None,
            strikes=0).on_conflict_do_nothing())
        state = await self._throttle_state(conn, key, lock=True)
        if state is not None and state.failures == 0 and state.strikes == 0 \
                and state.blocked_until is None:
            state = None  # the row we just created
        s = self.settings
        new = after_failure(state, now, max_failures=max_failures,
                            window_s=s.login_failure_window_s, base_s=s.login_backoff_base_s,
                            cap_s=s.login_backoff_max_s)
        await conn.execute(update(login_throttle).where(login_throttle.c.key == key).values(
            failures=new.failures, window_start=new.window_start,
            last_failure_at=new.last_failure_at, blocked_until=new.blocked_until,
            strikes=new.strikes))

    async def _clear_throttle(self, conn: AsyncConnection, key: str) -> None:
        await conn.execute(login_throttle.delete().where(login_throttle.c.key == key))

    def _too_many(self, wait: int) -> ApiError:
        return ApiError(429, "too_many_attempts",
                        f"too many failed attempts: try again in {wait} s",
                        details={"retry_after_s": wait}, headers={"Retry-After": str(wait)})

    # -------------------------------------------------------------------- login

    def _user_view(self, row: Any, must_change: bool | None = None) -> dict[str, Any]:
        return {"user_id": row.user_id, "login": row.login, "role": row.role,
                "must_change_password": bool(row.must_change_password
                                             if must_change is None else must_change)}

    async def login(self, login: str, password: str, address: str | None) -> dict[str, Any]:
        login = normalize_login(login)
        acct_key, addr_key = f"acct:{login[:100]}", f"addr:{address or '?'}"
        wait = await self._check_throttle([acct_key, addr_key])
        if wait:
            LOGINS.labels("throttled").inc()
            await self.audit.record("login.throttled", None, login[:64],
                                    {"retry_after_s": wait}, address=address)
            raise self._too_many(wait)
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.login == login))).first()
        if row is None:
            await asyncio.to_thread(passwords.burn_time, password, self.hasher)
            ok, rehash = False, False
        else:
            ok, rehash = await asyncio.to_thread(passwords.verify_password, row.password_hash,
                                                 password, self.hasher)
        s = self.settings
        async with self.engine.begin() as conn:
            if not ok:
                await self._count_failure(conn, acct_key, s.login_account_max_failures)
                await self._count_failure(conn, addr_key, s.login_address_max_failures)
                await self.audit.record("login.failed", row.user_id if row else None,
                                        login[:64], {"known_login": row is not None},
                                        conn=conn, address=address)
        if not ok:
            LOGINS.labels("failed").inc()
            raise ApiError(401, "invalid_credentials", "wrong login or password")
        if row.disabled_at is not None:  # said only to whoever knows the password
            await self.audit.record("login.refused", row.user_id, row.user_id,
                                    {"reason": "account disabled"}, address=address)
            self._refuse_disabled(row)
        async with self.engine.begin() as conn:
            if rehash:
                new_hash = await asyncio.to_thread(passwords.hash_password, password, self.hasher)
                await conn.execute(update(users).where(users.c.user_id == row.user_id)
                                   .values(password_hash=new_hash))
            await self._clear_throttle(conn, acct_key)
            token = await self._open_session(conn, row.user_id, "password")
            await self.audit.record("login.succeeded", row.user_id, row.user_id,
                                    {"method": "password", "rehashed": rehash}, conn=conn,
                                    address=address)
        LOGINS.labels("ok").inc()
        return {"token": token, "user": self._user_view(row)}

    async def change_password(self, session: SessionInfo, old_password: str, new_password: str,
                              address: str | None) -> str:
        acct_key = f"acct:{session.login}"
        wait = await self._check_throttle([acct_key])
        if wait:
            raise self._too_many(wait)
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(
                users.c.user_id == session.user_id))).first()
        ok, _ = await asyncio.to_thread(passwords.verify_password, row.password_hash,
                                        old_password, self.hasher)
        if not ok:
            async with self.engine.begin() as conn:
                await self._count_failure(conn, acct_key, self.settings.login_account_max_failures)
                await self.audit.record("password.change_failed", session.user_id,
                                        session.user_id, {"reason": "wrong old password"},
                                        conn=conn, address=address)
            raise ApiError(403, "invalid_credentials", "the current password is wrong")
        try:
            passwords.check_policy(new_password, login=row.login)
        except passwords.WeakPassword as exc:
            raise ApiError(422, "weak_password", str(exc)) from None
        if new_password == old_password:
            raise ApiError(422, "weak_password", "the new password must differ from the old one")
        new_hash = await asyncio.to_thread(passwords.hash_password, new_password, self.hasher)
        async with self.engine.begin() as conn:
            now = self.now()
            await conn.execute(update(users).where(users.c.user_id == row.user_id).values(
                password_hash=new_hash, must_change_password=False, password_changed_at=now))
            revoked = await self._revoke_all(conn, row.user_id)
            await self._clear_throttle(conn, acct_key)
            token = await self._open_session(conn, row.user_id, "password")
            await self.audit.record("password.changed", row.user_id, row.user_id,
                                    {"sessions_revoked": revoked,
                                     "was_temporary": bool(row.must_change_password)},
                                    conn=conn, address=address)
        await self.sessions.changed(row.user_id)
        return token

    async def me(self, session: SessionInfo) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            cred = (await conn.execute(select(mfa_credentials.c.confirmed_at).where(
                mfa_credentials.c.user_id == session.user_id))).first()
        until = getattr(session, "mfa_elevated_until", None)
        return {"user_id": session.user_id, "login": session.login, "role": session.role,
                "must_change_password": session.must_change_password,
                "mfa_enabled": bool(cred and cred.confirmed_at),
                "mfa_elevated": session.mfa_elevated,
                "mfa_elevated_until": until if session.mfa_elevated else None,
                "session_expires_at": getattr(session, "expires_at", None)}

    # ------------------------------------------------------------------ accounts

    async def create_user(self, *, login: str, role: str, password: str | None,
                          created_by: str | None, address: str | None = None,
                          must_change: bool = True, conn: AsyncConnection | None = None,
                          audit_kind: str = "user.created") -> dict[str, Any]:
        login = normalize_login(login)
        if not LOGIN_RE.match(login):
            raise ApiError(422, "invalid_login", "a login has 3 to 64 characters: letters, "
                           "digits and . _ @ - (starting with a letter or digit)")
        if role not in ROLES:
            raise ApiError(422, "invalid_role", f"role must be one of {', '.join(ROLES)}")
        if password is None:
            password = passwords.generate_password()
        else:
            try:
                passwords.check_policy(password, login=login)
            except passwords.WeakPassword as exc:
                raise ApiError(422, "weak_password", str(exc)) from None
        pw_hash = await asyncio.to_thread(passwords.hash_password, password, self.hasher)
        user_id = str(uuid.uuid4())
        row = dict(user_id=user_id, login=login, role=role, password_hash=pw_hash,
                   must_change_password=must_change, created_at=self.now(),
                   password_changed_at=None)

        async def insert(c: AsyncConnection) -> None:
            res = await c.execute(dialect_insert(c)(users).values(**row)
                                  .on_conflict_do_nothing(index_elements=["login"]))
            if res.rowcount != 1:
                raise ApiError(409, "login_taken", f"the login {login!r} is taken")
            await self.svc.record(c, UserCreated(user_id=user_id, login=login,
                                                 role=role))  # type: ignore[arg-type]
            await self.audit.record(audit_kind, created_by, user_id,
                                    {"login": login, "role": role}, conn=c, address=address)

        if conn is not None:
            await insert(conn)
        else:
            async with self.svc.transaction() as c:
                await insert(c)
        return {"user_id": user_id, "login": login, "role": role,
                "temporary_password": password}

    @staticmethod
    def _refuse_disabled(row: Any) -> None:
        if row is not None and row.disabled_at is not None:
            LOGINS.labels("disabled").inc()
            raise ApiError(403, "account_disabled",
                           "this account is disabled: ask an administrator")

    async def set_disabled(self, admin: SessionInfo, user_id: str, disabled: bool,
                           address: str | None) -> dict[str, Any]:
        """Disable (no login, every session ended) or enable an account; audited."""
        if disabled and user_id == admin.user_id:
            raise ApiError(409, "cannot_disable_self", "an admin cannot disable their own account")
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(users).where(users.c.user_id == user_id)
                                      .with_for_update())).first()
            if row is None:
                raise ApiError(404, "user_not_found", f"no user {user_id}")
            changed = (row.disabled_at is None) == disabled
            revoked = 0
            if changed:
                await conn.execute(update(users).where(users.c.user_id == user_id).values(
                    disabled_at=self.now() if disabled else None))
                if disabled:
                    revoked = await self._revoke_all(conn, user_id)
                await self.audit.record("user.disabled" if disabled else "user.enabled",
                                        admin.user_id, user_id, {"sessions_revoked": revoked},
                                        conn=conn, address=address)
        if changed:
            await self.sessions.changed(user_id)
        return {"user_id": user_id, "login": row.login, "disabled": disabled,
                "sessions_revoked": revoked}

    async def list_users(self, limit: int, offset: int) -> dict[str, Any]:
        from sqlalchemy import func

        async with self.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(users))).scalar()
            rows = (await conn.execute(
                select(users.c.user_id, users.c.login, users.c.role,
                       users.c.must_change_password, users.c.created_at, users.c.disabled_at,
                       mfa_credentials.c.confirmed_at)
                .select_from(users.outerjoin(mfa_credentials,
                                             mfa_credentials.c.user_id == users.c.user_id))
                .order_by(users.c.created_at, users.c.login).limit(limit).offset(offset))).all()
        return {"items": [{"user_id": r.user_id, "login": r.login, "role": r.role,
                           "must_change_password": bool(r.must_change_password),
                           "mfa_enabled": r.confirmed_at is not None,
                           "disabled": r.disabled_at is not None,
                           "created_at": aware(r.created_at)} for r in rows],
                "total": int(total or 0)}

    async def get_user(self, user_id: str) -> Any:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.user_id == user_id))).first()
        if row is None:
            raise ApiError(404, "user_not_found", "no such user")
        return row

    # ------------------------------------------------------------ login links

    async def create_login_link(self, admin: SessionInfo, user_id: str,
                                address: str | None) -> dict[str, Any]:
        await self.get_user(user_id)
        async with self.engine.begin() as conn:
            token, expires_at = await login_links.create_link(
                conn, token_hash=self.token_hash, user_id=user_id, created_by=admin.user_id,
                now=self.now(), ttl_s=self.settings.login_link_ttl_s)
            await self.audit.record("login_link.created", admin.user_id, user_id,
                                    {"expires_at": expires_at.isoformat()}, conn=conn,
                                    address=address)
        return {"url": login_links.link_url(self.settings.public_url, token),
                "expires_at": expires_at}

    async def login_with_link(self, token: str, address: str | None) -> dict[str, Any]:
        addr_key = f"addr:{address or '?'}"
        wait = await self._check_throttle([addr_key])
        if wait:
            raise self._too_many(wait)
        async with self.engine.begin() as conn:
            user_id = None
            if token and len(token) <= 256:
                user_id = await login_links.redeem_link(conn, hashed=self.token_hash(token),
                                                        now=self.now())
            if user_id is None:
                await self._count_failure(conn, addr_key,
                                          self.settings.login_address_max_failures)
                await self.audit.record("login_link.failed", None, None, {}, conn=conn,
                                        address=address)
        if user_id is None:
            raise ApiError(401, "invalid_link", "the link is unknown, used or expired")
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(users).where(users.c.user_id == user_id))).first()
            self._refuse_disabled(row)
            token_out = await self._open_session(conn, user_id, "link")
            await self.audit.record("login_link.used", user_id, user_id, {}, conn=conn,
                                    address=address)
            await self.audit.record("login.succeeded", user_id, user_id, {"method": "link"},
                                    conn=conn, address=address)
        LOGINS.labels("ok").inc()
        return {"token": token_out, "user": self._user_view(row, must_change=False)}

    async def dev_quick_login(self, role: str, address: str | None) -> dict[str, Any]:
        if role not in ROLES:
            raise ApiError(422, "invalid_role", f"role must be one of {', '.join(ROLES)}")
        login = f"dev-{role}"
        async with self.svc.transaction() as conn:
            row = (await conn.execute(select(users).where(users.c.login == login))).first()
            if row is None:
                await self.create_user(login=login, role=role, password=passwords.generate_password(),
                                       created_by=None, must_change=False, conn=conn,
                                       address=address)
                row = (await conn.execute(select(users).where(users.c.login == login))).first()
            self._refuse_disabled(row)
            token = await self._open_session(conn, row.user_id, "dev")
            await self.audit.record("dev.quick_login", row.user_id, row.user_id, {"role": role},
                                    conn=conn, address=address)
        return {"token": token, "user": self._user_view(row, must_change=False)}

    # ---------------------------------------------------------------------- MFA

    async def mfa_setup(self, session: SessionInfo, address: str | None) -> dict[str, Any]:
        secret = mfa.new_secret()
        async with self.engine.begin() as conn:
            cur = (await conn.execute(select(mfa_credentials).where(
                mfa_credentials.c.user_id == session.user_id).with_for_update())).first()
            if cur is not None and cur.confirmed_at is not None:
                raise ApiError(409, "mfa_already_enabled",
                               "MFA is already set up for this account")
            if cur is not None:
                await conn.execute(mfa_credentials.delete().where(
                    mfa_credentials.c.user_id == session.user_id))
            await conn.execute(mfa_credentials.insert().values(
                user_id=session.user_id, secret=self.secret_box.seal(secret),
                created_at=self.now(),
                confirmed_at=None))
            await self.audit.record("mfa.setup", session.user_id, session.user_id, {},
                                    conn=conn, address=address)
        uri = mfa.provisioning_uri(secret, session.login)
        return {"secret": secret, "otpauth_uri": uri, "qr_png_base64": mfa.qr_png_base64(uri)}

    async def _check_code(self, conn: AsyncConnection, session: SessionInfo, secret: str,
                          code: str) -> bool:
        now = self.now()
        step = mfa.matching_step(secret, code, now)
        return step is not None and await mfa.consume_step(conn, session.user_id, step, now)

    async def _mfa_failed(self, session: SessionInfo, address: str | None,
                          reason: str) -> ApiError:
        MFA_CHECKS.labels("failed").inc()
        async with self.engine.begin() as conn:
            await self._count_failure(conn, f"mfa:{session.user_id}", self.settings.mfa_max_failures)
            await self.audit.record("mfa.failed", session.user_id, session.user_id,
                                    {"reason": reason}, conn=conn, address=address)
        return ApiError(400, "invalid_code", "the code is wrong, expired or already used")

    async def mfa_confirm(self, session: SessionInfo, code: str,
                          address: str | None) -> dict[str, Any]:
        wait = await self._check_throttle([f"mfa:{session.user_id}"])
        if wait:
            raise self._too_many(wait)
        async with self.engine.begin() as conn:
            cur = (await conn.execute(select(mfa_credentials).where(
                mfa_credentials.c.user_id == session.user_id))).first()
            if cur is None:
                raise ApiError(409, "mfa_not_set_up", "start with POST /api/auth/mfa/setup")
            if cur.confirmed_at is not None:
                raise ApiError(409, "mfa_already_enabled", "MFA is already confirmed")
            ok = await self._check_code(conn, session, self.secret_box.open(cur.secret), code)
            if ok:
                now = self.now()
                codes = mfa.new_recovery_codes()
                await conn.execute(update(mfa_credentials).where(
                    mfa_credentials.c.user_id == session.user_id).values(confirmed_at=now))
                await mfa.store_recovery_codes(conn, self._pepper, session.user_id, codes, now)
                await self._elevate(conn, session)
                await self._clear_throttle(conn, f"mfa:{session.user_id}")
                await self.audit.record("mfa.confirmed", session.user_id, session.user_id, {},
                                        conn=conn, address=address)
        if not ok:
            raise await self._mfa_failed(session, address, "confirm")
        await self.sessions.changed(session.user_id)
        MFA_CHECKS.labels("ok").inc()
        return {"recovery_codes": codes}

    async def _elevate(self, conn: AsyncConnection, session: SessionInfo) -> datetime:
        until = self.now() + timedelta(seconds=self.settings.mfa_elevation_s)
        await conn.execute(update(sessions).where(sessions.c.session_id == session.session_id)
                           .values(mfa_elevated_until=until))
        return until

    async def mfa_step_up(self, session: SessionInfo, code: str | None,
                          recovery_code: str | None, address: str | None) -> dict[str, Any]:
        if bool(code) == bool(recovery_code):
            raise ApiError(422, "invalid_request", "send either code or recovery_code")
        key = f"mfa:{session.user_id}"
        wait = await self._check_throttle([key])
        if wait:
            raise self._too_many(wait)
        async with self.engine.begin() as conn:
            cur = (await conn.execute(select(mfa_credentials).where(
                mfa_credentials.c.user_id == session.user_id))).first()
            if cur is None or cur.confirmed_at is None:
                raise ApiError(409, "mfa_not_enabled", "set up MFA first (POST /api/auth/mfa/setup)")
            if code:
                ok = await self._check_code(conn, session, self.secret_box.open(cur.secret), code)
            else:
                ok = await mfa.use_recovery_code(conn, self._pepper, session.user_id,
                                                 recovery_code or "", self.now())
            if ok:
                until = await self._elevate(conn, session)
                await self._clear_throttle(conn, key)
                await self.audit.record("mfa.used" if code else "mfa.recovery_used",
                                        session.user_id, session.user_id, {}, conn=conn,
                                        address=address)
        if not ok:
            raise await self._mfa_failed(session, address,
                                         "step-up" if code else "recovery code")
        await self.sessions.changed(session.user_id)
        MFA_CHECKS.labels("ok").inc()
        return {"mfa_elevated_until": until}
