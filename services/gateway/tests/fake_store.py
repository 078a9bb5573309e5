"""An in-memory GatewayStore for the security layer's unit tests (no database, no bus).

It keeps the real store's contract (same methods, same results) without transactions:
the fake unit of work keeps events only when it commits, the rows stay as written.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from gateway_service.security.store import MfaCredential, SessionRow, User, UserListed
from gateway_service.security.throttle import Throttle


class FakeGatewayStore:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.markers: dict[str, str] = {}
        self.sessions: dict[str, dict[str, Any]] = {}  # token_hash -> session columns
        self.throttles: dict[str, Throttle] = {}
        self.mfa: dict[str, MfaCredential] = {}
        self.steps: set[tuple[str, int]] = set()
        self.recovery: dict[str, dict[str, Any]] = {}
        self.links: dict[str, dict[str, Any]] = {}
        self.audit: list[dict[str, Any]] = []

    # users
    async def user_by_login(self, login: str) -> User | None:
        return next((dataclasses.replace(u) for u in self.users.values() if u.login == login),
                    None)

    async def user_by_id(self, user_id: str, *, lock: bool = False) -> User | None:
        u = self.users.get(user_id)
        return dataclasses.replace(u) if u else None

    async def add_user(self, user: User) -> bool:
        if any(u.login == user.login for u in self.users.values()):
            return False
        self.users[user.user_id] = dataclasses.replace(user)
        return True

    async def set_password(self, user_id: str, password_hash: str, *, must_change: bool,
                           at: datetime | None) -> None:
        u = self.users[user_id]
        u.password_hash, u.must_change_password, u.password_changed_at = (
            password_hash, must_change, at)

    async def rehash_password(self, user_id: str, password_hash: str) -> None:
        self.users[user_id].password_hash = password_hash

    async def set_disabled(self, user_id: str, at: datetime | None) -> None:
        self.users[user_id].disabled_at = at

    async def list_users(self, *, limit: int, offset: int) -> tuple[list[UserListed], int]:
        rows = [UserListed(u.user_id, u.login, u.role, u.must_change_password, u.created_at,
                           u.disabled_at is not None, u.user_id in self.mfa)
                for u in self.users.values()]
        return rows[offset:offset + limit], len(rows)

    async def logins(self, user_ids: list[str]) -> dict[str, str]:
        return {u: self.users[u].login for u in user_ids if u in self.users}

    async def has_marker(self, name: str) -> bool:
        return name in self.markers

    async def add_marker(self, name: str, value: str, at: datetime) -> bool:
        if name in self.markers:
            return False
        self.markers[name] = value
        return True

    # sessions
    async def add_session(self, **row: Any) -> None:
        self.sessions[row["token_hash"]] = {**row, "revoked_at": None,
                                            "mfa_elevated_until": None, "last_seen_at": None}

    async def session_by_token(self, token_hash: str) -> SessionRow | None:
        s = self.sessions.get(token_hash)
        if s is None:
            return None
        u = self.users[s["user_id"]]
        return SessionRow(s["session_id"], u.user_id, s["method"], s["created_at"],
                          s["expires_at"], s["revoked_at"], s["mfa_elevated_until"],
                          s["last_seen_at"], u.login, u.role, u.must_change_password,
                          u.disabled_at)

    def _session(self, session_id: str) -> dict[str, Any]:
        return next(s for s in self.sessions.values() if s["session_id"] == session_id)

    async def touch_session(self, session_id: str, at: datetime) -> None:
        self._session(session_id)["last_seen_at"] = at

    async def revoke_session(self, session_id: str, at: datetime) -> None:
        s = self._session(session_id)
        s["revoked_at"] = s["revoked_at"] or at

    async def revoke_sessions_of(self, user_id: str, at: datetime) -> int:
        open_ = [s for s in self.sessions.values()
                 if s["user_id"] == user_id and s["revoked_at"] is None]
        for s in open_:
            s["revoked_at"] = at
        return len(open_)

    async def elevate_session(self, session_id: str, until: datetime) -> None:
        self._session(session_id)["mfa_elevated_until"] = until

    # throttle
    async def lock_throttles(self, keys: list[str], now: datetime) -> dict[str, Throttle]:
        for k in keys:
            self.throttles.setdefault(k, Throttle(0, now, now, None, 0))
        return {k: dataclasses.replace(self.throttles[k]) for k in keys}

    async def save_throttles(self, states: dict[str, Throttle]) -> None:
        self.throttles.update({k: dataclasses.replace(s) for k, s in states.items()})

    async def clear_throttle(self, key: str) -> None:
        self.throttles.pop(key, None)

    async def refund_throttle(self, key: str, *, before: Throttle, after: Throttle) -> None:
        t = self.throttles[key]
        t.failures = max(t.failures - 1, 0)
        if after.blocked_until != before.blocked_until and t.blocked_until == after.blocked_until:
            t.blocked_until, t.strikes = before.blocked_until, before.strikes

    # MFA
    async def mfa_credential(self, user_id: str, *, lock: bool = False) -> MfaCredential | None:
        c = self.mfa.get(user_id)
        return dataclasses.replace(c) if c else None

    async def replace_mfa_credential(self, user_id: str, sealed: str, at: datetime) -> None:
        self.mfa[user_id] = MfaCredential(user_id, sealed, at, None)

    async def confirm_mfa(self, user_id: str, at: datetime) -> None:
        self.mfa[user_id].confirmed_at = at

    async def reseal_mfa(self, user_id: str, sealed: str) -> None:
        self.mfa[user_id].secret = sealed

    async def claim_step(self, user_id: str, step: int, at: datetime) -> bool:
        if (user_id, step) in self.steps:
            return False
        self.steps.add((user_id, step))
        return True

    async def replace_recovery_codes(self, user_id: str, hashes: list[str],
                                     at: datetime) -> None:
        self.recovery = {h: r for h, r in self.recovery.items() if r["user_id"] != user_id}
        self.recovery.update({h: {"user_id": user_id, "used_at": None} for h in hashes})

    async def use_recovery_code(self, user_id: str, code_hash: str, at: datetime) -> bool:
        r = self.recovery.get(code_hash)
        if r is None or r["user_id"] != user_id or r["used_at"] is not None:
            return False
        r["used_at"] = at
        return True

    # login links
    async def add_login_link(self, **row: Any) -> None:
        self.links[row["token_hash"]] = {**row, "used_at": None}

    async def redeem_login_link(self, token_hash: str, at: datetime) -> str | None:
        link = self.links.get(token_hash)
        if link is None or link["used_at"] is not None or link["expires_at"] <= at:
            return None
        link["used_at"] = at
        return str(link["user_id"])

    # audit
    async def append_audit(self, entry: dict[str, Any]) -> None:
        self.audit.append(entry)

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.audit]
