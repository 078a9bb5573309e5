"""Autogenerate an Alembic revision for one service: ``make migration SVC=tasks MSG=...``.

The revision is generated against a throwaway embedded PostgreSQL migrated to head, so
it is PostgreSQL's DDL that the comparison sees."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command

from servicekit.migrations import alembic_config, upgrade
from servicekit.testing.pgserver import PgServer, create_database

ROOT = Path(__file__).resolve().parents[1]


def main(service: str, message: str) -> None:
    service_dir = ROOT / "services" / service
    versions = sorted((service_dir / "migrations" / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    rev_id = f"{len(versions) + 1:04d}"
    with tempfile.TemporaryDirectory() as tmp:
        server = PgServer(Path(tmp) / "pg")
        server.start()
        try:
            url = asyncio.run(create_database(server.url(), f"autogen_{service}"))
            upgrade(service_dir, url)
            command.revision(alembic_config(service_dir, url), message=message,
                             autogenerate=True, rev_id=rev_id)
        finally:
            server.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "change")
