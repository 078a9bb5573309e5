"""Rules service: quality-control rules that watch the event stream and act on workers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from rules_service import explain, facts, manual, rules_api, sweeper
from rules_service.context import RulesContext
from rules_service.db import metadata
from rules_service.settings import RulesSettings
from rules_service.store import RulesStore
from servicekit.context import utcnow
from servicekit.service import Service, run

SERVICE_DIR = Path(__file__).resolve().parents[2]


def create_service(settings: RulesSettings | None = None, *,
                   clock: Callable[[], datetime] = utcnow) -> Service:
    return Service(settings or RulesSettings(), metadata, store=RulesStore,
                   context=RulesContext, clock=clock,
                   routers=[rules_api.router, explain.router, facts.router, sweeper.router,
                            manual.router],
                   migrations_dir=SERVICE_DIR / "migrations")


def main() -> None:
    run(create_service())


if __name__ == "__main__":
    main()
