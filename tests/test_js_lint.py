"""static/js passes eslint and prettier, at the versions pinned beside the vendoring script."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENDOR = REPO / "scripts" / "vendor"
TOOLS = VENDOR / "node_modules" / ".bin"


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a pinned tool from the repository's root; skip where it cannot run."""
    if shutil.which("node") is None:
        pytest.skip(f"{name} needs node, which is not installed here")
    if not (TOOLS / name).exists():
        pytest.skip(
            f"{name} is not installed: run `npm ci` in scripts/vendor (scripts/setup.sh does)"
        )
    return subprocess.run(
        [str(TOOLS / name), *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_the_tools_are_pinned_to_exact_versions() -> None:
    tools = json.loads((VENDOR / "package.json").read_text())["devDependencies"]
    for name in ("eslint", "@eslint/js", "globals", "prettier"):
        assert tools[name][0].isdigit(), f"{name} is not pinned: {tools[name]}"
    lock = json.loads((VENDOR / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/eslint"]["version"] == tools["eslint"]
    assert lock["node_modules/prettier"]["version"] == tools["prettier"]


def test_eslint_finds_nothing_in_static_js() -> None:
    done = run_tool("eslint", "--config", "scripts/vendor/eslint.config.mjs", "static/js")
    assert done.returncode == 0, done.stdout + done.stderr


def test_prettier_finds_static_js_formatted() -> None:
    done = run_tool("prettier", "--check", "static/js")
    assert done.returncode == 0, done.stdout + done.stderr
