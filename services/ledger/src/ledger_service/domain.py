"""Pure rules of the ledger: no I/O.

Money is integer minor units; the worker share is basis points (1/10000).
A transfer is a list of legs whose amounts sum to zero; an account's identity
(and so its currency) is derived from who owns it and what it holds.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from contracts.money import CURRENCIES
from servicekit.errors import UnprocessableEvent

BPS_SCALE = 10_000
DEFAULT_SHARE_KEY = "*"  # the share audit's key for the platform-wide default

WORKER_KINDS: tuple[str, ...] = ("worker_available", "worker_hold", "worker_paid")
# A requester's budget and each pool's reservation of it (budgets.py): stored balances too.
BUDGET_KINDS: tuple[str, ...] = ("requester_available", "pool_reserve")
BALANCE_KINDS: tuple[str, ...] = WORKER_KINDS + BUDGET_KINDS
# What a worker sees instead of the internal account kind.
WORKER_VIEW: dict[str, Literal["available", "on_hold", "paid"]] = {
    "worker_available": "available", "worker_hold": "on_hold", "worker_paid": "paid"}

TransferKind = Literal["assignment", "bonus", "payout_hold", "payout_paid", "payout_release",
                       "budget_topup", "budget_reserve", "budget_release"]


def new_id() -> str:
    return str(uuid.uuid4())


class LedgerRuleError(ValueError, UnprocessableEvent):
    """A value the ledger refuses; ``code`` is machine-readable. In an event it is
    permanent: the event is dead-lettered at once, not retried."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ------------------------------------------------------------------------ shares


def split_price(price_minor: int, share_bps: int) -> tuple[int, int]:
    """(worker, platform) parts of a price: worker rounds down, the parts sum to the price."""
    if isinstance(price_minor, bool) or not isinstance(price_minor, int) or price_minor < 0:
        raise LedgerRuleError("invalid_price", f"price must be a non-negative integer, "
                                               f"got {price_minor!r}")
    check_bps(share_bps)
    worker = price_minor * share_bps // BPS_SCALE
    return worker, price_minor - worker


def check_bps(bps: int) -> int:
    if isinstance(bps, bool) or not isinstance(bps, int) or not 0 <= bps <= BPS_SCALE:
        raise LedgerRuleError("invalid_share", f"share must be 0..{BPS_SCALE} bps, got {bps!r}")
    return bps


def parse_share(value: Any) -> int:
    """A share given as 0.0..1.0 (float, int or decimal string) in exact basis points.

    Refuses anything outside 0..1 or finer than one basis point (0.0001) rather
    than rounding it: an admin typing 0.33333 must learn it is not what gets stored.
    """
    if isinstance(value, bool) or value is None:
        raise LedgerRuleError("invalid_share", "share must be a number between 0.0 and 1.0")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LedgerRuleError("invalid_share", "share must be a finite number")
        # repr() is the shortest string that round-trips: 0.7 -> "0.7", not 0.69999...
        text = repr(value)
    elif isinstance(value, (int, Decimal)):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise LedgerRuleError("invalid_share", "share must be a number between 0.0 and 1.0")
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise LedgerRuleError("invalid_share",
                              f"share {value!r} is not a number between 0.0 and 1.0") from None
    if not d.is_finite():
        raise LedgerRuleError("invalid_share", "share must be a finite number")
    if d < 0 or d > 1:
        raise LedgerRuleError("share_out_of_range",
                              f"share {text} is out of range: it must be between 0.0 and 1.0")
    bps = d * BPS_SCALE
    if bps != bps.to_integral_value():
        raise LedgerRuleError("share_too_precise",
                              f"share {text} is finer than one basis point (0.0001)")
    return int(bps)


@dataclass(frozen=True)
class ShareSetting:
    """A worker share and where it comes from."""

    share_bps: int
    source: Literal["pool", "default", "built_in"]
    updated_at: datetime | None = None
    updated_by: str | None = None


def effective_share(pool: ShareSetting | None, default: ShareSetting | None,
                    built_in_bps: int) -> ShareSetting:
    """The pool's own share, else the admin's default, else the built-in default."""
    return pool or default or ShareSetting(check_bps(built_in_bps), "built_in")


def format_share(bps: int) -> str:
    """Basis points as a plain decimal fraction: 5000 -> "0.5", 10000 -> "1", 125 -> "0.0125"."""
    d = (Decimal(check_bps(bps)) / BPS_SCALE).normalize()
    return format(d, "f")


# ---------------------------------------------------------------------- accounts


def check_currency(currency: str) -> str:
    """One of the ISO 4217 codes the ledger books (``contracts.money.CURRENCIES``)."""
    if currency not in CURRENCIES:
        raise LedgerRuleError("invalid_currency",
                              f"currency must be one of {', '.join(CURRENCIES)}, "
                              f"got {currency!r}")
    return currency


