"""The code's shape: each name means one thing, and docs/architecture.md names every module."""

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


def test_the_architecture_page_names_every_module() -> None:
    page = (APP.parent / "docs" / "architecture.md").read_text()
    modules = sorted(str(p.relative_to(APP.parent)) for p in APP.rglob("*.py"))
    unnamed = [m for m in modules if f"`{m}`" not in page and not m.startswith("app/lessons/")]
    assert unnamed == []
    assert "`app/lessons/`" in page  # the gallery's programs, named as one folder
