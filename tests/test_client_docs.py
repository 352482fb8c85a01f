"""The client walkthroughs in docs/clients/ run as written against a live server on loopback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from tests.live_server import live_server

DOCS = Path(__file__).resolve().parents[1] / "docs" / "clients"


def blocks(page: Path, language: str) -> list[str]:
    """The fenced code blocks of one language, in page order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", page.read_text(encoding="utf-8"), re.S | re.M)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with live_server(Settings(workers=2, wall_seconds=20)) as (base, _):
        yield base


def run_walkthrough(command: list[str], script: str, base: str, cwd: Path) -> str:
    env = {**os.environ, "EXPLORER": base}
    done = subprocess.run(
        [*command, script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


def test_python_walkthrough(server: str, tmp_path: Path) -> None:
    page = DOCS / "python.md"
    code, shown = blocks(page, "python"), blocks(page, "text")
    assert len(code) >= 6 and len(shown) >= 6
    printed = run_walkthrough([sys.executable, "-c"], "\n".join(code), server, tmp_path)
    assert printed == "".join(shown)
    assert (tmp_path / "graph.svg").read_bytes().lstrip().startswith(b"<?xml")
    assert b"graph-data" in (tmp_path / "graph.html").read_bytes()


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
def test_curl_walkthrough(server: str, tmp_path: Path) -> None:
    page = DOCS / "curl.md"
    code, shown = blocks(page, "bash"), blocks(page, "text")
    assert len(code) >= 5 and len(shown) >= 5
    script = "set -euo pipefail\n" + "\n".join(code)
    printed = run_walkthrough(["bash", "-c"], script, server, tmp_path)
    assert printed == "".join(shown)
    assert (tmp_path / "graph.svg").read_bytes().lstrip().startswith(b"<?xml")