def worker_account(worker_id: str, currency: str, kind: str = "worker_available") -> str:
    if kind not in WORKER_KINDS:
        raise LedgerRuleError("invalid_account", f"{kind} is not a worker account kind")
    if not worker_id:
        raise LedgerRuleError("invalid_worker", "worker id is empty")
    return f"{kind}:{check_currency(currency)}:{worker_id}"


def system_account(kind: str, currency: str) -> str:
    if kind not in ("platform_revenue", "requester_clearing"):
        raise LedgerRuleError("invalid_account", f"{kind} is not a system account kind")
    return f"{kind}:{check_currency(currency)}"


@dataclass(frozen=True)
class Account:
    account_id: str
    kind: str
    currency: str
    owner_id: str | None = None

    @property
    def keeps_balance(self) -> bool:
        """Worker and budget accounts carry a stored, never-negative balance row.

        System accounts are derived from their entries instead, so that every
        credit does not serialize on one hot balance row.
        """
        return self.kind in BALANCE_KINDS


def account_for_worker(worker_id: str, currency: str, kind: str) -> Account:
    return Account(worker_account(worker_id, currency, kind), kind, currency, worker_id)


def account_for_system(kind: str, currency: str) -> Account:
    return Account(system_account(kind, currency), kind, currency, None)


# --------------------------------------------------------------------- transfers


@dataclass(frozen=True)
class Leg:
    account: Account
    amount_minor: int


@dataclass(frozen=True)
class Transfer:
    """One transfer's row: what moved, why, for whom (its legs are posted with it)."""

    transfer_id: str
    kind: TransferKind
    currency: str
    created_by: str
    created_at: datetime
    worker_id: str | None = None
    pool_id: str | None = None
    project_id: str | None = None
    assignment_id: str | None = None
    bonus_id: str | None = None
    payout_id: str | None = None
    cause_event_id: str | None = None


class InsufficientFunds(Exception):
    """A debit would take a worker balance below zero (the database refused it)."""


class IdempotencyKeyTaken(Exception):
    """Another payout request of the worker already holds this Idempotency-Key."""


def balanced_legs(legs: list[Leg]) -> list[Leg]:
    """Drop zero legs and check the rest: one currency, integer amounts summing to zero."""
    kept = [leg for leg in legs if leg.amount_minor != 0]
    for leg in kept:
        if isinstance(leg.amount_minor, bool) or not isinstance(leg.amount_minor, int):
            raise LedgerRuleError("invalid_amount", f"leg amount {leg.amount_minor!r} is not "
                                                    "an integer number of minor units")
    if len({leg.account.currency for leg in kept}) > 1:
        raise LedgerRuleError("mixed_currency", "a transfer moves one currency")
    if sum(leg.amount_minor for leg in kept) != 0:
        raise LedgerRuleError("unbalanced", "transfer legs do not sum to zero")
    if len({leg.account.account_id for leg in kept}) != len(kept):
        raise LedgerRuleError("duplicate_leg", "an account appears twice in one transfer")
    return kept


def assignment_credit_legs(*, worker_id: str, currency: str, price_minor: int,
                           share_bps: int) -> tuple[list[Leg], int]:
    """Legs crediting an accepted assignment, and the worker's part.

    The requester clearing account pays the full price; the worker gets the
    share, the platform keeps the rest.
    """
    worker, platform = split_price(price_minor, share_bps)
    legs = balanced_legs([
        Leg(account_for_system("requester_clearing", currency), -price_minor),
        Leg(account_for_worker(worker_id, currency, "worker_available"), worker),
        Leg(account_for_system("platform_revenue", currency), platform),
    ])
    return legs, worker


def bonus_credit_legs(*, worker_id: str, currency: str, amount_minor: int) -> list[Leg]:
    """A bonus is paid in full by the requester clearing account."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise LedgerRuleError("invalid_amount", f"bonus must be positive, got {amount_minor!r}")
    return balanced_legs([
        Leg(account_for_system("requester_clearing", currency), -amount_minor),
        Leg(account_for_worker(worker_id, currency, "worker_available"), amount_minor),
    ])


def payout_legs(*, worker_id: str, currency: str, amount_minor: int,
                step: Literal["hold", "pay", "release"]) -> list[Leg]:
    """Legs of one payout step: available -> hold, hold -> paid, or hold -> available."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise LedgerRuleError("invalid_amount", f"payout must be positive, got {amount_minor!r}")
    src, dst = {"hold": ("worker_available", "worker_hold"),
                "pay": ("worker_hold", "worker_paid"),
                "release": ("worker_hold", "worker_available")}[step]
    return balanced_legs([
        Leg(account_for_worker(worker_id, currency, src), -amount_minor),
        Leg(account_for_worker(worker_id, currency, dst), amount_minor),
    ])

