"""Autogenerate an Alembic revision for one service: ``make migration SVC=tasks MSG=...``."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from servicekit.migrations import alembic_config, upgrade

ROOT = Path(__file__).resolve().parents[1]


def main(service: str, message: str) -> None:
    service_dir = ROOT / "services" / service
    versions = sorted((service_dir / "migrations" / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    rev_id = f"{len(versions) + 1:04d}"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/autogen.db"
        upgrade(service_dir, url)
        command.revision(alembic_config(service_dir, url), message=message, autogenerate=True,
                         rev_id=rev_id)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "change")
