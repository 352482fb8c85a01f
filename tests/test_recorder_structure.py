"""The recorder package: small modules and classes, and nothing of the sandbox, HTTP or drawing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "app" / "recorder"
MODULES = sorted(PACKAGE.glob("*.py"))
# the recorder collects the graph; running it jailed, serving it and drawing it live elsewhere
FORBIDDEN = (
    "app.sandbox",
    "app.layout",  # app.layout and its parts, app.layout_groups, app.layout_boxes, ...
    "app.dot_",
    "app.export",
    "app.routes",
    "app.service",
    "graphviz",
)
FORBIDDEN_ROOTS = {"fastapi", "starlette", "httpx", "uvicorn", "graphviz"}


def _imports(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_the_package_has_its_modules() -> None:
    names = {path.stem for path in MODULES}
    assert {"recorder", "mode", "passes", "pausing", "series", "naming", "source"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_modules_and_classes_stay_small(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= 600
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None
            assert node.end_lineno - node.lineno + 1 <= 300, node.name


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_the_recorder_imports_no_sandbox_http_or_drawing(path: Path) -> None:
    for name in _imports(ast.parse(path.read_text())):
        assert not name.startswith(FORBIDDEN), name
        assert name.split(".")[0] not in FORBIDDEN_ROOTS, name
