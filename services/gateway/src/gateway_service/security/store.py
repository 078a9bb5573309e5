"""All of the gateway's SQL: statements built once at import, rows as small dataclasses.

Bind names differ from column names (``p_...``): SQLAlchemy reserves a column's own name
for the SET and VALUES clauses of the statement that writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, bindparam, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway_service.db import (
    audit_log,
    gateway_markers,
    login_links,
    login_throttle,
    mfa_credentials,
    mfa_recovery_codes,
    mfa_used_steps,
    sessions,
    users,
)
from gateway_service.security.throttle import Throttle
from servicekit.db import insert


@dataclass
class User:
    user_id: str
    login: str
    role: str
    password_hash: str
    must_change_password: bool
    created_at: datetime
    password_changed_at: datetime | None
    disabled_at: datetime | None


@dataclass
class UserListed:
    user_id: str
    login: str
    role: str
    must_change_password: bool
    created_at: datetime
    disabled: bool
    mfa_enabled: bool


@dataclass
class SessionRow:
    """A session joined with its user: what a request's bearer token resolves to."""

    session_id: str
    user_id: str
    method: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    mfa_elevated_until: datetime | None
    last_seen_at: datetime | None
    login: str
    role: str
    must_change_password: bool
    disabled_at: datetime | None


@dataclass
class MfaCredential:
    user_id: str
    secret: str
    created_at: datetime
    confirmed_at: datetime | None


def _p(name: str) -> Any:
    return bindparam(f"p_{name}")


_USER_BY_LOGIN = select(users).where(users.c.login == _p("login"))
_USER_BY_ID = select(users).where(users.c.user_id == _p("user_id"))
_USER_BY_ID_LOCKED = _USER_BY_ID.with_for_update()
_INSERT_USER = insert(users).on_conflict_do_nothing(index_elements=["login"])
_SET_PASSWORD = (update(users).where(users.c.user_id == _p("user_id"))
                 .values(password_hash=_p("hash"), must_change_password=_p("must_change"),
                         password_changed_at=_p("at")))
_REHASH = update(users).where(users.c.user_id == _p("user_id")).values(password_hash=_p("hash"))
_SET_DISABLED = update(users).where(users.c.user_id == _p("user_id")).values(
    disabled_at=_p("at"))
_COUNT_USERS = select(func.count()).select_from(users)
_LIST_USERS = (select(users.c.user_id, users.c.login, users.c.role, users.c.must_change_password,
                      users.c.created_at, users.c.disabled_at, mfa_credentials.c.confirmed_at)
               .select_from(users.outerjoin(mfa_credentials,
                                            mfa_credentials.c.user_id == users.c.user_id))
               .order_by(users.c.created_at, users.c.login)
               .limit(_p("limit")).offset(_p("offset")))

_LOGINS = select(users.c.user_id, users.c.login).where(
    users.c.user_id.in_(bindparam("p_ids", expanding=True)))
_MARKER = select(gateway_markers.c.name).where(gateway_markers.c.name == _p("name"))
_ADD_MARKER = insert(gateway_markers).on_conflict_do_nothing()

_INSERT_SESSION = sessions.insert()
_SESSION_BY_TOKEN = (
    select(sessions.c.session_id, sessions.c.user_id, sessions.c.method, sessions.c.created_at,
           sessions.c.expires_at, sessions.c.revoked_at, sessions.c.mfa_elevated_until,
           sessions.c.last_seen_at, users.c.login, users.c.role, users.c.must_change_password,
           users.c.disabled_at)
    .select_from(sessions.join(users, users.c.user_id == sessions.c.user_id))
    .where(sessions.c.token_hash == _p("hash")))
_TOUCH_SESSION = update(sessions).where(sessions.c.session_id == _p("session_id")).values(
    last_seen_at=_p("at"))
_REVOKE_SESSION = (update(sessions)
                   .where(sessions.c.session_id == _p("session_id"),
                          sessions.c.revoked_at.is_(None))
                   .values(revoked_at=_p("at")))
_REVOKE_USER_SESSIONS = (update(sessions)
                         .where(sessions.c.user_id == _p("user_id"),
                                sessions.c.revoked_at.is_(None))
                         .values(revoked_at=_p("at")))
_ELEVATE_SESSION = update(sessions).where(sessions.c.session_id == _p("session_id")).values(
    mfa_elevated_until=_p("until"))

