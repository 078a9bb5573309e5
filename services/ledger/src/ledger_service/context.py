"""What the ledger's handlers receive."""

from __future__ import annotations

from ledger_service.settings import LedgerSettings
from ledger_service.store import LedgerStore
from servicekit.context import Context

LedgerContext = Context[LedgerSettings, LedgerStore]
