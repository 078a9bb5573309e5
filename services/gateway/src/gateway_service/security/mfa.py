"""TOTP (RFC 6238) second factor: setup, confirm, step-up; recovery codes; sealed secrets.

A code is accepted for the current 30 s step or one step either side, and only once:
the step it matched is inserted into ``mfa_used_steps`` (UNIQUE per user and step) in
the verifying transaction, so a replay (also two racing requests) finds the row taken.
Every check holds its user's throttle row (``security.throttle``) from the count to the
commit, so racing wrong codes are checked one at a time and at most as many as allowed.

Secrets are sealed at rest with Fernet under the newest configured key; any configured
key opens them, and a secret opened with an older key is sealed again with the newest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from prometheus_client import Counter

from gateway_service.errors import ApiError
from gateway_service.security.audit import AuditLog
from gateway_service.security.context import GatewayContext
from gateway_service.security.sessions import SessionInfo, Sessions
from gateway_service.security.store import GatewayStore, MfaCredential
from gateway_service.security.throttle import Throttles
from servicekit.errors import CommitThen
from servicekit.secretbox import InvalidToken, SecretBox

log = logging.getLogger("gateway.mfa")

MFA_CHECKS = Counter("gateway_mfa_checks_total", "Second-factor checks by outcome", ["result"])

ISSUER = "Microtask Engine"
VALID_WINDOW = 1
RECOVERY_CODES = 10
_CODE = re.compile(r"^\d{6}$")


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits


def provisioning_uri(secret: str, login: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=ISSUER)


def qr_png_base64(uri: str) -> str:
    buf = io.BytesIO()
    segno.make(uri, error="m").save(buf, kind="png", scale=5, border=2)
    return base64.b64encode(buf.getvalue()).decode()


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step ``code`` belongs to (current +-1), or None; constant-time compare."""
    code = (code or "").strip().replace(" ", "")
    if not _CODE.match(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def new_recovery_codes() -> list[str]:
    """Ten codes of 50 random bits each, shown once as xxxxx-xxxxx."""
    out = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:10]
        out.append(f"{raw[:5]}-{raw[5:]}")
    return out


def normalize_recovery_code(code: str) -> str:
    return re.sub(r"[^a-z2-7]", "", (code or "").lower())