_t = login_throttle.c
# Creates the missing rows and locks every row (ON CONFLICT DO UPDATE locks the row it
# touches) until the transaction ends; rows come back as they are.
_LOCK_THROTTLES = (insert(login_throttle).on_conflict_do_update(
    index_elements=["key"], set_={"key": insert(login_throttle).excluded.key})
    .returning(_t.key, _t.failures, _t.window_start, _t.last_failure_at, _t.blocked_until,
               _t.strikes))
_SAVE_THROTTLE = update(login_throttle).where(_t.key == _p("key")).values(
    failures=_p("failures"), window_start=_p("window_start"),
    last_failure_at=_p("last_failure_at"), blocked_until=_p("blocked_until"),
    strikes=_p("strikes"))
_CLEAR_THROTTLE = login_throttle.delete().where(_t.key == _p("key"))
# Give back an attempt that succeeded; the block it set (if still in place) goes with it.
_ours = _t.blocked_until == _p("ours")
_REFUND_THROTTLE = update(login_throttle).where(_t.key == _p("key")).values(
    failures=func.greatest(_t.failures - 1, 0),
    blocked_until=case((_ours, bindparam("p_prev_blocked", type_=DateTime(timezone=True))),
                       else_=_t.blocked_until),
    strikes=case((_ours, bindparam("p_prev_strikes", type_=Integer())), else_=_t.strikes))

_c = mfa_credentials.c
_MFA_CREDENTIAL = select(mfa_credentials).where(_c.user_id == _p("user_id"))
_MFA_CREDENTIAL_LOCKED = _MFA_CREDENTIAL.with_for_update()
_DELETE_MFA = mfa_credentials.delete().where(_c.user_id == _p("user_id"))
_INSERT_MFA = mfa_credentials.insert()
_CONFIRM_MFA = update(mfa_credentials).where(_c.user_id == _p("user_id")).values(
    confirmed_at=_p("at"))
_RESEAL_MFA = update(mfa_credentials).where(_c.user_id == _p("user_id")).values(
    secret=_p("secret"))
_CLAIM_STEP = insert(mfa_used_steps).on_conflict_do_nothing()
_r = mfa_recovery_codes.c
_DELETE_RECOVERY = mfa_recovery_codes.delete().where(_r.user_id == _p("user_id"))
_INSERT_RECOVERY = mfa_recovery_codes.insert()
_USE_RECOVERY = (update(mfa_recovery_codes)
                 .where(_r.code_hash == _p("hash"), _r.user_id == _p("user_id"),
                        _r.used_at.is_(None))
                 .values(used_at=_p("at")))

_l = login_links.c
_INSERT_LINK = login_links.insert()
_REDEEM_LINK = (update(login_links)
                .where(_l.token_hash == _p("hash"), _l.used_at.is_(None), _l.expires_at > _p("at"))
                .values(used_at=_p("at")).returning(_l.user_id))

_INSERT_AUDIT = audit_log.insert()


