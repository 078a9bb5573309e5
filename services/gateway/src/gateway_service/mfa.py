"""TOTP (RFC 6238) second factor and recovery codes.

A code is accepted for the current 30 s step or one step either side, and only once:
the step it matched is inserted into ``mfa_used_steps`` (UNIQUE per user and step) in
the verifying transaction, so a replay (also two racing requests) finds the row taken.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import secrets
from datetime import datetime

import pyotp
import segno
from sqlalchemy import and_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway_service.db import mfa_recovery_codes, mfa_used_steps
from servicekit.db import dialect_insert

ISSUER = "Microtask Engine"
VALID_WINDOW = 1
RECOVERY_CODES = 10
_CODE = re.compile(r"^\d{6}$")


class SecretBox:
    """Encrypts TOTP secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256).

    The database holds ``v1:<token>``; a stolen dump without the key gives no
    usable second factor.
    """

    PREFIX = "v1:"

    def __init__(self, key_material: str) -> None:
        import base64
        import hashlib

        from cryptography.fernet import Fernet

        key = base64.urlsafe_b64encode(hashlib.sha256(key_material.encode()).digest())
        self._fernet = Fernet(key)

    def seal(self, secret: str) -> str:
        return self.PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(self.PREFIX):
            return stored  # enrolled before secrets were sealed (schema 0001)
        return self._fernet.decrypt(stored[len(self.PREFIX):].encode()).decode()


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


async def consume_step(conn: AsyncConnection, user_id: str, step: int, now: datetime) -> bool:
    """Claim ``step`` for ``user_id``; False when it was already used (replay)."""
    insert = dialect_insert(conn)
    res = await conn.execute(insert(mfa_used_steps).values(user_id=user_id, step=step, used_at=now)
                             .on_conflict_do_nothing())
    return res.rowcount == 1


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


async def store_recovery_codes(conn: AsyncConnection, pepper: bytes, user_id: str,
                               codes: list[str], now: datetime) -> None:
    await conn.execute(mfa_recovery_codes.delete().where(mfa_recovery_codes.c.user_id == user_id))
    await conn.execute(mfa_recovery_codes.insert(), [
        dict(code_hash=hash_recovery_code(pepper, c), user_id=user_id, created_at=now,
             used_at=None) for c in codes])


async def use_recovery_code(conn: AsyncConnection, pepper: bytes, user_id: str, code: str,
                            now: datetime) -> bool:
    """Spend one recovery code (conditional UPDATE: single use even under races)."""
    if len(normalize_recovery_code(code)) != 10:
        return False
    res = await conn.execute(
        update(mfa_recovery_codes)
        .where(and_(mfa_recovery_codes.c.code_hash == hash_recovery_code(pepper, code),
                    mfa_recovery_codes.c.user_id == user_id,
                    mfa_recovery_codes.c.used_at.is_(None)))
        .values(used_at=now))
    return res.rowcount == 1
