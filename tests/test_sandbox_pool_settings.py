"""The sandbox is told its settings by the server: it imports nothing from above it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from app.config import Settings
from app.sandbox.pool_settings import PoolSettings

SANDBOX = Path(__file__).resolve().parent.parent / "app" / "sandbox"
# below the sandbox: the contract, its errors and notes, and the recorder that a child runs
BELOW = (
    "app.sandbox",
    "app.errors",
    "app.schemas",
    "app.graph_notes",
    "app.records",
    "app.recorder",
    "app.bindings",
    "app.tensor_summary",
)


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_sandbox_imports_nothing_from_above_it() -> None:
    above = {
        (path.name, module)
        for path in SANDBOX.glob("*.py")
        for module in imported_modules(path)
        if module.startswith("app.") and not module.startswith(BELOW)
    }
    assert above == set()


def test_the_worker_parent_reads_back_what_the_server_sent() -> None:
    sent = Settings(workers=3, cpu_seconds=9, idle_after_cpu_seconds=0.25).pool_settings()
    received = PoolSettings.from_json(json.loads(json.dumps(sent.to_json())))
    assert received == sent
    assert received.child_limits.cpu_seconds == 9
    assert received.child_limits.idle_after_cpu_seconds == 0.25
