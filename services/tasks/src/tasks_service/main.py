"""Tasks service: projects, pools, tasks, the assignment lifecycle and worker limits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from servicekit.context import utcnow
from servicekit.service import Service, run
from tasks_service import (
    assignments,
    budget_view,
    captcha,
    catalog,
    consumers,
    pace,
    results,
    workers,
)
from tasks_service.db import metadata
from tasks_service.settings import TasksSettings
from tasks_service.store import TasksStore

SERVICE_DIR = Path(__file__).resolve().parents[2]


def create_service(settings: TasksSettings | None = None, *,
                   clock: Callable[[], datetime] = utcnow) -> Service:
    return Service(settings or TasksSettings(), metadata, store=TasksStore, clock=clock,
                   routers=[assignments.router, captcha.router, catalog.router,
                            workers.router, consumers.router, budget_view.router,
                            results.router, pace.router],
                   migrations_dir=SERVICE_DIR / "migrations")


def main() -> None:
    run(create_service())


if __name__ == "__main__":
    main()
