"""The web UI committed in the gateway package is what the pinned toolchain builds from the
sources: a changed source (or lockfile) without a rebuild fails here. Rebuild with

    make web
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.browser.conftest import FRONTEND, ROOT, tool

COMMITTED = ROOT / "services" / "gateway" / "src" / "gateway_service" / "web"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_sources_type_check(node_modules) -> None:
    r = subprocess.run([tool("node"), str(node_modules / "typescript" / "bin" / "tsc"), "--noEmit",
                        "-p", "."], cwd=FRONTEND, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_committed_build_is_what_the_sources_build(node_modules, tmp_path) -> None:
    out = tmp_path / "web"
    env = {**os.environ, "MTE_WEB_OUT_DIR": str(out)}
    r = subprocess.run([tool("node"), str(node_modules / "vite" / "bin" / "vite.js"), "build"],
                       cwd=FRONTEND, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    built, committed = tree(out), tree(COMMITTED)
    assert sorted(built) == sorted(committed), "the committed build has other files: rebuild"
    stale = [name for name in built if built[name] != committed[name]]
    assert stale == [], f"stale build files {stale}: rebuild (see this module's docstring)"
