"""The code's shape: each name means one thing."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
ENTRY_POINTS = {"main"}  # `python -m` entry points: one per runnable module


def test_each_public_name_is_defined_in_one_module() -> None:
    defined: dict[str, list[str]] = defaultdict(list)
    for path in APP.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
                defined[node.name].append(str(path.relative_to(APP)))
    twice = {name: paths for name, paths in defined.items() if len(paths) > 1}
    assert set(twice) <= ENTRY_POINTS, twice
