"""Ledger service: credits accepted work (from each pool's frozen price) and bonuses, holds
and pays payouts, keeps the hidden worker share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ledger_service import budgets, fair_pay, payouts, postings, reports, shares
from ledger_service.db import metadata
from ledger_service.settings import LedgerSettings
from ledger_service.store import LedgerStore
from servicekit.context import utcnow
from servicekit.service import Service, run

SERVICE_DIR = Path(__file__).resolve().parents[2]


def create_service(settings: LedgerSettings | None = None, *,
                   clock: Callable[[], datetime] = utcnow) -> Service:
    return Service(settings or LedgerSettings(), metadata, store=LedgerStore, clock=clock,
                   routers=[postings.router, payouts.router, shares.router, reports.router,
                            budgets.router, fair_pay.router],
                   migrations_dir=SERVICE_DIR / "migrations")


def main() -> None:
    run(create_service())


if __name__ == "__main__":
    main()
