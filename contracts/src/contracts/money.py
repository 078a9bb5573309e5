"""Values that carry money, defined once for every service and the gateway.

A pool price, a bonus, a payout or a share that the ledger would refuse is refused where
it is entered (HTTP 422), never discovered later by a consumer that cannot book it:

* an amount is a strict integer of minor units (never a bool, never a string), from 0 to
  ``MAX_AMOUNT_MINOR``; sums of any number of bounded amounts fit PostgreSQL's NUMERIC
  ``sum()`` of BIGINT, and any one amount times a share fits a BIGINT;
* a currency is one of the ISO 4217 codes the ledger books (``CURRENCIES``), each with
  its number of minor units for display;
* a worker share is a strict integer of basis points, 0..10000.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, StrictInt

MAX_AMOUNT_MINOR = 10**12  # 10 billion in a two-decimal currency: far above any task or payout

AmountMinor = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT_MINOR,
                                         description="minor units (e.g. kopecks), 0..10^12")]
PositiveAmountMinor = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT_MINOR,
                                                 description="minor units, 1..10^12")]
ShareBps = Annotated[StrictInt, Field(ge=0, le=10_000,
                                      description="basis points: 5000 = 50%")]

Currency = Literal["RUB", "USD", "EUR", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "KZT",
                   "BYN", "UAH", "AMD", "GEL", "UZS", "AED", "TRY", "CNY", "INR", "JPY", "CAD",
                   "AUD", "BRL", "MXN"]
CURRENCIES: tuple[str, ...] = get_args(Currency)
# digits after the decimal point (ISO 4217): what the UI shows, never what is stored
MINOR_UNITS: dict[str, int] = dict.fromkeys(CURRENCIES, 2) | {"JPY": 0}
