"""head_revision reads the revision files without alembic, and agrees with alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from servicekit.migrations import head_revision

ROOT = Path(__file__).resolve().parents[3]
SERVICES = sorted(p.parent for p in (ROOT / "services").glob("*/migrations"))


def alembic_head(service_dir: Path) -> str | None:
    return ScriptDirectory(str(service_dir / "migrations")).get_current_head()


@pytest.mark.parametrize("service_dir", SERVICES, ids=lambda p: p.name)
def test_every_service_head_is_alembics(service_dir: Path) -> None:
    assert head_revision(service_dir) == alembic_head(service_dir)


def write(tmp: Path, name: str, body: str) -> None:
    versions = tmp / "migrations" / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    (tmp / "migrations" / "script.py.mako").write_text("")
    (tmp / "migrations" / "env.py").write_text("")
    (versions / f"{name}.py").write_text(body + "\ndef upgrade():\n    pass\n")


def test_a_chain_with_annotations_and_a_merge(tmp_path: Path) -> None:
    write(tmp_path, "a", 'revision = "a1"\ndown_revision = None\n')
    write(tmp_path, "b", 'revision: str = "b1"\ndown_revision: str | None = "a1"\n')
    write(tmp_path, "c", "revision = 'c1'\ndown_revision = 'a1'\n")
    write(tmp_path, "m", 'revision = "m1"\ndown_revision = ("b1", "c1")\n')
    assert head_revision(tmp_path) == "m1" == alembic_head(tmp_path)


def test_two_heads_are_left_to_alembic(tmp_path: Path) -> None:
    write(tmp_path, "a", 'revision = "a1"\ndown_revision = None\n')
    write(tmp_path, "b", 'revision = "b1"\ndown_revision = "a1"\n')
    write(tmp_path, "c", 'revision = "c1"\ndown_revision = "a1"\n')
    with pytest.raises(Exception, match="head"):  # alembic's MultipleHeads, as before
        head_revision(tmp_path)


def test_a_service_start_imports_no_alembic() -> None:
    code = ("import sys; from servicekit.service import Service; "
            "from servicekit.migrations import head_revision; "
            f"head_revision({str(SERVICES[0])!r}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
