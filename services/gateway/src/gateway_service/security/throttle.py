"""Login, MFA and login-link throttling: an attempt is counted before it is checked.

Each attempt first *reserves* a place on every key it is limited by (its account, its
client address, the MFA of its user): in one transaction the keys' rows are locked,
a blocked key refuses the attempt (429 with Retry-After), and otherwise the attempt is
counted as a failure in advance. Only then is the password or code checked, so however
many attempts race, no more are checked than the limit allows. An attempt that succeeds
gives its place back: the account's counter is cleared, the address's is refunded by one.

Accounts (and MFA) back off exponentially (base * 2^strikes, capped); an address is only
ever blocked for the base time, so a burst from one address cannot keep everyone who
shares it out for long. The client address is the socket peer, or the last hop before a
configured trusted proxy (``security.addresses``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gateway_service.errors import ApiError
from gateway_service.settings import GatewaySettings

if TYPE_CHECKING:
    from gateway_service.security.store import GatewayStore


@dataclass
class Throttle:
    """Attempts of one key inside the current window."""

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
    else:
        state = Throttle(state.failures, state.window_start, state.last_failure_at,
                         state.blocked_until, state.strikes)
    state.failures += 1
    state.last_failure_at = now
    if state.failures >= max_failures:
        state.blocked_until = now + timedelta(seconds=min(base_s * 2 ** state.strikes, cap_s))
        state.strikes = min(state.strikes + 1, 20)
    return state


@dataclass(frozen=True)
class Limit:
    """A key and how many failures it may have in a window before it is blocked."""

    key: str
    max_failures: int
    backs_off: bool = True  # False: blocked for the base time only, never longer


@dataclass
class Reservation:
    """The places an attempt holds: each key's state before and after it was counted."""

    before: dict[str, Throttle]
    after: dict[str, Throttle]


class TooManyAttempts(ApiError):
    def __init__(self, wait: int) -> None:
        super().__init__(429, "too_many_attempts",
                         f"too many failed attempts: try again in {wait} s",
                         details={"retry_after_s": wait}, headers={"Retry-After": str(wait)})
        self.wait = wait


class Throttles:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings

    def account(self, login: str) -> Limit:
        return Limit(f"acct:{login[:100]}", self.settings.login_account_max_failures)

    def address(self, address: str | None) -> Limit:
        return Limit(f"addr:{address or '?'}", self.settings.login_address_max_failures,
                     backs_off=False)

    def mfa(self, user_id: str) -> Limit:
        return Limit(f"mfa:{user_id}", self.settings.mfa_max_failures)

    async def reserve(self, store: GatewayStore, limits: Sequence[Limit],
                      now: datetime) -> Reservation:
        """Count one attempt on every limit, or raise TooManyAttempts (counting nothing)
        when any of them is blocked. Call inside a unit of work: the attempt holds its
        places once that commits."""
        before = await store.lock_throttles([lim.key for lim in limits], now)
        waits = [w for w in (retry_after(s, now) for s in before.values()) if w]
        if waits:
            raise TooManyAttempts(max(waits))
        s = self.settings
        after = {lim.key: after_failure(
            before[lim.key], now, max_failures=lim.max_failures, window_s=s.login_failure_window_s,
            base_s=s.login_backoff_base_s,
            cap_s=s.login_backoff_max_s if lim.backs_off else s.login_backoff_base_s)
            for lim in limits}
        await store.save_throttles(after)
        return Reservation(before, after)

    async def succeeded(self, store: GatewayStore, held: Reservation, *,
                        clear: Sequence[Limit] = ()) -> None:
        """The attempt succeeded: the ``clear`` keys start afresh, the others get their
        place back."""
        cleared = {lim.key for lim in clear}
        for key in held.after:
            if key in cleared:
                await store.clear_throttle(key)
            else:
                await store.refund_throttle(key, before=held.before[key], after=held.after[key])
