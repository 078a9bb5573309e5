"""Secrets a service must read back (a TOTP seed, a webhook's signing secret) sealed at rest.

Fernet (AES-128-CBC + HMAC-SHA256) under several keys, newest first: the newest seals, any
opens, so a key is rotated by moving it to the previous keys and setting a new one. The
database holds ``v1:<token>``; a stolen dump without a key gives none of the secrets.
A key is any high-entropy string (the Fernet key is its SHA-256).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["InvalidToken", "SecretBox"]


class SecretBox:
    PREFIX = "v1:"

    def __init__(self, *key_material: str) -> None:
        if not key_material:
            raise ValueError("SecretBox needs at least one key")
        self._fernets = [Fernet(base64.urlsafe_b64encode(hashlib.sha256(k.encode()).digest()))
                         for k in key_material]
        self._all = MultiFernet(self._fernets)

    def seal(self, secret: str) -> str:
        return self.PREFIX + self._fernets[0].encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        """The secret; ``InvalidToken`` when no configured key opens it."""
        if not stored.startswith(self.PREFIX):
            raise InvalidToken
        return self._all.decrypt(stored[len(self.PREFIX):].encode()).decode()

    def sealed_with_newest(self, stored: str) -> bool:
        try:
            self._fernets[0].decrypt(stored[len(self.PREFIX):].encode())
        except InvalidToken:
            return False
        return True