class GatewayStore:
    """The gateway's statements on one connection (``uow.store`` / ``reader.store``)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    # ------------------------------------------------------------------ users

    async def user_by_login(self, login: str) -> User | None:
        row = (await self.conn.execute(_USER_BY_LOGIN, {"p_login": login})).first()
        return User(**row._mapping) if row else None

    async def user_by_id(self, user_id: str, *, lock: bool = False) -> User | None:
        row = (await self.conn.execute(_USER_BY_ID_LOCKED if lock else _USER_BY_ID,
                                       {"p_user_id": user_id})).first()
        return User(**row._mapping) if row else None

    async def add_user(self, user: User) -> bool:
        """False when the login is taken."""
        res = await self.conn.execute(_INSERT_USER, vars(user))
        return res.rowcount == 1

    async def set_password(self, user_id: str, password_hash: str, *, must_change: bool,
                           at: datetime | None) -> None:
        await self.conn.execute(_SET_PASSWORD, {"p_user_id": user_id, "p_hash": password_hash,
                                                "p_must_change": must_change, "p_at": at})

    async def rehash_password(self, user_id: str, password_hash: str) -> None:
        await self.conn.execute(_REHASH, {"p_user_id": user_id, "p_hash": password_hash})

    async def set_disabled(self, user_id: str, at: datetime | None) -> None:
        await self.conn.execute(_SET_DISABLED, {"p_user_id": user_id, "p_at": at})

    async def erase_user(self, user_id: str, *, login: str, at: datetime) -> None:
        """The account keeps its opaque id and role; the login becomes ``login``, the
        password can never match, and the second factor, its recovery codes and every
        personal login link are gone."""
        await self.conn.execute(update(users).where(users.c.user_id == user_id).values(
            login=login, password_hash="!erased", must_change_password=False,
            disabled_at=func.coalesce(users.c.disabled_at, at)))
        for table in (mfa_recovery_codes, mfa_credentials, login_links):
            await self.conn.execute(delete(table).where(table.c.user_id == user_id))

    async def list_users(self, *, limit: int, offset: int) -> tuple[list[UserListed], int]:
        total = (await self.conn.execute(_COUNT_USERS)).scalar_one()
        rows = (await self.conn.execute(_LIST_USERS, {"p_limit": limit,
                                                      "p_offset": offset})).all()
        return [UserListed(user_id=r.user_id, login=r.login, role=r.role,
                           must_change_password=r.must_change_password, created_at=r.created_at,
                           disabled=r.disabled_at is not None,
                           mfa_enabled=r.confirmed_at is not None) for r in rows], int(total)

    async def logins(self, user_ids: Sequence[str]) -> dict[str, str]:
        """The login of each of ``user_ids`` that is an account (others are left out)."""
        if not user_ids:
            return {}
        rows = await self.conn.execute(_LOGINS, {"p_ids": list(user_ids)})
        return {r.user_id: r.login for r in rows}

    async def has_marker(self, name: str) -> bool:
        return (await self.conn.execute(_MARKER, {"p_name": name})).first() is not None

    async def add_marker(self, name: str, value: str, at: datetime) -> bool:
        """False when the marker exists (another replica wrote it first)."""
        res = await self.conn.execute(_ADD_MARKER, {"name": name, "value": value,
                                                    "created_at": at})
        return res.rowcount == 1

    # --------------------------------------------------------------- sessions

    async def add_session(self, *, session_id: str, token_hash: str, user_id: str, method: str,
                          created_at: datetime, expires_at: datetime) -> None:
        await self.conn.execute(_INSERT_SESSION, {
            "session_id": session_id, "token_hash": token_hash, "user_id": user_id,
            "method": method, "created_at": created_at, "expires_at": expires_at})

    async def session_by_token(self, token_hash: str) -> SessionRow | None:
        row = (await self.conn.execute(_SESSION_BY_TOKEN, {"p_hash": token_hash})).first()
        return SessionRow(**row._mapping) if row else None

    async def touch_session(self, session_id: str, at: datetime) -> None:
        await self.conn.execute(_TOUCH_SESSION, {"p_session_id": session_id, "p_at": at})

    async def revoke_session(self, session_id: str, at: datetime) -> None:
        await self.conn.execute(_REVOKE_SESSION, {"p_session_id": session_id, "p_at": at})

    async def revoke_sessions_of(self, user_id: str, at: datetime) -> int:
        res = await self.conn.execute(_REVOKE_USER_SESSIONS, {"p_user_id": user_id, "p_at": at})
        return res.rowcount or 0

    async def elevate_session(self, session_id: str, until: datetime) -> None:
        await self.conn.execute(_ELEVATE_SESSION, {"p_session_id": session_id,
                                                   "p_until": until})

    # --------------------------------------------------------------- throttle

    async def lock_throttles(self, keys: Sequence[str], now: datetime) -> dict[str, Throttle]:
        """The state of ``keys`` (created when missing), locked until the transaction ends.

        Rows are locked in key order, so two attempts sharing a key never deadlock.
        """
        rows = (await self.conn.execute(_LOCK_THROTTLES, [
            {"key": k, "failures": 0, "window_start": now, "last_failure_at": now,
             "blocked_until": None, "strikes": 0} for k in sorted(keys)])).all()
        return {r.key: Throttle(r.failures, r.window_start, r.last_failure_at, r.blocked_until,
                                r.strikes) for r in rows}

    async def save_throttles(self, states: dict[str, Throttle]) -> None:
        await self.conn.execute(_SAVE_THROTTLE, [
            {"p_key": k, "p_failures": s.failures, "p_window_start": s.window_start,
             "p_last_failure_at": s.last_failure_at, "p_blocked_until": s.blocked_until,
             "p_strikes": s.strikes} for k, s in states.items()])

    async def clear_throttle(self, key: str) -> None:
        await self.conn.execute(_CLEAR_THROTTLE, {"p_key": key})

    async def refund_throttle(self, key: str, *, before: Throttle, after: Throttle) -> None:
        """Give back one attempt counted as ``before`` -> ``after``."""
        await self.conn.execute(_REFUND_THROTTLE, {
            "p_key": key, "p_ours": after.blocked_until if after.blocked_until
            != before.blocked_until else None,
            "p_prev_blocked": before.blocked_until, "p_prev_strikes": before.strikes})

    # -------------------------------------------------------------------- MFA

    async def mfa_credential(self, user_id: str, *, lock: bool = False) -> MfaCredential | None:
        row = (await self.conn.execute(_MFA_CREDENTIAL_LOCKED if lock else _MFA_CREDENTIAL,
                                       {"p_user_id": user_id})).first()
        return MfaCredential(**row._mapping) if row else None

    async def replace_mfa_credential(self, user_id: str, sealed: str, at: datetime) -> None:
        await self.conn.execute(_DELETE_MFA, {"p_user_id": user_id})
        await self.conn.execute(_INSERT_MFA, {"user_id": user_id, "secret": sealed,
                                              "created_at": at, "confirmed_at": None})

    async def confirm_mfa(self, user_id: str, at: datetime) -> None:
        await self.conn.execute(_CONFIRM_MFA, {"p_user_id": user_id, "p_at": at})

    async def reseal_mfa(self, user_id: str, sealed: str) -> None:
        await self.conn.execute(_RESEAL_MFA, {"p_user_id": user_id, "p_secret": sealed})

    async def claim_step(self, user_id: str, step: int, at: datetime) -> bool:
        """False when the step was used already (a replay)."""
        res = await self.conn.execute(_CLAIM_STEP, {"user_id": user_id, "step": step,
                                                    "used_at": at})
        return res.rowcount == 1

    async def replace_recovery_codes(self, user_id: str, hashes: list[str],
                                     at: datetime) -> None:
        await self.conn.execute(_DELETE_RECOVERY, {"p_user_id": user_id})
        await self.conn.execute(_INSERT_RECOVERY, [
            {"code_hash": h, "user_id": user_id, "created_at": at, "used_at": None}
            for h in hashes])

    async def use_recovery_code(self, user_id: str, code_hash: str, at: datetime) -> bool:
        """Spend one unused code (a conditional UPDATE: single use even under races)."""
        res = await self.conn.execute(_USE_RECOVERY, {"p_hash": code_hash, "p_user_id": user_id,
                                                      "p_at": at})
        return res.rowcount == 1

    # ------------------------------------------------------------- login links

    async def add_login_link(self, *, link_id: str, token_hash: str, user_id: str,
                             created_by: str, created_at: datetime,
                             expires_at: datetime) -> None:
        await self.conn.execute(_INSERT_LINK, {
            "link_id": link_id, "token_hash": token_hash, "user_id": user_id,
            "created_by": created_by, "created_at": created_at, "expires_at": expires_at,
            "used_at": None})

    async def redeem_login_link(self, token_hash: str, at: datetime) -> str | None:
        """Spend the link once: its user, or None when unknown, used or expired."""
        row = (await self.conn.execute(_REDEEM_LINK, {"p_hash": token_hash, "p_at": at})).first()
        return row[0] if row else None

    # ------------------------------------------------------------------ audit

    async def append_audit(self, entry: dict[str, Any]) -> None:
        await self.conn.execute(_INSERT_AUDIT, entry)

    async def search_audit(self, *, kind: str | None, user_id: str | None,
                           since: datetime | None, until: datetime | None, limit: int,
                           offset: int) -> tuple[list[dict[str, Any]], int]:
        """Newest first; the filters vary per search (an admin's occasional query)."""
        a = audit_log.c
        cond: list[Any] = []
        if kind:
            # "mfa" matches mfa.setup, mfa.used, ...; "mfa.used" matches exactly.
            cond.append(or_(a.kind == kind, a.kind.like(f"{kind}.%")))
        if user_id:
            cond.append(or_(a.actor_user_id == user_id, a.target == user_id))
        if since:
            cond.append(a.at >= since)
        if until:
            cond.append(a.at < until)
        total = (await self.conn.execute(
            select(func.count()).select_from(audit_log).where(*cond))).scalar_one()
        rows = (await self.conn.execute(select(audit_log).where(*cond).order_by(a.id.desc())
                                        .limit(limit).offset(offset))).all()
        return [dict(r._mapping) for r in rows], int(total)
