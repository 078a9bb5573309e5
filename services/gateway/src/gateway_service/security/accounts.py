"""Accounts: users and their passwords, the forced first-login change, disabling, the
bootstrap admin, password login and the developer quick-login.

Passwords are argon2id hashes (``security.passwords``); an unknown login costs the same
verification time as a known one. The bootstrap admin is created exactly once: a marker
row (``gateway_markers.name = 'bootstrap'``) written in the same transaction as the admin
decides whether it ran, not "are there users", so deleting users never brings a known
default back, and two replicas starting together race on the marker's primary key.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from prometheus_client import Counter

from contracts.events import UserCreated
from contracts.rpc import Role
from gateway_service.errors import ApiError
from gateway_service.security import passwords
from gateway_service.security.audit import AuditLog
from gateway_service.security.context import GatewayContext
from gateway_service.security.sessions import SessionInfo, Sessions
from gateway_service.security.store import GatewayStore, User, UserListed
from gateway_service.security.throttle import Throttles, TooManyAttempts
from servicekit.uow import UnitOfWork

log = logging.getLogger("gateway.accounts")

LOGINS = Counter("gateway_logins_total", "Login attempts by outcome", ["result"])

ROLES = get_args(Role)  # worker, manager, admin
LOGIN_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,63}$")
BOOTSTRAP_MARKER = "bootstrap"
ADMIN_LOGIN = "admin"


def normalize_login(login: str) -> str:
    return (login or "").strip().lower()


@dataclass(frozen=True)
class UserView:
    user_id: str
    login: str
    role: str
    must_change_password: bool


@dataclass(frozen=True)
class LoginResult:
    token: str
    user: UserView


@dataclass(frozen=True)
class CreatedUser:
    user_id: str
    login: str
    role: str
    temporary_password: str


@dataclass(frozen=True)
class DisabledChange:
    user_id: str
    login: str
    disabled: bool
    sessions_revoked: int


@dataclass(frozen=True)
class UsersPage:
    items: list[UserListed]
    total: int


@dataclass(frozen=True)
class Me:
    user_id: str
    login: str
    role: str
    must_change_password: bool
    mfa_enabled: bool
    mfa_elevated: bool
    mfa_elevated_until: datetime | None
    session_expires_at: datetime | None


def cannot_erase_admin() -> ApiError:
    """Admins are not erased: their actions are the audit; an admin account that must
    go is disabled instead."""
    return ApiError(409, "cannot_erase_admin",
                    "an admin account is not erased (its actions are the audit log): "
                    "disable it instead")


def account_disabled() -> ApiError:
    LOGINS.labels("disabled").inc()
    return ApiError(403, "account_disabled", "this account is disabled: ask an administrator")


class Accounts:
    def __init__(self, ctx: GatewayContext, *, sessions: Sessions, throttle: Throttles,
                 audit: AuditLog) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.throttle = throttle
        self.audit = audit
        s = ctx.settings
        if s.environment == "test":
            # Test suites create hundreds of accounts: a cheap (still argon2id) profile.
            self.hasher = passwords.make_hasher(time_cost=1, memory_kib=8192, parallelism=1)
        else:
            self.hasher = passwords.make_hasher(time_cost=s.password_hash_time_cost,
                                                memory_kib=s.password_hash_memory_kib,
                                                parallelism=s.password_hash_parallelism)

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(passwords.hash_password, password, self.hasher)

    async def _verify(self, user: User | None, password: str) -> tuple[bool, bool]:
        if user is None:
            await asyncio.to_thread(passwords.burn_time, password, self.hasher)
            return False, False
        return await asyncio.to_thread(passwords.verify_password, user.password_hash,
                                       password, self.hasher)

    # -------------------------------------------------------------------- login

    async def login(self, login: str, password: str, address: str | None) -> LoginResult:
        """Password login, limited per account and per client address (counted first)."""
        login = normalize_login(login)
        limits = [self.throttle.account(login), self.throttle.address(address)]
        try:
            async with self.ctx.uow() as uow:
                held = await self.throttle.reserve(uow.store, limits, self.ctx.clock())
                user = await uow.store.user_by_login(login)
        except TooManyAttempts as refused:
            LOGINS.labels("throttled").inc()
            await self.audit.record("login.throttled", None, login[:64],
                                    {"retry_after_s": refused.wait}, address=address)
            raise
        ok, rehash = await self._verify(user, password)
        if user is None or not ok:
            LOGINS.labels("failed").inc()
            await self.audit.record("login.failed", user.user_id if user else None, login[:64],
                                    {"known_login": user is not None}, address=address)
            raise ApiError(401, "invalid_credentials", "wrong login or password")
        if user.disabled_at is not None:  # said only to whoever knows the password
            await self.audit.record("login.refused", user.user_id, user.user_id,
                                    {"reason": "account disabled"}, address=address)
            raise account_disabled()
        new_hash = await self._hash(password) if rehash else None
        async with self.ctx.uow() as uow:
            if new_hash is not None:
                await uow.store.rehash_password(user.user_id, new_hash)
            await self.throttle.succeeded(uow.store, held, clear=limits[:1])
            token = await self.sessions.open(uow.store, user.user_id, "password")
            await self.audit.record("login.succeeded", user.user_id, user.user_id,
                                    {"method": "password", "rehashed": rehash},
                                    address=address, store=uow.store)
        LOGINS.labels("ok").inc()
        return LoginResult(token, UserView(user.user_id, user.login, user.role,
                                           user.must_change_password))

    async def change_password(self, session: SessionInfo, old_password: str, new_password: str,
                              address: str | None) -> str:
        """Replace the password (the old one is required): every session of the user ends
        and the token of a fresh one is returned."""
        try:
            passwords.check_policy(new_password, login=session.login)
        except passwords.WeakPassword as exc:
            raise ApiError(422, "weak_password", str(exc)) from None
        if new_password == old_password:
            raise ApiError(422, "weak_password", "the new password must differ from the old one")
        limit = self.throttle.account(session.login)
        async with self.ctx.uow() as uow:
            held = await self.throttle.reserve(uow.store, [limit], self.ctx.clock())
            user = await uow.store.user_by_id(session.user_id)
        ok, _ = await self._verify(user, old_password)
        if user is None or not ok:
            await self.audit.record("password.change_failed", session.user_id, session.user_id,
                                    {"reason": "wrong old password"}, address=address)
            raise ApiError(403, "invalid_credentials", "the current password is wrong")
        new_hash = await self._hash(new_password)
        async with self.ctx.uow() as uow:
            now = self.ctx.clock()
            await uow.store.set_password(user.user_id, new_hash, must_change=False, at=now)
            revoked = await self.sessions.end_all(uow.store, user.user_id)
            await self.throttle.succeeded(uow.store, held, clear=[limit])
            token = await self.sessions.open(uow.store, user.user_id, "password")
            await self.audit.record("password.changed", user.user_id, user.user_id,
                                    {"sessions_revoked": revoked,
                                     "was_temporary": user.must_change_password},
                                    address=address, store=uow.store)
        await self.sessions.cache.changed(user.user_id)
        return token

    async def me(self, session: SessionInfo) -> Me:
        async with self.ctx.read() as r:
            cred = await r.store.mfa_credential(session.user_id)
        return Me(user_id=session.user_id, login=session.login, role=session.role,
                  must_change_password=session.must_change_password,
                  mfa_enabled=bool(cred and cred.confirmed_at),
                  mfa_elevated=session.mfa_elevated,
                  mfa_elevated_until=session.mfa_elevated_until if session.mfa_elevated else None,
                  session_expires_at=session.expires_at)

    # ----------------------------------------------------------------- accounts

    async def _add(self, uow: UnitOfWork[GatewayStore], *, login: str, role: str,
                   password_hash: str, must_change: bool, created_by: str | None,
                   address: str | None, audit_kind: str = "user.created") -> User:
        user = User(user_id=str(uuid.uuid4()), login=login, role=role,
                    password_hash=password_hash, must_change_password=must_change,
                    created_at=self.ctx.clock(), password_changed_at=None, disabled_at=None)
        if not await uow.store.add_user(user):
            raise ApiError(409, "login_taken", f"the login {login!r} is taken")
        uow.record(UserCreated(user_id=user.user_id, login=login, role=role))
        await self.audit.record(audit_kind, created_by, user.user_id,
                                {"login": login, "role": role}, address=address,
                                store=uow.store)
        return user

    async def create_user(self, *, login: str, role: str, password: str | None,
                          created_by: str | None, address: str | None = None) -> CreatedUser:
        """An account with a temporary password (given, or generated) to change at first
        login; ``gateway.user.created`` is published."""
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
        password_hash = await self._hash(password)
        async with self.ctx.uow() as uow:
            user = await self._add(uow, login=login, role=role, password_hash=password_hash,
                                   must_change=True, created_by=created_by, address=address)
        return CreatedUser(user.user_id, login, role, password)

    async def bootstrap(self) -> str | None:
        """First start: the one admin with a random one-time password, exactly once; the
        password when this call created it, else None."""
        async with self.ctx.read() as r:
            if await r.store.has_marker(BOOTSTRAP_MARKER):
                return None
        password = passwords.generate_password()
        password_hash = await self._hash(password)
        async with self.ctx.uow() as uow:
            if not await uow.store.add_marker(BOOTSTRAP_MARKER, "admin-created",
                                              self.ctx.clock()):
                return None  # another replica won the race
            if await uow.store.user_by_login(ADMIN_LOGIN) is not None:
                return None
            await self._add(uow, login=ADMIN_LOGIN, role="admin", password_hash=password_hash,
                            must_change=True, created_by=None, address=None,
                            audit_kind="bootstrap.admin_created")
        log.warning("bootstrap: created the admin account; its one-time password is printed "
                    "once on standard output and must be changed at first login")
        return password

    async def set_disabled(self, admin: SessionInfo, user_id: str, disabled: bool,
                           address: str | None) -> DisabledChange:
        """Disable (no login, every session ended at once) or enable an account; audited."""
        if disabled and user_id == admin.user_id:
            raise ApiError(409, "cannot_disable_self", "an admin cannot disable their own account")
        async with self.ctx.uow() as uow:
            user = await uow.store.user_by_id(user_id, lock=True)
            if user is None:
                raise ApiError(404, "user_not_found", f"no user {user_id}")
            changed = (user.disabled_at is None) == disabled
            revoked = 0
            if changed:
                await uow.store.set_disabled(user_id, self.ctx.clock() if disabled else None)
                if disabled:
                    revoked = await self.sessions.end_all(uow.store, user_id)
                await self.audit.record("user.disabled" if disabled else "user.enabled",
                                        admin.user_id, user_id, {"sessions_revoked": revoked},
                                        address=address, store=uow.store)
        if changed:
            await self.sessions.cache.changed(user_id)
        return DisabledChange(user_id, user.login, disabled, revoked)

    async def erase(self, admin: SessionInfo, user_id: str, details: dict[str, Any],
                    address: str | None) -> tuple[str, int]:
        """Erase an account's personal data (login, password, second factor, login links);
        its opaque id stays, so the money records and the audit keep their shape. Admins
        are not erased (their actions are the audit). Idempotent; audited each time."""
        async with self.ctx.uow() as uow:
            user = await uow.store.user_by_id(user_id, lock=True)
            if user is None:
                raise ApiError(404, "user_not_found", f"no user {user_id}")
            if user.role == "admin":
                raise cannot_erase_admin()
            login = f"erased-{user_id[:12]}"
            revoked = 0
            if user.login != login:
                await uow.store.erase_user(user_id, login=login, at=self.ctx.clock())
                revoked = await self.sessions.end_all(uow.store, user_id)
            await self.audit.record("user.erased", admin.user_id, user_id,
                                    {**details, "sessions_revoked": revoked},
                                    address=address, store=uow.store)
        await self.sessions.cache.changed(user_id)
        return login, revoked

    async def list_users(self, limit: int, offset: int) -> UsersPage:
        async with self.ctx.read() as r:
            items, total = await r.store.list_users(limit=limit, offset=offset)
        return UsersPage(items, total)

    async def logins(self, user_ids: Iterable[str | None]) -> dict[str, str]:
        """Logins by user id, for staff screens that name who did something (a manager
        may not list the users, so a screen cannot look them up itself)."""
        ids = sorted({u for u in user_ids if u})
        async with self.ctx.read() as r:
            return await r.store.logins(ids)

    async def get_user(self, user_id: str) -> User:
        async with self.ctx.read() as r:
            user = await r.store.user_by_id(user_id)
        if user is None:
            raise ApiError(404, "user_not_found", "no such user")
        return user

    async def dev_quick_login(self, role: str, address: str | None) -> LoginResult:
        """A session of ``dev-<role>`` (created on first use); development only."""
        if role not in ROLES:
            raise ApiError(422, "invalid_role", f"role must be one of {', '.join(ROLES)}")
        login = f"dev-{role}"
        async with self.ctx.read() as r:
            known = await r.store.user_by_login(login)
        password_hash = "" if known else await self._hash(passwords.generate_password())
        async with self.ctx.uow() as uow:
            user = await uow.store.user_by_login(login)
            if user is None:
                user = await self._add(uow, login=login, role=role, password_hash=password_hash,
                                       must_change=False, created_by=None, address=address)
            if user.disabled_at is not None:
                raise account_disabled()
            token = await self.sessions.open(uow.store, user.user_id, "dev")
            await self.audit.record("dev.quick_login", user.user_id, user.user_id,
                                    {"role": role}, address=address, store=uow.store)
        return LoginResult(token, UserView(user.user_id, user.login, user.role, False))
