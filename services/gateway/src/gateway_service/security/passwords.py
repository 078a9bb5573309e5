"""Password hashing (argon2id) and the password policy.

Policy (OWASP ASVS 2.1): 8 to 128 characters, any characters, no composition rules.
Refused: a password of only whitespace, the login itself, any of the bundled most common
passwords (case-insensitive), also with its whitespace removed or with the digits and
symbols around it taken off ("Password2024!" is "password" with decoration), and what the
zxcvbn strength estimator scores 0 or 1 (under about a million guesses: keyboard walks,
dictionary words with common substitutions, dates, the login spelled differently).
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

MIN_LENGTH = 8
MAX_LENGTH = 128
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")
MIN_STRENGTH = 2  # zxcvbn's score (0..4): 2 = about 10^6..10^8 guesses
ESTIMATED_CHARS = 72  # zxcvbn's own limit: the estimate reads the first 72 characters


def make_hasher(*, time_cost: int = 2, memory_kib: int = 19456,
                parallelism: int = 1) -> PasswordHasher:
    """argon2id; the defaults are OWASP's recommended minimum (19 MiB, t=2, p=1)."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
                          type=Type.ID)


_HASHER = make_hasher()


class WeakPassword(ValueError):
    """The password breaks the policy; the message says why (never echoes the password)."""


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = (resources.files("gateway_service.security") / "resources" / "common_passwords.txt"
            ).read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def _is_common(password: str) -> bool:
    common = common_passwords()
    plain = password.lower()
    squeezed = "".join(plain.split())
    core = _DECORATION.sub("", squeezed)
    return plain in common or squeezed in common or (len(core) >= 4 and core in common)


def check_policy(password: str, *, login: str | None = None) -> None:
    """Raise WeakPassword if ``password`` may not be used."""
    n = len(password)
    if n < MIN_LENGTH:
        raise WeakPassword(f"the password needs at least {MIN_LENGTH} characters")
    if n > MAX_LENGTH:
        raise WeakPassword(f"the password may have at most {MAX_LENGTH} characters")
    if not password.strip():
        raise WeakPassword("the password may not be only spaces")
    if _is_common(password):
        raise WeakPassword("this password is one of the most common ones: choose another")
    if login and password.strip().lower() == login.lower():
        raise WeakPassword("the password may not be the login")
    estimate = zxcvbn(password[:ESTIMATED_CHARS], user_inputs=[login] if login else [])
    if estimate["score"] < MIN_STRENGTH:
        hint = estimate["feedback"].get("warning") or "add a few more words"
        raise WeakPassword(f"this password is easy to guess ({hint.rstrip('.')}): "
                           "choose a longer one")


def hash_password(password: str, hasher: PasswordHasher = _HASHER) -> str:
    return hasher.hash(password)


def verify_password(stored_hash: str, password: str,
                    hasher: PasswordHasher = _HASHER) -> tuple[bool, bool]:
    """(matches, needs_rehash). A malformed stored hash never matches."""
    try:
        hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, hasher.check_needs_rehash(stored_hash)


_DUMMY_HASHES: dict[int, str] = {}


def burn_time(password: str, hasher: PasswordHasher = _HASHER) -> None:
    """Spend a verification's time when the login is unknown (no user enumeration by timing)."""
    dummy = _DUMMY_HASHES.get(id(hasher))
    if dummy is None:
        dummy = _DUMMY_HASHES[id(hasher)] = hasher.hash(secrets.token_urlsafe(16))
    verify_password(dummy, password, hasher)


def generate_password() -> str:
    """A random temporary password (~128 bits)."""
    return secrets.token_urlsafe(16)