def hash_recovery_code(pepper: bytes, code: str) -> str:
    return hmac.new(pepper, b"recovery:" + normalize_recovery_code(code).encode(),
                    hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class MfaSetup:
    secret: str
    otpauth_uri: str
    qr_png_base64: str


def invalid_code() -> ApiError:
    return ApiError(400, "invalid_code", "the code is wrong, expired or already used")


class Mfa:
    def __init__(self, ctx: GatewayContext, *, sessions: Sessions, throttle: Throttles,
                 audit: AuditLog, pepper: bytes) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.throttle = throttle
        self.audit = audit
        self.pepper = pepper
        self.secret_box = SecretBox(*ctx.settings.mfa_keys())

    def _open(self, cred: MfaCredential) -> str:
        try:
            return self.secret_box.open(cred.secret)
        except InvalidToken:
            log.error("the TOTP secret of user %s opens with none of the configured MFA keys: "
                      "add the key it was sealed with to GATEWAY_MFA_PREVIOUS_KEYS",
                      cred.user_id)
            raise ApiError(503, "mfa_unavailable",
                           "the second factor of this account cannot be checked right now "
                           "(the server's MFA key changed): ask an administrator") from None

    async def _totp_ok(self, store: GatewayStore, cred: MfaCredential, code: str,
                       now: datetime) -> bool:
        step = matching_step(self._open(cred), code, now)
        if step is None or not await store.claim_step(cred.user_id, step, now):
            return False
        if not self.secret_box.sealed_with_newest(cred.secret):
            await store.reseal_mfa(cred.user_id, self.secret_box.seal(self._open(cred)))
        return True

    async def _refuse(self, store: GatewayStore, session: SessionInfo, address: str | None,
                      reason: str) -> CommitThen:
        """The code was wrong: keep the counted attempt and the audit entry, then refuse."""
        MFA_CHECKS.labels("failed").inc()
        await self.audit.record("mfa.failed", session.user_id, session.user_id,
                                {"reason": reason}, address=address, store=store)
        return CommitThen(invalid_code())

    async def setup(self, session: SessionInfo, address: str | None) -> MfaSetup:
        """Start TOTP enrolment (replacing an unconfirmed one, never a confirmed one)."""
        secret = new_secret()
        async with self.ctx.uow() as uow:
            cur = await uow.store.mfa_credential(session.user_id, lock=True)
            if cur is not None and cur.confirmed_at is not None:
                raise ApiError(409, "mfa_already_enabled", "MFA is already set up for this account")
            await uow.store.replace_mfa_credential(session.user_id, self.secret_box.seal(secret),
                                                   self.ctx.clock())
            await self.audit.record("mfa.setup", session.user_id, session.user_id,
                                    address=address, store=uow.store)
        uri = provisioning_uri(secret, session.login)
        return MfaSetup(secret, uri, qr_png_base64(uri))

    async def confirm(self, session: SessionInfo, code: str, address: str | None) -> list[str]:
        """Finish enrolment with a current code: the session is elevated and ten recovery
        codes are returned, once."""
        limit = self.throttle.mfa(session.user_id)
        async with self.ctx.uow() as uow:
            now = self.ctx.clock()
            held = await self.throttle.reserve(uow.store, [limit], now)
            cur = await uow.store.mfa_credential(session.user_id)
            if cur is None:
                raise ApiError(409, "mfa_not_set_up", "start with POST /api/auth/mfa/setup")
            if cur.confirmed_at is not None:
                raise ApiError(409, "mfa_already_enabled", "MFA is already confirmed")
            if not await self._totp_ok(uow.store, cur, code, now):
                raise await self._refuse(uow.store, session, address, "confirm")
            codes = new_recovery_codes()
            await uow.store.confirm_mfa(session.user_id, now)
            await uow.store.replace_recovery_codes(
                session.user_id, [hash_recovery_code(self.pepper, c) for c in codes], now)
            await self.sessions.elevate(uow.store, session)
            await self.throttle.succeeded(uow.store, held, clear=[limit])
            await self.audit.record("mfa.confirmed", session.user_id, session.user_id,
                                    address=address, store=uow.store)
        await self.sessions.cache.changed(session.user_id)
        MFA_CHECKS.labels("ok").inc()
        return codes

    async def step_up(self, session: SessionInfo, code: str | None, recovery_code: str | None,
                      address: str | None) -> datetime:
        """Prove the second factor (a TOTP code or a recovery code): the session is
        MFA-elevated until the returned time."""
        if bool(code) == bool(recovery_code):
            raise ApiError(422, "invalid_request", "send either code or recovery_code")
        limit = self.throttle.mfa(session.user_id)
        async with self.ctx.uow() as uow:
            now = self.ctx.clock()
            held = await self.throttle.reserve(uow.store, [limit], now)
            cur = await uow.store.mfa_credential(session.user_id)
            if cur is None or cur.confirmed_at is None:
                raise ApiError(409, "mfa_not_enabled",
                               "set up MFA first (POST /api/auth/mfa/setup)")
            if code:
                ok = await self._totp_ok(uow.store, cur, code, now)
            else:
                ok = (len(normalize_recovery_code(recovery_code or "")) == 10
                      and await uow.store.use_recovery_code(
                          session.user_id, hash_recovery_code(self.pepper, recovery_code or ""),
                          now))
            if not ok:
                raise await self._refuse(uow.store, session, address,
                                         "step-up" if code else "recovery code")
            until = await self.sessions.elevate(uow.store, session)
            await self.throttle.succeeded(uow.store, held, clear=[limit])
            await self.audit.record("mfa.used" if code else "mfa.recovery_used",
                                    session.user_id, session.user_id, address=address,
                                    store=uow.store)
        await self.sessions.cache.changed(session.user_id)
        MFA_CHECKS.labels("ok").inc()
        return until
