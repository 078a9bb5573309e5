"""Review service: the pending-review queue, TTL locks, decisions and statistics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from review_service import appeals, decisions, queue, stats
from review_service.db import metadata
from review_service.settings import ReviewSettings
from review_service.store import ReviewStore
from servicekit.context import utcnow
from servicekit.service import Service, run

SERVICE_DIR = Path(__file__).resolve().parents[2]


def create_service(settings: ReviewSettings | None = None, *,
                   clock: Callable[[], datetime] = utcnow) -> Service:
    return Service(settings or ReviewSettings(), metadata, store=ReviewStore, clock=clock,
                   routers=[queue.router, decisions.router, stats.router, appeals.router],
                   migrations_dir=SERVICE_DIR / "migrations")


def main() -> None:
    run(create_service())


if __name__ == "__main__":
    main()
