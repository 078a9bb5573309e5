"""The shape the code keeps: short functions, lint and types clean (run in make test)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = [ROOT / "contracts" / "src", ROOT / "libs", ROOT / "services", ROOT / "launcher",
               ROOT / "bench"]
MAX_FUNCTION_LINES = 120


def source_files() -> list[Path]:
    return [p for d in SOURCE_DIRS for p in d.rglob("*.py")
            if "migrations" not in p.parts and "/tests/" not in str(p)]


def test_no_function_is_longer_than_a_screen_and_a_half() -> None:
    long = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions over 120 lines (a slice hides in each):\n" + "\n".join(long)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    r = _run("ruff", "check", "--output-format", "concise", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_finds_nothing() -> None:
    """Strict on contracts and the service kit, checked bodies everywhere else."""
    r = _run("mypy", "contracts/src", "libs/servicekit/src", "services/tasks/src",
             "services/review/src", "services/ledger/src", "services/rules/src",
             "services/support/src", "services/gateway/src", "launcher", "bench")
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-2000:]
