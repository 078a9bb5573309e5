"""Support service: tickets (also from task reports), the FAQ assistant, leads, legal
documents and proposed configuration changes."""

from __future__ import annotations

from pathlib import Path

from servicekit.service import Service, run
from support_service import (
    assistant,
    changes,
    chat,
    erasure,
    leads,
    legal,
    threads,
    tickets,
    webhooks,
)
from support_service.db import metadata
from support_service.settings import SupportSettings
from support_service.store import SupportStore

SERVICE_DIR = Path(__file__).resolve().parents[2]


def create_service(settings: SupportSettings | None = None) -> Service:
    return Service(settings or SupportSettings(), metadata, store=SupportStore,
                   routers=[tickets.router, erasure.router, assistant.router, threads.router,
                            chat.router, leads.router, legal.router, changes.router,
                            webhooks.router],
                   migrations_dir=SERVICE_DIR / "migrations")


def main() -> None:
    run(create_service())


if __name__ == "__main__":
    main()
